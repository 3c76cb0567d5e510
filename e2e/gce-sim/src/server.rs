//! The listener: a TCP accept loop on loopback serving HTTP/1.1 and h2c,
//! and the state every connection shares.

use std::{sync::Arc, time::Duration};

use http::Method;
use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::{faults::Faults, resources, router, store::State};

/// How many calls the request log keeps (oldest dropped first).
const CALL_LOG_LIMIT: usize = 100_000;

/// State shared by every connection and the in-process handle.
pub struct Shared {
    /// The store.
    pub state: Mutex<State>,
    /// Fault rules.
    pub faults: Arc<Faults>,
    /// `METHOD path` of every API call, in arrival order.
    pub calls: Mutex<Vec<String>>,
    /// Flips to `true` on shutdown.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// `host:port` the emulator listens on.
    pub address: String,
}

impl Shared {
    /// Appends a call to the request log.
    pub fn record_call(&self, method: &Method, path: &str) {
        let mut calls = self.calls.lock();
        if calls.len() >= CALL_LOG_LIMIT {
            calls.remove(0);
        }
        calls.push(format!("{method} {path}"));
    }

    /// A copy of the request log.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().clone()
    }

    /// Every stored resource as clients see it, in path order.
    pub fn snapshot(&self) -> Vec<Value> {
        let base = format!("http://{}/compute/v1/", self.address);
        let state = self.state.lock();
        state
            .resources
            .iter()
            .map(|(rel, r)| resources::render(&state, rel, r, &base))
            .collect()
    }
}

/// Accepts connections until shutdown.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Transient accept errors (EMFILE and friends): back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut stop = shared.shutdown.subscribe();
            if *stop.borrow() {
                return;
            }
            let service = {
                let shared = shared.clone();
                service_fn(move |req| router::handle(shared.clone(), req))
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}
