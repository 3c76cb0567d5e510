//! Once settled, controllers write nothing: a pass caused by an unrelated
//! change leaves every EndpointSlice, Pod and Deployment untouched.

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod, discovery::v1::EndpointSlice};
use kube::{
    Api, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::json;

async fn versions<K>(api: &Api<K>) -> BTreeMap<String, String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_settled_cluster_writes_nothing_on_resync() {
    let h = start(options(9)).await;
    create_deployment(&h.client, &echo_deployment("quiet", 2, None)).await;
    create_service(
        &h.client,
        &service("quiet", "quiet", "NodePort", "Cluster", http_port()),
    )
    .await;
    create_deployment(&h.client, &echo_deployment("probe", 1, None)).await;
    create_service(
        &h.client,
        &service("probe", "probe", "NodePort", "Cluster", http_port()),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    eventually("both services settled", || async {
        let quiet = ready_endpoints(&h.client, "quiet").await.len() == 2;
        let probe = ready_endpoints(&h.client, "probe").await.len() == 1;
        let d = deployments.get("quiet").await.ok()?;
        let status_done = d.status.as_ref().and_then(|s| s.ready_replicas) == Some(2);
        (quiet && probe && status_done).then_some(())
    })
    .await;

    let slices: Api<EndpointSlice> = Api::namespaced(h.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    // Settled means two consecutive reads agree after at least one resync.
    let before = eventually("versions stable across a resync", || async {
        let a = (
            versions(&slices).await,
            versions(&pods).await,
            versions(&deployments).await,
        );
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let b = (
            versions(&slices).await,
            versions(&pods).await,
            versions(&deployments).await,
        );
        (a == b).then_some(a)
    })
    .await;

    // Scaling "probe" makes every controller run a full pass over all
    // objects; once its third endpoint shows, "quiet" has been through the
    // same passes.
    deployments
        .patch(
            "probe",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale probe");
    eventually("probe scaled", || async {
        (ready_endpoints(&h.client, "probe").await.len() == 2).then_some(())
    })
    .await;
    let after_slices = versions(&slices).await;
    let after_pods = versions(&pods).await;
    let after_deployments = versions(&deployments).await;
    let quiet = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| k.starts_with("quiet"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert!(!quiet(&before.0).is_empty());
    assert_eq!(
        quiet(&before.0),
        quiet(&after_slices),
        "no EndpointSlice write for an unchanged Service"
    );
    assert_eq!(
        quiet(&before.1),
        quiet(&after_pods),
        "no Pod status write for unchanged pods"
    );
    assert_eq!(
        quiet(&before.2),
        quiet(&after_deployments),
        "no Deployment status write"
    );
}
