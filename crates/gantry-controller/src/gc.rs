//! Orphan collection: balancers whose owner no longer exists are deleted.
//!
//! Safety rules (deleting a live balancer is an outage): runs only after
//! every store has synced; an owner counts as gone only when it is missing
//! from the store AND a live GET confirms it (404, or an object of that name
//! with another UID); any GET error aborts the round; and only owners the
//! provider itself listed as ours are ever deleted.

use gantry_model::{Owner, OwnerKind};
use k8s_openapi::api::{core::v1::Service, networking::v1::Ingress};
use kube::{Api, Resource, ResourceExt, runtime::reflector::ObjectRef};

use crate::{
    apply,
    context::Context,
    error::{Error, Result},
    watch::class_names,
};

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Owners whose balancer was deleted, with the class.
    pub deleted: Vec<(String, Owner)>,
    /// Classes whose listing failed (skipped this round).
    pub skipped_classes: Vec<String>,
}

fn in_store(ctx: &Context, owner: &Owner) -> bool {
    match owner.kind {
        OwnerKind::Service => ctx
            .stores
            .services
            .get(&ObjectRef::<Service>::new(&owner.name).within(&owner.namespace))
            .is_some_and(|o| o.uid().as_deref() == Some(owner.uid.as_str())),
        OwnerKind::Ingress => ctx
            .stores
            .ingresses
            .get(&ObjectRef::<Ingress>::new(&owner.name).within(&owner.namespace))
            .is_some_and(|o| o.uid().as_deref() == Some(owner.uid.as_str())),
    }
}

async fn live_uid<K>(ctx: &Context, owner: &Owner) -> Result<Option<String>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    Api::<K>::namespaced(ctx.client.clone(), &owner.namespace)
        .get_opt(&owner.name)
        .await
        .map(|o| o.and_then(|o| o.uid()))
        .map_err(|source| Error::Get {
            what: format!("{owner}"),
            source,
        })
}

/// Whether the owner is confirmed gone by the API server itself.
async fn confirmed_gone(ctx: &Context, owner: &Owner) -> Result<bool> {
    let uid = match owner.kind {
        OwnerKind::Service => live_uid::<Service>(ctx, owner).await?,
        OwnerKind::Ingress => live_uid::<Ingress>(ctx, owner).await?,
    };
    Ok(uid.as_deref() != Some(owner.uid.as_str()))
}

/// One collection round over every class.
pub async fn collect(ctx: &Context) -> Result<GcReport> {
    let mut report = GcReport::default();
    for class in class_names(&ctx.stores) {
        let owners = match async {
            let provider = apply::provider_for(ctx, &class).await?;
            let owners = apply::list_owned(ctx, &provider, &class).await?;
            Ok::<_, Error>((provider, owners))
        }
        .await
        {
            Ok(x) => x,
            Err(error) => {
                tracing::warn!(class, %error, "Orphan collection skipped a class");
                report.skipped_classes.push(class);
                continue;
            }
        };
        let (provider, owners) = owners;
        for owner in owners {
            if owner.cluster_id != ctx.config.cluster_id || in_store(ctx, &owner) {
                continue;
            }
            // A GET error aborts the whole round: never delete on doubt.
            if !confirmed_gone(ctx, &owner).await? {
                continue;
            }
            apply::delete(ctx, &provider, &class, &owner).await?;
            tracing::info!(class, owner = %owner, uid = owner.uid, "Deleted orphaned load balancer");
            ctx.memory.remove_placement(&owner.uid, &class);
            report.deleted.push((class.clone(), owner));
        }
    }
    ctx.update_gauges();
    Ok(report)
}
