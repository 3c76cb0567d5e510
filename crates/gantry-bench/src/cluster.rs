//! The benchmark's cluster: a namespace, Ready Nodes, Gantry's CRDs, one
//! `LoadBalancerClass`, and (for the local provider) a stand-in for the
//! datapath that reports every `LocalLoadBalancer` ready.
//!
//! The local provider reports a balancer ready only once a datapath says it
//! serves the current generation (`status.nodes.<node>`); until then the
//! controller re-checks it every `pending_requeue`. No datapath carries
//! traffic here, so the stand-in writes that report as one datapath
//! instance would, as soon as it sees a new generation.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::StreamExt;
use gantry_model::{LoadBalancerClass, local::LocalLoadBalancer};
use k8s_openapi::{
    api::core::v1::{Namespace, Node},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResourceExt, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::watcher::{self, Event},
};
use serde_json::json;

use crate::{
    ProviderChoice,
    child::{CLASS, POOL},
    error::{BenchError, Result},
};

/// Namespace of the benchmark's Services.
pub const NAMESPACE: &str = "bench";
/// Node name the datapath stand-in reports under.
const DATAPATH_NODE: &str = "bench-datapath";

/// Name of node `i`.
pub fn node_name(i: usize) -> String {
    format!("node-{i:04}")
}

/// Create the namespace, the CRDs, the class and `nodes` Ready Nodes.
pub async fn setup(client: &Client, nodes: usize, provider: ProviderChoice) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [LoadBalancerClass::crd(), LocalLoadBalancer::crd()] {
        crds.create(&PostParams::default(), &crd)
            .await
            .map_err(BenchError::kube(format!("creating CRD {}", crd.name_any())))?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))
        .map_err(|e| BenchError::Protocol(e.to_string()))?;
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .map_err(BenchError::kube("creating the namespace"))?;
    let spec = match provider {
        ProviderChoice::Local => json!({
            "provider": "local",
            "default": true,
            "local": { "pools": [POOL], "mode": "l2" },
        }),
        ProviderChoice::Counting => json!({ "provider": "aws", "default": true }),
    };
    let class = json!({
        "apiVersion": "gantry.dev/v1alpha1",
        "kind": "LoadBalancerClass",
        "metadata": { "name": CLASS },
        "spec": spec,
    });
    Api::<LoadBalancerClass>::all(client.clone())
        .patch(
            CLASS,
            &PatchParams::apply("gantry-bench"),
            &Patch::Apply(&class),
        )
        .await
        .map_err(BenchError::kube("creating the LoadBalancerClass"))?;
    for i in 0..nodes {
        add_node(client, i).await?;
    }
    Ok(())
}

/// Create Ready node `i` with a loopback InternalIP and a providerID.
pub async fn add_node(client: &Client, i: usize) -> Result<()> {
    let name = node_name(i);
    let base = u32::from(Ipv4Addr::new(127, 1, 0, 1));
    let address = Ipv4Addr::from(base.wrapping_add(i as u32));
    let node: Node = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name } },
        "spec": { "providerID": format!("bench://{name}") },
    }))
    .map_err(|e| BenchError::Protocol(e.to_string()))?;
    let api: Api<Node> = Api::all(client.clone());
    api.create(&PostParams::default(), &node)
        .await
        .map_err(BenchError::kube(format!("creating node {name}")))?;
    let status = json!({ "status": {
        "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady" }],
        "addresses": [
            { "type": "InternalIP", "address": address.to_string() },
            { "type": "Hostname", "address": name },
        ],
    }});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(BenchError::kube(format!("marking node {name} Ready")))?;
    Ok(())
}

/// The datapath stand-in: reports each new generation of every
/// `LocalLoadBalancer` as served. Counts its reports.
pub struct DatapathStandIn {
    task: tokio::task::JoinHandle<()>,
    reports: Arc<AtomicU64>,
}

impl DatapathStandIn {
    /// Start watching and reporting.
    pub fn start(client: &Client) -> Self {
        let api: Api<LocalLoadBalancer> = Api::all(client.clone());
        let reports = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&reports);
        let task = tokio::spawn(async move {
            let stream = watcher::watcher(api.clone(), watcher::Config::default());
            stream
                .for_each(|event| {
                    if let Ok(Event::Apply(obj) | Event::InitApply(obj)) = event
                        && let Some(generation) = unreported(&obj)
                    {
                        let api = api.clone();
                        let counter = Arc::clone(&counter);
                        tokio::spawn(async move {
                            if report(&api, &obj.name_any(), generation, &obj.spec.addresses)
                                .await
                                .is_ok()
                            {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                    futures::future::ready(())
                })
                .await;
        });
        Self { task, reports }
    }

    /// Reports written so far.
    pub fn reports(&self) -> u64 {
        self.reports.load(Ordering::Relaxed)
    }

    /// Stop.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The generation to report, if the stand-in has not reported it yet.
fn unreported(obj: &LocalLoadBalancer) -> Option<i64> {
    let generation = obj.metadata.generation.unwrap_or(0);
    let shown = obj
        .status
        .as_ref()
        .and_then(|s| s.nodes.get(DATAPATH_NODE))
        .map(|n| n.observed_generation);
    (shown.is_none_or(|g| g < generation)).then_some(generation)
}

async fn report(
    api: &Api<LocalLoadBalancer>,
    name: &str,
    generation: i64,
    addresses: &[std::net::IpAddr],
) -> Result<()> {
    // As the real datapath reports: the generation and the addresses it
    // serves at that generation.
    let patch = json!({ "status": { "nodes": { DATAPATH_NODE: {
        "observedGeneration": generation,
        "ready": true,
        "addresses": addresses,
    }}}});
    api.patch_status(
        name,
        &PatchParams::apply("gantry-bench-datapath"),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(BenchError::kube(format!("reporting {name} ready")))?;
    Ok(())
}
