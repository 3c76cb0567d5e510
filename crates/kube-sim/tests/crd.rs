//! CustomResourceDefinitions: serving a new kind, defaults, status
//! subresource, printer columns in discovery-driven clients, and removal.

mod common;

use common::{eventually, sim, status};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    api::{
        Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
        PatchParams, PostParams,
    },
    discovery::Discovery,
};
use serde_json::json;

fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "size": {"type": "integer", "default": 3},
                            "color": {"type": "string"}
                        }},
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                    }
                }}
            }]
        }
    }))
    .expect("crd")
}

#[tokio::test]
async fn crd_serves_custom_resources() {
    let (sim, client) = sim().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let created = crds
        .create(&PostParams::default(), &crd())
        .await
        .expect("create crd");
    let conditions = created
        .status
        .and_then(|s| s.conditions)
        .expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status")
    );

    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let mut w = DynamicObject::new("w1", &ar);
    w.data = json!({"spec": {"color": "red", "unknown": 1}, "status": {"ready": true}});
    let made = api
        .create(&PostParams::default(), &w)
        .await
        .expect("create widget");
    assert_eq!(
        made.data["spec"]["size"],
        json!(3),
        "schema default applied"
    );
    assert!(
        made.data["spec"].get("unknown").is_none(),
        "unknown fields pruned"
    );
    assert!(
        made.data.get("status").is_none(),
        "status ignored on create"
    );
    assert_eq!(made.metadata.generation, Some(1));

    let st = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 9}})),
        )
        .await
        .expect("status");
    assert_eq!(st.data["status"]["ready"], json!(true));
    assert_eq!(st.data["spec"]["size"], json!(3));
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    let sp = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 5}, "status": {"ready": false}})),
        )
        .await
        .expect("spec");
    assert_eq!(sp.data["spec"]["size"], json!(5));
    assert_eq!(sp.data["status"]["ready"], json!(true));
    assert_eq!(sp.metadata.generation, Some(2));

    let s = status(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 6}})),
        )
        .await
        .expect_err("no strategic merge for custom resources"),
    );
    assert_eq!(s.code, 415);

    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    eventually("crd gone", || {
        let crds = crds.clone();
        async move {
            crds.get_opt("widgets.example.com")
                .await
                .expect("get")
                .is_none()
        }
    })
    .await;
    let gone = Api::<DynamicObject>::all_with(
        client,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget")),
    );
    let s = status(
        gone.list(&ListParams::default())
            .await
            .expect_err("no longer served"),
    );
    assert_eq!(s.code, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn crd_deletion_waits_for_custom_resource_finalizers() {
    let (sim, client) = sim().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd())
        .await
        .expect("create crd");
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut w = DynamicObject::new("held", &ar);
    w.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    w.data = json!({"spec": {}});
    api.create(&PostParams::default(), &w)
        .await
        .expect("create");

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete crd");
    let pending = crds.get("widgets.example.com").await.expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let held = api.get("held").await.expect("held");
    assert!(held.metadata.deletion_timestamp.is_some());

    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert!(
        crds.get_opt("widgets.example.com")
            .await
            .expect("get")
            .is_none()
    );
    sim.shutdown().await;
}
