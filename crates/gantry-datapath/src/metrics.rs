//! Prometheus metrics of the datapath and the `/metrics` endpoint.
//!
//! Label values come from configuration only (frontend `address:port/proto`,
//! node name and address, status class), never from client input, and label
//! sets of removed frontends and backends are dropped, so cardinality stays
//! bounded by the configuration.

use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::net::TcpListener;

use crate::error::DatapathError;

/// Labels of per-frontend metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FrontendLabels {
    /// `address:port/proto`.
    pub frontend: String,
}

/// Labels of per-request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `address:port/proto`.
    pub frontend: String,
    /// `1xx` .. `5xx`.
    pub class: &'static str,
}

/// Labels of backend health.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackendLabels {
    /// Node name.
    pub node: String,
    /// `address:port` checked.
    pub target: String,
}

/// All datapath metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Connections accepted (and admitted by source ranges).
    pub connections: Family<FrontendLabels, Counter>,
    /// Connections refused by source ranges.
    pub rejected: Family<FrontendLabels, Counter>,
    /// Connections open now.
    pub active: Family<FrontendLabels, Gauge>,
    /// HTTP requests by status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Bytes read from clients.
    pub bytes_in: Family<FrontendLabels, Counter>,
    /// Bytes written to clients.
    pub bytes_out: Family<FrontendLabels, Counter>,
    /// 1 when the node answers its health check.
    pub backend_healthy: Family<BackendLabels, Gauge>,
}

impl Metrics {
    /// Metrics registered under the `gantry_datapath` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gantry_datapath");
        let connections = Family::<FrontendLabels, Counter>::default();
        let rejected = Family::<FrontendLabels, Counter>::default();
        let active = Family::<FrontendLabels, Gauge>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let bytes_in = Family::<FrontendLabels, Counter>::default();
        let bytes_out = Family::<FrontendLabels, Counter>::default();
        let backend_healthy = Family::<BackendLabels, Gauge>::default();
        registry.register("connections", "Connections accepted", connections.clone());
        registry.register(
            "rejected_connections",
            "Connections refused by source ranges",
            rejected.clone(),
        );
        registry.register("active_connections", "Connections open now", active.clone());
        registry.register(
            "requests",
            "HTTP requests by status class",
            requests.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes read from clients",
            bytes_in.clone(),
        );
        registry.register("sent_bytes", "Bytes written to clients", bytes_out.clone());
        registry.register(
            "backend_healthy",
            "1 when the node port answers its health check",
            backend_healthy.clone(),
        );
        Self {
            registry,
            connections,
            rejected,
            active,
            requests,
            bytes_in,
            bytes_out,
            backend_healthy,
        }
    }

    /// Drops every label set of a removed frontend.
    pub fn forget_frontend(&self, frontend: &str) {
        let labels = FrontendLabels {
            frontend: frontend.to_owned(),
        };
        self.connections.remove(&labels);
        self.rejected.remove(&labels);
        self.active.remove(&labels);
        self.bytes_in.remove(&labels);
        self.bytes_out.remove(&labels);
        for class in STATUS_CLASSES {
            self.requests.remove(&RequestLabels {
                frontend: frontend.to_owned(),
                class,
            });
        }
    }

    /// Text exposition of all metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Status class labels, in the order [`status_index`] numbers them.
pub(crate) const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Index into [`STATUS_CLASSES`] of a status code.
pub(crate) fn status_index(status: http::StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// Serves `/metrics` on `addr` until the task is dropped.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> Result<tokio::task::JoinHandle<()>, DatapathError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| DatapathError::BindMetrics { addr, source })?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(metrics_response(&req, &metrics)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }))
}

fn metrics_response(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let mut resp = if req.uri().path() == "/metrics" {
        Response::new(Full::new(Bytes::from(metrics.render())))
    } else if req.uri().path() == "/healthz" {
        // Answered by the same runtime as the traffic: a separate announcer
        // takes an answer as this process being alive.
        Response::new(Full::new(Bytes::from_static(b"ok\n")))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *r.status_mut() = http::StatusCode::NOT_FOUND;
        r
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let class = |s| STATUS_CLASSES[status_index(s)];
        assert_eq!(class(http::StatusCode::OK), "2xx");
        assert_eq!(class(http::StatusCode::PERMANENT_REDIRECT), "3xx");
        assert_eq!(
            class(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            "4xx"
        );
        assert_eq!(class(http::StatusCode::BAD_GATEWAY), "5xx");
        assert_eq!(class(http::StatusCode::CONTINUE), "1xx");
    }

    #[test]
    fn forgetting_a_frontend_removes_its_series() {
        let m = Metrics::new();
        let l = FrontendLabels {
            frontend: "127.0.0.1:80/tcp".into(),
        };
        m.connections.get_or_create(&l).inc();
        assert!(m.render().contains("127.0.0.1:80/tcp"));
        m.forget_frontend("127.0.0.1:80/tcp");
        assert!(!m.render().contains("127.0.0.1:80/tcp"));
    }
}
