//! Per-kind admission: the defaults, validation and side effects the real
//! server applies to particular kinds (Services, Namespaces, CRDs, custom
//! resources, Pods), and the clean-up when such objects go away.

use serde_json::{Value, json};

use super::Ctx;
use crate::{crd, error::ApiError, object, services, store::State};

/// Defaults, validates and allocates `new` before it is stored.
pub fn admit(
    st: &mut State,
    ctx: &Ctx,
    old: Option<&Value>,
    new: &mut Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let rt = &ctx.rt;
    if let Some(info) = &rt.custom {
        if let Some(schema) = &info.schema {
            crd::default_and_prune(schema, new);
        }
        return Ok(());
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => services::admit(&mut st.alloc, old, new, dry_run),
        ("", "namespaces") => {
            let spec = new
                .as_object_mut()
                .map(|o| o.entry("spec").or_insert_with(|| json!({})));
            if let Some(spec) = spec.and_then(Value::as_object_mut) {
                spec.entry("finalizers")
                    .or_insert_with(|| json!(["kubernetes"]));
            }
            if old.is_none()
                && let Some(o) = new.as_object_mut()
            {
                o.insert("status".into(), json!({"phase": "Active"}));
            }
            if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                let name = meta.get("name").cloned().unwrap_or(Value::Null);
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), name);
                }
            }
            Ok(())
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let name = object::name(new).to_string();
            crd::types_for(new).map_err(|causes| {
                ApiError::invalid(
                    "apiextensions.k8s.io",
                    "CustomResourceDefinition",
                    &name,
                    causes,
                )
            })?;
            let status = crd::status_for(new, &object::now());
            let keep_conditions = old
                .and_then(|o| o.get("status"))
                .filter(|s| s["acceptedNames"] == status["acceptedNames"]);
            if let Some(o) = new.as_object_mut() {
                o.insert("status".into(), keep_conditions.cloned().unwrap_or(status));
            }
            Ok(())
        }
        ("", "pods") if old.is_none() => {
            if let Some(o) = new.as_object_mut() {
                o.insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": "BestEffort"}),
                );
            }
            Ok(())
        }
        ("apps", "deployments" | "replicasets" | "statefulsets") => {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert(json!(1));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether create resets `.status` for this kind (the real server ignores
/// status on create for kinds with a status subresource, Nodes excepted).
pub fn resets_status_on_create(ctx: &Ctx) -> bool {
    ctx.rt.has_status
        && !matches!(
            (ctx.rt.group.as_str(), ctx.rt.plural.as_str()),
            ("", "nodes")
        )
}

/// Side effects after an object was stored.
pub fn after_store(st: &mut State, ctx: &Ctx, obj: &Value) {
    if ctx.rt.group == "apiextensions.k8s.io"
        && ctx.rt.plural == "customresourcedefinitions"
        && !object::is_deleting(obj)
    {
        register_crd(st, obj);
    }
}

/// Serves the resources a CRD defines.
pub fn register_crd(st: &mut State, obj: &Value) {
    if let Ok(types) = crd::types_for(obj) {
        let group = obj
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let plural = obj
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        st.registry.set_custom(&group, &plural, types);
    }
}

/// Side effects after an object was finally removed.
pub fn after_remove(st: &mut State, group: &str, plural: &str, obj: &Value) {
    match (group, plural) {
        ("", "services") => services::release(&mut st.alloc, obj),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let g = obj
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or("");
            let p = obj
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or("");
            st.registry.remove_custom(g, p);
        }
        _ => {}
    }
}
