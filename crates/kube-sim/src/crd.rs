//! CustomResourceDefinitions: turning a CRD object into served resource
//! types, the status the real server reports for it, and structural-schema
//! defaulting and pruning of custom resources.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::{
    error::Cause,
    registry::{CustomInfo, ResourceType},
};

/// Validates a CRD and derives one resource type per served version.
pub fn types_for(crd: &Value) -> Result<Vec<ResourceType>, Vec<Cause>> {
    let spec = &crd["spec"];
    let mut causes = Vec::new();
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = spec["scope"].as_str().unwrap_or("");
    if !matches!(scope, "Namespaced" | "Cluster") {
        causes.push(Cause::not_supported(
            "spec.scope",
            &spec["scope"],
            &["Cluster", "Namespaced"],
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    if versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
        && !versions.is_empty()
    {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!(versions.len()),
            "must have exactly one version marked as storage version",
        ));
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    Ok(versions
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .map(|v| {
            let selectable = v["selectableFields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["jsonPath"].as_str())
                        .map(|p| p.trim_start_matches('.').to_string())
                        .collect()
                })
                .unwrap_or_default();
            ResourceType {
                group: group.clone(),
                version: v["name"].as_str().unwrap_or("v1").to_string(),
                plural: plural.clone(),
                singular: singular.clone(),
                kind: kind.clone(),
                namespaced: scope == "Namespaced",
                has_status: v.pointer("/subresources/status").is_some(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                field_selectors: selectable,
                strategic: false,
                custom: Some(Arc::new(CustomInfo {
                    crd_name: name.to_string(),
                    schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                    printer_columns: v["additionalPrinterColumns"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                })),
            }
        })
        .collect())
}

/// The status the apiextensions server reports once a CRD is served.
pub fn status_for(crd: &Value, now: &str) -> Value {
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut accepted = names.clone();
    if let Some(m) = accepted.as_object_mut() {
        if !m.contains_key("singular")
            && let Some(kind) = names["kind"].as_str()
        {
            m.insert("singular".into(), json!(kind.to_ascii_lowercase()));
        }
        if !m.contains_key("listKind")
            && let Some(kind) = names["kind"].as_str()
        {
            m.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": stored,
    })
}

/// Applies schema `default`s and prunes unknown fields, like the real
/// server does for structural schemas.
pub fn default_and_prune(schema: &Value, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if let Some(props) = props {
        if !preserve {
            root.retain(|k, _| {
                matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || props.contains_key(k)
            });
        }
        for (k, sub) in props {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            apply_property(root, k, sub);
        }
    }
}

fn apply_property(parent: &mut Map<String, Value>, key: &str, schema: &Value) {
    if !parent.contains_key(key)
        && let Some(d) = schema.get("default")
    {
        parent.insert(key.to_string(), d.clone());
    }
    if let Some(v) = parent.get_mut(key) {
        walk(schema, v);
    }
}

fn walk(schema: &Value, v: &mut Value) {
    match v {
        Value::Object(m) => {
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                if !preserve && schema.get("additionalProperties").is_none() {
                    m.retain(|k, _| props.contains_key(k));
                }
                for (k, sub) in props {
                    apply_property(m, k, sub);
                }
            } else if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for child in m.values_mut() {
                    walk(extra, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for i in items {
                    walk(item_schema, i);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_nested_and_prunes_unknown() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "replicas": {"type": "integer", "default": 1},
                        "tls": {"type": "object", "properties": {"mode": {"type": "string", "default": "strict"}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }
            }
        });
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "junk": 1,
            "spec": {"tls": {}, "unknown": true, "labels": {"a": "b"}, "free": {"any": 1}}
        });
        default_and_prune(&schema, &mut obj);
        assert_eq!(obj["spec"]["replicas"], json!(1));
        assert_eq!(obj["spec"]["tls"]["mode"], json!("strict"));
        assert_eq!(obj["spec"]["labels"], json!({"a": "b"}));
        assert_eq!(obj["spec"]["free"], json!({"any": 1}));
        assert!(obj.get("junk").is_none());
        assert!(obj["spec"].get("unknown").is_none());

        let mut empty = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "b"}});
        default_and_prune(&schema, &mut empty);
        assert_eq!(empty["spec"], json!({"replicas": 1}));
    }
}
