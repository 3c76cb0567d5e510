//! Stopping a node: its node ports refuse connections, its Node turns
//! Ready=False and its pods' endpoints not ready; starting it restores all.

mod common;

use std::net::SocketAddr;

use common::*;
use k8s_openapi::api::core::v1::Node;
use kube::Api;

async fn node_ready(api: &Api<Node>, name: &str) -> Option<String> {
    let node = api.get(name).await.ok()?;
    node.status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status)
}

#[tokio::test]
async fn stop_and_start_a_node() {
    let h = start(options(8)).await;
    create_deployment(&h.client, &echo_deployment("spread", 3, None)).await;
    let svc = create_service(
        &h.client,
        &service("spread", "spread", "NodePort", "Cluster", http_port()),
    )
    .await;
    let port = node_port(&svc);
    let ready = eventually("three ready endpoints", || async {
        let r = ready_endpoints(&h.client, "spread").await;
        (r.len() == 3).then_some(r)
    })
    .await;
    let nodes = h.dev.nodes();
    let victim = nodes[1].clone();
    assert!(
        ready.iter().any(|(_, n)| *n == victim.name),
        "round-robin puts a pod on every node: {ready:?}"
    );
    let victim_addr = SocketAddr::from((victim.address, port));
    echo_json(victim_addr).await;

    let victim_pod_ip = pods_of(&h.client, "spread")
        .await
        .into_iter()
        .filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(victim.name.as_str())
        })
        .find_map(|p| p.status?.pod_ip)
        .expect("a pod on the victim node");
    let victim_pod_addr = SocketAddr::from((
        victim_pod_ip.parse::<std::net::Ipv4Addr>().expect("ip"),
        8080,
    ));
    echo_json(victim_pod_addr).await;

    h.dev.stop_node(&victim.name).await.expect("stop node");
    assert!(
        refused(victim_addr).await,
        "a stopped node refuses its node port"
    );
    assert!(
        refused(victim_pod_addr).await,
        "pods of a stopped node stop"
    );
    let node_api: Api<Node> = Api::all(h.client.clone());
    assert_eq!(
        node_ready(&node_api, &victim.name).await.as_deref(),
        Some("False")
    );
    let survivors = eventually("endpoints on the stopped node not ready", || async {
        let r = ready_endpoints(&h.client, "spread").await;
        (r.len() == 2 && r.iter().all(|(_, n)| *n != victim.name)).then_some(r)
    })
    .await;
    // Wait until the forwarder of node-1 has seen the change, then every
    // request must land on a surviving pod.
    let other = SocketAddr::from((nodes[0].address, port));
    let names: Vec<String> = survivors.iter().map(|(p, _)| p.clone()).collect();
    for _ in 0..10 {
        let v = echo_json(other).await;
        let pod = v["pod"].as_str().expect("pod").to_string();
        assert!(
            names.contains(&pod),
            "{pod} must not be on the stopped node"
        );
    }

    h.dev.start_node(&victim.name).await.expect("start node");
    assert_eq!(
        node_ready(&node_api, &victim.name).await.as_deref(),
        Some("True")
    );
    eventually("three ready endpoints again", || async {
        (ready_endpoints(&h.client, "spread").await.len() == 3).then_some(())
    })
    .await;
    let v = eventually("the restarted node answers", || async {
        let (status, _, body) = http_get(victim_addr, "/").await.ok()?;
        (status == 200)
            .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
            .flatten()
    })
    .await;
    assert!(v["pod"].as_str().is_some_and(|p| p.starts_with("spread-")));
}
