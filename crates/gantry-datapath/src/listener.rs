//! Listening sockets and their life: bind, serve, retire and drain.
//!
//! A running listener keeps its socket across reloads; only its
//! configuration is swapped. Retiring one stops the accept loop and closes
//! the socket before returning (so the key can be bound again at once),
//! asks its connections to finish (HTTP connections get a graceful
//! shutdown), and closes whatever is left after `drain_timeout`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    net::{TcpListener, UdpSocket},
    task::JoinHandle,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    error::ListenerError,
    io::Activity,
    metrics::{FrontendLabels, Metrics},
    plan::ListenerKey,
};

/// What connections of one listener share.
#[derive(Debug)]
pub(crate) struct ListenerEnv {
    /// `address:port/proto`, the metrics label.
    pub frontend: String,
    /// Admitted connections.
    pub connections: Counter,
    /// Connections refused by source ranges.
    pub rejected: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    active: Gauge,
    /// Connections with no traffic for this long are closed.
    pub idle_timeout: Duration,
    /// Fires when the listener is retired: finish gracefully.
    pub draining: CancellationToken,
    /// Fires when draining is over: close now.
    pub closing: CancellationToken,
    /// Connections still open.
    pub tracker: TaskTracker,
}

impl ListenerEnv {
    /// Shared state of the listener `key`.
    pub fn new(key: &ListenerKey, metrics: &Metrics, idle_timeout: Duration) -> Arc<Self> {
        let labels = FrontendLabels {
            frontend: key.to_string(),
        };
        Arc::new(Self {
            frontend: labels.frontend.clone(),
            connections: metrics.connections.get_or_create(&labels).clone(),
            rejected: metrics.rejected.get_or_create(&labels).clone(),
            bytes_in: metrics.bytes_in.get_or_create(&labels).clone(),
            bytes_out: metrics.bytes_out.get_or_create(&labels).clone(),
            active: metrics.active.get_or_create(&labels).clone(),
            idle_timeout,
            draining: CancellationToken::new(),
            closing: CancellationToken::new(),
            tracker: TaskTracker::new(),
        })
    }

    /// Accounting for one new connection.
    pub fn activity(&self) -> Arc<Activity> {
        Activity::new(
            self.bytes_in.clone(),
            self.bytes_out.clone(),
            self.active.clone(),
        )
    }
}

/// A bound, serving listener.
pub(crate) struct Running {
    /// Shared with its connections.
    pub env: Arc<ListenerEnv>,
    /// Stops the accept loop.
    pub stop: CancellationToken,
    accept: JoinHandle<()>,
}

impl Running {
    /// A listener whose accept loop is `accept`, stopped by `stop`.
    pub fn new(env: Arc<ListenerEnv>, stop: CancellationToken, accept: JoinHandle<()>) -> Self {
        Self { env, stop, accept }
    }

    /// Stops accepting (the socket is closed when this returns), then lets
    /// connections drain for `drain_timeout` in the background.
    pub async fn retire(self, drain_timeout: Duration, metrics: Arc<Metrics>) {
        self.stop.cancel();
        // The accept loop owns the socket; waiting for it means the port is
        // free again when we return.
        let _ = self.accept.await;
        let env = self.env;
        env.draining.cancel();
        env.tracker.close();
        tokio::spawn(async move {
            if tokio::time::timeout(drain_timeout, env.tracker.wait())
                .await
                .is_err()
            {
                tracing::info!(frontend = %env.frontend, "Drain timeout: closing remaining connections");
                env.closing.cancel();
                env.tracker.wait().await;
            }
            metrics.forget_frontend(&env.frontend);
        });
    }
}

/// Binds a TCP listener with `SO_REUSEADDR`, so a retired socket's
/// `TIME_WAIT` connections do not block binding the port again, and with
/// freebind (see [`freebind`]).
pub(crate) fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ListenerError> {
    let err = |source| ListenerError::Bind {
        addr,
        proto: "tcp",
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_tcp_nodelay(true).map_err(err)?;
    freebind(&socket, addr).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(1024).map_err(err)?;
    TcpListener::from_std(socket.into()).map_err(err)
}

/// Binds a UDP socket, with freebind (see [`freebind`]).
pub(crate) async fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, ListenerError> {
    let err = |source| ListenerError::Bind {
        addr,
        proto: "udp",
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
    freebind(&socket, addr).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    UdpSocket::from_std(socket.into()).map_err(err)
}

/// Lets the socket bind an address this node does not have (yet): an `l2`
/// address is on the interface of one node at a time, and every other node
/// keeps its listeners bound so that taking the address over needs no bind.
/// Addresses the node has behave as without it.
fn freebind(socket: &Socket, addr: SocketAddr) -> std::io::Result<()> {
    if addr.is_ipv4() {
        socket.set_freebind_v4(true)
    } else {
        socket.set_freebind_v6(true)
    }
}
