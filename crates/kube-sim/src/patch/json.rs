//! JSON patch (RFC 6902) with the semantics of the library the real server
//! uses: a `test` of a path whose parent exists but whose last key does not
//! passes when the expected value is `null` (kube-rs's finalizer helper
//! relies on this), and any failing operation becomes the server's generic
//! 422 answer.

use serde_json::Value;

use crate::error::ApiError;

/// Unescapes one RFC 6901 reference token.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Whether a `test` operation holds against `doc`, as the API server's
/// patch library decides it.
fn test_holds(doc: &Value, path: &str, expected: &Value) -> bool {
    if path.is_empty() {
        return doc == expected;
    }
    let Some((parent, last)) = path.rsplit_once('/') else {
        return false;
    };
    let Some(container) = doc.pointer(parent) else {
        return false;
    };
    let key = unescape(last);
    let actual = match container {
        Value::Object(map) => map.get(&key),
        Value::Array(items) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => items.get(i),
            _ => return false,
        },
        _ => return false,
    };
    match actual {
        None | Some(Value::Null) => expected.is_null(),
        Some(v) => v == expected,
    }
}

/// Applies a JSON patch to `doc` in place; on error `doc` may be partly
/// patched (callers work on a copy).
pub fn apply(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let Some(ops) = patch.as_array() else {
        return Err(ApiError::bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch",
        ));
    };
    for raw in ops {
        if raw.get("op").and_then(Value::as_str) == Some("test") {
            let path = raw.get("path").and_then(Value::as_str).unwrap_or("");
            let expected = raw.get("value").unwrap_or(&Value::Null);
            if !test_holds(doc, path, expected) {
                return Err(ApiError::json_patch_failed());
            }
            continue;
        }
        let op: json_patch::PatchOperation = serde_json::from_value(raw.clone())
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        json_patch::patch(doc, &[op]).map_err(|_| ApiError::json_patch_failed())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn test_of_a_missing_key_against_null_holds() {
        let doc = json!({"metadata": {"name": "a"}});
        assert!(test_holds(&doc, "/metadata/finalizers", &Value::Null));
        assert!(!test_holds(&doc, "/metadata/finalizers", &json!([])));
        assert!(!test_holds(&doc, "/spec/x", &Value::Null), "parent missing");
        assert!(test_holds(&doc, "/metadata/name", &json!("a")));
        assert!(!test_holds(&doc, "/metadata/name", &Value::Null));
    }

    #[test]
    fn finalizer_helper_patch_applies_to_an_object_without_finalizers() {
        let mut doc = json!({"metadata": {"name": "a"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}
        ]);
        apply(&mut doc, &patch).expect("applies");
        assert_eq!(doc["metadata"]["finalizers"], json!(["x/y"]));
    }

    #[test]
    fn failures_are_the_generic_422() {
        let mut doc = json!({"data": {"k": "v"}, "list": ["a"]});
        for patch in [
            json!([{"op": "test", "path": "/data/k", "value": "w"}]),
            json!([{"op": "test", "path": "/list/3", "value": null}]),
            json!([{"op": "remove", "path": "/data/missing"}]),
        ] {
            let e = apply(&mut doc, &patch).expect_err("fails");
            assert_eq!(e.code, 422);
            assert_eq!(
                e.message,
                "the server rejected our request due to an error in our request"
            );
        }
    }
}
