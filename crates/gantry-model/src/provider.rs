//! The `LoadBalancer` trait: the port every provider adapter (AWS, GCP,
//! local) implements, and the plan/observed-status vocabulary it speaks.

use std::{fmt, net::IpAddr};

use serde::{Deserialize, Serialize};

use crate::{
    class::ProviderKind,
    desired::{DesiredLoadBalancer, Protocol},
    identity::Owner,
};

/// What one provider call would change, or did change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Create, update or delete.
    pub action: Action,
    /// Resource type in the provider's words (`listener`, `target-group`, `forwarding-rule`...).
    pub resource: String,
    /// The resource's provider name.
    pub name: String,
    /// Short human explanation (`register 1 target`, `port 80 -> 8080`).
    pub detail: String,
}

/// The kind of a [`Change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "lowercase")]
pub enum Action {
    /// A new resource.
    Create,
    /// An in-place change.
    Update,
    /// A resource removed.
    Delete,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action: &'static str = self.action.into();
        write!(f, "{action} {} {}", self.resource, self.name)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// The changes needed to make the provider match a desired state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Ordered changes; empty when the provider already matches.
    pub changes: Vec<Change>,
}

impl Plan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// A port as reported in `status.loadBalancer.ingress[].ports`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortStatus {
    /// Frontend port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

/// One address of a balancer, as written to `status.loadBalancer.ingress`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressPoint {
    /// IP address, if the provider gives one.
    pub ip: Option<IpAddr>,
    /// DNS name, if the provider gives one (AWS).
    pub hostname: Option<String>,
    /// Ports served at this address.
    pub ports: Vec<PortStatus>,
}

/// What a provider reports after `ensure`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedStatus {
    /// Addresses to publish in status.
    pub ingress: Vec<IngressPoint>,
    /// Whether the balancer is provisioned and has a healthy backend path;
    /// a migration waits for this before switching status.
    pub ready: bool,
}

/// The result of deleting a balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Resources were removed.
    Deleted,
    /// Nothing owned by this owner existed.
    NotFound,
}

/// Where an error comes from and whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ErrorClass {
    /// Throttling, 5xx, timeouts, dependency not yet gone: retry with backoff.
    Transient,
    /// Bad input, quota, a foreign resource in the way: retrying the same
    /// desired state will fail the same way.
    Permanent,
}

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors a provider returns.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ProviderError {
    /// A cloud API call failed in a way worth retrying.
    #[error("{operation} failed (transient): {source}")]
    Transient {
        /// The API operation (e.g. `CreateLoadBalancer`).
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// A cloud API call was rejected and retrying will not help.
    #[error("{operation} rejected: {message}")]
    Rejected {
        /// The API operation.
        operation: &'static str,
        /// What the provider said.
        message: String,
    },
    /// A resource has the name Gantry would use but is not tagged as ours.
    #[error(
        "{resource} {name:?} exists but is not owned by {owner}; refusing to adopt or modify it"
    )]
    NotOwned {
        /// Resource type.
        resource: &'static str,
        /// Its provider name.
        name: String,
        /// The owner Gantry expected.
        owner: Owner,
    },
    /// The desired state asks for something this provider cannot do.
    #[error("unsupported by the {provider} provider: {message}")]
    Unsupported {
        /// The provider.
        provider: ProviderKind,
        /// What is unsupported.
        message: String,
    },
    /// A fixed resource is exhausted (address pool, quota).
    #[error("{resource} exhausted: {message}")]
    Exhausted {
        /// Which resource.
        resource: &'static str,
        /// Details.
        message: String,
    },
    /// Deletion is refused (deletion protection on the balancer).
    #[error("deletion refused: {message}")]
    DeletionRefused {
        /// Why.
        message: String,
    },
    /// A provider call did not answer in time.
    #[error("{operation} timed out after {seconds}s")]
    Timeout {
        /// The API operation.
        operation: &'static str,
        /// The limit.
        seconds: u64,
    },
}

impl ProviderError {
    /// Transient or permanent.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Transient { .. } | Self::Timeout { .. } => ErrorClass::Transient,
            // A pool may free up, but only when some other object changes;
            // the controller re-queues on such changes, so back off long.
            Self::Rejected { .. }
            | Self::NotOwned { .. }
            | Self::Unsupported { .. }
            | Self::Exhausted { .. }
            | Self::DeletionRefused { .. } => ErrorClass::Permanent,
        }
    }

    /// Bounded label for metrics and event reasons.
    pub fn category(&self) -> &'static str {
        self.into()
    }
}

/// One provider's adapter, instantiated for one `LoadBalancerClass` (it names
/// and tags resources with that class). Every method is idempotent and safe
/// to replay after a crash at any point.
#[async_trait::async_trait]
pub trait LoadBalancer: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// The changes `ensure` would make now, reading only.
    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError>;

    /// Create or update the balancer to match `desired`, and report its
    /// addresses. A balancer that already matches must cause no writes.
    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError>;

    /// Remove every resource owned by `owner` in this provider's class.
    /// Absent resources are success.
    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError>;

    /// Owners of every balancer this provider holds for `cluster_id` in its
    /// class, found by ownership tags, for garbage collection and migration.
    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError>;
}
