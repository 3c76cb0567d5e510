//! Ingresses: status address with ports, re-translation when a referenced
//! Secret or backend Service changes, and nothing for unrelated changes.

mod common;

use common::{Harness, NS, WAIT, base, wait_for};
use gantry_model::{desired::LoadBalancerSpec, fixtures};
use gantry_testkit::Op;
use k8s_openapi::api::{
    core::v1::Secret,
    networking::v1::{Ingress, IngressClass},
};
use kube::{Api, api::PostParams};

async fn ingress_status(api: &Api<Ingress>, name: &str) -> Option<(String, Vec<i32>)> {
    let first = api
        .get_opt(name)
        .await
        .ok()??
        .status?
        .load_balancer?
        .ingress?
        .first()?
        .clone();
    let mut ports: Vec<i32> = first.ports.iter().flatten().map(|p| p.port).collect();
    ports.sort();
    Some((first.ip?, ports))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_gets_status_and_follows_its_secret() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(2).await;
    Api::<IngressClass>::all(h.client.clone())
        .create(
            &PostParams::default(),
            &fixtures::ingress_class("gantry", Some("a")),
        )
        .await
        .expect("ingress class");
    let mut backend = fixtures::service("backend")
        .type_("NodePort")
        .tcp(80, 0)
        .build();
    backend.metadata.uid = None;
    h.services()
        .create(&PostParams::default(), &backend)
        .await
        .expect("backend");
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), NS);
    let mut secret = fixtures::tls_secret("site-tls");
    secret.metadata.uid = None;
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    // An unrelated Secret in the same namespace.
    let mut other = fixtures::tls_secret("unrelated");
    other.metadata.uid = None;
    secrets
        .create(&PostParams::default(), &other)
        .await
        .expect("secret");
    h.start().await;

    let ingresses: Api<Ingress> = Api::namespaced(h.client.clone(), NS);
    let mut ing = fixtures::ingress("site")
        .class_name("gantry")
        .rule(
            Some("testhost.com"),
            vec![("/", "Prefix", fixtures::backend("backend", 80))],
        )
        .tls(Some("site-tls"), &["testhost.com"])
        .build();
    ing.metadata.uid = None;
    ingresses
        .create(&PostParams::default(), &ing)
        .await
        .expect("ingress");
    let (ip, ports) = wait_for("ingress status", WAIT, || {
        ingress_status(&ingresses, "site")
    })
    .await;
    assert!(ip.starts_with("192.0.2."), "{ip}");
    assert_eq!(ports, vec![80, 443]);
    let provider = h.provider("a");
    let ensures = provider.calls_of(Op::Ensure).len();

    // An unrelated Secret changes: no provider call.
    let before = h.metrics().reconcile_count("Ingress");
    other.metadata.labels = Some([("rotated".to_string(), "yes".to_string())].into());
    let other_rv = secrets
        .get("unrelated")
        .await
        .expect("get")
        .metadata
        .resource_version;
    other.metadata.resource_version = other_rv;
    secrets
        .replace("unrelated", &PostParams::default(), &other)
        .await
        .expect("unrelated updated");

    // The referenced Secret rotates: exactly one certificate update.
    let mut rotated = secrets.get("site-tls").await.expect("get");
    let crt = fixtures::TEST_CERT_PEM.replace("fixture", "rotated");
    rotated
        .data
        .get_or_insert_with(Default::default)
        .insert("tls.crt".into(), k8s_openapi::ByteString(crt.into_bytes()));
    secrets
        .replace("site-tls", &PostParams::default(), &rotated)
        .await
        .expect("rotated");
    wait_for("certificate updated", WAIT, || async {
        provider
            .calls_of(Op::Ensure)
            .iter()
            .skip(ensures)
            .any(|c| c.writes.iter().any(|w| w.resource == "certificate"))
            .then_some(())
    })
    .await;
    let after: Vec<_> = provider
        .calls_of(Op::Ensure)
        .into_iter()
        .skip(ensures)
        .collect();
    assert_eq!(
        after.len(),
        1,
        "only the rotation reached the provider: {after:#?}"
    );
    assert_eq!(after[0].writes.len(), 1, "{:#?}", after[0].writes);
    let inv = provider.inventory();
    let tls = inv.values().find_map(|d| match &d.spec {
        LoadBalancerSpec::L7(s) => s.tls.first().cloned(),
        LoadBalancerSpec::L4(_) => None,
    });
    assert!(tls.is_some_and(|t| t.cert_pem.contains("rotated")));
    assert!(h.metrics().reconcile_count("Ingress") > before);
    h.shutdown().await;
}
