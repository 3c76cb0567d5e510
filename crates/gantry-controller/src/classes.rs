//! Pipeline step "report" for `LoadBalancerClass`es: whether each class is
//! usable, written as its `Accepted` condition (the `Ready` printer column),
//! and which class wins when several are marked default.
//!
//! A class is accepted when `spec.validate()` passes and the provider
//! factory can build an adapter for it. Services and Ingresses of a class
//! that is not accepted fail with the same message and no provider call
//! (see [`crate::reconcile`]); the class watch re-triggers them when the
//! class changes.
//!
//! Default classes: Services without `spec.loadBalancerClass` use the
//! controller's `--default-class` flag when it is set, else the
//! alphabetically first class marked `spec.default: true`; an IngressClass
//! of Gantry's without parameters uses that alphabetically first marked
//! class ([`crate::translate::default_class`]). When several classes are
//! marked, each gets a `Default` condition (True on the winner) and a
//! Warning Event naming the winner.
//!
//! Runs on the leader only (it writes), as one pass over every class per
//! class change; status is server-side applied to `/status` only when it
//! differs from what the class carries, ignoring `lastTransitionTime`.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, channel::mpsc::UnboundedReceiver};
use gantry_model::LoadBalancerClass;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Condition, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::events::{Event, EventType},
};
use serde_json::json;

use crate::{
    conditions::{self, Wanted},
    context::Context,
    error::{Error, Result},
    translate,
};

/// Metrics kind label of class passes.
pub const KIND: &str = "LoadBalancerClass";

/// Condition types on a class.
pub mod types {
    /// Whether the class can be used.
    pub const ACCEPTED: &str = "Accepted";
    /// Present only while several classes are marked default: True on the
    /// one that wins.
    pub const DEFAULT: &str = "Default";
    /// Every type Gantry owns on a class.
    pub const ALL: [&str; 2] = [ACCEPTED, DEFAULT];
}

/// Condition reasons.
pub mod reasons {
    /// Valid settings and a provider to serve them.
    pub const ACCEPTED: &str = "Accepted";
    /// `spec.validate()` failed.
    pub const INVALID_SETTINGS: &str = "InvalidSettings";
    /// The provider factory cannot build an adapter for the class.
    pub const PROVIDER_UNAVAILABLE: &str = "ProviderUnavailable";
    /// Several classes are marked `spec.default: true`.
    pub const MULTIPLE_DEFAULTS: &str = "MultipleDefaults";
}

/// Event reasons on a class.
pub mod events {
    /// The class became not accepted (or its problem changed).
    pub const INVALID: &str = "InvalidLoadBalancerClass";
    /// The class became accepted.
    pub const ACCEPTED: &str = "Accepted";
    /// Several classes are marked default; names the winner.
    pub const MULTIPLE_DEFAULTS: &str = "MultipleDefaultClasses";
}

/// Run class passes, one per burst of triggers, until `rx` closes. A pass
/// with a failed write is retried with backoff even without a trigger.
pub async fn run(ctx: Arc<Context>, mut rx: UnboundedReceiver<()>) {
    const BACKOFF_KEY: &str = "loadbalancerclasses";
    let mut retry: Option<Duration> = None;
    loop {
        let wait_retry = async {
            match retry {
                Some(d) => tokio::time::sleep(d).await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.next() => if msg.is_none() { return },
            () = wait_retry => {}
        }
        // Coalesce a burst of changes (a relist delivers every class).
        while rx.try_recv().is_ok() {}
        if sync_all(&ctx).await {
            ctx.backoff.reset(BACKOFF_KEY);
            retry = None;
        } else {
            retry = Some(ctx.backoff.next(BACKOFF_KEY));
        }
    }
}

/// One pass over every class; returns whether every write succeeded.
pub async fn sync_all(ctx: &Context) -> bool {
    let classes: Vec<LoadBalancerClass> = ctx
        .stores
        .lb_classes
        .state()
        .iter()
        .map(|c| (**c).clone())
        .collect();
    let marked = translate::marked_default(&classes);
    let mut ok = true;
    for class in &classes {
        let name = class.name_any();
        let _timer = ctx.metrics.reconcile_started(KIND);
        if let Err(error) = sync_one(ctx, class, &marked).await {
            ctx.metrics.reconcile_failed(KIND, error.category());
            tracing::warn!(%error, class = name, "Class status pass failed");
            ok = false;
        }
        ctx.metrics
            .reconcile_finished(KIND, "", &name, class.resource_version());
    }
    ok
}

/// `(accepted, reason, message)` of a class.
async fn assess(ctx: &Context, class: &LoadBalancerClass) -> (bool, &'static str, String) {
    if let Err(e) = class.spec.validate() {
        return (false, reasons::INVALID_SETTINGS, e.to_string());
    }
    match ctx.providers.get(class).await {
        Ok(_) => (
            true,
            reasons::ACCEPTED,
            format!(
                "provider {:?} serves this class",
                class.spec.provider.as_str()
            ),
        ),
        Err(Error::ProviderUnavailable { message, .. }) => (
            false,
            reasons::PROVIDER_UNAVAILABLE,
            format!(
                "spec.provider: {:?}: {message}",
                class.spec.provider.as_str()
            ),
        ),
        Err(other) => (false, reasons::PROVIDER_UNAVAILABLE, other.to_string()),
    }
}

/// The `Default` condition of `name`, when several classes are marked.
fn default_entry(
    ctx: &Context,
    class: &LoadBalancerClass,
    marked: &[String],
) -> Option<(&'static str, bool, String, String)> {
    if marked.len() < 2 || !class.spec.default {
        return None;
    }
    let first = &marked[0];
    let list = marked
        .iter()
        .map(|m| format!("{m:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (wins, message) = match ctx.config.default_class.as_deref() {
        Some(flag) => (
            class.name_any() == flag,
            format!(
                "several LoadBalancerClasses set spec.default: true ({list}); Services without \
                 a class use {flag:?}, named by the controller's --default-class flag; \
                 IngressClasses without parameters use {first:?}, the alphabetically first"
            ),
        ),
        None => (
            class.name_any() == *first,
            format!(
                "several LoadBalancerClasses set spec.default: true ({list}); {first:?} is the \
                 default, as the alphabetically first (the controller's --default-class flag \
                 would override this for Services)"
            ),
        ),
    };
    Some((
        types::DEFAULT,
        wins,
        reasons::MULTIPLE_DEFAULTS.into(),
        message,
    ))
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Bring one class's status up to date, publishing Events for transitions.
async fn sync_one(ctx: &Context, class: &LoadBalancerClass, marked: &[String]) -> Result<()> {
    let name = class
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingObjectKey(".metadata.name"))?;
    let existing: Vec<Condition> = class
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let (accepted, reason, message) = assess(ctx, class).await;
    let mut entries = vec![(types::ACCEPTED, accepted, reason.to_string(), message)];
    entries.extend(default_entry(ctx, class, marked));
    let wanted = Wanted { entries };
    let ours = wanted.build(&existing, class.meta().generation, Timestamp::now());
    // A type we own that is no longer wanted (the default conflict ended)
    // must go, which `up_to_date` alone would not notice.
    let stale = existing.iter().any(|e| {
        types::ALL.contains(&e.type_.as_str()) && !ours.iter().any(|o| o.type_ == e.type_)
    });
    if conditions::up_to_date(&existing, &ours) && !stale {
        return Ok(());
    }
    // Conditions of other writers are kept: the list is replaced as a whole.
    let mut all: Vec<Condition> = existing
        .iter()
        .filter(|c| !types::ALL.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    all.extend(ours.iter().cloned());
    let body = json!({
        "apiVersion": LoadBalancerClass::api_version(&()),
        "kind": LoadBalancerClass::kind(&()),
        "metadata": { "name": name },
        "status": { "conditions": all },
    });
    Api::<LoadBalancerClass>::all(ctx.client.clone())
        .patch_status(
            &name,
            &PatchParams::apply(&ctx.config.field_manager).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(Error::PatchStatus)?;
    tracing::info!(class = name, accepted, reason, "Class status written");
    publish_transitions(ctx, class, &existing, &ours).await;
    Ok(())
}

/// Events for what changed between `before` and `after` (written already).
async fn publish_transitions(
    ctx: &Context,
    class: &LoadBalancerClass,
    before: &[Condition],
    after: &[Condition],
) {
    let mut out = Vec::new();
    if let Some(now) = find(after, types::ACCEPTED) {
        let prev = find(before, types::ACCEPTED);
        let changed = prev.is_none_or(|p| p.status != now.status || p.message != now.message);
        if now.status == "False" && changed {
            out.push((EventType::Warning, events::INVALID, now.message.clone()));
        } else if now.status == "True" && prev.is_none_or(|p| p.status != "True") {
            out.push((EventType::Normal, events::ACCEPTED, now.message.clone()));
        }
    }
    if let Some(now) = find(after, types::DEFAULT)
        && find(before, types::DEFAULT).is_none_or(|p| p.message != now.message)
    {
        out.push((
            EventType::Warning,
            events::MULTIPLE_DEFAULTS,
            now.message.clone(),
        ));
    }
    for (type_, reason, note) in out {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Validate".into(),
            secondary: None,
        };
        if let Err(error) = ctx.recorder.publish(&ev, &class.object_ref(&())).await {
            tracing::warn!(%error, reason, "Failed to publish event");
        }
    }
}
