//! Who says which `l2` addresses this node holds: the announcer in this
//! process, or (with [`Announcing::Separate`]) this node's interfaces, on
//! which the announcer beside the datapath puts them.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use gantry_model::local::LocalLoadBalancer;
use kube::Client;
use tokio::sync::watch;

use crate::{
    announce::{self, Announcer, HeldOnInterfaces},
    config::Readiness,
    options::{Announcing, DatapathOptions},
};

/// The source of the held addresses.
pub(crate) enum Holding {
    /// Announcing in this process.
    Announcer(Announcer),
    /// Announced by another process; read from the interfaces.
    Observed(HeldOnInterfaces),
}

impl Holding {
    /// As `opts` says.
    pub fn start(client: Client, opts: &DatapathOptions) -> Self {
        match opts.announcing {
            Announcing::InProcess => Self::Announcer(Announcer::start(
                client,
                &opts.node_name,
                announce::Timing::default(),
            )),
            Announcing::Separate => Self::Observed(HeldOnInterfaces::start()),
        }
    }

    /// Whether this process announces.
    pub fn announces(&self) -> bool {
        matches!(self, Self::Announcer(_))
    }

    /// Competes for this node's share of the `l2` addresses of `objects`
    /// (see [`announce::targets`]); only an announcer here does.
    pub fn compete(
        &self,
        node: &str,
        objects: &BTreeMap<String, LocalLoadBalancer>,
        readiness: &BTreeMap<String, Readiness>,
        interfaces: &BTreeMap<String, String>,
    ) {
        if let Self::Announcer(a) = self {
            a.set_targets(announce::targets(node, objects, readiness, interfaces));
        }
    }

    /// Follows the held addresses.
    pub fn held(&self) -> watch::Receiver<BTreeSet<IpAddr>> {
        match self {
            Self::Announcer(a) => a.held(),
            Self::Observed(o) => o.held(),
        }
    }

    /// The addresses of `objects` held now, from `held` (marked seen).
    pub fn held_of(
        &self,
        held: &mut watch::Receiver<BTreeSet<IpAddr>>,
        objects: &BTreeMap<String, LocalLoadBalancer>,
    ) -> BTreeSet<IpAddr> {
        let now = held.borrow_and_update().clone();
        match self {
            Self::Announcer(_) => now,
            Self::Observed(_) => objects
                .values()
                .flat_map(|o| o.spec.addresses.iter().copied())
                .filter(|a| announce::holds(&now, *a))
                .collect(),
        }
    }

    /// Lets held addresses go (an announcer here) or stops reading.
    pub async fn shutdown(self) {
        match self {
            Self::Announcer(a) => a.shutdown().await,
            Self::Observed(o) => o.stop(),
        }
    }
}
