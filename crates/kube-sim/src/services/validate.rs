//! Service validation: the field errors the real server returns for a
//! Service spec (type, ports, protocols, names, node ports, traffic
//! policies, session affinity, external names).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::error::Cause;

/// Every field error of a Service spec.
pub fn validate(svc: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &svc["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    if !matches!(
        ty,
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(Cause::not_supported(
            "spec.type",
            &spec["type"],
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && ty != "ExternalName" && spec["clusterIP"].as_str() != Some("None") {
        causes.push(Cause::required("spec.ports"));
    }
    let mut seen = BTreeSet::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let port = &p["port"];
        match port.as_i64() {
            Some(n) if (1..=65535).contains(&n) => {}
            Some(_) => causes.push(Cause::invalid(
                format!("spec.ports[{i}].port"),
                port,
                "must be between 1 and 65535, inclusive",
            )),
            None => causes.push(Cause::required(format!("spec.ports[{i}].port"))),
        }
        let proto = p["protocol"].as_str().unwrap_or("TCP");
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            causes.push(Cause::not_supported(
                format!("spec.ports[{i}].protocol"),
                &p["protocol"],
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if !seen.insert((port.as_i64(), proto.to_string())) {
            causes.push(Cause::duplicate(
                format!("spec.ports[{i}]"),
                &json!({"port": port, "protocol": proto}),
            ));
        }
        if ports.len() > 1 {
            match p["name"].as_str() {
                None | Some("") => causes.push(Cause::required(format!("spec.ports[{i}].name"))),
                Some(n) => {
                    if !names.insert(n.to_string()) {
                        causes.push(Cause::duplicate(
                            format!("spec.ports[{i}].name"),
                            &p["name"],
                        ));
                    }
                }
            }
        }
        if let Some(np) = p.get("nodePort").filter(|v| !v.is_null()) {
            if !matches!(ty, "NodePort" | "LoadBalancer") && np.as_i64() != Some(0) {
                causes.push(Cause::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if !np.as_i64().is_some_and(|n| (0..=65535).contains(&n)) {
                causes.push(Cause::invalid(
                    format!("spec.ports[{i}].nodePort"),
                    np,
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
    if let Some(etp) = spec.get("externalTrafficPolicy").filter(|v| !v.is_null()) {
        if !matches!(ty, "NodePort" | "LoadBalancer") {
            causes.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if !matches!(etp.as_str(), Some("Cluster" | "Local")) {
            causes.push(Cause::not_supported(
                "spec.externalTrafficPolicy",
                etp,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(sa) = spec.get("sessionAffinity").filter(|v| !v.is_null())
        && !matches!(sa.as_str(), Some("None" | "ClientIP"))
    {
        causes.push(Cause::not_supported(
            "spec.sessionAffinity",
            sa,
            &["ClientIP", "None"],
        ));
    }
    if ty == "ExternalName" && spec["externalName"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::required("spec.externalName"));
    }
    causes
}
