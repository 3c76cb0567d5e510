//! Events: one stored object served by two APIs. The real server keeps a
//! single Event in storage and converts on every read and write between
//! core `v1` (`involvedObject`, `message`, `source`, `firstTimestamp`,
//! `lastTimestamp`, `count`, `reportingComponent`) and `events.k8s.io/v1`
//! (`regarding`, `note`, `deprecatedSource`, `deprecatedFirstTimestamp`,
//! `deprecatedLastTimestamp`, `deprecatedCount`, `reportingController`).
//! Fields both share (`eventTime`, `series`, `action`, `reason`, `related`,
//! `type`, `reportingInstance`, metadata) pass through unchanged. The stored
//! form here is core `v1`, so field selectors are evaluated on it.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// `(events.k8s.io/v1 name, core v1 name)` of every renamed field.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Whether `rt` is the `events.k8s.io` view of the stored core Events.
pub fn is_events_v1(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io" && rt.plural == "events"
}

fn rename(obj: &Value, from_new: bool) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let renamed = RENAMES.iter().find_map(|(new, core)| {
            if from_new {
                (k == new).then_some(*core)
            } else {
                (k == core).then_some(*new)
            }
        });
        // A field of the other version that has no counterpart here
        // (`message` sent to events.k8s.io, say) is dropped, as decoding
        // into the typed struct drops unknown fields on the real server.
        let foreign = RENAMES
            .iter()
            .any(|(new, core)| if from_new { k == core } else { k == new });
        match renamed {
            Some(name) => {
                out.insert(name.to_string(), v.clone());
            }
            None if foreign => {}
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Converts an `events.k8s.io/v1` Event body into the stored core `v1` form.
pub fn to_core(obj: &Value) -> Value {
    let mut out = rename(obj, true);
    if let Some(o) = out.as_object_mut() {
        o.insert("apiVersion".into(), json!("v1"));
        // `involvedObject` is a required struct in core v1: always present.
        o.entry("involvedObject").or_insert_with(|| json!({}));
    }
    out
}

/// Converts a stored core `v1` Event into its `events.k8s.io/v1` form.
pub fn from_core(obj: &Value) -> Value {
    let mut out = rename(obj, false);
    if let Some(o) = out.as_object_mut() {
        o.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    }
    out
}

/// The value a selectable Event field has, or `None` when the field is not
/// special for Events. `source` falls back to the reporting controller the
/// way the real server's selectable field set does.
pub fn selectable(obj: &Value, field: &str) -> Option<String> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    match field {
        "source" => {
            let component = s(obj.pointer("/source/component"));
            Some(if component.is_empty() {
                s(obj.get("reportingComponent"))
            } else {
                component
            })
        }
        _ => None,
    }
}

/// Maps an `events.k8s.io` field label onto the stored core name.
pub fn core_field_label(field: &str) -> &str {
    match field.strip_prefix("regarding.") {
        Some(rest) => match rest {
            "kind" => "involvedObject.kind",
            "namespace" => "involvedObject.namespace",
            "name" => "involvedObject.name",
            "uid" => "involvedObject.uid",
            "apiVersion" => "involvedObject.apiVersion",
            "resourceVersion" => "involvedObject.resourceVersion",
            "fieldPath" => "involvedObject.fieldPath",
            _ => field,
        },
        None if field == "reportingController" => "reportingComponent",
        None => field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_ways() {
        let new = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Service", "name": "s"},
            "note": "hello", "reason": "Synced", "type": "Normal", "action": "Sync",
            "reportingController": "gantry", "reportingInstance": "gantry-0",
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:01.000000Z"},
            "deprecatedCount": 3,
        });
        let core = to_core(&new);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "s");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "gantry");
        assert_eq!(core["count"], 3);
        assert_eq!(core["series"]["count"], 2);
        assert!(core.get("note").is_none() && core.get("regarding").is_none());
        assert_eq!(from_core(&core), new);
    }

    #[test]
    fn source_selects_the_reporting_controller_when_empty() {
        let core = json!({"reportingComponent": "gantry"});
        assert_eq!(selectable(&core, "source").as_deref(), Some("gantry"));
        let core = json!({"source": {"component": "kubelet"}, "reportingComponent": "x"});
        assert_eq!(selectable(&core, "source").as_deref(), Some("kubelet"));
    }
}
