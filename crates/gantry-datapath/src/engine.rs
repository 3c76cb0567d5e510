//! The engine: applies a set of objects to running listeners.
//!
//! `apply` plans (see `plan`), brings health checks in line, builds each
//! listener's configuration, then reconciles sockets: a listener whose key
//! and kind survive keeps its socket and connections and gets the new
//! configuration by an atomic swap; a listener no longer wanted stops
//! accepting at once and drains; a new one is bound. Calls are serialised,
//! so a reload never races another.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    backend::BackendSet,
    config::{ObjectConfig, Readiness},
    error::DatapathError,
    health::HealthRegistry,
    l4::{
        tcp::{self, TcpConfig},
        udp::{self, UdpConfig},
    },
    l7::{
        build::build_l7,
        forward::Forwarder,
        server::{self, HttpShared, L7Config},
    },
    listener::{ListenerEnv, Running, bind_tcp, bind_udp},
    metrics::{self, Metrics},
    options::{BindPolicy, DatapathOptions},
    plan::{self, ListenerKey, ListenerPlan, ObjectPlan, Site, TargetKey, Transport},
};

/// What kind of server runs on a socket; a change of kind means a new socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
    Http,
    Https,
}

enum Built {
    Tcp(TcpConfig),
    Udp(UdpConfig),
    L7 { tls: bool, config: L7Config },
}

impl Built {
    fn kind(&self) -> Kind {
        match self {
            Self::Tcp(_) => Kind::Tcp,
            Self::Udp(_) => Kind::Udp,
            Self::L7 { tls: false, .. } => Kind::Http,
            Self::L7 { tls: true, .. } => Kind::Https,
        }
    }
}

enum Shared {
    Tcp(Arc<ArcSwap<TcpConfig>>),
    Udp(Arc<ArcSwap<UdpConfig>>),
    L7(Arc<ArcSwap<L7Config>>),
}

struct Listener {
    kind: Kind,
    shared: Shared,
    running: Running,
}

impl Listener {
    /// Swaps in `built`; false when it is of another kind.
    fn swap(&self, built: Built) -> bool {
        match (&self.shared, built) {
            (Shared::Tcp(s), Built::Tcp(c)) => s.store(Arc::new(c)),
            (Shared::Udp(s), Built::Udp(c)) => s.store(Arc::new(c)),
            (Shared::L7(s), Built::L7 { config, .. }) => s.store(Arc::new(config)),
            _ => return false,
        }
        true
    }
}

struct ObjectState {
    plan: ObjectPlan,
    /// Backend sets whose health decides readiness, by label.
    backends: BTreeMap<String, Arc<BackendSet>>,
}

#[derive(Default)]
struct State {
    listeners: BTreeMap<ListenerKey, Listener>,
    errors: BTreeMap<ListenerKey, String>,
    objects: BTreeMap<String, ObjectState>,
}

impl Drop for State {
    fn drop(&mut self) {
        for l in self.listeners.values() {
            l.running.stop.cancel();
            l.running.env.closing.cancel();
        }
    }
}

/// Owns the listeners of one datapath instance; see the module docs.
pub struct Engine {
    bind: BindPolicy,
    drain_timeout: Duration,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
    health: HealthRegistry,
    http: Arc<HttpShared>,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

impl Engine {
    /// An engine serving nothing yet.
    pub fn new(opts: &DatapathOptions) -> Self {
        let metrics = Arc::new(Metrics::new());
        Self {
            bind: opts.bind.clone(),
            drain_timeout: opts.drain_timeout,
            idle_timeout: opts.idle_timeout,
            health: HealthRegistry::new(opts.health_interval, metrics.clone()),
            http: Arc::new(HttpShared {
                header_read_timeout: opts.header_read_timeout,
                max_header_bytes: opts.max_header_bytes,
                max_headers: opts.max_headers,
                forwarder: Forwarder::new(),
                metrics: metrics.clone(),
            }),
            metrics,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            state: Mutex::new(State::default()),
        }
    }

    /// Makes the listeners serve exactly `configs` and returns the readiness
    /// of every object this instance serves (objects without an address it
    /// binds are left out).
    pub async fn apply(&self, configs: Vec<ObjectConfig>) -> BTreeMap<String, Readiness> {
        let mut state = self.state.lock().await;
        let mut plan = plan::plan(&configs, &self.bind);
        let targets = self.health.sync(&wanted_targets(&plan)).await;
        let set_of = |keys: Vec<TargetKey>| {
            Arc::new(BackendSet::new(
                keys.iter()
                    .filter_map(|k| targets.get(k).cloned())
                    .collect(),
            ))
        };

        let mut backends: BTreeMap<String, BTreeMap<String, Arc<BackendSet>>> = BTreeMap::new();
        let mut l7_sets: BTreeMap<(String, String), Option<Arc<BackendSet>>> = BTreeMap::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut built: BTreeMap<ListenerKey, Built> = BTreeMap::new();
        let mut errors: BTreeMap<ListenerKey, String> = BTreeMap::new();
        for (key, lp) in &plan.listeners {
            match lp {
                ListenerPlan::L4 {
                    owner,
                    listener,
                    nodes,
                    ranges,
                } => {
                    let udp = key.transport == Transport::Udp;
                    let set = set_of(plan::targets(
                        nodes,
                        listener.node_port,
                        &listener.health_check,
                        udp,
                    ));
                    backends
                        .entry(owner.clone())
                        .or_default()
                        .insert(key.to_string(), set.clone());
                    let b = if udp {
                        Built::Udp(UdpConfig {
                            backends: set,
                            ranges: ranges.clone(),
                        })
                    } else {
                        Built::Tcp(TcpConfig {
                            backends: set,
                            proxy_protocol: listener.proxy_protocol,
                            ranges: ranges.clone(),
                        })
                    };
                    built.insert(*key, b);
                }
                ListenerPlan::L7 { tls, sites } => {
                    let mut backend = |site: &Site, name: &str| {
                        l7_sets
                            .entry((site.owner.clone(), name.to_owned()))
                            .or_insert_with(|| {
                                site.l7.backends.get(name).map(|b| {
                                    set_of(plan::targets(
                                        &site.nodes,
                                        b.node_port,
                                        &b.health_check,
                                        false,
                                    ))
                                })
                            })
                            .clone()
                    };
                    let built_l7 = build_l7(sites, *tls, &mut backend, &self.provider);
                    problems.extend(built_l7.problems);
                    let config = match built_l7.config {
                        Ok(c) => c,
                        Err(e) => {
                            errors.insert(*key, format!("{key}: TLS setup failed: {e}"));
                            continue;
                        }
                    };
                    built.insert(*key, Built::L7 { tls: *tls, config });
                }
            }
        }
        for ((owner, name), set) in l7_sets {
            if let Some(set) = set {
                backends.entry(owner).or_default().insert(name, set);
            }
        }
        for (owner, problem) in problems {
            if let Some(obj) = plan.objects.get_mut(&owner) {
                obj.problems.push(problem);
            }
        }

        state.errors = errors;
        self.reconcile(&mut state, built).await;
        state.objects = plan
            .objects
            .into_iter()
            .map(|(name, plan)| {
                let backends = backends.remove(&name).unwrap_or_default();
                (name, ObjectState { plan, backends })
            })
            .collect();
        readiness(&state)
    }

    async fn reconcile(&self, state: &mut State, mut built: BTreeMap<ListenerKey, Built>) {
        let keys: Vec<ListenerKey> = state.listeners.keys().copied().collect();
        for key in keys {
            let keep = matches!(
                (state.listeners.get(&key), built.get(&key)),
                (Some(l), Some(b)) if l.kind == b.kind()
            );
            if !keep && let Some(l) = state.listeners.remove(&key) {
                tracing::info!(frontend = %key, "Removing listener");
                l.running
                    .retire(self.drain_timeout, self.metrics.clone())
                    .await;
            }
        }
        for (key, b) in std::mem::take(&mut built) {
            if let Some(l) = state.listeners.get(&key) {
                l.swap(b);
                continue;
            }
            match self.start(key, b).await {
                Ok(l) => {
                    tracing::info!(frontend = %key, "Listening");
                    state.errors.remove(&key);
                    state.listeners.insert(key, l);
                }
                Err(e) => {
                    tracing::warn!(frontend = %key, error = %e, "Cannot listen");
                    state.errors.insert(key, e.to_string());
                }
            }
        }
    }

    async fn start(
        &self,
        key: ListenerKey,
        built: Built,
    ) -> Result<Listener, crate::error::ListenerError> {
        let env = ListenerEnv::new(&key, &self.metrics, self.idle_timeout);
        let stop = CancellationToken::new();
        let kind = built.kind();
        let (shared, task) = match built {
            Built::Tcp(c) => {
                let socket = bind_tcp(key.addr)?;
                let s = Arc::new(ArcSwap::from_pointee(c));
                let task = tokio::spawn(tcp::accept_loop(
                    socket,
                    s.clone(),
                    env.clone(),
                    stop.clone(),
                ));
                (Shared::Tcp(s), task)
            }
            Built::Udp(c) => {
                let socket = bind_udp(key.addr).await?;
                let s = Arc::new(ArcSwap::from_pointee(c));
                let task = tokio::spawn(udp::accept_loop(
                    socket,
                    s.clone(),
                    env.clone(),
                    stop.clone(),
                ));
                (Shared::Udp(s), task)
            }
            Built::L7 { config, .. } => {
                let socket = bind_tcp(key.addr)?;
                let s = Arc::new(ArcSwap::from_pointee(config));
                let task = tokio::spawn(server::accept_loop(
                    socket,
                    s.clone(),
                    env.clone(),
                    self.http.clone(),
                    stop.clone(),
                ));
                (Shared::L7(s), task)
            }
        };
        Ok(Listener {
            kind,
            shared,
            running: Running::new(env, stop, task),
        })
    }

    /// Readiness of every object served, with current health.
    pub async fn readiness(&self) -> BTreeMap<String, Readiness> {
        readiness(&*self.state.lock().await)
    }

    /// Changes whenever a node's health flips.
    pub fn health_changes(&self) -> watch::Receiver<u64> {
        self.health.subscribe()
    }

    /// The metrics in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.metrics.render()
    }

    /// Serves `/metrics` on `addr` until the returned task is aborted.
    pub async fn serve_metrics(
        &self,
        addr: SocketAddr,
    ) -> Result<tokio::task::JoinHandle<()>, DatapathError> {
        metrics::serve(addr, self.metrics.clone()).await
    }

    /// Addresses the listeners are bound to, for diagnostics and tests.
    pub async fn listening(&self) -> Vec<String> {
        self.state
            .lock()
            .await
            .listeners
            .keys()
            .map(ToString::to_string)
            .collect()
    }

    /// Stops every listener and waits up to the drain timeout for their
    /// connections.
    pub async fn shutdown(&self) {
        let mut state = self.state.lock().await;
        let listeners = std::mem::take(&mut state.listeners);
        let mut trackers = Vec::new();
        for (_, l) in listeners {
            trackers.push(l.running.env.clone());
            l.running
                .retire(self.drain_timeout, self.metrics.clone())
                .await;
        }
        for env in trackers {
            env.tracker.wait().await;
        }
        state.objects.clear();
    }
}

fn wanted_targets(plan: &plan::Plan) -> BTreeSet<TargetKey> {
    let mut wanted = BTreeSet::new();
    for (key, lp) in &plan.listeners {
        match lp {
            ListenerPlan::L4 {
                listener, nodes, ..
            } => {
                let udp = key.transport == Transport::Udp;
                wanted.extend(plan::targets(
                    nodes,
                    listener.node_port,
                    &listener.health_check,
                    udp,
                ));
            }
            ListenerPlan::L7 { sites, .. } => {
                for site in sites {
                    for b in site.l7.backends.values() {
                        wanted.extend(plan::targets(
                            &site.nodes,
                            b.node_port,
                            &b.health_check,
                            false,
                        ));
                    }
                }
            }
        }
    }
    wanted
}

fn readiness(state: &State) -> BTreeMap<String, Readiness> {
    state
        .objects
        .iter()
        .map(|(name, obj)| {
            let mut msgs: Vec<String> = Vec::new();
            let mut push = |m: String| {
                if !msgs.contains(&m) {
                    msgs.push(m);
                }
            };
            obj.plan.problems.iter().cloned().for_each(&mut push);
            for key in &obj.plan.keys {
                if let Some(e) = state.errors.get(key) {
                    push(e.clone());
                }
            }
            for (label, set) in &obj.backends {
                if set.is_empty() {
                    push(format!("no nodes for {label}"));
                } else if set.healthy_count() == 0 {
                    push(format!("no healthy backend for {label}"));
                }
            }
            let ready = msgs.is_empty();
            let message = (!ready).then(|| msgs.join("; "));
            (
                name.clone(),
                Readiness {
                    generation: obj.plan.generation,
                    ready,
                    message,
                },
            )
        })
        .collect()
}
