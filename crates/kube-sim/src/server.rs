//! Listeners: the TCP accept loop, optional TLS, and one hyper connection
//! (HTTP/1.1 or HTTP/2) per client, all stopped by one shutdown signal.

use std::{sync::Arc, time::Duration};

use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use parking_lot::Mutex;
use tokio::net::TcpListener;

use crate::{faults::FaultState, router, store::State};

/// State shared by every connection and handle.
pub struct Shared {
    /// The store.
    pub state: Mutex<State>,
    /// Fault injection state.
    pub faults: Arc<FaultState>,
    /// Interval between watch BOOKMARK events.
    pub bookmark_interval: Mutex<Duration>,
    /// Flips to `true` on shutdown.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// `host:port` clients reach the server at.
    pub address: String,
}

/// Accepts connections until shutdown.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut stop = shared.shutdown.subscribe();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
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
        let acceptor = acceptor.clone();
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
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls_stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        });
    }
}

/// Creates the shared state.
pub fn shared(state: State, address: String) -> Arc<Shared> {
    let (shutdown, _) = tokio::sync::watch::channel(false);
    Arc::new(Shared {
        state: Mutex::new(state),
        faults: Arc::new(FaultState::default()),
        bookmark_interval: Mutex::new(Duration::from_secs(1)),
        shutdown,
        address,
    })
}
