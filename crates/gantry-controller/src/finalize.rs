//! The finalizer and cleanup: a balancer is deleted in every class where it
//! may exist before the finalizer goes, so nothing leaks when an object is
//! deleted or stops being Gantry's.

use gantry_model::Owner;
use kube::{
    ResourceExt,
    api::{Patch, PatchParams},
    runtime::{controller::Action, events::EventType},
};
use serde_json::json;

use crate::{
    apply,
    context::{Context, FINALIZER},
    error::{Error, Result},
    report::{self, reasons},
    target::Target,
};

/// The owner identity of `obj` in the cluster.
pub fn owner_of<K: Target>(ctx: &Context, obj: &K) -> Result<Owner> {
    Ok(Owner {
        cluster_id: ctx.config.cluster_id.clone(),
        kind: K::OWNER_KIND,
        namespace: obj
            .namespace()
            .ok_or(Error::MissingObjectKey(".metadata.namespace"))?,
        name: obj
            .meta()
            .name
            .clone()
            .ok_or(Error::MissingObjectKey(".metadata.name"))?,
        uid: obj.uid().ok_or(Error::MissingObjectKey(".metadata.uid"))?,
    })
}

fn json_patch(value: serde_json::Value) -> Result<json_patch::Patch> {
    serde_json::from_value(value).map_err(Error::SerializePatch)
}

/// Add our finalizer without losing a concurrent edit of the list: on an
/// empty list, a merge patch guarded by the `resourceVersion` we read; on a
/// non-empty one, a JSON patch whose `test` operation fails (and retries)
/// instead of duplicating or dropping an entry.
pub async fn add<K: Target>(ctx: &Context, obj: &K) -> Result<()> {
    let current = obj.finalizers();
    let api = report::api::<K>(ctx, obj)?;
    let name = obj.name_any();
    let pp = PatchParams::default();
    let result = if current.is_empty() {
        let rv = obj
            .meta()
            .resource_version
            .clone()
            .ok_or(Error::MissingObjectKey(".metadata.resourceVersion"))?;
        api.patch(
            &name,
            &pp,
            &Patch::Merge(json!({
                "metadata": { "resourceVersion": rv, "finalizers": [FINALIZER] }
            })),
        )
        .await
    } else {
        let patch = json_patch(json!([
            { "op": "test", "path": "/metadata/finalizers", "value": current },
            { "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER },
        ]))?;
        api.patch(&name, &pp, &Patch::<()>::Json(patch)).await
    };
    result.map_err(Error::AddFinalizer)?;
    Ok(())
}

/// Remove our finalizer, testing that it is still at the index we saw.
pub async fn remove<K: Target>(ctx: &Context, obj: &K) -> Result<()> {
    let Some(index) = obj.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch = json_patch(json!([
        { "op": "test", "path": path, "value": FINALIZER },
        { "op": "remove", "path": path },
    ]))?;
    match report::api::<K>(ctx, obj)?
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::<()>::Json(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: the deletion completed.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::RemoveFinalizer(e)),
    }
}

/// Delete `obj`'s balancers everywhere, clear its status if it still exists
/// as someone else's, then remove the finalizer. `selected` is the class the
/// object currently selects, if any (being deleted while Gantry's).
pub async fn cleanup<K: Target>(ctx: &Context, obj: &K, selected: Option<&str>) -> Result<Action> {
    let owner = owner_of(ctx, obj)?;
    let uid = owner.uid.clone();
    let deleting = obj.meta().deletion_timestamp.is_some();

    let mut classes = ctx.memory.placements(&uid);
    if let Some(class) = selected {
        // The selected class only needs a delete if a provider exists for it:
        // without one, nothing can have been built there.
        if apply::provider_for(ctx, class).await.is_ok() {
            classes.insert(class.to_string());
        }
    }

    report::event(
        ctx,
        obj,
        EventType::Normal,
        reasons::DELETING,
        "Delete",
        format!("Deleting load balancer in {}", list(&classes)),
        Some("deleting".into()),
    )
    .await;

    for class in &classes {
        let result = async {
            let provider = apply::provider_for(ctx, class).await?;
            apply::delete(ctx, &provider, class, &owner).await
        }
        .await;
        match result {
            Ok(outcome) => {
                tracing::info!(class, ?outcome, owner = %owner, "Deleted load balancer");
                ctx.memory.remove_placement(&uid, class);
                // Freed capacity (an address back in the pool): objects that
                // were rejected in this class try again now.
                let waiting = ctx.memory.take_failed_in_class(class);
                ctx.retrigger.uids(&ctx.stores, &waiting);
            }
            Err(error) => {
                report::event(
                    ctx,
                    obj,
                    EventType::Warning,
                    reasons::DELETE_FAILED,
                    "Delete",
                    format!("Deleting load balancer in class {class:?}: {error}"),
                    Some(format!("delete-failed:{error}")),
                )
                .await;
                return Err(error);
            }
        }
    }
    ctx.update_gauges();

    report::event(
        ctx,
        obj,
        EventType::Normal,
        reasons::DELETED,
        "Delete",
        "Deleted load balancer".into(),
        Some("deleted".into()),
    )
    .await;

    if !deleting {
        report::clear_status(ctx, obj).await?;
    }
    remove(ctx, obj).await?;
    ctx.memory.forget(&uid);
    ctx.backoff.reset(&uid);
    Ok(Action::await_change())
}

fn list(classes: &std::collections::BTreeSet<String>) -> String {
    if classes.is_empty() {
        return "no class".into();
    }
    let names: Vec<String> = classes.iter().map(|c| format!("{c:?}")).collect();
    format!("class {}", names.join(", "))
}
