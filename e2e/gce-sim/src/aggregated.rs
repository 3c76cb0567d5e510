//! Aggregated lists (`GET projects/p/aggregated/{collection}`): every
//! scope of a collection in one response, keyed `global`, `regions/r` or
//! `zones/z`, with the real API's `NO_RESULTS_ON_PAGE` warning for empty
//! scopes.

use serde_json::{Map, Value, json};

use crate::{
    catalog::{self, REGIONS, ScopeKind},
    error::ApiError,
    list::{self, ListQuery},
    resources::{self, Target},
    store::State,
};

/// Scope keys of a collection, in key order.
fn scopes(kinds: &[ScopeKind]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in kinds {
        match kind {
            ScopeKind::Global => out.push("global".to_owned()),
            ScopeKind::Region => out.extend(REGIONS.iter().map(|(r, _)| format!("regions/{r}"))),
            ScopeKind::Zone => out.extend(
                REGIONS
                    .iter()
                    .flat_map(|(_, zones)| zones.iter().map(|z| format!("zones/{z}"))),
            ),
        }
    }
    out.sort();
    out
}

fn empty_scope(scope: &str) -> Value {
    json!({"warning": {
        "code": "NO_RESULTS_ON_PAGE",
        "message": format!("There are no results for scope '{scope}' on this page."),
        "data": [{"key": "scope", "value": scope}],
    }})
}

/// The aggregated list of one collection, filtered and paged across scopes.
pub fn list(
    state: &State,
    project: &str,
    collection: &str,
    query: Option<&str>,
    base: &str,
) -> Result<Value, ApiError> {
    let id = format!("projects/{project}/aggregated/{collection}");
    if collection == "operations" {
        return operations(state, project, &id, query, base);
    }
    let coll = catalog::collection(collection).ok_or_else(|| ApiError::not_found(&id))?;
    let keys = scopes(coll.scopes);
    let mut items = Vec::new();
    for key in &keys {
        let t = Target {
            project,
            scope: format!("projects/{project}/{key}"),
            collection: coll,
        };
        for item in resources::list(state, &t, base) {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("");
            items.push((format!("{key}/{name}"), item));
        }
    }
    respond(items, &keys, collection, coll.kind, &id, query, base)
}

/// Operations of every scope.
fn operations(
    state: &State,
    project: &str,
    id: &str,
    query: Option<&str>,
    base: &str,
) -> Result<Value, ApiError> {
    let keys = scopes(&[ScopeKind::Global, ScopeKind::Region, ScopeKind::Zone]);
    let prefix = format!("projects/{project}/");
    let mut items: Vec<(String, Value)> = state
        .operations
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, op)| {
            let scope = op.scope.strip_prefix(&prefix).unwrap_or("global");
            let key = format!("{scope}/{}", op.name);
            (key, op.render(state.operation_delay, base))
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    respond(
        items,
        &keys,
        "operations",
        "compute#operation",
        id,
        query,
        base,
    )
}

/// Pages keyed items and groups them by scope.
fn respond(
    items: Vec<(String, Value)>,
    keys: &[String],
    collection: &str,
    kind: &str,
    id: &str,
    query: Option<&str>,
    base: &str,
) -> Result<Value, ApiError> {
    let page = list::page_by(items, &ListQuery::parse(query))?;
    let mut grouped = Map::new();
    for key in keys {
        grouped.insert(key.clone(), empty_scope(key));
    }
    for (key, item) in page.items {
        let scope = key.rsplit_once('/').map(|(s, _)| s).unwrap_or("");
        let slot = grouped.entry(scope.to_owned()).or_insert_with(|| json!({}));
        if slot.get("warning").is_some() {
            *slot = json!({ collection: [] });
        }
        if let Some(Value::Array(list)) = slot.get_mut(collection) {
            list.push(item);
        }
    }
    let mut out = json!({
        "kind": format!("{kind}AggregatedList"),
        "id": id,
        "items": grouped,
        "selfLink": format!("{base}{id}"),
    });
    if let Some(next) = page.next {
        out["nextPageToken"] = json!(next);
    }
    Ok(out)
}
