//! Gantry's pure model of a load balancer.
//!
//! This crate is the "translate" and "plan" vocabulary of the controller's
//! pipeline (watch -> translate -> plan -> apply -> report). It does no I/O and
//! holds no Kubernetes client or cloud SDK: it turns Kubernetes objects into a
//! [`DesiredLoadBalancer`], names and tags the cloud resources that represent
//! it, and defines the [`LoadBalancer`] trait every provider implements.

pub mod annotations;
pub mod class;
pub mod desired;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod identity;
pub mod local;
pub mod provider;
pub mod select;
pub mod translate;

pub use class::{LoadBalancerClass, LoadBalancerClassSpec, ProviderKind};
pub use desired::DesiredLoadBalancer;
pub use identity::{Owner, OwnerKind};
pub use provider::{LoadBalancer, ObservedStatus, Plan, ProviderError};
pub use select::{
    SERVICE_CLASS_PREFIX, ServiceSelection, eligible_nodes, ingress_references,
    select_ingress_class, select_service_class,
};
pub use translate::{
    IngressInputs, ServiceInputs, TranslateError, Translated, translate_ingress, translate_service,
};

/// The API group of Gantry's own resources and the prefix of its annotations.
pub const GROUP: &str = "gantry.dev";

/// The value of `IngressClass.spec.controller` that selects Gantry.
pub const INGRESS_CONTROLLER_NAME: &str = "gantry.dev/ingress-controller";
