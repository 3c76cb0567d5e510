//! A client that logs every request the controller makes (method and path
//! with query) before passing it on, so tests can assert what was never read.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use kube::client::{Body, Client};
use parking_lot::Mutex;

/// Requests seen, as `"GET /api/v1/namespaces/default/secrets/x"`.
#[derive(Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    /// Every request so far.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().clone()
    }

    /// Requests whose path contains `needle`.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|r| r.contains(needle))
            .collect()
    }
}

#[derive(Clone)]
struct Recording {
    inner: Client,
    log: RequestLog,
}

impl tower::Service<Request<Body>> for Recording {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let line = format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
        );
        self.log.0.lock().push(line);
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(req).await })
    }
}

/// `inner`, logging into the returned log.
pub fn recording(inner: Client) -> (Client, RequestLog) {
    let log = RequestLog::default();
    let svc = Recording {
        inner,
        log: log.clone(),
    };
    (Client::new(svc, "default"), log)
}
