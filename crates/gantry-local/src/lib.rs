//! Gantry's bare-metal provider.
//!
//! This is the "apply" step of the pipeline (watch -> translate -> plan ->
//! apply -> report) for classes of provider `local`. There is no cloud to
//! call: a balancer is one cluster-scoped `LocalLoadBalancer` object holding
//! its address, listeners or routes and backend nodes. The datapath instances
//! watch those objects, serve them, and report per node under `status.nodes`,
//! which is where readiness comes from.
//!
//! Addresses come from the class's pools (`mode: l2`) or are the backend
//! nodes' own (`mode: nodeAddresses`). The published objects are the only
//! allocation record, so a restarted provider rebuilds what is taken from
//! them; an address, once given, stays with its balancer until the balancer
//! is deleted.

// Internal steps return the trait's `ProviderError` so that they compose
// with `?`; its size is the model's choice, not something to box here.
#![allow(clippy::result_large_err)]

mod build;
mod diff;
mod error;
mod index;
mod labels;
mod pool;
mod provider;

use std::{sync::Arc, time::Duration};

use gantry_model::class::{LocalMode, LocalSettings};
use kube::Api;
use tokio::sync::Mutex;

pub use crate::{
    error::LocalError,
    labels::{ANNOTATION_SHARED_IP_KEY, label_value},
};
use crate::{index::Index, pool::Pools};

/// Deadline of every Kubernetes API call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The record of taken addresses shared by every `local` provider of one
/// process; see [`LocalProvider::with_address_book`].
#[derive(Clone, Default)]
pub struct AddressBook(Arc<Mutex<Option<Index>>>);

impl std::fmt::Debug for AddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBook").finish_non_exhaustive()
    }
}

/// The `local` provider for one `LoadBalancerClass`.
pub struct LocalProvider {
    /// Cluster-scoped `LocalLoadBalancer` objects.
    api: Api<gantry_model::local::LocalLoadBalancer>,
    /// Written into the cluster label of every object.
    cluster_id: String,
    /// The class served.
    class: String,
    /// How addresses reach the network.
    mode: LocalMode,
    /// Parsed pools (empty in `nodeAddresses` mode).
    pools: Pools,
    /// Which addresses are taken; `None` until first used, and again after
    /// a failed write whose outcome is unknown. Holding the lock for a whole
    /// ensure keeps two ensures of this class from picking the same address.
    index: Arc<Mutex<Option<Index>>>,
    /// Whether `index` is an [`AddressBook`] shared by every provider in the
    /// process; only then is it authoritative for new addresses too.
    shared: bool,
    /// Deadline per API call.
    timeout: Duration,
}

impl LocalProvider {
    /// A provider for `class_name` in cluster `cluster_id`.
    pub fn new(
        client: kube::Client,
        cluster_id: impl Into<String>,
        class_name: impl Into<String>,
        settings: LocalSettings,
    ) -> Result<Self, LocalError> {
        let cluster_id = cluster_id.into();
        let class = class_name.into();
        if cluster_id.is_empty() {
            return Err(LocalError::EmptyClusterId);
        }
        if class.is_empty() {
            return Err(LocalError::EmptyClass);
        }
        let pools = Pools::parse(&settings.pools).map_err(|source| LocalError::BadPool {
            class: class.clone(),
            source,
        })?;
        if settings.mode == LocalMode::L2 && pools.is_empty() {
            return Err(LocalError::NoPools { class });
        }
        Ok(Self {
            api: Api::all(client),
            cluster_id,
            class,
            mode: settings.mode,
            pools,
            index: Arc::new(Mutex::new(None)),
            shared: false,
            timeout: CALL_TIMEOUT,
        })
    }

    /// Share `book` with the other providers of this process (one per class).
    ///
    /// Without it, each provider lists every published object before
    /// choosing a new address, because another class's provider may have
    /// taken one since; that list grows with the number of balancers, so
    /// provisioning many at once costs quadratic time. With one book for all
    /// classes, every allocation and deletion in the process updates the same
    /// record, and a list is needed only at first use and after a write whose
    /// outcome is unknown. Only one process allocates (the leader).
    pub fn with_address_book(mut self, book: &AddressBook) -> Self {
        self.index = Arc::clone(&book.0);
        self.shared = true;
        self
    }

    /// Use `limit` instead of [`CALL_TIMEOUT`] as the deadline of each API call.
    pub fn with_call_timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// The class this provider serves.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The cluster id written into ownership labels.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("cluster_id", &self.cluster_id)
            .field("class", &self.class)
            .field("mode", &self.mode)
            .field("pools", &self.pools.to_string())
            .finish_non_exhaustive()
    }
}
