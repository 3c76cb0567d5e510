//! Service validation: the field errors the real server returns for a
//! Service spec (ports and their names, protocols and target ports, type,
//! node ports, source ranges, traffic policies, the load-balancer class,
//! session affinity, external names), in the order it reports them.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{externally_accessible, needs_health_check, port_value, str_at, ty};
use crate::error::Cause;

const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const ONLY_LB: &str = "may only be used when `type` is 'LoadBalancer'";

/// The problems of a DNS-1123 label, as the real validators word them.
fn dns_label_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let b = value.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-';
    let alnum = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if b.is_empty() || !b.iter().all(ok_char) || !alnum(b.first()) || !alnum(b.last()) {
        errs.push(DNS_LABEL.to_string());
    }
    errs
}

/// The problems of an IANA service name (a named `targetPort`).
fn port_name_errors(value: &str) -> Vec<&'static str> {
    let mut errs = Vec::new();
    if value.len() > 15 {
        errs.push("must be no more than 15 characters");
    }
    let b = value.as_bytes();
    if b.is_empty()
        || !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !b.iter().any(u8::is_ascii_lowercase) {
        errs.push("must contain at least one letter (a-z)");
    }
    if value.contains("--") {
        errs.push("must not contain consecutive hyphens");
    }
    if value.starts_with('-') || value.ends_with('-') {
        errs.push("must not begin or end with a hyphen");
    }
    errs
}

fn headless(svc: &Value) -> bool {
    svc.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() == 1 && a[0] == "None")
}

fn set(spec: &Value, key: &str) -> bool {
    spec.get(key).is_some_and(|v| !v.is_null())
}

/// Every field error of a Service spec.
pub fn validate(svc: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &svc["spec"];
    let ty = ty(svc);
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && !headless(svc) && ty != "ExternalName" {
        causes.push(Cause::required("spec.ports"));
    }
    match ty {
        "LoadBalancer" | "NodePort" if headless(svc) => causes.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &json!("None"),
            &format!("may not be set to 'None' for {ty} services"),
        )),
        "ExternalName" => {
            let forbidden = "may not be set for ExternalName services";
            if spec["clusterIPs"].as_array().is_some_and(|a| !a.is_empty()) {
                causes.push(Cause::forbidden("spec.clusterIPs", forbidden));
            }
            if spec["ipFamilies"].as_array().is_some_and(|a| !a.is_empty()) {
                causes.push(Cause::forbidden("spec.ipFamilies", forbidden));
            }
            if set(spec, "ipFamilyPolicy") {
                causes.push(Cause::forbidden("spec.ipFamilyPolicy", forbidden));
            }
            if str_at(svc, "/spec/externalName")
                .trim_end_matches('.')
                .is_empty()
            {
                causes.push(Cause::required("spec.externalName"));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = |f: &str| format!("spec.ports[{i}].{f}");
        match p["name"].as_str().filter(|n| !n.is_empty()) {
            None if ports.len() > 1 => causes.push(Cause::required(at("name"))),
            None => {}
            Some(n) => {
                for msg in dns_label_errors(n) {
                    causes.push(Cause::invalid(at("name"), &p["name"], &msg));
                }
                if !names.insert(n.to_string()) {
                    causes.push(Cause::duplicate(at("name"), &p["name"]));
                }
            }
        }
        if !p["port"].as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
            causes.push(Cause::invalid(at("port"), &p["port"], PORT_RANGE));
        }
        match p["protocol"].as_str().filter(|s| !s.is_empty()) {
            None => causes.push(Cause::required(at("protocol"))),
            Some("TCP" | "UDP" | "SCTP") => {}
            Some(_) => causes.push(Cause::not_supported(
                at("protocol"),
                &p["protocol"],
                &["SCTP", "TCP", "UDP"],
            )),
        }
        match &p["targetPort"] {
            Value::String(name) => {
                for msg in port_name_errors(name) {
                    causes.push(Cause::invalid(at("targetPort"), &p["targetPort"], msg));
                }
            }
            v => {
                if !v.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
                    causes.push(Cause::invalid(at("targetPort"), v, PORT_RANGE));
                }
            }
        }
    }
    match spec["sessionAffinity"].as_str() {
        None | Some("") => causes.push(Cause::required("spec.sessionAffinity")),
        Some("None" | "ClientIP") => {}
        Some(_) => causes.push(Cause::not_supported(
            "spec.sessionAffinity",
            &spec["sessionAffinity"],
            &["ClientIP", "None"],
        )),
    }
    if ty.is_empty() {
        causes.push(Cause::required("spec.type"));
    } else if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(Cause::not_supported(
            "spec.type",
            &spec["type"],
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p["nodePort"].as_i64().is_some_and(|n| n != 0) {
                causes.push(Cause::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = p["protocol"].as_str().unwrap_or("");
        if let Some(np) = port_value(&p["nodePort"])
            && !node_ports.insert((proto.to_string(), np))
        {
            causes.push(Cause::duplicate(
                format!("spec.ports[{i}].nodePort"),
                &json!(np),
            ));
        }
        if !seen.insert((proto.to_string(), p["port"].as_i64())) {
            causes.push(Cause::duplicate(
                format!("spec.ports[{i}]"),
                &json!({"port": p["port"], "protocol": proto}),
            ));
        }
    }
    let ranges = spec["loadBalancerSourceRanges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !ranges.is_empty() {
        // The real server names this field with a capital L.
        let path = "spec.LoadBalancerSourceRanges";
        if ty != "LoadBalancer" {
            causes.push(Cause::forbidden(path, ONLY_LB));
        }
        for (i, r) in ranges.iter().enumerate() {
            let text = r.as_str().unwrap_or("").trim();
            if text.parse::<ipnet::IpNet>().is_err() {
                causes.push(Cause::invalid(
                    format!("{path}[{i}]"),
                    &json!(text),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }
    if set(spec, "allocateLoadBalancerNodePorts") && ty != "LoadBalancer" {
        causes.push(Cause::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            ONLY_LB,
        ));
    }
    if set(spec, "loadBalancerClass") && ty != "LoadBalancer" {
        causes.push(Cause::forbidden("spec.loadBalancerClass", ONLY_LB));
    }
    let etp = &spec["externalTrafficPolicy"];
    let etp_set = etp.as_str().is_some_and(|s| !s.is_empty());
    if !externally_accessible(svc) {
        if etp_set {
            causes.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if !etp_set {
        causes.push(Cause::required("spec.externalTrafficPolicy"));
    } else if !matches!(etp.as_str(), Some("Cluster" | "Local")) {
        causes.push(Cause::not_supported(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
        ));
    }
    let hc = &spec["healthCheckNodePort"];
    let hc_set = hc.as_i64().is_some_and(|n| n != 0);
    if !needs_health_check(svc) {
        if hc_set {
            causes.push(Cause::invalid(
                "spec.healthCheckNodePort",
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if !hc_set {
        causes.push(Cause::required("spec.healthCheckNodePort"));
    } else if !hc.as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
        causes.push(Cause::invalid("spec.healthCheckNodePort", hc, PORT_RANGE));
    }
    if let Some(itp) = spec.get("internalTrafficPolicy").filter(|v| !v.is_null())
        && !matches!(itp.as_str(), Some("Cluster" | "Local"))
    {
        causes.push(Cause::not_supported(
            "spec.internalTrafficPolicy",
            itp,
            &["Cluster", "Local"],
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_and_port_name_rules() {
        assert!(dns_label_errors("http").is_empty());
        assert!(dns_label_errors("a-1").is_empty());
        assert_eq!(dns_label_errors("Http").len(), 1);
        assert_eq!(dns_label_errors("-a").len(), 1);
        assert!(port_name_errors("http").is_empty());
        assert!(port_name_errors("8080").contains(&"must contain at least one letter (a-z)"));
        assert!(port_name_errors("web--x").contains(&"must not contain consecutive hyphens"));
        assert!(
            port_name_errors("a-very-long-port-name")
                .contains(&"must be no more than 15 characters")
        );
    }
}
