//! Helpers of the Service (L4) tests: owners, nodes, listeners, the nodes'
//! instances in the emulator, and reading what it stores and was called.

use std::net::IpAddr;

use gantry_gcp::GcpProvider;
use gantry_model::{
    DesiredLoadBalancer, Owner, OwnerKind, ProviderKind,
    desired::{BackendNode, L4Listener, L4Spec, LoadBalancerSpec, Protocol},
};
use gce_sim::GceSim;
use google_cloud_compute_v1::model::Instance;
use serde_json::Value;

pub use super::of_kind;
use super::{CLUSTER, PROJECT};

pub const ZONE_A: &str = "us-central1-a";
pub const ZONE_B: &str = "us-central1-b";

pub fn owner(name: &str) -> Owner {
    Owner {
        cluster_id: CLUSTER.into(),
        kind: OwnerKind::Service,
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

pub fn node(name: &str, zone: &str) -> BackendNode {
    BackendNode {
        name: name.into(),
        address: IpAddr::from([10, 0, 0, 1]),
        provider_id: Some(format!("gce://{}/{zone}/{name}", PROJECT)),
        zone: Some(zone.into()),
    }
}

pub fn listener(protocol: Protocol, port: u16, node_port: u16) -> L4Listener {
    L4Listener {
        name: format!("{}-{port}", protocol.as_str().to_lowercase()),
        protocol,
        port,
        node_port,
    }
}

pub fn desired(owner: &Owner, class: &str, spec: L4Spec) -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: owner.clone(),
        class: class.into(),
        provider: ProviderKind::Gcp,
        spec: LoadBalancerSpec::L4(spec),
    }
}

/// Create the nodes' instances in the emulator, as a cluster would have them.
pub async fn instances(p: &GcpProvider, nodes: &[(&str, &str)]) {
    let api = p.api();
    for (name, zone) in nodes {
        api.mutate("instances.insert", || {
            api.clients
                .instances
                .insert()
                .set_project(PROJECT)
                .set_zone(*zone)
                .set_body(
                    Instance::new()
                        .set_name(*name)
                        .set_machine_type(format!("zones/{zone}/machineTypes/e2-standard-2")),
                )
                .send()
        })
        .await
        .expect("instance");
    }
}

/// Resources whose description names Gantry.
pub fn gantrys(sim: &GceSim) -> Vec<Value> {
    sim.resources()
        .into_iter()
        .filter(|r| {
            r["description"]
                .as_str()
                .is_some_and(|d| d.starts_with(gantry_gcp::labels::DESCRIPTION_PREFIX))
        })
        .collect()
}

/// Writes (and all calls) since the last reset, and reset.
pub fn take_calls(p: &GcpProvider) -> (u64, u64, Vec<&'static str>) {
    let log = p.calls();
    let mut log = log.lock();
    let out = (
        log.writes(),
        log.total(),
        log.order()
            .iter()
            .copied()
            .filter(|op| !gantry_gcp::is_read(op))
            .collect(),
    );
    log.clear();
    out
}

pub fn ends_with(v: &Value, suffix: &str) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(suffix))
}

/// Asserts the emulator holds exactly one Service chain: one of each
/// resource, and an instance group in each of `zones` zones.
pub fn assert_one_chain(sim: &GceSim, zones: usize) {
    for (kind, n) in [
        ("compute#address", 1),
        ("compute#forwardingRule", 1),
        ("compute#backendService", 1),
        ("compute#healthCheck", 1),
        ("compute#instanceGroup", zones),
        ("compute#firewall", 1),
    ] {
        assert_eq!(of_kind(sim, kind).len(), n, "{kind}");
    }
}
