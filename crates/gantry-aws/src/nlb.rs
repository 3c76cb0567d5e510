//! Services -> Network Load Balancers: what the balancer should look like
//! ([`Wanted`]), what AWS holds ([`Observed`]), and the ordered steps
//! ([`Step`]) between the two. Pure: no API call happens here, so `plan`
//! and `ensure` share one diff and tests can check it without AWS.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{
    Owner, ProviderError, ProviderKind,
    desired::{HealthCheck, L4Spec, Protocol},
    provider::{Action, Change},
};

pub use crate::tg_diff::TgStep;
use crate::{discovery::instance_id, tg_diff::target_group_steps};

/// Longest name AWS accepts for balancers and target groups.
pub const NAME_LEN: usize = 32;

/// Most targets AWS takes in one register/deregister call.
pub const TARGET_BATCH: usize = 200;

/// Listener / target group protocol of an NLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NlbProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// TCP and UDP on the same port (a Service exposing one port on both).
    TcpUdp,
}

impl NlbProtocol {
    /// The name AWS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::TcpUdp => "TCP_UDP",
        }
    }

    /// The security group protocols a listener of this protocol needs.
    pub fn sg_protocols(self) -> &'static [&'static str] {
        match self {
            Self::Tcp => &["tcp"],
            Self::Udp => &["udp"],
            Self::TcpUdp => &["tcp", "udp"],
        }
    }

    fn role(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::TcpUdp => "tcpudp",
        }
    }
}

/// Health check of a target group, as AWS spells it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Health {
    /// `TCP` or `HTTP`.
    pub protocol: &'static str,
    /// A port number, or `traffic-port`.
    pub port: String,
    /// Request path for HTTP checks.
    pub path: Option<String>,
}

impl Health {
    fn from_model(check: &HealthCheck) -> Self {
        match check {
            HealthCheck::NodePortTcp => Self {
                protocol: "TCP",
                port: "traffic-port".into(),
                path: None,
            },
            HealthCheck::Http { port, path } => Self {
                protocol: "HTTP",
                port: port.to_string(),
                path: Some(path.clone()),
            },
        }
    }
}

/// One target group the balancer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedTg {
    /// Deterministic name.
    pub name: String,
    /// Protocol.
    pub protocol: NlbProtocol,
    /// The node port targets answer on.
    pub node_port: u16,
    /// Health check.
    pub health: Health,
}

/// One listener the balancer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedListener {
    /// Frontend port.
    pub port: u16,
    /// Protocol.
    pub protocol: NlbProtocol,
    /// Name of the target group it forwards to.
    pub target_group: String,
}

/// The whole NLB a Service asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Balancer name.
    pub name: String,
    /// Target groups by name.
    pub target_groups: BTreeMap<String, WantedTg>,
    /// Listeners by port (an NLB has at most one listener per port).
    pub listeners: BTreeMap<u16, WantedListener>,
    /// Instance ids that should be targets of every target group.
    pub instances: BTreeSet<String>,
    /// Cross-zone load balancing, when the Service asks for a value.
    pub cross_zone: Option<bool>,
    /// PROXY protocol v2 towards the targets.
    pub proxy_protocol: bool,
}

/// Turn a Service's L4 spec into the NLB it needs.
///
/// Target groups are named by protocol, frontend port and node port: a
/// target group's port and protocol cannot change in place, so a new node
/// port gets a new group that the listener switches to.
///
/// `slot` picks the names (see [`crate::slot`]).
pub fn wanted(
    owner: &Owner,
    class: &str,
    spec: &L4Spec,
    slot: crate::slot::Slot,
) -> Result<Wanted, ProviderError> {
    if spec.requested_ip.is_some() {
        return Err(ProviderError::Unsupported {
            provider: ProviderKind::Aws,
            message: "a requested load balancer IP is not supported on AWS".into(),
        });
    }
    // Merge TCP and UDP on the same port into one TCP_UDP listener.
    let mut by_port: BTreeMap<u16, (NlbProtocol, u16)> = BTreeMap::new();
    for l in &spec.listeners {
        let proto = match l.protocol {
            Protocol::Tcp => NlbProtocol::Tcp,
            Protocol::Udp => NlbProtocol::Udp,
        };
        match by_port.get(&l.port).copied() {
            None => {
                by_port.insert(l.port, (proto, l.node_port));
            }
            Some((other, node_port)) if other != proto && node_port == l.node_port => {
                by_port.insert(l.port, (NlbProtocol::TcpUdp, node_port));
            }
            Some((other, node_port)) => {
                return Err(ProviderError::Unsupported {
                    provider: ProviderKind::Aws,
                    message: format!(
                        "spec.ports: port {} is listed as {} with node port {node_port} and as {} with node port {}; an NLB serves TCP and UDP on one port only through one node port",
                        l.port,
                        other.as_str(),
                        l.protocol.as_str(),
                        l.node_port
                    ),
                });
            }
        }
    }
    let health = Health::from_model(&spec.health_check);
    let mut target_groups = BTreeMap::new();
    let mut listeners = BTreeMap::new();
    for (port, (protocol, node_port)) in by_port {
        let role = format!("{}-{port}-{node_port}", protocol.role());
        let name = slot.name(owner, class, &role);
        target_groups.insert(
            name.clone(),
            WantedTg {
                name: name.clone(),
                protocol,
                node_port,
                health: health.clone(),
            },
        );
        listeners.insert(
            port,
            WantedListener {
                port,
                protocol,
                target_group: name,
            },
        );
    }
    let instances = spec
        .backends
        .iter()
        .filter_map(instance_id)
        .map(str::to_string)
        .collect();
    Ok(Wanted {
        name: slot.name(owner, class, "nlb"),
        target_groups,
        listeners,
        instances,
        cross_zone: spec.options.cross_zone,
        proxy_protocol: spec.options.proxy_protocol,
    })
}

/// The security group rules opening every listener of `wanted` to
/// `ranges` (everyone when empty).
pub(crate) fn sg_rules(
    wanted: &Wanted,
    ranges: &[ipnet::IpNet],
) -> BTreeSet<crate::security_group::Rule> {
    crate::security_group::rules(
        wanted
            .listeners
            .values()
            .map(|l| (l.port, l.protocol.sg_protocols())),
        ranges,
    )
}

/// A target group as AWS holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTg {
    /// ARN.
    pub arn: String,
    /// Health check.
    pub health: Health,
    /// Registered targets: instance id and port.
    pub targets: BTreeSet<(String, u16)>,
}

/// A listener as AWS holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedListener {
    /// ARN.
    pub arn: String,
    /// Protocol as AWS names it.
    pub protocol: String,
    /// ARN of the target group its default action forwards to.
    pub target_group_arn: Option<String>,
    /// Type of its default action (`forward`, `fixed-response`, `redirect`).
    pub default_type: String,
    /// Its default certificate, for HTTPS listeners.
    pub certificate: Option<String>,
}

/// The balancer as AWS holds it (all of it proven ours by tags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// ARN and DNS name of the balancer, if it exists.
    pub balancer: Option<(String, String)>,
    /// Our target groups by name: the wanted ones that exist, and those the
    /// balancer's listeners still use.
    pub target_groups: BTreeMap<String, ObservedTg>,
    /// Listeners by port.
    pub listeners: BTreeMap<u16, ObservedListener>,
    /// The balancer's cross-zone attribute, when read.
    pub cross_zone: Option<bool>,
    /// Each target group's PROXY protocol v2 attribute, when read.
    pub proxy_protocol: BTreeMap<String, bool>,
}

/// One write, in the order `ensure` performs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Create the balancer.
    CreateBalancer,
    /// Create a target group, fix its health check or move its targets.
    TargetGroup(TgStep),
    /// Turn PROXY protocol v2 on or off for a target group.
    SetProxyProtocol(String),
    /// Turn cross-zone load balancing on or off.
    SetCrossZone,
    /// Create a listener on a port.
    CreateListener(u16),
    /// Point an existing listener at another protocol or target group.
    ModifyListener(u16),
    /// Delete the listener on a port.
    DeleteListener(u16),
    /// Delete a target group no listener uses any more.
    DeleteTargetGroup(String),
}

/// The ordered steps from `observed` to `wanted`: create what is missing,
/// register new targets before deregistering old ones, switch listeners,
/// and only then remove what nothing uses.
pub fn diff(wanted: &Wanted, observed: &Observed) -> Vec<Step> {
    let mut steps = Vec::new();
    if observed.balancer.is_none() {
        steps.push(Step::CreateBalancer);
    }
    let groups = target_group_steps(
        wanted
            .target_groups
            .iter()
            .map(|(n, t)| (n, t.node_port, &t.health)),
        &wanted.instances,
        observed,
    );
    steps.extend(groups.first.into_iter().map(Step::TargetGroup));
    for name in wanted.target_groups.keys() {
        let have = observed.proxy_protocol.get(name).copied().unwrap_or(false);
        if have != wanted.proxy_protocol {
            steps.push(Step::SetProxyProtocol(name.clone()));
        }
    }
    if let Some(want) = wanted.cross_zone
        && observed.cross_zone.unwrap_or(false) != want
    {
        steps.push(Step::SetCrossZone);
    }
    steps.extend(groups.registers.into_iter().map(Step::TargetGroup));
    steps.extend(groups.deregisters.into_iter().map(Step::TargetGroup));
    let tg_arn = |name: &str| observed.target_groups.get(name).map(|t| t.arn.as_str());
    for (port, l) in &wanted.listeners {
        match observed.listeners.get(port) {
            None => steps.push(Step::CreateListener(*port)),
            Some(have) => {
                let same_tg = tg_arn(&l.target_group).is_some()
                    && have.target_group_arn.as_deref() == tg_arn(&l.target_group);
                if have.protocol != l.protocol.as_str() || !same_tg {
                    steps.push(Step::ModifyListener(*port));
                }
            }
        }
    }
    for port in observed.listeners.keys() {
        if !wanted.listeners.contains_key(port) {
            steps.push(Step::DeleteListener(*port));
        }
    }
    for name in observed.target_groups.keys() {
        if !wanted.target_groups.contains_key(name) {
            steps.push(Step::DeleteTargetGroup(name.clone()));
        }
    }
    steps
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Describe a step for `plan`.
pub fn describe(step: &Step, wanted: &Wanted, observed: &Observed) -> Change {
    let change = |action, resource: &str, name: String, detail: String| Change {
        action,
        resource: resource.into(),
        name,
        detail,
    };
    let listener_detail = |port: &u16| {
        wanted
            .listeners
            .get(port)
            .map(|l| format!("{} {port} -> {}", l.protocol.as_str(), l.target_group))
            .unwrap_or_default()
    };
    match step {
        Step::CreateBalancer => change(
            Action::Create,
            "load-balancer",
            wanted.name.clone(),
            "network".into(),
        ),
        Step::TargetGroup(step) => step.describe(|n| {
            wanted
                .target_groups
                .get(n)
                .map(|t| format!("{} node port {}", t.protocol.as_str(), t.node_port))
                .unwrap_or_default()
        }),
        Step::SetProxyProtocol(n) => change(
            Action::Update,
            "target-group",
            n.clone(),
            format!("proxy protocol v2 {}", on_off(wanted.proxy_protocol)),
        ),
        Step::SetCrossZone => change(
            Action::Update,
            "load-balancer",
            wanted.name.clone(),
            format!("cross-zone {}", on_off(wanted.cross_zone.unwrap_or(false))),
        ),
        Step::CreateListener(p) => change(
            Action::Create,
            "listener",
            format!("{}:{p}", wanted.name),
            listener_detail(p),
        ),
        Step::ModifyListener(p) => change(
            Action::Update,
            "listener",
            format!("{}:{p}", wanted.name),
            listener_detail(p),
        ),
        Step::DeleteListener(p) => change(
            Action::Delete,
            "listener",
            format!("{}:{p}", wanted.name),
            observed
                .listeners
                .get(p)
                .map(|l| l.protocol.clone())
                .unwrap_or_default(),
        ),
        Step::DeleteTargetGroup(n) => {
            change(Action::Delete, "target-group", n.clone(), String::new())
        }
    }
}
