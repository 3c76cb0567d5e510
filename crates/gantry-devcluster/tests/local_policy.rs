//! `externalTrafficPolicy: Local`: health check node ports report local
//! endpoints, and nodes without one refuse the node port.

mod common;

use std::net::SocketAddr;

use common::*;

#[tokio::test]
async fn health_check_node_port_and_local_only_traffic() {
    let h = start(options(7)).await;
    create_deployment(&h.client, &echo_deployment("local", 1, None)).await;
    let svc = create_service(
        &h.client,
        &service("local", "local", "LoadBalancer", "Local", http_port()),
    )
    .await;
    let port = node_port(&svc);
    let health_port = svc
        .spec
        .as_ref()
        .and_then(|s| s.health_check_node_port)
        .and_then(|p| u16::try_from(p).ok())
        .expect("healthCheckNodePort allocated");
    let ready = eventually("one ready endpoint", || async {
        let r = ready_endpoints(&h.client, "local").await;
        (r.len() == 1).then_some(r)
    })
    .await;
    let (pod, pod_node) = ready[0].clone();

    for node in h.dev.nodes() {
        let health = SocketAddr::from((node.address, health_port));
        let traffic = SocketAddr::from((node.address, port));
        let (status, _, body) = eventually("a health check answer", || async {
            let answer = http_get(health, "/healthz").await.ok()?;
            let want = if node.name == pod_node { 200 } else { 503 };
            (answer.0 == want).then_some(answer)
        })
        .await;
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["service"]["namespace"], "default");
        assert_eq!(v["service"]["name"], "local");
        if node.name == pod_node {
            assert_eq!(status, 200);
            assert_eq!(v["localEndpoints"], 1);
            let served = echo_json(traffic).await;
            assert_eq!(served["pod"], pod.as_str());
        } else {
            assert_eq!(status, 503);
            assert_eq!(v["localEndpoints"], 0);
            assert!(
                refused(traffic).await,
                "{} has no local endpoint",
                node.name
            );
        }
    }
}
