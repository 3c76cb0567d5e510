//! Deployments expanded into pods: scaling, replacement of deleted pods,
//! rolling updates, status, bare pods and images that cannot run.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

#[tokio::test]
async fn scale_replace_and_roll() {
    let h = start(options(5)).await;
    let deployments: Api<Deployment> = Api::namespaced(h.client.clone(), "default");
    let pods_api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let d = create_deployment(&h.client, &echo_deployment("app", 2, None)).await;
    create_service(
        &h.client,
        &service("app", "app", "NodePort", "Cluster", http_port()),
    )
    .await;
    eventually("two ready endpoints", || async {
        (ready_endpoints(&h.client, "app").await.len() == 2).then_some(())
    })
    .await;
    let pods = pods_of(&h.client, "app").await;
    for pod in &pods {
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Deployment", Some(true))
        );
        assert_eq!(Some(owner.uid.as_str()), d.metadata.uid.as_deref());
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let ip: Ipv4Addr = status
            .pod_ip
            .as_deref()
            .expect("podIP")
            .parse()
            .expect("ip");
        assert_eq!(ip.octets()[..3], [127, 78, 5], "from the pod range");
        assert!(
            status
                .host_ip
                .as_deref()
                .is_some_and(|h| h.starts_with("127.77.5."))
        );
        assert!(
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some()
        );
    }

    // Scale to 3.
    deployments
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .expect("scale");
    eventually("three ready endpoints", || async {
        (ready_endpoints(&h.client, "app").await.len() == 3).then_some(())
    })
    .await;
    let status = eventually("Deployment status at 3", || async {
        let d = deployments.get("app").await.ok()?;
        let s = d.status.clone()?;
        (s.ready_replicas == Some(3) && s.observed_generation == d.metadata.generation).then_some(s)
    })
    .await;
    assert_eq!(status.updated_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(3));
    let available = status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "Available").cloned());
    assert_eq!(available.map(|c| c.status).as_deref(), Some("True"));

    // Delete a pod: a replacement appears.
    let victim = pods_of(&h.client, "app").await[0]
        .metadata
        .name
        .clone()
        .expect("name");
    pods_api
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("a replacement pod", || async {
        let pods = pods_of(&h.client, "app").await;
        let live: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && ready(p))
            .collect();
        (live.len() == 3
            && live
                .iter()
                .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())))
        .then_some(())
    })
    .await;

    // A template change rolls every pod and the new text is served.
    deployments
        .replace("app", &PostParams::default(), &{
            let mut d = echo_deployment("app", 3, Some("v2"));
            d.metadata.resource_version = deployments
                .get("app")
                .await
                .expect("get")
                .metadata
                .resource_version;
            d
        })
        .await
        .expect("update template");
    let node = h.dev.nodes()[0].address;
    let port = node_port(
        &Api::<k8s_openapi::api::core::v1::Service>::namespaced(h.client.clone(), "default")
            .get("app")
            .await
            .expect("svc"),
    );
    eventually("every pod on the new template", || async {
        let pods = pods_of(&h.client, "app").await;
        let hashes: std::collections::BTreeSet<String> = pods
            .iter()
            .filter_map(|p| {
                p.metadata
                    .labels
                    .as_ref()?
                    .get("pod-template-hash")
                    .cloned()
            })
            .collect();
        let endpoints = ready_endpoints(&h.client, "app").await;
        (pods.len() == 3 && hashes.len() == 1 && endpoints.len() == 3).then_some(())
    })
    .await;
    let v = echo_json(SocketAddr::from((node, port))).await;
    assert_eq!(v["text"], "v2");
}

#[tokio::test]
async fn bare_pods_run_or_stay_pending() {
    let h = start(options(6)).await;
    let pods_api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let bare: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bare", "namespace": "default", "labels": {"app": "bare"}},
        "spec": {"containers": [{"name": "echo", "image": "gantry.dev/echo"}]},
    }))
    .expect("pod");
    let foreign: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    }))
    .expect("pod");
    pods_api
        .create(&PostParams::default(), &bare)
        .await
        .expect("create bare");
    pods_api
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create nginx");

    let ip = eventually("the bare pod running", || async {
        let p = pods_api.get("bare").await.ok()?;
        let s = p.status.as_ref()?;
        (s.phase.as_deref() == Some("Running") && ready(&p))
            .then(|| s.pod_ip.clone())
            .flatten()
    })
    .await;
    // No declared port: the echo listens on 8080.
    let ip: Ipv4Addr = ip.parse().expect("ip");
    let v = echo_json(SocketAddr::from((ip, 8080))).await;
    assert_eq!(v["pod"], "bare");
    let (status, _, body) = http_get(SocketAddr::from((ip, 8080)), "/healthz")
        .await
        .expect("healthz");
    assert_eq!((status, body.as_str()), (200, "ok"));

    let condition = eventually("nginx reported unschedulable", || async {
        let p = pods_api.get("nginx").await.ok()?;
        let s = p.status?;
        let c = s
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")?;
        (s.phase.as_deref() == Some("Pending")).then_some(c)
    })
    .await;
    assert_eq!(condition.status, "False");
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(
        condition.message.as_deref(),
        Some("image nginx:1.27 cannot run in the dev cluster; only gantry.dev/echo runs")
    );
    let nginx = pods_api.get("nginx").await.expect("nginx");
    assert!(
        nginx.spec.and_then(|s| s.node_name).is_none(),
        "never bound"
    );

    // Deleting the pod stops its server.
    pods_api
        .delete("bare", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the bare pod's server stopped", || async {
        refused(SocketAddr::from((ip, 8080))).await.then_some(())
    })
    .await;
}

#[tokio::test]
async fn deletion_waits_for_finalizers_and_stops_the_pod_at_once() {
    let h = start(options(10)).await;
    let pods_api: Api<Pod> = Api::namespaced(h.client.clone(), "default");
    let held: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "held", "namespace": "default", "labels": {"app": "held"},
            "finalizers": ["example.com/hold"],
        },
        "spec": {"containers": [{"name": "echo", "image": "gantry.dev/echo"}]},
    }))
    .expect("pod");
    pods_api
        .create(&PostParams::default(), &held)
        .await
        .expect("create");
    create_service(
        &h.client,
        &service(
            "held",
            "held",
            "ClusterIP",
            "Cluster",
            json!([{"port": 80, "targetPort": 8080}]),
        ),
    )
    .await;
    let ip = eventually("held pod ready", || async {
        let p = pods_api.get("held").await.ok()?;
        ready(&p).then(|| p.status?.pod_ip).flatten()
    })
    .await;
    let addr = SocketAddr::from((ip.parse::<Ipv4Addr>().expect("ip"), 8080));
    echo_json(addr).await;
    eventually("one ready endpoint", || async {
        (ready_endpoints(&h.client, "held").await.len() == 1).then_some(())
    })
    .await;

    pods_api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    eventually(
        "the server stopped while the finalizer holds the pod",
        || async { refused(addr).await.then_some(()) },
    )
    .await;
    // The stopped pod turns not ready, so its endpoint ends up terminating
    // and no longer serving (briefly it may show terminating and serving).
    let conditions = eventually("a terminating endpoint that no longer serves", || async {
        let slices = slices_of(&h.client, "held").await;
        let e = slices.into_iter().flat_map(|s| s.endpoints).next()?;
        let c = e.conditions?;
        (c.terminating == Some(true) && c.serving == Some(false)).then_some(c)
    })
    .await;
    assert_eq!(conditions.ready, Some(false));
    let still = pods_api.get("held").await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    assert_eq!(
        still.metadata.finalizers.as_deref(),
        Some(&["example.com/hold".to_string()][..])
    );

    pods_api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release finalizer");
    eventually("the pod gone", || async {
        matches!(pods_api.get_opt("held").await, Ok(None)).then_some(())
    })
    .await;
    eventually("no endpoints left", || async {
        let slices = slices_of(&h.client, "held").await;
        (slices.len() == 1 && slices[0].endpoints.is_empty()).then_some(())
    })
    .await;
}
