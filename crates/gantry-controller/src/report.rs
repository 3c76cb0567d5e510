//! Pipeline step "report": Events for user-visible transitions and errors,
//! and status (addresses, conditions) written by server-side apply only when
//! it differs from what the object already carries.

use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType},
};
use serde_json::{Value, json};

use crate::{
    conditions::{self, Wanted},
    context::Context,
    error::{Error, Result},
    status::{self, Address},
    target::Target,
};

/// Event reasons.
pub mod reasons {
    /// A provider call to create or update a balancer starts.
    pub const ENSURING: &str = "EnsuringLoadBalancer";
    /// The balancer matches the spec.
    pub const ENSURED: &str = "EnsuredLoadBalancer";
    /// Translation or a provider call failed.
    pub const SYNC_FAILED: &str = "SyncLoadBalancerFailed";
    /// A translation warning (unknown annotation, ignored field).
    pub const TRANSLATION_WARNING: &str = "TranslationWarning";
    /// The balancer is being deleted.
    pub const DELETING: &str = "DeletingLoadBalancer";
    /// The balancer is deleted.
    pub const DELETED: &str = "DeletedLoadBalancer";
    /// Deleting failed.
    pub const DELETE_FAILED: &str = "DeleteLoadBalancerFailed";
    /// The object moves to another class.
    pub const MIGRATING: &str = "MigratingLoadBalancer";
    /// The old class's balancer is gone.
    pub const MIGRATED: &str = "MigratedLoadBalancer";
}

/// Publish an Event about `obj`. With `once_key`, an Event with the same key
/// is published only once until the key is forgotten (see
/// [`crate::memory::Memory::forget_events`]). Failures are logged only: an
/// Event is never worth failing a reconcile for.
pub async fn event<K: Target>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
    once_key: Option<String>,
) {
    if let (Some(key), Some(uid)) = (once_key, obj.uid())
        && !ctx.memory.first_event(&uid, &key)
    {
        return;
    }
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(%error, reason, "Failed to publish event");
    }
}

/// Write `addresses` (`None` keeps what the object has) and, for kinds with
/// conditions, `wanted`, if they differ from the object. Returns whether it
/// patched.
pub async fn write_status<K: Target>(
    ctx: &Context,
    obj: &K,
    addresses: Option<Vec<Address>>,
    wanted: Option<&Wanted>,
) -> Result<bool> {
    let current = status::normalise(obj.addresses());
    let addresses = addresses.unwrap_or_else(|| current.clone());
    let existing = obj.conditions();
    let conditions = match (K::HAS_CONDITIONS, wanted) {
        (true, Some(w)) => Some(w.build(&existing, obj.meta().generation, Timestamp::now())),
        // Keep re-applying our current conditions: SSA would remove fields
        // this manager applied before and omits now.
        (true, None) => Some(
            existing
                .iter()
                .filter(|c| conditions::types::ALL.contains(&c.type_.as_str()))
                .cloned()
                .collect(),
        ),
        (false, _) => None,
    };
    let conditions_same = match (&conditions, wanted) {
        (Some(c), Some(_)) => conditions::up_to_date(&existing, c),
        _ => true,
    };
    if current == addresses && conditions_same {
        return Ok(false);
    }
    let mut status = serde_json::Map::new();
    status.insert(
        "loadBalancer".into(),
        if addresses.is_empty() {
            json!({})
        } else {
            json!({ "ingress": status::to_json(&addresses) })
        },
    );
    if let Some(c) = conditions {
        status.insert(
            "conditions".into(),
            serde_json::to_value(c).map_err(Error::SerializePatch)?,
        );
    }
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": { "name": obj.name_any(), "namespace": obj.namespace() },
        "status": Value::Object(status),
    });
    api::<K>(ctx, obj)?
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(&ctx.config.field_manager).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(Error::PatchStatus)?;
    Ok(true)
}

/// Remove Gantry's addresses and conditions from an object that is no longer
/// Gantry's (a Service turned ClusterIP must not keep the IP).
pub async fn clear_status<K: Target>(ctx: &Context, obj: &K) -> Result<bool> {
    let existing = obj.conditions();
    let foreign = conditions::foreign(&existing);
    if obj.addresses().is_empty() && foreign.len() == existing.len() {
        return Ok(false);
    }
    let mut status = json!({ "loadBalancer": { "ingress": null } });
    if K::HAS_CONDITIONS {
        status["conditions"] = if foreign.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(foreign).map_err(Error::SerializePatch)?
        };
    }
    api::<K>(ctx, obj)?
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(Error::PatchStatus)?;
    Ok(true)
}

/// The namespaced API for `obj`'s kind.
pub fn api<K: Target>(ctx: &Context, obj: &K) -> Result<Api<K>> {
    let ns = obj
        .namespace()
        .ok_or(Error::MissingObjectKey(".metadata.namespace"))?;
    Ok(Api::namespaced(ctx.client.clone(), &ns))
}
