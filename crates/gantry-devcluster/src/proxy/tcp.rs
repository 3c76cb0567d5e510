//! TCP node ports: accept on the node address, pick a usable endpoint when
//! the connection arrives, and splice the two sockets.

use std::{net::SocketAddr, time::Duration};

use rand::seq::SliceRandom;
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

use super::{Ctx, Protocol};

/// How long a connect to an endpoint may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Endpoints tried per connection before giving up.
const ATTEMPTS: usize = 3;

/// Accepts until aborted; accepted connections die with the listener.
pub async fn serve(listener: TcpListener, port: u16, ctx: Ctx) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    conns.spawn(forward(client, port, ctx.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, port, "Node port accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn forward(mut client: TcpStream, port: u16, ctx: Ctx) {
    let mut candidates: Vec<SocketAddr> = ctx
        .table
        .borrow()
        .node_ports
        .get(&(Protocol::Tcp, port))
        .map(|r| r.usable(&ctx.node))
        .unwrap_or_default();
    candidates.shuffle(&mut rand::rng());
    for backend in candidates.into_iter().take(ATTEMPTS) {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend)).await {
            Ok(Ok(mut upstream)) => {
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    tracing::debug!(%error, %backend, "Forwarded connection ended with an error");
                }
                return;
            }
            Ok(Err(error)) => tracing::debug!(%error, %backend, "Endpoint refused; trying another"),
            Err(_) => tracing::debug!(%backend, "Endpoint connect timed out; trying another"),
        }
    }
    // Nowhere to go: dropping the client closes it.
}
