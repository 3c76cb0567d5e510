//! Gantry's GCP provider.
//!
//! This is the "apply" step of the pipeline (watch -> translate -> plan ->
//! apply -> report) for classes of provider `gcp`. A Service becomes a
//! regional passthrough Network Load Balancer (external or internal per
//! scheme): a reserved regional address, unmanaged instance groups per zone
//! holding the eligible nodes, a regional backend service with a health
//! check on the node port (or, in the legacy form, a target pool with an
//! HTTP health check), one forwarding rule per protocol, and a firewall rule
//! opening the node ports. An Ingress becomes a global external Application
//! Load Balancer (see the `ingress` part of the crate once it lands).
//!
//! Every resource carries a description naming Gantry, the cluster, the
//! class and the owner (see [`labels`]), and a deterministic RFC 1035 name
//! (see [`names`]), so a controller that crashed after a create finds the
//! resource again; anything with our name but a foreign description is
//! never adopted, changed or deleted. Calls go through [`api::Api`]: a
//! client-side rate limit, a deadline each, retries with jittered backoff on
//! throttling and 5xx, and Operations awaited with a deadline.

// Internal steps return the trait's `ProviderError` so that they compose
// with `?`; its size is the model's choice, not something to box here.
#![allow(clippy::result_large_err)]

pub mod api;
mod error;
mod group_id;
mod ingress;
pub mod labels;
pub mod names;
mod service;

use std::sync::Arc;

use async_trait::async_trait;
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, OwnerKind, Plan, ProviderError,
    ProviderKind, class::GcpSettings, desired::LoadBalancerSpec, provider::DeleteOutcome,
};
use parking_lot::Mutex;

pub use crate::{
    api::{ApiOptions, CallLog, Connection, Outcome, is_read},
    error::{CallError, GcpError},
};

/// Environment variable that, set to `1`, makes [`GcpProvider::new`] send no
/// credentials at all: for emulators only (tests and the end-to-end suite).
pub const ANONYMOUS_CREDENTIALS_ENV: &str = "GANTRY_GCP_ANONYMOUS_CREDENTIALS";

/// The `gcp` provider for one `LoadBalancerClass`.
pub struct GcpProvider {
    /// The class served (written into every description).
    class: String,
    /// Written into every description.
    cluster_id: String,
    /// The class's settings.
    settings: GcpSettings,
    /// Clients, limits and call accounting.
    api: api::Api,
}

impl std::fmt::Debug for GcpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpProvider")
            .field("class", &self.class)
            .field("cluster_id", &self.cluster_id)
            .field("project", &self.api.project)
            .field("region", &self.api.region)
            .finish_non_exhaustive()
    }
}

impl GcpProvider {
    /// A provider for `class`, with project and region from the class's
    /// settings (both required) and the endpoint from the class when it
    /// sets one.
    ///
    /// Credentials are Application Default Credentials (Workload Identity,
    /// the metadata server, `GOOGLE_APPLICATION_CREDENTIALS`), unless the
    /// environment variable `GANTRY_GCP_ANONYMOUS_CREDENTIALS` is `1`: then
    /// no credentials are sent, which only an emulator accepts.
    pub async fn new(
        class: &str,
        cluster_id: &str,
        settings: GcpSettings,
    ) -> Result<Self, GcpError> {
        let anonymous = std::env::var(ANONYMOUS_CREDENTIALS_ENV).is_ok_and(|v| v == "1");
        let conn = Connection {
            endpoint: settings.endpoint.clone(),
            anonymous,
        };
        Self::with_options(class, cluster_id, settings, conn, ApiOptions::default()).await
    }

    /// Like [`GcpProvider::new`] with an explicit connection (the class's
    /// endpoint is ignored; `conn` wins) and limits.
    pub async fn with_options(
        class: &str,
        cluster_id: &str,
        settings: GcpSettings,
        conn: Connection,
        options: ApiOptions,
    ) -> Result<Self, GcpError> {
        if class.is_empty() {
            return Err(GcpError::EmptyClass);
        }
        if cluster_id.is_empty() {
            return Err(GcpError::EmptyClusterId);
        }
        let (project, region) = validate_settings(class, &settings)?;
        // The Google clients are built without a TLS crypto library of
        // their own (their default would add a second one next to ring and
        // leave rustls unable to pick a process default); they use the
        // process default, which is ring, as everywhere else in Gantry.
        // An error only means some provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = api::Api::new(class, project, region, &conn, options).await?;
        Ok(Self {
            class: class.to_string(),
            cluster_id: cluster_id.to_string(),
            settings,
            api,
        })
    }

    /// Calls made so far by operation and outcome (the provider's metric).
    pub fn calls(&self) -> Arc<Mutex<CallLog>> {
        self.api.log()
    }

    /// The class's settings.
    pub fn settings(&self) -> &GcpSettings {
        &self.settings
    }

    /// The API door (clients, project, region), for callers that read
    /// Compute Engine directly.
    pub fn api(&self) -> &api::Api {
        &self.api
    }

    fn check_class(&self, desired: &DesiredLoadBalancer) -> Result<(), ProviderError> {
        if desired.class != self.class {
            return Err(ProviderError::Rejected {
                operation: "Ensure",
                message: format!(
                    "desired state of class {} handed to the provider of class {}",
                    desired.class, self.class
                ),
            });
        }
        Ok(())
    }
}

/// Check the class's settings; the project and region they name.
fn validate_settings(class: &str, s: &GcpSettings) -> Result<(String, String), GcpError> {
    let bad = |field: &'static str, value: &str, reason: &str| GcpError::BadSetting {
        class: class.to_string(),
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let project = s.project.clone().unwrap_or_default();
    if !is_project_id(&project) {
        return Err(bad(
            "spec.gcp.project",
            &project,
            "a project id is 6-30 lower-case letters, digits or hyphens, starting with a letter",
        ));
    }
    let region = s.region.clone().unwrap_or_default();
    if !names::is_valid(&region) {
        return Err(bad(
            "spec.gcp.region",
            &region,
            "a region name such as us-central1 is required",
        ));
    }
    if let Some(network) = &s.network
        && !names::is_valid(network)
    {
        return Err(bad(
            "spec.gcp.network",
            network,
            "a network name is an RFC 1035 name of at most 63 characters",
        ));
    }
    if let Some(endpoint) = &s.endpoint {
        let rest = endpoint
            .strip_prefix("https://")
            .or_else(|| endpoint.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(char::is_whitespace)) {
            return Err(bad(
                "spec.gcp.endpoint",
                endpoint,
                "an endpoint is an http:// or https:// URL",
            ));
        }
    }
    Ok((project, region))
}

/// A project id: 6-30 of `[a-z0-9-]`, starting with a letter, not ending with `-`.
fn is_project_id(s: &str) -> bool {
    (6..=30).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[async_trait]
impl LoadBalancer for GcpProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gcp
    }

    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        self.check_class(desired)?;
        match &desired.spec {
            LoadBalancerSpec::L4(spec) => {
                service::plan(
                    &self.api,
                    &desired.owner,
                    &self.class,
                    &self.cluster_id,
                    &self.settings,
                    spec,
                )
                .await
            }
            LoadBalancerSpec::L7(spec) => {
                ingress::plan(
                    &self.api,
                    &desired.owner,
                    &self.class,
                    &self.cluster_id,
                    spec,
                )
                .await
            }
        }
    }

    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        self.check_class(desired)?;
        match &desired.spec {
            LoadBalancerSpec::L4(spec) => {
                service::ensure(
                    &self.api,
                    &desired.owner,
                    &self.class,
                    &self.cluster_id,
                    &self.settings,
                    spec,
                )
                .await
            }
            LoadBalancerSpec::L7(spec) => {
                ingress::ensure(
                    &self.api,
                    &desired.owner,
                    &self.class,
                    &self.cluster_id,
                    spec,
                )
                .await
            }
        }
    }

    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError> {
        match owner.kind {
            OwnerKind::Service => {
                let found =
                    service::delete(&self.api, owner, &self.class, &self.cluster_id).await?;
                Ok(if found {
                    DeleteOutcome::Deleted
                } else {
                    DeleteOutcome::NotFound
                })
            }
            OwnerKind::Ingress => {
                let found =
                    ingress::delete(&self.api, owner, &self.class, &self.cluster_id).await?;
                Ok(if found {
                    DeleteOutcome::Deleted
                } else {
                    DeleteOutcome::NotFound
                })
            }
        }
    }

    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError> {
        // Service balancers join here once they are built.
        let mut owners = service::list_owned(&self.api, &self.class, cluster_id).await?;
        owners.extend(ingress::list_owned(&self.api, cluster_id, &self.class).await?);
        Ok(owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GcpSettings {
        GcpSettings {
            project: Some("my-project".into()),
            region: Some("us-central1".into()),
            ..GcpSettings::default()
        }
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        assert!(validate_settings("c", &settings()).is_ok());
        for (s, field) in [
            (
                GcpSettings {
                    project: None,
                    ..settings()
                },
                "spec.gcp.project",
            ),
            (
                GcpSettings {
                    project: Some("My_Project".into()),
                    ..settings()
                },
                "spec.gcp.project",
            ),
            (
                GcpSettings {
                    region: Some("US central".into()),
                    ..settings()
                },
                "spec.gcp.region",
            ),
            (
                GcpSettings {
                    network: Some("-net".into()),
                    ..settings()
                },
                "spec.gcp.network",
            ),
            (
                GcpSettings {
                    endpoint: Some("ftp://x".into()),
                    ..settings()
                },
                "spec.gcp.endpoint",
            ),
        ] {
            match validate_settings("c", &s) {
                Err(GcpError::BadSetting { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
