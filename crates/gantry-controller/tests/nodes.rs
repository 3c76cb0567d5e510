//! Acceptance: adding a Node makes exactly one backend update per affected
//! load balancer and none for balancers of other controllers.

mod common;

use common::{Harness, WAIT, base, wait_for};
use gantry_model::{desired::LoadBalancerSpec, provider::Action};
use gantry_testkit::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_node_updates_each_balancer_backend_set_exactly_once() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(3).await;
    h.start().await;
    for name in ["one", "two", "three"] {
        h.create_service(name, "a").await;
    }
    // Another controller's Service: never ours.
    h.create_service("foreign", "example.com/other").await;
    for name in ["one", "two", "three"] {
        h.wait_for_ip(name).await;
    }
    let provider = h.provider("a");
    let ensures_before = provider.calls_of(Op::Ensure).len();

    h.create_node("node-4", "10.0.0.4").await;

    // Wait until every balancer has the fourth node.
    wait_for("all balancers have node-4", WAIT, || async {
        let inv = provider.inventory();
        let all = inv.len() == 3
            && inv.values().all(|d| match &d.spec {
                LoadBalancerSpec::L4(s) => s.backends.iter().any(|b| b.name == "node-4"),
                LoadBalancerSpec::L7(_) => false,
            });
        all.then_some(())
    })
    .await;
    // A late duplicate would land in the window checked after node-5 below.
    let new_ensures: Vec<_> = provider
        .calls_of(Op::Ensure)
        .into_iter()
        .skip(ensures_before)
        .collect();
    for name in ["one", "two", "three"] {
        let for_svc: Vec<_> = new_ensures
            .iter()
            .filter(|c| c.owner.as_ref().is_some_and(|o| o.name == name))
            .collect();
        assert_eq!(
            for_svc.len(),
            1,
            "{name}: exactly one ensure, got {for_svc:#?}"
        );
        let writes = &for_svc[0].writes;
        assert_eq!(writes.len(), 1, "{name}: one write, got {writes:#?}");
        assert_eq!(writes[0].resource, "backend-set");
        assert_eq!(writes[0].action, Action::Update);
        assert!(writes[0].detail.contains("node-4"), "{:?}", writes[0]);
    }
    assert!(
        provider
            .calls()
            .iter()
            .all(|c| c.owner.as_ref().is_none_or(|o| o.name != "foreign")),
        "the foreign Service was never passed to the provider"
    );
    let foreign = h.get_service("foreign").await.expect("exists");
    assert!(!Harness::has_finalizer(&foreign));

    // A Node event that changes nothing eligible costs nothing.
    let calls = provider.calls().len();
    let before = h.metrics().reconcile_count("Service");
    h.nodes()
        .patch(
            "node-4",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("node labelled");
    // Then a change that does matter, to have something to wait for.
    h.create_node("node-5", "10.0.0.5").await;
    wait_for("node-5 everywhere", WAIT, || async {
        provider
            .inventory()
            .values()
            .all(|d| match &d.spec {
                LoadBalancerSpec::L4(s) => s.backends.iter().any(|b| b.name == "node-5"),
                LoadBalancerSpec::L7(_) => false,
            })
            .then_some(())
    })
    .await;
    let ensures: Vec<_> = provider.calls()[calls..]
        .iter()
        .filter(|c| c.op == Op::Ensure)
        .cloned()
        .collect();
    assert_eq!(
        ensures.len(),
        3,
        "one ensure per balancer for node-5 only: {ensures:#?}"
    );
    assert!(h.metrics().reconcile_count("Service") > before);
    h.shutdown().await;
}
