//! What one Service's passthrough balancer should look like, computed from
//! the desired state alone (no calls): names, scheme, the nodes per zone,
//! the health check, the ports per protocol and the firewall rule. Invalid
//! annotations and node ids are refused here, before anything is created.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{
    Owner, ProviderError, ProviderKind,
    class::GcpSettings,
    desired::{HealthCheck, L4Spec, Protocol, Scheme},
};

use crate::names::{self, role};

/// Source ranges of Google's health checkers, always allowed to the node
/// ports so that backends can be probed.
pub const HEALTH_CHECKER_RANGES: &[&str] = &["35.191.0.0/16", "130.211.0.0/22"];

/// Port and path kube-proxy answers its own health on; legacy HTTP checks
/// of target pools probe it for `externalTrafficPolicy: Cluster`, as a TCP
/// check cannot be expressed there.
pub const KUBE_PROXY_HEALTH: (u16, &str) = (10256, "/healthz");

/// Most ports one forwarding rule lists; beyond that it takes a range.
pub const MAX_RULE_PORTS: usize = 5;

/// The health check of the balancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// TCP connect to a node port.
    Tcp(u16),
    /// HTTP GET of a path on a node port.
    Http(u16, String),
}

impl Probe {
    /// The node port probed.
    pub fn port(&self) -> u16 {
        match self {
            Self::Tcp(p) | Self::Http(p, _) => *p,
        }
    }
}

/// One node as a Compute Engine instance.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instance {
    /// Project of the instance.
    pub project: String,
    /// Zone.
    pub zone: String,
    /// Instance name.
    pub name: String,
}

impl Instance {
    /// `projects/P/zones/Z/instances/N`.
    pub fn link(&self) -> String {
        format!(
            "projects/{}/zones/{}/instances/{}",
            self.project, self.zone, self.name
        )
    }
}

/// The forwarding rule of one protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its name.
    pub name: String,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Frontend ports, sorted.
    pub ports: BTreeSet<u16>,
}

impl Rule {
    /// The `ports` field: the ports when there are few enough, else empty.
    pub fn port_list(&self) -> Vec<String> {
        if self.ports.len() <= MAX_RULE_PORTS {
            self.ports.iter().map(u16::to_string).collect()
        } else {
            Vec::new()
        }
    }

    /// The `portRange` field, when there are too many ports for a list.
    pub fn port_range(&self) -> Option<String> {
        if self.ports.len() <= MAX_RULE_PORTS {
            return None;
        }
        let first = self.ports.first()?;
        let last = self.ports.last()?;
        Some(format!("{first}-{last}"))
    }
}

/// The whole balancer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// External or internal.
    pub scheme: Scheme,
    /// The legacy target-pool form instead of a backend service.
    pub target_pool: bool,
    /// The address the rules use when the Service names one (kept, never
    /// reserved or released by Gantry).
    pub requested_ip: Option<String>,
    /// Name of the address Gantry reserves when the Service names none.
    pub address: String,
    /// Name of the health check (regional, or legacy HTTP for target pools).
    pub health_check: String,
    /// What it probes.
    pub probe: Probe,
    /// Name of the backend service or target pool.
    pub backend: String,
    /// Instances by zone.
    pub zones: BTreeMap<String, BTreeSet<Instance>>,
    /// One forwarding rule per protocol in use.
    pub rules: Vec<Rule>,
    /// Names of the rules of the protocols not in use (to remove).
    pub unused_rules: Vec<String>,
    /// Name of the firewall rule.
    pub firewall: String,
    /// Ports the firewall opens, by protocol (`tcp`, `udp`).
    pub firewall_ports: BTreeMap<&'static str, BTreeSet<u16>>,
    /// Source ranges the firewall allows, sorted.
    pub source_ranges: BTreeSet<String>,
    /// The network (`default` unless the class names one).
    pub network: String,
}

fn unsupported(message: String) -> ProviderError {
    ProviderError::Unsupported {
        provider: ProviderKind::Gcp,
        message,
    }
}

/// Parse `gce://project/zone/name`.
pub fn parse_provider_id(id: &str) -> Option<Instance> {
    let rest = id.strip_prefix("gce://")?;
    let mut parts = rest.split('/');
    let (project, zone, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || project.is_empty() || !names::is_valid(zone) || name.is_empty() {
        return None;
    }
    Some(Instance {
        project: project.to_string(),
        zone: zone.to_string(),
        name: name.to_string(),
    })
}

/// Refuse what a Compute Engine passthrough balancer cannot do, naming the
/// annotation or field and its value; nothing is created for such a Service.
pub fn validate(
    spec: &L4Spec,
    settings: &GcpSettings,
    scheme: Scheme,
) -> Result<(), ProviderError> {
    let o = &spec.options;
    if o.proxy_protocol {
        return Err(unsupported(
            "annotation gantry.dev/proxy-protocol: \"v2\": passthrough balancers on Compute Engine do not send PROXY protocol".into(),
        ));
    }
    if let Some(v) = o.cross_zone {
        return Err(unsupported(format!(
            "annotation gantry.dev/cross-zone: \"{v}\": an AWS setting; Compute Engine balancers are regional"
        )));
    }
    if !o.subnets.is_empty() {
        return Err(unsupported(format!(
            "annotation gantry.dev/subnets: {:?}: AWS subnet ids mean nothing to Compute Engine",
            o.subnets.join(",")
        )));
    }
    if let Some(key) = &o.shared_ip_key {
        return Err(unsupported(format!(
            "annotation gantry.dev/shared-ip: {key:?}: address sharing is not supported by the gcp provider"
        )));
    }
    if let Some(ip) = spec.requested_ip
        && !ip.is_ipv4()
    {
        return Err(unsupported(format!(
            "spec.loadBalancerIP: {ip}: only IPv4 addresses are supported by the gcp provider"
        )));
    }
    if let Some(range) = spec
        .source_ranges
        .iter()
        .find(|r| !matches!(r, ipnet::IpNet::V4(_)))
    {
        return Err(unsupported(format!(
            "spec.loadBalancerSourceRanges: {range}: only IPv4 ranges are supported by the gcp provider"
        )));
    }
    if settings.target_pools && scheme == Scheme::Internal {
        return Err(unsupported(
            "spec.gcp.targetPools: true with scheme internal: target pools serve external balancers only".into(),
        ));
    }
    for node in &spec.backends {
        if let Some(id) = &node.provider_id
            && parse_provider_id(id).is_none()
        {
            return Err(ProviderError::Rejected {
                operation: "Ensure",
                message: format!(
                    "node {}: spec.providerID {id:?} is not gce://project/zone/name",
                    node.name
                ),
            });
        }
    }
    Ok(())
}

/// The balancer for `spec`, owned by `owner` in `class`.
pub fn wanted(
    owner: &Owner,
    class: &str,
    spec: &L4Spec,
    settings: &GcpSettings,
) -> Result<Wanted, ProviderError> {
    let scheme = spec
        .options
        .scheme
        .or(settings.scheme)
        .unwrap_or(Scheme::InternetFacing);
    validate(spec, settings, scheme)?;
    let name = |r: &str| names::name(owner, class, r);

    let mut zones: BTreeMap<String, BTreeSet<Instance>> = BTreeMap::new();
    // Nodes without a provider id are not instances yet (still being set
    // up); they join once the cloud controller has named them.
    for node in &spec.backends {
        if let Some(instance) = node.provider_id.as_deref().and_then(parse_provider_id) {
            zones
                .entry(instance.zone.clone())
                .or_default()
                .insert(instance);
        }
    }

    let mut by_protocol: BTreeMap<Protocol, BTreeSet<u16>> = BTreeMap::new();
    let mut firewall_ports: BTreeMap<&'static str, BTreeSet<u16>> = BTreeMap::new();
    for l in &spec.listeners {
        by_protocol.entry(l.protocol).or_default().insert(l.port);
        // Packets keep the balancer's address and port on the way to the
        // node; health checks come to the node port.
        let fw = firewall_ports
            .entry(protocol_lower(l.protocol))
            .or_default();
        fw.insert(l.port);
        fw.insert(l.node_port);
    }

    let probe = match (&spec.health_check, settings.target_pools) {
        (HealthCheck::Http { port, path }, _) => Probe::Http(*port, path.clone()),
        (HealthCheck::NodePortTcp, false) => {
            match spec.listeners.iter().find(|l| l.protocol == Protocol::Tcp) {
                Some(l) => Probe::Tcp(l.node_port),
                // A UDP-only Service has no TCP port to connect to; kube-proxy's
                // own health answers for every node instead.
                None => Probe::Http(KUBE_PROXY_HEALTH.0, KUBE_PROXY_HEALTH.1.into()),
            }
        }
        (HealthCheck::NodePortTcp, true) => {
            Probe::Http(KUBE_PROXY_HEALTH.0, KUBE_PROXY_HEALTH.1.into())
        }
    };
    firewall_ports
        .entry("tcp")
        .or_default()
        .insert(probe.port());

    let rules: Vec<Rule> = by_protocol
        .into_iter()
        .map(|(protocol, ports)| Rule {
            name: name(&role::forwarding_rule(protocol.as_str())),
            protocol,
            ports,
        })
        .collect();
    let unused_rules = [Protocol::Tcp, Protocol::Udp]
        .into_iter()
        .filter(|p| !rules.iter().any(|r| r.protocol == *p))
        .map(|p| name(&role::forwarding_rule(p.as_str())))
        .collect();

    let mut source_ranges: BTreeSet<String> = if spec.source_ranges.is_empty() {
        BTreeSet::from(["0.0.0.0/0".to_string()])
    } else {
        spec.source_ranges
            .iter()
            .map(|r| r.trunc().to_string())
            .collect()
    };
    source_ranges.extend(HEALTH_CHECKER_RANGES.iter().map(|r| r.to_string()));

    Ok(Wanted {
        scheme,
        target_pool: settings.target_pools,
        requested_ip: spec.requested_ip.map(|ip| ip.to_string()),
        address: name(role::ADDRESS),
        health_check: name(if settings.target_pools {
            role::HTTP_HEALTH_CHECK
        } else {
            role::HEALTH_CHECK
        }),
        probe,
        backend: name(if settings.target_pools {
            role::TARGET_POOL
        } else {
            role::BACKEND_SERVICE
        }),
        zones,
        rules,
        unused_rules,
        firewall: name(role::FIREWALL),
        firewall_ports,
        source_ranges,
        network: settings.network.clone().unwrap_or_else(|| "default".into()),
    })
}

/// `tcp` or `udp`, as firewall rules write protocols.
pub fn protocol_lower(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

#[cfg(test)]
mod tests;
