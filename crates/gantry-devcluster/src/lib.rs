//! Simulated nodes for the emulated Kubernetes cluster.
//!
//! The API emulator stores objects but runs nothing; this crate plays the
//! part of the nodes so that Services carry real traffic on loopback:
//!
//! - Node objects with addresses, readiness and a heartbeat (`nodes`);
//! - a Deployment controller that creates Pods directly, without
//!   ReplicaSets (`deployments`);
//! - a kubelet that runs the echo server ([`echo`]) for pods whose image is
//!   `gantry.dev/echo`, each pod on its own loopback address (`kubelet`);
//! - the EndpointSlice controller (`endpointslices`);
//! - a kube-proxy-like forwarder per node: node ports on the node's address
//!   and health check node ports for `externalTrafficPolicy: Local` (`proxy`).
//!
//! Everything talks to the API through a `kube::Client`, so the same code
//! drives the in-process emulator or one running as a process.

mod compare;
mod deployments;
pub mod echo;
mod endpointslices;
mod error;
mod informers;
mod kubelet;
mod nodes;
mod proxy;
mod shared;

use std::{net::Ipv4Addr, sync::Arc, time::Duration};

use k8s_openapi::jiff::Timestamp;
use tokio::sync::Mutex;

pub use error::DevError;
pub use proxy::Protocol;

use crate::{
    deployments::Deployments,
    endpointslices::EndpointSlices,
    informers::Informers,
    kubelet::Kubelet,
    nodes::error_chain,
    proxy::{Proxy, TaskGuard},
    shared::{NodeEntry, Shared, nth_address, run_forever},
};

/// How the dev cluster is laid out.
#[derive(Debug, Clone)]
pub struct DevClusterOptions {
    /// How many nodes to start with.
    pub nodes: usize,
    /// The first node's address; node `i` (from 1) gets `base + i - 1`.
    pub node_address_base: Ipv4Addr,
    /// The first pod address; pods get the lowest free address from here.
    pub pod_address_base: Ipv4Addr,
    /// Node names are this prefix and the node's number.
    pub node_name_prefix: String,
    /// The `topology.kubernetes.io/zone` of every node, if any.
    pub zone: Option<String>,
    /// How often each up node posts its status.
    pub heartbeat_interval: Duration,
    /// How often controllers re-run without any change, as a safety net.
    pub resync_interval: Duration,
}

impl Default for DevClusterOptions {
    fn default() -> Self {
        DevClusterOptions {
            nodes: 3,
            node_address_base: Ipv4Addr::new(127, 0, 1, 1),
            pod_address_base: Ipv4Addr::new(127, 1, 0, 1),
            node_name_prefix: "node-".to_string(),
            zone: None,
            heartbeat_interval: Duration::from_secs(10),
            resync_interval: Duration::from_secs(5),
        }
    }
}

/// A node of the dev cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimNode {
    /// The Node object's name.
    pub name: String,
    /// The node's address: node ports and health checks listen here.
    pub address: Ipv4Addr,
}

/// A running dev cluster. Dropping it stops every listener and controller;
/// [`DevCluster::shutdown`] also removes the Node objects.
pub struct DevCluster {
    shared: Arc<Shared>,
    kubelet: Arc<Mutex<Kubelet>>,
    proxy: Arc<Mutex<Proxy>>,
    tasks: Vec<TaskGuard>,
}

impl DevCluster {
    /// Registers the nodes, starts the controllers and waits until the
    /// watches have listed once.
    pub async fn start(
        client: kube::Client,
        opts: DevClusterOptions,
    ) -> Result<DevCluster, DevError> {
        let count = opts.nodes;
        let shared = Arc::new(Shared::new(client, opts));
        for _ in 0..count {
            add_entry(&shared).await?;
        }
        let (informers, informer_tasks) = Informers::start(&shared).await?;
        let mut tasks: Vec<TaskGuard> = informer_tasks.into_iter().map(TaskGuard::new).collect();

        let kubelet = Arc::new(Mutex::new(Kubelet::new(
            shared.clone(),
            informers.pods.clone(),
        )));
        let proxy = Arc::new(Mutex::new(Proxy::new(
            shared.clone(),
            informers.services.clone(),
            informers.slices.clone(),
        )));
        let deployments = Arc::new(Deployments::new(
            shared.clone(),
            informers.deployments.clone(),
            informers.pods.clone(),
        ));
        let slices = Arc::new(EndpointSlices::new(
            shared.clone(),
            informers.services.clone(),
            informers.pods.clone(),
        ));
        {
            let k = kubelet.clone();
            tasks.push(TaskGuard::new(tokio::spawn(run_forever(
                shared.clone(),
                move || {
                    let k = k.clone();
                    async move { k.lock().await.pass().await }
                },
            ))));
        }
        {
            let p = proxy.clone();
            tasks.push(TaskGuard::new(tokio::spawn(run_forever(
                shared.clone(),
                move || {
                    let p = p.clone();
                    async move { p.lock().await.pass().await }
                },
            ))));
        }
        tasks.push(TaskGuard::new(tokio::spawn(run_forever(
            shared.clone(),
            move || {
                let d = deployments.clone();
                async move { d.pass().await }
            },
        ))));
        tasks.push(TaskGuard::new(tokio::spawn(run_forever(
            shared.clone(),
            move || {
                let s = slices.clone();
                async move { s.pass().await }
            },
        ))));
        tasks.push(TaskGuard::new(tokio::spawn(nodes::heartbeat(
            shared.clone(),
        ))));
        Ok(DevCluster {
            shared,
            kubelet,
            proxy,
            tasks,
        })
    }

    /// The nodes, in the order they were added.
    pub fn nodes(&self) -> Vec<SimNode> {
        self.shared
            .nodes()
            .into_iter()
            .map(|n| SimNode {
                name: n.name,
                address: n.address,
            })
            .collect()
    }

    /// Simulates a node crash: its node ports and health checks close
    /// (connections are refused), its pods stop and turn not ready, and its
    /// Node reports Ready=False. Returns once the listeners are closed.
    pub async fn stop_node(&self, name: &str) -> Result<(), DevError> {
        let entry = self.set_up(name, false)?;
        self.proxy.lock().await.pass().await;
        self.kubelet.lock().await.pass().await;
        nodes::post_status(&self.shared, &entry).await?;
        self.shared.poke();
        Ok(())
    }

    /// Brings a stopped node back: Ready=True, its pods' servers and its
    /// listeners start again.
    pub async fn start_node(&self, name: &str) -> Result<(), DevError> {
        let entry = self.set_up(name, true)?;
        nodes::post_status(&self.shared, &entry).await?;
        self.kubelet.lock().await.pass().await;
        self.proxy.lock().await.pass().await;
        self.shared.poke();
        Ok(())
    }

    /// Adds one more node, numbered after the last.
    pub async fn add_node(&self) -> Result<SimNode, DevError> {
        let entry = add_entry(&self.shared).await?;
        self.shared.poke();
        Ok(SimNode {
            name: entry.name,
            address: entry.address,
        })
    }

    /// Stops everything and removes the Node objects. Pods and slices stay,
    /// as they would when a cluster's nodes go away.
    pub async fn shutdown(self) {
        let DevCluster {
            shared,
            kubelet,
            proxy,
            tasks,
        } = self;
        for task in tasks {
            task.stop().await;
        }
        proxy.lock().await.clear().await;
        drop(kubelet);
        for node in shared.nodes() {
            if let Err(error) = nodes::remove(&shared, &node.name).await {
                tracing::warn!(error = %error_chain(&error), node = %node.name, "Node removal failed");
            }
        }
    }

    fn set_up(&self, name: &str, up: bool) -> Result<NodeEntry, DevError> {
        let mut nodes = self.shared.nodes.write();
        let entry = nodes
            .iter_mut()
            .find(|n| n.name == name)
            .ok_or_else(|| DevError::UnknownNode(name.to_string()))?;
        if entry.up != up {
            entry.up = up;
            entry.ready_since = Timestamp::now();
        }
        Ok(entry.clone())
    }
}

/// Registers the next node and records it as up.
async fn add_entry(shared: &Arc<Shared>) -> Result<NodeEntry, DevError> {
    let index = shared.nodes.read().len();
    let offset = u32::try_from(index)
        .map_err(|_| DevError::AddressesExhausted(shared.opts.node_address_base))?;
    let address = nth_address(shared.opts.node_address_base, offset)
        .ok_or(DevError::AddressesExhausted(shared.opts.node_address_base))?;
    let entry = NodeEntry {
        name: format!("{}{}", shared.opts.node_name_prefix, index + 1),
        address,
        up: true,
        ready_since: Timestamp::now(),
    };
    nodes::register(shared, &entry).await?;
    shared.nodes.write().push(entry.clone());
    Ok(entry)
}
