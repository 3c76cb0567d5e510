//! Health check node ports for `externalTrafficPolicy: Local` Services,
//! answering like kube-proxy: 200 with the local endpoint count when this
//! node has a ready local endpoint, 503 otherwise. Load balancers use this
//! to send traffic only to nodes that can serve it locally.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::{net::TcpListener, task::JoinSet};

use super::Ctx;

/// Serves health checks until aborted.
pub async fn serve(listener: TcpListener, port: u16, ctx: Ctx) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let ctx = ctx.clone();
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |_req| {
                            let resp = respond(&ctx, port);
                            async move { Ok::<_, Infallible>(resp) }
                        });
                        if let Err(error) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(%error, "Health check connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, port, "Health check accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// The answer for any path, as kube-proxy gives one.
fn respond(ctx: &Ctx, port: u16) -> Response<Full<Bytes>> {
    let table = ctx.table.borrow().clone();
    let (body, status) = match table.health.get(&port) {
        Some(route) => {
            let local = route.local_endpoints(&ctx.node);
            let body = json!({
                "service": {"namespace": route.service.0, "name": route.service.1},
                "localEndpoints": local,
                "serviceProxyHealthy": true,
            });
            let status = if local > 0 {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (body, status)
        }
        None => (
            json!({"localEndpoints": 0}),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    resp
}
