//! From objects to listeners: which sockets this instance should hold and
//! what each serves. Pure: no sockets, no clocks, so reloads are decided the
//! same way every time and tested without I/O.
//!
//! Listeners are keyed by (address, port, transport). L7 objects sharing an
//! address merge their host rules on one listener, as Ingresses do; an L4
//! listener owns its key alone, and the first object by name keeps a
//! contested key while the others report the conflict.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, SocketAddr},
};

use gantry_model::{
    desired::Protocol,
    local::{LocalHealthCheck, LocalL4Listener, LocalL7, LocalNode},
};
use ipnet::IpNet;

use crate::{
    config::{ObjectConfig, TlsMaterial},
    options::BindPolicy,
};

/// Transport of a listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Transport {
    /// Stream sockets (L4 TCP, HTTP, HTTPS).
    Tcp,
    /// Datagram sockets.
    Udp,
}

/// Identity of a listener across reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ListenerKey {
    /// Address and port bound.
    pub addr: SocketAddr,
    /// Transport.
    pub transport: Transport,
}

impl fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        };
        write!(f, "{}/{proto}", self.addr)
    }
}

/// Client networks allowed to connect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SourceRanges {
    nets: Vec<IpNet>,
    restricted: bool,
}

impl SourceRanges {
    /// Parses CIDRs (a bare address counts as a host route). Invalid entries
    /// are returned as problems and dropped; a list whose entries are all
    /// invalid admits nobody, so a typo never opens a restricted service.
    pub fn parse(ranges: &[String]) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let mut nets = Vec::new();
        for r in ranges {
            let parsed = r
                .trim()
                .parse::<IpNet>()
                .or_else(|_| r.trim().parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => nets.push(net),
                Err(_) => problems.push(format!("invalid source range {r:?}")),
            }
        }
        (
            Self {
                nets,
                restricted: !ranges.is_empty(),
            },
            problems,
        )
    }

    /// Everyone allowed.
    pub fn open() -> Self {
        Self::default()
    }

    /// Whether a client at `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        !self.restricted || self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Admits a client when any of `all` does.
    pub fn union(all: &[&SourceRanges]) -> Self {
        if all.is_empty() || all.iter().any(|r| !r.restricted) {
            return Self::open();
        }
        Self {
            nets: all.iter().flat_map(|r| r.nets.iter().copied()).collect(),
            restricted: true,
        }
    }
}

/// How a node is checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Probe {
    /// TCP connect to the node port.
    Tcp,
    /// HTTP GET `path` on `port`.
    Http {
        /// Port.
        port: u16,
        /// Path.
        path: String,
    },
    /// Not actively checked (UDP node ports cannot be probed by connecting).
    None,
}

/// One node port to check, shared by every frontend that uses it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TargetKey {
    /// Node name.
    pub node: String,
    /// Node address and node port.
    pub addr: SocketAddr,
    /// Check.
    pub probe: Probe,
}

/// Targets of `nodes` at `node_port`.
pub(crate) fn targets(
    nodes: &[LocalNode],
    node_port: u16,
    check: &LocalHealthCheck,
    udp: bool,
) -> Vec<TargetKey> {
    let probe = match check {
        LocalHealthCheck::Http { port, path } => Probe::Http {
            port: *port,
            path: path.clone(),
        },
        LocalHealthCheck::Tcp if udp => Probe::None,
        LocalHealthCheck::Tcp => Probe::Tcp,
    };
    nodes
        .iter()
        .map(|n| TargetKey {
            node: n.name.clone(),
            addr: SocketAddr::new(n.address, node_port),
            probe: probe.clone(),
        })
        .collect()
}

/// One object's share of an L7 listener.
#[derive(Clone, Debug)]
pub(crate) struct Site {
    /// Object name.
    pub owner: String,
    /// Routing.
    pub l7: LocalL7,
    /// Backend nodes.
    pub nodes: Vec<LocalNode>,
    /// Who may connect.
    pub ranges: SourceRanges,
    /// Certificates.
    pub tls: Vec<TlsMaterial>,
}

/// What one listener serves.
#[derive(Clone, Debug)]
pub(crate) enum ListenerPlan {
    /// Passthrough.
    L4 {
        /// Object name.
        owner: String,
        /// The listener.
        listener: LocalL4Listener,
        /// Backend nodes.
        nodes: Vec<LocalNode>,
        /// Who may connect.
        ranges: SourceRanges,
    },
    /// HTTP (`tls` false) or HTTPS.
    L7 {
        /// Terminates TLS.
        tls: bool,
        /// Objects served, by name.
        sites: Vec<Site>,
    },
}

impl ListenerPlan {
    /// Names of the objects served.
    pub fn owners(&self) -> Vec<&str> {
        match self {
            Self::L4 { owner, .. } => vec![owner.as_str()],
            Self::L7 { sites, .. } => sites.iter().map(|s| s.owner.as_str()).collect(),
        }
    }
}

/// One object as planned.
#[derive(Clone, Debug, Default)]
pub(crate) struct ObjectPlan {
    /// Generation planned.
    pub generation: i64,
    /// Listeners it needs.
    pub keys: Vec<ListenerKey>,
    /// What keeps it from being ready regardless of sockets and health.
    pub problems: Vec<String>,
}

/// Everything this instance should serve.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    /// Listeners by key.
    pub listeners: BTreeMap<ListenerKey, ListenerPlan>,
    /// Objects this instance serves (those with an address it binds).
    pub objects: BTreeMap<String, ObjectPlan>,
}

/// Plans `configs` under `bind`.
pub(crate) fn plan(configs: &[ObjectConfig], bind: &BindPolicy) -> Plan {
    let mut sorted: Vec<&ObjectConfig> = configs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Plan::default();
    for cfg in sorted {
        let addrs: Vec<IpAddr> = cfg
            .spec
            .addresses
            .iter()
            .copied()
            .filter(|a| bind.binds(*a))
            .collect();
        if addrs.is_empty() {
            continue;
        }
        let (ranges, mut problems) = SourceRanges::parse(&cfg.spec.source_ranges);
        problems.extend(cfg.problems.iter().cloned());
        let mut obj = ObjectPlan {
            generation: cfg.generation,
            keys: Vec::new(),
            problems,
        };
        for &ip in &addrs {
            for l in &cfg.spec.l4 {
                let transport = match l.protocol {
                    Protocol::Tcp => Transport::Tcp,
                    Protocol::Udp => Transport::Udp,
                };
                let key = ListenerKey {
                    addr: SocketAddr::new(ip, l.port),
                    transport,
                };
                if let Some(existing) = out.listeners.get(&key) {
                    obj.problems.push(conflict(&key, existing));
                    continue;
                }
                out.listeners.insert(
                    key,
                    ListenerPlan::L4 {
                        owner: cfg.name.clone(),
                        listener: l.clone(),
                        nodes: cfg.spec.nodes.clone(),
                        ranges: ranges.clone(),
                    },
                );
                obj.keys.push(key);
            }
            if let Some(l7) = &cfg.spec.l7 {
                let site = Site {
                    owner: cfg.name.clone(),
                    l7: l7.clone(),
                    nodes: cfg.spec.nodes.clone(),
                    ranges: ranges.clone(),
                    tls: cfg.tls.clone(),
                };
                let ports = [(80, false, l7.allow_http), (443, true, !l7.tls.is_empty())];
                for (port, tls, wanted) in ports {
                    if !wanted {
                        continue;
                    }
                    let key = ListenerKey {
                        addr: SocketAddr::new(ip, port),
                        transport: Transport::Tcp,
                    };
                    match out.listeners.get_mut(&key) {
                        None => {
                            out.listeners.insert(
                                key,
                                ListenerPlan::L7 {
                                    tls,
                                    sites: vec![site.clone()],
                                },
                            );
                        }
                        Some(ListenerPlan::L7 { sites, .. }) => sites.push(site.clone()),
                        Some(existing) => {
                            obj.problems.push(conflict(&key, existing));
                            continue;
                        }
                    }
                    obj.keys.push(key);
                }
            }
        }
        out.objects.insert(cfg.name.clone(), obj);
    }
    out
}

fn conflict(key: &ListenerKey, holder: &ListenerPlan) -> String {
    let by = holder.owners().join(", ");
    format!("{key} is already used by LocalLoadBalancer {by}")
}

#[cfg(test)]
mod tests;
