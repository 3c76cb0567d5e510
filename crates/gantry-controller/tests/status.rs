//! Status, conditions and Events: the address and ports with `Ready=True`;
//! a bad annotation gives a Warning and `Ready=False InvalidSpec` without
//! any provider call; other controllers' Services are never touched.

mod common;

use common::{Harness, WAIT, base, wait_for};
use gantry_testkit::Op;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

fn condition<'a>(conds: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conds.iter().find(|c| c.type_ == type_)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_has_address_ports_and_ready_condition() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(2).await;
    h.start().await;
    h.create_service_with("web", "a", |svc| {
        if let Some(spec) = svc.spec.as_mut() {
            spec.ports
                .get_or_insert_with(Vec::new)
                .push(k8s_openapi::api::core::v1::ServicePort {
                    name: Some("dns".into()),
                    protocol: Some("UDP".into()),
                    port: 53,
                    ..Default::default()
                });
            if let Some(first) = spec.ports.as_mut().and_then(|p| p.first_mut()) {
                first.name = Some("http".into());
            }
        }
    })
    .await;
    let ip = h.wait_for_ip("web").await;
    let provider = h.provider("a");
    let owner = provider
        .inventory()
        .keys()
        .next()
        .cloned()
        .expect("one balancer");
    assert_eq!(
        Some(ip.clone()),
        provider.address_of(&owner).map(|a| a.to_string())
    );

    let svc = wait_for("Ready condition", WAIT, || async {
        let svc = h.get_service("web").await?;
        let ready = condition(svc.status.as_ref()?.conditions.as_ref()?, "Ready")?.clone();
        (ready.status == "True").then_some(svc)
    })
    .await;
    let status = svc.status.expect("status");
    let ingress = status
        .load_balancer
        .and_then(|l| l.ingress)
        .expect("ingress");
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0].ip_mode.as_deref(), Some("VIP"));
    let mut ports: Vec<(i32, String)> = ingress[0]
        .ports
        .iter()
        .flatten()
        .map(|p| (p.port, p.protocol.clone()))
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        vec![(53, "UDP".to_string()), (80, "TCP".to_string())]
    );
    let conds = status.conditions.expect("conditions");
    let ready = condition(&conds, "Ready").expect("Ready");
    assert_eq!(ready.observed_generation, svc.metadata.generation);
    assert_eq!(
        condition(&conds, "Degraded").map(|c| c.status.as_str()),
        Some("False")
    );
    assert_eq!(
        condition(&conds, "Progressing").map(|c| c.status.as_str()),
        Some("False")
    );
    let ev = h.wait_for_event("web", "EnsuredLoadBalancer").await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    h.wait_for_event("web", "EnsuringLoadBalancer").await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_annotation_is_reported_and_never_reaches_the_provider() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    h.create_service_with("web", "a", |svc| {
        svc.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("gantry.dev/proxy-protocol".into(), "maybe".into());
    })
    .await;
    let ev = h.wait_for_event("web", "SyncLoadBalancerFailed").await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    let note = ev.note.clone().unwrap_or_default();
    assert!(
        note.contains("gantry.dev/proxy-protocol"),
        "names the annotation: {note}"
    );
    assert!(note.contains("maybe"), "names the value: {note}");

    let svc = wait_for("InvalidSpec condition", WAIT, || async {
        let svc = h.get_service("web").await?;
        let ready = condition(svc.status.as_ref()?.conditions.as_ref()?, "Ready")?.clone();
        (ready.status == "False" && ready.reason == "InvalidSpec").then_some(svc)
    })
    .await;
    assert!(
        !Harness::has_finalizer(&svc),
        "no finalizer without a balancer"
    );
    let provider = h.provider("a");
    assert!(
        provider.calls().iter().all(|c| c.op == Op::ListOwned),
        "no provider call for an invalid spec: {:#?}",
        provider.calls()
    );

    // A resync with the same error does not publish the Event again.
    let before = h
        .metrics()
        .last_reconcile("Service", common::NS, "web")
        .count;
    h.sim.faults().expire_watch_history();
    h.sim.faults().close_watches();
    h.wait_reconciled_after("Service", "web", before).await;
    let failures: Vec<_> = h
        .events_for("web")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SyncLoadBalancerFailed"))
        .collect();
    assert_eq!(failures.len(), 1);
    let count = failures[0].series.as_ref().map_or(1, |s| s.count);
    assert_eq!(count, 1, "not re-published on resync");

    // Fixing the annotation builds the balancer.
    h.services()
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({
                "metadata": {"annotations": {"gantry.dev/proxy-protocol": "v2"}}
            })),
        )
        .await
        .expect("annotation fixed");
    h.wait_for_ip("web").await;
    assert_eq!(provider.inventory().len(), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_of_other_classes_are_never_touched() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.start().await;
    let foreign = h.create_service("foreign", "example.com/other").await;
    // No default class: a Service without a class is not Gantry's either.
    h.create_service_with("plain", "a", |svc| {
        if let Some(spec) = svc.spec.as_mut() {
            spec.load_balancer_class = None;
        }
    })
    .await;
    // A Gantry Service created after them, to know the controller has
    // processed the earlier events.
    h.create_service("ours", "a").await;
    h.wait_for_ip("ours").await;
    h.wait_reconciled_after("Service", "foreign", 0).await;
    h.wait_reconciled_after("Service", "plain", 0).await;

    for name in ["foreign", "plain"] {
        let svc = h.get_service(name).await.expect("exists");
        assert!(!Harness::has_finalizer(&svc), "{name}: no finalizer");
        assert!(
            svc.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_none_or(|c| c.is_empty())
        );
        assert!(h.events_for(name).await.is_empty(), "{name}: no events");
    }
    let after = h.get_service("foreign").await.expect("exists");
    assert_eq!(
        after.metadata.resource_version,
        foreign.metadata.resource_version
    );
    let provider = h.provider("a");
    assert!(
        provider
            .calls()
            .iter()
            .all(|c| c.owner.as_ref().is_none_or(|o| o.name == "ours"))
    );
    h.shutdown().await;
}
