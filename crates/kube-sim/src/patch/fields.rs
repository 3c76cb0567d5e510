//! Field sets in the `FieldsV1` encoding `metadata.managedFields` uses
//! (`f:spec`, `k:{"port":80,"protocol":"TCP"}`, `v:"a"`, `.`), and the
//! operations server-side apply needs on them: extract from an object, look a
//! path up, remove a path.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::lists::{ListKind, key_value, list_kind, same_key};

/// One path element in FieldsV1 notation.
pub type Elem = String;
/// A path to one owned leaf.
pub type FieldPath = Vec<Elem>;
/// A set of owned leaves.
pub type FieldSet = BTreeSet<FieldPath>;

/// Which top-level parts of an object a field set may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything but `.status` (main resource of a kind with a status subresource).
    NoStatus,
    /// Only `.status` (the status subresource).
    StatusOnly,
    /// Everything (kinds without a status subresource).
    All,
}

/// Metadata the server owns; never part of a field set.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
];

fn names(path: &[Elem]) -> Vec<String> {
    path.iter()
        .filter_map(|e| e.strip_prefix("f:"))
        .map(str::to_string)
        .collect()
}

/// The owned leaves of an object within a scope.
pub fn extract(obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        let keep = match (k.as_str(), scope) {
            ("apiVersion" | "kind", _) => false,
            ("status", Scope::NoStatus) => false,
            ("status", _) => true,
            ("metadata", Scope::StatusOnly) => false,
            (_, Scope::StatusOnly) => false,
            _ => true,
        };
        if !keep {
            continue;
        }
        let mut path = vec![format!("f:{k}")];
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if SERVER_META.contains(&mk.as_str()) {
                        continue;
                    }
                    path.push(format!("f:{mk}"));
                    walk(mv, &mut path, &mut out);
                    path.pop();
                }
            }
        } else {
            walk(v, &mut path, &mut out);
        }
    }
    out
}

fn key_elem(item: &Value, keys: &[&str]) -> Elem {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = key_value(item, k) {
            m.insert((*k).to_string(), v.clone());
        }
    }
    format!("k:{}", Value::Object(m))
}

fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(format!("f:{k}"));
                walk(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_kind(&names(path), false) {
            ListKind::Atomic => {
                out.insert(path.clone());
            }
            ListKind::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Map(keys) => {
                for item in items {
                    path.push(key_elem(item, keys));
                    path.push(".".into());
                    out.insert(path.clone());
                    path.pop();
                    walk(item, path, out);
                    path.pop();
                }
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn find_item(list: &[Value], elem: &str) -> Option<usize> {
    let want: Value = serde_json::from_str(elem.strip_prefix("k:")?).ok()?;
    let want = want.as_object()?;
    list.iter()
        .position(|item| want.iter().all(|(k, v)| key_value(item, k) == Some(v)))
}

/// The value at a path (`.` yields the list item itself).
pub fn get<'a>(obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut cur = obj;
    for e in path {
        if e == "." {
            return Some(cur);
        }
        if let Some(f) = e.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(v) = e.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array()?.iter().find(|x| **x == want)?;
        } else if e.starts_with("k:") {
            let list = cur.as_array()?;
            let idx = find_item(list, e)?;
            cur = &list[idx];
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Removes the field, list item or set member a path names.
pub fn remove(obj: &mut Value, path: &[Elem]) {
    let (target, parent) = match path.last().map(String::as_str) {
        Some(".") if path.len() >= 2 => (&path[path.len() - 2], &path[..path.len() - 2]),
        Some(_) => (&path[path.len() - 1], &path[..path.len() - 1]),
        None => return,
    };
    let Some(container) = get_mut(obj, parent) else {
        return;
    };
    if let Some(f) = target.strip_prefix("f:") {
        if let Some(m) = container.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(v) = target.strip_prefix("v:") {
        if let (Ok(want), Some(list)) = (serde_json::from_str::<Value>(v), container.as_array_mut())
        {
            list.retain(|x| *x != want);
        }
    } else if target.starts_with("k:")
        && let Some(list) = container.as_array_mut()
        && let Some(i) = find_item(list, target)
    {
        list.remove(i);
    }
}

fn get_mut<'a>(obj: &'a mut Value, path: &[Elem]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
        } else if e.starts_with("k:") {
            let idx = find_item(cur.as_array()?, e)?;
            cur = cur.as_array_mut()?.get_mut(idx)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Renders a path the way conflict messages show it: `.spec.ports[port=80,protocol="TCP"].targetPort`.
pub fn display(path: &[Elem]) -> String {
    let mut s = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Encodes a field set as a FieldsV1 object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for e in path {
            let next = cur
                .entry(e.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(m) = next.as_object_mut() else { break };
            cur = m;
        }
    }
    Value::Object(root)
}

/// Decodes a FieldsV1 object into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    rec(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// Merges an apply configuration into a live object: maps recursively,
/// keyed lists by key, sets by union, everything else replaced.
pub fn merge(live: &mut Value, config: &Value, path: &mut Vec<String>) {
    let (Some(lm), Some(cm)) = (live.as_object_mut(), config.as_object()) else {
        *live = config.clone();
        return;
    };
    for (k, v) in cm {
        if v.is_null() {
            lm.remove(k);
            continue;
        }
        path.push(k.clone());
        match (lm.get_mut(k), v) {
            (Some(l @ Value::Object(_)), Value::Object(_)) => merge(l, v, path),
            (Some(Value::Array(l)), Value::Array(items)) => match list_kind(path, false) {
                ListKind::Atomic => *l = items.clone(),
                ListKind::Set => {
                    for i in items {
                        if !l.contains(i) {
                            l.push(i.clone());
                        }
                    }
                }
                ListKind::Map(keys) => {
                    for i in items {
                        match l.iter_mut().find(|x| same_key(x, i, keys)) {
                            Some(x) => merge(x, i, path),
                            None => l.push(i.clone()),
                        }
                    }
                }
            },
            _ => {
                lm.insert(k.clone(), v.clone());
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn extract_roundtrips_through_fields_v1() {
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "a", "labels": {"app": "x"}, "finalizers": ["f"]},
            "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "x"}},
            "status": {"loadBalancer": {}}
        });
        let set = extract(&svc, Scope::NoStatus);
        assert!(set.contains(&vec![
            "f:metadata".into(),
            "f:labels".into(),
            "f:app".into()
        ]));
        assert!(set.contains(&vec![
            "f:spec".into(),
            "f:ports".into(),
            r#"k:{"port":80,"protocol":"TCP"}"#.into(),
            "f:targetPort".into()
        ]));
        assert!(set.contains(&vec![
            "f:metadata".into(),
            "f:finalizers".into(),
            "v:\"f\"".into()
        ]));
        assert!(!set.iter().any(|p| p[0] == "f:status"));
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
        let p = vec![
            "f:spec".to_string(),
            "f:ports".into(),
            r#"k:{"port":80,"protocol":"TCP"}"#.into(),
            "f:targetPort".into(),
        ];
        assert_eq!(get(&svc, &p), Some(&json!(8080)));
        assert_eq!(
            display(&p),
            r#".spec.ports[port=80,protocol="TCP"].targetPort"#
        );
    }

    #[test]
    fn remove_item_and_field() {
        let mut o = json!({"spec": {"ports": [{"port": 80}, {"port": 81}], "x": 1}});
        remove(
            &mut o,
            &[
                "f:spec".into(),
                "f:ports".into(),
                r#"k:{"port":80,"protocol":"TCP"}"#.into(),
                ".".into(),
            ],
        );
        remove(&mut o, &["f:spec".into(), "f:x".into()]);
        assert_eq!(o, json!({"spec": {"ports": [{"port": 81}]}}));
    }
}
