//! `429 rateLimitExceeded` and `503 backendError` on a share of every kind
//! of call while two Services are created and deleted: everything
//! converges, with exactly one chain per Service and nothing left after.

use gantry_e2e::{
    gcp::{GcpEnv, GcpOptions},
    wait_for,
};
use serde_json::{Value, json};

use crate::support::{T, holdings, l4_chain, seed_service, wait_holdings};

#[test]
fn rate_limits_and_unavailability_converge_without_duplicates() {
    let env = GcpEnv::start(GcpOptions::default()).expect("environment");
    // Every 4th call is throttled and every 5th of the rest fails with 503,
    // reads and writes alike, until cleared.
    env.fault(json!([
        {"pathContains": "/compute/v1/", "status": 429, "every": 4, "times": 0},
        {"pathContains": "/compute/v1/", "status": 503, "every": 5, "times": 0},
    ]));
    env.apply(
        "svcs",
        &format!(
            "{}---\n{}",
            seed_service("first", ""),
            seed_service("second", "")
        ),
    );
    let a = env.wait_ip("svc", "first", T);
    let b = env.wait_ip("svc", "second", T);
    assert_ne!(a, b);
    wait_holdings(&env, "one chain per Service", &l4_chain(2, 1, 2));
    let (_, rules) = env.sim_call("GET", "/_sim/faults", None);
    let seen: u64 = rules
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["seen"].as_u64())
        .sum();
    assert!(
        seen >= 20,
        "the faults saw too few calls to matter: {rules}"
    );

    env.kubectl(&[
        "delete",
        "svc",
        "first",
        "second",
        "--wait=true",
        "--timeout=60s",
    ]);
    wait_for("nothing of Gantry's left under faults", T, || {
        holdings(&env).is_empty().then_some(())
    });
    let (_, rules): (u16, Value) = env.sim_call("GET", "/_sim/faults", None);
    println!("faults: {rules}");
}
