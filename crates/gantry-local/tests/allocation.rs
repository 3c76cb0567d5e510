//! Address allocation against the emulated API server: pools, requested
//! addresses, exhaustion, restarts and concurrent ensures.

mod common;

use std::collections::BTreeSet;

use common::{Env, ip, svc};
use gantry_model::{
    LoadBalancer, ProviderError,
    class::LocalMode,
    provider::{DeleteOutcome, ObservedStatus},
};

fn address(status: &ObservedStatus) -> String {
    assert_eq!(status.ingress.len(), 1, "{status:?}");
    status.ingress[0].ip.expect("ip").to_string()
}

#[tokio::test]
async fn slash_30_hands_out_its_two_usable_addresses() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    let a = p.ensure(&svc("a").0).await.expect("a");
    let b = p.ensure(&svc("b").0).await.expect("b");
    assert_eq!(address(&a), "192.0.2.1");
    assert_eq!(address(&b), "192.0.2.2");
    let err = p
        .ensure(&svc("c").0)
        .await
        .expect_err("c exhausts the pool");
    assert!(matches!(err, ProviderError::Exhausted { .. }), "{err}");
    assert_eq!(env.objects().await.len(), 2, "nothing written for c");
    assert_eq!(a.ingress[0].ports.len(), 1);
    assert_eq!(a.ingress[0].ports[0].port, 80);
}

#[tokio::test]
async fn ipv6_pools_are_used_when_only_ipv6_or_requested() {
    let env = Env::start().await;
    let v6 = env.provider_for("v6", LocalMode::L2, &["2001:db8::/126"]);
    let got = v6.ensure(&svc("a").class("v6").0).await.expect("v6");
    assert_eq!(address(&got), "2001:db8::");

    let mixed = env.provider_for(
        "mixed",
        LocalMode::L2,
        &["2001:db8:1::/126", "192.0.2.8/31"],
    );
    let v4 = mixed.ensure(&svc("b").class("mixed").0).await.expect("v4");
    assert_eq!(address(&v4), "192.0.2.8");
    let asked = mixed
        .ensure(&svc("c").class("mixed").requested("2001:db8:1::3").0)
        .await
        .expect("requested v6");
    assert_eq!(address(&asked), "2001:db8:1::3");
}

#[tokio::test]
async fn requested_addresses_are_honoured_checked_and_exclusive() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/29"]);
    let a = p
        .ensure(&svc("a").requested("192.0.2.5").0)
        .await
        .expect("a");
    assert_eq!(address(&a), "192.0.2.5");
    // An unrequesting owner gets the lowest free address, not a's.
    let b = p.ensure(&svc("b").0).await.expect("b");
    assert_eq!(address(&b), "192.0.2.1");

    let err = p
        .ensure(&svc("c").requested("198.51.100.1").0)
        .await
        .expect_err("outside the pools");
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err}");
    assert!(
        err.to_string().contains("spec.loadBalancerIP 198.51.100.1"),
        "{err}"
    );

    let err = p
        .ensure(&svc("d").requested("192.0.2.5").0)
        .await
        .expect_err("taken");
    assert!(
        err.to_string().contains("already allocated to default/a"),
        "{err}"
    );
    assert_eq!(
        env.all_addresses().await,
        [ip("192.0.2.1"), ip("192.0.2.5")]
    );
}

/// LESSONS 12: one address, two Services, repeated restarts.
#[tokio::test]
async fn exhausted_pool_survives_restarts_without_duplicates() {
    let env = Env::start().await;
    let pool = ["192.0.2.10/32"];
    let first = svc("first");
    let second = svc("second");

    let p = env.provider(&pool);
    assert_eq!(
        address(&p.ensure(&first.0).await.expect("first")),
        "192.0.2.10"
    );
    let err = p.ensure(&second.0).await.expect_err("second");
    assert!(matches!(err, ProviderError::Exhausted { .. }), "{err}");

    for restart in 0..5 {
        let p = env.provider(&pool);
        // The pending Service asks first, before the holder is seen again.
        let err = p.ensure(&second.0).await.expect_err("still exhausted");
        assert!(
            matches!(err, ProviderError::Exhausted { .. }),
            "restart {restart}: {err}"
        );
        let kept = p.ensure(&first.0).await.expect("first again");
        assert_eq!(address(&kept), "192.0.2.10", "restart {restart}");
        assert!(p.ensure(&second.0).await.is_err());
        assert_eq!(
            env.all_addresses().await,
            [ip("192.0.2.10")],
            "restart {restart}"
        );
    }

    let p = env.provider(&pool);
    assert_eq!(
        p.delete(first.owner()).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    let got = p
        .ensure(&second.0)
        .await
        .expect("second gets the freed address");
    assert_eq!(address(&got), "192.0.2.10");
    assert_eq!(env.all_addresses().await, [ip("192.0.2.10")]);
}

#[tokio::test]
async fn deleting_an_unrelated_balancer_moves_nothing() {
    let env = Env::start().await;
    let pool = ["192.0.2.0/30"];
    let p = env.provider(&pool);
    p.ensure(&svc("a").0).await.expect("a");
    assert_eq!(
        address(&p.ensure(&svc("b").0).await.expect("b")),
        "192.0.2.2"
    );
    p.delete(svc("a").owner()).await.expect("delete a");

    for provider in [p, env.provider(&pool)] {
        let b = provider.ensure(&svc("b").0).await.expect("b again");
        assert_eq!(address(&b), "192.0.2.2", "b keeps its address");
    }
    let c = env.provider(&pool).ensure(&svc("c").0).await.expect("c");
    assert_eq!(address(&c), "192.0.2.1", "c takes the freed address");
}

#[tokio::test]
async fn concurrent_ensures_across_classes_never_duplicate() {
    let env = Env::start().await;
    // Two classes over the same range: separate providers, shared addresses.
    let pool = ["192.0.2.0/29"];
    let one = env.provider_for("one", LocalMode::L2, &pool);
    let two = env.provider_for("two", LocalMode::L2, &pool);
    let states: Vec<_> = (0..10)
        .map(|i| {
            let class = if i % 2 == 0 { "one" } else { "two" };
            svc(&format!("s{i}")).class(class).0
        })
        .collect();
    let results = futures::future::join_all(states.iter().map(|d| {
        let p = if d.class == "one" { &one } else { &two };
        p.ensure(d)
    }))
    .await;
    let granted: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(address)
        .collect();
    let exhausted = results
        .iter()
        .filter(|r| matches!(r, Err(ProviderError::Exhausted { .. })))
        .count();
    assert_eq!(
        granted.len(),
        6,
        "a /29 has six usable addresses: {results:?}"
    );
    assert_eq!(exhausted, 4, "{results:?}");
    let distinct: BTreeSet<&String> = granted.iter().collect();
    assert_eq!(distinct.len(), 6, "{granted:?}");
    let stored = env.all_addresses().await;
    let stored_distinct: BTreeSet<_> = stored.iter().collect();
    assert_eq!(stored.len(), stored_distinct.len(), "{stored:?}");
}

#[tokio::test]
async fn a_shared_address_book_never_duplicates_and_survives_restarts() {
    let env = Env::start().await;
    let book = gantry_local::AddressBook::default();
    let pool = ["192.0.2.0/29"];
    let one = env
        .provider_for("one", LocalMode::L2, &pool)
        .with_address_book(&book);
    let two = env
        .provider_for("two", LocalMode::L2, &pool)
        .with_address_book(&book);
    let states: Vec<_> = (0..10)
        .map(|i| {
            let class = if i % 2 == 0 { "one" } else { "two" };
            svc(&format!("s{i}")).class(class).0
        })
        .collect();
    let results = futures::future::join_all(states.iter().map(|d| {
        let p = if d.class == "one" { &one } else { &two };
        p.ensure(d)
    }))
    .await;
    let granted: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(address)
        .collect();
    assert_eq!(granted.len(), 6, "six distinct addresses: {results:?}");

    // Deleting through one class frees an address the other class can use
    // at once: the book is shared, not rebuilt per class.
    let first = states
        .iter()
        .zip(&results)
        .find(|(d, r)| d.class == "one" && r.is_ok())
        .map(|(d, _)| d.clone())
        .expect("one of class one was granted");
    assert_eq!(
        one.delete(&first.owner).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    let waiting = states
        .iter()
        .zip(&results)
        .find(|(d, r)| d.class == "two" && r.is_err())
        .map(|(d, _)| d.clone())
        .expect("one of class two was refused");
    let freed = results
        .iter()
        .zip(&states)
        .find(|(_, d)| d.owner == first.owner)
        .and_then(|(r, _)| r.as_ref().ok())
        .map(address)
        .expect("first's address");
    let got = two.ensure(&waiting).await.expect("the freed address");
    assert_eq!(address(&got), freed);

    // A restarted process (a new book) rebuilds from what is published.
    let fresh = env
        .provider_for("one", LocalMode::L2, &pool)
        .with_address_book(&gantry_local::AddressBook::default());
    let err = fresh
        .ensure(&svc("late").class("one").0)
        .await
        .expect_err("the pool is full again");
    assert!(matches!(err, ProviderError::Exhausted { .. }), "{err}");
    let stored = env.all_addresses().await;
    let distinct: BTreeSet<_> = stored.iter().collect();
    assert_eq!(stored.len(), distinct.len(), "{stored:?}");
}
