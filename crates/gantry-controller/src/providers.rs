//! Provider instances per `LoadBalancerClass`: a pluggable factory builds an
//! adapter for a class, and the registry caches it per class generation so a
//! class edit rebuilds the adapter and nothing else does.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use gantry_model::{LoadBalancer, LoadBalancerClass, LoadBalancerClassSpec};
use kube::ResourceExt;
use parking_lot::RwLock;

use crate::error::{Error, Result};

/// Why a factory could not build a provider.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FactoryError(pub String);

/// Builds provider adapters. The binary plugs in the adapters it was compiled
/// with; tests plug in in-memory ones.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// Build the adapter serving class `name`.
    async fn build(
        &self,
        name: &str,
        spec: &LoadBalancerClassSpec,
    ) -> Result<Arc<dyn LoadBalancer>, FactoryError>;

    /// Add metrics the adapters keep themselves (a cloud provider's calls
    /// per API operation, say) to the registry `/metrics` serves. Called
    /// once, when the controller is built; the default adds nothing.
    fn register_metrics(&self, _registry: &mut crate::metrics::Registry) {}
}

/// The factory of a binary built without provider adapters: every class
/// fails with a message naming the missing provider.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinFactory;

#[async_trait]
impl ProviderFactory for BuiltinFactory {
    async fn build(
        &self,
        _name: &str,
        spec: &LoadBalancerClassSpec,
    ) -> Result<Arc<dyn LoadBalancer>, FactoryError> {
        Err(FactoryError(format!(
            "provider `{}` is not built into this binary",
            spec.provider
        )))
    }
}

/// A factory handing out fixed instances by class name (tests, `gantry dev`).
#[derive(Clone, Default)]
pub struct StaticFactory {
    providers: HashMap<String, Arc<dyn LoadBalancer>>,
}

impl std::fmt::Debug for StaticFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticFactory")
            .field("classes", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StaticFactory {
    /// An empty factory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve class `name` with `provider`.
    pub fn with(mut self, name: impl Into<String>, provider: Arc<dyn LoadBalancer>) -> Self {
        self.providers.insert(name.into(), provider);
        self
    }
}

#[async_trait]
impl ProviderFactory for StaticFactory {
    async fn build(
        &self,
        name: &str,
        _spec: &LoadBalancerClassSpec,
    ) -> Result<Arc<dyn LoadBalancer>, FactoryError> {
        self.providers
            .get(name)
            .cloned()
            .ok_or_else(|| FactoryError(format!("no provider configured for class `{name}`")))
    }
}

struct Cached {
    generation: Option<i64>,
    provider: Arc<dyn LoadBalancer>,
}

/// Provider instances by class name, rebuilt when the class's generation changes.
pub struct ProviderRegistry {
    factory: Arc<dyn ProviderFactory>,
    cache: RwLock<HashMap<String, Cached>>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field(
                "classes",
                &self.cache.read().keys().cloned().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ProviderRegistry {
    /// An empty registry over `factory`.
    pub fn new(factory: Arc<dyn ProviderFactory>) -> Self {
        Self {
            factory,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The provider for `class`, built on first use and after each spec change.
    pub async fn get(&self, class: &LoadBalancerClass) -> Result<Arc<dyn LoadBalancer>> {
        let name = class.name_any();
        let generation = class.metadata.generation;
        if let Some(c) = self.cache.read().get(&name)
            && c.generation == generation
        {
            return Ok(Arc::clone(&c.provider));
        }
        let provider = self.factory.build(&name, &class.spec).await.map_err(|e| {
            Error::ProviderUnavailable {
                class: name.clone(),
                message: e.0,
            }
        })?;
        self.cache.write().insert(
            name,
            Cached {
                generation,
                provider: Arc::clone(&provider),
            },
        );
        Ok(provider)
    }

    /// The last provider built for `name`, if any: lets cleanup finish for a
    /// class whose `LoadBalancerClass` was deleted after use.
    pub fn cached(&self, name: &str) -> Option<Arc<dyn LoadBalancer>> {
        self.cache.read().get(name).map(|c| Arc::clone(&c.provider))
    }
}
