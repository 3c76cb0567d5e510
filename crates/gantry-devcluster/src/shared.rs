//! State every part of the dev cluster shares: the options, the simulated
//! nodes and whether each is up, and the "something changed" signal that
//! wakes the controllers.

use std::{net::Ipv4Addr, time::Duration};

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::DevClusterOptions;

/// One simulated node as the dev cluster tracks it.
#[derive(Debug, Clone)]
pub(crate) struct NodeEntry {
    /// The Node object's name.
    pub name: String,
    /// Its InternalIP, where its node ports and health checks listen.
    pub address: Ipv4Addr,
    /// False after `stop_node`: no listeners, pods not ready, no heartbeat.
    pub up: bool,
    /// When Ready last flipped, kept so heartbeats do not move `lastTransitionTime`.
    pub ready_since: Timestamp,
}

/// The shared core.
pub(crate) struct Shared {
    /// The API client every write goes through.
    pub client: Client,
    /// The options the cluster was started with.
    pub opts: DevClusterOptions,
    /// The nodes, in creation order.
    pub nodes: RwLock<Vec<NodeEntry>>,
    /// Bumped on every watch event and node state change.
    changed: watch::Sender<u64>,
}

impl Shared {
    pub fn new(client: Client, opts: DevClusterOptions) -> Self {
        Shared {
            client,
            opts,
            nodes: RwLock::new(Vec::new()),
            changed: watch::Sender::new(0),
        }
    }

    /// Wakes every controller; bursts coalesce into one pass.
    pub fn poke(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees [`Shared::poke`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A snapshot of all nodes.
    pub fn nodes(&self) -> Vec<NodeEntry> {
        self.nodes.read().clone()
    }

    /// How often controllers re-run without a change, as a safety net.
    pub fn resync(&self) -> Duration {
        self.opts.resync_interval
    }
}

/// Runs `pass` now, then again after every poke or resync interval, forever.
pub(crate) async fn run_forever<F, Fut>(shared: std::sync::Arc<Shared>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut rx = shared.subscribe();
    loop {
        rx.borrow_and_update();
        pass().await;
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(shared.resync()) => {}
        }
    }
}

/// The `offset`-th address after `base`, if it exists.
pub(crate) fn nth_address(base: Ipv4Addr, offset: u32) -> Option<Ipv4Addr> {
    u32::from(base).checked_add(offset).map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_address_counts_from_base() {
        let base = Ipv4Addr::new(127, 0, 1, 1);
        assert_eq!(nth_address(base, 0), Some(base));
        assert_eq!(nth_address(base, 1), Some(Ipv4Addr::new(127, 0, 1, 2)));
        assert_eq!(nth_address(base, 255), Some(Ipv4Addr::new(127, 0, 2, 0)));
        assert_eq!(nth_address(Ipv4Addr::BROADCAST, 1), None);
    }
}
