//! L4 UDP: one session per client address, each with its own connected
//! socket towards one node, so replies find their way back and a node is
//! kept for the life of a flow. Sessions end after [`SESSION_IDLE`] without
//! traffic; at most [`MAX_SESSIONS`] exist per listener, and datagrams from
//! new clients beyond that are dropped rather than growing memory.
//!
//! UDP has nothing to drain: a retired listener ends its sessions at once.
//! A UDP node port cannot be probed by connecting, so a `Tcp` health check
//! on a UDP listener means no active check: nodes are ejected only when the
//! kernel reports the port unreachable (ICMP) on a session's socket. An
//! `Http` check (a health node port) works as for TCP.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    backend::{BackendSet, Target},
    io::{Activity, idle_expired},
    listener::ListenerEnv,
    plan::SourceRanges,
};

/// A session without traffic for this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// Most concurrent sessions per listener.
pub const MAX_SESSIONS: usize = 16_384;
const MAX_DATAGRAM: usize = 65_535;

/// What a UDP listener does with datagrams; swapped on reload.
#[derive(Debug)]
pub(crate) struct UdpConfig {
    /// Nodes at the node port.
    pub backends: Arc<BackendSet>,
    /// Who may send.
    pub ranges: SourceRanges,
}

/// One client's flow.
#[derive(Debug)]
struct Session {
    upstream: Arc<UdpSocket>,
    activity: Arc<Activity>,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Relays datagrams until `stop` fires, then ends every session before
/// returning so the port is free again.
pub(crate) async fn accept_loop(
    socket: UdpSocket,
    config: Arc<ArcSwap<UdpConfig>>,
    env: Arc<ListenerEnv>,
    stop: CancellationToken,
) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::default();
    let tasks = TaskTracker::new();
    let end = CancellationToken::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, client) = match received {
            Ok(r) => r,
            Err(error) => {
                // A previous send_to can surface an ICMP error here; it says
                // nothing about this socket.
                tracing::debug!(frontend = %env.frontend, %error, "UDP receive failed");
                continue;
            }
        };
        let existing = sessions.lock().get(&client).cloned();
        let session = match existing {
            Some(session) => session,
            None => {
                let cfg = config.load_full();
                if !cfg.ranges.allows(client.ip()) {
                    env.rejected.inc();
                    continue;
                }
                if sessions.lock().len() >= MAX_SESSIONS {
                    tracing::debug!(frontend = %env.frontend, "UDP session table full");
                    continue;
                }
                let Some((up, target)) = open_upstream(&cfg.backends).await else {
                    continue;
                };
                env.connections.inc();
                let session = Arc::new(Session {
                    upstream: up,
                    activity: env.activity(),
                });
                sessions.lock().insert(client, session.clone());
                tasks.spawn(relay_replies(
                    session.clone(),
                    target,
                    client,
                    socket.clone(),
                    sessions.clone(),
                    end.clone(),
                ));
                session
            }
        };
        session.activity.add_in(n);
        if session.upstream.send(&buf[..n]).await.is_err() {
            sessions.lock().remove(&client);
        }
    }
    end.cancel();
    tasks.close();
    tasks.wait().await;
}

async fn open_upstream(backends: &BackendSet) -> Option<(Arc<UdpSocket>, Arc<Target>)> {
    for target in backends.candidates() {
        let unspecified: IpAddr = match target.addr {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let Ok(sock) = UdpSocket::bind(SocketAddr::new(unspecified, 0)).await else {
            continue;
        };
        if sock.connect(target.addr).await.is_ok() {
            return Some((Arc::new(sock), target.clone()));
        }
        target.mark_suspect();
    }
    None
}

async fn relay_replies(
    session: Arc<Session>,
    target: Arc<Target>,
    client: SocketAddr,
    frontend: Arc<UdpSocket>,
    sessions: Sessions,
    end: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            r = session.upstream.recv(&mut buf) => match r {
                Ok(n) => {
                    if frontend.send_to(&buf[..n], client).await.is_ok() {
                        session.activity.add_out(n);
                    }
                }
                Err(error) => {
                    // Connected UDP sockets report ICMP port unreachable as
                    // ECONNREFUSED: nothing listens on the node port.
                    tracing::debug!(addr = %target.addr, %error, "UDP backend error");
                    target.mark_suspect();
                    break;
                }
            },
            () = idle_expired(session.activity.clone(), SESSION_IDLE) => break,
            () = end.cancelled() => break,
        }
    }
    let mut map = sessions.lock();
    if map.get(&client).is_some_and(|s| Arc::ptr_eq(s, &session)) {
        map.remove(&client);
    }
}
