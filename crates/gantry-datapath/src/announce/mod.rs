//! L2 announcement of `mode: l2` addresses: one node at a time holds each
//! address, puts it on an interface and tells the segment (gratuitous ARP for
//! IPv4, an unsolicited Neighbour Advertisement for IPv6); when the holder
//! dies another node takes over within seconds.
//!
//! targets (from `run`) -> per address, every tick: the address Leases
//! (from a watched cache, see [`lease`]) -> [`election::decide`] -> create /
//! renew / take / release a Lease -> add (with a lifetime) or remove the
//! address, announce it -> publish the held set (reported in status).
//!
//! Safety comes from the Lease (one holder per address, enforced by the API
//! with `resourceVersion`) and from ordering: an address is added only after
//! its Lease was won or renewed, removed before a Lease is given up, dropped
//! when renewals fail for nearly a Lease duration, and added with a lifetime
//! no longer than the Lease so that a holder killed outright (no chance to
//! remove anything) loses the address by itself. Listeners of l2 addresses
//! are bound with freebind on every node, so taking an address over is only
//! this: no socket to bind.
//!
//! IPv6 addresses are added the same way and announced with an unsolicited
//! Neighbour Advertisement instead of ARP.

mod arp;
mod election;
mod error;
mod iface;
mod lease;
mod ndp;
mod observed;
pub(crate) mod standalone;
mod targets;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    time::{Duration, Instant},
};

use gantry_model::{
    class::{LoadBalancerClass, LocalMode},
    local::LocalLoadBalancer,
};
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{Api, Client};
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use self::{
    election::{Decision, Turn, claim_lapsed, decide, lease_name, rank},
    error::AnnounceError,
    iface::Interface,
    lease::{Leases, Written},
};
pub(crate) use self::{
    observed::{HeldOnInterfaces, holds},
    targets::{Target, targets},
};

/// Timing of the election: short, so that failover takes seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    /// Validity of a Lease after each renewal (whole seconds).
    pub lease: Duration,
    /// How often the holder renews.
    pub renew: Duration,
    /// How often Leases are read and decisions taken.
    pub tick: Duration,
    /// Extra wait per rank before taking a free Lease.
    pub step: Duration,
    /// A holder stops announcing this long before its claim could end.
    pub margin: Duration,
}

impl Default for Timing {
    /// 3 s Leases renewed every second: a dead holder's address is free
    /// after at most 3 s and taken within one tick plus the rank wait.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(3),
            renew: Duration::from_secs(1),
            tick: Duration::from_millis(250),
            step: Duration::from_millis(500),
            margin: Duration::from_millis(500),
        }
    }
}

/// Announcements (gratuitous ARP / unsolicited NA) per takeover: at once
/// and on the next renewals, in case the first is lost.
const ANNOUNCEMENTS: u8 = 3;

/// Handle of the announcing task.
pub(crate) struct Announcer {
    targets: watch::Sender<BTreeMap<IpAddr, Target>>,
    held: watch::Receiver<BTreeSet<IpAddr>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Announcer {
    /// Starts competing as `node`, with Leases in the client's default
    /// namespace (the datapath's own in a cluster).
    pub fn start(client: Client, node: &str, timing: Timing) -> Self {
        let namespace = client.default_namespace().to_owned();
        let (targets_tx, targets_rx) = watch::channel(BTreeMap::new());
        let (held_tx, held_rx) = watch::channel(BTreeSet::new());
        let stop = CancellationToken::new();
        let worker = Worker {
            node: node.to_owned(),
            leases: Leases::new(client, &namespace, node, timing.lease),
            timing,
            targets: targets_rx,
            held_tx,
            held: BTreeMap::new(),
            absent_since: BTreeMap::new(),
        };
        let task = tokio::spawn(worker.run(stop.clone()));
        Self {
            targets: targets_tx,
            held: held_rx,
            stop,
            task,
        }
    }

    /// Replaces the addresses to compete for.
    pub fn set_targets(&self, new: BTreeMap<IpAddr, Target>) {
        self.targets.send_if_modified(|current| {
            let changed = *current != new;
            *current = new;
            changed
        });
    }

    /// The addresses this node holds, updated as they change.
    pub fn held(&self) -> watch::Receiver<BTreeSet<IpAddr>> {
        self.held.clone()
    }

    /// Removes every held address, then releases its Lease so another
    /// node takes over at once.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "Announcer task failed");
        }
    }
}

/// The interface each class of the `l2` objects names
/// (`spec.local.interface`), by class name. A class that cannot be read
/// names none (the address's own network decides), with a warning.
pub(crate) async fn class_interfaces<'a>(
    client: &Client,
    objects: impl Iterator<Item = &'a LocalLoadBalancer>,
) -> BTreeMap<String, String> {
    let classes: BTreeSet<&str> = objects
        .filter(|o| o.spec.mode == LocalMode::L2)
        .map(|o| o.spec.class.as_str())
        .collect();
    let api: Api<LoadBalancerClass> = Api::all(client.clone());
    let mut out = BTreeMap::new();
    for class in classes {
        match api.get_opt(class).await {
            Ok(found) => {
                if let Some(name) = found.and_then(|c| c.spec.local).and_then(|l| l.interface) {
                    out.insert(class.to_owned(), name);
                }
            }
            Err(error) => {
                tracing::warn!(%error, class, "Reading the class failed; choosing interfaces by network");
            }
        }
    }
    out
}

/// An address this node holds.
struct Held {
    /// Where it was added; none for a loopback address (see
    /// [`Worker::announce`]).
    iface: Option<Interface>,
    /// Last successful claim or renewal.
    renewed: Instant,
    /// Announcements still to send.
    announcements: u8,
}

struct Worker {
    node: String,
    leases: Leases,
    timing: Timing,
    targets: watch::Receiver<BTreeMap<IpAddr, Target>>,
    held_tx: watch::Sender<BTreeSet<IpAddr>>,
    held: BTreeMap<IpAddr, Held>,
    /// When this node first saw no Lease for an address.
    absent_since: BTreeMap<IpAddr, Timestamp>,
}

impl Worker {
    async fn run(mut self, stop: CancellationToken) {
        // Deciding on an empty cache would take every address for absent.
        tokio::select! {
            () = stop.cancelled() => return,
            synced = self.leases.synced() => if let Err(error) = synced {
                tracing::warn!(%error, "No address Leases to decide on; not announcing");
                return;
            },
        }
        let mut tick = tokio::time::interval(self.timing.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
                changed = self.targets.changed() => if changed.is_err() { break },
            }
            self.round().await;
            self.publish();
        }
        self.release_all().await;
        self.publish();
    }

    fn publish(&self) {
        let now: BTreeSet<IpAddr> = self.held.keys().copied().collect();
        self.held_tx.send_if_modified(|current| {
            let changed = *current != now;
            *current = now;
            changed
        });
    }

    async fn round(&mut self) {
        let targets = self.targets.borrow_and_update().clone();
        if targets.is_empty() && self.held.is_empty() {
            // No l2 address here: no API traffic either.
            return;
        }
        self.absent_since.retain(|a, _| targets.contains_key(a));
        let leases = self.leases.cached();
        let gone: Vec<IpAddr> = self
            .held
            .keys()
            .filter(|a| !targets.contains_key(a))
            .copied()
            .collect();
        for addr in gone {
            self.let_go(addr, leases.get(&lease_name(addr)).cloned())
                .await;
        }
        for (addr, target) in &targets {
            let lease = leases.get(&lease_name(*addr)).cloned();
            self.step(*addr, target, lease).await;
        }
    }

    /// Decides on `addr` with its Lease as cached; should a write meet a
    /// newer Lease (409), decides once more on that Lease as it is now.
    async fn step(&mut self, addr: IpAddr, target: &Target, lease: Option<Lease>) {
        if self.decide_on(addr, target, lease).await != Some(Written::Conflict) {
            return;
        }
        match self.leases.get(&lease_name(addr)).await {
            Ok(fresh) => {
                self.decide_on(addr, target, fresh).await;
            }
            Err(error) => tracing::warn!(%error, %addr, "Re-reading the Lease failed"),
        }
    }

    /// One decision on `addr` given `lease`; the outcome of the Lease
    /// write it made, if any.
    async fn decide_on(
        &mut self,
        addr: IpAddr,
        target: &Target,
        lease: Option<Lease>,
    ) -> Option<Written> {
        let now = Timestamp::now();
        let absent_since = match &lease {
            None => *self.absent_since.entry(addr).or_insert(now),
            Some(_) => {
                self.absent_since.remove(&addr);
                now
            }
        };
        let turn = Turn {
            eligible: target.eligible,
            rank: rank(addr, &self.node, &target.candidates),
            step: self.timing.step,
            absent_since,
        };
        let state = lease.as_ref().map(lease::state);
        match (decide(&self.node, state.as_ref(), turn, now), lease) {
            (Decision::Keep, Some(lease)) => {
                let due = self
                    .held
                    .get(&addr)
                    .is_none_or(|h| h.renewed.elapsed() >= self.timing.renew);
                if !due {
                    return None;
                }
                let result = self.leases.claim(lease).await;
                self.claimed(addr, target, result).await
            }
            (Decision::Acquire, lease) => {
                let result = match lease {
                    None => self.leases.create(addr).await,
                    Some(lease) => self.leases.claim(lease).await,
                };
                if matches!(result, Ok(Written::Done)) {
                    tracing::info!(%addr, node = self.node, "Took address");
                }
                self.claimed(addr, target, result).await
            }
            (Decision::Release, lease) => {
                tracing::info!(%addr, "No longer ready to serve the address; letting it go");
                self.let_go(addr, lease).await;
                None
            }
            // Another node holds it (or it is not ours to take): whatever we
            // had must go before that node's clients reach us.
            (Decision::Wait | Decision::Keep, _) => {
                if self.held.contains_key(&addr) {
                    tracing::info!(%addr, "Address held by another node now; removing it");
                    self.unannounce(addr).await;
                }
                None
            }
        }
    }

    /// After a create, renewal or takeover; the write's outcome, if it
    /// reached the API.
    async fn claimed(
        &mut self,
        addr: IpAddr,
        target: &Target,
        result: Result<Written, AnnounceError>,
    ) -> Option<Written> {
        match result {
            Ok(Written::Done) => {
                if let Err(error) = self.announce(addr, target).await {
                    tracing::warn!(%error, %addr, transient = error.is_transient(), "Announcing the address failed; retrying");
                }
                Some(Written::Done)
            }
            // The caller decides again on the Lease as it is now: if another
            // node won, ours is removed then. Renewals that keep meeting
            // newer Leases must not keep the address past its claim either.
            Ok(Written::Conflict) => {
                self.drop_lapsed().await;
                Some(Written::Conflict)
            }
            Err(error) => {
                tracing::warn!(%error, %addr, "Lease write failed");
                self.drop_lapsed().await;
                None
            }
        }
    }

    /// Puts `addr` on its interface (or refreshes its lifetime) and sends
    /// the announcements still due.
    async fn announce(&mut self, addr: IpAddr, target: &Target) -> Result<(), AnnounceError> {
        let renewed = Instant::now();
        // A loopback address (one datapath for a whole emulated cluster, as
        // in dev) is local already and has no segment to announce on: held
        // and served as is.
        if addr.is_loopback() {
            let held = self.held.entry(addr).or_insert(Held {
                iface: None,
                renewed,
                announcements: 0,
            });
            held.renewed = renewed;
            return Ok(());
        }
        let iface = match self.held.get(&addr).and_then(|h| h.iface.clone()) {
            Some(iface) => iface,
            None => iface::find(addr, target.interface.as_deref())?,
        };
        // No longer than the Lease minus the margin: the kernel drops the
        // address of a holder that stopped renewing before another node may
        // take it over.
        let lifetime = self.timing.lease.saturating_sub(self.timing.margin);
        iface::add(addr, &iface.name, lifetime).await?;
        let held = self.held.entry(addr).or_insert_with(|| {
            tracing::info!(%addr, interface = iface.name, "Address added");
            Held {
                iface: Some(iface),
                renewed,
                announcements: ANNOUNCEMENTS,
            }
        });
        held.renewed = renewed;
        if held.announcements > 0 {
            held.announcements -= 1;
            match (addr, &held.iface) {
                (IpAddr::V4(v4), Some(iface)) => arp::announce(iface, v4).await?,
                (IpAddr::V6(v6), Some(iface)) => ndp::announce(iface, v6).await?,
                (_, None) => {}
            }
        }
        Ok(())
    }

    /// Removes `addr` from its interface.
    async fn unannounce(&mut self, addr: IpAddr) {
        let Some(iface) = self.held.remove(&addr).and_then(|h| h.iface) else {
            return;
        };
        match iface::remove(addr, &iface.name).await {
            Ok(()) => tracing::info!(%addr, interface = iface.name, "Address removed"),
            Err(error) => tracing::warn!(%error, %addr, "Removing the address failed"),
        }
    }

    /// Removes `addr`, then releases its Lease if this node holds it (read
    /// again should the cached one be behind).
    async fn let_go(&mut self, addr: IpAddr, lease: Option<Lease>) {
        self.unannounce(addr).await;
        let Some(lease) = lease else {
            return;
        };
        let mut result = self.leases.release(lease).await;
        if matches!(result, Ok(Written::Conflict)) {
            result = match self.leases.get(&lease_name(addr)).await {
                Ok(Some(fresh)) => self.leases.release(fresh).await,
                Ok(None) => Ok(Written::Done),
                Err(error) => Err(error),
            };
        }
        if let Err(error) = result {
            tracing::warn!(%error, %addr, "Releasing the Lease failed; it will expire");
        }
    }

    /// Stops announcing addresses whose claim may have ended because
    /// renewals keep failing.
    async fn drop_lapsed(&mut self) {
        let lapsed: Vec<IpAddr> = self
            .held
            .iter()
            .filter(|(_, h)| {
                claim_lapsed(h.renewed.elapsed(), self.timing.lease, self.timing.margin)
            })
            .map(|(a, _)| *a)
            .collect();
        for addr in lapsed {
            tracing::warn!(%addr, "Lease not renewed in time; removing the address");
            self.unannounce(addr).await;
        }
    }

    /// On shutdown: every address off, then every Lease released.
    async fn release_all(&mut self) {
        let addrs: Vec<IpAddr> = self.held.keys().copied().collect();
        for addr in addrs {
            self.unannounce(addr).await;
            match self.leases.get(&lease_name(addr)).await {
                Ok(Some(lease)) => {
                    if let Err(error) = self.leases.release(lease).await {
                        tracing::warn!(%error, %addr, "Releasing the Lease failed; it will expire");
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, %addr, "Reading the Lease failed; it will expire")
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod worker_tests;
