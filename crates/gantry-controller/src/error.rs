//! Errors of the reconcile pipeline: one variant per failed operation, each
//! with a bounded `category()` for metrics labels and Event reasons.

use gantry_model::{ProviderError, provider::ErrorClass, translate::TranslateError};

/// A failed step of a reconcile, GC or startup.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Error {
    /// The object lacks a field every stored object has.
    #[error("object has no {0}")]
    MissingObjectKey(&'static str),

    /// The selected `LoadBalancerClass` does not exist.
    #[error("LoadBalancerClass {0:?} not found")]
    ClassNotFound(String),

    /// The class exists but no provider could be built for it.
    #[error("class {class:?}: {message}")]
    ProviderUnavailable {
        /// The class name.
        class: String,
        /// Why no provider was built.
        message: String,
    },

    /// The selected class's settings are invalid (its `Accepted` condition
    /// is False); nothing is asked of its provider.
    #[error("LoadBalancerClass {class:?} is not accepted: {message}")]
    InvalidClass {
        /// The class name.
        class: String,
        /// What is wrong, naming the field and value.
        message: String,
    },

    /// The object cannot be translated into a load balancer.
    #[error("invalid spec: {0}")]
    Translate(#[source] Box<TranslateError>),

    /// A provider call failed.
    #[error("{op} in class {class:?} failed: {source}")]
    Provider {
        /// The provider operation (`ensure`, `delete`, `plan`, `list_owned`).
        op: &'static str,
        /// The class whose provider failed.
        class: String,
        /// The provider's error.
        #[source]
        source: Box<ProviderError>,
    },

    /// The provider rejected this exact desired state recently; it is not
    /// asked again until the desired state changes or the retry interval
    /// passes. Carries the original error's text and category.
    #[error("{message}")]
    StillFailing {
        /// The original error, as text.
        message: String,
        /// The original error's category.
        category: &'static str,
    },

    /// Adding our finalizer failed.
    #[error("adding finalizer: {0}")]
    AddFinalizer(#[source] kube::Error),

    /// Removing our finalizer failed.
    #[error("removing finalizer: {0}")]
    RemoveFinalizer(#[source] kube::Error),

    /// Writing status failed.
    #[error("writing status: {0}")]
    PatchStatus(#[source] kube::Error),

    /// Serialising a patch failed.
    #[error("serialising patch: {0}")]
    SerializePatch(#[source] serde_json::Error),

    /// Rendering the CRDs as YAML failed.
    #[error("rendering CRDs: {0}")]
    RenderCrd(#[source] serde_yaml::Error),

    /// Reading an object from the API failed.
    #[error("reading {what}: {source}")]
    Get {
        /// What was read.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },

    /// Listing objects failed.
    #[error("listing {what}: {source}")]
    List {
        /// What was listed.
        what: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },

    /// Building the Kubernetes client failed.
    #[error("kubernetes client configuration: {0}")]
    ClientConfig(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The leader lease could not be acquired or renewed in time.
    #[error("leader election: {0}")]
    Leader(String),

    /// The metrics/health server failed.
    #[error("metrics server on {addr}: {source}")]
    Server {
        /// The listen address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Bounded label for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Provider { source, .. } => source.category(),
            Self::Translate(e) => e.category(),
            Self::StillFailing { category, .. } => category,
            other => other.into(),
        }
    }

    /// Whether retrying soon may help (with backoff).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Provider { source, .. } => source.class() == ErrorClass::Transient,
            // Bad input and missing classes only change when objects change,
            // and object changes retrigger the reconcile anyway.
            Self::Translate(_)
            | Self::ClassNotFound(_)
            | Self::InvalidClass { .. }
            | Self::ProviderUnavailable { .. }
            | Self::MissingObjectKey(_)
            | Self::SerializePatch(_)
            | Self::RenderCrd(_)
            | Self::StillFailing { .. } => false,
            Self::AddFinalizer(_)
            | Self::RemoveFinalizer(_)
            | Self::PatchStatus(_)
            | Self::Get { .. }
            | Self::List { .. }
            | Self::ClientConfig(_)
            | Self::Leader(_)
            | Self::Server { .. } => true,
        }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
