//! Strategic merge patch (`application/strategic-merge-patch+json`): RFC 7386
//! merge, except that lists with a patch strategy merge by key and the
//! `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and
//! `$setElementOrder` directives are honoured.

use serde_json::{Map, Value};

use super::lists::{ListKind, list_kind, same_key};
use crate::error::ApiError;

/// Applies a strategic merge patch to `target`.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let mut path = Vec::new();
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return Ok(());
    }
    merge_map(target, patch, &mut path)
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_map(target: &mut Value, patch: &Value, path: &mut Vec<String>) -> Result<(), ApiError> {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let mut retain: Option<Vec<String>> = None;
    for (key, value) in patch_map {
        if key == "$patch" {
            continue;
        }
        if key == "$retainKeys" {
            retain = value.as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
            continue;
        }
        if key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let drop: Vec<Value> = value.as_array().cloned().unwrap_or_default();
            if let Some(list) = target.get_mut(field).and_then(Value::as_array_mut) {
                list.retain(|v| !drop.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            return Err(ApiError::bad_request(format!(
                "unknown patch directive {key}"
            )));
        }
        let Some(tmap) = target.as_object_mut() else {
            break;
        };
        if value.is_null() {
            tmap.remove(key);
            continue;
        }
        path.push(key.clone());
        match value {
            Value::Object(inner) => match inner.get("$patch").and_then(Value::as_str) {
                Some("delete") => {
                    tmap.remove(key);
                }
                Some("replace") => {
                    tmap.insert(key.clone(), strip_directives(value));
                }
                _ => {
                    let slot = tmap.entry(key.clone()).or_insert(Value::Object(Map::new()));
                    merge_map(slot, value, path)?;
                }
            },
            Value::Array(items) => {
                let kind = list_kind(path, true);
                let slot = tmap.entry(key.clone()).or_insert(Value::Array(Vec::new()));
                merge_list(slot, items, &kind, path)?;
            }
            other => {
                tmap.insert(key.clone(), other.clone());
            }
        }
        path.pop();
    }
    if let (Some(keep), Some(tmap)) = (retain, target.as_object_mut()) {
        tmap.retain(|k, _| keep.contains(k));
    }
    Ok(())
}

fn merge_list(
    target: &mut Value,
    items: &[Value],
    kind: &ListKind,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    if replace || *kind == ListKind::Atomic || !target.is_array() {
        let kept: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        *target = Value::Array(kept);
        return Ok(());
    }
    let Some(list) = target.as_array_mut() else {
        return Ok(());
    };
    match kind {
        ListKind::Atomic => {}
        ListKind::Set => {
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        ListKind::Map(keys) => {
            for item in items {
                let pos = list.iter().position(|t| same_key(t, item, keys));
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => merge_map(&mut list[i], item, path)?,
                    (None, false) => list.push(strip_directives(item)),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn service_ports_merge_by_port() {
        let mut svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        apply(&mut svc, &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 9000, "name": "x"}]}}))
            .expect("patch");
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443, "name": "https"}, {"port": 9000, "name": "x"}])
        );
        apply(
            &mut svc,
            &json!({"spec": {"ports": [{"port": 443, "$patch": "delete"}]}}),
        )
        .expect("patch");
        assert_eq!(svc["spec"]["ports"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn finalizers_union_and_delete_from_primitive_list() {
        let mut o = json!({"metadata": {"finalizers": ["a"]}});
        apply(&mut o, &json!({"metadata": {"finalizers": ["b", "a"]}})).expect("patch");
        assert_eq!(o["metadata"]["finalizers"], json!(["a", "b"]));
        apply(
            &mut o,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .expect("patch");
        assert_eq!(o["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn containers_merge_by_name_and_replace_directive() {
        let mut d =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        apply(
            &mut d,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y"}]}}}}),
        )
        .expect("patch");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        apply(
            &mut d,
            &json!({"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "z"}]}}}}),
        )
        .expect("patch");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"],
            json!([{"name": "c", "image": "z"}])
        );
    }

    #[test]
    fn atomic_lists_replace_and_null_deletes() {
        let mut o = json!({"spec": {"tolerations": [{"key": "a"}], "x": 1}});
        apply(
            &mut o,
            &json!({"spec": {"tolerations": [{"key": "b"}], "x": null}}),
        )
        .expect("patch");
        assert_eq!(o, json!({"spec": {"tolerations": [{"key": "b"}]}}));
    }
}
