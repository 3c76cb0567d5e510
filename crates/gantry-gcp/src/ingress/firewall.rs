//! The firewall rule that lets Google's front ends and health checkers
//! reach the backends' node ports. An Application Load Balancer's proxies
//! and health checks come from `130.211.0.0/22` and `35.191.0.0/16`; without
//! an allow rule for them on the nodes' network every backend stays
//! unhealthy. One rule per Ingress, on the node ports (and health-check
//! ports) of its backends, on the network of its nodes.

use std::collections::BTreeSet;

use gantry_model::{
    ProviderError,
    desired::{BackendNode, HealthCheck},
    provider::Action,
};
use google_cloud_compute_v1::model::{
    Firewall,
    firewall::{Allowed, Direction},
};

use super::{cx::Cx, groups::parse_provider_id, wanted::Wanted};
use crate::api::request_id;

/// Where Google's proxies and health checks connect from.
pub const SOURCE_RANGES: [&str; 2] = ["130.211.0.0/22", "35.191.0.0/16"];

/// Role of the rule (name and description).
pub const ROLE: &str = "fw";

/// The TCP ports the backends answer proxies and health checks on.
fn ports(w: &Wanted) -> Vec<String> {
    let mut ports = BTreeSet::new();
    for b in &w.backends {
        ports.insert(b.node_port);
        if let HealthCheck::Http { port, .. } = &b.check {
            ports.insert(*port);
        }
    }
    ports.iter().map(u16::to_string).collect()
}

/// The network of the first node's VM, so the rule lands where the nodes
/// are; `None` (the project's default network) when it cannot be read.
async fn network(cx: &Cx<'_>, nodes: &[BackendNode]) -> Result<Option<String>, ProviderError> {
    let Some((project, zone, instance)) = nodes
        .iter()
        .find_map(|n| n.provider_id.as_deref().and_then(parse_provider_id))
    else {
        return Ok(None);
    };
    let api = cx.api;
    let vm = cx
        .get("instances.get", || {
            api.clients
                .instances
                .get()
                .set_project(project)
                .set_zone(zone)
                .set_instance(instance)
                .send()
        })
        .await?;
    Ok(vm.and_then(|vm| {
        vm.network_interfaces
            .first()
            .and_then(|nic| nic.network.clone())
    }))
}

fn shape(f: &Firewall) -> (Vec<String>, BTreeSet<String>) {
    let mut ports: Vec<String> = f
        .allowed
        .iter()
        .filter(|a| a.ip_protocol.as_deref() == Some("tcp"))
        .flat_map(|a| a.ports.clone())
        .collect();
    ports.sort_by_key(|p| p.parse::<u32>().unwrap_or(u32::MAX));
    (ports, f.source_ranges.iter().cloned().collect())
}

/// Create or correct the Ingress's firewall rule.
pub async fn ensure(cx: &Cx<'_>, w: &Wanted, nodes: &[BackendNode]) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = w.firewall.as_str();
    let ports = ports(w);
    let allowed = Allowed::new()
        .set_ip_protocol("tcp")
        .set_ports(ports.clone());
    let body = Firewall::new()
        .set_name(name)
        .set_description(cx.description(ROLE))
        .set_direction(Direction::Ingress)
        .set_source_ranges(SOURCE_RANGES)
        .set_allowed([allowed]);
    let detail = format!("tcp:{} from the load balancer ranges", ports.join(","));
    let have = cx
        .get("firewalls.get", || {
            api.clients
                .firewalls
                .get()
                .set_project(api.project.clone())
                .set_firewall(name)
                .send()
        })
        .await?;
    let rid = request_id();
    let Some(have) = have else {
        let body = body.set_or_clear_network(network(cx, nodes).await?);
        return cx
            .create(
                ("firewall", name),
                detail,
                "firewalls.insert",
                || {
                    api.clients
                        .firewalls
                        .insert()
                        .set_project(api.project.clone())
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
                || async {
                    let found = api
                        .call("firewalls.get", || {
                            api.clients
                                .firewalls
                                .get()
                                .set_project(api.project.clone())
                                .set_firewall(name)
                                .send()
                        })
                        .await?;
                    Ok(found.description)
                },
            )
            .await;
    };
    cx.check_owned("firewall", name, have.description.as_deref())?;
    if shape(&have) == shape(&body) {
        return Ok(());
    }
    cx.write(
        Action::Update,
        ("firewall", name),
        detail,
        "firewalls.patch",
        || {
            api.clients
                .firewalls
                .patch()
                .set_project(api.project.clone())
                .set_firewall(name)
                .set_request_id(rid.clone())
                .set_body(body.clone())
                .send()
        },
    )
    .await
}
