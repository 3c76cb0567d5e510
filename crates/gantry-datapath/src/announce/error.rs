//! Errors of L2 announcement. None stops the datapath: each is logged and
//! the step is retried on the next tick; whether a retry can help is said
//! by [`AnnounceError::is_transient`].

use std::{io, net::IpAddr};

/// One failed step of announcing an address.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnnounceError {
    /// The watch on the address Leases ended before its first list.
    #[error("watching address Leases in {namespace} ended")]
    WatchLeases {
        /// Namespace of the Leases.
        namespace: String,
    },
    /// Reading one Lease failed.
    #[error("reading Lease {name}")]
    ReadLease {
        /// Lease name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Creating, renewing, taking or releasing a Lease failed.
    #[error("writing Lease {name} ({action})")]
    WriteLease {
        /// Lease name.
        name: String,
        /// `create`, `renew`, `take` or `release`.
        action: &'static str,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// No interface to put the address on.
    #[error("no interface for {addr}: {reason}")]
    NoInterface {
        /// The address.
        addr: IpAddr,
        /// Why: the configured one is missing, or no interface's network
        /// contains the address.
        reason: String,
    },
    /// The `ip` command could not be run.
    #[error("running ip {args}")]
    RunIp {
        /// Its arguments.
        args: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The `ip` command failed.
    #[error("ip {args} failed: {stderr}")]
    IpFailed {
        /// Its arguments.
        args: String,
        /// What it printed.
        stderr: String,
    },
    /// Sending the gratuitous ARP or unsolicited Neighbour Advertisement
    /// failed.
    #[error("announcing {addr} on {interface} (gratuitous ARP / unsolicited NA)")]
    SendAnnouncement {
        /// The address announced.
        addr: IpAddr,
        /// The interface.
        interface: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl AnnounceError {
    /// Whether retrying the same step can succeed without a change of
    /// configuration or of the node (API trouble, a busy netlink) rather
    /// than needing one (missing interface, missing `ip`, no `NET_RAW`).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::WatchLeases { .. }
            | Self::ReadLease { .. }
            | Self::WriteLease { .. }
            | Self::IpFailed { .. } => true,
            Self::NoInterface { .. } => false,
            Self::RunIp { source, .. } | Self::SendAnnouncement { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ),
        }
    }
}
