//! Services: a regional passthrough Network Load Balancer per Service
//! (external or internal per scheme). See [`wanted`] for the shape,
//! [`apply`] for the order of an ensure and [`teardown`] for removal.

mod apply;
mod backend;
mod cx;
mod groups;
mod teardown;
mod wanted;

use gantry_model::{
    ObservedStatus, Owner, Plan, ProviderError, class::GcpSettings, desired::L4Spec,
};

use self::cx::Cx;
use crate::api::Api;

/// The changes `ensure` would make, reading only.
pub async fn plan(
    api: &Api,
    owner: &Owner,
    class: &str,
    cluster_id: &str,
    settings: &GcpSettings,
    spec: &L4Spec,
) -> Result<Plan, ProviderError> {
    let w = wanted::wanted(owner, class, spec, settings)?;
    let cx = Cx::new(api, owner, class, cluster_id, true);
    apply::ensure(&cx, &w).await?;
    Ok(Plan {
        changes: cx.into_changes(),
    })
}

/// Make the Service's balancer match `spec`; its status.
pub async fn ensure(
    api: &Api,
    owner: &Owner,
    class: &str,
    cluster_id: &str,
    settings: &GcpSettings,
    spec: &L4Spec,
) -> Result<ObservedStatus, ProviderError> {
    let w = wanted::wanted(owner, class, spec, settings)?;
    let cx = Cx::new(api, owner, class, cluster_id, false);
    apply::ensure(&cx, &w).await
}

/// Remove the Service's balancer; whether anything was there.
pub async fn delete(
    api: &Api,
    owner: &Owner,
    class: &str,
    cluster_id: &str,
) -> Result<bool, ProviderError> {
    let cx = Cx::new(api, owner, class, cluster_id, false);
    teardown::delete(&cx).await
}

/// Owners of every Service balancer of `cluster_id` in `class`.
pub async fn list_owned(
    api: &Api,
    class: &str,
    cluster_id: &str,
) -> Result<Vec<Owner>, ProviderError> {
    teardown::list_owned(api, class, cluster_id).await
}
