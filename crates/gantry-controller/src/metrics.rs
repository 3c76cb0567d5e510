//! Prometheus metrics of the controller, plus a small per-object record of
//! finished reconciles that tests (and `/readyz`-style probes) can wait on.

use std::{collections::HashMap, sync::Arc, time::Instant};

use parking_lot::{Mutex, RwLock};
/// The registry type `/metrics` encodes (re-exported so that adapters can
/// register their own metrics without naming the crate's version).
pub use prometheus_client::registry::Registry;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
};

/// Label set `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `Service` or `Ingress`.
    pub kind: String,
}

/// Label set `{kind, error}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `Service` or `Ingress`.
    pub kind: String,
    /// Bounded error category.
    pub error: String,
}

/// Label set `{provider, op, outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderCallLabels {
    /// Provider kind (`aws`, `gcp`, `local`).
    pub provider: String,
    /// Operation (`ensure`, `delete`, `plan`, `list_owned`).
    pub op: String,
    /// `ok`, `timeout` or the error category.
    pub outcome: String,
}

/// Label set `{class}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    /// `LoadBalancerClass` name.
    pub class: String,
}

/// The controller's metrics and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    /// Reconciles started, by kind.
    pub reconcile_runs: Family<KindLabels, Counter>,
    /// Reconciles that failed, by kind and error category.
    pub reconcile_failures: Family<FailureLabels, Counter>,
    /// Reconcile duration, by kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Provider calls, by provider, operation and outcome.
    pub provider_calls: Family<ProviderCallLabels, Counter>,
    /// Load balancers Gantry believes exist, by class.
    pub load_balancers: Family<ClassLabels, Gauge>,
    registry: Mutex<Registry>,
    reconciles: RwLock<HashMap<String, ReconcileRecord>>,
}

/// What the controller last did with one object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileRecord {
    /// Finished reconciles of this object since start.
    pub count: u64,
    /// `metadata.resourceVersion` the last finished reconcile started from.
    pub resource_version: Option<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics registered under the `gantry` prefix.
    pub fn new() -> Self {
        let reconcile_runs = Family::<KindLabels, Counter>::default();
        let reconcile_failures = Family::<FailureLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let provider_calls = Family::<ProviderCallLabels, Counter>::default();
        let load_balancers = Family::<ClassLabels, Gauge>::default();
        let mut registry = Registry::with_prefix("gantry");
        registry.register(
            "reconcile_runs",
            "Reconciles started",
            reconcile_runs.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error category",
            reconcile_failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles",
            reconcile_duration.clone(),
        );
        registry.register(
            "provider_calls",
            "Provider calls by operation and outcome",
            provider_calls.clone(),
        );
        registry.register(
            "load_balancers",
            "Load balancers held per class",
            load_balancers.clone(),
        );
        Self {
            reconcile_runs,
            reconcile_failures,
            reconcile_duration,
            provider_calls,
            load_balancers,
            registry: Mutex::new(registry),
            reconciles: RwLock::new(HashMap::new()),
        }
    }

    /// Let `register` add metrics kept elsewhere (an adapter's own) to the
    /// registry `/metrics` serves.
    pub fn register_external(&self, register: impl FnOnce(&mut Registry)) {
        register(&mut self.registry.lock());
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }

    /// Count a reconcile of `kind` and time it until the guard drops.
    pub fn reconcile_started(self: &Arc<Self>, kind: &str) -> ReconcileTimer {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.reconcile_runs.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: Arc::clone(self),
            labels,
            start: Instant::now(),
        }
    }

    /// Count a failed reconcile.
    pub fn reconcile_failed(&self, kind: &str, category: &str) {
        self.reconcile_failures
            .get_or_create(&FailureLabels {
                kind: kind.to_string(),
                error: category.to_string(),
            })
            .inc();
    }

    /// Reconciles of `kind` started so far.
    pub fn reconcile_count(&self, kind: &str) -> u64 {
        self.reconcile_runs
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .get()
    }

    /// Failed reconciles of `kind` with error category `error` so far.
    pub fn failure_count(&self, kind: &str, error: &str) -> u64 {
        self.reconcile_failures
            .get_or_create(&FailureLabels {
                kind: kind.to_string(),
                error: error.to_string(),
            })
            .get()
    }

    /// Count one provider call.
    pub fn provider_call(&self, provider: &str, op: &str, outcome: &str) {
        self.provider_calls
            .get_or_create(&ProviderCallLabels {
                provider: provider.to_string(),
                op: op.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Record that a reconcile of `kind` `namespace/name` finished, having
    /// started from `resource_version`.
    pub fn reconcile_finished(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        resource_version: Option<String>,
    ) {
        let mut map = self.reconciles.write();
        let rec = map.entry(object_key(kind, namespace, name)).or_default();
        rec.count += 1;
        rec.resource_version = resource_version;
    }

    /// What the controller last did with `kind` `namespace/name`.
    pub fn last_reconcile(&self, kind: &str, namespace: &str, name: &str) -> ReconcileRecord {
        self.reconciles
            .read()
            .get(&object_key(kind, namespace, name))
            .cloned()
            .unwrap_or_default()
    }
}

fn object_key(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}/{namespace}/{name}")
}

/// Observes the reconcile duration when dropped, whichever way it ends.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    labels: KindLabels,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .get_or_create(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_metrics_are_served_with_the_rest() {
        let m = Metrics::new();
        m.register_external(|registry| {
            let calls = Counter::<u64>::default();
            calls.inc();
            registry.register("adapter_calls", "An adapter's own counter", calls);
        });
        assert!(
            m.encode().contains("gantry_adapter_calls_total 1"),
            "{}",
            m.encode()
        );
    }

    #[test]
    fn timer_observes_on_drop_and_text_exposes_names() {
        let m = Arc::new(Metrics::new());
        {
            let _t = m.reconcile_started("Service");
        }
        m.reconcile_failed("Service", "transient");
        m.provider_call("local", "ensure", "ok");
        assert_eq!(m.reconcile_count("Service"), 1);
        let text = m.encode();
        for name in [
            "gantry_reconcile_runs_total{kind=\"Service\"} 1",
            "gantry_reconcile_failures_total{kind=\"Service\",error=\"transient\"} 1",
            "gantry_reconcile_duration_seconds_count{kind=\"Service\"} 1",
            "gantry_provider_calls_total{provider=\"local\",op=\"ensure\",outcome=\"ok\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn reconcile_records_count_and_version() {
        let m = Metrics::new();
        m.reconcile_finished("Service", "ns", "a", Some("5".into()));
        m.reconcile_finished("Service", "ns", "a", Some("7".into()));
        let r = m.last_reconcile("Service", "ns", "a");
        assert_eq!(r.count, 2);
        assert_eq!(r.resource_version.as_deref(), Some("7"));
        assert_eq!(m.last_reconcile("Service", "ns", "b").count, 0);
    }
}
