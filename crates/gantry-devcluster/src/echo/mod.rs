//! The echo server every dev-cluster pod runs, usable on its own by tests and
//! benchmarks. On TCP it answers HTTP/1.1 and h2c (prior knowledge) requests
//! with JSON naming the pod, and anything else with a raw echo preceded by
//! `pod=<pod>\n`; on UDP it answers each datagram with `pod=<pod> ` and the
//! datagram.

pub mod detect;
pub mod http;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream, UdpSocket},
    task::{JoinHandle, JoinSet},
};

use crate::{DevError, proxy::Protocol};
use detect::{SNIFF_LEN, Sniffed, sniff};

/// How long a silent client may wait before it is treated as a raw client
/// and greeted; raw clients such as `nc` may wait for the greeting first.
const SNIFF_WAIT: Duration = Duration::from_millis(300);

/// Who is answering: what the echo reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoIdentity {
    /// The pod name.
    pub pod: String,
    /// The node the pod runs on.
    pub node: String,
    /// The container's `ECHO_TEXT`, if set.
    pub text: Option<String>,
}

/// A running echo listener; dropping it stops the listener and every
/// connection it accepted.
#[derive(Debug)]
pub struct EchoServer {
    local_addr: SocketAddr,
    protocol: Protocol,
    task: Option<JoinHandle<()>>,
}

impl EchoServer {
    /// Binds `addr` for `protocol` and starts answering.
    pub async fn bind(
        addr: SocketAddr,
        protocol: Protocol,
        identity: EchoIdentity,
    ) -> Result<EchoServer, DevError> {
        let identity = Arc::new(identity);
        let bind_err = |source| DevError::Bind {
            protocol: protocol.as_str(),
            addr,
            source,
        };
        let (local_addr, task) = match protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
                let local = listener.local_addr().map_err(bind_err)?;
                (local, tokio::spawn(serve_tcp(listener, identity)))
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(addr).await.map_err(bind_err)?;
                let local = socket.local_addr().map_err(bind_err)?;
                (local, tokio::spawn(serve_udp(socket, identity)))
            }
        };
        Ok(EchoServer {
            local_addr,
            protocol,
            task: Some(task),
        })
    }

    /// The bound address (useful when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The protocol served.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl EchoServer {
    /// Stops the server and waits until its socket is closed.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Accepts TCP connections until aborted; connections die with the task.
pub async fn serve_tcp(listener: TcpListener, identity: Arc<EchoIdentity>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(handle_tcp(stream, identity.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, pod = %identity.pod, "Echo accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle_tcp(stream: TcpStream, identity: Arc<EchoIdentity>) {
    match sniff_stream(&stream).await {
        Sniffed::Http => {
            let service =
                hyper::service::service_fn(move |req| http::answer(identity.clone(), req));
            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "Echo HTTP connection ended with an error");
            }
        }
        Sniffed::Raw | Sniffed::NeedMore => raw_echo(stream, &identity).await,
    }
}

/// Peeks (without consuming) until the first bytes tell HTTP from raw, or
/// the client has been silent for [`SNIFF_WAIT`].
async fn sniff_stream(stream: &TcpStream) -> Sniffed {
    let deadline = tokio::time::Instant::now() + SNIFF_WAIT;
    let mut buf = [0u8; SNIFF_LEN];
    let mut last_len = 0;
    loop {
        let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await;
        let n = match peeked {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return Sniffed::Raw,
        };
        if n == 0 {
            return Sniffed::Raw;
        }
        match sniff(&buf[..n]) {
            Sniffed::NeedMore if n < SNIFF_LEN => {
                // peek returns at once while bytes are buffered, so wait for
                // more to arrive instead of spinning on the same prefix.
                if n == last_len {
                    if tokio::time::Instant::now() >= deadline {
                        return Sniffed::Raw;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                last_len = n;
            }
            Sniffed::NeedMore => return Sniffed::Raw,
            decided => return decided,
        }
    }
}

async fn raw_echo(mut stream: TcpStream, identity: &EchoIdentity) {
    let greeting = format!("pod={}\n", identity.pod);
    if stream.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.split();
    if let Err(error) = tokio::io::copy(&mut reader, &mut writer).await {
        tracing::debug!(%error, "Raw echo connection ended with an error");
    }
    let _ = writer.shutdown().await;
}

/// Answers UDP datagrams until aborted.
pub async fn serve_udp(socket: UdpSocket, identity: Arc<EchoIdentity>) {
    let prefix = format!("pod={} ", identity.pod).into_bytes();
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let mut reply = Vec::with_capacity(prefix.len() + n);
                reply.extend_from_slice(&prefix);
                reply.extend_from_slice(&buf[..n]);
                if let Err(error) = socket.send_to(&reply, peer).await {
                    tracing::debug!(%error, %peer, "Echo UDP reply failed");
                }
            }
            Err(error) => {
                // ICMP errors from earlier replies surface here on Linux;
                // they concern one peer, not the socket.
                tracing::debug!(%error, "Echo UDP receive failed");
            }
        }
    }
}
