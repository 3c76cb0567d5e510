//! Secrets are read narrowly: only the ones an Ingress references, by GET in
//! its namespace and a watch on that one name; never listed or watched
//! cluster-wide; and a cross-namespace or path-like reference is rejected
//! before anything is read.

mod common;

use common::{Harness, NS, WAIT, base, recording::recording, wait_for};
use gantry_model::fixtures;
use gantry_testkit::Op;
use k8s_openapi::api::{
    core::v1::{Namespace, Secret},
    networking::v1::{Ingress, IngressClass},
};
use kube::{
    Api,
    api::{DeleteParams, ObjectMeta, PostParams},
};

/// An IngressClass for class `a`, a backend Service and the given Secrets.
async fn setup(h: &Harness, secrets: &[(&str, &str)]) {
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
    for (ns, name) in secrets {
        if *ns != NS {
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some((*ns).to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let _ = Api::<Namespace>::all(h.client.clone())
                .create(&PostParams::default(), &namespace)
                .await;
        }
        let mut secret = fixtures::tls_secret(name);
        secret.metadata.uid = None;
        secret.metadata.namespace = Some((*ns).to_string());
        Api::<Secret>::namespaced(h.client.clone(), ns)
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret");
    }
}

fn tls_ingress(name: &str, secret: &str) -> Ingress {
    let mut ing = fixtures::ingress(name)
        .class_name("gantry")
        .rule(
            Some("testhost.com"),
            vec![("/", "Prefix", fixtures::backend("backend", 80))],
        )
        .tls(Some(secret), &["testhost.com"])
        .build();
    ing.metadata.uid = None;
    ing
}

/// Requests that touched Secrets, with `%3D` decoded.
fn secret_requests(log: &common::recording::RequestLog) -> Vec<String> {
    log.matching("secrets")
        .into_iter()
        .map(|r| r.replace("%3D", "="))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_referenced_secrets_are_read_and_watched_by_name() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    setup(
        &h,
        &[(NS, "site-tls"), (NS, "unrelated"), ("other", "site-tls")],
    )
    .await;
    let (client, log) = recording(h.client.clone());
    h.controller_client = Some(client);
    h.start().await;

    let ingresses: Api<Ingress> = Api::namespaced(h.client.clone(), NS);
    ingresses
        .create(&PostParams::default(), &tls_ingress("site", "site-tls"))
        .await
        .expect("ingress");
    wait_for("ingress status", WAIT, || async {
        ingresses
            .get_opt("site")
            .await
            .ok()??
            .status?
            .load_balancer?
            .ingress?
            .first()?
            .ip
            .clone()
    })
    .await;

    // The unrelated Secret and the same-named one elsewhere change; the
    // referenced one rotates: only the rotation reaches the provider.
    let provider = h.provider("a");
    let ensures = provider.calls_of(Op::Ensure).len();
    for (ns, name) in [(NS, "unrelated"), ("other", "site-tls"), (NS, "site-tls")] {
        let api: Api<Secret> = Api::namespaced(h.client.clone(), ns);
        let mut s = api.get(name).await.expect("get");
        let crt = fixtures::TEST_CERT_PEM.replace("fixture", "rotated");
        s.data
            .get_or_insert_with(Default::default)
            .insert("tls.crt".into(), k8s_openapi::ByteString(crt.into_bytes()));
        api.replace(name, &PostParams::default(), &s)
            .await
            .expect("secret updated");
    }
    wait_for("certificate updated", WAIT, || async {
        (provider.calls_of(Op::Ensure).len() > ensures).then_some(())
    })
    .await;

    let requests = secret_requests(&log);
    assert!(!requests.is_empty(), "the referenced Secret was read");
    for r in &requests {
        // A GET by name, or a watch on that one name (never a list).
        let allowed = r == "GET /api/v1/namespaces/default/secrets/site-tls"
            || (r.starts_with("GET /api/v1/namespaces/default/secrets?")
                && r.contains("watch=true")
                && r.contains("fieldSelector=metadata.name=site-tls"));
        assert!(allowed, "unexpected Secret request {r:?} in {requests:#?}");
    }
    assert!(
        requests.iter().any(|r| r.contains("watch=true")),
        "the referenced Secret is watched by name: {requests:#?}"
    );

    // The last Ingress referencing it goes: its Secret watch stops.
    let watches = h.sim.watcher_count();
    ingresses
        .delete("site", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("the Secret watch stops", WAIT, || async {
        (h.sim.watcher_count() < watches).then_some(())
    })
    .await;
    let after = secret_requests(&log).len();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        secret_requests(&log).len(),
        after,
        "no Secret request once nothing references it"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_and_path_like_references_are_rejected_unread() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    setup(&h, &[(NS, "site-tls"), ("other", "site-tls")]).await;
    let (client, log) = recording(h.client.clone());
    h.controller_client = Some(client);
    h.start().await;

    let ingresses: Api<Ingress> = Api::namespaced(h.client.clone(), NS);
    for (name, secret) in [("cross", "other/site-tls"), ("dots", "../site-tls")] {
        ingresses
            .create(&PostParams::default(), &tls_ingress(name, secret))
            .await
            .expect("ingress");
        let event = wait_for(&format!("rejection of {secret}"), WAIT, || async {
            h.events_for(name).await.into_iter().find(|e| {
                e.reason.as_deref() == Some("SyncLoadBalancerFailed")
                    && e.type_.as_deref() == Some("Warning")
            })
        })
        .await;
        let note = event.note.unwrap_or_default();
        assert!(note.contains("spec.tls[0].secretName"), "{note}");
        assert!(note.contains(&format!("{secret:?}")), "{note}");
    }
    assert!(
        secret_requests(&log).is_empty(),
        "nothing was read: {:#?}",
        secret_requests(&log)
    );
    assert!(h.provider("a").calls_of(Op::Ensure).is_empty());
    h.shutdown().await;
}
