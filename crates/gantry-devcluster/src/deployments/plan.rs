//! Pure decisions of the Deployment controller: the template hash, pod
//! names, which pods to create or delete in a rolling update, and the
//! Deployment status that `kubectl rollout status` and `helm --wait` read.

use k8s_openapi::{api::apps::v1::DeploymentStatus, jiff::Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::nodes::format_time;

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no
/// look-alike digits).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The `pod-template-hash` of a template, computed the way the Deployment
/// controller does: FNV-1a over the template (and collision count), printed
/// in decimal, then each digit mapped into [`ALPHABET`].
pub fn template_hash<T: Serialize>(template: &T, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    safe_encode(&h.to_string())
}

fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// Five random characters from [`ALPHABET`].
pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// What the controller knows about one owned, non-terminating pod.
#[derive(Debug, Clone)]
pub struct PodView {
    /// The pod's name.
    pub name: String,
    /// Its `pod-template-hash` label.
    pub hash: Option<String>,
    /// Whether its Ready condition is True.
    pub ready: bool,
}

/// What one pass should do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Pods of the current template to create.
    pub create: usize,
    /// Pods to delete.
    pub delete: Vec<String>,
}

/// Rolling update without surge limits: create every missing pod of the
/// current template at once, then delete old pods as new ones become ready.
/// `Recreate` deletes all old pods before creating new ones.
pub fn plan(desired: usize, hash: &str, pods: &[PodView], recreate: bool) -> Plan {
    let (mut new, mut old): (Vec<&PodView>, Vec<&PodView>) =
        pods.iter().partition(|p| p.hash.as_deref() == Some(hash));
    // Not-ready pods go first, so scale-down and rollouts keep serving pods.
    let order = |v: &mut Vec<&PodView>| {
        v.sort_by(|a, b| a.ready.cmp(&b.ready).then_with(|| b.name.cmp(&a.name)))
    };
    order(&mut new);
    order(&mut old);
    let mut out = Plan::default();
    if recreate && !old.is_empty() {
        out.delete = old.iter().map(|p| p.name.clone()).collect();
        return out;
    }
    if new.len() < desired {
        out.create = desired - new.len();
    } else {
        out.delete
            .extend(new.iter().take(new.len() - desired).map(|p| p.name.clone()));
    }
    let ready_new = new.iter().filter(|p| p.ready).count().min(desired);
    let keep_old = desired - ready_new;
    if old.len() > keep_old {
        out.delete.extend(
            old.iter()
                .take(old.len() - keep_old)
                .map(|p| p.name.clone()),
        );
    }
    out
}

/// The Deployment status for the given pods; condition times are carried
/// over from `current` while a condition's status holds.
pub fn status(
    generation: Option<i64>,
    desired: usize,
    hash_name: &str,
    hash: &str,
    pods: &[PodView],
    current: Option<&DeploymentStatus>,
    now: Timestamp,
) -> Value {
    let replicas = pods.len();
    let updated = pods
        .iter()
        .filter(|p| p.hash.as_deref() == Some(hash))
        .count();
    let ready = pods.iter().filter(|p| p.ready).count();
    let unavailable = desired.max(replicas).saturating_sub(ready);
    let available = ready >= desired;
    let complete = updated == desired && replicas == desired && ready >= desired;
    let conditions = vec![
        condition(
            current,
            "Available",
            available,
            if available {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if available {
                "Deployment has minimum availability.".to_string()
            } else {
                "Deployment does not have minimum availability.".to_string()
            },
            now,
        ),
        condition(
            current,
            "Progressing",
            true,
            if complete {
                "NewReplicaSetAvailable"
            } else {
                "ReplicaSetUpdated"
            },
            if complete {
                format!("ReplicaSet \"{hash_name}\" has successfully progressed.")
            } else {
                format!("ReplicaSet \"{hash_name}\" is progressing.")
            },
            now,
        ),
    ];
    let mut s = json!({
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": unavailable,
        "conditions": conditions,
    });
    if let Some(g) = generation {
        s["observedGeneration"] = Value::from(g);
    }
    s
}

fn condition(
    current: Option<&DeploymentStatus>,
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    now: Timestamp,
) -> Value {
    let status = if status { "True" } else { "False" };
    let previous = current
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind));
    let transition = previous
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.as_ref())
        .map_or(now, |t| t.0);
    let update = previous
        .filter(|c| c.status == status && c.reason.as_deref() == Some(reason))
        .and_then(|c| c.last_update_time.as_ref())
        .map_or(now, |t| t.0);
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": format_time(update),
        "lastTransitionTime": format_time(transition),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, hash: &str, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            hash: Some(hash.into()),
            ready,
        }
    }

    #[test]
    fn hash_is_stable_and_template_sensitive() {
        let a = template_hash(&json!({"spec": {"image": "a"}}), None);
        assert_eq!(a, template_hash(&json!({"spec": {"image": "a"}}), None));
        assert_ne!(a, template_hash(&json!({"spec": {"image": "b"}}), None));
        assert_ne!(a, template_hash(&json!({"spec": {"image": "a"}}), Some(1)));
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| ALPHABET.contains(&b)));
    }

    #[test]
    fn scale_up_and_down() {
        assert_eq!(plan(3, "h", &[pod("a", "h", true)], false).create, 2);
        let down = plan(
            1,
            "h",
            &[
                pod("a", "h", true),
                pod("b", "h", false),
                pod("c", "h", true),
            ],
            false,
        );
        assert_eq!(down.create, 0);
        assert_eq!(down.delete.len(), 2);
        assert!(
            down.delete.contains(&"b".to_string()),
            "not-ready pods go first"
        );
    }

    #[test]
    fn rolling_update_creates_new_before_deleting_old() {
        let old = [pod("o1", "old", true), pod("o2", "old", true)];
        let first = plan(2, "new", &old, false);
        assert_eq!(
            first,
            Plan {
                create: 2,
                delete: vec![]
            }
        );
        let half = [
            old[0].clone(),
            old[1].clone(),
            pod("n1", "new", true),
            pod("n2", "new", false),
        ];
        let second = plan(2, "new", &half, false);
        assert_eq!(second.create, 0);
        assert_eq!(
            second.delete.len(),
            1,
            "one new pod ready, one old pod may go"
        );
        let done = [
            old[0].clone(),
            pod("n1", "new", true),
            pod("n2", "new", true),
        ];
        assert_eq!(plan(2, "new", &done, false).delete, vec!["o1".to_string()]);
    }

    #[test]
    fn recreate_deletes_old_first() {
        let old = [pod("o1", "old", true)];
        assert_eq!(
            plan(1, "new", &old, true),
            Plan {
                create: 0,
                delete: vec!["o1".into()]
            }
        );
        assert_eq!(plan(1, "new", &[], true).create, 1);
    }

    #[test]
    fn status_counts_and_conditions() {
        let now = Timestamp::UNIX_EPOCH;
        let pods = [pod("a", "h", true), pod("b", "h", false)];
        let s = status(Some(4), 2, "web-h", "h", &pods, None, now);
        assert_eq!(s["replicas"], 2);
        assert_eq!(s["updatedReplicas"], 2);
        assert_eq!(s["readyReplicas"], 1);
        assert_eq!(s["availableReplicas"], 1);
        assert_eq!(s["unavailableReplicas"], 1);
        assert_eq!(s["observedGeneration"], 4);
        assert_eq!(s["conditions"][0]["type"], "Available");
        assert_eq!(s["conditions"][0]["status"], "False");
        let all = [pod("a", "h", true), pod("b", "h", true)];
        let s = status(Some(4), 2, "web-h", "h", &all, None, now);
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
    }
}
