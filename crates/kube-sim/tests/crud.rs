//! CRUD, generateName, optimistic concurrency, status split and finalizers
//! through kube-rs against the in-process emulator.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::{
    Api, Client,
    api::{
        DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
        WatchParams,
    },
};
use kube_sim::{KubeSim, SimOptions};
use serde_json::json;

async fn sim() -> (KubeSim, Client) {
    let sim = KubeSim::start(SimOptions::default()).await.expect("start");
    let client = sim.client();
    (sim, client)
}

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn configmap_crud_and_conflict() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1 = created.metadata.resource_version.clone().expect("rv");

    let err = api
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect_err("duplicate");
    let kube::Error::Api(status) = err else {
        panic!("expected API error")
    };
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "AlreadyExists");

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let updated = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect("update");
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );

    // `changed` still carries the old resourceVersion.
    let err = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect_err("stale");
    let kube::Error::Api(status) = err else {
        panic!("expected API error")
    };
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );

    let got = api.get("a").await.expect("get");
    assert_eq!(got.data.expect("data")["k"], "w");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api.get("a").await.expect_err("gone");
    let kube::Error::Api(status) = err else {
        panic!("expected API error")
    };
    assert_eq!(status.code, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn generate_name_and_missing_namespace() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut c = cm("");
    c.metadata.name = None;
    c.metadata.generate_name = Some("gen-".into());
    let created = api
        .create(&PostParams::default(), &c)
        .await
        .expect("create");
    let name = created.metadata.name.expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let missing: Api<ConfigMap> = Api::namespaced(client, "nope");
    let err = missing
        .create(&PostParams::default(), &cm("x"))
        .await
        .expect_err("no namespace");
    let kube::Error::Api(status) = err else {
        panic!("expected API error")
    };
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nope\" not found");
    sim.shutdown().await;
}

#[tokio::test]
async fn service_status_split() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    }))
    .expect("service");
    let created = api
        .create(&PostParams::default(), &svc)
        .await
        .expect("create");
    assert!(
        created
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_none()
    );

    let status_patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}}, "spec": {"type": "ClusterIP"}});
    let patched = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .expect("status patch");
    assert_eq!(
        patched.spec.as_ref().and_then(|s| s.type_.as_deref()),
        Some("LoadBalancer")
    );
    let ip = patched
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .expect("ingress")[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("5.6.7.8"));

    let main_patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}, "metadata": {"labels": {"a": "b"}}});
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Merge(&main_patch))
        .await
        .expect("patch");
    let ip = patched
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .expect("ingress")[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("5.6.7.8"));
    assert_eq!(patched.metadata.labels.expect("labels")["a"], "b");
    sim.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut c = cm("held");
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &c)
        .await
        .expect("create");
    let mut stream = api
        .watch(&WatchParams::default().fields("metadata.name=held"), "0")
        .await
        .expect("watch")
        .boxed();
    let first = stream.try_next().await.expect("event").expect("some");
    assert!(matches!(first, WatchEvent::Added(_)));

    let deleted = api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let obj = deleted.left().expect("still present");
    assert!(obj.metadata.deletion_timestamp.is_some());
    assert!(api.get("held").await.is_ok());

    let ev = stream.try_next().await.expect("event").expect("some");
    assert!(matches!(ev, WatchEvent::Modified(_)));

    // Adding a finalizer while deleting is refused.
    let add = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/new"]}});
    let err = api
        .patch("held", &PatchParams::default(), &Patch::Merge(&add))
        .await
        .expect_err("no new finalizers");
    let kube::Error::Api(status) = err else {
        panic!("expected API error")
    };
    assert_eq!(status.code, 422);

    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .expect("remove finalizer");
    let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("in time")
        .expect("event")
        .expect("some");
    assert!(matches!(ev, WatchEvent::Deleted(_)), "{ev:?}");
    assert!(api.get("held").await.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_cascades() {
    let (sim, client) = sim().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &cm("one"))
        .await
        .expect("cm");
    let mut held = cm("two");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.expect("cm");

    nss.delete("team", &DeleteParams::default())
        .await
        .expect("delete ns");
    let ns = nss.get("team").await.expect("still terminating");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(cms.get("one").await.is_err());
    let err = cms
        .create(&PostParams::default(), &cm("three"))
        .await
        .expect_err("terminating");
    let kube::Error::Api(status) = err else {
        panic!("expected API error")
    };
    assert_eq!(status.code, 403);

    let clear = json!({"metadata": {"finalizers": null}});
    cms.patch("two", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .expect("release");
    assert!(
        nss.get("team").await.is_err(),
        "namespace removed once empty"
    );
    let all: Api<ConfigMap> = Api::all(client);
    assert!(
        all.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
    sim.shutdown().await;
}
