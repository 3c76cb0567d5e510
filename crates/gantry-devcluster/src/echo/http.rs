//! The HTTP face of the echo server: every request is answered with a JSON
//! description of itself and of the pod that served it, so tests can see
//! which pod (and node) a load balancer picked.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

use super::EchoIdentity;

/// The header naming the pod that answered.
pub const SERVED_BY: &str = "x-served-by";

/// Answers one request; never fails, so hyper never resets a connection.
pub async fn answer<B>(
    identity: Arc<EchoIdentity>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(respond(&identity, &req))
}

/// Builds the response for a request (the body is not read: the echo does not need it).
pub fn respond<B>(identity: &EchoIdentity, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() == http::Method::GET && req.uri().path() == "/healthz" {
        return build(
            identity,
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"ok"),
        );
    }
    let body = describe(identity, req);
    let mut text = body.to_string();
    text.push('\n');
    build(
        identity,
        StatusCode::OK,
        "application/json",
        Bytes::from(text),
    )
}

/// The JSON description of a request as this pod saw it.
pub fn describe<B>(identity: &EchoIdentity, req: &Request<B>) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    // HTTP/2 carries the host in the :authority pseudo-header, which hyper
    // exposes through the URI rather than as a header.
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let mut body = json!({
        "pod": identity.pod,
        "node": identity.node,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "host": host,
        "headers": headers,
    });
    if let Some(query) = req.uri().query() {
        body["query"] = Value::from(query);
    }
    if let Some(text) = &identity.text {
        body["text"] = Value::from(text.as_str());
    }
    body
}

fn build(
    identity: &EchoIdentity,
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    // A pod name is a DNS label, so it is always a valid header value; a
    // foreign name that is not is simply left out.
    if let Ok(v) = http::HeaderValue::from_str(&identity.pod) {
        resp.headers_mut().insert(SERVED_BY, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(text: Option<&str>) -> EchoIdentity {
        EchoIdentity {
            pod: "web-abc-x1y2z".into(),
            node: "node-2".into(),
            text: text.map(str::to_string),
        }
    }

    #[test]
    fn describes_the_request_and_the_pod() {
        let req = Request::builder()
            .method("POST")
            .uri("/a/b?x=1")
            .header("host", "testhost.com")
            .header("x-one", "1")
            .header("x-one", "2")
            .body(())
            .expect("request");
        let resp = respond(&identity(Some("hello")), &req);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[SERVED_BY], "web-abc-x1y2z");
        let v = describe(&identity(Some("hello")), &req);
        assert_eq!(v["pod"], "web-abc-x1y2z");
        assert_eq!(v["node"], "node-2");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/a/b");
        assert_eq!(v["query"], "x=1");
        assert_eq!(v["host"], "testhost.com");
        assert_eq!(v["headers"]["x-one"], "1, 2");
        assert_eq!(v["text"], "hello");
    }

    #[test]
    fn no_text_without_echo_text() {
        let req = Request::builder().uri("/").body(()).expect("request");
        assert!(describe(&identity(None), &req).get("text").is_none());
    }

    #[test]
    fn healthz_is_plain_ok() {
        let req = Request::builder()
            .uri("/healthz")
            .body(())
            .expect("request");
        let resp = respond(&identity(None), &req);
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/plain");
    }
}
