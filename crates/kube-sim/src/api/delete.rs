//! DELETE and deletecollection: preconditions, finalizers and
//! deletionTimestamp, namespace termination, CRD clean-up, and owner-reference
//! garbage collection (dependents of a removed owner are deleted unless the
//! request orphans them).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Ctx, admit, read};
use crate::{error::ApiError, object, store::State};

const CRD_KEY: &str = "apiextensions.k8s.io/customresourcedefinitions";
const CRD_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Delete options from the query string or the `DeleteOptions` body.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy`: `Orphan`, `Background` or `Foreground`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Reads options from the query and an optional JSON body.
    pub fn from_request(ctx: &Ctx, body: &[u8]) -> Self {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut propagation = parsed
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| ctx.query.get("propagationPolicy").map(str::to_string));
        if propagation.is_none()
            && parsed.get("orphanDependents").and_then(Value::as_bool) == Some(true)
        {
            propagation = Some("Orphan".into());
        }
        let dry_run = ctx.query.dry_run()
            || parsed
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        DeleteOptions {
            propagation,
            uid: parsed
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
            resource_version: parsed
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
            dry_run,
        }
    }
}

/// A successful deletion answer: the object while finalizers hold it, or a
/// `Status` once it is gone (like the real server for most kinds).
fn success_status(ctx: &Ctx, obj: &Value) -> Value {
    let mut details =
        json!({"name": object::name(obj), "kind": ctx.rt.plural, "uid": object::uid(obj)});
    if !ctx.rt.group.is_empty() {
        details["group"] = json!(ctx.rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// DELETE on one object.
pub fn delete(st: &mut State, ctx: &Ctx, opts: &DeleteOptions) -> Result<(u16, Value), ApiError> {
    let name = ctx.name()?.to_string();
    let key = ctx.rt.storage_key();
    let ns = ctx.ns_key().to_string();
    let obj = st
        .get(&key, &ns, &name)
        .ok_or_else(|| ApiError::not_found(ctx.gr(), &name))?;
    if let Some(uid) = &opts.uid
        && uid != object::uid(&obj)
    {
        return Err(ApiError::conflict(
            ctx.gr(),
            &name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::uid(&obj)
            ),
        ));
    }
    if let Some(rv) = &opts.resource_version
        && rv != object::resource_version(&obj)
    {
        return Err(ApiError::conflict(
            ctx.gr(),
            &name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                object::resource_version(&obj)
            ),
        ));
    }
    if opts.dry_run {
        return Ok((200, (*obj).clone()));
    }
    let orphan = opts.propagation.as_deref() == Some("Orphan");
    match delete_at(st, &ctx.rt.group, &ctx.rt.plural, &key, &ns, &name, orphan) {
        Deleted::Pending(o) => Ok((200, (*o).clone())),
        Deleted::Gone(o) => Ok((200, success_status(ctx, &o))),
        Deleted::Missing => Err(ApiError::not_found(ctx.gr(), &name)),
    }
}

/// deletecollection on a list path (honours label and field selectors).
pub fn delete_collection(
    st: &mut State,
    ctx: &Ctx,
    opts: &DeleteOptions,
) -> Result<(u16, Value), ApiError> {
    let selectors = read::selectors(ctx)?;
    let key = ctx.rt.storage_key();
    let ns = if ctx.rt.namespaced {
        ctx.namespace.clone()
    } else {
        None
    };
    let targets: Vec<(String, String)> = st
        .iter(&key, ns.as_deref())
        .filter(|(_, o)| selectors.matches(o))
        .map(|((n, name), _)| (n.clone(), name.clone()))
        .collect();
    let mut items = Vec::new();
    for (n, name) in targets {
        if opts.dry_run {
            continue;
        }
        let orphan = opts.propagation.as_deref() == Some("Orphan");
        match delete_at(st, &ctx.rt.group, &ctx.rt.plural, &key, &n, &name, orphan) {
            Deleted::Pending(o) | Deleted::Gone(o) => items.push(read::with_version(&o, ctx)),
            Deleted::Missing => {}
        }
    }
    Ok((
        200,
        json!({"kind": format!("{}List", ctx.rt.kind), "apiVersion": ctx.rt.api_version(), "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
    ))
}

/// The outcome of deleting one object.
pub enum Deleted {
    /// Finalizers keep it; deletionTimestamp set.
    Pending(Arc<Value>),
    /// Removed.
    Gone(Arc<Value>),
    /// Not there.
    Missing,
}

fn plural_of(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Deletes one stored object: marks it when finalizers (or the namespace and
/// CRD clean-up) hold it, removes it otherwise.
pub fn delete_at(
    st: &mut State,
    group: &str,
    plural: &str,
    key: &str,
    ns: &str,
    name: &str,
    orphan: bool,
) -> Deleted {
    let Some(obj) = st.get(key, ns, name) else {
        return Deleted::Missing;
    };
    let is_namespace = key == "/namespaces";
    let is_crd = key == CRD_KEY;
    let has_custom_objects = is_crd && crd_has_objects(st, &obj);
    if !object::finalizers(&obj).is_empty() || is_namespace || has_custom_objects {
        let mut marked = (*obj).clone();
        if !object::is_deleting(&obj) {
            let meta = object::meta_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(object::now()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            if has_custom_objects {
                let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = fins.as_array_mut()
                    && !a.iter().any(|f| f == CRD_FINALIZER)
                {
                    a.push(json!(CRD_FINALIZER));
                }
            }
            if is_namespace {
                marked["status"] = json!({"phase": "Terminating"});
            }
            let stored = st.replace(key, ns, name, marked);
            if is_namespace {
                for (k, n, nm) in st.locations_in_namespace(name) {
                    let (g, p) = plural_of(&k);
                    let (g, p) = (g.to_string(), p.to_string());
                    delete_at(st, &g, &p, &k, &n, &nm, false);
                }
                if let Some(done) = try_finish_namespace(st, name) {
                    return Deleted::Gone(done);
                }
            }
            if is_crd {
                for (k, n, nm) in custom_locations(st, &stored) {
                    let (g, p) = plural_of(&k);
                    let (g, p) = (g.to_string(), p.to_string());
                    delete_at(st, &g, &p, &k, &n, &nm, false);
                }
                if let Some(done) = try_finish_crd(st, name) {
                    return Deleted::Gone(done);
                }
            }
            return match st.get(key, ns, name) {
                Some(o) => Deleted::Pending(o),
                None => Deleted::Gone(stored),
            };
        }
        return Deleted::Pending(obj);
    }
    match finalize_with(st, group, plural, key, ns, name, None, orphan) {
        Some(o) => Deleted::Gone(o),
        None => Deleted::Missing,
    }
}

/// Removes an object for good and runs the follow-ups: allocator release,
/// CRD unregistration, garbage collection, and completing a terminating
/// namespace or CRD that was waiting for it.
pub fn finalize(
    st: &mut State,
    group: &str,
    plural: &str,
    key: &str,
    ns: &str,
    name: &str,
    last: Option<Value>,
) -> Option<Arc<Value>> {
    finalize_with(st, group, plural, key, ns, name, last, false)
}

#[allow(clippy::too_many_arguments)]
fn finalize_with(
    st: &mut State,
    group: &str,
    plural: &str,
    key: &str,
    ns: &str,
    name: &str,
    last: Option<Value>,
    orphan: bool,
) -> Option<Arc<Value>> {
    let removed = st.remove(key, ns, name, last)?;
    admit::after_remove(st, group, plural, &removed);
    if !orphan {
        collect_garbage(st, object::uid(&removed));
    }
    if !ns.is_empty()
        && st
            .get("/namespaces", "", ns)
            .is_some_and(|n| object::is_deleting(&n))
    {
        try_finish_namespace(st, ns);
    }
    if removed
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|a| a.contains('/'))
        && group != "apiextensions.k8s.io"
    {
        let crd_name = format!("{plural}.{group}");
        if st
            .get(CRD_KEY, "", &crd_name)
            .is_some_and(|c| object::is_deleting(&c))
        {
            try_finish_crd(st, &crd_name);
        }
    }
    Some(removed)
}

fn collect_garbage(st: &mut State, uid: &str) {
    if uid.is_empty() {
        return;
    }
    for (k, n, nm) in st.dependents_of(uid) {
        let Some(dep) = st.get(&k, &n, &nm) else {
            continue;
        };
        // A dependent survives while any of its owners still exists.
        if State::owner_uids(&dep).iter().any(|o| st.uid_exists(o)) {
            continue;
        }
        let (g, p) = plural_of(&k);
        let (g, p) = (g.to_string(), p.to_string());
        delete_at(st, &g, &p, &k, &n, &nm, false);
    }
}

fn try_finish_namespace(st: &mut State, ns: &str) -> Option<Arc<Value>> {
    if !st.namespace_is_empty(ns) {
        return None;
    }
    st.remove("/namespaces", "", ns, None)
}

fn custom_locations(st: &State, crd: &Value) -> Vec<(String, String, String)> {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let key = format!("{group}/{plural}");
    st.iter(&key, None)
        .map(|((n, nm), _)| (key.clone(), n.clone(), nm.clone()))
        .collect()
}

fn crd_has_objects(st: &State, crd: &Value) -> bool {
    !custom_locations(st, crd).is_empty()
}

fn try_finish_crd(st: &mut State, name: &str) -> Option<Arc<Value>> {
    let crd = st.get(CRD_KEY, "", name)?;
    if crd_has_objects(st, &crd) {
        return None;
    }
    let others: Vec<String> = object::finalizers(&crd)
        .into_iter()
        .filter(|f| f != CRD_FINALIZER)
        .collect();
    if !others.is_empty() {
        let mut updated = (*crd).clone();
        object::meta_mut(&mut updated).insert("finalizers".into(), json!(others));
        st.replace(CRD_KEY, "", name, updated);
        return None;
    }
    let removed = st.remove(CRD_KEY, "", name, None)?;
    admit::after_remove(
        st,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &removed,
    );
    Some(removed)
}
