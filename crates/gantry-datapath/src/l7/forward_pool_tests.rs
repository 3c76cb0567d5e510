//! Tests of the per-node keep-alive connections: a front server forwards
//! through a [`Forwarder`] to a backend that counts its connections.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1 as server, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::Forwarder;
use crate::backend::{BackendSet, Target};

/// A backend answering "ok" to GET and echoing any other request's body
/// back, eight times over; `keep_alive: false` closes after each answer.
async fn backend(keep_alive: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    backend_closing_idle_after(keep_alive, Duration::from_secs(60)).await
}

/// [`backend`], closing connections idle for `idle`.
async fn backend_closing_idle_after(
    keep_alive: bool,
    idle: Duration,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let body = if req.method() == http::Method::GET {
                        Bytes::from_static(b"ok")
                    } else {
                        let got = req.into_body().collect().await?.to_bytes();
                        Bytes::from(got.repeat(8))
                    };
                    Ok::<_, hyper::Error>(http::Response::new(http_body_util::Full::new(body)))
                });
                let _ = server::Builder::new()
                    .keep_alive(keep_alive)
                    .timer(TokioTimer::new())
                    .header_read_timeout(idle)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// A front server that forwards every request to `node`, and the node.
async fn front(node: SocketAddr) -> (SocketAddr, Arc<Target>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let target = Arc::new(Target::new("n".into(), node));
    let set = Arc::new(BackendSet::new(vec![target.clone()]));
    let forwarder = Forwarder::new();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (set, forwarder) = (set.clone(), forwarder.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (set, forwarder) = (set.clone(), forwarder.clone());
                    async move { Ok::<_, Infallible>(forwarder.forward(req, &set).await) }
                });
                let _ = server::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, target)
}

/// One request on a new client connection: status and body.
async fn get(front: SocketAddr) -> (StatusCode, Bytes) {
    request(front, http::Method::GET, Bytes::new()).await
}

/// One request with `body` on a new client connection: status and body.
async fn request(front: SocketAddr, method: http::Method, body: Bytes) -> (StatusCode, Bytes) {
    let stream = TcpStream::connect(front).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri("/")
        .header("host", "t")
        .body(Full::new(body))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

#[tokio::test]
async fn sequential_requests_from_new_clients_reuse_one_node_connection() {
    let (node, accepted) = backend(true).await;
    let (front, target) = front(node).await;
    for _ in 0..5 {
        assert_eq!(
            get(front).await,
            (StatusCode::OK, Bytes::from_static(b"ok"))
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one pooled connection");
    assert_eq!(target.http_idle.len(), 1, "back in the idle list");
}

#[tokio::test]
async fn large_bodies_both_ways_cross_a_pooled_connection_intact() {
    // The node's connection has no task of its own: the request writes the
    // upload and the response body drives the download, several socket
    // buffers each way, twice over the same connection.
    let (node, accepted) = backend(true).await;
    let (front, target) = front(node).await;
    let upload: Bytes = (0..512 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    for _ in 0..2 {
        let (status, body) = request(front, http::Method::POST, upload.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), upload.len() * 8);
        assert!(body.chunks(upload.len()).all(|c| c == &upload[..]));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one pooled connection");
    assert_eq!(target.http_idle.len(), 1);
}

#[tokio::test]
async fn a_node_closing_an_idle_connection_is_noticed_when_it_is_taken() {
    let (node, accepted) = backend_closing_idle_after(true, Duration::from_millis(100)).await;
    let (front, target) = front(node).await;
    assert_eq!(get(front).await.0, StatusCode::OK);
    assert_eq!(target.http_idle.len(), 1);
    // The node closes its side of the idle connection while nobody polls
    // ours; taking it reads the end of stream and refuses it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(target.http_idle.take().is_none(), "closed by the node");
    assert_eq!(get(front).await.0, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_node_closing_after_each_answer_costs_no_request() {
    let (node, accepted) = backend(false).await;
    let (front, target) = front(node).await;
    for _ in 0..5 {
        assert_eq!(
            get(front).await,
            (StatusCode::OK, Bytes::from_static(b"ok"))
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        5,
        "closed ones are not reused"
    );
    // Whatever was put back closed is refused when taken.
    assert!(target.http_idle.take().is_none());
}
