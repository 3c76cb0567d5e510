//! Provider errors and ordering: the finalizer is on the object before the
//! first provider call; transient errors retry with backoff until they
//! clear; permanent errors set `Ready=False` with the error's category and
//! publish one Warning.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{Harness, NS, WAIT, base, wait_for};
use gantry_controller::{FINALIZER, StaticFactory};
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, Plan, ProviderError, ProviderKind,
    provider::DeleteOutcome,
};
use gantry_testkit::{FaultKind, Op, RecordingProvider};
use k8s_openapi::api::core::v1::Service;
use kube::{Api, Client, ResourceExt};
use parking_lot::Mutex;

/// Looks at the Service in the API server at the moment of each `ensure`.
struct FinalizerCheck {
    inner: Arc<RecordingProvider>,
    client: Client,
    seen: Mutex<Vec<bool>>,
}

#[async_trait]
impl LoadBalancer for FinalizerCheck {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }
    async fn plan(&self, d: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        self.inner.plan(d).await
    }
    async fn ensure(&self, d: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        let svc = Api::<Service>::namespaced(self.client.clone(), &d.owner.namespace)
            .get(&d.owner.name)
            .await
            .expect("service readable");
        self.seen
            .lock()
            .push(svc.finalizers().iter().any(|f| f == FINALIZER));
        self.inner.ensure(d).await
    }
    async fn delete(&self, o: &Owner) -> Result<DeleteOutcome, ProviderError> {
        self.inner.delete(o).await
    }
    async fn list_owned(&self, c: &str) -> Result<Vec<Owner>, ProviderError> {
        self.inner.list_owned(c).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_is_persisted_before_the_first_provider_call() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    let check = Arc::new(FinalizerCheck {
        inner: h.provider("a"),
        client: h.client.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let factory = StaticFactory::new().with("a", Arc::clone(&check) as Arc<dyn LoadBalancer>);
    h.start_with(factory).await;
    h.create_service("web", "a").await;
    h.wait_for_ip("web").await;
    let seen = check.seen.lock().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|s| *s),
        "ensure ran without a persisted finalizer: {seen:?}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_retry_with_backoff_until_they_clear() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    let provider = h.provider("a");
    provider.fail_next_op(Op::Ensure, 3, FaultKind::Transient);
    h.create_service("web", "a").await;
    h.wait_for_event("web", "SyncLoadBalancerFailed").await;
    h.wait_for_ip("web").await;
    let ensures = provider.calls_of(Op::Ensure);
    assert_eq!(ensures.iter().filter(|c| c.error.is_some()).count(), 3);
    // Retries are spaced by a growing delay (100ms, 200ms, 400ms with jitter
    // on top in the test settings), not a hot loop.
    assert!(ensures.len() <= 5, "{ensures:#?}");
    let svc = wait_for("Ready after recovery", WAIT, || async {
        let svc = h.get_service("web").await?;
        let ready = svc
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (ready.status == "True").then_some(svc)
    })
    .await;
    assert!(Harness::has_finalizer(&svc));
    assert!(h.metrics().failure_count("Service", "transient") >= 3);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_set_a_condition_and_warn_once() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    let provider = h.provider("a");
    provider.fail_next_op(Op::Ensure, 1, FaultKind::Permanent);
    h.create_service("web", "a").await;
    let ev = h.wait_for_event("web", "SyncLoadBalancerFailed").await;
    assert!(
        ev.note
            .unwrap_or_default()
            .contains("injected permanent fault")
    );
    wait_for("Ready=False Rejected", WAIT, || async {
        let svc = h.get_service("web").await?;
        let conds = svc.status?.conditions?;
        let ready = conds.iter().find(|c| c.type_ == "Ready")?;
        let degraded = conds.iter().find(|c| c.type_ == "Degraded")?;
        (ready.status == "False" && ready.reason == "Rejected" && degraded.status == "True")
            .then_some(())
    })
    .await;
    // A permanent rejection is not retried for the same desired state: not
    // on the watch event of the status write, not on a relist.
    let before = h.metrics().last_reconcile("Service", NS, "web").count;
    h.sim.faults().expire_watch_history();
    h.sim.faults().close_watches();
    h.wait_reconciled_after("Service", "web", before).await;
    assert_eq!(
        provider.calls_of(Op::Ensure).len(),
        1,
        "no retry of a rejected state"
    );
    let warnings = h
        .events_for("web")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SyncLoadBalancerFailed"))
        .map(|e| e.series.map_or(1, |s| s.count))
        .sum::<i32>();
    assert_eq!(warnings, 1, "the Warning is published once");

    // Changing the spec retries at once (the fault is used up by now).
    let mut svc = h.get_service("web").await.expect("exists");
    if let Some(ports) = svc.spec.as_mut().and_then(|s| s.ports.as_mut()) {
        ports[0].name = Some("http".into());
        ports.push(k8s_openapi::api::core::v1::ServicePort {
            name: Some("https".into()),
            port: 443,
            protocol: Some("TCP".into()),
            ..Default::default()
        });
    }
    h.services()
        .replace("web", &kube::api::PostParams::default(), &svc)
        .await
        .expect("spec changed");
    h.wait_for_ip("web").await;
    assert_eq!(provider.calls_of(Op::Ensure).len(), 2);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_in_the_class_retries_what_it_rejected() {
    // The local provider rejects a Service when its pool is exhausted; a
    // deletion in the same class frees an address, so the waiting Service
    // must try again at once, not after the long permanent-error interval.
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    let provider = h.provider("a");
    h.create_service("first", "a").await;
    h.wait_for_ip("first").await;
    provider.fail_next_op(Op::Ensure, 1, FaultKind::Permanent);
    h.create_service("second", "a").await;
    h.wait_for_event("second", "SyncLoadBalancerFailed").await;
    assert_eq!(provider.calls_of(Op::Ensure).len(), 2);

    h.delete_service("first").await;
    let ip = h.wait_for_ip("second").await;
    assert!(!ip.is_empty());
    assert_eq!(
        provider.calls_of(Op::Ensure).len(),
        3,
        "one retry, triggered by the deletion"
    );
}
