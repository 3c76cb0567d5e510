//! Field checks every collection shares: label format, description
//! length, and that a regional backend service only uses instance groups
//! of its own region.

use serde_json::Value;

use crate::{catalog, error::ApiError, links, store::Resource};

/// Longest `description` the real API accepts.
const MAX_DESCRIPTION: usize = 2048;
/// Most labels on one resource.
const MAX_LABELS: usize = 64;

fn label_text_ok(text: &str, key: bool) -> bool {
    let chars_ok = text.chars().all(|c| {
        c.is_lowercase()
            || c.is_ascii_digit()
            || c == '_'
            || c == '-'
            || (!c.is_ascii() && !c.is_uppercase())
    });
    let first_ok = !key || text.chars().next().is_some_and(char::is_lowercase);
    text.chars().count() <= 63 && chars_ok && first_ok
}

/// Label keys start with a lowercase letter; keys and values hold at most
/// 63 lowercase letters, digits, `_` and `-` (international letters too).
pub fn check_labels(labels: Option<&Value>) -> Result<(), ApiError> {
    let Some(labels) = labels else {
        return Ok(());
    };
    let Some(map) = labels.as_object() else {
        return Err(ApiError::invalid_field(
            "resource.labels",
            &labels.to_string(),
            "Labels must be a map of strings.",
        ));
    };
    if map.len() > MAX_LABELS {
        return Err(ApiError::invalid_field(
            "resource.labels",
            &map.len().to_string(),
            "A resource can have at most 64 labels.",
        ));
    }
    for (key, value) in map {
        if !label_text_ok(key, true) {
            return Err(ApiError::invalid_field(
                "resource.labels",
                key,
                "Label key violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes, and can be at most 63 characters long.",
            ));
        }
        let text = value.as_str().unwrap_or("\u{0}");
        if !label_text_ok(text, false) {
            return Err(ApiError::invalid_field(
                "resource.labels",
                &value.to_string(),
                "Label value violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes, and can be at most 63 characters long.",
            ));
        }
    }
    Ok(())
}

/// The checks every insert, patch and update runs.
pub fn common(scope: &str, collection: &str, body: &Resource) -> Result<(), ApiError> {
    check_labels(body.get("labels"))?;
    if let Some(description) = body.get("description").and_then(Value::as_str)
        && description.chars().count() > MAX_DESCRIPTION
    {
        return Err(ApiError::invalid_field(
            "resource.description",
            &description.chars().take(32).collect::<String>(),
            "Must be at most 2048 characters long.",
        ));
    }
    if collection == "backendServices" {
        check_backend_regions(scope, body)?;
    }
    Ok(())
}

/// A regional backend service's instance groups must be in zones of its region.
fn check_backend_regions(scope: &str, body: &Resource) -> Result<(), ApiError> {
    let Some(region) = scope.split_once("/regions/").map(|(_, r)| r) else {
        return Ok(());
    };
    let backends = body.get("backends").and_then(Value::as_array);
    for (i, backend) in backends.into_iter().flatten().enumerate() {
        let Some(group) = backend.get("group").and_then(links::as_rel) else {
            continue;
        };
        let zone = group.split('/').nth(3).unwrap_or("");
        if group.split('/').nth(2) == Some("zones") && catalog::region_of_zone(zone) != Some(region)
        {
            return Err(ApiError::invalid_field(
                &format!("resource.backends[{i}].group"),
                group,
                &format!("Backend group must be in region '{region}'."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_rules() {
        assert!(check_labels(Some(&json!({"gantry-owner": "ns_svc-1", "k": ""}))).is_ok());
        assert!(check_labels(Some(&json!({"Owner": "x"}))).is_err());
        assert!(check_labels(Some(&json!({"1k": "x"}))).is_err());
        assert!(check_labels(Some(&json!({"k": "A"}))).is_err());
        assert!(check_labels(Some(&json!({"k": "a.b"}))).is_err());
        assert!(check_labels(Some(&json!({"k": "a".repeat(64)}))).is_err());
        assert!(check_labels(Some(&json!({"k": 1}))).is_err());
    }
}
