//! The `scale` subresource: kube-rs `get_scale`/`replace_scale`/`patch_scale`
//! against Deployments, with resourceVersion preconditions, validation,
//! discovery and the parent's watch seeing the change.

mod common;

use common::{sim, status};
use k8s_openapi::api::{apps::v1::Deployment, autoscaling::v1::Scale};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    discovery::Discovery,
};
use serde_json::json;

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {
                "matchLabels": {"app": name},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]
            },
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"containers": [{"name": "c", "image": "echo"}]}
            }
        }
    }))
    .expect("deployment")
}

#[tokio::test]
async fn scale_reads_and_writes_the_parent_replicas() {
    let (_sim, client) = sim().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .expect("create");

    let s = api.get_scale("web").await.expect("get scale");
    assert_eq!(s.spec.as_ref().and_then(|s| s.replicas), Some(1));
    let st = s.status.clone().expect("status");
    assert_eq!(st.replicas, 0);
    assert_eq!(st.selector.as_deref(), Some("app=web,tier in (api,web)"));
    assert_eq!(s.resource_version(), d.resource_version());

    let patched = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("patch scale");
    assert_eq!(patched.spec.and_then(|s| s.replicas), Some(3));
    let now = api.get("web").await.expect("get");
    assert_eq!(now.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        now.metadata.generation,
        Some(2),
        "a spec change bumps generation"
    );

    // PUT with the stale resourceVersion of the first read is refused.
    let mut stale: Scale = s.clone();
    stale.spec.get_or_insert_with(Default::default).replicas = Some(5);
    let err = api
        .replace_scale("web", &PostParams::default(), &stale)
        .await
        .expect_err("conflict");
    assert_eq!(status(err).code, 409);

    // A fresh read and PUT succeed.
    let mut fresh = api.get_scale("web").await.expect("get scale");
    fresh.spec.get_or_insert_with(Default::default).replicas = Some(0);
    let put = api
        .replace_scale("web", &PostParams::default(), &fresh)
        .await
        .expect("replace scale");
    assert_eq!(
        put.spec.and_then(|s| s.replicas),
        None,
        "zero is omitted like Go's omitempty"
    );
    assert_eq!(
        api.get("web")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.replicas),
        Some(0)
    );

    let err = api
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .expect_err("invalid");
    let s = status(err);
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{}",
        s.message
    );
    let missing = api.get_scale("nope").await.expect_err("404");
    assert_eq!(status(missing).code, 404);
}

#[tokio::test]
async fn discovery_lists_the_scale_subresource() {
    let (_sim, client) = sim().await;
    let discovery = Discovery::new(client).run().await.expect("discovery");
    let apps = discovery
        .groups()
        .find(|g| g.name() == "apps")
        .expect("apps group");
    let (_, caps) = apps
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == "deployments")
        .expect("deployments");
    let scale = caps
        .subresources
        .iter()
        .find(|(r, _)| r.plural == "deployments/scale" || r.plural == "scale")
        .map(|(r, _)| r.clone())
        .expect("scale subresource");
    assert_eq!(scale.kind, "Scale");
    assert_eq!(scale.group, "autoscaling");
}
