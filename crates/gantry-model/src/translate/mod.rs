//! Translation: Kubernetes objects -> [`DesiredLoadBalancer`].
//!
//! Pure functions of their inputs: the controller gathers the Service or
//! Ingress and everything it refers to from its caches, and calls these.

use k8s_openapi::{
    api::core::v1::{Node, Secret, Service},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

pub use self::{
    ingress::{check_secret_name, translate_ingress},
    service::translate_service,
};
use crate::{
    annotations::AnnotationError,
    class::LoadBalancerClassSpec,
    desired::DesiredLoadBalancer,
    identity::{Owner, OwnerKind},
};

mod ingress;
mod service;
#[cfg(test)]
mod tests;

/// The successful result of a translation.
#[derive(Clone, Debug, PartialEq)]
pub struct Translated {
    /// The load balancer to build.
    pub desired: DesiredLoadBalancer,
    /// Things the user should know that do not block (unknown `gantry.dev/*`
    /// annotations, ignored fields); the controller publishes each as a
    /// Warning Event.
    pub warnings: Vec<String>,
}

/// Everything a Service translation depends on besides the Service.
#[derive(Clone, Copy, Debug)]
pub struct ServiceInputs<'a> {
    /// The cluster id used in ownership.
    pub cluster_id: &'a str,
    /// The `LoadBalancerClass` name selected for the Service.
    pub class_name: &'a str,
    /// That class's spec.
    pub class: &'a LoadBalancerClassSpec,
    /// All Nodes (eligibility is decided here). A Service with
    /// `externalTrafficPolicy: Local` gets every eligible node too, not only
    /// those with its endpoints: its health check on `healthCheckNodePort`,
    /// which kube-proxy answers with 200 only where endpoints are, decides,
    /// so pods moving never changes the balancer's targets.
    pub nodes: &'a [Node],
}

/// Everything an Ingress translation depends on besides the Ingress.
#[derive(Clone, Copy, Debug)]
pub struct IngressInputs<'a> {
    /// The cluster id used in ownership.
    pub cluster_id: &'a str,
    /// The `LoadBalancerClass` name selected for the Ingress.
    pub class_name: &'a str,
    /// That class's spec.
    pub class: &'a LoadBalancerClassSpec,
    /// All Nodes.
    pub nodes: &'a [Node],
    /// Services in the Ingress's namespace.
    pub services: &'a [Service],
    /// The TLS Secrets the Ingress names (same namespace only).
    pub secrets: &'a [Secret],
}

/// Why an object cannot be translated. Every variant names the field and the
/// offending value, so the controller's Event and condition say exactly what
/// to fix. All are permanent: the same input fails the same way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum TranslateError {
    /// A required field is missing.
    #[error("{field} is required")]
    Missing {
        /// JSON path of the field.
        field: String,
    },
    /// A field has a value Gantry cannot use.
    #[error("{field}: invalid value {value:?}: {reason}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// The value as given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// An annotation failed to parse.
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    /// An Ingress backend names a Service that does not exist or lacks the port.
    #[error("{field}: service {service:?} {reason}")]
    Backend {
        /// JSON path of the backend.
        field: String,
        /// `namespace/name` of the Service.
        service: String,
        /// What is wrong.
        reason: String,
    },
    /// An Ingress TLS entry names a Secret that is missing or malformed.
    #[error("{field}: secret {secret:?} {reason}")]
    Secret {
        /// JSON path of the TLS entry.
        field: String,
        /// Secret name.
        secret: String,
        /// What is wrong.
        reason: String,
    },
}

impl TranslateError {
    /// Bounded label for metrics and event reasons.
    pub fn category(&self) -> &'static str {
        self.into()
    }
}

/// Owner of a translated object, from its metadata.
fn owner(meta: &ObjectMeta, kind: OwnerKind, cluster_id: &str) -> Result<Owner, TranslateError> {
    let required = |value: &Option<String>, field: &str| {
        value
            .clone()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| TranslateError::Missing {
                field: field.to_string(),
            })
    };
    Ok(Owner {
        cluster_id: cluster_id.to_string(),
        kind,
        namespace: required(&meta.namespace, "metadata.namespace")?,
        name: required(&meta.name, "metadata.name")?,
        uid: required(&meta.uid, "metadata.uid")?,
    })
}

/// A port number from the API (an `i32`) as a `u16` in 1..=65535.
fn port(field: String, value: i32) -> Result<u16, TranslateError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| TranslateError::Invalid {
            field,
            value: value.to_string(),
            reason: "not a port number (1-65535)".into(),
        })
}
