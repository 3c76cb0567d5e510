//! Shared test harness: an in-process API emulator, a dev cluster on its
//! own loopback addresses (each test passes a distinct slot so tests in
//! parallel never share an address), object builders and tiny clients.

#![allow(dead_code)]

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use gantry_devcluster::{DevCluster, DevClusterOptions};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    api::{ListParams, PostParams},
};
use kube_sim::{KubeSim, SimOptions};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

/// How long `eventually` waits before failing a test.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Harness {
    pub sim: KubeSim,
    pub client: Client,
    pub dev: DevCluster,
}

/// Options with addresses unique to `slot` (1..=250).
pub fn options(slot: u8) -> DevClusterOptions {
    DevClusterOptions {
        node_address_base: Ipv4Addr::new(127, 77, slot, 1),
        pod_address_base: Ipv4Addr::new(127, 78, slot, 1),
        resync_interval: Duration::from_millis(500),
        ..DevClusterOptions::default()
    }
}

pub async fn start(opts: DevClusterOptions) -> Harness {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let sim = KubeSim::start(SimOptions::default())
        .await
        .expect("emulator starts");
    let client = sim.client();
    let dev = DevCluster::start(client.clone(), opts)
        .await
        .expect("dev cluster starts");
    Harness { sim, client, dev }
}

/// Polls `check` until it yields a value, failing the test after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn echo_deployment(name: &str, replicas: i32, text: Option<&str>) -> Deployment {
    let env = text
        .map(|t| json!([{"name": "ECHO_TEXT", "value": t}]))
        .unwrap_or(json!([]));
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "echo",
                    "image": "gantry.dev/echo:1.0",
                    "env": env,
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
                    ],
                }]},
            },
        },
    }))
    .expect("deployment")
}

/// A Service selecting `app=<app>`; `policy` applies to NodePort and LoadBalancer only.
pub fn service(name: &str, app: &str, kind: &str, policy: &str, ports: Value) -> Service {
    let mut spec = json!({"type": kind, "selector": {"app": app}, "ports": ports});
    if matches!(kind, "NodePort" | "LoadBalancer") {
        spec["externalTrafficPolicy"] = Value::from(policy);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("service")
}

pub fn http_port() -> Value {
    json!([{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}])
}

pub async fn create_deployment(client: &Client, d: &Deployment) -> Deployment {
    Api::<Deployment>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), d)
        .await
        .expect("create deployment")
}

pub async fn create_service(client: &Client, s: &Service) -> Service {
    Api::<Service>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), s)
        .await
        .expect("create service")
}

/// The node port of the Service's first port.
pub fn node_port(svc: &Service) -> u16 {
    let p = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.node_port);
    u16::try_from(p.expect("node port allocated")).expect("port")
}

pub async fn slices_of(client: &Client, svc: &str) -> Vec<EndpointSlice> {
    Api::<EndpointSlice>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .expect("list slices")
        .items
}

/// Ready endpoints of a Service's slices: `(pod name, node name)`.
pub async fn ready_endpoints(client: &Client, svc: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in slices_of(client, svc).await {
        for e in s.endpoints {
            if e.conditions.and_then(|c| c.ready) == Some(true) {
                out.push((
                    e.target_ref.and_then(|r| r.name).unwrap_or_default(),
                    e.node_name.unwrap_or_default(),
                ));
            }
        }
    }
    out.sort();
    out
}

pub async fn pods_of(client: &Client, app: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
}

/// A plain HTTP/1.1 GET; `(status, headers text, body)`.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await??;
    let req = format!("GET {path} HTTP/1.1\r\nHost: testhost.com\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

/// GETs `/` and returns the JSON body.
pub async fn echo_json(addr: SocketAddr) -> Value {
    let (status, _, body) = http_get(addr, "/").await.expect("http get");
    assert_eq!(status, 200, "body: {body}");
    serde_json::from_str(&body).expect("json body")
}

/// Sends one datagram from a socket on 127.0.0.1 and waits for the answer.
pub async fn udp_roundtrip(addr: SocketAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(addr).await?;
    socket.send(payload).await?;
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await??;
    buf.truncate(n);
    Ok(buf)
}

/// Whether a TCP connect to `addr` is refused.
pub async fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}
