//! Settings of one datapath instance.

use std::{net::IpAddr, net::SocketAddr, time::Duration};

/// How one datapath instance runs.
#[derive(Clone, Debug)]
pub struct DatapathOptions {
    /// Name of the node this instance runs on; the key of its status entry.
    pub node_name: String,
    /// Which spec addresses this instance binds.
    pub bind: BindPolicy,
    /// Where `/metrics` is served; none = not served.
    pub metrics_addr: Option<SocketAddr>,
    /// Period of active health checks.
    pub health_interval: Duration,
    /// How long connections of a removed listener may finish.
    pub drain_timeout: Duration,
    /// Deadline for a client to send a complete request head (and the TLS
    /// handshake), counted from accept even if the client sends nothing.
    pub header_read_timeout: Duration,
    /// A connection with no bytes in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request head (HTTP/1 read buffer; HTTP/2 header list), bytes.
    pub max_header_bytes: usize,
    /// Most request header fields (HTTP/1).
    pub max_headers: usize,
    /// Where `l2` addresses are announced from.
    pub announcing: Announcing,
}

/// Where the `l2` announcer runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Announcing {
    /// In the datapath's own process (dev, and hosts without containers).
    #[default]
    InProcess,
    /// In a process of its own (`gantry announce`), so that the proxy that
    /// parses client traffic holds no `NET_ADMIN` or `NET_RAW`: this
    /// instance only sees which addresses are on this node's interfaces.
    Separate,
}

impl DatapathOptions {
    /// Defaults for `node_name`, binding everything (dev mode).
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            bind: BindPolicy::All,
            metrics_addr: None,
            health_interval: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            announcing: Announcing::InProcess,
        }
    }
}

/// Which addresses of a spec this instance binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindPolicy {
    /// Every spec address (dev mode: one datapath on loopback).
    All,
    /// Only the listed addresses, the ones this node owns (`nodeAddresses`
    /// mode); objects without any of them are not served by this instance.
    OwnAddresses(Vec<IpAddr>),
}

impl BindPolicy {
    /// Whether this instance binds `addr`.
    pub fn binds(&self, addr: IpAddr) -> bool {
        match self {
            Self::All => true,
            Self::OwnAddresses(own) => own.contains(&addr),
        }
    }
}
