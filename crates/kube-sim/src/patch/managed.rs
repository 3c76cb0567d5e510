//! `metadata.managedFields` bookkeeping and server-side apply.
//!
//! Ownership is tracked per leaf field (maps recurse, known keyed lists are
//! tracked per item, other lists are atomic). Every write records what it
//! changed under its manager; an apply additionally checks conflicts with
//! other owners and removes fields its manager stopped applying when nobody
//! else owns them.

use serde_json::{Value, json};

use super::fields::{self, FieldSet, Scope};

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    set: FieldSet,
}

/// Who is writing and how.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Field manager name.
    pub manager: &'a str,
    /// `apiVersion` of the request.
    pub api_version: &'a str,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<&'a str>,
    /// Which parts of the object the write may touch.
    pub scope: Scope,
    /// Timestamp to stamp on changed entries.
    pub now: &'a str,
}

fn read(obj: Option<&Value>) -> Vec<Entry> {
    let Some(list) = obj
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Entry {
                manager: e.get("manager")?.as_str()?.to_string(),
                operation: e
                    .get("operation")
                    .and_then(Value::as_str)
                    .unwrap_or("Update")
                    .to_string(),
                api_version: e
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                time: e
                    .get("time")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                set: e
                    .get("fieldsV1")
                    .map(fields::from_fields_v1)
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn write(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&e.set),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn is_self(e: &Entry, w: &Writer<'_>, op: &str) -> bool {
    e.manager == w.manager && e.operation == op && e.subresource.as_deref() == w.subresource
}

fn upsert(entries: &mut Vec<Entry>, w: &Writer<'_>, op: &str, set: FieldSet) {
    match entries.iter_mut().find(|e| is_self(e, w, op)) {
        Some(e) => {
            if e.set != set {
                e.set = set;
                e.time = w.now.to_string();
                e.api_version = w.api_version.to_string();
            }
        }
        None => entries.push(Entry {
            manager: w.manager.to_string(),
            operation: op.to_string(),
            api_version: w.api_version.to_string(),
            time: w.now.to_string(),
            subresource: w.subresource.map(str::to_string),
            set,
        }),
    }
}

/// Drops ownership of paths that no longer exist, keeping timestamps of untouched entries.
fn prune(entries: &mut Vec<Entry>, new: &Value, now: &str) {
    let present = fields::extract(new, Scope::All);
    for e in entries.iter_mut() {
        let before = e.set.len();
        e.set
            .retain(|p| present.contains(p) || fields::get(new, p).is_some());
        if e.set.len() != before {
            e.time = now.to_string();
        }
    }
    entries.retain(|e| !e.set.is_empty());
}

/// Records a non-apply write (create, update, patch) from `old` to `new`.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    let mut entries = read(old);
    let old_set = old.map(|o| fields::extract(o, w.scope)).unwrap_or_default();
    let new_set = fields::extract(new, w.scope);
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| {
            !old_set.contains(*p) || old.and_then(|o| fields::get(o, p)) != fields::get(new, p)
        })
        .cloned()
        .collect();
    if !changed.is_empty() {
        for e in entries.iter_mut().filter(|e| !is_self(e, w, "Update")) {
            let before = e.set.len();
            e.set.retain(|p| !changed.contains(p));
            if e.set.len() != before {
                e.time = w.now.to_string();
            }
        }
        let mut mine = entries
            .iter()
            .find(|e| is_self(e, w, "Update"))
            .map(|e| e.set.clone())
            .unwrap_or_default();
        mine.extend(changed);
        upsert(&mut entries, w, "Update", mine);
    }
    prune(&mut entries, new, w.now);
    write(new, &entries);
}

/// A field another manager owns with a different value: `(manager, field)`.
pub type Conflict = (String, String);

/// Server-side apply of `config` onto `live` (absent for create-by-apply).
/// Returns the merged object with updated `managedFields`, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    w: &Writer<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = read(live);
    let applied = fields::extract(config, w.scope);
    let empty = json!({});
    let live_obj = live.unwrap_or(&empty);

    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !is_self(e, w, "Apply")) {
        for p in applied.intersection(&e.set) {
            let live_v = fields::get(live_obj, p);
            let cfg_v = fields::get(config, p);
            if p.last().is_some_and(|l| l == ".") {
                continue;
            }
            if live_v.is_some() && live_v != cfg_v {
                conflicts.push((e.manager.clone(), fields::display(p)));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        conflicts.dedup();
        return Err(conflicts);
    }
    // Force (or agreeing values): contested fields move to this manager when
    // values differ; equal values stay shared, as with the real server.
    if force {
        for e in entries.iter_mut().filter(|e| !is_self(e, w, "Apply")) {
            let taken: Vec<_> = e
                .set
                .iter()
                .filter(|p| {
                    applied.contains(*p) && fields::get(live_obj, p) != fields::get(config, p)
                })
                .cloned()
                .collect();
            if !taken.is_empty() {
                for p in taken {
                    e.set.remove(&p);
                }
                e.time = w.now.to_string();
            }
        }
    }

    let mut result = live.cloned().unwrap_or_else(|| {
        json!({"apiVersion": config.get("apiVersion"), "kind": config.get("kind"), "metadata": {}})
    });
    let mut scoped = config.clone();
    if let Some(m) = scoped.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        match w.scope {
            Scope::NoStatus => {
                m.remove("status");
            }
            Scope::StatusOnly => m.retain(|k, _| k == "status"),
            Scope::All => {}
        }
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "resourceVersion",
                "uid",
                "managedFields",
                "creationTimestamp",
                "generation",
            ] {
                meta.remove(k);
            }
        }
    }
    fields::merge(&mut result, &scoped, &mut Vec::new());

    let previous = entries
        .iter()
        .find(|e| is_self(e, w, "Apply"))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    for p in previous.difference(&applied) {
        let owned_elsewhere = entries
            .iter()
            .any(|e| !is_self(e, w, "Apply") && e.set.contains(p));
        if !owned_elsewhere {
            fields::remove(&mut result, p);
        }
    }
    upsert(&mut entries, w, "Apply", applied);
    prune(&mut entries, &result, w.now);
    write(&mut result, &entries);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer<'a>(manager: &'a str) -> Writer<'a> {
        Writer {
            manager,
            api_version: "v1",
            subresource: None,
            scope: Scope::NoStatus,
            now: "2025-01-01T00:00:00Z",
        }
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let c1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}});
        let o1 = apply(None, &c1, &writer("m"), false).expect("apply");
        let c2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}}});
        let o2 = apply(Some(&o1), &c2, &writer("m"), false).expect("apply");
        assert_eq!(o2["metadata"]["labels"], json!({"x": "1"}));
    }

    #[test]
    fn conflicting_managers_need_force() {
        let c1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}});
        let o1 = apply(None, &c1, &writer("one"), false).expect("apply");
        let c2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "2"}});
        let err = apply(Some(&o1), &c2, &writer("two"), false).expect_err("conflict");
        assert_eq!(err, vec![("one".to_string(), ".data.k".to_string())]);
        let o2 = apply(Some(&o1), &c2, &writer("two"), true).expect("forced");
        assert_eq!(o2["data"]["k"], json!("2"));
        let managers: Vec<&str> = o2["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert_eq!(managers, vec!["two"]);
    }

    #[test]
    fn update_takes_ownership_of_changed_fields() {
        let c1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}});
        let o1 = apply(None, &c1, &writer("one"), false).expect("apply");
        let mut o2 = o1.clone();
        o2["data"]["k"] = json!("3");
        record_update(Some(&o1), &mut o2, &writer("editor"));
        let err = apply(Some(&o2), &c1, &writer("one"), false).expect_err("conflict with editor");
        assert_eq!(err[0].0, "editor");
    }
}
