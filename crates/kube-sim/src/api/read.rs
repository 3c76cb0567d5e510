//! GET and LIST: single objects, lists with selectors, and `limit` +
//! `continue` paging with the real server's 410 for compacted tokens.

use base64::Engine as _;
use serde_json::{Value, json};

use super::Ctx;
use crate::{
    error::ApiError,
    selectors::{FieldSelector, LabelSelector, Selectors},
    store::State,
};

/// Label and field selectors of a request.
pub fn selectors(ctx: &Ctx) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(ctx.query.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""), &ctx.rt)?,
    })
}

/// GET on one object.
pub fn get(st: &State, ctx: &Ctx) -> Result<Value, ApiError> {
    let name = ctx.name()?;
    st.get(&ctx.rt.storage_key(), ctx.ns_key(), name)
        .map(|o| (*o).clone())
        .ok_or_else(|| ApiError::not_found(ctx.gr(), name))
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}\u{0}")});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"]
        .as_str()
        .ok_or_else(bad)?
        .trim_end_matches('\u{0}');
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((rv, ns.to_string(), name.to_string()))
}

/// The matching objects of a LIST and the list's metadata.
struct Selected<'a> {
    items: Vec<&'a std::sync::Arc<Value>>,
    meta: Value,
}

fn select<'a>(st: &'a State, ctx: &'a Ctx) -> Result<Selected<'a>, ApiError> {
    let sel = selectors(ctx)?;
    let key = ctx.rt.storage_key();
    let ns = if ctx.rt.namespaced {
        ctx.namespace.as_deref()
    } else {
        None
    };
    let limit = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut list_rv = st.rv;
    let iter = match ctx.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start_ns, start_name) = decode_continue(token)?;
            if rv < st.floor {
                return Err(ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            list_rv = rv;
            st.iter_after(&key, ns, (start_ns, start_name))
        }
        None => st.iter(&key, ns),
    };
    let mut items = Vec::new();
    let mut last_key = None;
    let mut more = false;
    let mut remaining = 0usize;
    for ((n, name), obj) in iter {
        if !sel.matches(obj) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            more = true;
            remaining += 1;
            continue;
        }
        last_key = Some((n, name));
        items.push(obj);
    }
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if more && let Some((n, name)) = last_key {
        meta["continue"] = json!(encode_continue(list_rv, n, name));
        if ctx.query.get("labelSelector").is_none_or(str::is_empty)
            && ctx.query.get("fieldSelector").is_none_or(str::is_empty)
        {
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(Selected { items, meta })
}

/// LIST: a `<Kind>List` of matching objects at the current resourceVersion.
pub fn list(st: &State, ctx: &Ctx) -> Result<Value, ApiError> {
    let Selected { items, meta } = select(st, ctx)?;
    let items: Vec<Value> = items.into_iter().map(|o| with_version(o, ctx)).collect();
    Ok(json!({
        "kind": format!("{}List", ctx.rt.kind),
        "apiVersion": ctx.rt.api_version(),
        "metadata": meta,
        "items": items,
    }))
}

/// The matching objects of a LIST, taken under the store lock (cheap `Arc`
/// clones) so serializing them can happen after the lock is released.
#[derive(Debug)]
pub struct ListSnapshot {
    items: Vec<std::sync::Arc<Value>>,
    meta: Value,
}

/// Takes the snapshot a LIST answers with.
pub fn list_snapshot(st: &State, ctx: &Ctx) -> Result<ListSnapshot, ApiError> {
    let Selected { items, meta } = select(st, ctx)?;
    Ok(ListSnapshot {
        items: items.into_iter().cloned().collect(),
        meta,
    })
}

/// A LIST serialized straight from the stored objects: no per-object copy
/// unless the served version differs from the stored one.
pub fn list_json(snapshot: ListSnapshot, ctx: &Ctx) -> Result<Vec<u8>, ApiError> {
    let ListSnapshot { items, meta } = snapshot;
    let converts = crate::events::is_events_v1(&ctx.rt) || ctx.rt.custom.is_some();
    let mut out = Vec::with_capacity(256 + items.len() * 1024);
    let head = json!({
        "kind": format!("{}List", ctx.rt.kind),
        "apiVersion": ctx.rt.api_version(),
        "metadata": meta,
    });
    let head = serde_json::to_vec(&head).map_err(|e| ApiError::internal(e.to_string()))?;
    // `{...}` without its closing brace, then `,"items":[...]}`.
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, obj) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let written = if converts {
            serde_json::to_writer(&mut out, &with_version(&obj, ctx))
        } else {
            serde_json::to_writer(&mut out, &*obj)
        };
        written.map_err(|e| ApiError::internal(e.to_string()))?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// A write's answer as served under the requested version (a `Status`
/// passes through).
pub fn present(v: Value, ctx: &Ctx) -> Value {
    let converts = crate::events::is_events_v1(&ctx.rt) || ctx.rt.custom.is_some();
    if converts && v.get("kind").and_then(Value::as_str) == Some(ctx.rt.kind.as_str()) {
        with_version(&v, ctx)
    } else {
        v
    }
}

/// An object as served under the requested version: custom resources get
/// the requested `apiVersion`, stored core Events are converted for the
/// `events.k8s.io` API.
pub fn with_version(obj: &Value, ctx: &Ctx) -> Value {
    if crate::events::is_events_v1(&ctx.rt) {
        return crate::events::from_core(obj);
    }
    let mut v = obj.clone();
    if ctx.rt.custom.is_some() {
        v["apiVersion"] = json!(ctx.rt.api_version());
    }
    v
}
