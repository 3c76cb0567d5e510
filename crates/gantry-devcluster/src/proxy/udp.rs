//! UDP node ports: one session per client address, each with its own
//! socket on the node address connected to the chosen endpoint, so replies
//! find their way back to the right client. Idle sessions expire.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use rand::seq::IndexedRandom;
use tokio::net::UdpSocket;

use super::{Ctx, Protocol, TaskGuard};

/// A session with no traffic back from the endpoint for this long ends.
const IDLE: Duration = Duration::from_secs(30);

struct Session {
    upstream: Arc<UdpSocket>,
    _replies: TaskGuard,
    done: Arc<std::sync::atomic::AtomicBool>,
}

/// Relays datagrams until aborted; sessions die with the listener.
pub async fn serve(socket: UdpSocket, port: u16, ctx: Ctx) {
    let socket = Arc::new(socket);
    let local_ip = socket.local_addr().map(|a| a.ip()).ok();
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(error) => {
                // An ICMP error from an earlier reply; it concerns one peer only.
                tracing::debug!(%error, port, "Node port UDP receive failed");
                continue;
            }
        };
        sessions.retain(|_, s| !s.done.load(std::sync::atomic::Ordering::Relaxed));
        if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(client) {
            let backend = {
                let table = ctx.table.borrow();
                let usable = table
                    .node_ports
                    .get(&(Protocol::Udp, port))
                    .map(|r| r.usable(&ctx.node))
                    .unwrap_or_default();
                usable.choose(&mut rand::rng()).copied()
            };
            let Some(backend) = backend else { continue };
            match open(socket.clone(), local_ip, client, backend).await {
                Ok(session) => {
                    slot.insert(session);
                }
                Err(error) => {
                    tracing::debug!(%error, %backend, "UDP session setup failed");
                    continue;
                }
            }
        }
        if let Some(session) = sessions.get(&client)
            && let Err(error) = session.upstream.send(&buf[..n]).await
        {
            tracing::debug!(%error, "UDP forward failed");
        }
    }
}

async fn open(
    listener: Arc<UdpSocket>,
    local_ip: Option<IpAddr>,
    client: SocketAddr,
    backend: SocketAddr,
) -> std::io::Result<Session> {
    // Send from the node address, as a SNAT'ing kube-proxy would.
    let bind_ip = local_ip.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let upstream = Arc::new(UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await?);
    upstream.connect(backend).await?;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replies = {
        let upstream = upstream.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                match tokio::time::timeout(IDLE, upstream.recv(&mut buf)).await {
                    Ok(Ok(n)) => {
                        if let Err(error) = listener.send_to(&buf[..n], client).await {
                            tracing::debug!(%error, %client, "UDP reply failed");
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %backend, "UDP endpoint unreachable");
                        break;
                    }
                    Err(_) => break,
                }
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    Ok(Session {
        upstream,
        _replies: TaskGuard::new(replies),
        done,
    })
}
