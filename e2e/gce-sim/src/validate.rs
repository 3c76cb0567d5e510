//! Field checks on inserts and changes: label format, description
//! length, firewall ranges, protocols, ports and priority, and that a
//! regional backend service only uses instance groups of its own region.

use serde_json::Value;

use crate::{catalog, error::ApiError, links, store::Resource};

/// Longest `description` the real API accepts.
const MAX_DESCRIPTION: usize = 2048;
/// Most labels on one resource.
const MAX_LABELS: usize = 64;

fn label_text_ok(text: &str, key: bool) -> bool {
    let chars_ok = text.chars().all(|c| {
        c.is_lowercase()
            || c.is_ascii_digit()
            || c == '_'
            || c == '-'
            || (!c.is_ascii() && !c.is_uppercase())
    });
    let first_ok = !key || text.chars().next().is_some_and(char::is_lowercase);
    text.chars().count() <= 63 && chars_ok && first_ok
}

/// Label keys start with a lowercase letter; keys and values hold at most
/// 63 lowercase letters, digits, `_` and `-` (international letters too).
pub fn check_labels(labels: Option<&Value>) -> Result<(), ApiError> {
    let Some(labels) = labels else {
        return Ok(());
    };
    let Some(map) = labels.as_object() else {
        return Err(ApiError::invalid_field(
            "resource.labels",
            &labels.to_string(),
            "Labels must be a map of strings.",
        ));
    };
    if map.len() > MAX_LABELS {
        return Err(ApiError::invalid_field(
            "resource.labels",
            &map.len().to_string(),
            "A resource can have at most 64 labels.",
        ));
    }
    for (key, value) in map {
        if !label_text_ok(key, true) {
            return Err(ApiError::invalid_field(
                "resource.labels",
                key,
                "Label key violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes, and can be at most 63 characters long.",
            ));
        }
        let text = value.as_str().unwrap_or("\u{0}");
        if !label_text_ok(text, false) {
            return Err(ApiError::invalid_field(
                "resource.labels",
                &value.to_string(),
                "Label value violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes, and can be at most 63 characters long.",
            ));
        }
    }
    Ok(())
}

/// The checks every insert, patch and update runs.
pub fn common(scope: &str, collection: &str, body: &Resource) -> Result<(), ApiError> {
    check_labels(body.get("labels"))?;
    if let Some(description) = body.get("description").and_then(Value::as_str)
        && description.chars().count() > MAX_DESCRIPTION
    {
        return Err(ApiError::invalid_field(
            "resource.description",
            &description.chars().take(32).collect::<String>(),
            "Must be at most 2048 characters long.",
        ));
    }
    match collection {
        "backendServices" => check_backend_regions(scope, body)?,
        "firewalls" => check_firewall(body)?,
        _ => {}
    }
    Ok(())
}

/// A CIDR range or a bare address, IPv4 or IPv6.
fn cidr_ok(text: &str) -> bool {
    let (address, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let Ok(address) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|b| b <= max))
}

/// A port (`80`) or port range (`30000-32767`) within 1..=65535.
fn port_ok(text: &str) -> bool {
    let parse = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    match text.split_once('-') {
        Some((lo, hi)) => matches!((parse(lo), parse(hi)), (Some(lo), Some(hi)) if lo <= hi),
        None => parse(text).is_some(),
    }
}

/// Source and destination ranges are CIDRs, rules name a protocol and
/// valid ports, priority is 0..=65535.
fn check_firewall(body: &Resource) -> Result<(), ApiError> {
    for field in ["sourceRanges", "destinationRanges"] {
        let ranges = body.get(field).and_then(Value::as_array);
        for (i, range) in ranges.into_iter().flatten().enumerate() {
            let text = range.as_str().unwrap_or("");
            if !cidr_ok(text) {
                return Err(ApiError::invalid_field(
                    &format!("resource.{field}[{i}]"),
                    text,
                    "Must be a CIDR address range that is contained in the address space.",
                ));
            }
        }
    }
    for field in ["allowed", "denied"] {
        let rules = body.get(field).and_then(Value::as_array);
        for (i, rule) in rules.into_iter().flatten().enumerate() {
            let protocol = rule.get("IPProtocol").and_then(Value::as_str).unwrap_or("");
            if protocol.is_empty() {
                return Err(ApiError::required(&format!(
                    "resource.{field}[{i}].IPProtocol"
                )));
            }
            let ports = rule.get("ports").and_then(Value::as_array);
            for (j, port) in ports.into_iter().flatten().enumerate() {
                let text = port.as_str().unwrap_or("");
                if !port_ok(text) {
                    return Err(ApiError::invalid_field(
                        &format!("resource.{field}[{i}].ports[{j}]"),
                        text,
                        "Must be a port number or a port range within 1-65535.",
                    ));
                }
            }
        }
    }
    if let Some(priority) = body.get("priority")
        && priority.as_u64().is_none_or(|p| p > 65535)
    {
        return Err(ApiError::invalid_field(
            "resource.priority",
            &priority.to_string(),
            "Must be between 0 and 65535.",
        ));
    }
    Ok(())
}

/// A regional backend service's instance groups must be in zones of its region.
fn check_backend_regions(scope: &str, body: &Resource) -> Result<(), ApiError> {
    let Some(region) = scope.split_once("/regions/").map(|(_, r)| r) else {
        return Ok(());
    };
    let backends = body.get("backends").and_then(Value::as_array);
    for (i, backend) in backends.into_iter().flatten().enumerate() {
        let Some(group) = backend.get("group").and_then(links::as_rel) else {
            continue;
        };
        let zone = group.split('/').nth(3).unwrap_or("");
        if group.split('/').nth(2) == Some("zones") && catalog::region_of_zone(zone) != Some(region)
        {
            return Err(ApiError::invalid_field(
                &format!("resource.backends[{i}].group"),
                group,
                &format!("Backend group must be in region '{region}'."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_rules() {
        assert!(check_labels(Some(&json!({"gantry-owner": "ns_svc-1", "k": ""}))).is_ok());
        assert!(check_labels(Some(&json!({"Owner": "x"}))).is_err());
        assert!(check_labels(Some(&json!({"1k": "x"}))).is_err());
        assert!(check_labels(Some(&json!({"k": "A"}))).is_err());
        assert!(check_labels(Some(&json!({"k": "a.b"}))).is_err());
        assert!(check_labels(Some(&json!({"k": "a".repeat(64)}))).is_err());
        assert!(check_labels(Some(&json!({"k": 1}))).is_err());
    }

    #[test]
    fn firewall_rules() {
        let check = |v: serde_json::Value| check_firewall(v.as_object().expect("object"));
        assert!(
            check(json!({"sourceRanges": ["10.0.0.0/8", "::/0", "1.2.3.4"],
            "allowed": [{"IPProtocol": "tcp", "ports": ["80", "30000-32767"]}], "priority": 1000}))
            .is_ok()
        );
        assert!(check(json!({"sourceRanges": ["10.0.0.0/33"]})).is_err());
        assert!(check(json!({"sourceRanges": ["10.0.0/8"]})).is_err());
        assert!(check(json!({"allowed": [{"IPProtocol": "tcp", "ports": ["0"]}]})).is_err());
        assert!(check(json!({"allowed": [{"IPProtocol": "tcp", "ports": ["90-80"]}]})).is_err());
        assert!(check(json!({"allowed": [{"ports": ["80"]}]})).is_err());
        assert!(check(json!({"priority": 70000})).is_err());
    }
}
