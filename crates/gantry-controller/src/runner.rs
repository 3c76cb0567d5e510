//! Wiring: leader election, watches, startup inventory, the Service and
//! Ingress controllers, the class status step, orphan collection and the
//! HTTP endpoints, run as one future until shutdown (or until leadership is
//! lost).

use std::{future::Future, net::SocketAddr, sync::Arc};

use futures::{FutureExt, StreamExt, future::Shared};
use k8s_openapi::api::{core::v1::Service, networking::v1::Ingress};
use kube::{
    Client,
    runtime::{Controller, watcher},
};

use crate::{
    apply, classes,
    context::{Context, ControllerConfig, Retrigger},
    error::Result,
    gc,
    leader::Elector,
    metrics::Metrics,
    providers::{ProviderFactory, ProviderRegistry},
    reconcile::{error_policy, reconcile},
    secrets::SecretWatches,
    server::{self, Health, Phase},
    target::Target,
    watch::{self, Triggers},
};

type Shutdown = Shared<futures::future::BoxFuture<'static, ()>>;

/// A configured controller, not yet running. Exposes its metrics and health
/// before `run` so tests and the binary can observe it.
pub struct GantryController {
    client: Client,
    config: ControllerConfig,
    factory: Arc<dyn ProviderFactory>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for GantryController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GantryController")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GantryController {
    /// A controller over `client` with providers from `factory`.
    pub fn new(
        client: Client,
        config: ControllerConfig,
        factory: Arc<dyn ProviderFactory>,
    ) -> Self {
        let metrics = Metrics::new();
        metrics.register_external(|registry| factory.register_metrics(registry));
        Self {
            client,
            config,
            factory,
            metrics: Arc::new(metrics),
            health: Arc::new(Health::default()),
            metrics_addr: None,
        }
    }

    /// Serve `/metrics`, `/healthz` and `/readyz` on `addr`.
    pub fn with_metrics_addr(mut self, addr: SocketAddr) -> Self {
        self.metrics_addr = Some(addr);
        self
    }

    /// The controller's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The controller's readiness.
    pub fn health(&self) -> Arc<Health> {
        Arc::clone(&self.health)
    }

    /// Run until `shutdown` resolves. Returns an error if leadership is lost
    /// or a fatal error occurs; the process should then exit non-zero.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let shutdown: Shutdown = shutdown.boxed().shared();
        let server = match self.metrics_addr {
            Some(addr) => {
                let (bound, serve) = server::bind(addr, self.metrics(), self.health()).await?;
                tracing::info!(%bound, "Serving metrics and health");
                serve.boxed()
            }
            None => futures::future::pending().boxed(),
        };
        let main = self.lead_and_run(shutdown.clone());
        tokio::select! {
            r = main => r,
            r = server => r,
        }
    }

    async fn lead_and_run(self, shutdown: Shutdown) -> Result<()> {
        let elector = self
            .config
            .leader
            .clone()
            .map(|l| Elector::new(self.client.clone(), l));
        if let Some(elector) = &elector {
            self.health.set(Phase::Standby);
            tokio::select! {
                () = elector.acquire() => {}
                () = shutdown.clone() => return Ok(()),
            }
        }
        let holding = async {
            match &elector {
                Some(e) => e.hold().await,
                None => futures::future::pending().await,
            }
        };
        let result = tokio::select! {
            r = self.reconcile_loop(shutdown) => r,
            // Losing the lease stops everything at once: dropping the
            // controllers cancels in-flight reconciles.
            e = holding => Err(e),
        };
        if let Some(elector) = &elector
            && result.is_ok()
        {
            elector.release().await;
        }
        result
    }

    async fn reconcile_loop(&self, shutdown: Shutdown) -> Result<()> {
        self.health.set(Phase::Syncing);
        let (stores, writers) = watch::stores();
        let (svc_tx, svc_rx) = futures::channel::mpsc::unbounded();
        let (ing_tx, ing_rx) = futures::channel::mpsc::unbounded();
        let (class_tx, class_rx) = futures::channel::mpsc::unbounded();
        let secrets = Arc::new(SecretWatches::new(self.client.clone(), ing_tx.clone()));
        let retrigger = Retrigger {
            services: svc_tx.clone(),
            ingresses: ing_tx.clone(),
        };
        let triggers = Triggers {
            services: svc_tx,
            ingresses: ing_tx,
            classes: class_tx,
        };
        let watchers = watch::watchers(
            self.client.clone(),
            writers,
            stores.clone(),
            triggers,
            Arc::clone(&secrets),
        );
        let ctx = Arc::new(Context::new(
            self.client.clone(),
            self.config.clone(),
            ProviderRegistry::new(Arc::clone(&self.factory)),
            stores.clone(),
            self.metrics(),
            secrets,
            retrigger,
        ));

        let work = async {
            tokio::select! {
                () = watch::synced(&stores) => {}
                () = shutdown.clone() => return,
            }
            inventory(&ctx).await;
            self.health.set(Phase::Running);
            tracing::info!("Caches synced; reconciling");
            let services = controller::<Service>(&stores.services, svc_rx, &ctx, shutdown.clone());
            let ingresses =
                controller::<Ingress>(&stores.ingresses, ing_rx, &ctx, shutdown.clone());
            let gc_loop = gc_loop(&ctx);
            let class_status = classes::run(Arc::clone(&ctx), class_rx);
            tokio::select! {
                _ = futures::future::join(services, ingresses) => {}
                () = gc_loop => {}
                () = class_status => {}
            }
        };
        tokio::select! {
            () = work => {}
            () = watchers => {}
        }
        Ok(())
    }
}

/// One kind's controller: triggered only through `rx`, reading `store`.
fn controller<K: Target>(
    store: &kube::runtime::reflector::Store<K>,
    rx: futures::channel::mpsc::UnboundedReceiver<kube::runtime::reflector::ObjectRef<K>>,
    ctx: &Arc<Context>,
    shutdown: Shutdown,
) -> impl Future<Output = ()> + Send {
    Controller::for_stream(
        futures::stream::pending::<Result<K, watcher::Error>>(),
        store.clone(),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency))
    .reconcile_on(rx)
    .graceful_shutdown_on(shutdown.map(|_| ()))
    .run(reconcile::<K>, error_policy::<K>, Arc::clone(ctx))
    .for_each(|result| {
        if let Err(error) = result {
            tracing::debug!(%error, "Reconcile error");
        }
        futures::future::ready(())
    })
}

/// Where do balancers exist already? Asked of every class's provider before
/// any reconcile, so migrations and cleanups know every placement.
async fn inventory(ctx: &Context) {
    for class in watch::class_names(&ctx.stores) {
        let owners = async {
            let provider = apply::provider_for(ctx, &class).await?;
            apply::list_owned(ctx, &provider, &class).await
        }
        .await;
        match owners {
            Ok(owners) => {
                for owner in owners {
                    ctx.memory.add_placement(&owner.uid, &class);
                }
            }
            Err(error) => {
                tracing::warn!(class, %error, "Cannot list balancers; treating the class as a possible placement of every object");
                ctx.memory.add_unknown_class(&class);
            }
        }
    }
    ctx.update_gauges();
}

async fn gc_loop(ctx: &Context) {
    loop {
        match gc::collect(ctx).await {
            Ok(report) if !report.deleted.is_empty() => {
                tracing::info!(
                    deleted = report.deleted.len(),
                    "Orphan collection round done"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "Orphan collection round aborted"),
        }
        tokio::time::sleep(ctx.config.gc_interval).await;
    }
}

/// Run a controller in-process until `shutdown` resolves.
pub async fn run_controller(
    client: Client,
    config: ControllerConfig,
    factory: Arc<dyn ProviderFactory>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    GantryController::new(client, config, factory)
        .run(shutdown)
        .await
}
