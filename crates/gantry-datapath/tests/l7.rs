//! L7 through the engine, on loopback: routing, TLS with SNI, HTTP/2,
//! redirects, forwarding headers and the request-head defences.

mod common;

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use common::*;
use gantry_datapath::{ObjectConfig, TlsMaterial};
use gantry_model::local::{LocalLoadBalancerSpec, LocalTls};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

/// Sends one HTTP/1.1 request over `io`; returns status, headers, body.
async fn http1<I>(io: I, req: Request<Empty<Bytes>>) -> (StatusCode, http::HeaderMap, String)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.expect("response");
    let (head, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (
        head.status,
        head.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn get(addr: &str, host: &str, path: &str) -> (StatusCode, http::HeaderMap, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let req = Request::get(path)
        .header("host", host)
        .body(Empty::new())
        .expect("request");
    http1(stream, req).await
}

/// Routing fixture: node `n` with one HTTP server per backend.
struct Routing {
    _servers: Vec<HttpNode>,
    spec: LocalLoadBalancerSpec,
}

async fn routing(frontend: &str, node_ip: &str, base: u16) -> Routing {
    let names = ["root", "app", "exact", "wild", "def"];
    let mut servers = Vec::new();
    let mut backends = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let port = base + u16::try_from(i).expect("small");
        servers.push(HttpNode::start(name, &format!("{node_ip}:{port}")).await);
        backends.push((*name, port));
    }
    let mut l = l7(&backends);
    l.rules = vec![
        rule(
            Some("example.test"),
            &[
                ("/", "Prefix", "root"),
                ("/app", "Prefix", "app"),
                ("/app/exact", "Exact", "exact"),
            ],
        ),
        rule(Some("*.wild.test"), &[("/", "Prefix", "wild")]),
    ];
    let mut spec = spec(frontend, vec![node("n", node_ip)]);
    spec.l7 = Some(l);
    Routing {
        _servers: servers,
        spec,
    }
}

#[tokio::test]
async fn host_and_path_routing_default_backend_and_404() {
    let r = routing("127.0.50.20", "127.0.60.20", 30020).await;
    let engine = engine();
    let mut spec = r.spec.clone();
    let ready = engine
        .apply(vec![ObjectConfig::new("ing", 1, spec.clone())])
        .await;
    assert!(ready["ing"].ready, "{:?}", ready["ing"]);

    let fe = "127.0.50.20:80";
    let cases = [
        ("example.test", "/", "root /"),
        ("example.test", "/other", "root /other"),
        ("example.test", "/app", "app /app"),
        ("example.test", "/app/", "app /app/"),
        ("example.test", "/app/exact", "exact /app/exact"),
        ("example.test", "/app/exact/more", "app /app/exact/more"),
        ("example.test", "/apple", "root /apple"),
        ("example.test:80", "/app", "app /app"),
        ("x.wild.test", "/anything", "wild /anything"),
    ];
    for (host, path, want) in cases {
        let (status, _, body) = get(fe, host, path).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, want),
            "{host}{path}"
        );
    }
    let (status, _, _) = get(fe, "unknown.test", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(fe, "a.b.wild.test", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "wildcards cover one label");

    // Hot reload: add a default backend; unmatched requests now reach it.
    spec.l7.as_mut().expect("l7").default_backend = Some("def".into());
    engine.apply(vec![ObjectConfig::new("ing", 2, spec)]).await;
    let (status, _, body) = get(fe, "unknown.test", "/x").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "def /x"));
    assert!(engine.render_metrics().contains(
        r#"gantry_datapath_requests_total{frontend="127.0.50.20:80/tcp",class="4xx"} 2"#
    ));
}

#[tokio::test]
async fn forwarding_headers_reach_the_backend() {
    let r = routing("127.0.50.24", "127.0.60.24", 30240).await;
    let engine = engine();
    engine
        .apply(vec![ObjectConfig::new("ing", 1, r.spec.clone())])
        .await;
    let stream = TcpStream::connect("127.0.50.24:80").await.expect("connect");
    let req = Request::get("/app")
        .header("host", "example.test")
        .header("x-forwarded-for", "192.0.2.7")
        .header("connection", "x-drop")
        .header("x-drop", "1")
        .body(Empty::new())
        .expect("request");
    let (status, headers, body) = http1(stream, req).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "app /app"));
    assert_eq!(headers["seen-x-forwarded-for"], "192.0.2.7, 127.0.0.1");
    assert_eq!(headers["seen-x-forwarded-proto"], "http");
    assert_eq!(headers["seen-x-forwarded-host"], "example.test");
    assert_eq!(headers["seen-host"], "example.test");
}

struct Pki {
    ca: CertificateDer<'static>,
    leaves: Vec<(TlsMaterial, CertificateDer<'static>)>,
}

/// A CA and one leaf per host, as Secrets would hold them.
fn pki(hosts: &[&str]) -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test ca");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaves = hosts
        .iter()
        .map(|h| {
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec![(*h).to_owned()])
                .expect("params")
                .signed_by(&key, &ca, &ca_key)
                .expect("leaf");
            let material = TlsMaterial {
                secret_name: format!("{h}-tls"),
                hosts: vec![(*h).to_owned()],
                cert_pem: cert.pem().into_bytes(),
                key_pem: key.serialize_pem().into_bytes(),
            };
            (material, cert.der().clone())
        })
        .collect();
    Pki {
        ca: ca.der().clone(),
        leaves,
    }
}

async fn tls_connect(
    addr: &str,
    sni: &str,
    ca: &CertificateDer<'static>,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from(sni.to_owned()).expect("server name");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

async fn tls_fixture(
    frontend: &str,
    node_ip: &str,
    base: u16,
) -> (Vec<HttpNode>, Pki, ObjectConfig) {
    let servers = vec![
        HttpNode::start("site-a", &format!("{node_ip}:{base}")).await,
        HttpNode::start("site-b", &format!("{node_ip}:{}", base + 1)).await,
    ];
    let pki = pki(&["a.test", "b.test"]);
    let mut l = l7(&[("a", base), ("b", base + 1)]);
    l.rules = vec![
        rule(Some("a.test"), &[("/", "Prefix", "a")]),
        rule(Some("b.test"), &[("/", "Prefix", "b")]),
    ];
    l.tls = pki
        .leaves
        .iter()
        .map(|(m, _)| LocalTls {
            secret_name: m.secret_name.clone(),
            hosts: m.hosts.clone(),
        })
        .collect();
    let mut s = spec(frontend, vec![node("n", node_ip)]);
    s.l7 = Some(l);
    let mut cfg = ObjectConfig::new("tls", 1, s);
    cfg.tls = pki.leaves.iter().map(|(m, _)| m.clone()).collect();
    (servers, pki, cfg)
}

#[tokio::test]
async fn https_serves_each_sni_host_its_certificate_and_routes() {
    let (_servers, pki, cfg) = tls_fixture("127.0.50.21", "127.0.60.21", 30210).await;
    let engine = engine();
    let ready = engine.apply(vec![cfg]).await;
    assert!(ready["tls"].ready, "{:?}", ready["tls"]);

    for (i, host) in ["a.test", "b.test"].iter().enumerate() {
        // Verification against the CA checks the SAN matches the SNI name;
        // the DER comparison checks it is that host's own certificate.
        let tls = tls_connect("127.0.50.21:443", host, &pki.ca, b"http/1.1").await;
        let peer = tls.get_ref().1.peer_certificates().expect("peer certs")[0].clone();
        assert_eq!(peer, pki.leaves[i].1, "certificate for {host}");
        let req = Request::get("/p")
            .header("host", *host)
            .body(Empty::new())
            .expect("request");
        let (status, headers, body) = http1(tls, req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("site-{} /p", &host[..1]));
        assert_eq!(headers["seen-x-forwarded-proto"], "https");
    }
}

#[tokio::test]
async fn http2_over_tls() {
    let (_servers, pki, cfg) = tls_fixture("127.0.50.25", "127.0.60.25", 30250).await;
    let engine = engine();
    engine.apply(vec![cfg]).await;
    let tls = tls_connect("127.0.50.25:443", "b.test", &pki.ca, b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    for path in ["/one", "/two"] {
        let req = Request::get(format!("https://b.test{path}"))
            .body(Empty::<Bytes>::new())
            .expect("req");
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["seen-host"], "b.test");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body, format!("site-b {path}").as_bytes());
    }
}

#[tokio::test]
async fn ssl_redirect_sends_plain_http_to_https() {
    let (_servers, _pki, mut cfg) = tls_fixture("127.0.50.22", "127.0.60.22", 30220).await;
    cfg.spec.l7.as_mut().expect("l7").ssl_redirect = true;
    let engine = engine();
    engine.apply(vec![cfg]).await;
    let (status, headers, _) = get("127.0.50.22:80", "a.test:80", "/x?y=1").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], "https://a.test/x?y=1");
}

/// Writes `bytes` and reads until the server closes (or 5 s pass).
async fn raw_exchange(addr: &str, bytes: &[u8]) -> (String, Duration) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let start = tokio::time::Instant::now();
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "server did not close the connection");
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[tokio::test]
async fn silent_and_slow_clients_are_closed_by_the_header_deadline() {
    let r = routing("127.0.50.23", "127.0.60.23", 30230).await;
    let engine = engine();
    let (_, _pki, mut tls_cfg) = tls_fixture("127.0.50.23", "127.0.60.23", 30235).await;
    tls_cfg.name = "tls".into();
    // Same address: the HTTP listener merges both objects; 443 has TLS.
    engine
        .apply(vec![ObjectConfig::new("ing", 1, r.spec.clone()), tls_cfg])
        .await;

    for addr in ["127.0.50.23:80", "127.0.50.23:443"] {
        let (out, took) = raw_exchange(addr, b"").await;
        assert!(
            took >= Duration::from_millis(900),
            "{addr}: closed too early: {took:?}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{addr}: deadline did not fire: {took:?}"
        );
        assert_eq!(out, "", "{addr}: closed without a response");
    }
    let (out, _) = raw_exchange(
        "127.0.50.23:80",
        b"GET / HTTP/1.1\r\nHost: example.test\r\n",
    )
    .await;
    assert!(!out.contains("200 OK"), "{out}");
    // A complete request is still served.
    let (status, _, _) = get("127.0.50.23:80", "example.test", "/").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let r = routing("127.0.50.26", "127.0.60.26", 30260).await;
    let engine = engine();
    engine
        .apply(vec![ObjectConfig::new("ing", 1, r.spec.clone())])
        .await;

    let mut many = String::from("GET / HTTP/1.1\r\nHost: example.test\r\n");
    for i in 0..300 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (out, _) = raw_exchange("127.0.50.26:80", many.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");

    let big = format!(
        "GET / HTTP/1.1\r\nHost: example.test\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let (out, _) = raw_exchange("127.0.50.26:80", big.as_bytes()).await;
    assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    assert_eq!(
        r._servers
            .iter()
            .map(|s| s.requests.load(std::sync::atomic::Ordering::SeqCst))
            .sum::<usize>(),
        0
    );
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_never_smuggled() {
    // hyper reads such a request as chunked, discards Content-Length and
    // closes the connection after answering (RFC 9112 §6.3); the datapath
    // cannot see the discarded header, so it does not answer 400 itself.
    let r = routing("127.0.50.27", "127.0.60.27", 30270).await;
    let engine = engine();
    engine
        .apply(vec![ObjectConfig::new("ing", 1, r.spec.clone())])
        .await;
    // The chunked body ends at once; what follows would be a second request
    // to anyone who trusted Content-Length instead.
    let attack = b"POST /app HTTP/1.1\r\nHost: example.test\r\nContent-Length: 40\r\n\
Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: example.test\r\n\r\n";
    let (out, _) = raw_exchange("127.0.50.27:80", attack).await;
    assert_eq!(
        out.matches("HTTP/1.1 ").count(),
        1,
        "one response, then close: {out}"
    );
    let head = out.to_ascii_lowercase();
    assert!(head.contains("\r\nconnection: close\r\n"), "{out}");
    assert!(
        head.contains("seen-transfer-encoding: chunked"),
        "upstream gets chunked: {out}"
    );
    assert!(
        !head.contains("seen-content-length"),
        "upstream never gets both: {out}"
    );
    assert!(out.ends_with("app /app"), "{out}");
    let served: usize = r
        ._servers
        .iter()
        .map(|s| s.requests.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    assert_eq!(served, 1, "the tail was never forwarded as a request");
}

#[tokio::test]
async fn requests_retry_another_node_when_connecting_fails() {
    let alive = HttpNode::start("alive", "127.0.60.28:30280").await;
    let dead = HttpNode::start("dead", "127.0.61.28:30280").await;
    let mut l = l7(&[("b", 30280)]);
    l.rules = vec![rule(None, &[("/", "Prefix", "b")])];
    let mut s = spec(
        "127.0.50.28",
        vec![node("alive", "127.0.60.28"), node("dead", "127.0.61.28")],
    );
    s.l7 = Some(l);
    // Active checks too slow to matter here: only the retry can help.
    let engine = gantry_datapath::Engine::new(&gantry_datapath::DatapathOptions {
        health_interval: Duration::from_secs(60),
        ..options()
    });
    assert!(engine.apply(vec![ObjectConfig::new("ing", 1, s)]).await["ing"].ready);
    dead.stop();
    for i in 0..6 {
        let stream = TcpStream::connect("127.0.50.28:80").await.expect("connect");
        let req = Request::post(format!("/p{i}"))
            .header("host", "any.test")
            .header("content-length", "7")
            .body(http_body_util::Full::new(Bytes::from_static(b"payload")))
            .expect("request");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK, "request {i}");
        assert_eq!(
            resp.headers()["seen-content-length"],
            "7",
            "body kept for the retry"
        );
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(body, format!("alive /p{i}").as_bytes());
    }
    assert_eq!(alive.requests.load(std::sync::atomic::Ordering::SeqCst), 6);
}

#[tokio::test]
async fn removed_http_listener_closes_idle_keep_alive_connections_gracefully() {
    let r = routing("127.0.50.29", "127.0.60.29", 30290).await;
    let engine = engine();
    engine
        .apply(vec![ObjectConfig::new("ing", 1, r.spec.clone())])
        .await;
    let stream = TcpStream::connect("127.0.50.29:80").await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = Request::get("/")
        .header("host", "example.test")
        .body(Empty::<Bytes>::new())
        .expect("req");
    assert_eq!(
        sender.send_request(req).await.expect("response").status(),
        StatusCode::OK
    );

    let start = tokio::time::Instant::now();
    assert!(engine.apply(Vec::new()).await.is_empty());
    assert!(
        TcpStream::connect("127.0.50.29:80").await.is_err(),
        "socket closed at once"
    );
    // The idle keep-alive connection is shut down gracefully, well before
    // the drain timeout (2 s) would force it.
    tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("connection ended")
        .expect("join")
        .expect("clean close");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}
