//! TLS mode, the kubeconfig text, and fault injection.

mod common;

use std::time::{Duration, Instant};

use common::{cm, sim, status};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube_sim::{FaultMatcher, KubeSim, SimOptions};

#[tokio::test]
async fn tls_mode_works_with_kube_client() {
    let sim = KubeSim::start(SimOptions {
        tls: true,
        ..SimOptions::default()
    })
    .await
    .expect("start");
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    let api: Api<Namespace> = Api::all(sim.client());
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()));
    let yaml = sim.kubeconfig_yaml();
    assert!(yaml.contains("certificate-authority-data:"));
    assert!(yaml.contains(&format!("server: {}", sim.url())));
    let parsed = kube::config::Kubeconfig::from_yaml(&yaml).expect("valid kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(parsed, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let ns: Api<Namespace> = Api::all(client);
    ns.get("kube-system").await.expect("get through kubeconfig");

    // A client that does not trust the CA is refused.
    let mut untrusting = sim.kube_config();
    untrusting.root_cert = None;
    let bad = kube::Client::try_from(untrusting).expect("client");
    assert!(
        Api::<Namespace>::all(bad)
            .list(&ListParams::default())
            .await
            .is_err()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_failures_reach_the_client() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let faults = sim.faults();
    faults.fail_next(
        1,
        500,
        FaultMatcher {
            verb: Some("create"),
            resource: Some("configmaps"),
        },
    );
    let s = status(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .expect_err("500"),
    );
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    api.create(&PostParams::default(), &cm("a", &[]))
        .await
        .expect("rule consumed");

    faults.fail_next(
        1,
        409,
        FaultMatcher {
            verb: Some("get"),
            resource: None,
        },
    );
    assert_eq!(status(api.get("a").await.expect_err("409")).code, 409);

    // Not matching: a list is not a get.
    faults.fail_next(
        1,
        500,
        FaultMatcher {
            verb: Some("delete"),
            resource: None,
        },
    );
    api.list(&ListParams::default())
        .await
        .expect("list unaffected");
    faults.clear();

    // kube-rs retries 429 by default; a client without retries sees it.
    faults.fail_next(1, 429, FaultMatcher::default());
    api.get("a").await.expect("retried after Retry-After");
    let mut config = sim.kube_config();
    config.default_retry = false;
    let raw: Api<ConfigMap> =
        Api::namespaced(kube::Client::try_from(config).expect("client"), "default");
    faults.fail_next(1, 429, FaultMatcher::default());
    let s = status(raw.get("a").await.expect_err("429"));
    assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"));
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_requests() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.list(&ListParams::default()).await.expect("warm up");
    sim.faults().set_latency(Duration::from_millis(300));
    let start = Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(start.elapsed() >= Duration::from_millis(300));
    sim.faults().set_latency(Duration::ZERO);
    sim.shutdown().await;
}
