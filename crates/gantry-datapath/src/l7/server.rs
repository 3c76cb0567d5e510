//! The HTTP(S) server of one L7 listener: hyper-util's auto server over
//! plain TCP or rustls, with the limits that keep slow or hostile clients
//! from holding resources.
//!
//! Deadlines, from accept:
//! - the TLS handshake and the first request head must complete within
//!   `header_read_timeout`, even when the client sends nothing at all (the
//!   auto server's protocol sniffing has no timer of its own, so the
//!   connection task enforces this one);
//! - every later HTTP/1 request head has hyper's `header_read_timeout`
//!   (driven by `TokioTimer`), which also bounds idle keep-alive;
//! - no byte in either direction for `idle_timeout` closes the connection.
//!
//! Framing is hyper's alone: oversized heads and too many headers get 431,
//! invalid framing 400. A request with both `Content-Length` and
//! `Transfer-Encoding` is read as chunked (the length is discarded), never
//! forwarded with both, and hyper closes the connection after answering it.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use prometheus_client::metrics::counter::Counter;
use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::{
    forward::{
        Forwarder, ResponseBody, add_forwarded, forwarded_for, local_response, strip_hop_by_hop,
    },
    routes::RouteTable,
};
use crate::{
    io::{MeteredIo, idle_expired},
    listener::ListenerEnv,
    metrics::{Metrics, RequestLabels, STATUS_CLASSES, status_index},
    plan::SourceRanges,
    watch::{Either, watched},
};

/// hyper's default limit on HTTP/1 request header fields.
const HYPER_MAX_HEADERS: usize = 100;

/// Most concurrent HTTP/2 streams per connection.
const MAX_CONCURRENT_STREAMS: u32 = 250;

/// What an L7 listener serves; swapped on reload.
#[derive(Debug)]
pub(crate) struct L7Config {
    /// Routes of the objects on this listener.
    pub routes: RouteTable,
    /// TLS, for HTTPS listeners.
    pub tls: Option<Arc<ServerConfig>>,
    /// Admitted at accept: the union of the objects' ranges.
    pub ranges: SourceRanges,
}

/// HTTP limits and shared machinery of all L7 listeners.
#[derive(Debug)]
pub(crate) struct HttpShared {
    /// Request head deadline.
    pub header_read_timeout: Duration,
    /// Largest request head, bytes.
    pub max_header_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
    /// Client towards nodes.
    pub forwarder: Forwarder,
    /// Request counters.
    pub metrics: Arc<Metrics>,
}

/// What every connection of one L7 listener shares; built once per
/// listener so a request clones nothing but one `Arc`.
struct ListenerCtx {
    config: Arc<ArcSwap<L7Config>>,
    env: Arc<ListenerEnv>,
    shared: Arc<HttpShared>,
    /// The listener's request counters by status class (`1xx` .. `5xx`),
    /// resolved once instead of a label lookup per request.
    requests: [Counter; 5],
    /// hyper's server settings.
    builder: auto::Builder<TokioExecutor>,
}

/// Accepts until `stop` fires.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    config: Arc<ArcSwap<L7Config>>,
    env: Arc<ListenerEnv>,
    shared: Arc<HttpShared>,
    stop: CancellationToken,
) {
    let requests = STATUS_CLASSES.map(|class| {
        shared
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                frontend: env.frontend.clone(),
                class,
            })
            .clone()
    });
    let ctx = Arc::new(ListenerCtx {
        builder: server_builder(&shared),
        config,
        env,
        shared,
        requests,
    });
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if !ctx.config.load().ranges.allows(peer.ip()) {
                    ctx.env.rejected.inc();
                    continue;
                }
                ctx.env.connections.inc();
                let _ = stream.set_nodelay(true);
                ctx.env.tracker.spawn(connection(stream, peer, ctx.clone()));
            }
            Err(error) => {
                tracing::warn!(frontend = %ctx.env.frontend, %error, "Accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// hyper's server with the datapath's limits.
fn server_builder(shared: &HttpShared) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .writev(false)
        .header_read_timeout(shared.header_read_timeout)
        .max_buf_size(shared.max_header_bytes.max(8192));
    // hyper's own limit is this one, and setting it explicitly makes every
    // request initialise a header table of that size: only set another.
    if shared.max_headers != HYPER_MAX_HEADERS {
        http1.max_headers(shared.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(shared.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

async fn connection(stream: TcpStream, peer: SocketAddr, ctx: Arc<ListenerCtx>) {
    let deadline = Instant::now() + ctx.shared.header_read_timeout;
    let activity = ctx.env.activity();
    let io = MeteredIo::new(stream, activity.clone());
    let tls = ctx.config.load().tls.clone();
    let idle = idle_expired(activity, ctx.env.idle_timeout);
    match tls {
        None => serve(io, peer, false, None, ctx, deadline, idle).await,
        Some(tls) => {
            let handshake = TlsAcceptor::from(tls).accept(io);
            let stream = tokio::select! {
                r = tokio::time::timeout_at(deadline, handshake) => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                () = ctx.env.closing.cancelled() => return,
            };
            let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            serve(stream, peer, true, alpn, ctx, deadline, idle).await;
        }
    }
}

async fn serve<I>(
    io: I,
    peer: SocketAddr,
    https: bool,
    alpn: Option<Vec<u8>>,
    ctx: Arc<ListenerCtx>,
    deadline: Instant,
    idle: impl Future<Output = ()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // With TLS, ALPN has already chosen the protocol; no need to sniff.
    let builder = match alpn.as_deref() {
        Some(b"h2") => ctx.builder.clone().http2_only(),
        Some(_) => ctx.builder.clone().http1_only(),
        None if https => ctx.builder.clone().http1_only(),
        None => ctx.builder.clone(),
    };
    let seen_request = Arc::new(AtomicBool::new(false));
    let client = Client {
        peer,
        forwarded_for: forwarded_for(peer.ip()),
        https,
    };
    let service = {
        let seen_request = seen_request.clone();
        let ctx = ctx.clone();
        service_fn(move |req: Request<Incoming>| {
            seen_request.store(true, Ordering::Release);
            let ctx = ctx.clone();
            let client = client.clone();
            async move {
                let resp = handle(req, &client, &ctx).await;
                ctx.requests[status_index(resp.status())].inc();
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::pin!(idle);
    let first_request = async {
        tokio::time::sleep_until(deadline).await;
        if seen_request.load(Ordering::Acquire) {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(first_request);
    let mut draining = false;
    loop {
        let watch = async {
            tokio::select! {
                () = &mut first_request => Stop::NoRequest,
                () = &mut idle => Stop::Idle,
                () = ctx.env.draining.cancelled(), if !draining => Stop::Drain,
                () = ctx.env.closing.cancelled() => Stop::Close,
            }
        };
        let stopped = watched(conn.as_mut(), std::pin::pin!(watch)).await;
        match stopped {
            Either::Main(r) => {
                if let Err(error) = r {
                    tracing::debug!(%peer, %error, "HTTP connection ended with an error");
                }
                return;
            }
            Either::Watch(Stop::Drain) => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            Either::Watch(Stop::NoRequest) => {
                tracing::debug!(%peer, "No request head before the deadline");
                return;
            }
            Either::Watch(Stop::Idle | Stop::Close) => return,
        }
    }
}

/// Why a connection's watchdogs stopped it.
enum Stop {
    /// No request head before the first deadline.
    NoRequest,
    /// Nothing moved for the idle timeout.
    Idle,
    /// The listener drains: finish in-flight requests, then close.
    Drain,
    /// The listener closes now.
    Close,
}

/// The client end of one connection, as requests on it need it.
#[derive(Clone, Debug)]
struct Client {
    peer: SocketAddr,
    /// `peer`'s address as an `X-Forwarded-For` element.
    forwarded_for: HeaderValue,
    https: bool,
}

async fn handle(
    mut req: Request<Incoming>,
    client: &Client,
    ctx: &ListenerCtx,
) -> Response<ResponseBody> {
    let (peer, https) = (client.peer, client.https);
    let Some((authority, host_value)) = request_authority(&req) else {
        return local_response(StatusCode::BAD_REQUEST, "missing host\n");
    };
    let backend = {
        let config = ctx.config.load();
        let host = authority.host().trim_end_matches('.');
        let Some(routed) = config.routes.route(host, req.uri().path()) else {
            return local_response(StatusCode::NOT_FOUND, "not found\n");
        };
        if !routed.site.ranges.allows(peer.ip()) {
            return local_response(StatusCode::FORBIDDEN, "forbidden\n");
        }
        if !https && routed.site.ssl_redirect {
            return redirect(&authority, &req);
        }
        let Some(backend) = routed.backend.cloned() else {
            return local_response(StatusCode::NOT_FOUND, "not found\n");
        };
        backend
    };
    let host_value = match host_value {
        Some(v) => v,
        None => match HeaderValue::from_str(authority.as_str()) {
            Ok(v) => v,
            Err(_) => return local_response(StatusCode::BAD_REQUEST, "bad host\n"),
        },
    };
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, host_value.clone());
    }
    add_forwarded(headers, &client.forwarded_for, https, host_value);
    ctx.shared.forwarder.forward(req, &backend).await
}

/// The request's authority: the URI's (HTTP/2, absolute form) or `Host`,
/// with the `Host` value when it came from there.
fn request_authority(
    req: &Request<Incoming>,
) -> Option<(http::uri::Authority, Option<HeaderValue>)> {
    if let Some(a) = req.uri().authority() {
        return Some((a.clone(), None));
    }
    let value = req.headers().get(header::HOST)?;
    let host = value.to_str().ok()?;
    // A Host with userinfo is not a host; refuse rather than reinterpret.
    if host.contains('@') {
        return None;
    }
    Some((host.parse().ok()?, Some(value.clone())))
}

fn redirect(authority: &http::uri::Authority, req: &Request<Incoming>) -> Response<ResponseBody> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{}{path}", authority.host());
    let mut resp = local_response(StatusCode::PERMANENT_REDIRECT, "redirecting to https\n");
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => local_response(StatusCode::BAD_REQUEST, "bad host\n"),
    }
}
