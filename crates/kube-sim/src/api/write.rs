//! Create, update and patch (all four patch kinds), sharing one commit path
//! that enforces what the real server enforces on every write: immutable
//! identity, the status/main split, finalizer rules, per-kind admission,
//! generation bumps, managedFields, no-op detection and resourceVersion
//! preconditions.

use std::{borrow::Cow, sync::Arc};

use serde_json::{Value, json};

use super::{Ctx, admit, delete};
use crate::{
    error::{ApiError, Cause, Gr},
    object,
    patch::{self, PatchKind, managed},
    store::State,
};

/// Checks the namespace of a namespaced write exists and accepts new objects.
fn check_namespace(st: &State, ctx: &Ctx) -> Result<(), ApiError> {
    if !ctx.rt.namespaced {
        return Ok(());
    }
    let ns = ctx.ns_key();
    match st.get("/namespaces", "", ns) {
        None => Err(ApiError::not_found(
            Gr {
                group: "",
                resource: "namespaces",
            },
            ns,
        )),
        Some(n) if object::is_deleting(&n) => Err(ApiError::forbidden(
            ctx.gr(),
            "",
            format!(
                "{} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ctx.rt.plural
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn check_kind(ctx: &Ctx, body: &Value) -> Result<(), ApiError> {
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != ctx.rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            body.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            ctx.rt.api_version()
        )));
    }
    Ok(())
}

fn writer<'a>(
    ctx: &'a Ctx,
    manager: &'a str,
    now: &'a str,
    api_version: &'a str,
) -> managed::Writer<'a> {
    managed::Writer {
        manager,
        api_version,
        subresource: ctx.subresource.as_deref(),
        scope: ctx.scope(),
        now,
    }
}

/// The object as the request's API version shows it.
fn served<'a>(ctx: &Ctx, stored: &'a Value) -> Cow<'a, Value> {
    if crate::events::is_events_v1(&ctx.rt) {
        Cow::Owned(crate::events::from_core(stored))
    } else {
        Cow::Borrowed(stored)
    }
}

/// A request body in the form objects of this resource are stored in.
fn to_storage(ctx: &Ctx, body: Value) -> Value {
    if crate::events::is_events_v1(&ctx.rt) {
        crate::events::to_core(&body)
    } else {
        body
    }
}

/// POST: creates an object.
pub fn create(st: &mut State, ctx: &Ctx, body: Value) -> Result<(u16, Value), ApiError> {
    create_with(st, ctx, body, None)
}

/// Creates an object; `applied` carries managedFields computed by server-side apply.
fn create_with(
    st: &mut State,
    ctx: &Ctx,
    mut body: Value,
    applied: Option<Value>,
) -> Result<(u16, Value), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format",
        ));
    }
    check_kind(ctx, &body)?;
    if applied.is_none() {
        body = to_storage(ctx, body);
    }
    let url_ns = ctx.ns_key().to_string();
    let body_ns = object::namespace(&body).to_string();
    if ctx.rt.namespaced && !body_ns.is_empty() && body_ns != url_ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let now = object::now();
    let manager = ctx.manager();
    let api_version = ctx.rt.api_version();
    let stored = {
        let meta = object::meta_mut(&mut body);
        if meta
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let name = object::generate_name(prefix);
                    meta.insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &ctx.rt.group,
                        &ctx.rt.kind,
                        "",
                        vec![Cause::required("metadata.name")],
                    ));
                }
            }
        }
        if ctx.rt.namespaced {
            meta.insert("namespace".into(), json!(url_ns));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now));
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            meta.remove(k);
        }
        if ctx.rt.tracks_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        body["apiVersion"] = json!(ctx.rt.storage_api_version());
        body["kind"] = json!(ctx.rt.kind);
        body
    };
    let mut obj = stored;
    let name = object::name(&obj).to_string();
    check_namespace(st, ctx)?;
    if st.get(&ctx.rt.storage_key(), ctx.ns_key(), &name).is_some() {
        return Err(ApiError::already_exists(ctx.gr(), &name));
    }
    if admit::resets_status_on_create(ctx)
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    let dry_run = ctx.query.dry_run();
    admit::admit(st, ctx, None, &mut obj, dry_run)?;
    match applied {
        Some(entries) => {
            object::meta_mut(&mut obj).insert("managedFields".into(), entries);
        }
        None => managed::record_update(None, &mut obj, &writer(ctx, &manager, &now, &api_version)),
    }
    if dry_run {
        return Ok((201, obj));
    }
    let stored = st.insert(&ctx.rt.storage_key(), ctx.ns_key(), &name, obj);
    admit::after_store(st, ctx, &stored);
    Ok((201, (*stored).clone()))
}

/// PUT: replaces an object (main resource or status).
pub fn update(st: &mut State, ctx: &Ctx, body: Value) -> Result<(u16, Value), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format",
        ));
    }
    check_kind(ctx, &body)?;
    let name = ctx.name()?.to_string();
    if !object::name(&body).is_empty() && object::name(&body) != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object::name(&body)
        )));
    }
    let old = st
        .get(&ctx.rt.storage_key(), ctx.ns_key(), &name)
        .ok_or_else(|| ApiError::not_found(ctx.gr(), &name))?;
    let rv = object::resource_version(&body);
    if !rv.is_empty() && rv != object::resource_version(&old) {
        return Err(ApiError::stale(ctx.gr(), &name));
    }
    commit(st, ctx, &old, to_storage(ctx, body), Mode::Update)
}

/// PATCH: applies one of the four patch kinds.
pub fn patch(
    st: &mut State,
    ctx: &Ctx,
    kind: PatchKind,
    raw: &[u8],
) -> Result<(u16, Value), ApiError> {
    let name = ctx.name()?.to_string();
    let body = patch::parse_body(kind, raw)?;
    if kind == PatchKind::Strategic && !ctx.rt.strategic {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let existing = st.get(&ctx.rt.storage_key(), ctx.ns_key(), &name);
    if kind == PatchKind::Apply {
        let manager = ctx.query.get("fieldManager").filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
        })?;
        check_kind(ctx, &body)?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: apply patch must be an object",
            ));
        }
        let now = object::now();
        let api_version = ctx.rt.api_version();
        let w = writer(ctx, manager, &now, &api_version);
        let force = ctx.query.flag("force");
        let Some(old) = existing else {
            if ctx.is_status() {
                return Err(ApiError::not_found(ctx.gr(), &name));
            }
            let mut obj = managed::apply(None, &body, &w, force)
                .map_err(|c| ApiError::apply_conflict(ctx.gr(), &name, &c))?;
            obj = to_storage(ctx, obj);
            object::meta_mut(&mut obj).insert("name".into(), json!(name));
            // Ownership belongs to the applier, not to an Update entry for the create.
            let entries = obj
                .pointer("/metadata/managedFields")
                .cloned()
                .unwrap_or_else(|| json!([]));
            return create_with(st, ctx, obj, Some(entries));
        };
        let rv = object::resource_version(&body);
        if !rv.is_empty() && rv != object::resource_version(&old) {
            return Err(ApiError::stale(ctx.gr(), &name));
        }
        let merged = managed::apply(Some(&served(ctx, &old)), &body, &w, force)
            .map_err(|c| ApiError::apply_conflict(ctx.gr(), &name, &c))?;
        return commit(st, ctx, &old, to_storage(ctx, merged), Mode::Apply);
    }
    let old = existing.ok_or_else(|| ApiError::not_found(ctx.gr(), &name))?;
    // Patches are written against the served form of the object.
    let patched = to_storage(ctx, patch::apply_simple(kind, &served(ctx, &old), &body)?);
    let want_rv = object::resource_version(&patched);
    if want_rv != object::resource_version(&old) {
        return Err(ApiError::stale(ctx.gr(), &name));
    }
    commit(st, ctx, &old, patched, Mode::Update)
}

/// How `commit` records field ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The object already carries apply-computed managedFields.
    Apply,
    /// Record an Update entry for the writer.
    Update,
}

/// The shared commit path for updates and patches.
fn commit(
    st: &mut State,
    ctx: &Ctx,
    old: &Arc<Value>,
    mut new: Value,
    mode: Mode,
) -> Result<(u16, Value), ApiError> {
    let name = object::name(old).to_string();
    if ctx.is_status() {
        // Only `.status` moves through the status subresource.
        let status = new.get("status").cloned();
        let managed = new.pointer("/metadata/managedFields").cloned();
        new = (**old).clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        if mode == Mode::Apply
            && let Some(m) = managed
        {
            object::meta_mut(&mut new).insert("managedFields".into(), m);
        }
    } else if ctx.rt.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    if !new.is_object() {
        return Err(ApiError::bad_request("the object must be a JSON object"));
    }
    new["apiVersion"] = json!(ctx.rt.storage_api_version());
    new["kind"] = json!(ctx.rt.kind);
    {
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let meta = object::meta_mut(&mut new);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(k) {
                Some(v) => {
                    meta.insert(k.into(), v.clone());
                }
                None => {
                    meta.remove(k);
                }
            }
        }
        if mode == Mode::Update
            && !meta.contains_key("managedFields")
            && let Some(m) = old_meta.get("managedFields")
        {
            meta.insert("managedFields".into(), m.clone());
        }
    }
    if object::is_deleting(old) {
        let before = object::finalizers(old);
        let added: std::collections::BTreeSet<String> = object::finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            // Sorted and in Go syntax, as the real message prints them.
            let listed: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
            return Err(ApiError::invalid(
                &ctx.rt.group,
                &ctx.rt.kind,
                &name,
                vec![Cause::forbidden(
                    "metadata.finalizers",
                    &format!(
                        "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        listed.join(", ")
                    ),
                )],
            ));
        }
    }
    let dry_run = ctx.query.dry_run();
    if !ctx.is_status() {
        admit::admit(st, ctx, Some(old), &mut new, dry_run)?;
    }
    if ctx.rt.tracks_generation() && spec_changed(old, &new, ctx.rt.has_status) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        object::meta_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    if mode == Mode::Update {
        let now = object::now();
        let manager = ctx.manager();
        let api_version = ctx.rt.api_version();
        managed::record_update(
            Some(old),
            &mut new,
            &writer(ctx, &manager, &now, &api_version),
        );
    }
    if new == **old {
        return Ok((200, new));
    }
    if dry_run {
        return Ok((200, new));
    }
    let key = ctx.rt.storage_key();
    let ns = ctx.ns_key().to_string();
    if object::is_deleting(&new) && object::finalizers(&new).is_empty() {
        // Removing the last finalizer of a deleting object deletes it in the
        // same step; watchers see one DELETED carrying the final state.
        let last = delete::finalize(
            st,
            &ctx.rt.group,
            &ctx.rt.plural,
            &key,
            &ns,
            &name,
            Some(new),
        );
        return Ok((200, last.map(|v| (*v).clone()).unwrap_or(Value::Null)));
    }
    let stored = st.replace(&key, &ns, &name, new);
    admit::after_store(st, ctx, &stored);
    Ok((200, (*stored).clone()))
}

/// Whether anything outside metadata (and status, for kinds with a status subresource) changed.
fn spec_changed(old: &Value, new: &Value, has_status: bool) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("metadata");
            if has_status {
                o.remove("status");
            }
        }
        v
    };
    strip(old) != strip(new)
}
