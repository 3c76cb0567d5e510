//! Field selectors the clients and controllers of a cluster rely on: Pods by
//! node and phase (what a kubelet and `kubectl get pods -A
//! --field-selector` send), Secrets by type, Nodes by schedulability, and
//! the real server's 400 for a field it cannot select on.

mod common;

use std::time::Duration;

use common::{sim, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
};
use serde_json::json;

async fn names<K>(api: &Api<K>, sel: &str) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default().fields(sel))
        .await
        .unwrap_or_else(|e| panic!("{sel}: {e}"))
        .items
        .iter()
        .map(|o| o.name_any())
        .collect()
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "echo"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pod")
}

#[tokio::test]
async fn pods_select_by_node_and_phase() {
    let (_sim, client) = sim().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for (name, node) in [("a", Some("n1")), ("b", Some("n2")), ("c", None)] {
        pods.create(&PostParams::default(), &pod(name, node))
            .await
            .expect("create");
    }
    pods.patch_status(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("status");
    assert_eq!(names(&pods, "spec.nodeName=n1").await, ["a"]);
    // The legacy label converts to spec.nodeName.
    assert_eq!(names(&pods, "spec.host=n2").await, ["b"]);
    // Unscheduled pods select with an empty node name, as the scheduler asks.
    assert_eq!(names(&pods, "spec.nodeName=").await, ["c"]);
    assert_eq!(names(&pods, "status.phase=Running").await, ["a"]);
    assert_eq!(names(&pods, "status.phase!=Running").await, ["b", "c"]);
    assert_eq!(
        names(&pods, "spec.nodeName=n1,status.phase=Pending").await,
        Vec::<String>::new()
    );
    // A missing bool selects as its Go zero value.
    assert_eq!(names(&pods, "spec.hostNetwork=false").await.len(), 3);
}

#[tokio::test]
async fn node_scoped_pod_watch_sees_binding_and_leaving() {
    let (_sim, client) = sim().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut watch = pods
        .watch(&WatchParams::default().fields("spec.nodeName=n1"), "0")
        .await
        .expect("watch")
        .boxed();
    pods.create(&PostParams::default(), &pod("elsewhere", Some("n2")))
        .await
        .expect("create");
    pods.create(&PostParams::default(), &pod("here", Some("n1")))
        .await
        .expect("create");
    let first = tokio::time::timeout(Duration::from_secs(10), watch.try_next())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    match first {
        WatchEvent::Added(p) => assert_eq!(p.name_any(), "here"),
        other => panic!("expected ADDED of the n1 pod only, got {other:?}"),
    }
    pods.delete("here", &Default::default())
        .await
        .expect("delete");
    let next = tokio::time::timeout(Duration::from_secs(10), watch.try_next())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert!(
        matches!(&next, WatchEvent::Deleted(p) if p.name_any() == "here"),
        "{next:?}"
    );
}

#[tokio::test]
async fn secrets_select_by_type_and_nodes_by_schedulability() {
    let (_sim, client) = sim().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for (name, ty) in [("tls", Some("kubernetes.io/tls")), ("plain", None)] {
        let mut s = json!({"metadata": {"name": name}, "data": {"tls.crt": "", "tls.key": ""}});
        if let Some(t) = ty {
            s["type"] = json!(t);
        }
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(s).expect("secret"),
            )
            .await
            .expect("create");
    }
    assert_eq!(names(&secrets, "type=kubernetes.io/tls").await, ["tls"]);
    assert_eq!(names(&secrets, "type!=kubernetes.io/tls").await, ["plain"]);

    let nodes: Api<Node> = Api::all(client);
    for (name, cordoned) in [("n1", true), ("n2", false)] {
        let n = json!({"metadata": {"name": name}, "spec": {"unschedulable": cordoned}});
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(n).expect("node"),
            )
            .await
            .expect("create");
    }
    assert_eq!(names(&nodes, "spec.unschedulable=false").await, ["n2"]);
    assert_eq!(names(&nodes, "metadata.name=n1").await, ["n1"]);
}

#[tokio::test]
async fn unsupported_fields_get_the_real_bad_request() {
    let (_sim, client) = sim().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    for (err, field) in [
        (
            pods.list(&ListParams::default().fields("spec.containers=x"))
                .await
                .expect_err("pods"),
            "spec.containers",
        ),
        (
            secrets
                .list(&ListParams::default().fields("data=x"))
                .await
                .expect_err("secrets"),
            "data",
        ),
    ] {
        let s = status(err);
        assert_eq!(s.code, 400);
        assert_eq!(s.reason, "BadRequest");
        assert_eq!(s.message, format!("field label not supported: {field}"));
    }
    // Watches validate the same way.
    let err = pods
        .watch(&WatchParams::default().fields("spec.image=x"), "0")
        .await
        .map(|_| ())
        .expect_err("watch");
    assert_eq!(status(err).code, 400);
}
