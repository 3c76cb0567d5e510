//! The echo server on its own: HTTP/1.1, h2c with prior knowledge, raw TCP
//! (whether the client talks first or waits) and UDP.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use gantry_devcluster::{
    Protocol,
    echo::{EchoIdentity, EchoServer},
};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

fn identity() -> EchoIdentity {
    EchoIdentity {
        pod: "echo-abc-12345".into(),
        node: "node-9".into(),
        text: Some("hello there".into()),
    }
}

async fn tcp_server() -> EchoServer {
    let addr: SocketAddr = "127.79.0.1:0".parse().expect("addr");
    EchoServer::bind(addr, Protocol::Tcp, identity())
        .await
        .expect("bind")
}

#[tokio::test]
async fn http1_answers_with_json_describing_the_request() {
    let server = tcp_server().await;
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    stream
        .write_all(
            b"GET /a?b=c HTTP/1.1\r\nHost: testhost.com\r\nX-Probe: 1\r\nConnection: close\r\n\r\n",
        )
        .await
        .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-served-by: echo-abc-12345"),
        "{head}"
    );
    let v: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(v["pod"], "echo-abc-12345");
    assert_eq!(v["node"], "node-9");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/a");
    assert_eq!(v["host"], "testhost.com");
    assert_eq!(v["headers"]["x-probe"], "1");
    assert_eq!(v["text"], "hello there");
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let server = tcp_server().await;
    let stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("http://testhost.com/h2")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["path"], "/h2");
    assert_eq!(v["host"], "testhost.com");
}

#[tokio::test]
async fn raw_tcp_greets_then_echoes() {
    let server = tcp_server().await;
    // A client that talks first.
    let mut talker = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    talker.write_all(b"ping\n").await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < "pod=echo-abc-12345\nping\n".len() {
        let n = talker.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"pod=echo-abc-12345\nping\n");

    // A client that waits for the server to speak first still gets greeted.
    let mut waiter = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let mut greeting = vec![0u8; "pod=echo-abc-12345\n".len()];
    tokio::time::timeout(Duration::from_secs(5), waiter.read_exact(&mut greeting))
        .await
        .expect("greeting in time")
        .expect("read");
    assert_eq!(greeting, b"pod=echo-abc-12345\n");
}

#[tokio::test]
async fn udp_prefixes_the_pod_name() {
    let addr: SocketAddr = "127.79.0.2:0".parse().expect("addr");
    let server = EchoServer::bind(addr, Protocol::Udp, identity())
        .await
        .expect("bind");
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("client");
    client
        .send_to(b"datagram", server.local_addr())
        .await
        .expect("send");
    let mut buf = [0u8; 128];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("reply in time")
        .expect("recv");
    assert_eq!(from, server.local_addr());
    assert_eq!(&buf[..n], b"pod=echo-abc-12345 datagram");
}

#[tokio::test]
async fn dropping_the_server_closes_the_port() {
    let server = tcp_server().await;
    let addr = server.local_addr();
    drop(server);
    // Abort is asynchronous; the listener is closed once the task is dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "port still open");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
