//! Class migration: the new class's balancer is built first, status switches
//! once it is ready, and only then is the old one deleted.

mod common;

use common::{Harness, NS, WAIT, base, wait_for};
use gantry_model::fixtures;
use gantry_testkit::Op;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn ingress_ip(api: &Api<Ingress>, name: &str) -> Option<String> {
    api.get_opt(name)
        .await
        .ok()??
        .status?
        .load_balancer?
        .ingress?
        .first()?
        .ip
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_class_switch_migrates_new_first_then_deletes_old() {
    let mut h = Harness::new(&[("a", base(1)), ("b", base(2))]).await;
    h.create_nodes(2).await;
    let ics: Api<IngressClass> = Api::all(h.client.clone());
    for (ic, class) in [("ic-a", "a"), ("ic-b", "b")] {
        ics.create(
            &PostParams::default(),
            &fixtures::ingress_class(ic, Some(class)),
        )
        .await
        .expect("ingress class");
    }
    // The backend Service the Ingress routes to (a NodePort Service).
    let mut backend = fixtures::service("backend")
        .type_("NodePort")
        .tcp(80, 0)
        .build();
    backend.metadata.uid = None;
    h.services()
        .create(&PostParams::default(), &backend)
        .await
        .expect("backend service");
    h.start().await;

    let ingresses: Api<Ingress> = Api::namespaced(h.client.clone(), NS);
    let mut ing = fixtures::ingress("site")
        .class_name("ic-a")
        .rule(
            None,
            vec![("/", "Prefix", fixtures::backend("backend", 80))],
        )
        .build();
    ing.metadata.uid = None;
    ingresses
        .create(&PostParams::default(), &ing)
        .await
        .expect("ingress created");
    let (a, b) = (h.provider("a"), h.provider("b"));
    let old_ip = wait_for("ingress IP in class a", WAIT, || {
        ingress_ip(&ingresses, "site")
    })
    .await;
    assert!(old_ip.starts_with("192.0.2."), "{old_ip}");

    // Class b provisions slowly.
    b.set_ready(false);
    ingresses
        .patch(
            "site",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ingressClassName": "ic-b"}})),
        )
        .await
        .expect("class switched");
    wait_for("balancer built in class b", WAIT, || async {
        (!b.calls_of(Op::Ensure).is_empty()).then_some(())
    })
    .await;
    // While b is not ready: old status and old balancer stay.
    let ensures_seen = b.calls_of(Op::Ensure).len();
    wait_for("b polled again while not ready", WAIT, || async {
        (b.calls_of(Op::Ensure).len() > ensures_seen).then_some(())
    })
    .await;
    assert_eq!(
        ingress_ip(&ingresses, "site").await.as_deref(),
        Some(old_ip.as_str())
    );
    assert_eq!(
        a.inventory().len(),
        1,
        "old balancer kept until the new one is ready"
    );
    assert!(a.calls_of(Op::Delete).is_empty());

    b.set_ready(true);
    let new_ip = wait_for("old balancer deleted", WAIT, || async {
        if !a.inventory().is_empty() {
            return None;
        }
        // The moment the old one is gone, status already shows the new one.
        let ip = ingress_ip(&ingresses, "site").await?;
        assert!(
            ip.starts_with("198.51.100."),
            "status switched before delete: {ip}"
        );
        Some(ip)
    })
    .await;
    assert_ne!(new_ip, old_ip);
    assert_eq!(b.inventory().len(), 1);
    let a_delete = a.calls_of(Op::Delete);
    assert_eq!(a_delete.len(), 1);
    let ev = h.wait_for_event("site", "MigratedLoadBalancer").await;
    assert!(ev.note.unwrap_or_default().contains("\"a\""));
    h.wait_for_event("site", "MigratingLoadBalancer").await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_class_annotation_switch_migrates_with_progressing_condition() {
    let mut h = Harness::new(&[("a", base(1)), ("b", base(2))]).await;
    h.create_nodes(1).await;
    h.config.default_class = Some("a".into());
    h.start().await;
    // A class-less Service: the default class `a` serves it.
    h.create_service_with("web", "a", |svc| {
        if let Some(spec) = svc.spec.as_mut() {
            spec.load_balancer_class = None;
        }
    })
    .await;
    let old_ip = h.wait_for_ip("web").await;
    assert!(old_ip.starts_with("192.0.2."), "{old_ip}");
    let (a, b) = (h.provider("a"), h.provider("b"));
    b.set_ready(false);

    let mut svc = h.get_service("web").await.expect("exists");
    svc.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("gantry.dev/class".into(), "b".into());
    h.services()
        .replace("web", &PostParams::default(), &svc)
        .await
        .expect("annotated");

    // While b provisions, status keeps a's address and says it is migrating.
    wait_for("Progressing=True Migrating", WAIT, || async {
        let svc = h.get_service("web").await?;
        let conds = svc.status?.conditions?;
        let p = conds.iter().find(|c| c.type_ == "Progressing")?;
        (p.status == "True" && p.reason == "Migrating").then_some(())
    })
    .await;
    assert_eq!(h.wait_for_ip("web").await, old_ip);
    assert_eq!(a.inventory().len(), 1);
    assert_eq!(b.inventory().len(), 1);

    b.set_ready(true);
    wait_for("migrated", WAIT, || async {
        let ip = h.wait_for_ip("web").await;
        (ip.starts_with("198.51.100.") && a.inventory().is_empty()).then_some(())
    })
    .await;
    let delete = a.calls_of(Op::Delete);
    assert_eq!(delete.len(), 1);
    let svc = h.get_service("web").await.expect("exists");
    assert!(Harness::has_finalizer(&svc));
    h.shutdown().await;
}
