//! A plain HTTP GET through hyper, retried until a deadline: how `gantry dev`
//! shows that the external IP answers.

use std::{net::SocketAddr, time::Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

/// GET `/` from `addr` with `Host: host`, retrying until `deadline`; the
/// status line and body on success, the last failure otherwise.
pub async fn get_until(addr: SocketAddr, host: &str, deadline: Instant) -> Result<String, String> {
    let mut last = String::from("no attempt made");
    while Instant::now() < deadline {
        match get(addr, host).await {
            Ok(reply) => return Ok(reply),
            Err(e) => last = e,
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(last)
}

async fn get(addr: SocketAddr, host: &str) -> Result<String, String> {
    let limit = std::time::Duration::from_secs(5);
    let stream = tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/")
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = tokio::time::timeout(limit, sender.send_request(request))
        .await
        .map_err(|_| "no response in time".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(format!("HTTP {status}\n{}", String::from_utf8_lossy(&body)))
}
