//! The load: Services of type LoadBalancer created at a steady rate, and a
//! watch that records when each first shows an address in its status.
//!
//! Time-to-IP of a Service runs from the instant its POST was sent (taken
//! just before the request, nothing subtracted) to the instant the driver's
//! watch delivered the first version of it with a non-empty
//! `status.loadBalancer.ingress`. It so includes the emulator's work on
//! both writes and the watch delivery to the driver, not only the
//! controller's.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::{
    Api, Client, ResourceExt,
    api::PostParams,
    runtime::watcher::{self, Event},
};
use parking_lot::Mutex;
use serde_json::json;
use tokio::{sync::Notify, time::MissedTickBehavior};

use crate::{
    cluster::NAMESPACE,
    error::{BenchError, Result},
};

/// Name of Service `i`.
pub fn service_name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn service(i: usize) -> Result<Service> {
    let name = service_name(i);
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": {
            "type": "LoadBalancer",
            "selector": { "app": name },
            "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }],
        },
    }))
    .map_err(|e| BenchError::Protocol(e.to_string()))
}

fn has_address(svc: &Service) -> bool {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

/// What the load phase measured.
#[derive(Debug)]
pub struct LoadOutcome {
    /// Time-to-IP per Service, in milliseconds, sorted.
    pub latencies_ms: Vec<f64>,
    /// From the first POST sent to the last address seen.
    pub all_ready: Duration,
    /// From the first POST sent to the last POST sent.
    pub creation_span: Duration,
}

/// Watches Services and remembers when each first had an address.
struct AddressWatch {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl AddressWatch {
    /// Start, and return once the initial list is done.
    async fn start(client: &Client) -> Result<Self> {
        let api: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
        let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (synced_tx, synced_rx) = tokio::sync::oneshot::channel::<()>();
        let mut synced_tx = Some(synced_tx);
        let task = {
            let seen = Arc::clone(&seen);
            let changed = Arc::clone(&changed);
            tokio::spawn(async move {
                let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
                while let Some(event) = stream.next().await {
                    let now = Instant::now();
                    match event {
                        Ok(Event::Apply(svc) | Event::InitApply(svc)) if has_address(&svc) => {
                            seen.lock().entry(svc.name_any()).or_insert(now);
                            changed.notify_one();
                        }
                        Ok(Event::InitDone) => {
                            if let Some(tx) = synced_tx.take() {
                                let _ = tx.send(());
                            }
                        }
                        Ok(_) => {}
                        Err(error) => eprintln!("service watch: {error}; retrying"),
                    }
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(30), synced_rx)
            .await
            .map_err(|_| BenchError::Timeout {
                phase: "service watch start",
                waited: Duration::from_secs(30),
                detail: "no initial list".into(),
            })?
            .map_err(|_| BenchError::Protocol("the service watch stopped".into()))?;
        Ok(Self {
            seen,
            changed,
            task,
        })
    }

    fn count(&self) -> usize {
        self.seen.lock().len()
    }
}

/// Create `n` Services at `rate` per second and wait (up to `limit` after
/// the first creation) until each has an address.
pub async fn run(client: &Client, n: usize, rate: f64, limit: Duration) -> Result<LoadOutcome> {
    let watch = AddressWatch::start(client).await?;
    let api: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut posts = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        tick.tick().await;
        let obj = service(i)?;
        let api = api.clone();
        let sent = Arc::clone(&sent);
        posts.push(tokio::spawn(async move {
            sent.lock().insert(service_name(i), Instant::now());
            api.create(&PostParams::default(), &obj).await.map(|_| ())
        }));
        if i > 0 && i % 250 == 0 {
            println!(
                "  created {i}/{n}, {} with an address",
                watch.count().min(n)
            );
        }
    }
    for (i, post) in posts.into_iter().enumerate() {
        match post.await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(BenchError::Kube {
                    step: format!("creating Service {}", service_name(i)),
                    source,
                });
            }
            Err(e) => return Err(BenchError::Protocol(format!("create task: {e}"))),
        }
    }
    let deadline = started + limit;
    let mut last_report = Instant::now();
    while watch.count() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let missing = n - watch.count();
            watch.task.abort();
            return Err(BenchError::Timeout {
                phase: "time-to-IP",
                waited: limit,
                detail: format!("{missing} of {n} Services never showed an address"),
            });
        }
        let _ =
            tokio::time::timeout(left.min(Duration::from_secs(1)), watch.changed.notified()).await;
        if last_report.elapsed() > Duration::from_secs(10) {
            println!("  {}/{n} Services have an address", watch.count());
            last_report = Instant::now();
        }
    }
    watch.task.abort();
    let seen = watch.seen.lock().clone();
    let sent = sent.lock().clone();
    let mut latencies_ms = Vec::with_capacity(n);
    let mut first_sent = None::<Instant>;
    let mut last_sent = None::<Instant>;
    let mut last_seen = None::<Instant>;
    for (name, at) in &sent {
        first_sent = Some(first_sent.map_or(*at, |f| f.min(*at)));
        last_sent = Some(last_sent.map_or(*at, |f| f.max(*at)));
        let Some(shown) = seen.get(name) else {
            return Err(BenchError::Protocol(format!("no address seen for {name}")));
        };
        last_seen = Some(last_seen.map_or(*shown, |f| f.max(*shown)));
        latencies_ms.push(shown.saturating_duration_since(*at).as_secs_f64() * 1000.0);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let (Some(first_sent), Some(last_sent), Some(last_seen)) = (first_sent, last_sent, last_seen)
    else {
        return Err(BenchError::Protocol("no Service was created".into()));
    };
    Ok(LoadOutcome {
        latencies_ms,
        all_ready: last_seen.saturating_duration_since(first_sent),
        creation_span: last_sent.saturating_duration_since(first_sent),
    })
}
