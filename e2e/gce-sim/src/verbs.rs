//! Custom methods (`POST .../{name}/{verb}`): labels, targets, URL maps,
//! certificates, target pool instances and unmanaged instance groups.

use serde_json::{Map, Value, json};

use crate::{
    error::ApiError,
    links,
    resources::{self, Mutation, Target, id_of},
    store::{State, label_fingerprint},
    validate,
};

/// What a custom method answers.
pub enum VerbOutcome {
    /// A mutation, answered with an Operation.
    Mutation(Mutation),
    /// A read, answered with this JSON (links already rendered).
    Json(Value),
}

/// Dispatches a custom method.
pub fn call(
    state: &mut State,
    t: &Target<'_>,
    name: &str,
    verb: &str,
    body: Value,
    base: &str,
) -> Result<VerbOutcome, ApiError> {
    let coll = t.collection.name;
    let body = resources::object(body)?;
    let mutation = match (coll, verb) {
        (_, "setLabels") if t.collection.labels => set_labels(state, t, name, body)?,
        ("forwardingRules", "setTarget") => set_fields(state, t, name, body, &["target"], verb)?,
        ("targetHttpProxies" | "targetHttpsProxies", "setUrlMap") => {
            set_fields(state, t, name, body, &["urlMap"], verb)?
        }
        ("targetHttpsProxies", "setSslCertificates") => {
            set_fields(state, t, name, body, &["sslCertificates"], verb)?
        }
        ("targetPools", "addInstance" | "removeInstance") => members(
            state,
            t,
            name,
            body,
            "instances",
            verb == "addInstance",
            verb,
        )?,
        ("instanceGroups", "addInstances" | "removeInstances") => {
            let add = verb == "addInstances";
            members(state, t, name, body, "_members", add, verb)?
        }
        ("instanceGroups", "setNamedPorts") => set_named_ports(state, t, name, body)?,
        ("instanceGroups", "listInstances") => {
            return list_instances(state, t, name, base).map(VerbOutcome::Json);
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "The {coll} collection has no method '{verb}'."
            )));
        }
    };
    Ok(VerbOutcome::Mutation(mutation))
}

fn done(state: &State, rel: String, operation_type: &'static str) -> Mutation {
    let target_id = state.resources.get(&rel).map(id_of).unwrap_or(0);
    Mutation {
        target: rel,
        target_id,
        operation_type,
    }
}

fn refresh_fingerprint(state: &mut State, t: &Target<'_>, rel: &str) {
    if t.collection.fingerprint {
        let fp = state.fingerprint(rel);
        if let Some(r) = state.resources.get_mut(rel) {
            r.insert("fingerprint".into(), json!(fp));
        }
    }
}

fn set_labels(
    state: &mut State,
    t: &Target<'_>,
    name: &str,
    body: Map<String, Value>,
) -> Result<Mutation, ApiError> {
    let current = resources::get(state, t, name)?;
    if !resources::same_fingerprint(
        current.get("labelFingerprint"),
        body.get("labelFingerprint"),
    ) {
        return Err(ApiError::condition_not_met(
            "Labels fingerprint either invalid or resource labels have changed",
        ));
    }
    let labels = body.get("labels").cloned().unwrap_or_else(|| json!({}));
    validate::check_labels(Some(&labels))?;
    let rel = t.rel(name);
    let fingerprint = label_fingerprint(Some(&labels));
    if let Some(r) = state.resources.get_mut(&rel) {
        r.insert("labels".into(), labels);
        r.insert("labelFingerprint".into(), json!(fingerprint));
    }
    Ok(done(state, rel, "setLabels"))
}

/// Replaces the named fields (links checked and normalised).
fn set_fields(
    state: &mut State,
    t: &Target<'_>,
    name: &str,
    body: Map<String, Value>,
    fields: &[&str],
    verb: &str,
) -> Result<Mutation, ApiError> {
    resources::get(state, t, name)?;
    let mut picked = Map::new();
    for field in fields {
        match body.get(*field) {
            Some(v) if !v.is_null() => {
                picked.insert((*field).to_owned(), v.clone());
            }
            _ => return Err(ApiError::required(field)),
        }
    }
    let picked = resources::normalized(state, t.project, picked)?;
    let rel = t.rel(name);
    if let Some(r) = state.resources.get_mut(&rel) {
        r.extend(picked);
    }
    refresh_fingerprint(state, t, &rel);
    let operation_type = match verb {
        "setTarget" => "setTarget",
        "setUrlMap" => "setUrlMap",
        _ => "setSslCertificates",
    };
    Ok(done(state, rel, operation_type))
}

/// Adds or removes instance links (`{"instances":[{"instance": link}]}`).
fn members(
    state: &mut State,
    t: &Target<'_>,
    name: &str,
    body: Map<String, Value>,
    field: &str,
    add: bool,
    verb: &str,
) -> Result<Mutation, ApiError> {
    resources::get(state, t, name)?;
    let rel = t.rel(name);
    let entries = body
        .get("instances")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut wanted = Vec::new();
    for entry in &entries {
        let link = entry.get("instance").and_then(Value::as_str).unwrap_or("");
        let instance = links::parse(link, t.project)
            .ok_or_else(|| ApiError::invalid_field("instances.instance", link, "Invalid link."))?;
        if !state.resources.contains_key(&instance) {
            return Err(ApiError::not_found(&instance));
        }
        state.check_ready(&instance)?;
        // Unmanaged groups hold instances of their own zone only.
        if field == "_members" && !instance.starts_with(&format!("{}/", t.scope)) {
            return Err(ApiError::invalid_field(
                "instances.instance",
                link,
                "The instance must be in the same zone as the instance group.",
            ));
        }
        wanted.push(instance);
    }
    let resource = state
        .resources
        .get_mut(&rel)
        .ok_or_else(|| ApiError::not_found(&rel))?;
    let list = resource
        .entry(field.to_owned())
        .or_insert_with(|| json!([]));
    let Value::Array(list) = list else {
        return Err(ApiError::bad_request("Corrupt member list."));
    };
    for instance in wanted {
        let present = list.iter().any(|m| links::as_rel(m) == Some(&instance));
        match (add, present) {
            (true, true) if field == "_members" => {
                return Err(ApiError {
                    code: 400,
                    reason: "memberAlreadyExists",
                    domain: "global",
                    message: format!("The resource '{instance}' is already a member of '{rel}'"),
                });
            }
            (true, false) => list.push(links::stored(&instance)),
            (false, true) => list.retain(|m| links::as_rel(m) != Some(&instance)),
            // Removing a non-member is accepted (the real API reports it on the Operation).
            _ => {}
        }
    }
    refresh_fingerprint(state, t, &rel);
    let operation_type = match verb {
        "addInstance" => "addInstance",
        "removeInstance" => "removeInstance",
        "addInstances" => "compute.instanceGroups.addInstances",
        _ => "compute.instanceGroups.removeInstances",
    };
    Ok(done(state, rel, operation_type))
}

fn set_named_ports(
    state: &mut State,
    t: &Target<'_>,
    name: &str,
    body: Map<String, Value>,
) -> Result<Mutation, ApiError> {
    let current = resources::get(state, t, name)?;
    if body.contains_key("fingerprint")
        && !resources::same_fingerprint(current.get("fingerprint"), body.get("fingerprint"))
    {
        return Err(ApiError::condition_not_met(
            "Supplied fingerprint does not match current metadata fingerprint.",
        ));
    }
    let ports = body.get("namedPorts").cloned().unwrap_or_else(|| json!([]));
    let rel = t.rel(name);
    if let Some(r) = state.resources.get_mut(&rel) {
        r.insert("namedPorts".into(), ports);
    }
    refresh_fingerprint(state, t, &rel);
    Ok(done(state, rel, "compute.instanceGroups.setNamedPorts"))
}

fn list_instances(
    state: &State,
    t: &Target<'_>,
    name: &str,
    base: &str,
) -> Result<Value, ApiError> {
    let group = resources::get(state, t, name)?;
    let items: Vec<Value> = group
        .get("_members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let status = links::as_rel(m)
                .and_then(|rel| state.resources.get(rel))
                .and_then(|i| i.get("status"))
                .cloned()
                .unwrap_or_else(|| json!("RUNNING"));
            json!({"instance": m, "status": status})
        })
        .collect();
    let rel = t.rel(name);
    let mut out = json!({
        "kind": "compute#instanceGroupsListInstances",
        "id": rel,
        "items": items,
        "selfLink": links::stored(&format!("{rel}/listInstances")),
    });
    links::render(&mut out, base);
    Ok(out)
}
