//! The standard methods on stored resources: insert, get, list, delete,
//! patch and update, with the checks the real API makes before accepting
//! a mutation.

use serde_json::{Value, json};

use crate::{
    catalog::{self, Collection},
    defaults,
    error::ApiError,
    links, refs,
    store::{Resource, State},
    validate,
};

/// The collection a call addresses.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Project id.
    pub project: &'a str,
    /// Scope path: `projects/p/global`, `projects/p/regions/r`, `projects/p/zones/z`.
    pub scope: String,
    /// The collection.
    pub collection: &'static Collection,
}

impl Target<'_> {
    /// Whether the scope is global.
    pub fn global(&self) -> bool {
        self.scope.ends_with("/global")
    }

    /// The relative path of a named item.
    pub fn rel(&self, name: &str) -> String {
        format!("{}/{}/{}", self.scope, self.collection.name, name)
    }
}

/// An accepted mutation, for the Operation that reports it.
#[derive(Debug, Clone)]
pub struct Mutation {
    /// Relative path of the mutated resource.
    pub target: String,
    /// Its id.
    pub target_id: u64,
    /// `operationType`.
    pub operation_type: &'static str,
}

/// Reads the id of a stored resource.
pub fn id_of(resource: &Resource) -> u64 {
    resource
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub(crate) fn object(body: Value) -> Result<Resource, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::parse("The request body must be a JSON object.")),
    }
}

pub(crate) fn normalized(
    state: &State,
    project: &str,
    body: Resource,
) -> Result<Resource, ApiError> {
    let mut value = Value::Object(body);
    refs::normalize(state, project, &mut value)?;
    object(value)
}

/// `insert`.
pub fn insert(state: &mut State, t: &Target<'_>, body: Value) -> Result<Mutation, ApiError> {
    let mut body = object(body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::required("resource.name"))?
        .to_owned();
    defaults::check_name(&name)?;
    let rel = t.rel(&name);
    if state.resources.contains_key(&rel) {
        return Err(ApiError::already_exists(&rel));
    }
    defaults::strip_output_only(&mut body);
    if t.collection.name == "forwardingRules" {
        defaults::resolve_ip_address(state, t.project, &mut body)?;
    }
    let mut body = normalized(state, t.project, body)?;
    validate::common(&t.scope, t.collection.name, &body)?;
    defaults::collection_rules(state, t.collection, t.project, t.global(), &mut body)?;
    defaults::server_fields(state, t.collection, &t.scope, &rel, &mut body, None);
    let target_id = id_of(&body);
    state.resources.insert(rel.clone(), body);
    Ok(Mutation {
        target: rel,
        target_id,
        operation_type: "insert",
    })
}

/// `get`: the stored resource, or `404 notFound`.
pub fn get<'s>(state: &'s State, t: &Target<'_>, name: &str) -> Result<&'s Resource, ApiError> {
    let rel = t.rel(name);
    state
        .resources
        .get(&rel)
        .ok_or_else(|| ApiError::not_found(&rel))
}

/// The JSON of a stored resource as clients see it: links under `base`,
/// hidden fields dropped, computed fields (address `status`/`users`,
/// instance group `size`) filled in.
pub fn render(state: &State, rel: &str, resource: &Resource, base: &str) -> Value {
    let mut out = resource.clone();
    if let Some((_, "addresses", _)) = links::split(rel) {
        let users = refs::users(state, rel);
        if users.is_empty() {
            out.insert("status".into(), json!("RESERVED"));
        } else {
            out.insert("status".into(), json!("IN_USE"));
            let users: Vec<Value> = users.iter().map(|u| links::stored(u)).collect();
            out.insert("users".into(), Value::Array(users));
        }
    }
    if let Some(members) = resource.get("_members").and_then(Value::as_array) {
        out.insert("size".into(), json!(members.len()));
    }
    let mut out = Value::Object(out);
    links::render(&mut out, base);
    out
}

/// Every item of a collection, rendered, name-sorted.
pub fn list(state: &State, t: &Target<'_>, base: &str) -> Vec<Value> {
    state
        .collection(&t.scope, t.collection.name)
        .map(|(rel, r)| render(state, rel, r, base))
        .collect()
}

/// `delete`: refused while another resource links to this one.
pub fn delete(state: &mut State, t: &Target<'_>, name: &str) -> Result<Mutation, ApiError> {
    let rel = t.rel(name);
    let target_id = id_of(get(state, t, name)?);
    if t.collection.name == "instances" {
        // Deleting an instance drops it from its unmanaged groups, as the real API does.
        for resource in state.resources.values_mut() {
            if let Some(Value::Array(members)) = resource.get_mut("_members") {
                members.retain(|m| links::as_rel(m) != Some(&rel));
            }
        }
    } else if let Some(user) = refs::users(state, &rel).first() {
        return Err(ApiError::in_use(t.collection.type_name, &rel, user));
    }
    state.resources.remove(&rel);
    Ok(Mutation {
        target: rel,
        target_id,
        operation_type: "delete",
    })
}

/// The fingerprint check of `patch` and `update`: resources that have a
/// fingerprint need the current one in the body.
fn check_fingerprint(current: &Resource, body: &Resource) -> Result<(), ApiError> {
    if !same_fingerprint(current.get("fingerprint"), body.get("fingerprint")) {
        return Err(ApiError::condition_not_met(
            "Supplied fingerprint does not match current metadata fingerprint.",
        ));
    }
    Ok(())
}

/// Compares fingerprints as bytes: clients may send them in standard or
/// URL-safe base64 (apitools-based clients re-encode `bytes` fields URL-safe).
pub fn same_fingerprint(current: Option<&Value>, sent: Option<&Value>) -> bool {
    let canonical = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(|s| s.replace('-', "+").replace('_', "/"))
    };
    match (canonical(current), canonical(sent)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `patch` (JSON merge patch semantics) or `update` (replacement).
pub fn modify(
    state: &mut State,
    t: &Target<'_>,
    name: &str,
    body: Value,
    replace: bool,
) -> Result<Mutation, ApiError> {
    let allowed = if replace {
        t.collection.update
    } else {
        t.collection.patch
    };
    if !allowed {
        return Err(ApiError::bad_request(format!(
            "The {} collection does not support this method.",
            t.collection.name
        )));
    }
    let rel = t.rel(name);
    let current = get(state, t, name)?.clone();
    let mut body = object(body)?;
    if t.collection.fingerprint {
        check_fingerprint(&current, &body)?;
    }
    if let Some(sent) = body.get("name").and_then(Value::as_str)
        && sent != name
    {
        return Err(ApiError::invalid_field(
            "resource.name",
            sent,
            "The name of a resource cannot be changed.",
        ));
    }
    defaults::strip_output_only(&mut body);
    if t.collection.name == "forwardingRules" {
        defaults::resolve_ip_address(state, t.project, &mut body)?;
    }
    let body = normalized(state, t.project, body)?;
    let mut merged = if replace {
        let mut fresh = body;
        fresh.insert("name".into(), json!(name));
        fresh
    } else {
        let mut merged = Value::Object(current.clone());
        json_patch::merge(&mut merged, &Value::Object(body));
        object(merged)?
    };
    validate::common(&t.scope, t.collection.name, &merged)?;
    defaults::collection_rules(state, t.collection, t.project, t.global(), &mut merged)?;
    let kept = (
        current.get("id").cloned().unwrap_or(Value::Null),
        current
            .get("creationTimestamp")
            .cloned()
            .unwrap_or(Value::Null),
    );
    defaults::server_fields(state, t.collection, &t.scope, &rel, &mut merged, Some(kept));
    let target_id = id_of(&merged);
    state.resources.insert(rel.clone(), merged);
    Ok(Mutation {
        target: rel,
        target_id,
        operation_type: if replace { "update" } else { "patch" },
    })
}

/// Whether a scope path names an existing zone or region (global always).
pub fn scope_exists(scope: &str) -> bool {
    let segs: Vec<&str> = scope.split('/').collect();
    match segs.as_slice() {
        [_, _, "global"] => true,
        [_, _, "zones", zone] => catalog::region_of_zone(zone).is_some(),
        [_, _, "regions", region] => catalog::region_exists(region),
        _ => false,
    }
}
