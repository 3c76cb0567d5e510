//! `LoadBalancerClass` status: `Accepted` with the field and value at fault,
//! Events on transitions, objects of a rejected class failing without a
//! provider call, the default-class rule, and no status write on a no-op.

mod common;

use common::{Harness, WAIT, base, wait_for};
use gantry_model::{LoadBalancerClass, fixtures};
use gantry_testkit::Op;
use k8s_openapi::{api::core::v1::Service, apimachinery::pkg::apis::meta::v1::Condition};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

fn classes(h: &Harness) -> Api<LoadBalancerClass> {
    Api::all(h.client.clone())
}

async fn condition(h: &Harness, class: &str, type_: &str) -> Option<Condition> {
    classes(h)
        .get(class)
        .await
        .ok()?
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
}

/// Wait until `class` has condition `type_` with `status`; returns it.
async fn wait_condition(h: &Harness, class: &str, type_: &str, status: &str) -> Condition {
    wait_for(&format!("{class} {type_}={status}"), WAIT, || async {
        condition(h, class, type_)
            .await
            .filter(|c| c.status == status)
    })
    .await
}

async fn set_pools(h: &Harness, class: &str, pools: &[&str]) {
    classes(h)
        .patch(
            class,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "local": { "pools": pools } } })),
        )
        .await
        .expect("class patched");
}

fn ready(svc: &Service) -> Option<Condition> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pool_is_reported_and_its_fix_provisions_the_service() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(2).await;
    set_pools(&h, "a", &["192.0.2.0/28", "10.0.0.0/33"]).await;
    h.start().await;

    let accepted = wait_condition(&h, "a", "Accepted", "False").await;
    assert_eq!(accepted.reason, "InvalidSettings");
    assert!(
        accepted
            .message
            .contains(r#"spec.local.pools[1]: "10.0.0.0/33""#),
        "{}",
        accepted.message
    );
    let generation = classes(&h)
        .get("a")
        .await
        .expect("class")
        .metadata
        .generation;
    assert_eq!(accepted.observed_generation, generation);
    let warning = h.wait_for_event("a", "InvalidLoadBalancerClass").await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .note
            .unwrap_or_default()
            .contains("spec.local.pools[1]"),
        "the Event names the field"
    );

    // A Service of the class fails, naming the class and the problem, and
    // its provider is never called.
    h.create_service("web", "a").await;
    let failed = h.wait_for_event("web", "SyncLoadBalancerFailed").await;
    let note = failed.note.unwrap_or_default();
    assert!(
        note.contains(r#""a""#) && note.contains("spec.local.pools[1]"),
        "{note}"
    );
    let cond = wait_for("Ready=False on web", WAIT, || async {
        ready(&h.get_service("web").await?).filter(|c| c.status == "False")
    })
    .await;
    assert!(cond.message.contains("spec.local.pools[1]"), "{cond:?}");
    // Only the startup inventory listed the class (read-only, so balancers
    // built before the class went bad can still be cleaned up).
    let calls = h.provider("a").calls();
    assert!(
        calls.iter().all(|c| c.op == Op::ListOwned),
        "no provider call for the Service: {calls:#?}"
    );

    // The fix: accepted, a Normal Event, and the Service provisions.
    set_pools(&h, "a", &["192.0.2.0/28"]).await;
    let accepted = wait_condition(&h, "a", "Accepted", "True").await;
    assert_eq!(accepted.reason, "Accepted");
    let normal = h.wait_for_event("a", "Accepted").await;
    assert_eq!(normal.type_.as_deref(), Some("Normal"));
    let ip = h.wait_for_ip("web").await;
    assert!(ip.starts_with("192.0.2."), "{ip}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_without_a_provider_is_unavailable() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    // No provider is configured for "ghost".
    h.create_class("ghost").await;
    h.start().await;
    let cond = wait_condition(&h, "ghost", "Accepted", "False").await;
    assert_eq!(cond.reason, "ProviderUnavailable");
    assert!(
        cond.message.contains(r#"spec.provider: "local""#),
        "{}",
        cond.message
    );
    h.wait_for_event("ghost", "InvalidLoadBalancerClass").await;
    wait_condition(&h, "a", "Accepted", "True").await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_defaults_resolve_to_the_alphabetically_first() {
    let mut h = Harness::new(&[("b", base(2)), ("a", base(1))]).await;
    h.create_nodes(2).await;
    for class in ["a", "b"] {
        classes(&h)
            .patch(
                class,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "default": true } })),
            )
            .await
            .expect("marked default");
    }
    h.start().await;

    let winner = wait_condition(&h, "a", "Default", "True").await;
    assert_eq!(winner.reason, "MultipleDefaults");
    assert!(
        winner.message.contains(r#""a" is the default"#),
        "{winner:?}"
    );
    let loser = wait_condition(&h, "b", "Default", "False").await;
    assert_eq!(loser.message, winner.message);
    for class in ["a", "b"] {
        let ev = h.wait_for_event(class, "MultipleDefaultClasses").await;
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        wait_condition(&h, class, "Accepted", "True").await;
    }

    // A Service without a class lands in the winner.
    let mut svc = fixtures::service("plain").tcp(80, 0).build();
    svc.metadata.uid = None;
    h.services()
        .create(&PostParams::default(), &svc)
        .await
        .expect("service");
    let ip = h.wait_for_ip("plain").await;
    assert!(ip.starts_with("192.0.2."), "class a's addresses: {ip}");
    assert!(h.provider("b").calls_of(Op::Ensure).is_empty());

    // One default left: the conflict condition goes from both.
    classes(&h)
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "default": false } })),
        )
        .await
        .expect("unmarked");
    for class in ["a", "b"] {
        wait_for(
            &format!("no Default condition on {class}"),
            WAIT,
            || async {
                condition(&h, class, "Default")
                    .await
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_class_pass_writes_no_status() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.start().await;
    wait_condition(&h, "a", "Accepted", "True").await;
    let metrics = h.metrics();
    // Settle: the pass caused by our own status write has run.
    wait_for("class pass on the final object", WAIT, || async {
        let rv = classes(&h).get("a").await.ok()?.resource_version()?;
        let rec = metrics.last_reconcile("LoadBalancerClass", "", "a");
        (rec.resource_version.as_deref() == Some(rv.as_str())).then_some(())
    })
    .await;
    // Any class status write from here on fails and is counted.
    h.sim.faults().fail_next(
        100,
        500,
        kube_sim::FaultMatcher {
            verb: Some("patch"),
            resource: Some("loadbalancerclasses/status"),
        },
    );

    // 1. A metadata-only change of the class.
    let mut class = classes(&h).get("a").await.expect("class");
    class.labels_mut().insert("touched".into(), "yes".into());
    let touched = classes(&h)
        .replace("a", &PostParams::default(), &class)
        .await
        .expect("labelled");
    let touched_rv = touched.resource_version().expect("rv");
    wait_for("class pass on the touched object", WAIT, || async {
        let rec = metrics.last_reconcile("LoadBalancerClass", "", "a");
        (rec.resource_version.as_deref() == Some(touched_rv.as_str())).then_some(())
    })
    .await;

    // 2. A relist re-delivers every class.
    let before = metrics.last_reconcile("LoadBalancerClass", "", "a").count;
    h.sim.faults().expire_watch_history();
    h.sim.faults().close_watches();
    wait_for("class pass after the relist", WAIT, || async {
        (metrics.last_reconcile("LoadBalancerClass", "", "a").count > before).then_some(())
    })
    .await;

    assert_eq!(
        metrics.failure_count("LoadBalancerClass", "patch_status"),
        0,
        "a class status write was attempted"
    );
    let now = classes(&h).get("a").await.expect("class");
    assert_eq!(now.resource_version(), Some(touched_rv), "status unchanged");
    h.sim.faults().clear();
    h.shutdown().await;
}
