//! L4 TCP: accept, admit by source range, connect to a node (trying the next
//! one when a connect fails), optionally announce the client with PROXY v2,
//! then copy bytes both ways until either side closes, the connection idles
//! out, or its listener's drain ends.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use ppp::v2::{Builder, Command, Protocol, Version};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

use crate::{
    backend::{BackendSet, Target},
    io::{idle_expired, relay},
    listener::ListenerEnv,
    plan::SourceRanges,
    watch::watched,
};

/// Time allowed to connect to one node before trying the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What a TCP listener does with a connection; swapped on reload.
#[derive(Debug)]
pub(crate) struct TcpConfig {
    /// Nodes at the node port.
    pub backends: Arc<BackendSet>,
    /// Send a PROXY v2 header first.
    pub proxy_protocol: bool,
    /// Who may connect.
    pub ranges: SourceRanges,
}

/// Accepts until `stop` fires.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    config: Arc<ArcSwap<TcpConfig>>,
    env: Arc<ListenerEnv>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let cfg = config.load_full();
                if !cfg.ranges.allows(peer.ip()) {
                    env.rejected.inc();
                    continue;
                }
                env.connections.inc();
                env.tracker.spawn(proxy(stream, peer, cfg, env.clone()));
            }
            Err(error) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!(frontend = %env.frontend, %error, "Accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Connects to the first node of `backends` that answers; every node that
/// does not is marked suspect.
pub(crate) async fn connect_any(backends: &BackendSet) -> Option<(TcpStream, Arc<Target>)> {
    for target in backends.candidates() {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr)).await {
            Ok(Ok(stream)) => return Some((stream, target.clone())),
            Ok(Err(error)) => {
                tracing::debug!(addr = %target.addr, %error, "Backend connect failed");
                target.mark_suspect();
            }
            Err(_) => {
                tracing::debug!(addr = %target.addr, "Backend connect timed out");
                target.mark_suspect();
            }
        }
    }
    None
}

/// The PROXY v2 header announcing a stream from `client` to `frontend`.
pub(crate) fn proxy_v2_header(client: SocketAddr, frontend: SocketAddr) -> Option<Vec<u8>> {
    // Both addresses must share a family; a v4 client on a v6 socket shows
    // up mapped, which the header carries as plain v4 when it can.
    let (client, frontend) = match (client, frontend) {
        (SocketAddr::V6(c), SocketAddr::V4(f)) => match c.ip().to_ipv4_mapped() {
            Some(ip) => (SocketAddr::new(ip.into(), c.port()), SocketAddr::V4(f)),
            None => return None,
        },
        other => other,
    };
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        (client, frontend),
    )
    .build()
    .ok()
}

async fn proxy(client: TcpStream, peer: SocketAddr, cfg: Arc<TcpConfig>, env: Arc<ListenerEnv>) {
    let Some((mut upstream, target)) = connect_any(&cfg.backends).await else {
        tracing::debug!(frontend = %env.frontend, "No backend answered");
        return;
    };
    let _ = upstream.set_nodelay(true);
    if cfg.proxy_protocol {
        let header = client
            .local_addr()
            .ok()
            .and_then(|local| proxy_v2_header(peer, local));
        let Some(header) = header else {
            tracing::warn!(frontend = %env.frontend, %peer, "Cannot encode PROXY header");
            return;
        };
        if upstream.write_all(&header).await.is_err() {
            target.mark_suspect();
            return;
        }
    }
    let activity = env.activity();
    let watch = async {
        tokio::select! {
            () = idle_expired(activity.clone(), env.idle_timeout) => {
                tracing::debug!(frontend = %env.frontend, %peer, "Idle timeout");
            }
            () = env.closing.cancelled() => {}
        }
    };
    // The watchdogs are polled only when they fire, not on every chunk.
    let relay = std::pin::pin!(relay(&client, &upstream, &activity));
    let _ = watched(relay, std::pin::pin!(watch)).await;
}

#[cfg(test)]
mod tests {
    use ppp::v2::{Addresses, Header};

    use super::*;

    #[test]
    fn proxy_header_round_trips() {
        let client: SocketAddr = "127.0.0.9:4000".parse().expect("addr");
        let frontend: SocketAddr = "127.0.50.1:80".parse().expect("addr");
        let bytes = proxy_v2_header(client, frontend).expect("header");
        let header = Header::try_from(bytes.as_slice()).expect("parse");
        match header.addresses {
            Addresses::IPv4(a) => {
                assert_eq!(a.source_address, std::net::Ipv4Addr::new(127, 0, 0, 9));
                assert_eq!(a.source_port, 4000);
                assert_eq!(a.destination_port, 80);
            }
            other => panic!("unexpected {other:?}"),
        }
        let mapped: SocketAddr = "[::ffff:127.0.0.9]:4000".parse().expect("addr");
        assert!(proxy_v2_header(mapped, frontend).is_some());
        let v6: SocketAddr = "[::1]:4000".parse().expect("addr");
        assert!(proxy_v2_header(v6, frontend).is_none());
    }
}
