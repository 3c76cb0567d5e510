//! The provider adapters this binary is built with, behind the controller's
//! `ProviderFactory` port.

use std::sync::Arc;

use async_trait::async_trait;
use gantry_aws::{AwsProvider, CallMetrics};
use gantry_controller::providers::{FactoryError, ProviderFactory};
use gantry_gcp::GcpProvider;
use gantry_local::{AddressBook, LocalProvider};
use gantry_model::{LoadBalancer, LoadBalancerClassSpec, ProviderKind};

/// Builds one adapter per `LoadBalancerClass` from the class's settings.
#[derive(Clone)]
pub struct GantryFactory {
    client: kube::Client,
    cluster_id: String,
    /// One record of taken addresses for every `local` class, so a new
    /// address never needs a full list of what is published.
    addresses: AddressBook,
    /// Calls of every AWS adapter built, served as one counter family.
    aws_calls: CallMetrics,
}

impl std::fmt::Debug for GantryFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GantryFactory")
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl GantryFactory {
    /// A factory whose adapters talk to the cluster through `client` (the
    /// local provider publishes its configuration there) and tag what they
    /// create with `cluster_id`.
    pub fn new(client: kube::Client, cluster_id: impl Into<String>) -> Self {
        Self {
            client,
            cluster_id: cluster_id.into(),
            addresses: AddressBook::default(),
            aws_calls: CallMetrics::default(),
        }
    }
}

#[async_trait]
impl ProviderFactory for GantryFactory {
    async fn build(
        &self,
        name: &str,
        spec: &LoadBalancerClassSpec,
    ) -> Result<Arc<dyn LoadBalancer>, FactoryError> {
        match spec.provider {
            ProviderKind::Local => {
                let settings = spec.local.clone().unwrap_or_default();
                let provider =
                    LocalProvider::new(self.client.clone(), &self.cluster_id, name, settings)
                        .map_err(|e| FactoryError(format!("class {name}: {e}")))?
                        .with_address_book(&self.addresses);
                Ok(Arc::new(provider))
            }
            ProviderKind::Aws => {
                let settings = spec.aws.clone().unwrap_or_default();
                let provider = AwsProvider::new(name, &self.cluster_id, settings)
                    .await
                    .map_err(|e| FactoryError(format!("class {name}: {e}")))?;
                self.aws_calls.track(&provider);
                Ok(Arc::new(provider))
            }
            ProviderKind::Gcp => {
                let settings = spec.gcp.clone().unwrap_or_default();
                let provider = GcpProvider::new(name, &self.cluster_id, settings)
                    .await
                    .map_err(|e| FactoryError(format!("class {name}: {e}")))?;
                Ok(Arc::new(provider))
            }
        }
    }

    fn register_metrics(&self, registry: &mut gantry_controller::metrics::Registry) {
        self.aws_calls.register(registry);
    }
}
