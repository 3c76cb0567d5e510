//! The shared context every reconcile receives, and the controller's settings.

use std::{sync::Arc, time::Duration};

use kube::{
    Client,
    runtime::events::{Recorder, Reporter},
};

use crate::{
    backoff::{BackoffConfig, Backoffs},
    memory::Memory,
    metrics::Metrics,
    providers::ProviderRegistry,
    secrets::SecretWatches,
    watch::Stores,
};

/// The finalizer Gantry puts on every object it built a balancer for.
pub const FINALIZER: &str = "gantry.dev/load-balancer";

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Identifies this cluster in ownership tags.
    pub cluster_id: String,
    /// Class for Services without `spec.loadBalancerClass`.
    pub default_class: Option<String>,
    /// Field manager for server-side apply and patches.
    pub field_manager: String,
    /// How often a confirmed balancer is checked for drift with `plan`.
    pub resync: Duration,
    /// Requeue after a permanent error (object changes retrigger sooner).
    pub error_requeue: Duration,
    /// Requeue while a balancer provisions or a migration waits.
    pub pending_requeue: Duration,
    /// How often orphaned balancers are collected.
    pub gc_interval: Duration,
    /// Limit for every provider call.
    pub provider_timeout: Duration,
    /// Retry delays for transient errors.
    pub backoff: BackoffConfig,
    /// `None` disables leader election (single replica, tests).
    pub leader: Option<crate::leader::LeaderConfig>,
    /// Most reconciles of one kind running at once. Bounded so that a burst
    /// (a node joining re-triggers every balancer) neither opens hundreds of
    /// API connections nor queues provider calls past their deadlines.
    pub concurrency: u16,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            cluster_id: "gantry".into(),
            default_class: None,
            field_manager: "gantry".into(),
            resync: Duration::from_secs(600),
            error_requeue: Duration::from_secs(600),
            pending_requeue: Duration::from_secs(5),
            gc_interval: Duration::from_secs(300),
            provider_timeout: Duration::from_secs(60),
            backoff: BackoffConfig::default(),
            leader: None,
            concurrency: 16,
        }
    }
}

/// Everything a reconcile needs.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Settings.
    pub config: ControllerConfig,
    /// Provider instances per class.
    pub providers: ProviderRegistry,
    /// Read caches.
    pub stores: Stores,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-object retry delays.
    pub backoff: Backoffs,
    /// Ensure cache, placements, published Events.
    pub memory: Memory,
    /// Re-queues objects whose rejection may have been lifted elsewhere.
    pub retrigger: Retrigger,
    /// The Secrets Ingresses reference, read on demand and watched by name.
    pub secrets: Arc<SecretWatches>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Assemble a context.
    pub fn new(
        client: Client,
        config: ControllerConfig,
        providers: ProviderRegistry,
        stores: Stores,
        metrics: Arc<Metrics>,
        secrets: Arc<SecretWatches>,
        retrigger: Retrigger,
    ) -> Self {
        let reporter = Reporter {
            controller: "gantry".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            backoff: Backoffs::new(config.backoff),
            client,
            config,
            providers,
            stores,
            metrics,
            memory: Memory::default(),
            secrets,
            retrigger,
        }
    }

    /// Publish the per-class balancer counts.
    pub fn update_gauges(&self) {
        let counts = self.memory.placement_counts();
        let mut classes = crate::watch::class_names(&self.stores);
        classes.extend(counts.keys().cloned());
        for class in classes {
            let n = counts.get(&class).copied().unwrap_or(0);
            self.metrics
                .load_balancers
                .get_or_create(&crate::metrics::ClassLabels { class })
                .set(n);
        }
    }
}

/// Senders that queue reconciles of objects the current one does not own,
/// e.g. Services that waited for an address freed by a deletion.
#[derive(Clone, Debug)]
pub struct Retrigger {
    /// Service reconciles.
    pub services: futures::channel::mpsc::UnboundedSender<
        kube::runtime::reflector::ObjectRef<k8s_openapi::api::core::v1::Service>,
    >,
    /// Ingress reconciles.
    pub ingresses: futures::channel::mpsc::UnboundedSender<
        kube::runtime::reflector::ObjectRef<k8s_openapi::api::networking::v1::Ingress>,
    >,
}

impl Retrigger {
    /// Queue the objects with these UIDs (those still in the caches).
    pub fn uids(&self, stores: &crate::watch::Stores, uids: &[String]) {
        if uids.is_empty() {
            return;
        }
        let wanted = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            meta.uid.as_ref().is_some_and(|u| uids.contains(u))
        };
        for svc in stores.services.state() {
            if wanted(&svc.metadata) {
                // A closed channel means the controllers are shutting down.
                let _ = self
                    .services
                    .unbounded_send(kube::runtime::reflector::ObjectRef::from_obj(&*svc));
            }
        }
        for ing in stores.ingresses.state() {
            if wanted(&ing.metadata) {
                let _ = self
                    .ingresses
                    .unbounded_send(kube::runtime::reflector::ObjectRef::from_obj(&*ing));
            }
        }
    }
}
