//! The pure half of the node-port forwarder: from Services and
//! EndpointSlices, which node ports exist, where each forwards, and what the
//! `externalTrafficPolicy: Local` health checks report.

use std::{
    collections::{BTreeSet, HashMap},
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

use super::Protocol;
use crate::endpointslices::build::SERVICE_NAME_LABEL;

/// One endpoint a node port may forward to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Pod address and target port.
    pub addr: SocketAddr,
    /// The node the pod runs on.
    pub node: Option<String>,
    /// `conditions.ready` (unset counts as ready, per the API).
    pub ready: bool,
    /// `conditions.serving`.
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
}

/// `(namespace, name)` of a Service.
pub type ServiceKey = (String, String);

/// Where one node port forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePortRoute {
    /// The Service behind the port.
    pub service: ServiceKey,
    /// `externalTrafficPolicy: Local`: only endpoints on the receiving node.
    pub local_only: bool,
    /// Every endpoint of the matching Service port.
    pub backends: Vec<Backend>,
}

impl NodePortRoute {
    /// The endpoints a connection arriving at `node` may use: ready ones, or
    /// (like kube-proxy) serving-and-terminating ones when none is ready.
    pub fn usable(&self, node: &str) -> Vec<SocketAddr> {
        let candidates: Vec<&Backend> = self
            .backends
            .iter()
            .filter(|b| !self.local_only || b.node.as_deref() == Some(node))
            .collect();
        let ready: Vec<SocketAddr> = candidates
            .iter()
            .filter(|b| b.ready)
            .map(|b| b.addr)
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        candidates
            .iter()
            .filter(|b| b.serving && b.terminating)
            .map(|b| b.addr)
            .collect()
    }
}

/// What a health check node port reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRoute {
    /// The Service checked.
    pub service: ServiceKey,
    /// `(address, node, ready)` of every endpoint of the Service.
    pub endpoints: Vec<(IpAddr, Option<String>, bool)>,
}

impl HealthRoute {
    /// Ready endpoints on `node`, counted once per pod address.
    pub fn local_endpoints(&self, node: &str) -> usize {
        self.endpoints
            .iter()
            .filter(|(_, n, ready)| *ready && n.as_deref() == Some(node))
            .map(|(ip, _, _)| *ip)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Everything the forwarders of all nodes need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyTable {
    /// Node ports by protocol and number.
    pub node_ports: HashMap<(Protocol, u16), NodePortRoute>,
    /// Health check node ports by number.
    pub health: HashMap<u16, HealthRoute>,
}

/// Builds the table from the current Services and EndpointSlices.
pub fn build(services: &[Arc<Service>], slices: &[Arc<EndpointSlice>]) -> ProxyTable {
    let mut by_service: HashMap<ServiceKey, Vec<&EndpointSlice>> = HashMap::new();
    for slice in slices {
        let (Some(ns), Some(svc)) = (
            slice.metadata.namespace.clone(),
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .cloned(),
        ) else {
            continue;
        };
        if slice.address_type == "IPv4" {
            by_service.entry((ns, svc)).or_default().push(slice);
        }
    }
    let mut table = ProxyTable::default();
    for svc in services {
        let (Some(ns), Some(name), Some(spec)) = (
            svc.metadata.namespace.clone(),
            svc.metadata.name.clone(),
            svc.spec.as_ref(),
        ) else {
            continue;
        };
        if !matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer")) {
            continue;
        }
        let key = (ns, name);
        let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or_default();
        let local_only = spec.external_traffic_policy.as_deref() == Some("Local");
        for port in spec.ports.iter().flatten() {
            let Some(node_port) = port.node_port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let proto = protocol.as_str();
            let backends = backends(slices, &port_name, proto);
            table.node_ports.insert(
                (protocol, node_port),
                NodePortRoute {
                    service: key.clone(),
                    local_only,
                    backends,
                },
            );
        }
        let health = spec
            .health_check_node_port
            .and_then(|p| u16::try_from(p).ok());
        if let (true, Some(health)) = (local_only, health.filter(|p| *p != 0)) {
            let endpoints = slices
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .flat_map(|e| {
                    let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                    e.addresses
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(move |ip| (ip, e.node_name.clone(), ready))
                })
                .collect();
            table.health.insert(
                health,
                HealthRoute {
                    service: key.clone(),
                    endpoints,
                },
            );
        }
    }
    table
}

fn backends(slices: &[&EndpointSlice], port_name: &str, protocol: &str) -> Vec<Backend> {
    let mut out = Vec::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && p.protocol.as_deref().unwrap_or("TCP") == protocol
        }) else {
            continue;
        };
        let Some(target) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for e in &slice.endpoints {
            let c = e.conditions.clone().unwrap_or_default();
            for a in &e.addresses {
                let Ok(ip) = a.parse::<IpAddr>() else {
                    continue;
                };
                out.push(Backend {
                    addr: SocketAddr::new(ip, target),
                    node: e.node_name.clone(),
                    ready: c.ready.unwrap_or(true),
                    serving: c.serving.unwrap_or(true),
                    terminating: c.terminating.unwrap_or(false),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
