//! How the server treats each list field when merging: atomically, as a set
//! of scalars, or as a map keyed by some of its items' fields. The table
//! covers the built-in lists that matter (pod templates, Service ports,
//! finalizers, owner references, conditions); everything else is atomic,
//! like lists without a patch strategy on the real server.

use serde_json::Value;

/// The merge semantics of one list field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars, merged by union.
    Set,
    /// Items identified by these key fields.
    Map(&'static [&'static str]),
}

fn inside_container(path: &[String]) -> bool {
    path.len() >= 2
        && matches!(
            path[path.len() - 2].as_str(),
            "containers" | "initContainers" | "ephemeralContainers"
        )
}

/// The list semantics of the list at `path` (field names only, no indices).
/// `strategic` picks strategic-merge keys (single field) over server-side
/// apply keys (which add `protocol` to ports).
pub fn list_kind(path: &[String], strategic: bool) -> ListKind {
    let Some(last) = path.last() else {
        return ListKind::Atomic;
    };
    let parent = &path[..path.len() - 1];
    match last.as_str() {
        "finalizers" if parent == ["metadata"] => ListKind::Set,
        "ownerReferences" if parent == ["metadata"] => ListKind::Map(&["uid"]),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets" => ListKind::Map(&["name"]),
        "env" if inside_container(parent) => ListKind::Map(&["name"]),
        "volumeMounts" => ListKind::Map(&["mountPath"]),
        "volumeDevices" => ListKind::Map(&["devicePath"]),
        "hostAliases" => ListKind::Map(&["ip"]),
        "topologySpreadConstraints" if !strategic => {
            ListKind::Map(&["topologyKey", "whenUnsatisfiable"])
        }
        "topologySpreadConstraints" => ListKind::Map(&["topologyKey"]),
        "ports" if inside_container(parent) => {
            if strategic {
                ListKind::Map(&["containerPort"])
            } else {
                ListKind::Map(&["containerPort", "protocol"])
            }
        }
        "ports" if parent == ["spec"] => {
            if strategic {
                ListKind::Map(&["port"])
            } else {
                ListKind::Map(&["port", "protocol"])
            }
        }
        "conditions" if parent.last().is_some_and(|p| p == "status") => ListKind::Map(&["type"]),
        "addresses" if parent == ["status"] => ListKind::Map(&["type"]),
        _ => ListKind::Atomic,
    }
}

/// A key field's value with the server default applied (`protocol` is `TCP`).
pub fn key_value<'a>(item: &'a Value, field: &str) -> Option<&'a Value> {
    match item.get(field) {
        Some(v) if !v.is_null() => Some(v),
        _ if field == "protocol" => Some(&DEFAULT_PROTOCOL),
        _ => None,
    }
}

static DEFAULT_PROTOCOL: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::String("TCP".into()));

/// Whether two items share every key field.
pub fn same_key(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}
