//! [`Tally`]: a provider wrapper that counts calls per load balancer, and the
//! [`Stats`] the controller child reports to the driver.
//!
//! The controller's own `gantry_provider_calls_total` counts calls by
//! operation only; "at most one call per affected load balancer" needs the
//! count per owner, so the child wraps its provider in this.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, Plan, ProviderError, ProviderKind,
    provider::DeleteOutcome,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Provider calls by operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// `plan` calls (read-only drift checks).
    pub plan: u64,
    /// `ensure` calls (may write).
    pub ensure: u64,
    /// `delete` calls (write).
    pub delete: u64,
    /// `list_owned` calls (read-only inventory).
    pub list_owned: u64,
}

impl OpCounts {
    /// Every call.
    pub fn total(&self) -> u64 {
        self.plan + self.ensure + self.delete + self.list_owned
    }

    /// Calls of the operations that may write (`ensure`, `delete`).
    pub fn writing(&self) -> u64 {
        self.ensure + self.delete
    }

    /// `self - earlier`, operation by operation.
    pub fn since(&self, earlier: &OpCounts) -> OpCounts {
        OpCounts {
            plan: self.plan.saturating_sub(earlier.plan),
            ensure: self.ensure.saturating_sub(earlier.ensure),
            delete: self.delete.saturating_sub(earlier.delete),
            list_owned: self.list_owned.saturating_sub(earlier.list_owned),
        }
    }
}

/// What the controller child reports on request (one JSON line).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Whether `/readyz` would answer 200.
    pub ready: bool,
    /// Calls that reached the provider wrapper, by operation.
    pub calls: OpCounts,
    /// Sum of the controller's `gantry_provider_calls_total` series.
    pub controller_calls: u64,
    /// Calls per owner UID (`plan`, `ensure` and `delete`).
    pub per_owner: HashMap<String, u64>,
    /// Service reconciles started (`gantry_reconcile_runs_total{kind="Service"}`).
    pub reconciles: u64,
    /// Writes the emulated cloud applied (counting provider only).
    pub provider_writes: Option<u64>,
    /// Calls that had to wait for a rate-limit token (counting provider only).
    pub throttled: Option<u64>,
    /// Calls the rate limiter let through to the emulated cloud (counting
    /// provider only); calls the controller gave up on while they waited
    /// for a token are not among them.
    pub admitted: Option<u64>,
}

/// Counts every call per operation and per owner, then delegates.
pub struct Tally {
    inner: Arc<dyn LoadBalancer>,
    plan: AtomicU64,
    ensure: AtomicU64,
    delete: AtomicU64,
    list_owned: AtomicU64,
    per_owner: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("calls", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Tally {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn LoadBalancer>) -> Self {
        Self {
            inner,
            plan: AtomicU64::new(0),
            ensure: AtomicU64::new(0),
            delete: AtomicU64::new(0),
            list_owned: AtomicU64::new(0),
            per_owner: Mutex::new(HashMap::new()),
        }
    }

    /// Calls so far, by operation.
    pub fn counts(&self) -> OpCounts {
        OpCounts {
            plan: self.plan.load(Ordering::Relaxed),
            ensure: self.ensure.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            list_owned: self.list_owned.load(Ordering::Relaxed),
        }
    }

    /// Calls so far, per owner UID.
    pub fn per_owner(&self) -> HashMap<String, u64> {
        self.per_owner.lock().clone()
    }

    fn count(&self, counter: &AtomicU64, owner: &Owner) {
        counter.fetch_add(1, Ordering::Relaxed);
        *self.per_owner.lock().entry(owner.uid.clone()).or_default() += 1;
    }
}

#[async_trait]
impl LoadBalancer for Tally {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        self.count(&self.plan, &desired.owner);
        self.inner.plan(desired).await
    }

    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        self.count(&self.ensure, &desired.owner);
        self.inner.ensure(desired).await
    }

    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError> {
        self.count(&self.delete, owner);
        self.inner.delete(owner).await
    }

    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError> {
        self.list_owned.fetch_add(1, Ordering::Relaxed);
        self.inner.list_owned(cluster_id).await
    }
}

#[cfg(test)]
mod tests {
    use gantry_testkit::RecordingProvider;

    use super::*;

    #[test]
    fn since_subtracts_per_operation() {
        let a = OpCounts {
            plan: 1,
            ensure: 5,
            delete: 0,
            list_owned: 1,
        };
        let b = OpCounts {
            plan: 3,
            ensure: 9,
            delete: 1,
            list_owned: 1,
        };
        let d = b.since(&a);
        assert_eq!((d.plan, d.ensure, d.delete, d.list_owned), (2, 4, 1, 0));
        assert_eq!(d.total(), 7);
        assert_eq!(d.writing(), 5);
    }

    #[tokio::test]
    async fn counts_list_without_owner() {
        let inner = Arc::new(RecordingProvider::new("c", ProviderKind::Aws));
        let tally = Tally::new(inner);
        let owners = tally.list_owned("cluster").await;
        assert!(owners.is_ok_and(|o| o.is_empty()));
        assert_eq!(tally.counts().list_owned, 1);
        assert!(tally.per_owner().is_empty());
    }
}
