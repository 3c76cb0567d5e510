//! The published object's life: plan, idempotent ensure, readiness from the
//! datapaths' reports, ownership, listing, deletion, node addresses and L7.

mod common;

use common::{CLASS, CLUSTER, Env, ingress, ip, owner, svc};
use gantry_model::{
    LoadBalancer, OwnerKind, ProviderError,
    class::LocalMode,
    local::{LocalLoadBalancer, LocalOwner},
    provider::{Action, DeleteOutcome},
};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, PostParams},
};

#[tokio::test]
async fn plan_then_ensure_then_nothing_to_do() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    let web = svc("web").tcp(&[80, 443]);

    let plan = p.plan(&web.0).await.expect("plan");
    assert_eq!(plan.changes.len(), 1, "{plan:?}");
    assert_eq!(plan.changes[0].action, Action::Create);
    assert_eq!(plan.changes[0].name, web.object_name());
    assert!(
        plan.changes[0]
            .detail
            .starts_with("address 192.0.2.1, 2 listeners"),
        "{}",
        plan.changes[0]
    );
    assert!(env.objects().await.is_empty(), "plan writes nothing");

    p.ensure(&web.0).await.expect("ensure");
    let before = env.llbs().get(&web.object_name()).await.expect("object");
    assert!(p.plan(&web.0).await.expect("plan").is_empty());
    // Any write from here on fails, so success proves there was none.
    env.forbid_writes();
    p.ensure(&web.0).await.expect("again, without writing");
    // A restarted provider must not rewrite either.
    env.provider(&["192.0.2.0/30"])
        .ensure(&web.0)
        .await
        .expect("restart, without writing");
    env.allow_writes();
    let after = env.llbs().get(&web.object_name()).await.expect("object");
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );

    let labels = after.metadata.labels.clone().expect("labels");
    assert_eq!(labels["gantry.dev/cluster"], CLUSTER);
    assert_eq!(labels["gantry.dev/class"], CLASS);
    assert_eq!(labels["gantry.dev/owner-uid"], "uid-web");
    assert_eq!(labels["gantry.dev/owner-kind"], "Service");

    let changed = web.clone().tcp(&[80, 443, 8443]);
    let plan = p.plan(&changed.0).await.expect("plan");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].action, Action::Update);
    assert!(
        plan.changes[0].detail.contains("listeners"),
        "{}",
        plan.changes[0]
    );
    assert!(
        !plan.changes[0].detail.contains("address"),
        "{}",
        plan.changes[0]
    );
    p.ensure(&changed.0).await.expect("update");
    let updated = env.llbs().get(&web.object_name()).await.expect("object");
    assert_eq!(updated.spec.l4.len(), 3);
    assert_eq!(
        updated.spec.addresses,
        [ip("192.0.2.1")],
        "the address does not move"
    );
}

#[tokio::test]
async fn ready_only_once_a_datapath_serves_the_current_generation() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    let web = svc("web");
    let name = web.object_name();
    assert!(!p.ensure(&web.0).await.expect("ensure").ready);
    let generation = env
        .llbs()
        .get(&name)
        .await
        .expect("get")
        .metadata
        .generation
        .expect("gen");

    env.report(&name, "node-a", generation - 1, true).await;
    assert!(
        !p.ensure(&web.0).await.expect("stale").ready,
        "older generation"
    );
    env.report(&name, "node-a", generation, false).await;
    assert!(!p.ensure(&web.0).await.expect("not ready").ready);
    env.report(&name, "node-a", generation, true).await;
    assert!(p.ensure(&web.0).await.expect("ready").ready);

    // A spec change needs a fresh report before it counts as served.
    let changed = web.tcp(&[80, 81]);
    assert!(!p.ensure(&changed.0).await.expect("changed").ready);
    let next = env
        .llbs()
        .get(&name)
        .await
        .expect("get")
        .metadata
        .generation
        .expect("gen");
    assert!(next > generation, "spec writes bump the generation");
    env.report(&name, "node-b", next, true).await;
    assert!(p.ensure(&changed.0).await.expect("served").ready);
}

#[tokio::test]
async fn a_foreign_object_with_our_name_is_left_alone() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    let web = svc("web");
    let name = web.object_name();
    let mut foreign = LocalLoadBalancer::new(
        &name,
        gantry_model::local::LocalLoadBalancerSpec {
            class: CLASS.into(),
            owner: LocalOwner {
                kind: "Service".into(),
                namespace: "default".into(),
                name: "web".into(),
                uid: "someone-else".into(),
            },
            mode: LocalMode::L2,
            addresses: vec![ip("192.0.2.2")],
            nodes: vec![],
            l4: vec![],
            l7: None,
            source_ranges: vec![],
        },
    );
    foreign.metadata.labels = Some(
        [
            ("gantry.dev/cluster".to_string(), CLUSTER.to_string()),
            (
                "gantry.dev/owner-uid".to_string(),
                "someone-else".to_string(),
            ),
        ]
        .into(),
    );
    let created = env
        .llbs()
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create");

    let err = p.ensure(&web.0).await.expect_err("not ours");
    assert!(matches!(err, ProviderError::NotOwned { .. }), "{err}");
    assert!(matches!(
        p.plan(&web.0).await,
        Err(ProviderError::NotOwned { .. })
    ));
    assert_eq!(
        p.delete(web.owner()).await.expect("delete"),
        DeleteOutcome::NotFound
    );
    let after = env.llbs().get(&name).await.expect("still there");
    assert_eq!(
        after.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(after.spec, created.spec);
    // Its address counts as taken all the same.
    let other = p.ensure(&svc("other").0).await.expect("other");
    assert_eq!(other.ingress[0].ip, Some(ip("192.0.2.1")));
    let third = p.ensure(&svc("third").0).await;
    assert!(
        matches!(third, Err(ProviderError::Exhausted { .. })),
        "{third:?}"
    );
}

#[tokio::test]
async fn list_owned_and_delete() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/29"]);
    let other_class = env.provider_for("other", LocalMode::L2, &["192.0.2.0/29"]);
    p.ensure(&svc("a").0).await.expect("a");
    p.ensure(&svc("b").0).await.expect("b");
    other_class
        .ensure(&svc("c").class("other").0)
        .await
        .expect("c");

    let owned = p.list_owned(CLUSTER).await.expect("list");
    assert_eq!(
        owned,
        [
            owner("a", OwnerKind::Service),
            owner("b", OwnerKind::Service)
        ]
    );
    assert!(
        p.list_owned("another-cluster")
            .await
            .expect("list")
            .is_empty()
    );

    assert_eq!(
        p.delete(svc("a").owner()).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        p.delete(svc("a").owner()).await.expect("again"),
        DeleteOutcome::NotFound
    );
    // The same owner in another class is that class's business.
    assert_eq!(
        p.delete(svc("c").owner()).await.expect("c"),
        DeleteOutcome::NotFound
    );
    assert_eq!(env.objects().await.len(), 2);
    assert_eq!(
        p.list_owned(CLUSTER).await.expect("list"),
        [owner("b", OwnerKind::Service)]
    );
}

#[tokio::test]
async fn node_addresses_mode_follows_the_nodes() {
    let env = Env::start().await;
    let p = env.provider_for(CLASS, LocalMode::NodeAddresses, &[]);
    let two = svc("web").nodes(&[("n2", "10.0.0.2"), ("n1", "10.0.0.1")]);
    let got = p.ensure(&two.0).await.expect("two");
    let ips: Vec<_> = got.ingress.iter().filter_map(|i| i.ip).collect();
    assert_eq!(ips, [ip("10.0.0.1"), ip("10.0.0.2")]);
    let before = env.llbs().get(&two.object_name()).await.expect("get");

    let three = svc("web").nodes(&[("n1", "10.0.0.1"), ("n3", "10.0.0.3"), ("n2", "10.0.0.2")]);
    let plan = p.plan(&three.0).await.expect("plan");
    assert!(plan.changes[0].detail.contains("nodes +n3"), "{plan:?}");
    p.ensure(&three.0).await.expect("three");
    let after = env.llbs().get(&two.object_name()).await.expect("get");
    assert_ne!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
    assert_eq!(after.spec.addresses.len(), 3);
    assert_eq!(after.spec.nodes.len(), 3);

    let none = p.ensure(&svc("web").nodes(&[]).0).await.expect("none");
    assert!(none.ingress.is_empty() && !none.ready);
}

#[tokio::test]
async fn l7_publishes_secret_names_never_key_material() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
    let desired = ingress("site", key);
    let got = p.ensure(&desired).await.expect("ensure");
    let ports: Vec<u16> = got.ingress[0].ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [80, 443]);

    let name = desired.owner.resource_name(CLASS, "llb", 63);
    let raw: Api<DynamicObject> = Api::all_with(
        env.client.clone(),
        &ApiResource::erase::<LocalLoadBalancer>(&()),
    );
    let stored = serde_json::to_string(&raw.get(&name).await.expect("get")).expect("json");
    assert!(stored.contains("my-ssl-secret"), "{stored}");
    assert!(stored.contains("default/service-test:80"), "{stored}");
    assert!(!stored.contains("BEGIN"), "{stored}");
    assert!(
        !stored.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"),
        "{stored}"
    );
    assert!(!stored.contains("MIIBcertbody"), "{stored}");
}
