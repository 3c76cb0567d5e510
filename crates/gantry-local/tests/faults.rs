//! API failures: how they are classified, and that a failed write neither
//! leaks nor duplicates an address.

mod common;

use std::time::Duration;

use common::{Env, ip, svc};
use gantry_model::{LoadBalancer, ProviderError, provider::ErrorClass};

#[tokio::test]
async fn failed_create_leaks_no_address() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    env.fail_next(1, "create", 500);
    let err = p.ensure(&svc("a").0).await.expect_err("create fails");
    assert!(
        matches!(
            err,
            ProviderError::Transient {
                operation: "CreateLocalLoadBalancer",
                ..
            }
        ),
        "{err}"
    );
    let a = p.ensure(&svc("a").0).await.expect("retry");
    assert_eq!(
        a.ingress[0].ip,
        Some(ip("192.0.2.1")),
        "the first address is still free"
    );
    assert_eq!(env.all_addresses().await, [ip("192.0.2.1")]);
}

#[tokio::test]
async fn conflicts_are_transient_and_the_address_survives() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    p.ensure(&svc("a").0).await.expect("a");
    env.fail_next(1, "update", 409);
    let err = p
        .ensure(&svc("a").tcp(&[80, 81]).0)
        .await
        .expect_err("conflict");
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    let a = p.ensure(&svc("a").tcp(&[80, 81]).0).await.expect("retry");
    assert_eq!(a.ingress[0].ip, Some(ip("192.0.2.1")));
    assert_eq!(a.ingress[0].ports.len(), 2);
}

#[tokio::test]
async fn validation_failures_are_permanent() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    env.fail_next(1, "create", 422);
    let err = p.ensure(&svc("a").0).await.expect_err("invalid");
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err}");
    env.fail_next(1, "list", 500);
    let err = p.ensure(&svc("b").0).await.expect_err("list fails");
    assert!(
        matches!(
            err,
            ProviderError::Transient {
                operation: "ListLocalLoadBalancers",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn slow_calls_time_out() {
    let env = Env::start().await;
    let p = env
        .provider(&["192.0.2.0/30"])
        .with_call_timeout(Duration::from_millis(100));
    env.sim.faults().set_latency(Duration::from_secs(2));
    let err = p.ensure(&svc("a").0).await.expect_err("slow");
    assert!(matches!(err, ProviderError::Timeout { .. }), "{err}");
    env.sim.faults().set_latency(Duration::ZERO);
    // Whatever the slow call did, the retry converges on one address.
    p.ensure(&svc("a").0).await.expect("retry");
    assert_eq!(env.all_addresses().await, [ip("192.0.2.1")]);
}
