//! The `scale` subresource (`autoscaling/v1 Scale`) of Deployments,
//! ReplicaSets, StatefulSets and ReplicationControllers: a view of the
//! parent's `spec.replicas`, `status.replicas` and label selector. Reads
//! build the view; writes (PUT, or a patch applied to the view) set the
//! parent's `spec.replicas` through the normal update path, so
//! resourceVersion preconditions, generation bumps and watches behave as for
//! any other write.

use serde_json::{Value, json};

use crate::{
    api::{Ctx, write},
    error::{ApiError, Cause},
    object,
    patch::{self, PatchKind},
    registry::ResourceType,
    store::State,
};

/// Whether a resource serves `/scale`.
pub fn supports(rt: &ResourceType) -> bool {
    matches!(
        (rt.group.as_str(), rt.plural.as_str()),
        ("apps", "deployments" | "replicasets" | "statefulsets") | ("", "replicationcontrollers")
    )
}

/// The label selector string of a parent, as `metav1.LabelSelectorAsSelector`
/// prints it: requirements sorted by key.
fn selector_string(rt: &ResourceType, obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    let mut reqs: Vec<(String, String)> = Vec::new();
    let labels = if rt.plural == "replicationcontrollers" {
        sel.as_object()
    } else {
        sel["matchLabels"].as_object()
    };
    for (k, v) in labels.into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("").to_string();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            _ => format!("!{key}"),
        };
        reqs.push((key, text));
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// The Scale view of a parent object.
pub fn view(rt: &ResourceType, obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let mut m = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    let mut spec = json!({});
    if let Some(r) = obj["spec"]["replicas"].as_i64().filter(|r| *r != 0) {
        spec["replicas"] = json!(r);
    }
    let mut status = json!({"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0)});
    let selector = selector_string(rt, obj);
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": spec,
        "status": status,
    })
}

fn parent(st: &State, ctx: &Ctx) -> Result<std::sync::Arc<Value>, ApiError> {
    let name = ctx.name()?;
    st.get(&ctx.rt.storage_key(), ctx.ns_key(), name)
        .ok_or_else(|| ApiError::not_found(ctx.gr(), name))
}

/// GET `.../<name>/scale`.
pub fn get(st: &State, ctx: &Ctx) -> Result<Value, ApiError> {
    let obj = parent(st, ctx)?;
    Ok(view(&ctx.rt, &obj))
}

/// PUT `.../<name>/scale` with a Scale body.
pub fn update(st: &mut State, ctx: &Ctx, body: Value) -> Result<(u16, Value), ApiError> {
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != "Scale"
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version (autoscaling/v1)",
            body.get("apiVersion").and_then(Value::as_str).unwrap_or("")
        )));
    }
    let old = parent(st, ctx)?;
    let name = object::name(&old).to_string();
    let rv = object::resource_version(&body);
    if !rv.is_empty() && rv != object::resource_version(&old) {
        return Err(ApiError::stale(ctx.gr(), &name));
    }
    let replicas = &body["spec"]["replicas"];
    let n = match replicas {
        Value::Null => 0,
        v => v
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| ApiError::bad_request(format!("spec.replicas: invalid value {v}")))?,
    };
    if n < 0 {
        return Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            &name,
            vec![Cause::invalid(
                "spec.replicas",
                &json!(n),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut new = (*old).clone();
    new["spec"]["replicas"] = json!(n);
    let (code, stored) = write::update(st, ctx, new)?;
    Ok((code, view(&ctx.rt, &stored)))
}

/// PATCH `.../<name>/scale`: the patch applies to the Scale view.
pub fn patch(
    st: &mut State,
    ctx: &Ctx,
    kind: PatchKind,
    raw: &[u8],
) -> Result<(u16, Value), ApiError> {
    if kind == PatchKind::Apply {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json",
        ));
    }
    let body = patch::parse_body(kind, raw)?;
    let current = get(st, ctx)?;
    let patched = patch::apply_simple(kind, &current, &body)?;
    update(st, ctx, patched)
}
