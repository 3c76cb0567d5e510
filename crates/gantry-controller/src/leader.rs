//! Leader election on a `coordination.k8s.io/v1` Lease, so only one replica
//! mutates load balancers.
//!
//! A small implementation rather than a crate: the controller needs the
//! client-go contract "stop mutating once renewal has failed for longer than
//! the renew deadline", which the maintained kube 5 compatible crate
//! (`kube-lease-manager`) does not expose (it retries renewals indefinitely
//! and reports only successful state changes). Optimistic concurrency does
//! the rest: every write is a replace carrying the `resourceVersion` that was
//! read, so two candidates racing for the lease get one 409.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};

use crate::error::{Error, Result};

/// Lease settings (client-go's defaults, scaled as in kube-controller-manager).
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace.
    pub lease_namespace: String,
    /// This replica's identity (pod name + random suffix).
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// The holder gives up if it could not renew for this long.
    pub renew_deadline: Duration,
    /// Pause between attempts.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// Defaults: 15s lease, 10s renew deadline, 2s retry.
    pub fn new(
        lease_name: impl Into<String>,
        lease_namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            lease_name: lease_name.into(),
            lease_namespace: lease_namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Outcome of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This replica holds the lease.
    Held,
    /// Another replica holds a valid lease.
    HeldByOther,
}

/// A leader elector for one lease.
#[derive(Clone)]
pub struct Elector {
    api: Api<Lease>,
    config: LeaderConfig,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl Elector {
    /// An elector for `config`.
    pub fn new(client: Client, config: LeaderConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.lease_namespace),
            config,
        }
    }

    fn conflict(e: &kube::Error) -> bool {
        matches!(e, kube::Error::Api(s) if s.code == 409)
    }

    /// Try once to acquire or renew the lease.
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt> {
        let now = Timestamp::now();
        let name = &self.config.lease_name;
        let existing = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| Error::Leader(format!("reading lease: {e}")))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.config.lease_namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(secs(self.config.lease_duration)),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(e) if Self::conflict(&e) => Ok(Attempt::HeldByOther),
                Err(e) => Err(Error::Leader(format!("creating lease: {e}"))),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.config.identity;
        if !mine && !holder.is_empty() {
            let duration = i64::from(
                spec.lease_duration_seconds
                    .unwrap_or(secs(self.config.lease_duration)),
            );
            let renewed = spec
                .renew_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            let expires = renewed
                .checked_add(SignedDuration::from_secs(duration))
                .unwrap_or(Timestamp::MAX);
            if expires > now {
                return Ok(Attempt::HeldByOther);
            }
        }
        if !mine {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.config.identity.clone());
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(secs(self.config.lease_duration));
        // `lease` still carries the resourceVersion we read: a concurrent
        // writer makes this a 409, never a silent double leadership.
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Attempt::Held),
            Err(e) if Self::conflict(&e) => Ok(Attempt::HeldByOther),
            Err(e) => Err(Error::Leader(format!("updating lease: {e}"))),
        }
    }

    /// Wait until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    tracing::info!(identity = self.config.identity, "Acquired leader lease");
                    return;
                }
                Ok(Attempt::HeldByOther) => {}
                Err(error) => tracing::warn!(%error, "Leader election attempt failed"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Keep renewing; returns an error once leadership is lost (another
    /// holder) or renewal failed for longer than the renew deadline. The
    /// caller must stop mutating when this returns.
    pub async fn hold(&self) -> Error {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => last_renewal = Instant::now(),
                Ok(Attempt::HeldByOther) => {
                    return Error::Leader("lease was taken over by another replica".into());
                }
                Err(error) => {
                    tracing::warn!(%error, "Lease renewal failed");
                    if last_renewal.elapsed() > self.config.renew_deadline {
                        return Error::Leader(format!(
                            "could not renew the lease within {:?}: {error}",
                            self.config.renew_deadline
                        ));
                    }
                }
            }
        }
    }

    /// Give the lease up (on orderly shutdown) so a standby takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.lease_name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(error) = self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(%error, "Failed to release leader lease");
        }
    }
}
