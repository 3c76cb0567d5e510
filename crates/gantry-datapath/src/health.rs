//! Active health checks: one task per checked node port, shared by every
//! frontend that uses it.
//!
//! A TCP check connects; an HTTP check sends `GET path` over a fresh
//! connection with hyper's client and wants a 2xx. Each runs every
//! `health_interval` with a timeout of the same length (at most 3 s). Two
//! consecutive failures make a node unhealthy, one success brings it back
//! (see `backend`). A new node's first check runs before `apply` returns, so
//! the readiness it reports is measured, not assumed.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::{net::TcpStream, sync::watch, task::JoinHandle};

use crate::{
    backend::Target,
    metrics::{BackendLabels, Metrics},
    plan::{Probe, TargetKey},
};

/// Longest a single check may take.
const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

struct Checked {
    target: Arc<Target>,
    task: JoinHandle<()>,
}

/// Checked node ports by key.
pub(crate) struct HealthRegistry {
    interval: Duration,
    metrics: Arc<Metrics>,
    /// Bumped whenever a node's health flips, so status can be re-reported.
    changes: watch::Sender<u64>,
    checked: Mutex<BTreeMap<TargetKey, Checked>>,
}

impl HealthRegistry {
    /// An empty registry checking every `interval`.
    pub fn new(interval: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            interval,
            metrics,
            changes: watch::channel(0).0,
            checked: Mutex::new(BTreeMap::new()),
        }
    }

    /// Notified when a node's health flips.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Makes the checked set exactly `wanted`: new node ports get their first
    /// check now and a periodic task; dropped ones stop being checked.
    pub async fn sync(&self, wanted: &BTreeSet<TargetKey>) -> BTreeMap<TargetKey, Arc<Target>> {
        let new: Vec<TargetKey> = {
            let mut checked = self.checked.lock();
            checked.retain(|key, c| {
                let keep = wanted.contains(key);
                if !keep {
                    c.task.abort();
                    self.metrics.backend_healthy.remove(&labels(key));
                }
                keep
            });
            wanted
                .iter()
                .filter(|k| !checked.contains_key(*k))
                .cloned()
                .collect()
        };
        let timeout = self.interval.min(MAX_CHECK_TIMEOUT);
        let first = futures::future::join_all(new.iter().map(|k| check(k, timeout))).await;
        let mut checked = self.checked.lock();
        for (key, ok) in new.into_iter().zip(first) {
            let target = Arc::new(Target::new(key.node.clone(), key.addr));
            target.record_initial(ok);
            self.metrics
                .backend_healthy
                .get_or_create(&labels(&key))
                .set(i64::from(ok));
            let task = tokio::spawn(run_checks(
                key.clone(),
                target.clone(),
                self.interval,
                self.metrics.clone(),
                self.changes.clone(),
            ));
            checked.insert(key, Checked { target, task });
        }
        checked
            .iter()
            .map(|(k, c)| (k.clone(), c.target.clone()))
            .collect()
    }
}

impl Drop for HealthRegistry {
    fn drop(&mut self) {
        for c in self.checked.get_mut().values() {
            c.task.abort();
        }
    }
}

fn labels(key: &TargetKey) -> BackendLabels {
    BackendLabels {
        node: key.node.clone(),
        target: key.addr.to_string(),
    }
}

async fn run_checks(
    key: TargetKey,
    target: Arc<Target>,
    interval: Duration,
    metrics: Arc<Metrics>,
    changes: watch::Sender<u64>,
) {
    if key.probe == Probe::None {
        return;
    }
    let timeout = interval.min(MAX_CHECK_TIMEOUT);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once; the first check already ran in `sync`.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let ok = check(&key, timeout).await;
        if target.record_check(ok) {
            let healthy = target.healthy();
            tracing::info!(node = %key.node, addr = %key.addr, healthy, "Backend health changed");
            metrics
                .backend_healthy
                .get_or_create(&labels(&key))
                .set(i64::from(healthy));
            changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// One check of `key`, bounded by `timeout`.
pub(crate) async fn check(key: &TargetKey, timeout: Duration) -> bool {
    let probe = async {
        match &key.probe {
            Probe::None => true,
            Probe::Tcp => TcpStream::connect(key.addr).await.is_ok(),
            Probe::Http { port, path } => {
                http_check(SocketAddr::new(key.addr.ip(), *port), path).await
            }
        }
    };
    tokio::time::timeout(timeout, probe).await.unwrap_or(false)
}

async fn http_check(addr: SocketAddr, path: &str) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
    else {
        return false;
    };
    let driver = tokio::spawn(conn);
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let req = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "gantry-datapath-health")
        .body(Empty::new());
    let ok = match req {
        Ok(req) => sender
            .send_request(req)
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    };
    driver.abort();
    ok
}
