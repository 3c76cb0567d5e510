//! Class migration: when an object's class changes, the new class's balancer
//! is built first, status switches to it once it is ready, and only then is
//! the old class's balancer deleted. Until the new one is ready, users keep
//! reaching the old address.

use std::collections::BTreeSet;

use gantry_model::Owner;
use kube::runtime::events::EventType;

use crate::{
    apply,
    context::Context,
    error::Result,
    report::{self, reasons},
    target::Target,
};

/// Classes other than `current` where `uid` may still have a balancer.
pub fn old_placements(ctx: &Context, uid: &str, current: &str) -> BTreeSet<String> {
    let mut set = ctx.memory.placements(uid);
    set.remove(current);
    set
}

/// Delete the balancers of `owner` in `old` classes (the new one is ready and
/// status already points at it).
pub async fn finish<K: Target>(
    ctx: &Context,
    obj: &K,
    owner: &Owner,
    current: &str,
    old: &BTreeSet<String>,
) -> Result<()> {
    for class in old {
        report::event(
            ctx,
            obj,
            EventType::Normal,
            reasons::MIGRATING,
            "Migrate",
            format!(
                "Load balancer in class {current:?} is ready; deleting the one in class {class:?}"
            ),
            Some(format!("migrating:{class}->{current}")),
        )
        .await;
        let provider = apply::provider_for(ctx, class).await?;
        let outcome = apply::delete(ctx, &provider, class, owner).await?;
        tracing::info!(
            from = class,
            to = current,
            ?outcome,
            "Migrated load balancer"
        );
        ctx.memory.remove_placement(&owner.uid, class);
        report::event(
            ctx,
            obj,
            EventType::Normal,
            reasons::MIGRATED,
            "Migrate",
            format!("Moved load balancer from class {class:?} to {current:?}"),
            Some(format!("migrated:{class}->{current}")),
        )
        .await;
    }
    ctx.update_gauges();
    Ok(())
}
