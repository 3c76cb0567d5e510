//! The HTTP endpoints for Prometheus and the kubelet: `/metrics`,
//! `/healthz` (alive) and `/readyz` (stores synced, or waiting as standby).

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU8, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::{
    error::{Error, Result},
    metrics::Metrics,
};

/// Lifecycle phase shown by `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Starting up.
    Starting = 0,
    /// Waiting for the leader lease (ready to take over).
    Standby = 1,
    /// Leader, caches not yet synced.
    Syncing = 2,
    /// Leader with synced caches, reconciling.
    Running = 3,
}

/// Shared readiness.
#[derive(Debug, Default)]
pub struct Health {
    phase: AtomicU8,
    bound: OnceLock<SocketAddr>,
}

impl Health {
    /// The address the HTTP endpoints listen on, once bound.
    pub fn bound_addr(&self) -> Option<SocketAddr> {
        self.bound.get().copied()
    }

    /// Set the phase.
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Standby,
            2 => Phase::Syncing,
            3 => Phase::Running,
            _ => Phase::Starting,
        }
    }

    /// Whether `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        matches!(self.phase(), Phase::Standby | Phase::Running)
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if s.health.ready() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Bind `addr` and return the bound address and the serving future.
pub async fn bind(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<(SocketAddr, impl Future<Output = Result<()>> + Send)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Server {
            addr: addr.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Server {
        addr: addr.to_string(),
        source,
    })?;
    // Set once per process: a controller binds at most once.
    let _ = health.bound.set(bound);
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health });
    let serve = async move {
        axum::serve(listener, app)
            .await
            .map_err(|source| Error::Server {
                addr: bound.to_string(),
                source,
            })
    };
    Ok((bound, serve))
}
