//! [`CountingProvider`]: any provider behind a client-side token bucket.
//!
//! Cloud APIs throttle per account (AWS ELBv2 allows roughly ten calls a
//! second with a burst of forty). A controller that wastes calls on no-op
//! resyncs runs into that wall at scale; benchmarks wrap providers in this to
//! see the wall and count what crosses it.

use std::{
    num::NonZeroU32,
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
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::Op;

/// A token bucket: `per_second` sustained, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained calls per second.
    pub per_second: NonZeroU32,
    /// Bucket size.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// AWS-like limits: 10 calls/s, burst 40.
    pub const AWS: Self = Self {
        per_second: NonZeroU32::new(10).expect("10 is non-zero"),
        burst: NonZeroU32::new(40).expect("40 is non-zero"),
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::AWS
    }
}

/// Wraps a provider: every call first waits for a token, then is counted.
pub struct CountingProvider {
    inner: Arc<dyn LoadBalancer>,
    limiter: DefaultDirectRateLimiter,
    counts: [AtomicU64; 4],
    throttled: AtomicU64,
}

impl std::fmt::Debug for CountingProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProvider")
            .field("calls", &self.total())
            .field("throttled", &self.throttled())
            .finish_non_exhaustive()
    }
}

fn index(op: Op) -> usize {
    match op {
        Op::Plan => 0,
        Op::Ensure => 1,
        Op::Delete => 2,
        Op::ListOwned => 3,
    }
}

impl CountingProvider {
    /// Wrap `inner` behind `limit`.
    pub fn new(inner: Arc<dyn LoadBalancer>, limit: RateLimit) -> Self {
        Self {
            inner,
            limiter: RateLimiter::direct(
                Quota::per_second(limit.per_second).allow_burst(limit.burst),
            ),
            counts: Default::default(),
            throttled: AtomicU64::new(0),
        }
    }

    /// Calls of `op` that went through.
    pub fn count(&self, op: Op) -> u64 {
        self.counts[index(op)].load(Ordering::Relaxed)
    }

    /// All calls that went through.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Calls that had to wait for a token.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    async fn admit(&self, op: Op) {
        if self.limiter.check().is_err() {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            self.limiter.until_ready().await;
        }
        self.counts[index(op)].fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl LoadBalancer for CountingProvider {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        self.admit(Op::Plan).await;
        self.inner.plan(desired).await
    }

    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        self.admit(Op::Ensure).await;
        self.inner.ensure(desired).await
    }

    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError> {
        self.admit(Op::Delete).await;
        self.inner.delete(owner).await
    }

    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError> {
        self.admit(Op::ListOwned).await;
        self.inner.list_owned(cluster_id).await
    }
}
