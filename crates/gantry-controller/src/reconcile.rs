//! The reconcile of one Service or Ingress: select its class, then either
//! clean up (not Gantry's, or being deleted) or translate -> ensure ->
//! report, migrating from an old class when the class changed.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    sync::Arc,
    time::Instant,
};

use gantry_model::{DesiredLoadBalancer, ObservedStatus};
use kube::{
    ResourceExt,
    runtime::{controller::Action, events::EventType},
};
use tracing::{Span, field, instrument};

use crate::{
    apply,
    conditions::{Wanted, reason_from_category, reasons as cond},
    context::{Context, FINALIZER},
    error::{Error, Result},
    finalize,
    memory::{Ensured, Failed},
    migrate,
    report::{self, reasons},
    status,
    target::Target,
};

/// Event-key prefix of error Events, forgotten after a success so that the
/// same error recurring later is reported again.
const ERROR_KEY: &str = "error:";

/// Reconcile one object (the controller runtime calls this).
#[instrument(skip(obj, ctx), fields(kind = %K::OWNER_KIND.as_str(), namespace, name, class))]
pub async fn reconcile<K: Target>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let kind = K::OWNER_KIND.as_str();
    let span = Span::current();
    span.record(
        "namespace",
        field::display(obj.namespace().unwrap_or_default()),
    );
    span.record("name", field::display(obj.name_any()));
    let _timer = ctx.metrics.reconcile_started(kind);

    let result = run(obj.as_ref(), &ctx).await;
    if let Err(error) = &result {
        ctx.metrics.reconcile_failed(kind, error.category());
        tracing::warn!(%error, "Reconcile failed");
    }
    ctx.metrics.reconcile_finished(
        kind,
        &obj.namespace().unwrap_or_default(),
        &obj.name_any(),
        obj.meta().resource_version.clone(),
    );
    result
}

/// What the runtime does after a failed reconcile: transient errors back off
/// per object (jittered, exponential), permanent ones wait long; object
/// changes retrigger sooner either way.
pub fn error_policy<K: Target>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    if error.is_transient() {
        let uid = obj.uid().unwrap_or_default();
        Action::requeue(ctx.backoff.next(&uid))
    } else {
        Action::requeue(ctx.config.error_requeue)
    }
}

async fn run<K: Target>(obj: &K, ctx: &Context) -> Result<Action> {
    let selected = obj.select(ctx);
    if let Some(class) = &selected {
        Span::current().record("class", field::display(class));
    }
    let deleting = obj.meta().deletion_timestamp.is_some();
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    match selected {
        Some(class) if !deleting => {
            let result = ensure(obj, ctx, &class).await;
            match &result {
                Ok(_) => {
                    if let Some(uid) = obj.uid() {
                        ctx.backoff.reset(&uid);
                        ctx.memory.forget_events(&uid, ERROR_KEY);
                    }
                }
                Err(error) => report_failure(obj, ctx, error).await,
            }
            result
        }
        selected if has_finalizer => {
            obj.release(ctx);
            finalize::cleanup(ctx, obj, selected.as_deref()).await
        }
        _ => {
            obj.release(ctx);
            if let Some(uid) = obj.uid() {
                ctx.memory.forget(&uid);
            }
            Ok(Action::await_change())
        }
    }
}

/// Publish a failure as a Warning Event (once per distinct text) and, for
/// kinds with conditions, as `Ready=False` with a reason naming the cause.
async fn report_failure<K: Target>(obj: &K, ctx: &Context, error: &Error) {
    let reason = match error {
        Error::Translate(_) => cond::INVALID_SPEC.to_string(),
        other => reason_from_category(other.category()),
    };
    let wanted = match error {
        Error::Translate(_)
        | Error::ClassNotFound(_)
        | Error::InvalidClass { .. }
        | Error::ProviderUnavailable { .. }
        | Error::Provider { .. }
        | Error::StillFailing { .. } => Some(Wanted::failed(
            &reason,
            error.to_string(),
            error.is_transient(),
        )),
        // API errors say nothing about the balancer; do not touch status.
        _ => None,
    };
    report::event(
        ctx,
        obj,
        EventType::Warning,
        reasons::SYNC_FAILED,
        "Sync",
        error.to_string(),
        Some(format!("{ERROR_KEY}{error}")),
    )
    .await;
    if let Some(wanted) = wanted
        && let Err(e) = report::write_status(ctx, obj, None, Some(&wanted)).await
    {
        tracing::warn!(error = %e, "Failed to write failure status");
    }
}

fn fingerprint(desired: &DesiredLoadBalancer) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(desired)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

/// The object is Gantry's in `class`: build or confirm its balancer.
async fn ensure<K: Target>(obj: &K, ctx: &Context, class: &str) -> Result<Action> {
    let owner = finalize::owner_of(ctx, obj)?;
    let uid = owner.uid.clone();
    let lb_class = {
        use crate::translate::Source;
        ctx.stores
            .lb_class(class)
            .ok_or_else(|| Error::ClassNotFound(class.to_string()))?
    };
    // An invalid class fails every object of it without a provider call;
    // the class's own status says the same (see `classes`), and a fix
    // re-triggers its objects through the class watch.
    lb_class.spec.validate().map_err(|e| Error::InvalidClass {
        class: class.to_string(),
        message: e.to_string(),
    })?;
    let provider = ctx.providers.get(&lb_class).await?;
    let fetched = obj.fetch(ctx).await?;
    let translated = obj
        .translate(ctx, class, &lb_class.spec, &fetched)
        .map_err(|e| Error::Translate(Box::new(e)))?;
    let generation = obj.meta().generation.unwrap_or_default();
    for warning in &translated.warnings {
        report::event(
            ctx,
            obj,
            EventType::Warning,
            reasons::TRANSLATION_WARNING,
            "Translate",
            warning.clone(),
            Some(format!("warning:{generation}:{warning}")),
        )
        .await;
    }
    let desired = translated.desired;

    // The finalizer goes on before the first provider call, so a balancer
    // can never exist without the finalizer that guarantees its deletion.
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        finalize::add(ctx, obj).await?;
    }

    let observed = ensure_cached(obj, ctx, &provider, class, &desired).await?;

    let old = migrate::old_placements(ctx, &uid, class);
    if !old.is_empty() && !observed.ready {
        // Keep the old address until the new balancer can serve.
        let wanted = Wanted::progressing(
            cond::MIGRATING,
            format!("waiting for the load balancer in class {class:?} to become ready"),
        );
        report::write_status(ctx, obj, None, Some(&wanted)).await?;
        return Ok(Action::requeue(ctx.config.pending_requeue));
    }

    let addresses = status::from_observed(&observed, K::HAS_CONDITIONS);
    let wanted = if observed.ready {
        Wanted::ready()
    } else {
        Wanted::progressing(
            cond::PROVISIONING,
            "the provider reports the load balancer is not ready yet",
        )
    };
    report::write_status(ctx, obj, Some(addresses), Some(&wanted)).await?;

    if !old.is_empty() {
        migrate::finish(ctx, obj, &owner, class, &old).await?;
    }

    Ok(Action::requeue(if observed.ready {
        ctx.config.resync
    } else {
        ctx.config.pending_requeue
    }))
}

/// Call the provider only when needed: when the desired state differs from
/// the last one it confirmed for this object and class, or when a drift
/// check is due (`plan`, and `ensure` only if the plan is not empty).
async fn ensure_cached<K: Target>(
    obj: &K,
    ctx: &Context,
    provider: &Arc<dyn gantry_model::LoadBalancer>,
    class: &str,
    desired: &DesiredLoadBalancer,
) -> Result<ObservedStatus> {
    let uid = &desired.owner.uid;
    let print = fingerprint(desired);
    if let Some(cached) = ctx.memory.ensured(uid, class)
        && cached.fingerprint == print
    {
        if cached.confirmed_at.elapsed() < ctx.config.resync.mul_f64(0.9) {
            return Ok(cached.observed);
        }
        let plan = apply::plan(ctx, provider, desired).await?;
        if plan.is_empty() {
            let observed = cached.observed.clone();
            ctx.memory.set_ensured(
                uid,
                class,
                Ensured {
                    confirmed_at: Instant::now(),
                    ..cached
                },
            );
            return Ok(observed);
        }
        tracing::info!(changes = plan.changes.len(), "Drift detected; re-ensuring");
    }

    // A permanent rejection of this very state is not retried on every
    // resync or on the watch event of our own status write.
    if let Some(f) = ctx.memory.failed(uid, class)
        && f.fingerprint == print
        && f.at.elapsed() < ctx.config.error_requeue
    {
        return Err(Error::StillFailing {
            message: f.message,
            category: f.category,
        });
    }
    report::event(
        ctx,
        obj,
        EventType::Normal,
        reasons::ENSURING,
        "Ensure",
        format!("Ensuring load balancer in class {class:?}"),
        Some(format!("ensuring:{class}:{print}")),
    )
    .await;
    // Recorded before the call: a failed or timed-out ensure may still have
    // created resources, and cleanup must look there.
    ctx.memory.add_placement(uid, class);
    ctx.update_gauges();
    let observed = match apply::ensure(ctx, provider, desired).await {
        Ok(o) => o,
        Err(e) => {
            ctx.memory.forget_ensured(uid, class);
            if !e.is_transient() {
                ctx.memory.set_failed(
                    uid,
                    class,
                    Some(Failed {
                        fingerprint: print,
                        at: Instant::now(),
                        message: e.to_string(),
                        category: e.category(),
                    }),
                );
            }
            return Err(e);
        }
    };
    ctx.memory.set_failed(uid, class, None);
    if observed.ready {
        report::event(
            ctx,
            obj,
            EventType::Normal,
            reasons::ENSURED,
            "Ensure",
            format!("Ensured load balancer in class {class:?}"),
            Some(format!("ensured:{class}:{print}")),
        )
        .await;
        ctx.memory.set_ensured(
            uid,
            class,
            Ensured {
                fingerprint: print,
                observed: observed.clone(),
                confirmed_at: Instant::now(),
            },
        );
    } else {
        ctx.memory.forget_ensured(uid, class);
    }
    Ok(observed)
}
