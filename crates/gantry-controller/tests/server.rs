//! The HTTP endpoints: `/healthz`, `/readyz` and `/metrics` with the
//! controller's metric families, on loopback.

mod common;

use std::net::SocketAddr;

use common::{Harness, base};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: gantry\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics_are_served() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    h.metrics_addr = Some("127.0.0.1:0".parse().expect("addr"));
    h.start().await;
    let addr = h
        .health
        .as_ref()
        .and_then(|x| x.bound_addr())
        .expect("bound");
    assert!(addr.ip().is_loopback());
    h.create_service("web", "a").await;
    h.wait_for_ip("web").await;

    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/readyz").await.0, 200);
    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        "gantry_reconcile_runs_total{kind=\"Service\"}",
        "gantry_reconcile_duration_seconds_bucket{",
        "gantry_provider_calls_total{provider=\"local\",op=\"ensure\",outcome=\"ok\"} 1",
        "gantry_load_balancers{class=\"a\"} 1",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    h.shutdown().await;
}
