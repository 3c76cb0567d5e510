//! Content comparison that ignores what the server may add or drop (nulls,
//! empty lists and maps) and, where asked, timestamps; controllers use it to
//! skip writes that would change nothing.

use serde::Serialize;
use serde_json::Value;

/// Keys holding times that change without the content changing.
const TIME_KEYS: &[&str] = &[
    "lastTransitionTime",
    "lastHeartbeatTime",
    "lastProbeTime",
    "lastUpdateTime",
    "startTime",
    "startedAt",
];

/// Serialises `v` and drops nulls, empty arrays and empty objects, recursively.
pub fn normalized<T: Serialize>(v: &T) -> Value {
    let mut value = serde_json::to_value(v).unwrap_or(Value::Null);
    prune(&mut value, false);
    value
}

/// Like [`normalized`], also dropping the timestamp keys.
pub fn normalized_without_times<T: Serialize>(v: &T) -> Value {
    let mut value = serde_json::to_value(v).unwrap_or(Value::Null);
    prune(&mut value, true);
    value
}

fn prune(value: &mut Value, drop_times: bool) {
    match value {
        Value::Object(map) => {
            if drop_times {
                for key in TIME_KEYS {
                    map.remove(*key);
                }
            }
            for v in map.values_mut() {
                prune(v, drop_times);
            }
            map.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                prune(v, drop_times);
            }
        }
        _ => {}
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_and_null_fields_do_not_count() {
        let a = json!({"a": 1, "b": null, "c": [], "d": {"e": {}}});
        let b = json!({"a": 1});
        assert_eq!(normalized(&a), normalized(&b));
        assert_ne!(normalized(&json!({"a": 2})), normalized(&b));
    }

    #[test]
    fn times_are_ignored_only_when_asked() {
        let a = json!({"conditions": [{"type": "Ready", "lastTransitionTime": "x"}]});
        let b = json!({"conditions": [{"type": "Ready", "lastTransitionTime": "y"}]});
        assert_ne!(normalized(&a), normalized(&b));
        assert_eq!(normalized_without_times(&a), normalized_without_times(&b));
    }

    #[test]
    fn array_order_matters() {
        assert_ne!(normalized(&json!([1, 2])), normalized(&json!([2, 1])));
    }
}
