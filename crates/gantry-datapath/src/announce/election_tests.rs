use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).expect("time")
}

fn nodes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

const STEP: Duration = Duration::from_millis(500);

fn turn(eligible: bool, rank: usize) -> Turn {
    Turn {
        eligible,
        rank,
        step: STEP,
        absent_since: t(0),
    }
}

#[test]
fn lease_names_are_valid_object_names() {
    assert_eq!(lease_name(ip("192.0.2.100")), "gantry-l2-192-0-2-100");
    assert_eq!(
        lease_name(ip("2001:db8::")),
        "gantry-l2-2001-db8-0-0-0-0-0-0"
    );
    assert_eq!(lease_name(ip("::1")), "gantry-l2-0-0-0-0-0-0-0-1");
    for name in [lease_name(ip("10.0.0.1")), lease_name(ip("fe80::abcd"))] {
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name}"
        );
        assert!(!name.ends_with('-'), "{name}");
    }
}

#[test]
fn ranks_are_a_permutation_every_node_agrees_on() {
    let all = nodes(&["n1", "n2", "n3", "n4"]);
    for addr in ["192.0.2.1", "192.0.2.2", "2001:db8::7"] {
        let mut ranks: Vec<usize> = all.iter().map(|n| rank(ip(addr), n, &all)).collect();
        ranks.sort_unstable();
        assert_eq!(ranks, vec![0, 1, 2, 3], "{addr}");
        // A node computing its rank from a list without itself agrees.
        for n in &all {
            let others: Vec<String> = all.iter().filter(|o| *o != n).cloned().collect();
            assert_eq!(rank(ip(addr), n, &others), rank(ip(addr), n, &all));
        }
    }
}

#[test]
fn preferences_spread_addresses_over_nodes() {
    let all = nodes(&["n1", "n2", "n3"]);
    let mut first: BTreeMap<String, usize> = BTreeMap::new();
    for last in 1..=90u8 {
        let addr = IpAddr::from([192, 0, 2, last]);
        let winner = all
            .iter()
            .find(|n| rank(addr, n, &all) == 0)
            .expect("one node ranks first");
        *first.entry(winner.clone()).or_default() += 1;
    }
    assert_eq!(first.len(), 3, "{first:?}");
    assert!(first.values().all(|n| *n >= 15), "{first:?}");
}

#[test]
fn a_valid_lease_of_another_node_is_respected() {
    let lease = LeaseState::new(Some("n2"), Some(t(0)), Some(3));
    assert_eq!(lease.expires, t(3));
    assert_eq!(
        decide("n1", Some(&lease), turn(true, 0), t(2)),
        Decision::Wait
    );
}

#[test]
fn an_expired_lease_is_taken_in_rank_order() {
    let lease = LeaseState::new(Some("dead"), Some(t(0)), Some(3));
    let at = |ms: i64| t(3) + SignedDuration::from_millis(ms);
    assert_eq!(
        decide("n1", Some(&lease), turn(true, 0), at(0)),
        Decision::Acquire
    );
    assert_eq!(
        decide("n2", Some(&lease), turn(true, 1), at(400)),
        Decision::Wait
    );
    assert_eq!(
        decide("n2", Some(&lease), turn(true, 1), at(500)),
        Decision::Acquire
    );
    assert_eq!(
        decide("n3", Some(&lease), turn(true, 2), at(900)),
        Decision::Wait
    );
    assert_eq!(
        decide("n3", Some(&lease), turn(true, 2), at(1000)),
        Decision::Acquire
    );
}

#[test]
fn a_released_lease_is_free_from_the_release() {
    let lease = LeaseState::new(None, Some(t(10)), Some(3));
    assert_eq!(lease.expires, t(10));
    assert_eq!(
        decide("n1", Some(&lease), turn(true, 0), t(10)),
        Decision::Acquire
    );
    let empty_holder = LeaseState::new(Some(""), Some(t(10)), Some(3));
    assert_eq!(empty_holder, lease);
}

#[test]
fn a_missing_lease_is_free_since_first_seen_missing() {
    let mut tn = turn(true, 1);
    tn.absent_since = t(5);
    let at = t(5) + SignedDuration::from_millis(499);
    assert_eq!(decide("n2", None, tn, at), Decision::Wait);
    assert_eq!(decide("n2", None, tn, t(6)), Decision::Acquire);
    assert_eq!(decide("n1", None, turn(true, 0), t(0)), Decision::Acquire);
}

#[test]
fn only_eligible_nodes_compete_and_holders_that_are_not_let_go() {
    let expired = LeaseState::new(Some("dead"), Some(t(0)), Some(3));
    assert_eq!(
        decide("n1", Some(&expired), turn(false, 0), t(60)),
        Decision::Wait
    );
    assert_eq!(decide("n1", None, turn(false, 0), t(60)), Decision::Wait);

    let mine = LeaseState::new(Some("n1"), Some(t(0)), Some(3));
    assert_eq!(
        decide("n1", Some(&mine), turn(true, 2), t(1)),
        Decision::Keep
    );
    // Even past expiry: the holder renews, nobody else has taken it yet.
    assert_eq!(
        decide("n1", Some(&mine), turn(true, 2), t(9)),
        Decision::Keep
    );
    assert_eq!(
        decide("n1", Some(&mine), turn(false, 0), t(1)),
        Decision::Release
    );
}

#[test]
fn a_holder_stops_announcing_before_its_claim_can_have_ended() {
    let lease = Duration::from_secs(3);
    let margin = Duration::from_millis(500);
    assert!(!claim_lapsed(Duration::from_millis(2400), lease, margin));
    assert!(claim_lapsed(Duration::from_millis(2500), lease, margin));
    assert!(claim_lapsed(Duration::from_secs(60), lease, margin));
}

/// An in-memory Lease store with the API's optimistic concurrency, and
/// nodes that follow [`decide`] each tick, as the announcer does.
#[test]
fn simulated_nodes_elect_one_holder_and_fail_over_within_the_lease() {
    #[derive(Clone)]
    struct Stored {
        state: LeaseState,
        version: u64,
    }
    let addr = ip("192.0.2.100");
    let lease_secs = 3;
    let all = nodes(&["n1", "n2", "n3"]);
    let mut store: Option<Stored> = None;
    let mut alive: BTreeMap<String, bool> = all.iter().map(|n| (n.clone(), true)).collect();
    let tick = SignedDuration::from_millis(250);
    let mut now = t(0);
    let mut holders_seen = Vec::new();
    let mut killed_at = None;
    let mut failover_at = None;
    for i in 0..80 {
        // Every node reads the same version, then writes in turn; a write
        // based on a stale version fails as a 409 would.
        let read = store.clone();
        for n in &all {
            if !alive[n] {
                continue;
            }
            let state = read.as_ref().map(|s| &s.state);
            let tn = turn(true, rank(addr, n, &all));
            let write = match decide(n, state, tn, now) {
                Decision::Keep | Decision::Acquire => Some(Some(n.clone())),
                Decision::Release => Some(None),
                Decision::Wait => None,
            };
            let Some(holder) = write else { continue };
            let current = store.as_ref().map(|s| s.version);
            if current != read.as_ref().map(|s| s.version) {
                continue; // 409
            }
            store = Some(Stored {
                state: LeaseState::new(holder.as_deref(), Some(now), Some(lease_secs)),
                version: current.unwrap_or(0) + 1,
            });
        }
        let holder = store.as_ref().and_then(|s| s.state.holder.clone());
        if holders_seen.last() != Some(&holder) {
            holders_seen.push(holder.clone());
            if killed_at.is_some() && failover_at.is_none() {
                failover_at = Some(now);
            }
        }
        if i == 20 {
            let h = holder.expect("someone holds it by now");
            alive.insert(h, false);
            killed_at = Some(now);
        }
        now += tick;
    }
    assert_eq!(holders_seen.len(), 2, "first, second: {holders_seen:?}");
    let first = holders_seen[0].clone().expect("first holder");
    assert_eq!(rank(addr, &first, &all), 0, "the preferred node wins");
    let second = holders_seen[1].clone().expect("second holder");
    assert_eq!(rank(addr, &second, &all), 1, "the next one takes over");
    let took = failover_at
        .expect("failover")
        .duration_since(killed_at.expect("kill"));
    assert!(took <= SignedDuration::from_millis(4000), "{took}");
}
