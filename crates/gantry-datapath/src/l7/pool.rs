//! Keep-alive HTTP/1.1 connections to nodes, driven by the request that
//! uses them.
//!
//! hyper's client splits a connection into a sender and a state machine
//! (`http1::Connection`) that is usually spawned as a task of its own; every
//! request then crosses a channel to that task and its response crosses one
//! back, two task wake-ups per request. Here nobody owns the state machine
//! but the request holding the connection: [`NodeConn::send`] polls it while
//! waiting for the response head, and the response body polls it while it
//! is streamed ([`NodeConn::drive`]). A connection is in one request's hands
//! or idle in its node's list ([`IdleConns`]), never both.
//!
//! An idle connection is polled by no one, so a node closing it is noticed
//! when it is taken: [`IdleConns::take`] polls it once, without a waker,
//! which reads the pending end of stream (or finishes the previous exchange)
//! and tells whether it can carry a request right now.

use std::{
    future::poll_fn,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use http::{Request, Response};
use hyper::{
    body::Incoming,
    client::conn::{
        TrySendError,
        http1::{Connection, SendRequest},
    },
};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;

/// Idle connections kept per node.
const MAX_IDLE_PER_NODE: usize = 64;
/// An idle connection older than this is closed rather than reused.
const IDLE_FOR: Duration = Duration::from_secs(30);

/// One HTTP/1.1 connection to a node: hyper's sender and its state machine,
/// which is polled only by whoever holds the connection.
pub(crate) struct NodeConn {
    sender: SendRequest<Incoming>,
    /// None once the connection ended (then dropped, which fails any
    /// request still queued on it with the request given back). Boxed: the
    /// state machine is large, and a `NodeConn` moves in and out of the
    /// idle list and into a response body on every request.
    conn: Option<Box<Connection<TokioIo<TcpStream>, Incoming>>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for NodeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConn")
            .field("addr", &self.addr)
            .field("open", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeConn {
    /// A connection fresh from hyper's handshake to `addr`.
    pub fn new(
        sender: SendRequest<Incoming>,
        conn: Connection<TokioIo<TcpStream>, Incoming>,
        addr: SocketAddr,
    ) -> Self {
        Self {
            sender,
            conn: Some(Box::new(conn)),
            addr,
        }
    }

    /// Moves the connection's state machine on: reads and writes what the
    /// socket allows, hands response heads and body chunks to their
    /// receivers. Registers `cx` for the socket's readiness.
    pub fn drive(&mut self, cx: &mut Context<'_>) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        if let Poll::Ready(result) = Pin::new(&mut **conn).poll(cx) {
            if let Err(error) = result {
                tracing::debug!(addr = %self.addr, %error, "Backend connection ended with an error");
            }
            self.conn = None;
        }
    }

    /// Whether the connection ended.
    pub fn is_closed(&self) -> bool {
        self.conn.is_none() || self.sender.is_closed()
    }

    /// Whether a request can be sent on it right now, after moving it on
    /// once without a waker (nobody polls an idle connection).
    fn usable_now(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.drive(&mut cx);
        !self.is_closed() && self.sender.is_ready()
    }

    /// Sends `req` and drives the connection until its response head
    /// arrives. A request the connection never started to write comes back
    /// in the error, untouched.
    pub async fn send(
        &mut self,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Incoming>>> {
        let response = self.sender.try_send_request(req);
        let mut response = std::pin::pin!(response);
        poll_fn(|cx| {
            // The state machine first: it writes the request and reads the
            // head the response future is waiting for. Should it end, it is
            // dropped and the response future resolves with the error.
            self.drive(cx);
            response.as_mut().poll(cx)
        })
        .await
    }
}

/// Idle keep-alive connections to one node, most recently used last.
#[derive(Debug, Default)]
pub(crate) struct IdleConns {
    conns: Mutex<Vec<(NodeConn, Instant)>>,
}

impl IdleConns {
    /// The most recently used connection that can carry a request now and
    /// is young enough; the others met on the way are closed.
    pub fn take(&self) -> Option<NodeConn> {
        loop {
            let (mut conn, since) = self.conns.lock().pop()?;
            // Outside the lock: moving a connection on may read its socket.
            if since.elapsed() < IDLE_FOR && conn.usable_now() {
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for the next request, unless it is closed or the list
    /// is full; connections idle for too long are closed.
    pub fn put(&self, conn: NodeConn) {
        if conn.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut conns = self.conns.lock();
        let stale = conns
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) >= IDLE_FOR)
            .count();
        let closed: Vec<_> = conns.drain(..stale).collect();
        if conns.len() < MAX_IDLE_PER_NODE {
            conns.push((conn, now));
        }
        drop(conns);
        // Closed outside the lock.
        drop(closed);
    }

    /// Connections kept right now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.conns.lock().len()
    }
}
