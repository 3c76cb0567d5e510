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
pub mod identity;
pub mod provider;
pub mod translate;

pub use class::{LoadBalancerClass, LoadBalancerClassSpec, ProviderKind};
pub use desired::DesiredLoadBalancer;
pub use identity::{Owner, OwnerKind};
pub use provider::{LoadBalancer, ObservedStatus, Plan, ProviderError};

/// The API group of Gantry's own resources and the prefix of its annotations.
pub const GROUP: &str = "gantry.dev";

/// The value of `IngressClass.spec.controller` that selects Gantry.
pub const INGRESS_CONTROLLER_NAME: &str = "gantry.dev/ingress-controller";
