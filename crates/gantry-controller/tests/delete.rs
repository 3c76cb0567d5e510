//! Acceptance: the balancer is deleted before the finalizer goes; a failing
//! delete keeps the finalizer (and the object) until it succeeds; a Service
//! turned ClusterIP loses its balancer, status and finalizer.

mod common;

use common::{Harness, WAIT, base, wait_for};
use gantry_testkit::{FaultKind, Op};
use kube::api::{Patch, PatchParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_balancer_before_finalizer() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(2).await;
    h.start().await;
    h.create_service("web", "a").await;
    h.wait_for_ip("web").await;
    let svc = h.get_service("web").await.expect("exists");
    assert!(
        Harness::has_finalizer(&svc),
        "finalizer added before the balancer"
    );
    let provider = h.provider("a");
    assert_eq!(provider.inventory().len(), 1);
    h.delete_service("web").await;
    // Poll fast: at the moment the Service is gone, the inventory must be
    // empty and the delete call already recorded.
    wait_for("service gone", WAIT, || async {
        let gone = h.get_service("web").await.is_none();
        if gone {
            assert!(
                provider.inventory().is_empty(),
                "balancer still exists when the Service disappeared"
            );
            let deletes = provider.calls_of(Op::Delete);
            assert!(!deletes.is_empty(), "a delete call precedes the removal");
        }
        gone.then_some(())
    })
    .await;
    let ev = h.wait_for_event("web", "DeletedLoadBalancer").await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_delete_keeps_finalizer_until_it_succeeds() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    h.create_service("web", "a").await;
    h.wait_for_ip("web").await;
    let provider = h.provider("a");
    provider.fail_next_op(Op::Delete, 3, FaultKind::Transient);

    h.delete_service("web").await;
    // The first failures are visible as a Warning Event while the object,
    // its finalizer and the balancer all remain.
    h.wait_for_event("web", "DeleteLoadBalancerFailed").await;
    let svc = h
        .get_service("web")
        .await
        .expect("still there while delete fails");
    assert!(svc.metadata.deletion_timestamp.is_some());
    assert!(Harness::has_finalizer(&svc));
    assert_eq!(provider.inventory().len(), 1);

    // Retries back off and eventually succeed once the faults are used up.
    wait_for("service gone", WAIT, || async {
        h.get_service("web").await.is_none().then_some(())
    })
    .await;
    assert!(provider.inventory().is_empty());
    let deletes = provider.calls_of(Op::Delete);
    assert_eq!(
        deletes.iter().filter(|c| c.error.is_some()).count(),
        3,
        "three failed attempts: {deletes:#?}"
    );
    assert!(deletes.last().is_some_and(|c| c.error.is_none()));
    // Backoff: the retries were spread out, not a hot loop.
    let attempts = deletes.len();
    assert!(attempts <= 6, "no hot loop: {attempts} delete calls");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_turned_cluster_ip_loses_balancer_status_and_finalizer() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    h.create_service("web", "a").await;
    h.wait_for_ip("web").await;
    let provider = h.provider("a");

    h.services()
        .patch(
            "web",
            &PatchParams::default(),
            // Clears the type-dependent fields explicitly, as a client must
            // for a server that does not drop them itself.
            &Patch::Merge(json!({"spec": {
                "type": "ClusterIP",
                "loadBalancerClass": null,
                "externalTrafficPolicy": null,
                "allocateLoadBalancerNodePorts": null,
                "ports": [{"port": 80, "protocol": "TCP"}],
            }})),
        )
        .await
        .expect("type changed");
    wait_for("cleanup after type change", WAIT, || async {
        let svc = h.get_service("web").await?;
        let lb_empty = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_none_or(|i| i.is_empty());
        let conditions_gone = svc
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_none_or(|c| c.iter().all(|c| c.type_ != "Ready"));
        (lb_empty && conditions_gone && !Harness::has_finalizer(&svc)).then_some(())
    })
    .await;
    assert!(provider.inventory().is_empty());
    assert_eq!(provider.calls_of(Op::Delete).len(), 1);
    assert!(
        h.get_service("web").await.is_some(),
        "the Service itself stays"
    );
    h.shutdown().await;
}
