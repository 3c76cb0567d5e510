//! The kube-proxy role: on every up node's address, a listener per node
//! port forwarding to a usable endpoint, and a health check listener per
//! `externalTrafficPolicy: Local` Service. A node port is bound only while
//! it has an endpoint to forward to from that node, so a connection with
//! nowhere to go is refused at once, as kube-proxy's REJECT rule does.

pub mod health;
pub mod table;
pub mod tcp;
pub mod udp;

use std::{
    collections::{HashMap, HashSet},
    net::{SocketAddr, SocketAddrV4},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use kube::runtime::reflector::Store;
use tokio::{
    net::{TcpListener, UdpSocket},
    sync::watch,
    task::JoinHandle,
};

use crate::{DevError, nodes::error_chain, shared::Shared};
use table::ProxyTable;

/// A Service port protocol the dev cluster carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// Parses a Kubernetes protocol field (unset means TCP); SCTP and
    /// anything else are not carried.
    pub fn parse(s: Option<&str>) -> Option<Protocol> {
        match s {
            None | Some("TCP") => Some(Protocol::Tcp),
            Some("UDP") => Some(Protocol::Udp),
            Some(_) => None,
        }
    }

    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// Aborts its task when dropped, so dropping a listener stops it and every
/// connection it owns.
#[derive(Debug)]
pub(crate) struct TaskGuard(Option<JoinHandle<()>>);

impl TaskGuard {
    /// Guards `handle`.
    pub fn new(handle: JoinHandle<()>) -> Self {
        TaskGuard(Some(handle))
    }

    /// Aborts the task and waits until it is gone (its sockets closed).
    pub async fn stop(mut self) {
        if let Some(handle) = self.0.take() {
            handle.abort();
            let _ = handle.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

/// What one node listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ListenerKey {
    NodePort(Protocol, u16),
    Health(u16),
}

/// The forwarders of every node.
pub(crate) struct Proxy {
    shared: Arc<Shared>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    table: watch::Sender<Arc<ProxyTable>>,
    listeners: HashMap<String, HashMap<ListenerKey, TaskGuard>>,
}

impl Proxy {
    pub fn new(
        shared: Arc<Shared>,
        services: Store<Service>,
        slices: Store<EndpointSlice>,
    ) -> Self {
        Proxy {
            shared,
            services,
            slices,
            table: watch::Sender::new(Arc::new(ProxyTable::default())),
            listeners: HashMap::new(),
        }
    }

    /// Rebuilds the table and brings every node's listeners in line with it.
    pub async fn pass(&mut self) {
        let table = Arc::new(table::build(&self.services.state(), &self.slices.state()));
        // Connections read the table when they arrive, so endpoint changes
        // take effect without rebinding anything.
        self.table.send_if_modified(|current| {
            if **current == *table {
                false
            } else {
                *current = table.clone();
                true
            }
        });
        let mut failed = false;
        let nodes = self.shared.nodes();
        let known: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        self.listeners
            .retain(|node, _| known.contains(node.as_str()));
        for node in nodes {
            let bound = self.listeners.entry(node.name.clone()).or_default();
            if !node.up {
                stop_all(bound.drain().map(|(_, g)| g)).await;
                continue;
            }
            let mut wanted: HashSet<ListenerKey> = HashSet::new();
            for (&(protocol, port), route) in &table.node_ports {
                if !route.usable(&node.name).is_empty() {
                    wanted.insert(ListenerKey::NodePort(protocol, port));
                }
            }
            wanted.extend(table.health.keys().map(|&p| ListenerKey::Health(p)));
            // Stopped (not just dropped) so a closed port is closed by the
            // time the pass returns, which `stop_node` relies on.
            stop_all(
                bound
                    .extract_if(|key, _| !wanted.contains(key))
                    .map(|(_, g)| g),
            )
            .await;
            for key in wanted {
                if bound.contains_key(&key) {
                    continue;
                }
                let ctx = Ctx {
                    node: node.name.clone(),
                    table: self.table.subscribe(),
                };
                match start(key, SocketAddrV4::new(node.address, port_of(key)), ctx).await {
                    Ok(guard) => {
                        bound.insert(key, guard);
                    }
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), node = %node.name, "Node port bind failed; retrying");
                        failed = true;
                    }
                }
            }
        }
        if failed {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                shared.poke();
            });
        }
    }

    /// Stops every listener of every node.
    pub async fn clear(&mut self) {
        for (_, bound) in self.listeners.drain() {
            stop_all(bound.into_values()).await;
        }
    }
}

async fn stop_all(guards: impl IntoIterator<Item = TaskGuard>) {
    let guards: Vec<TaskGuard> = guards.into_iter().collect();
    for g in guards {
        g.stop().await;
    }
}

/// What a listener task needs to route.
#[derive(Clone)]
pub(crate) struct Ctx {
    /// The node it listens for.
    pub node: String,
    /// The latest table.
    pub table: watch::Receiver<Arc<ProxyTable>>,
}

fn port_of(key: ListenerKey) -> u16 {
    match key {
        ListenerKey::NodePort(_, p) | ListenerKey::Health(p) => p,
    }
}

async fn start(key: ListenerKey, addr: SocketAddrV4, ctx: Ctx) -> Result<TaskGuard, DevError> {
    let addr = SocketAddr::V4(addr);
    let bind_err = |protocol: Protocol| {
        move |source| DevError::Bind {
            protocol: protocol.as_str(),
            addr,
            source,
        }
    };
    let task = match key {
        ListenerKey::NodePort(Protocol::Tcp, port) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(bind_err(Protocol::Tcp))?;
            tokio::spawn(tcp::serve(listener, port, ctx))
        }
        ListenerKey::NodePort(Protocol::Udp, port) => {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(bind_err(Protocol::Udp))?;
            tokio::spawn(udp::serve(socket, port, ctx))
        }
        ListenerKey::Health(port) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(bind_err(Protocol::Tcp))?;
            tokio::spawn(health::serve(listener, port, ctx))
        }
    };
    Ok(TaskGuard::new(task))
}
