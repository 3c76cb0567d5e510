//! `gantry plan` reports per-object changes and writes nothing.

mod common;

use std::sync::Arc;

use common::{CLUSTER, Harness, base};
use gantry_controller::{
    StaticFactory,
    plan::{PlanOptions, plan, render_text},
};
use gantry_model::LoadBalancer;
use gantry_testkit::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_lists_changes_and_writes_nothing() {
    let h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(2).await;
    let created = h.create_service("web", "a").await;
    h.create_service_with("broken", "a", |svc| {
        svc.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("gantry.dev/proxy-protocol".into(), "maybe".into());
    })
    .await;
    h.create_service("foreign", "example.com/other").await;
    let provider = h.provider("a");
    let factory = StaticFactory::new().with("a", Arc::clone(&provider) as Arc<dyn LoadBalancer>);

    let opts = PlanOptions {
        namespace: Some(common::NS.into()),
        default_class: None,
        cluster_id: CLUSTER.into(),
    };
    let entries = plan(h.client.clone(), &opts, Arc::new(factory))
        .await
        .expect("plan");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["broken", "web"],
        "only Gantry's Services, sorted by the API"
    );
    let web = &entries[1];
    assert!(web.error.is_none(), "{web:?}");
    assert!(
        web.changes.iter().any(|c| c.resource == "load-balancer"),
        "{:?}",
        web.changes
    );
    let broken = &entries[0];
    assert!(
        broken
            .error
            .as_deref()
            .is_some_and(|e| e.contains("gantry.dev/proxy-protocol")),
        "{broken:?}"
    );
    let text = render_text(&entries);
    assert!(text.contains("Service default/web (class a):"), "{text}");

    // Nothing was written: no balancer, no finalizer, no status.
    assert!(provider.inventory().is_empty());
    assert!(provider.calls().iter().all(|c| c.op == Op::Plan));
    let after = h.get_service("web").await.expect("exists");
    assert_eq!(
        after.metadata.resource_version,
        created.metadata.resource_version
    );
    assert!(!Harness::has_finalizer(&after));
    h.shutdown().await;
}
