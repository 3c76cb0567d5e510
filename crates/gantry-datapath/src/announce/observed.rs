//! The addresses this node holds, as a datapath without an announcer of
//! its own sees them: those on its interfaces. The announcer beside it
//! adds and removes them; reading them needs no privilege.

use std::{collections::BTreeSet, net::IpAddr, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

/// How often the interfaces are read: well under the announcer's tick, so
/// a taken address is reported within a second.
const EVERY: Duration = Duration::from_millis(250);

/// Follows the addresses on this node's interfaces.
pub(crate) struct HeldOnInterfaces {
    held: watch::Receiver<BTreeSet<IpAddr>>,
    task: JoinHandle<()>,
}

impl HeldOnInterfaces {
    /// Starts reading the interfaces.
    pub fn start() -> Self {
        let (tx, held) = watch::channel(BTreeSet::new());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = on_interfaces();
                tx.send_if_modified(|current| {
                    let changed = *current != now;
                    *current = now;
                    changed
                });
            }
        });
        Self { held, task }
    }

    /// The addresses held, updated as they change.
    pub fn held(&self) -> watch::Receiver<BTreeSet<IpAddr>> {
        self.held.clone()
    }

    /// Stops reading.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Every address on an interface, and the whole loopback range: a
/// loopback balancer address (one datapath for an emulated cluster) is
/// local without being added anywhere, as the announcer treats it too.
fn on_interfaces() -> BTreeSet<IpAddr> {
    pnet_datalink::interfaces()
        .into_iter()
        .flat_map(|i| i.ips)
        .map(|n| n.ip())
        .collect()
}

/// Whether this node holds `addr`, given the addresses on its interfaces.
pub(crate) fn holds(on_interfaces: &BTreeSet<IpAddr>, addr: IpAddr) -> bool {
    addr.is_loopback() || on_interfaces.contains(&addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_held_others_only_when_on_an_interface() {
        let on: BTreeSet<IpAddr> = ["192.0.2.100".parse().expect("ip")].into();
        assert!(holds(&on, "192.0.2.100".parse().expect("ip")));
        assert!(!holds(&on, "192.0.2.101".parse().expect("ip")));
        assert!(holds(&on, "127.0.40.1".parse().expect("ip")));
        assert!(holds(&BTreeSet::new(), "::1".parse().expect("ip")));
    }

    #[tokio::test]
    async fn the_loopback_interface_is_read() {
        let reader = HeldOnInterfaces::start();
        let mut held = reader.held();
        let seen = tokio::time::timeout(
            Duration::from_secs(2),
            held.wait_for(|h| h.contains(&IpAddr::from([127, 0, 0, 1]))),
        )
        .await;
        assert!(seen.is_ok_and(|r| r.is_ok()), "127.0.0.1 not seen");
        reader.stop();
    }
}
