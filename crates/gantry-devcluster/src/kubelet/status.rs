//! The Pod status the dev kubelet reports: Running with ready conditions for
//! echo pods, not-ready when their node is down, and Pending/Unschedulable
//! for images the dev cluster cannot run. Times are carried over from the
//! current status so a pass that changes nothing writes nothing.

use std::net::Ipv4Addr;

use k8s_openapi::{
    api::core::v1::{Pod, PodStatus},
    jiff::Timestamp,
};
use serde_json::{Value, json};

use crate::{compare::normalized_without_times, nodes::format_time};

/// Where and how a pod runs.
pub struct Placement {
    /// Node address (`hostIP`).
    pub host_ip: Ipv4Addr,
    /// Pod address.
    pub pod_ip: Ipv4Addr,
    /// Whether every echo socket is bound and the node is up.
    pub ready: bool,
}

/// The status of a running echo pod.
pub fn running(pod: &Pod, at: &Placement, now: Timestamp) -> Value {
    let current = pod.status.as_ref();
    let ready = if at.ready { "True" } else { "False" };
    let mut conditions = vec![
        condition(current, "PodScheduled", "True", None, None, now),
        condition(current, "Initialized", "True", None, None, now),
    ];
    let (reason, message) = if at.ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some("the pod's node is not running"),
        )
    };
    conditions.push(condition(
        current,
        "ContainersReady",
        ready,
        reason,
        message,
        now,
    ));
    conditions.push(condition(current, "Ready", ready, reason, message, now));
    let start_time = current
        .and_then(|s| s.start_time.as_ref())
        .map(|t| format_time(t.0))
        .unwrap_or_else(|| format_time(now));
    let containers: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            let started_at = current
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|x| x.name == c.name))
                .and_then(|x| x.state.as_ref()?.running.as_ref()?.started_at.as_ref())
                .map(|t| format_time(t.0))
                .unwrap_or_else(|| start_time.clone());
            json!({
                "name": c.name,
                "image": c.image.clone().unwrap_or_default(),
                "imageID": c.image.clone().unwrap_or_default(),
                "containerID": format!("gantry-dev://{}/{}", pod.metadata.uid.as_deref().unwrap_or_default(), c.name),
                "ready": at.ready,
                "started": at.ready,
                "restartCount": 0,
                "state": {"running": {"startedAt": started_at}},
            })
        })
        .collect();
    json!({
        "phase": "Running",
        "conditions": conditions,
        "hostIP": at.host_ip.to_string(),
        "hostIPs": [{"ip": at.host_ip.to_string()}],
        "podIP": at.pod_ip.to_string(),
        "podIPs": [{"ip": at.pod_ip.to_string()}],
        "startTime": start_time,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    })
}

/// The status of a pod whose image cannot run here.
pub fn unschedulable(pod: &Pod, image: &str, now: Timestamp) -> Value {
    let message = format!("image {image} cannot run in the dev cluster; only gantry.dev/echo runs");
    json!({
        "phase": "Pending",
        "conditions": [condition(
            pod.status.as_ref(), "PodScheduled", "False", Some("Unschedulable"), Some(&message), now,
        )],
        "qosClass": "BestEffort",
    })
}

/// Whether writing `desired` would change the pod's status, times aside.
pub fn differs(pod: &Pod, desired: &Value) -> bool {
    let current = pod.status.clone().unwrap_or_default();
    // Round-trip the desired status through the typed struct so both sides
    // have the same shape before comparing.
    let desired: PodStatus = match serde_json::from_value(desired.clone()) {
        Ok(s) => s,
        Err(_) => return true,
    };
    normalized_without_times(&current) != normalized_without_times(&desired)
}

fn condition(
    current: Option<&PodStatus>,
    kind: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<&str>,
    now: Timestamp,
) -> Value {
    // Keep lastTransitionTime while the status stays the same.
    let since = current
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let mut c = json!({
        "type": kind,
        "status": status,
        "lastProbeTime": null,
        "lastTransitionTime": format_time(since),
    });
    if let Some(reason) = reason {
        c["reason"] = Value::from(reason);
    }
    if let Some(message) = message {
        c["message"] = Value::from(message);
    }
    c
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "echo".into(),
                    image: Some("gantry.dev/echo".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn placement(ready: bool) -> Placement {
        Placement {
            host_ip: Ipv4Addr::new(127, 0, 1, 1),
            pod_ip: Ipv4Addr::new(127, 1, 0, 1),
            ready,
        }
    }

    fn cond<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
            .expect("condition")
    }

    #[test]
    fn running_pod_is_ready_with_addresses() {
        let now = Timestamp::from_second(100).expect("time");
        let s = running(&pod(), &placement(true), now);
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "127.1.0.1");
        assert_eq!(s["hostIP"], "127.0.1.1");
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(cond(&s, kind)["status"], "True", "{kind}");
        }
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        let down = running(&pod(), &placement(false), now);
        assert_eq!(cond(&down, "Ready")["status"], "False");
    }

    #[test]
    fn a_second_pass_changes_nothing_and_keeps_times() {
        let mut p = pod();
        let first = running(
            &p,
            &placement(true),
            Timestamp::from_second(100).expect("time"),
        );
        assert!(differs(&p, &first));
        p.status = Some(serde_json::from_value(first.clone()).expect("status"));
        let later = Timestamp::from_second(500).expect("time");
        let second = running(&p, &placement(true), later);
        assert!(!differs(&p, &second));
        assert_eq!(
            cond(&second, "Ready")["lastTransitionTime"],
            cond(&first, "Ready")["lastTransitionTime"]
        );
        let flipped = running(&p, &placement(false), later);
        assert!(differs(&p, &flipped));
        assert_eq!(
            cond(&flipped, "Ready")["lastTransitionTime"],
            format_time(later)
        );
    }

    #[test]
    fn unschedulable_names_the_image() {
        let s = unschedulable(&pod(), "nginx:1", Timestamp::UNIX_EPOCH);
        assert_eq!(s["phase"], "Pending");
        let c = cond(&s, "PodScheduled");
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "Unschedulable");
        assert_eq!(
            c["message"],
            "image nginx:1 cannot run in the dev cluster; only gantry.dev/echo runs"
        );
    }
}
