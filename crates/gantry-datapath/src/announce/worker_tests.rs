//! The announcer against the API emulator, with a loopback address (held
//! as it is: no interface to change, so no privileges needed): one holder
//! at a time, a handover when the holder stops, and renewals that need no
//! Lease list once the watch has its first one.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use k8s_openapi::{
    api::coordination::v1::Lease,
    jiff::{SignedDuration, Timestamp},
};
use kube::Api;
use kube_sim::{FaultMatcher, KubeSim, SimOptions};
use tokio::sync::watch;

use super::{Announcer, Target, Timing, election::lease_name};

const ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 93, 1));

fn target(candidates: &[&str]) -> BTreeMap<IpAddr, Target> {
    BTreeMap::from([(
        ADDR,
        Target {
            eligible: true,
            candidates: candidates.iter().map(|c| (*c).to_owned()).collect(),
            interface: None,
        },
    )])
}

/// Waits up to `within` for `held` to say whether `ADDR` is held.
async fn holds(held: &mut watch::Receiver<BTreeSet<IpAddr>>, want: bool, within: Duration) -> bool {
    tokio::time::timeout(within, held.wait_for(|h| h.contains(&ADDR) == want))
        .await
        .is_ok_and(|r| r.is_ok())
}

#[tokio::test]
async fn one_holder_then_a_handover_when_it_stops() {
    let sim = KubeSim::start(SimOptions::default())
        .await
        .expect("emulator");
    let nodes = ["n1", "n2"];
    let a = Announcer::start(sim.client(), nodes[0], Timing::default());
    let b = Announcer::start(sim.client(), nodes[1], Timing::default());
    a.set_targets(target(&nodes));
    b.set_targets(target(&nodes));
    let (mut held_a, mut held_b) = (a.held(), b.held());
    let second = Duration::from_secs(1);
    tokio::select! {
        _ = held_a.wait_for(|h| h.contains(&ADDR)) => {}
        _ = held_b.wait_for(|h| h.contains(&ADDR)) => {}
        () = tokio::time::sleep(5 * second) => panic!("nobody took the address"),
    }
    // Rounds go on: still exactly one holder after a few renewals.
    tokio::time::sleep(2 * second).await;
    let (a_holds, b_holds) = (
        held_a.borrow().contains(&ADDR),
        held_b.borrow().contains(&ADDR),
    );
    assert!(a_holds != b_holds, "holders: n1 {a_holds}, n2 {b_holds}");

    let (holder, next) = if a_holds { (a, b) } else { (b, a) };
    let mut next_held = next.held();
    holder.shutdown().await;
    // Released on shutdown: taken at once, not after the Lease expired.
    assert!(holds(&mut next_held, true, 2 * second).await, "no handover");
    let lease: Api<Lease> = Api::default_namespaced(sim.client());
    let lease = lease.get(&lease_name(ADDR)).await.expect("Lease");
    let holder_now = lease.spec.and_then(|s| s.holder_identity);
    assert!(holder_now.is_some_and(|h| nodes.contains(&h.as_str())));
    next.set_targets(BTreeMap::new());
    assert!(holds(&mut next_held, false, 2 * second).await, "not let go");
    next.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_holder_renews_while_every_lease_list_fails() {
    let sim = KubeSim::start(SimOptions::default())
        .await
        .expect("emulator");
    let timing = Timing::default();
    let announcer = Announcer::start(sim.client(), "n1", timing);
    announcer.set_targets(target(&["n1"]));
    let mut held = announcer.held();
    assert!(holds(&mut held, true, Duration::from_secs(5)).await);
    // Deciding from a watched cache lists Leases once, not every tick: with
    // every list failing from now on, the holder still renews and holds
    // the address past several Lease durations.
    sim.faults().fail_next(
        100_000,
        500,
        FaultMatcher {
            verb: Some("list"),
            resource: Some("leases"),
        },
    );
    tokio::time::sleep(timing.lease * 2).await;
    assert!(held.borrow().contains(&ADDR), "address dropped");
    let leases: Api<Lease> = Api::default_namespaced(sim.client());
    let lease = leases.get(&lease_name(ADDR)).await.expect("Lease");
    let renewed = lease.spec.and_then(|s| s.renew_time).expect("renew time").0;
    let age = Timestamp::now().duration_since(renewed);
    assert!(
        age < SignedDuration::try_from(timing.renew * 2).expect("duration"),
        "last renewal {age:?} ago"
    );
    sim.faults().clear();
    announcer.shutdown().await;
    sim.shutdown().await;
}
