//! Leader election: only the lease holder reconciles; a standby takes over
//! when the holder releases; a holder that cannot renew stops with an error.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Harness, WAIT, base, wait_for};
use gantry_controller::{
    GantryController, StaticFactory,
    leader::LeaderConfig,
    server::{Health, Phase},
};
use gantry_model::LoadBalancer;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::oneshot;

fn leader(identity: &str) -> LeaderConfig {
    LeaderConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1500),
        retry_period: Duration::from_millis(200),
        ..LeaderConfig::new("gantry-controller", "gantry-system", identity)
    }
}

type Task = tokio::task::JoinHandle<Result<(), gantry_controller::Error>>;

fn spawn(h: &Harness, identity: &str) -> (Arc<Health>, oneshot::Sender<()>, Task) {
    let mut config = h.config.clone();
    config.leader = Some(leader(identity));
    let factory = StaticFactory::new().with("a", h.provider("a") as Arc<dyn LoadBalancer>);
    let c = GantryController::new(h.client.clone(), config, Arc::new(factory));
    let health = c.health();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(c.run(async move {
        let _ = rx.await;
    }));
    (health, tx, task)
}

async fn wait_phase(health: &Arc<Health>, phase: Phase) {
    wait_for(&format!("phase {phase:?}"), WAIT, || {
        let h = Arc::clone(health);
        async move { (h.phase() == phase).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_runs_and_a_standby_takes_over() {
    let h = Harness::new(&[("a", base(1))]).await;
    Api::<Namespace>::all(h.client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("gantry-system".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace");

    let (h1, stop1, task1) = spawn(&h, "one");
    wait_phase(&h1, Phase::Running).await;
    let (h2, stop2, task2) = spawn(&h, "two");
    wait_phase(&h2, Phase::Standby).await;
    assert!(h2.ready(), "a standby is ready to take over");
    // Several renewals later the standby is still waiting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h2.phase(), Phase::Standby);

    // Orderly stop releases the lease; the standby takes over.
    let _ = stop1.send(());
    task1.await.expect("joins").expect("clean exit");
    wait_phase(&h2, Phase::Running).await;

    // The holder loses the API for its lease: it must stop, with an error.
    h.sim.faults().fail_next(
        1000,
        500,
        kube_sim::FaultMatcher {
            verb: None,
            resource: Some("leases"),
        },
    );
    let result = tokio::time::timeout(WAIT, task2)
        .await
        .expect("stops within the renew deadline")
        .expect("joins");
    let err = result.expect_err("losing the lease is an error");
    assert!(err.to_string().contains("lease"), "{err}");
    h.sim.faults().clear();
    drop(stop2);
    h.shutdown().await;
}
