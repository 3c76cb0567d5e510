//! Pipeline steps "plan" and "apply": every provider call goes through here,
//! bounded by a timeout and counted by operation and outcome.

use std::{future::Future, sync::Arc};

use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, Plan, ProviderError,
    provider::DeleteOutcome,
};

use crate::{
    context::Context,
    error::{Error, Result},
};

async fn call<T>(
    ctx: &Context,
    provider: &Arc<dyn LoadBalancer>,
    class: &str,
    op: &'static str,
    fut: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T> {
    let limit = ctx.config.provider_timeout;
    let result = match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Timeout {
            operation: op,
            seconds: limit.as_secs(),
        }),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.category(),
    };
    ctx.metrics
        .provider_call(provider.kind().as_str(), op, outcome);
    result.map_err(|source| Error::Provider {
        op,
        class: class.to_string(),
        source: Box::new(source),
    })
}

/// `LoadBalancer::ensure`.
pub async fn ensure(
    ctx: &Context,
    provider: &Arc<dyn LoadBalancer>,
    desired: &DesiredLoadBalancer,
) -> Result<ObservedStatus> {
    call(
        ctx,
        provider,
        &desired.class,
        "ensure",
        provider.ensure(desired),
    )
    .await
}

/// `LoadBalancer::plan`.
pub async fn plan(
    ctx: &Context,
    provider: &Arc<dyn LoadBalancer>,
    desired: &DesiredLoadBalancer,
) -> Result<Plan> {
    call(
        ctx,
        provider,
        &desired.class,
        "plan",
        provider.plan(desired),
    )
    .await
}

/// `LoadBalancer::delete`.
pub async fn delete(
    ctx: &Context,
    provider: &Arc<dyn LoadBalancer>,
    class: &str,
    owner: &Owner,
) -> Result<DeleteOutcome> {
    call(ctx, provider, class, "delete", provider.delete(owner)).await
}

/// `LoadBalancer::list_owned`.
pub async fn list_owned(
    ctx: &Context,
    provider: &Arc<dyn LoadBalancer>,
    class: &str,
) -> Result<Vec<Owner>> {
    call(
        ctx,
        provider,
        class,
        "list_owned",
        provider.list_owned(&ctx.config.cluster_id),
    )
    .await
}

/// The provider for `class`: from its `LoadBalancerClass`, or, when the class
/// is gone, the instance built while it existed (so cleanup can finish).
pub async fn provider_for(ctx: &Context, class: &str) -> Result<Arc<dyn LoadBalancer>> {
    use crate::translate::Source;
    match ctx.stores.lb_class(class) {
        Some(c) => ctx.providers.get(&c).await,
        None => ctx
            .providers
            .cached(class)
            .ok_or_else(|| Error::ClassNotFound(class.to_string())),
    }
}
