//! Per-collection rules applied on insert and update: required fields,
//! server-side defaults and output-only fields, as the real API fills them.

use serde_json::{Value, json};

use crate::{
    catalog::Collection,
    error::ApiError,
    links,
    store::{Moment, Resource, State, label_fingerprint, timestamp},
};

/// Fields a client may send but the server owns.
const OUTPUT_ONLY: &[&str] = &[
    "kind",
    "id",
    "creationTimestamp",
    "selfLink",
    "fingerprint",
    "labelFingerprint",
    "region",
    "zone",
    "users",
    "size",
    "status",
];

/// The name rule every Compute Engine resource shares (RFC 1035, at most 63).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "resource.name",
            name,
            "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?|[1-9][0-9]{0,19})'",
        ))
    }
}

/// Drops the output-only fields from a client body.
pub fn strip_output_only(body: &mut Resource) {
    for key in OUTPUT_ONLY {
        body.remove(*key);
    }
    body.retain(|k, _| !k.starts_with('_'));
}

/// Resolves a forwarding rule's `IPAddress` given as an address link to the
/// address's IP, as the real API stores it.
pub fn resolve_ip_address(
    state: &State,
    project: &str,
    body: &mut Resource,
) -> Result<(), ApiError> {
    let Some(text) = body.get("IPAddress").and_then(Value::as_str) else {
        return Ok(());
    };
    if let Some(rel) = links::parse(text, project) {
        let ip = state
            .resources
            .get(&rel)
            .and_then(|a| a.get("address"))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rel))?;
        body.insert("IPAddress".into(), ip);
    }
    Ok(())
}

fn default(body: &mut Resource, key: &str, value: Value) {
    body.entry(key.to_owned()).or_insert(value);
}

fn require(body: &Resource, key: &str) -> Result<(), ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Err(ApiError::required(&format!("resource.{key}"))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(ApiError::required(&format!("resource.{key}")))
        }
        Some(Value::Array(a)) if a.is_empty() => {
            Err(ApiError::required(&format!("resource.{key}")))
        }
        _ => Ok(()),
    }
}

/// Collection-specific validation and defaults; `global` says whether the
/// resource is global.
pub fn collection_rules(
    state: &mut State,
    collection: &Collection,
    project: &str,
    global: bool,
    body: &mut Resource,
) -> Result<(), ApiError> {
    match collection.name {
        "addresses" => {
            default(body, "addressType", json!("EXTERNAL"));
            default(body, "ipVersion", json!("IPV4"));
            if !global {
                default(body, "networkTier", json!("PREMIUM"));
            }
            if !body.contains_key("address") {
                let internal = body.get("addressType") == Some(&json!("INTERNAL"));
                let ip = if internal {
                    state.internal_ip()
                } else {
                    state.external_ip()
                };
                body.insert("address".into(), json!(ip));
            }
        }
        "forwardingRules" => {
            default(body, "IPProtocol", json!("TCP"));
            default(body, "loadBalancingScheme", json!("EXTERNAL"));
            default(body, "networkTier", json!("PREMIUM"));
            if !body.contains_key("target") && !body.contains_key("backendService") {
                return Err(ApiError::required("resource.target"));
            }
            // A single port comes back as a range, as the real API answers.
            if let Some(range) = body.get("portRange").and_then(Value::as_str)
                && !range.contains('-')
            {
                let range = format!("{range}-{range}");
                body.insert("portRange".into(), json!(range));
            }
            if !body.contains_key("IPAddress") {
                let internal = body
                    .get("loadBalancingScheme")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with("INTERNAL"));
                let ip = if internal {
                    state.internal_ip()
                } else {
                    state.external_ip()
                };
                body.insert("IPAddress".into(), json!(ip));
            }
        }
        "targetPools" => {
            default(body, "sessionAffinity", json!("NONE"));
        }
        "backendServices" => {
            default(body, "loadBalancingScheme", json!("EXTERNAL"));
            default(body, "protocol", json!(if global { "HTTP" } else { "TCP" }));
            default(body, "sessionAffinity", json!("NONE"));
            default(body, "timeoutSec", json!(30));
            default(body, "port", json!(80));
            default(body, "portName", json!("http"));
            default(body, "connectionDraining", json!({"drainingTimeoutSec": 0}));
        }
        "healthChecks" => {
            require(body, "type")?;
            default(body, "checkIntervalSec", json!(5));
            default(body, "timeoutSec", json!(5));
            default(body, "unhealthyThreshold", json!(2));
            default(body, "healthyThreshold", json!(2));
        }
        "httpHealthChecks" => {
            default(body, "port", json!(80));
            default(body, "requestPath", json!("/"));
            default(body, "checkIntervalSec", json!(5));
            default(body, "timeoutSec", json!(5));
            default(body, "unhealthyThreshold", json!(2));
            default(body, "healthyThreshold", json!(2));
        }
        "firewalls" => {
            default(
                body,
                "network",
                links::stored(&format!("projects/{project}/global/networks/default")),
            );
            default(body, "priority", json!(1000));
            default(body, "direction", json!("INGRESS"));
            default(body, "disabled", json!(false));
            if !body.contains_key("allowed") && !body.contains_key("denied") {
                return Err(ApiError::required("resource.allowed"));
            }
            let has_source = ["sourceRanges", "sourceTags", "sourceServiceAccounts"]
                .iter()
                .any(|k| body.contains_key(*k));
            if body.get("direction") == Some(&json!("INGRESS")) && !has_source {
                body.insert("sourceRanges".into(), json!(["0.0.0.0/0"]));
            }
        }
        "urlMaps" => check_url_map(body)?,
        "targetHttpProxies" => require(body, "urlMap")?,
        "targetHttpsProxies" => {
            require(body, "urlMap")?;
            require(body, "sslCertificates")?;
        }
        "sslCertificates" => {
            default(body, "type", json!("SELF_MANAGED"));
            if body.get("type") == Some(&json!("SELF_MANAGED")) {
                require(body, "certificate")?;
                require(body, "privateKey")?;
            }
            // The private key is input-only: kept hidden, never rendered.
            if let Some(key) = body.remove("privateKey") {
                body.insert("_privateKey".into(), key);
            }
        }
        "instanceGroups" => {
            default(body, "namedPorts", json!([]));
            body.insert("_members".into(), json!([]));
        }
        "instances" => {
            require(body, "machineType")?;
            body.insert("status".into(), json!("RUNNING"));
            default(body, "networkInterfaces", json!([{}]));
            if let Some(Value::Array(nics)) = body.get_mut("networkInterfaces") {
                for (i, nic) in nics.iter_mut().enumerate() {
                    if let Value::Object(nic) = nic {
                        nic.entry("name").or_insert(json!(format!("nic{i}")));
                        if !nic.contains_key("networkIP") {
                            nic.insert("networkIP".into(), json!(state.internal_ip()));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every `hostRules[].pathMatcher` must name a path matcher.
fn check_url_map(body: &Resource) -> Result<(), ApiError> {
    let matchers: Vec<&str> = body
        .get("pathMatchers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let rules = body.get("hostRules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let name = rule
            .get("pathMatcher")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matchers.contains(&name) {
            return Err(ApiError::invalid_field(
                &format!("resource.hostRules[{i}].pathMatcher"),
                name,
                "Path matcher name is not defined in the URL map.",
            ));
        }
    }
    Ok(())
}

/// Sets the server-owned fields of a new or replaced resource. `created`
/// keeps `id` and `creationTimestamp` across an update.
pub fn server_fields(
    state: &mut State,
    collection: &Collection,
    scope: &str,
    rel: &str,
    body: &mut Resource,
    created: Option<(Value, Value)>,
) {
    let (id, created_at) = match created {
        Some(kept) => kept,
        None => (
            json!(state.id().to_string()),
            json!(timestamp(Moment::now().wall)),
        ),
    };
    body.insert("kind".into(), json!(collection.kind));
    body.insert("id".into(), id);
    body.insert("creationTimestamp".into(), created_at);
    body.insert("selfLink".into(), links::stored(rel));
    let mut parts = scope.splitn(4, '/').skip(2);
    match parts.next() {
        Some("zones") => {
            body.insert("zone".into(), links::stored(scope));
        }
        Some("regions") => {
            body.insert("region".into(), links::stored(scope));
        }
        _ => {}
    }
    if collection.fingerprint {
        let fp = state.fingerprint(rel);
        body.insert("fingerprint".into(), json!(fp));
    }
    if collection.labels {
        default(body, "labels", json!({}));
        let lf = label_fingerprint(body.get("labels"));
        body.insert("labelFingerprint".into(), json!(lf));
    }
}
