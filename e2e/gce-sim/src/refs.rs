//! Referential integrity: links in request bodies are resolved and must
//! name existing resources, and a resource still linked from another one
//! cannot be deleted (`resourceInUseByAnotherResource`).

use serde_json::Value;

use crate::{
    catalog,
    error::ApiError,
    links,
    store::{Resource, State},
};

/// Keys whose text is never a link to check: free text, secrets, and
/// fields naming the resource's own location.
const TEXT_KEYS: &[&str] = &[
    "name",
    "description",
    "labels",
    "certificate",
    "privateKey",
    "_privateKey",
    "IPAddress",
    "address",
];

/// Keys holding links that are not dependencies (own location, networks
/// the emulator does not model).
const NON_DEPENDENCY_KEYS: &[&str] = &[
    "selfLink",
    "region",
    "zone",
    "users",
    "network",
    "subnetwork",
    "machineType",
    "_members",
];

/// Rewrites every link in a request body into a stored link, checking that
/// links to emulated collections, zones and regions exist.
pub fn normalize(state: &State, project: &str, value: &mut Value) -> Result<(), ApiError> {
    match value {
        Value::String(s) => {
            if s.contains(links::MARK) {
                return Err(ApiError::parse("Control characters are not allowed."));
            }
            if let Some(rel) = links::parse(s, project) {
                check_exists(state, &rel)?;
                *value = links::stored(&rel);
            }
        }
        Value::Array(items) => {
            for item in items {
                normalize(state, project, item)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if !TEXT_KEYS.contains(&key.as_str()) {
                    normalize(state, project, item)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_exists(state: &State, rel: &str) -> Result<(), ApiError> {
    let segs: Vec<&str> = rel.split('/').collect();
    // projects/p/zones/z or projects/p/regions/r, with or without a tail.
    match segs.get(2).copied() {
        Some("zones") if catalog::region_of_zone(segs[3]).is_none() => {
            return Err(ApiError::not_found(&segs[..4].join("/")));
        }
        Some("regions") if !catalog::region_exists(segs[3]) => {
            return Err(ApiError::not_found(&segs[..4].join("/")));
        }
        _ => {}
    }
    if let Some((_, collection, _)) = links::split(rel)
        && segs.len() >= 5
        && catalog::collection(collection).is_some()
        && !state.resources.contains_key(rel)
    {
        return Err(ApiError::not_found(rel));
    }
    state.check_ready(rel)
}

/// Relative paths of the emulated resources `resource` depends on.
pub fn dependencies(resource: &Resource) -> Vec<String> {
    let mut out = Vec::new();
    for (key, value) in resource {
        if !NON_DEPENDENCY_KEYS.contains(&key.as_str()) && !key.starts_with('_') {
            collect(value, &mut out);
        }
    }
    out
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(_) => {
            if let Some(rel) = links::as_rel(value)
                && let Some((_, collection, _)) = links::split(rel)
                && catalog::collection(collection).is_some()
                && rel.split('/').count() >= 5
            {
                out.push(rel.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                if !NON_DEPENDENCY_KEYS.contains(&key.as_str()) {
                    collect(v, out);
                }
            }
        }
        _ => {}
    }
}

/// Relative paths of the resources using `rel`, in path order.
pub fn users(state: &State, rel: &str) -> Vec<String> {
    let mut users: Vec<String> = state
        .resources
        .iter()
        .filter(|(k, r)| *k != rel && dependencies(r).iter().any(|d| d == rel))
        .map(|(k, _)| k.clone())
        .collect();
    // An address is used by the forwarding rules in its scope holding its IP.
    if let Some((scope, "addresses", _)) = links::split(rel)
        && let Some(ip) = state
            .resources
            .get(rel)
            .and_then(|a| a.get("address"))
            .and_then(Value::as_str)
    {
        users.extend(
            state
                .collection(scope, "forwardingRules")
                .filter(|(_, r)| r.get("IPAddress").and_then(Value::as_str) == Some(ip))
                .map(|(k, _)| k.clone()),
        );
    }
    users
}
