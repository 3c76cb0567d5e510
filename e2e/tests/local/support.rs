//! Raw clients the traffic scenarios share: raw TCP and UDP exchanges, HTTP
//! requests with a chosen Host and path, a rustls client, and reading
//! Events and conditions.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use gantry_e2e::{local::LocalEnv, wait_for};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::events::v1::Event;
use kube::{Api, api::ListParams};
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, pki_types::ServerName},
};

/// Deadline of every wait in the traffic scenarios.
pub const T: Duration = Duration::from_secs(30);

/// Deadline of one network exchange.
const IO: Duration = Duration::from_secs(3);

/// Waits until `n` GETs of `/` on `addr` in a row succeed; `check` sees
/// each answer's body and asserts on it. A failure starts the count again.
pub fn consecutive_successes(env: &LocalEnv, addr: SocketAddr, n: usize, check: impl Fn(&str)) {
    let mut streak = 0;
    wait_for(&format!("{n} consecutive successes"), T, || {
        match env.http_get(addr) {
            Ok(body) => {
                check(&body);
                streak += 1;
            }
            Err(e) => {
                eprintln!("failure after {streak} successes: {e}");
                streak = 0;
            }
        }
        (streak >= n).then_some(())
    });
}

/// A raw (non-HTTP) exchange: connect, send `payload`, read until the echo
/// is back; the answering pod's name.
pub async fn tcp_echo(addr: SocketAddr, payload: &str) -> Result<String, String> {
    let mut stream = tokio::time::timeout(IO, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(payload.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let got = read_until(&mut stream, payload).await?;
    pod_of_greeting(&got).ok_or_else(|| format!("no pod= greeting in {got:?}"))
}

/// Reads from `stream` until the text read so far contains `needle`.
pub async fn read_until<S: AsyncRead + Unpin>(
    stream: &mut S,
    needle: &str,
) -> Result<String, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + IO;
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .map_err(|_| format!("timed out; read {:?}", String::from_utf8_lossy(&got)))?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed; read {:?}", String::from_utf8_lossy(&got)));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// The pod named by the raw echo's `pod=<name>\n` greeting.
pub fn pod_of_greeting(text: &str) -> Option<String> {
    let rest = text.split("pod=").nth(1)?;
    let end = rest.find(['\n', ' '])?;
    Some(rest[..end].to_string())
}

/// One UDP datagram to `addr`; the answer as text.
pub async fn udp_echo(addr: SocketAddr, payload: &str) -> Result<String, String> {
    let local: SocketAddr = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("bind: {e}"))?;
    socket
        .send_to(payload.as_bytes(), addr)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| format!("recv: {e}"))?;
    if from != addr {
        return Err(format!("answer from {from}, not {addr}"));
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// An HTTP/1.1 GET of `path` with `Host: host` over `io`; status and body.
pub async fn http_on<S>(io: S, host: &str, path: &str) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(IO, sender.send_request(request))
        .await
        .map_err(|_| "no response".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(IO, response.into_body().collect())
        .await
        .map_err(|_| "body timed out".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Plain HTTP GET of `path` with `Host: host` at `addr`.
pub async fn http(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, String), String> {
    let stream = tokio::time::timeout(IO, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    http_on(stream, host, path).await
}

/// The `text` (`ECHO_TEXT`) of the pod that answered `GET path` for `host`,
/// when the answer is a 200 echo.
pub fn echo_text(env: &LocalEnv, addr: SocketAddr, host: &str, path: &str) -> Option<String> {
    let (status, body) = env.rt.block_on(http(addr, host, path)).ok()?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    v["text"].as_str().map(str::to_string)
}

/// A TLS client trusting only `ca_der`.
pub fn tls_connector(ca_der: &[u8]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
        .expect("CA certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// HTTPS GET `/` at `addr` with SNI and Host `host`; the server's leaf
/// certificate (DER) and the body of a 200 answer. The handshake verifies
/// the certificate's names against `host`.
pub async fn https(
    connector: &TlsConnector,
    addr: SocketAddr,
    host: &str,
) -> Result<(Vec<u8>, String), String> {
    let stream = tokio::time::timeout(IO, TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(IO, connector.connect(name, stream))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or_else(|| "no peer certificate".to_string())?;
    let (status, body) = http_on(tls, host, "/").await?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok((leaf, body))
}

/// Events (events.k8s.io/v1) about the object named `name`, as
/// `(type, reason, note)`.
pub fn events_about(env: &LocalEnv, name: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::all(env.client.clone());
    let list = env
        .rt
        .block_on(api.list(&ListParams::default()))
        .expect("list events");
    list.items
        .into_iter()
        .filter(|e| {
            e.regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .is_some_and(|n| n == name)
        })
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// Wait for a Warning Event about `name` whose note contains every one of
/// `needles`; its note.
pub fn wait_warning(env: &LocalEnv, name: &str, needles: &[&str]) -> String {
    gantry_e2e::wait_for(
        &format!("Warning Event about {name} mentioning {needles:?}"),
        T,
        || {
            events_about(env, name)
                .into_iter()
                .find(|(t, _, note)| t == "Warning" && needles.iter().all(|n| note.contains(n)))
                .map(|(_, _, note)| note)
        },
    )
}

/// The condition of `type_` on a Service, as JSON.
pub fn service_condition(env: &LocalEnv, name: &str, type_: &str) -> Option<Value> {
    env.get("svc", name)?["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}
