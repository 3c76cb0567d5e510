//! Acceptance: a no-op resync costs zero provider writes and no status
//! patch; a controller restart neither clears status nor writes.

mod common;

use common::{Harness, WAIT, base, wait_for};
use gantry_testkit::Op;
use kube::{ResourceExt, api::PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_resync_makes_zero_provider_writes_and_no_status_patch() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(3).await;
    h.start().await;
    h.create_service("web", "a").await;
    let ip = h.wait_for_ip("web").await;
    let provider = h.provider("a");
    assert_eq!(provider.inventory().len(), 1);

    // Let the reconciles caused by our own writes (finalizer, status) settle:
    // wait until the last reconcile started from the current resourceVersion.
    let settled_rv = wait_for("reconcile of the final object", WAIT, || async {
        let svc = h.get_service("web").await?;
        let rv = svc.metadata.resource_version.clone()?;
        let rec = h.metrics().last_reconcile("Service", common::NS, "web");
        (rec.resource_version.as_deref() == Some(rv.as_str())).then_some(rv)
    })
    .await;
    let writes = provider.write_count();
    let calls = provider.calls().len();
    assert!(writes > 0, "the first ensure wrote something");
    // Any write to the Service from here on fails and is counted.
    h.arm_write_tripwire();

    // 1. An unrelated label change: the watch delivers the object again.
    let mut svc = h.get_service("web").await.expect("exists");
    svc.labels_mut().insert("touched".into(), "yes".into());
    let touched = h
        .services()
        .replace("web", &PostParams::default(), &svc)
        .await
        .expect("label changed");
    let touched_rv = touched.metadata.resource_version.clone().expect("rv");
    assert_ne!(touched_rv, settled_rv);
    wait_for("reconcile of the touched object", WAIT, || async {
        let rec = h.metrics().last_reconcile("Service", common::NS, "web");
        (rec.resource_version.as_deref() == Some(touched_rv.as_str())).then_some(())
    })
    .await;
    assert_eq!(
        provider.write_count(),
        writes,
        "no provider writes on a no-op"
    );
    assert_eq!(
        provider.calls().len(),
        calls,
        "no provider calls at all on a no-op"
    );
    let after = h.get_service("web").await.expect("exists");
    assert_eq!(
        after.metadata.resource_version.as_deref(),
        Some(touched_rv.as_str()),
        "status must not be re-patched"
    );

    // 2. Watches restart with a relist (410 Gone): every object is re-delivered.
    let before = h
        .metrics()
        .last_reconcile("Service", common::NS, "web")
        .count;
    h.sim.faults().expire_watch_history();
    h.sim.faults().close_watches();
    h.wait_reconciled_after("Service", "web", before).await;
    assert_eq!(provider.write_count(), writes);
    assert_eq!(provider.calls().len(), calls);
    let after = h.get_service("web").await.expect("exists");
    assert_eq!(
        after.metadata.resource_version.as_deref(),
        Some(touched_rv.as_str())
    );
    assert_eq!(
        h.write_failures(),
        0,
        "the controller attempted a Service write"
    );
    h.sim.faults().clear();
    assert_eq!(h.wait_for_ip("web").await, ip);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_status_and_writes_nothing() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(2).await;
    h.start().await;
    h.create_service("web", "a").await;
    let ip = h.wait_for_ip("web").await;
    let provider = h.provider("a");
    wait_for("status settled", WAIT, || async {
        let svc = h.get_service("web").await?;
        let rv = svc.metadata.resource_version.clone()?;
        let rec = h.metrics().last_reconcile("Service", common::NS, "web");
        (rec.resource_version.as_deref() == Some(rv.as_str())).then_some(())
    })
    .await;
    let writes = provider.write_count();
    let rv = h
        .get_service("web")
        .await
        .and_then(|s| s.metadata.resource_version)
        .expect("rv");

    h.stop().await;
    h.arm_write_tripwire();
    h.start().await;
    // The new process reconciles the Service once from scratch.
    h.wait_reconciled_after("Service", "web", 0).await;
    assert_eq!(
        h.write_failures(),
        0,
        "the controller attempted a Service write"
    );
    h.sim.faults().clear();
    let svc = h.get_service("web").await.expect("exists");
    assert_eq!(
        svc.metadata.resource_version.as_deref(),
        Some(rv.as_str()),
        "no status write"
    );
    assert_eq!(h.wait_for_ip("web").await, ip, "status kept");
    assert_eq!(
        provider.write_count(),
        writes,
        "an idempotent ensure makes no writes"
    );
    // It did confirm the balancer with the provider (empty cache after restart).
    assert!(provider.calls_of(Op::Ensure).len() >= 2);
    h.shutdown().await;
}
