//! An emulator of the Compute Engine v1 REST API, following the paths,
//! JSON shapes, Operations and error bodies of the real service, for the
//! resources a load-balancer provider touches: addresses, forwarding
//! rules, target pools, backend services, health checks, unmanaged
//! instance groups, firewalls, URL maps, target HTTP(S) proxies, SSL
//! certificates, instances, zones and regions.
//!
//! Start it in-process with [`GceSim::start`] or run the `gce-sim` binary;
//! point a client at [`GceSim::url`] and inject failures through
//! [`GceSim::faults`] or `POST /_sim/faults`.

mod aggregated;
mod catalog;
mod defaults;
mod error;
mod faults;
mod geography;
mod links;
mod list;
mod operations;
mod refs;
mod resources;
mod router;
mod server;
mod store;
mod validate;
mod verbs;

use std::{net::SocketAddr, sync::Arc, time::Duration};

pub use error::{ApiError, StartError};
pub use faults::{Fault, Faults};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{server::Shared, store::State};

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on; port 0 picks a free one. Loopback only.
    pub listen: SocketAddr,
    /// Time an Operation takes from PENDING to DONE; zero makes every
    /// Operation DONE at once.
    pub operation_delay: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            operation_delay: Duration::from_millis(200),
        }
    }
}

/// A running emulator.
pub struct GceSim {
    shared: Arc<Shared>,
    url: String,
    task: JoinHandle<()>,
}

impl GceSim {
    /// Binds and starts serving.
    pub async fn start(options: SimOptions) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| StartError::Bind {
                    address: options.listen,
                    source,
                })?;
        let address = listener.local_addr().map_err(StartError::LocalAddr)?;
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(options.operation_delay)),
            faults: Arc::new(Faults::default()),
            calls: Mutex::new(Vec::new()),
            shutdown,
            address: address.to_string(),
        });
        let task = tokio::spawn(server::serve(listener, shared.clone()));
        Ok(Self {
            url: format!("http://{address}"),
            shared,
            task,
        })
    }

    /// Base URL, `http://127.0.0.1:PORT` (API paths start with `/compute/v1/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The fault rules.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// `METHOD path` of every API call so far, in arrival order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.calls()
    }

    /// Empties the request log, e.g. before counting the calls of one step.
    pub fn clear_calls(&self) {
        self.shared.calls.lock().clear();
    }

    /// Every stored resource as clients see it.
    pub fn resources(&self) -> Vec<Value> {
        self.shared.snapshot()
    }

    /// Changes how long Operations take from now on.
    pub fn set_operation_delay(&self, delay: Duration) {
        self.shared.state.lock().operation_delay = delay;
    }

    /// Stops accepting, closes open connections and waits for the listener.
    pub async fn shutdown(self) {
        let _ = self.shared.shutdown.send(true);
        let _ = self.task.await;
    }
}
