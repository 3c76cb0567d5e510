//! The dev kubelet and scheduler in one: binds echo pods round-robin to up
//! nodes, gives them an address from the pod range, runs an echo server per
//! port, reports status, and finishes graceful deletions. Pods with other
//! images are reported unschedulable.

pub mod ips;
pub mod spec;
pub mod status;

use std::{
    collections::{HashMap, HashSet},
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::{api::core::v1::Pod, jiff::Timestamp};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::reflector::Store,
};
use serde_json::{Value, json};

use crate::{
    DevError,
    echo::{EchoIdentity, EchoServer},
    nodes::error_chain,
    shared::{NodeEntry, Shared},
};
use ips::IpPool;
use status::Placement;

/// What the kubelet keeps about a pod it runs.
struct Slot {
    node: String,
    ip: Ipv4Addr,
    servers: Vec<EchoServer>,
}

/// The pod runtime for every node of the dev cluster.
pub(crate) struct Kubelet {
    shared: Arc<Shared>,
    pods: Store<Pod>,
    slots: HashMap<String, Slot>,
    pool: IpPool,
    next_node: usize,
    deleting: HashSet<String>,
}

impl Kubelet {
    pub fn new(shared: Arc<Shared>, pods: Store<Pod>) -> Self {
        let pool = IpPool::new(shared.opts.pod_address_base);
        Kubelet {
            shared,
            pods,
            slots: HashMap::new(),
            pool,
            next_node: 0,
            deleting: HashSet::new(),
        }
    }

    /// One level-triggered pass over every pod.
    pub async fn pass(&mut self) {
        let nodes = self.shared.nodes();
        let mut seen = HashSet::new();
        for pod in self.pods.state() {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            seen.insert(uid.clone());
            if let Err(error) = self.sync_pod(&uid, &pod, &nodes).await {
                tracing::warn!(
                    error = %error_chain(&error),
                    pod = pod.metadata.name.as_deref().unwrap_or_default(),
                    "Pod sync failed"
                );
            }
        }
        // Pods gone from the API: stop their servers, free their addresses.
        let gone: Vec<String> = self
            .slots
            .keys()
            .filter(|uid| !seen.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(mut slot) = self.slots.remove(&uid) {
                stop_servers(&mut slot.servers).await;
                self.pool.release(slot.ip);
            }
        }
        self.deleting.retain(|uid| seen.contains(uid));
    }

    async fn sync_pod(
        &mut self,
        uid: &str,
        pod: &Pod,
        nodes: &[NodeEntry],
    ) -> Result<(), DevError> {
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), ns);
        if pod.metadata.deletion_timestamp.is_some() {
            // The containers stop at once, so the pod stops being ready
            // (and serving) before the deletion completes.
            if let Some(slot) = self.slots.get_mut(uid) {
                stop_servers(&mut slot.servers).await;
                if let Some(node) = nodes.iter().find(|n| n.name == slot.node) {
                    let placement = Placement {
                        host_ip: node.address,
                        pod_ip: slot.ip,
                        ready: false,
                    };
                    let desired = status::running(pod, &placement, Timestamp::now());
                    if let Err(error) = write_status(&api, ns, name, pod, &desired).await {
                        tracing::debug!(error = %error_chain(&error), pod = %name, "Status of a terminating pod not written");
                    }
                }
            }
            return self.terminate(uid, &api, ns, name).await;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return Ok(());
        }
        if let Some(image) = spec::foreign_image(pod) {
            let desired = status::unschedulable(pod, &image, Timestamp::now());
            return write_status(&api, ns, name, pod, &desired).await;
        }
        let assigned = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .or_else(|| self.slots.get(uid).map(|s| s.node.clone()));
        let node_name = match assigned {
            Some(n) => n,
            None => {
                let Some(node) = self.pick_node(nodes) else {
                    let desired = no_node_status(pod, nodes.len());
                    return write_status(&api, ns, name, pod, &desired).await;
                };
                bind(&api, ns, name, &node).await?;
                node
            }
        };
        // A pod bound to a node that is not ours belongs to someone else.
        let Some(node) = nodes.iter().find(|n| n.name == node_name) else {
            return Ok(());
        };
        let slot = match self.slots.remove(uid) {
            Some(slot) => slot,
            None => self.new_slot(pod, node)?,
        };
        let slot = self.slots.entry(uid.to_string()).or_insert(slot);
        let ready = if node.up {
            ensure_servers(&self.shared, slot, pod, name).await
        } else {
            stop_servers(&mut slot.servers).await;
            false
        };
        let placement = Placement {
            host_ip: node.address,
            pod_ip: slot.ip,
            ready,
        };
        let desired = status::running(pod, &placement, Timestamp::now());
        write_status(&api, ns, name, pod, &desired).await
    }

    fn new_slot(&mut self, pod: &Pod, node: &NodeEntry) -> Result<Slot, DevError> {
        // Keep the address an earlier run gave the pod, if it is still free.
        let previous = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .filter(|ip| self.pool.claim(*ip));
        let ip = match previous {
            Some(ip) => ip,
            None => self.pool.allocate().ok_or(DevError::AddressesExhausted(
                self.shared.opts.pod_address_base,
            ))?,
        };
        Ok(Slot {
            node: node.name.clone(),
            ip,
            servers: Vec::new(),
        })
    }

    /// Round-robin over up nodes.
    fn pick_node(&mut self, nodes: &[NodeEntry]) -> Option<String> {
        let up: Vec<&NodeEntry> = nodes.iter().filter(|n| n.up).collect();
        if up.is_empty() {
            return None;
        }
        let node = up[self.next_node % up.len()].name.clone();
        self.next_node = self.next_node.wrapping_add(1);
        Some(node)
    }

    /// A pod being deleted: stop its servers at once, then confirm the
    /// deletion with a zero grace period as the kubelet does. Finalizers stay
    /// untouched, so the API keeps the object until their owners let go.
    async fn terminate(
        &mut self,
        uid: &str,
        api: &Api<Pod>,
        ns: &str,
        name: &str,
    ) -> Result<(), DevError> {
        if !self.deleting.insert(uid.to_string()) {
            return Ok(());
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(source) => {
                self.deleting.remove(uid);
                Err(DevError::Delete {
                    kind: "Pod",
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    source: Box::new(source),
                })
            }
        }
    }
}

/// Binds every echo socket of the pod if not all are bound; true when all are.
async fn ensure_servers(shared: &Arc<Shared>, slot: &mut Slot, pod: &Pod, name: &str) -> bool {
    let listens = spec::listens(pod);
    if slot.servers.len() == listens.len() {
        return true;
    }
    stop_servers(&mut slot.servers).await;
    for listen in listens {
        let identity = EchoIdentity {
            pod: name.to_string(),
            node: slot.node.clone(),
            text: listen.text.clone(),
        };
        let addr = SocketAddr::from((slot.ip, listen.port));
        match EchoServer::bind(addr, listen.protocol, identity).await {
            Ok(server) => slot.servers.push(server),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), pod = %name, "Echo bind failed; retrying");
                stop_servers(&mut slot.servers).await;
                retry_soon(shared);
                return false;
            }
        }
    }
    true
}

/// Stops servers and waits until their sockets are closed.
async fn stop_servers(servers: &mut Vec<EchoServer>) {
    for server in servers.drain(..) {
        server.stop().await;
    }
}

/// Pokes the controllers again shortly, so a failed bind is retried
/// without waiting for the resync interval.
fn retry_soon(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        shared.poke();
    });
}

/// Assigns the pod to a node through the `binding` subresource, falling
/// back to setting `spec.nodeName` for API servers that do not serve it.
async fn bind(api: &Api<Pod>, ns: &str, name: &str, node: &str) -> Result<(), DevError> {
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let err = |source| DevError::Update {
        kind: "Pod",
        namespace: ns.to_string(),
        name: name.to_string(),
        source: Box::new(source),
    };
    match api
        .create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405) => {
            let patch = json!({"spec": {"nodeName": node}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(err)
        }
        Err(source) => Err(err(source)),
    }
}

fn no_node_status(pod: &Pod, nodes: usize) -> Value {
    let mut s = status::unschedulable(pod, "", Timestamp::now());
    s["conditions"][0]["message"] =
        Value::from(format!("0/{nodes} nodes are available: no node is ready"));
    s
}

async fn write_status(
    api: &Api<Pod>,
    ns: &str,
    name: &str,
    pod: &Pod,
    desired: &Value,
) -> Result<(), DevError> {
    if !status::differs(pod, desired) {
        return Ok(());
    }
    let patch = json!({"status": desired});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| DevError::Update {
            kind: "Pod",
            namespace: ns.to_string(),
            name: name.to_string(),
            source: Box::new(source),
        })
}
