//! Test helpers: a started emulator and a plain HTTP JSON client.

#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use gce_sim::{GceSim, SimOptions};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// A started emulator whose Operations finish after `delay_ms`.
pub async fn sim(delay_ms: u64) -> GceSim {
    GceSim::start(SimOptions {
        operation_delay: Duration::from_millis(delay_ms),
        ..SimOptions::default()
    })
    .await
    .expect("emulator starts")
}

/// Sends one request on a fresh connection; returns status and JSON body
/// (`Null` for an empty body).
pub async fn call(sim: &GceSim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let authority = sim.url().trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, &authority)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("JSON body")
    };
    (status, value)
}

/// `GET`.
pub async fn get(sim: &GceSim, path: &str) -> (u16, Value) {
    call(sim, "GET", path, None).await
}

/// `POST` with a JSON body.
pub async fn post(sim: &GceSim, path: &str, body: Value) -> (u16, Value) {
    call(sim, "POST", path, Some(body)).await
}

/// `DELETE`.
pub async fn delete(sim: &GceSim, path: &str) -> (u16, Value) {
    call(sim, "DELETE", path, None).await
}

/// API path under the test project.
pub fn api(rest: &str) -> String {
    format!("/compute/v1/projects/p1/{rest}")
}

/// Waits for an Operation through its `wait` method and asserts it is DONE
/// without error.
pub async fn wait_ok(sim: &GceSim, op: &Value) -> Value {
    let done = wait(sim, op).await;
    assert!(done.get("error").is_none(), "operation failed: {done}");
    done
}

/// Waits for an Operation through its `wait` method.
pub async fn wait(sim: &GceSim, op: &Value) -> Value {
    assert_eq!(op["kind"], "compute#operation", "not an operation: {op}");
    let link = op["selfLink"].as_str().expect("selfLink");
    let path = &link[link.find("/compute/v1/").expect("api path")..];
    let (status, done) = post(sim, &format!("{path}/wait"), json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "DONE", "{done}");
    done
}

/// Inserts and waits; panics unless both succeed.
pub async fn create(sim: &GceSim, collection_path: &str, body: Value) -> Value {
    let (status, op) = post(sim, &api(collection_path), body).await;
    assert_eq!(status, 200, "insert into {collection_path}: {op}");
    wait_ok(sim, &op).await
}

/// The reason of the single error entry of an error body.
pub fn reason(body: &Value) -> &str {
    body["error"]["errors"][0]["reason"].as_str().unwrap_or("")
}

/// A link the way clients send it: the full URL of a path under the project.
pub fn link(sim: &GceSim, rest: &str) -> String {
    format!("{}{}", sim.url(), api(rest))
}
