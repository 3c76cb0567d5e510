//! Table tests of translation, split by object kind, plus the seed manifests.

mod ingress;
mod seed;
mod service;

use crate::class::{LoadBalancerClassSpec, ProviderKind};

/// The cluster id every test translates for.
const CLUSTER: &str = "test-cluster";

/// A class spec for `provider` with no settings.
fn class(provider: ProviderKind) -> LoadBalancerClassSpec {
    LoadBalancerClassSpec {
        provider,
        default: false,
        aliases: vec![],
        aws: None,
        gcp: None,
        local: None,
    }
}

/// Shorthand for a `TranslateError::Invalid`'s field, or panic.
fn invalid_field(e: &super::TranslateError) -> &str {
    match e {
        super::TranslateError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}
