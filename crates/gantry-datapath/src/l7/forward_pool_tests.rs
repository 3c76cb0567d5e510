//! Tests of the per-node keep-alive connections: a front server forwards
//! through a [`Forwarder`] to a backend that counts its connections.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::{body::Incoming, server::conn::http1 as server, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::Forwarder;
use crate::backend::{BackendSet, Target};

/// A backend answering "ok"; `keep_alive: false` closes after each answer.
async fn backend(keep_alive: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = server::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// A front server that forwards every request to `node`.
async fn front(node: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let set = Arc::new(BackendSet::new(vec![Arc::new(Target::new(
        "n".into(),
        node,
    ))]));
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
    addr
}

/// One request on a new client connection: status and body.
async fn get(front: SocketAddr) -> (StatusCode, Bytes) {
    let stream = TcpStream::connect(front).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "t")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

#[tokio::test]
async fn sequential_requests_from_new_clients_reuse_one_node_connection() {
    let (node, accepted) = backend(true).await;
    let front = front(node).await;
    for _ in 0..5 {
        assert_eq!(
            get(front).await,
            (StatusCode::OK, Bytes::from_static(b"ok"))
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one pooled connection");
}

#[tokio::test]
async fn a_node_closing_after_each_answer_costs_no_request() {
    let (node, accepted) = backend(false).await;
    let front = front(node).await;
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
}
