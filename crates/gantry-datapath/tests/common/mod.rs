//! Test support: spec builders and fake node-port servers on loopback.
//!
//! Every test uses its own loopback addresses (frontends in 127.0.50.x,
//! nodes in 127.0.60.x and above), so tests run in parallel without sharing
//! ports.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use gantry_datapath::{DatapathOptions, Engine};
use gantry_model::{
    class::LocalMode,
    desired::Protocol,
    local::{
        LocalHealthCheck, LocalL4Listener, LocalL7, LocalL7Backend, LocalL7Path, LocalL7Rule,
        LocalLoadBalancerSpec, LocalNode, LocalOwner,
    },
};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    task::JoinHandle,
};

/// Options with short timers, for tests.
pub fn options() -> DatapathOptions {
    DatapathOptions {
        health_interval: Duration::from_millis(200),
        drain_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(30),
        max_header_bytes: 16 * 1024,
        max_headers: 100,
        ..DatapathOptions::new("test-node")
    }
}

/// An engine with [`options`].
pub fn engine() -> Engine {
    Engine::new(&options())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

pub fn sock(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

pub fn node(name: &str, addr: &str) -> LocalNode {
    LocalNode {
        name: name.into(),
        address: ip(addr),
    }
}

/// A Service-shaped spec with no listeners.
pub fn spec(address: &str, nodes: Vec<LocalNode>) -> LocalLoadBalancerSpec {
    LocalLoadBalancerSpec {
        class: "local".into(),
        owner: LocalOwner {
            kind: "Service".into(),
            namespace: "default".into(),
            name: "web".into(),
            uid: "uid-1".into(),
        },
        mode: LocalMode::L2,
        addresses: vec![ip(address)],
        nodes,
        l4: Vec::new(),
        l7: None,
        source_ranges: Vec::new(),
    }
}

pub fn tcp(port: u16, node_port: u16) -> LocalL4Listener {
    LocalL4Listener {
        protocol: Protocol::Tcp,
        port,
        node_port,
        health_check: LocalHealthCheck::Tcp,
        proxy_protocol: false,
    }
}

pub fn udp(port: u16, node_port: u16) -> LocalL4Listener {
    LocalL4Listener {
        protocol: Protocol::Udp,
        ..tcp(port, node_port)
    }
}

/// An Ingress-shaped L7 section with backends `name -> node port`.
pub fn l7(backends: &[(&str, u16)]) -> LocalL7 {
    LocalL7 {
        rules: Vec::new(),
        default_backend: None,
        backends: backends
            .iter()
            .map(|(n, p)| {
                (
                    (*n).to_owned(),
                    LocalL7Backend {
                        node_port: *p,
                        health_check: LocalHealthCheck::Tcp,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        tls: Vec::new(),
        ssl_redirect: false,
        allow_http: true,
    }
}

/// A host rule with `(path, type, backend)` paths.
pub fn rule(host: Option<&str>, paths: &[(&str, &str, &str)]) -> LocalL7Rule {
    LocalL7Rule {
        host: host.map(str::to_owned),
        paths: paths
            .iter()
            .map(|(p, t, b)| LocalL7Path {
                path: (*p).into(),
                path_type: (*t).into(),
                backend: (*b).into(),
            })
            .collect(),
    }
}

/// A fake node port: greets each connection with `name\n`, then echoes.
pub struct NodeServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    conns: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
}

impl NodeServer {
    pub async fn start(name: &str, addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind node server");
        let addr = listener.local_addr().expect("addr");
        let name = format!("{name}\n");
        let conns: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                let name = name.clone();
                tracked.lock().push(tokio::spawn(async move {
                    if s.write_all(name.as_bytes()).await.is_err() {
                        return;
                    }
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                }));
            }
        });
        Self { addr, task, conns }
    }

    /// Stops accepting and closes open connections.
    pub fn stop(&self) {
        self.task.abort();
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects to `addr` and reads the greeting line.
pub async fn greet(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let line = read_line(&mut s).await;
    (s, line)
}

pub async fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("read in time")
            .expect("read");
        if n == 0 || b[0] == b'\n' {
            break;
        }
        out.push(b[0]);
    }
    String::from_utf8(out).expect("utf8")
}

/// Sends `msg` and expects it echoed.
pub async fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.expect("write");
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .expect("echo in time")
        .expect("echo");
    assert_eq!(buf, msg);
}

/// A fake UDP node port answering `name:payload`.
pub async fn udp_server(name: &str, addr: &str) -> (SocketAddr, JoinHandle<()>) {
    let sock = UdpSocket::bind(addr).await.expect("bind udp");
    let addr = sock.local_addr().expect("addr");
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = sock.send_to(&reply, from).await;
        }
    });
    (addr, task)
}

/// A fake HTTP node port. Answers `name path` and reflects the forwarding
/// headers it saw as `seen-*` response headers; counts requests.
pub struct HttpNode {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HttpNode {
    pub async fn start(name: &str, addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind http node");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let name = name.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let name = name.clone();
                        async move { Ok::<_, Infallible>(reflect(&name, &req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }
}

impl HttpNode {
    /// Stops accepting: new connections are refused.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for HttpNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reflect(name: &str, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!(
        "{name} {}",
        req.uri().path()
    ))));
    for h in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "host",
        "content-length",
        "transfer-encoding",
    ] {
        if let Some(v) = req.headers().get(h) {
            resp.headers_mut().insert(
                http::HeaderName::from_bytes(format!("seen-{h}").as_bytes()).expect("name"),
                v.clone(),
            );
        }
    }
    resp
}

/// Polls `f` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A health endpoint answering every request with the status in `status`.
pub async fn health_server(
    addr: &str,
    status: Arc<std::sync::atomic::AtomicU16>,
) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.expect("bind health server");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let status = status.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let code = status.load(Ordering::SeqCst);
                    let path = req.uri().path().to_owned();
                    async move {
                        let mut resp = Response::new(Full::new(Bytes::from(path)));
                        *resp.status_mut() = http::StatusCode::from_u16(code).expect("status");
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    })
}
