//! The address Leases in the API: read from a cache that one watch keeps
//! (no API call per tick, whatever the number of addresses and nodes), and
//! written with the `resourceVersion` they were read at, so that of two
//! nodes racing for an address exactly one write succeeds and the other
//! gets a 409. A cache behind the API (it has not seen our own last write
//! yet, or its watch is reconnecting) costs no safety, only that 409; the
//! caller then reads that one Lease with [`Leases::get`] and decides again.

use std::{collections::BTreeMap, future::ready, net::IpAddr, time::Duration};

use futures::StreamExt;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, PostParams},
    runtime::{
        WatchStreamExt,
        reflector::{self, Store, reflector},
        watcher,
    },
};
use tokio::task::JoinHandle;

use super::{
    election::{LEASE_PREFIX, LeaseState, lease_name},
    error::AnnounceError,
};

/// Label on every address Lease, to list them alone.
pub(crate) const LABEL: &str = "gantry.dev/l2-address";

/// Outcome of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// The Lease now says what was written.
    Done,
    /// Someone wrote first (409): re-read before deciding again.
    Conflict,
}

/// The address Leases of one namespace.
pub(crate) struct Leases {
    api: Api<Lease>,
    cache: Store<Lease>,
    /// Keeps `cache`; ends with `self`.
    watch: JoinHandle<()>,
    namespace: String,
    node: String,
    duration: Duration,
}

impl Drop for Leases {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl Leases {
    /// Leases in `namespace`, written as `node`, valid `duration` per
    /// renewal. Starts the watch that keeps the cache.
    pub fn new(client: Client, namespace: &str, node: &str, duration: Duration) -> Self {
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let (cache, writer) = reflector::store();
        let ns = namespace.to_owned();
        let stream = reflector(
            writer,
            watcher(api.clone(), watcher::Config::default().labels(LABEL)),
        )
        .default_backoff();
        let watch = tokio::spawn(stream.for_each(move |event| {
            if let Err(error) = event {
                tracing::warn!(%error, namespace = ns, "Watch on address Leases failed; retrying");
            }
            ready(())
        }));
        Self {
            api,
            cache,
            watch,
            namespace: namespace.to_owned(),
            node: node.to_owned(),
            duration,
        }
    }

    /// Completes once the cache holds a first complete list.
    pub async fn synced(&self) -> Result<(), AnnounceError> {
        self.cache
            .wait_until_ready()
            .await
            .map_err(|_| AnnounceError::WatchLeases {
                namespace: self.namespace.clone(),
            })
    }

    /// Every address Lease in the cache, by name.
    pub fn cached(&self) -> BTreeMap<String, Lease> {
        self.cache
            .state()
            .into_iter()
            .filter(|l| l.name_any().starts_with(LEASE_PREFIX))
            .map(|l| (l.name_any(), (*l).clone()))
            .collect()
    }

    /// Creates the Lease of `addr` held by this node.
    pub async fn create(&self, addr: IpAddr) -> Result<Written, AnnounceError> {
        let name = lease_name(addr);
        let now = MicroTime(Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(
                    [(
                        LABEL.to_owned(),
                        name.trim_start_matches(LEASE_PREFIX).to_owned(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node.clone()),
                lease_duration_seconds: Some(self.duration_secs()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let result = self.api.create(&PostParams::default(), &lease).await;
        written(result, name, "create")
    }

    /// Renews `lease` (held by this node) or takes it over (free), as read.
    pub async fn claim(&self, mut lease: Lease) -> Result<Written, AnnounceError> {
        let name = lease.name_any();
        let now = Timestamp::now();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let renewing = spec.holder_identity.as_deref() == Some(self.node.as_str());
        if !renewing {
            spec.holder_identity = Some(self.node.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.duration_secs());
        let action = if renewing { "renew" } else { "take" };
        // `lease` carries the resourceVersion it was read at.
        let result = self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await;
        written(result, name, action)
    }

    /// Gives `lease` up: no holder, renewed now, so the next node may take
    /// it at once instead of waiting for it to expire.
    pub async fn release(&self, mut lease: Lease) -> Result<Written, AnnounceError> {
        let name = lease.name_any();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.node.as_str()) {
            return Ok(Written::Conflict);
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        let result = self
            .api
            .replace(&name, &PostParams::default(), &lease)
            .await;
        written(result, name, "release")
    }

    /// Reads the Lease `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Lease>, AnnounceError> {
        self.api
            .get_opt(name)
            .await
            .map_err(|source| AnnounceError::ReadLease {
                name: name.to_owned(),
                source,
            })
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// What `lease` says, for [`decide`](super::election::decide).
pub(crate) fn state(lease: &Lease) -> LeaseState {
    let spec = lease.spec.as_ref();
    LeaseState::new(
        spec.and_then(|s| s.holder_identity.as_deref()),
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        spec.and_then(|s| s.lease_duration_seconds),
    )
}

fn written(
    result: Result<Lease, kube::Error>,
    name: String,
    action: &'static str,
) -> Result<Written, AnnounceError> {
    match result {
        Ok(_) => Ok(Written::Done),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Written::Conflict),
        Err(source) => Err(AnnounceError::WriteLease {
            name,
            action,
            source,
        }),
    }
}
