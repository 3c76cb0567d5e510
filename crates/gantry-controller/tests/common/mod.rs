//! Test harness: a kube-sim API server, recording providers per class, and
//! the controller running in-process against them.

#![allow(dead_code, missing_docs)]

pub mod recording;

use std::{collections::BTreeMap, future::Future, net::Ipv4Addr, sync::Arc, time::Duration};

use gantry_controller::{
    ControllerConfig, FINALIZER, GantryController, StaticFactory, backoff::BackoffConfig,
    metrics::Metrics,
};
use gantry_model::{LoadBalancer, LoadBalancerClass, ProviderKind, fixtures};
use gantry_testkit::RecordingProvider;
use k8s_openapi::{
    api::{
        core::v1::{Node, Service},
        events::v1::Event,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResourceExt, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use kube_sim::{KubeSim, SimOptions};
use serde_json::json;
use tokio::{sync::oneshot, task::JoinHandle};

pub const NS: &str = "default";
pub const CLUSTER: &str = "test-cluster";
pub const WAIT: Duration = Duration::from_secs(15);

/// Poll `f` every 50ms until it returns `Some`, or panic after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Running {
    pub metrics: Arc<Metrics>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), gantry_controller::Error>>,
}

pub struct Harness {
    pub sim: KubeSim,
    pub client: Client,
    pub providers: BTreeMap<String, Arc<RecordingProvider>>,
    pub config: ControllerConfig,
    pub running: Option<Running>,
    /// Serve /metrics, /healthz and /readyz here when set.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub health: Option<Arc<gantry_controller::server::Health>>,
    /// The controller talks through this client when set (e.g. a
    /// [`recording::recording`] one); through `client` otherwise.
    pub controller_client: Option<Client>,
}

/// Controller settings for tests: fast retries, long resync (so only the
/// test decides when a resync happens).
pub fn test_config() -> ControllerConfig {
    ControllerConfig {
        cluster_id: CLUSTER.into(),
        pending_requeue: Duration::from_millis(200),
        gc_interval: Duration::from_secs(3600),
        provider_timeout: Duration::from_secs(5),
        backoff: BackoffConfig {
            min: Duration::from_millis(100),
            max: Duration::from_millis(800),
            jitter: true,
        },
        ..ControllerConfig::default()
    }
}

impl Harness {
    /// Start kube-sim, install the CRD, create one `LoadBalancerClass` and
    /// one recording provider per `(name, address base)`. The controller is
    /// not started yet (see [`Harness::start`]).
    pub async fn new(classes: &[(&str, Ipv4Addr)]) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let sim = KubeSim::start(SimOptions::default())
            .await
            .expect("sim starts");
        let client = sim.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &LoadBalancerClass::crd())
            .await
            .expect("CRD created");
        let mut providers = BTreeMap::new();
        for (name, base) in classes {
            let provider = Arc::new(RecordingProvider::with_addresses(
                *name,
                ProviderKind::Local,
                *base,
            ));
            providers.insert((*name).to_string(), provider);
        }
        let h = Self {
            sim,
            client,
            providers,
            config: test_config(),
            running: None,
            metrics_addr: None,
            health: None,
            controller_client: None,
        };
        for (name, _) in classes {
            h.create_class(name).await;
        }
        h
    }

    pub async fn create_class(&self, name: &str) {
        let api: Api<LoadBalancerClass> = Api::all(self.client.clone());
        let class = fixtures::lb_class(name, ProviderKind::Local, &[]);
        // The CRD may take a moment to be served.
        wait_for("LoadBalancerClass create", WAIT, || {
            let api = api.clone();
            let class = class.clone();
            async move { api.create(&PostParams::default(), &class).await.ok() }
        })
        .await;
    }

    pub fn provider(&self, class: &str) -> Arc<RecordingProvider> {
        Arc::clone(&self.providers[class])
    }

    fn factory(&self) -> StaticFactory {
        let mut f = StaticFactory::new();
        for (name, p) in &self.providers {
            f = f.with(name.clone(), Arc::clone(p) as Arc<dyn LoadBalancer>);
        }
        f
    }

    /// Start the controller in-process and wait until it reconciles.
    pub async fn start(&mut self) {
        let factory = self.factory();
        self.start_with(factory).await;
    }

    /// Like [`Harness::start`] with a custom provider factory.
    pub async fn start_with(&mut self, factory: StaticFactory) {
        let client = self
            .controller_client
            .clone()
            .unwrap_or_else(|| self.client.clone());
        let mut controller = GantryController::new(client, self.config.clone(), Arc::new(factory));
        if let Some(addr) = self.metrics_addr {
            controller = controller.with_metrics_addr(addr);
        }
        let metrics = controller.metrics();
        let health = controller.health();
        self.health = Some(Arc::clone(&health));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(controller.run(async move {
            let _ = stopped.await;
        }));
        wait_for("controller running", WAIT, || {
            let h = Arc::clone(&health);
            async move { (h.phase() == gantry_controller::server::Phase::Running).then_some(()) }
        })
        .await;
        self.running = Some(Running {
            metrics,
            stop,
            task,
        });
    }

    /// Stop the controller and wait for it to exit.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop.send(());
            let result = tokio::time::timeout(WAIT, r.task)
                .await
                .expect("controller stops")
                .expect("controller task joins");
            result.expect("controller exits cleanly");
        }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.running.as_ref().expect("controller running").metrics)
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    pub async fn create_node(&self, name: &str, ip: &str) {
        let mut node = fixtures::node(name, ip).build();
        node.metadata.uid = None;
        let created = self
            .nodes()
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
        // Node conditions live in status; make sure they are there.
        if created
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_none()
        {
            let status = json!({ "status": node.status });
            self.nodes()
                .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
                .await
                .expect("node status patched");
        }
    }

    pub async fn create_nodes(&self, n: usize) {
        for i in 1..=n {
            self.create_node(&format!("node-{i}"), &format!("10.0.0.{i}"))
                .await;
        }
    }

    /// Create a LoadBalancer Service with one TCP port, in `class`
    /// (`spec.loadBalancerClass: gantry.dev/<class>`, or a raw value when it
    /// contains a slash already).
    pub async fn create_service(&self, name: &str, class: &str) -> Service {
        self.create_service_with(name, class, |_| {}).await
    }

    pub async fn create_service_with(
        &self,
        name: &str,
        class: &str,
        f: impl FnOnce(&mut Service),
    ) -> Service {
        let class = if class.contains('/') {
            class.to_string()
        } else {
            format!("gantry.dev/{class}")
        };
        let mut svc = fixtures::service(name).class(&class).tcp(80, 0).build();
        svc.metadata.uid = None;
        f(&mut svc);
        self.services()
            .create(&PostParams::default(), &svc)
            .await
            .expect("service created")
    }

    pub async fn get_service(&self, name: &str) -> Option<Service> {
        self.services().get_opt(name).await.expect("get service")
    }

    pub async fn delete_service(&self, name: &str) {
        self.services()
            .delete(name, &DeleteParams::default())
            .await
            .expect("service delete accepted");
    }

    /// Wait until Service `name` shows an IP in status; returns it.
    pub async fn wait_for_ip(&self, name: &str) -> String {
        wait_for(&format!("status IP of {name}"), WAIT, || async {
            let svc = self.get_service(name).await?;
            svc.status?.load_balancer?.ingress?.first()?.ip.clone()
        })
        .await
    }

    /// Wait until `name` reached a reconcile count above `after` and
    /// returns the new count.
    pub async fn wait_reconciled_after(&self, kind: &str, name: &str, after: u64) -> u64 {
        let metrics = self.metrics();
        wait_for(&format!("reconcile of {kind} {name}"), WAIT, || {
            let m = Arc::clone(&metrics);
            async move {
                let c = m.last_reconcile(kind, NS, name).count;
                (c > after).then_some(c)
            }
        })
        .await
    }

    pub async fn events_for(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    pub async fn wait_for_event(&self, name: &str, reason: &str) -> Event {
        wait_for(&format!("event {reason} on {name}"), WAIT, || async {
            self.events_for(name)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
        })
        .await
    }

    /// Make the next write of the kinds the controller makes to Services
    /// (patches of the object, patches and updates of its status) fail, so
    /// that any such write shows up as a failed reconcile. Tests change
    /// Services with `replace` (an update of the object) meanwhile.
    pub fn arm_write_tripwire(&self) {
        for (verb, resource) in [
            ("patch", "services"),
            ("patch", "services/status"),
            ("update", "services/status"),
        ] {
            self.sim.faults().fail_next(
                1,
                500,
                kube_sim::FaultMatcher {
                    verb: Some(verb),
                    resource: Some(resource),
                },
            );
        }
    }

    /// Failed reconciles caused by Service writes (finalizer or status).
    pub fn write_failures(&self) -> u64 {
        let m = self.metrics();
        ["patch_status", "add_finalizer", "remove_finalizer"]
            .iter()
            .map(|e| m.failure_count("Service", e))
            .sum()
    }

    pub fn has_finalizer(svc: &Service) -> bool {
        svc.finalizers().iter().any(|f| f == FINALIZER)
    }

    pub async fn shutdown(mut self) {
        self.stop().await;
        self.sim.shutdown().await;
    }
}

pub fn base(third: u8) -> Ipv4Addr {
    match third {
        1 => Ipv4Addr::new(192, 0, 2, 0),
        2 => Ipv4Addr::new(198, 51, 100, 0),
        _ => Ipv4Addr::new(203, 0, 113, 0),
    }
}
