//! A Deployment of echo pods behind NodePort Services: EndpointSlices with
//! the resolved named port, and HTTP, raw TCP and UDP through every node.

mod common;

use std::net::SocketAddr;

use common::*;
use k8s_openapi::api::core::v1::Service;
use kube::{Api, api::DeleteParams};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

#[tokio::test]
async fn named_target_port_slices_and_traffic_through_every_node() {
    let h = start(options(3)).await;
    create_deployment(&h.client, &echo_deployment("web", 2, None)).await;
    let svc = create_service(
        &h.client,
        &service("web", "web", "NodePort", "Cluster", http_port()),
    )
    .await;
    let port = node_port(&svc);

    let ready = eventually("two ready endpoints", || async {
        let ready = ready_endpoints(&h.client, "web").await;
        (ready.len() == 2).then_some(ready)
    })
    .await;
    let slices = slices_of(&h.client, "web").await;
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    let labels = slice.metadata.labels.as_ref().expect("labels");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice.address_type, "IPv4");
    assert!(
        slice
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("web-"))
    );
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Service", "web")
    );
    assert_eq!(Some(owner.uid.as_str()), svc.metadata.uid.as_deref());
    let ports = slice.ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].name.as_deref(), Some("web"));
    assert_eq!(
        ports[0].port,
        Some(8080),
        "targetPort `http` resolved to the container port"
    );
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));

    let pods: Vec<String> = ready.iter().map(|(p, _)| p.clone()).collect();
    for p in &pods {
        assert!(p.starts_with("web-"), "pod named after its Deployment: {p}");
        assert_eq!(p.split('-').count(), 3, "<deploy>-<hash>-<suffix>: {p}");
    }
    for node in h.dev.nodes() {
        let addr = SocketAddr::from((node.address, port));
        let (status, head, body) = http_get(addr, "/hello")
            .await
            .expect("http through node port");
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let pod = v["pod"].as_str().expect("pod").to_string();
        assert!(pods.contains(&pod), "{pod} is one of {pods:?}");
        assert!(head.contains(&format!("x-served-by: {pod}")), "{head}");
        assert_eq!(v["path"], "/hello");
        assert_eq!(v["host"], "testhost.com");
        let node_of_pod = ready
            .iter()
            .find(|(p, _)| *p == pod)
            .map(|(_, n)| n.clone());
        assert_eq!(v["node"].as_str(), node_of_pod.as_deref());
    }

    // Raw TCP through a node port: greeting, then an echo.
    let node1 = h.dev.nodes()[0].address;
    let mut raw = TcpStream::connect((node1, port)).await.expect("connect");
    raw.write_all(b"hello\n").await.expect("write");
    let mut buf = vec![0u8; 256];
    let mut got = Vec::new();
    while !got.ends_with(b"hello\n") {
        let n = raw.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "connection closed early: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let greeting = text.lines().next().expect("greeting");
    assert!(
        pods.iter().any(|p| greeting == format!("pod={p}")),
        "{text}"
    );

    // Deleting the Service removes its slices.
    Api::<Service>::namespaced(h.client.clone(), "default")
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    eventually("slices of a deleted Service gone", || async {
        slices_of(&h.client, "web").await.is_empty().then_some(())
    })
    .await;
    eventually("node port closed after the Service is gone", || async {
        refused(SocketAddr::from((node1, port))).await.then_some(())
    })
    .await;
}

#[tokio::test]
async fn udp_service_echoes_through_a_node_port() {
    let h = start(options(4)).await;
    create_deployment(&h.client, &echo_deployment("dns", 2, None)).await;
    let ports = json!([{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]);
    let svc = create_service(
        &h.client,
        &service("dns", "dns", "NodePort", "Cluster", ports),
    )
    .await;
    let port = node_port(&svc);
    let ready = eventually("two ready endpoints", || async {
        let ready = ready_endpoints(&h.client, "dns").await;
        (ready.len() == 2).then_some(ready)
    })
    .await;
    let slices = slices_of(&h.client, "dns").await;
    let p = &slices[0].ports.as_ref().expect("ports")[0];
    assert_eq!((p.port, p.protocol.as_deref()), (Some(5353), Some("UDP")));

    let node2 = h.dev.nodes()[1].address;
    let reply = eventually("a UDP answer through node-2", || async {
        udp_roundtrip(SocketAddr::from((node2, port)), b"ping")
            .await
            .ok()
    })
    .await;
    let reply = String::from_utf8(reply).expect("utf8");
    assert!(
        ready
            .iter()
            .any(|(pod, _)| reply == format!("pod={pod} ping")),
        "{reply} from one of {ready:?}"
    );
}
