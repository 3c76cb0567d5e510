//! Translate step for the bare-metal provider: a [`DesiredLoadBalancer`]
//! becomes the `LocalLoadBalancerSpec` the datapaths serve (everything but
//! the pool address, which allocation adds), and a published object becomes
//! the status Gantry reports.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use gantry_model::{
    DesiredLoadBalancer, ObservedStatus, ProviderError,
    class::{LocalMode, ProviderKind},
    desired::{HealthCheck, L4Spec, L7Spec, LoadBalancerSpec, PathMatch, Protocol},
    local::{
        LocalHealthCheck, LocalL4Listener, LocalL7, LocalL7Backend, LocalL7Path, LocalL7Rule,
        LocalLoadBalancer, LocalLoadBalancerSpec, LocalNode, LocalOwner, LocalTls,
    },
    provider::{IngressPoint, PortStatus},
};

use crate::error::op;

/// A spec without its pool address, plus what allocation needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Draft {
    /// The spec; `addresses` is filled in `nodeAddresses` mode only.
    pub(crate) spec: LocalLoadBalancerSpec,
    /// Frontend ports, which an address shared with other owners must keep apart.
    pub(crate) ports: BTreeSet<(u16, Protocol)>,
    /// The address the owner asks for.
    pub(crate) requested: Option<IpAddr>,
    /// Owners with the same key may share an address.
    pub(crate) shared_key: Option<String>,
}

/// Build the draft spec of `desired` for `class` in `mode`.
pub(crate) fn draft(
    desired: &DesiredLoadBalancer,
    class: &str,
    mode: LocalMode,
) -> Result<Draft, ProviderError> {
    if desired.class != class {
        return Err(rejected(format!(
            "desired state is for class {:?}, this provider serves {class:?}",
            desired.class
        )));
    }
    if desired.provider != ProviderKind::Local {
        return Err(rejected(format!(
            "desired state is for provider {}, not local",
            desired.provider
        )));
    }
    let owner = LocalOwner {
        kind: desired.owner.kind.as_str().to_string(),
        namespace: desired.owner.namespace.clone(),
        name: desired.owner.name.clone(),
        uid: desired.owner.uid.clone(),
    };
    let mut spec = LocalLoadBalancerSpec {
        class: class.to_string(),
        owner,
        mode,
        addresses: Vec::new(),
        nodes: Vec::new(),
        l4: Vec::new(),
        l7: None,
        source_ranges: Vec::new(),
    };
    let (ports, requested, shared_key) = match &desired.spec {
        LoadBalancerSpec::L4(l4) => {
            fill_l4(&mut spec, l4);
            let ports = l4.listeners.iter().map(|l| (l.port, l.protocol)).collect();
            (ports, l4.requested_ip, l4.options.shared_ip_key.clone())
        }
        LoadBalancerSpec::L7(l7) => {
            let local = l7_routing(l7)?;
            spec.nodes = nodes(l7.nodes.iter().map(|n| (&n.name, n.address)));
            let ports = l7_ports(&local);
            spec.l7 = Some(local);
            (ports, None, None)
        }
    };
    if mode == LocalMode::NodeAddresses {
        let addrs: BTreeSet<IpAddr> = spec.nodes.iter().map(|n| n.address).collect();
        spec.addresses = addrs.into_iter().collect();
    }
    Ok(Draft {
        spec,
        ports,
        requested,
        shared_key,
    })
}

fn rejected(message: String) -> ProviderError {
    ProviderError::Rejected {
        operation: op::BUILD,
        message,
    }
}

fn unsupported(message: &str) -> ProviderError {
    ProviderError::Unsupported {
        provider: ProviderKind::Local,
        message: message.to_string(),
    }
}

fn nodes<'a>(iter: impl Iterator<Item = (&'a String, IpAddr)>) -> Vec<LocalNode> {
    let set: BTreeSet<LocalNode> = iter
        .map(|(name, address)| LocalNode {
            name: name.clone(),
            address,
        })
        .collect();
    set.into_iter().collect()
}

fn health_check(hc: &HealthCheck) -> LocalHealthCheck {
    match hc {
        HealthCheck::NodePortTcp => LocalHealthCheck::Tcp,
        HealthCheck::Http { port, path } => LocalHealthCheck::Http {
            port: *port,
            path: path.clone(),
        },
    }
}

fn fill_l4(spec: &mut LocalLoadBalancerSpec, l4: &L4Spec) {
    spec.nodes = nodes(l4.backends.iter().map(|n| (&n.name, n.address)));
    let check = health_check(&l4.health_check);
    spec.l4 = l4
        .listeners
        .iter()
        .map(|l| LocalL4Listener {
            protocol: l.protocol,
            port: l.port,
            node_port: l.node_port,
            health_check: check.clone(),
            proxy_protocol: l4.options.proxy_protocol,
        })
        .collect();
    spec.source_ranges = l4.source_ranges.iter().map(ToString::to_string).collect();
}

fn l7_routing(l7: &L7Spec) -> Result<LocalL7, ProviderError> {
    // Both name things the local datapath cannot serve; ignoring them would
    // silently give clients another certificate or another address.
    if !l7.options.certificate_refs.is_empty() {
        return Err(unsupported(
            "certificates managed outside the cluster (certificate refs); use TLS Secrets",
        ));
    }
    if l7.options.static_ip_name.is_some() {
        return Err(unsupported("named static addresses"));
    }
    let key = |index: usize| {
        l7.backends
            .get(index)
            .map(|b| b.key())
            .ok_or_else(|| rejected(format!("backend index {index} is out of range")))
    };
    let mut rules = Vec::with_capacity(l7.rules.len());
    for rule in &l7.rules {
        let mut paths = Vec::with_capacity(rule.paths.len());
        for p in &rule.paths {
            paths.push(LocalL7Path {
                path: p.path.clone(),
                path_type: match p.path_match {
                    PathMatch::Exact => "Exact",
                    PathMatch::Prefix => "Prefix",
                }
                .to_string(),
                backend: key(p.backend)?,
            });
        }
        rules.push(LocalL7Rule {
            host: rule.host.clone(),
            paths,
        });
    }
    let backends: BTreeMap<String, LocalL7Backend> = l7
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let check = l7
                .health_checks
                .get(i)
                .map_or(LocalHealthCheck::Tcp, health_check);
            (
                b.key(),
                LocalL7Backend {
                    node_port: b.node_port,
                    health_check: check,
                },
            )
        })
        .collect();
    Ok(LocalL7 {
        rules,
        default_backend: l7.default_backend.map(key).transpose()?,
        backends,
        // Secret names only: the datapath reads the key material itself, so
        // it never lands in an object many more principals can read.
        tls: l7
            .tls
            .iter()
            .map(|t| LocalTls {
                secret_name: t.secret_name.clone(),
                hosts: t.hosts.clone(),
            })
            .collect(),
        ssl_redirect: l7.options.ssl_redirect,
        allow_http: l7.options.allow_http,
    })
}

fn l7_ports(l7: &LocalL7) -> BTreeSet<(u16, Protocol)> {
    let mut ports = BTreeSet::new();
    if l7.allow_http {
        ports.insert((80, Protocol::Tcp));
    }
    if !l7.tls.is_empty() {
        ports.insert((443, Protocol::Tcp));
    }
    ports
}

/// Frontend ports a published spec serves.
pub(crate) fn spec_ports(spec: &LocalLoadBalancerSpec) -> BTreeSet<(u16, Protocol)> {
    let mut ports: BTreeSet<_> = spec.l4.iter().map(|l| (l.port, l.protocol)).collect();
    if let Some(l7) = &spec.l7 {
        ports.extend(l7_ports(l7));
    }
    ports
}

/// What to report for a published object: one ingress point per address,
/// ready once some datapath serves the current generation.
pub(crate) fn observed(obj: &LocalLoadBalancer) -> ObservedStatus {
    let ports: Vec<PortStatus> = spec_ports(&obj.spec)
        .into_iter()
        .map(|(port, protocol)| PortStatus { port, protocol })
        .collect();
    let ingress = obj
        .spec
        .addresses
        .iter()
        .map(|ip| IngressPoint {
            ip: Some(*ip),
            hostname: None,
            ports: ports.clone(),
        })
        .collect();
    ObservedStatus {
        ingress,
        ready: is_ready(obj),
    }
}

fn is_ready(obj: &LocalLoadBalancer) -> bool {
    // A datapath that reported the current generation serves it. One that
    // reported an older generation still serves the same addresses while it
    // applies the new one (other backends, say), so it counts too; if the
    // addresses changed, an older report says nothing about the new ones.
    let generation = obj.metadata.generation.unwrap_or(0);
    let addresses = &obj.spec.addresses;
    !addresses.is_empty()
        && obj.status.as_ref().is_some_and(|s| {
            s.nodes.values().any(|n| {
                n.ready
                    && (n.observed_generation >= generation
                        || (!n.addresses.is_empty() && n.addresses == *addresses))
            })
        })
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
