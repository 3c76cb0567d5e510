//! Node objects for the simulated nodes: registration, the heartbeat a
//! kubelet would post, readiness flips on stop/start, and removal.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::core::v1::{Node, NodeSpec},
    jiff::Timestamp,
};
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{
    DevError,
    shared::{NodeEntry, Shared},
};

/// The label naming the node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The `spec.providerID` of a dev node.
pub fn provider_id(name: &str) -> String {
    format!("gantry-dev://{name}")
}

/// The Node object (without status) for a dev node.
pub fn node_object(entry: &NodeEntry, zone: Option<&str>) -> Node {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), entry.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        (
            "kubernetes.io/arch".to_string(),
            std::env::consts::ARCH.to_string(),
        ),
    ]);
    if let Some(zone) = zone {
        labels.insert(ZONE_LABEL.to_string(), zone.to_string());
    }
    Node {
        metadata: ObjectMeta {
            name: Some(entry.name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            provider_id: Some(provider_id(&entry.name)),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The status a dev node posts: addresses, capacity and conditions.
pub fn node_status(entry: &NodeEntry, now: Timestamp) -> Value {
    let time = |t: Timestamp| Value::from(format_time(t));
    let ready = if entry.up {
        json!({
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        })
    } else {
        json!({
            "type": "Ready", "status": "False", "reason": "KubeletNotReady",
            "message": "the node was stopped",
        })
    };
    let mut conditions = vec![ready];
    for (kind, reason) in [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
    ] {
        conditions.push(json!({
            "type": kind, "status": "False", "reason": reason,
            "message": format!("kubelet reports {reason}"),
        }));
    }
    for c in &mut conditions {
        c["lastHeartbeatTime"] = time(now);
        c["lastTransitionTime"] = time(entry.ready_since);
    }
    let capacity =
        json!({"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "addresses": [
            {"type": "InternalIP", "address": entry.address.to_string()},
            {"type": "Hostname", "address": entry.name},
        ],
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": std::env::consts::ARCH,
            "operatingSystem": "linux",
            "osImage": "Gantry dev cluster",
            "kernelVersion": "",
            "kubeletVersion": "v1.35.0",
            "kubeProxyVersion": "v1.35.0",
            "containerRuntimeVersion": "gantry-dev://0.1",
            "machineID": entry.name,
            "systemUUID": entry.name,
            "bootID": entry.name,
        },
    })
}

/// Kubernetes' wire format for `metav1.Time` (seconds precision, UTC).
pub fn format_time(t: Timestamp) -> String {
    k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t)
        .unwrap_or_else(|_| t.to_string())
}

/// Creates (or takes over) the Node object and posts its first status.
pub async fn register(shared: &Shared, entry: &NodeEntry) -> Result<(), DevError> {
    let api: Api<Node> = Api::all(shared.client.clone());
    let node = node_object(entry, shared.opts.zone.as_deref());
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // A Node left over from an earlier run: take it over rather than fail.
            let patch = json!({"metadata": {"labels": node.metadata.labels}, "spec": node.spec});
            api.patch(&entry.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| DevError::RegisterNode {
                    name: entry.name.clone(),
                    source: Box::new(source),
                })?;
        }
        Err(source) => {
            return Err(DevError::RegisterNode {
                name: entry.name.clone(),
                source: Box::new(source),
            });
        }
    }
    post_status(shared, entry).await
}

/// Posts the node's current status (the heartbeat).
pub async fn post_status(shared: &Shared, entry: &NodeEntry) -> Result<(), DevError> {
    let api: Api<Node> = Api::all(shared.client.clone());
    let patch = json!({"status": node_status(entry, Timestamp::now())});
    api.patch_status(&entry.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| DevError::NodeStatus {
            name: entry.name.clone(),
            source: Box::new(source),
        })
}

/// Deletes the Node object; a missing one counts as removed.
pub async fn remove(shared: &Shared, name: &str) -> Result<(), DevError> {
    let api: Api<Node> = Api::all(shared.client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(DevError::RemoveNode {
            name: name.to_string(),
            source: Box::new(source),
        }),
    }
}

/// Posts a heartbeat for every up node, forever. Stopped nodes stay silent,
/// like a crashed kubelet.
pub async fn heartbeat(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.opts.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for entry in shared.nodes().into_iter().filter(|n| n.up) {
            if let Err(error) = post_status(&shared, &entry).await {
                tracing::warn!(error = %error_chain(&error), node = %entry.name, "Heartbeat failed");
            }
        }
    }
}

/// An error and its sources on one line, for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn entry(up: bool) -> NodeEntry {
        NodeEntry {
            name: "node-2".into(),
            address: Ipv4Addr::new(127, 0, 1, 2),
            up,
            ready_since: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn node_object_carries_identity_labels() {
        let node = node_object(&entry(true), Some("zone-a"));
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "node-2");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels[ZONE_LABEL], "zone-a");
        assert_eq!(
            node.spec.and_then(|s| s.provider_id).as_deref(),
            Some("gantry-dev://node-2")
        );
        let no_zone = node_object(&entry(true), None)
            .metadata
            .labels
            .expect("labels");
        assert!(!no_zone.contains_key(ZONE_LABEL));
    }

    #[test]
    fn status_reports_address_and_readiness() {
        let now = Timestamp::from_second(1_000).expect("time");
        let up = node_status(&entry(true), now);
        assert_eq!(up["addresses"][0]["type"], "InternalIP");
        assert_eq!(up["addresses"][0]["address"], "127.0.1.2");
        assert_eq!(up["addresses"][1]["type"], "Hostname");
        assert_eq!(up["conditions"][0]["type"], "Ready");
        assert_eq!(up["conditions"][0]["status"], "True");
        assert_eq!(
            up["conditions"][0]["lastHeartbeatTime"],
            "1970-01-01T00:16:40Z"
        );
        assert_eq!(
            up["conditions"][0]["lastTransitionTime"],
            "1970-01-01T00:00:00Z"
        );
        let down = node_status(&entry(false), now);
        assert_eq!(down["conditions"][0]["status"], "False");
    }
}
