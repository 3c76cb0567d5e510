//! A small HTTP proxy on loopback in front of `moto_server`: it records every
//! call the controller makes (by service and `Action`), which is the honest
//! count of API economy, and can answer a share of calls with `Throttling`
//! or a 500 instead of forwarding them, as a loaded AWS endpoint would.

use std::{
    convert::Infallible,
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};

/// One call seen by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The signing service (`elasticloadbalancing`, `ec2`, `acm`...).
    pub service: String,
    /// The query-protocol `Action`, or the JSON protocol's target operation.
    pub action: String,
    /// When it arrived.
    pub at: Instant,
    /// Whether the proxy answered with an injected error instead of moto.
    pub faulted: bool,
}

impl Call {
    /// Whether the call only reads (`Describe*`, `Get*`, `List*`).
    pub fn is_read(&self) -> bool {
        ["Describe", "Get", "List"]
            .iter()
            .any(|p| self.action.starts_with(p))
    }
}

/// Which calls get an injected error: every `every`-th call (counting from
/// when the rule was set), alternating `Throttling` (400) and 500.
#[derive(Debug, Default)]
struct FaultRule {
    every: u64,
    seen: u64,
    injected: u64,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    faults: Option<FaultRule>,
}

/// The running proxy; it stops with the runtime that started it.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// The proxy's URL, to use as the class's endpoint.
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `upstream` (a
    /// `127.0.0.1:port` address).
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, upstream, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint: format!("http://{addr}"),
            state,
        })
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// Forget the calls so far (to count one step).
    pub fn reset(&self) {
        self.state.lock().calls.clear();
    }

    /// Answer every `every`-th call from now on with an error (0 stops).
    pub fn fail_every(&self, every: u64) {
        self.state.lock().faults = (every > 0).then_some(FaultRule {
            every,
            ..FaultRule::default()
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let service = signing_service(&parts.headers);
    let action = action_of(&parts, &body);
    let fault = {
        let mut st = state.lock();
        let fault = st.faults.as_mut().and_then(|f| {
            f.seen += 1;
            (f.seen % f.every == 0).then(|| {
                f.injected += 1;
                f.injected % 2 == 1
            })
        });
        st.calls.push(Call {
            service: service.clone(),
            action,
            at: Instant::now(),
            faulted: fault.is_some(),
        });
        fault
    };
    if let Some(throttle) = fault {
        return Ok(injected(&service, throttle));
    }
    Ok(forward(parts, body, upstream).await.unwrap_or_else(|e| {
        let mut resp = Response::new(Full::new(Bytes::from(format!("proxy: {e}"))));
        *resp.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        resp
    }))
}

/// The service named in the SigV4 credential scope.
fn signing_service(headers: &hyper::HeaderMap) -> String {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string()
}

/// `Action` of a query-protocol call (form body or query string), or the
/// operation of a JSON-protocol call (`X-Amz-Target: Service.Operation`).
fn action_of(parts: &http::request::Parts, body: &[u8]) -> String {
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let query = parts.uri.query().unwrap_or_default().as_bytes();
    [body, query]
        .into_iter()
        .flat_map(form_urlencoded::parse)
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The error AWS answers: `Throttling` (400) for ELBv2, `RequestLimitExceeded`
/// for EC2, or an internal error (500), in each protocol's XML shape.
fn injected(service: &str, throttle: bool) -> Response<Full<Bytes>> {
    let (status, code, message) = if throttle {
        let code = if service == "ec2" {
            "RequestLimitExceeded"
        } else {
            "Throttling"
        };
        (hyper::StatusCode::BAD_REQUEST, code, "Rate exceeded")
    } else {
        (
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "We encountered an internal error.",
        )
    };
    let body = if service == "ec2" {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>e2e-injected</RequestID></Response>"
        )
    } else {
        format!(
            "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>e2e-injected</RequestId></ErrorResponse>",
            if throttle { "Sender" } else { "Receiver" }
        )
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/xml"),
    );
    resp
}

/// Send the call on to moto over a fresh connection and relay its answer.
async fn forward(
    parts: http::request::Parts,
    body: Bytes,
    upstream: SocketAddr,
) -> Result<Response<Full<Bytes>>, String> {
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let req = Request::from_parts(parts, Full::new(body));
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
