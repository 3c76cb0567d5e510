//! Reading the Compute Engine emulator: plain HTTP calls to it, and telling
//! Gantry's resources (and their owner tags) from the rest.

use std::{collections::BTreeMap, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The collection of a rendered resource, from its `selfLink`.
pub fn collection(r: &Value) -> String {
    let link = r["selfLink"].as_str().unwrap_or_default();
    let parts: Vec<&str> = link.split('/').collect();
    // .../{collection}/{name}
    parts
        .len()
        .checked_sub(2)
        .map(|i| parts[i].to_string())
        .unwrap_or_default()
}

/// How every description the GCP provider writes starts; the owner's tags
/// follow as JSON.
pub const DESCRIPTION_PREFIX: &str = "Managed by Gantry; do not edit. ";

/// The label every labelled resource of Gantry's carries.
pub const LABEL_MANAGED: &str = "gantry-managed";

/// Whether a resource is marked as Gantry's: the managed label or a
/// description of Gantry's.
pub fn is_gantry(r: &Value) -> bool {
    r["labels"][LABEL_MANAGED].is_string() || tags(r).is_some()
}

/// The owner tags in a resource's description of Gantry's
/// (`gantry.dev/class`, `gantry.dev/owner`, ...).
pub fn tags(r: &Value) -> Option<BTreeMap<String, String>> {
    let json = r["description"]
        .as_str()?
        .strip_prefix(DESCRIPTION_PREFIX)?;
    serde_json::from_str(json).ok()
}

/// One HTTP/1.1 request on a fresh connection to `authority` (loopback);
/// status and body text.
pub async fn http_call(
    authority: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, String), String> {
    let limit = Duration::from_secs(10);
    let stream = tokio::time::timeout(limit, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(limit, sender.send_request(request))
        .await
        .map_err(|_| "no response".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(limit, response.into_body().collect())
        .await
        .map_err(|_| "body timed out".to_string())?
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
