//! The backend every peer forwards to, on loopback: a small HTTP server
//! with a fixed body, a TCP sink for bulk transfers (counts live
//! connections, for the idle-connection case) and a TCP greeter that sends
//! one byte and closes, for the connection-rate case.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::error::BenchError;

/// The fixed response body (small, as for a health or API endpoint).
pub const BODY: &[u8] = b"hello from the backend\n";

/// Addresses of the running backend servers.
#[derive(Clone, Debug)]
pub struct Backend {
    /// HTTP/1.1 server.
    pub http: SocketAddr,
    /// TCP sink.
    pub sink: SocketAddr,
    /// TCP greeter.
    pub greet: SocketAddr,
    /// Connections open on the sink right now.
    pub sink_conns: Arc<AtomicUsize>,
}

impl Backend {
    /// Starts the three servers on `127.0.0.1` at `base`, `base+1`, `base+2`.
    pub async fn start(base: u16) -> Result<Self, BenchError> {
        let bind = |port: u16| async move {
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(BenchError::io(format!("bind backend port {port}")))
        };
        let http = bind(base).await?;
        let sink = bind(base + 1).await?;
        let greet = bind(base + 2).await?;
        let backend = Self {
            http: local(&http)?,
            sink: local(&sink)?,
            greet: local(&greet)?,
            sink_conns: Arc::default(),
        };
        tokio::spawn(serve_http(http));
        tokio::spawn(serve_sink(sink, backend.sink_conns.clone()));
        tokio::spawn(serve_greet(greet));
        Ok(backend)
    }

    /// Connections open on the sink.
    pub fn sink_connections(&self) -> usize {
        self.sink_conns.load(Ordering::SeqCst)
    }
}

fn local(l: &TcpListener) -> Result<SocketAddr, BenchError> {
    l.local_addr()
        .map_err(BenchError::io("backend local address"))
}

async fn serve_http(listener: TcpListener) {
    loop {
        let Ok((s, _)) = listener.accept().await else {
            continue;
        };
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

async fn serve_sink(listener: TcpListener, live: Arc<AtomicUsize>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let live = live.clone();
        live.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

async fn serve_greet(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            // The backend closes first, so TIME_WAIT stays on the server
            // side instead of using up the client's ephemeral ports.
            let _ = s.write_all(b"!").await;
            let _ = s.shutdown().await;
        });
    }
}
