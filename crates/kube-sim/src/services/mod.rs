//! Service semantics the real API server owns: ClusterIP and NodePort
//! allocation, the defaults it fills in, and its validation errors.

mod alloc;
mod validate;

pub use alloc::Allocators;
use serde_json::{Value, json};
use validate::validate;

use crate::error::{ApiError, Cause};

/// Addresses and ports a Service holds.
#[derive(Debug, Default, PartialEq)]
struct Held {
    ips: Vec<String>,
    ports: Vec<u16>,
}

fn held(svc: &Value) -> Held {
    let spec = &svc["spec"];
    let mut h = Held::default();
    if let Some(ips) = spec["clusterIPs"].as_array() {
        h.ips = ips
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| *s != "None")
            .map(str::to_string)
            .collect();
    } else if let Some(ip) = spec["clusterIP"]
        .as_str()
        .filter(|s| !s.is_empty() && *s != "None")
    {
        h.ips.push(ip.to_string());
    }
    if let Some(ports) = spec["ports"].as_array() {
        h.ports.extend(
            ports
                .iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .map(|p| p as u16),
        );
    }
    if let Some(p) = spec["healthCheckNodePort"].as_u64() {
        h.ports.push(p as u16);
    }
    h
}

/// Releases everything a deleted Service held.
pub fn release(alloc: &mut Allocators, svc: &Value) {
    let h = held(svc);
    for ip in &h.ips {
        alloc.release_ip(ip);
    }
    for p in h.ports {
        alloc.release_port(p);
    }
}

fn set_default(obj: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

fn invalid(svc: &Value, causes: Vec<Cause>) -> ApiError {
    let name = svc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::invalid("", "Service", name, causes)
}

/// Defaults, validates and allocates a Service being created (`old` is
/// `None`) or updated. On error nothing stays allocated. With `dry_run` the
/// allocations are computed and then released again.
pub fn admit(
    alloc: &mut Allocators,
    old: Option<&Value>,
    svc: &mut Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    apply_defaults(svc, old);
    if old.is_none()
        && let Some(o) = svc.as_object_mut()
    {
        o.insert("status".into(), json!({"loadBalancer": {}}));
    }
    let causes = validate(svc);
    if !causes.is_empty() {
        return Err(invalid(svc, causes));
    }
    let before = old.map(held).unwrap_or_default();
    let mut taken_ips: Vec<String> = Vec::new();
    let mut taken_ports: Vec<u16> = Vec::new();
    let result = allocate(alloc, old, svc, &before, &mut taken_ips, &mut taken_ports);
    if result.is_err() || dry_run {
        for ip in &taken_ips {
            alloc.release_ip(ip);
        }
        for p in &taken_ports {
            alloc.release_port(*p);
        }
        return result;
    }
    // Release what the old version held and the new one no longer does.
    let after = held(svc);
    for ip in before.ips.iter().filter(|ip| !after.ips.contains(ip)) {
        alloc.release_ip(ip);
    }
    for p in before.ports.iter().filter(|p| !after.ports.contains(p)) {
        alloc.release_port(*p);
    }
    Ok(())
}

fn apply_defaults(svc: &mut Value, old: Option<&Value>) {
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        if let Some(o) = svc.as_object_mut() {
            o.insert("spec".into(), json!({}));
        }
        return apply_defaults(svc, old);
    };
    set_default(spec, "type", json!("ClusterIP"));
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        set_default(spec, "sessionAffinity", json!("None"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    } else {
        set_default(spec, "sessionAffinity", json!("None"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    } else {
        spec.remove("healthCheckNodePort");
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    } else {
        spec.remove("allocateLoadBalancerNodePorts");
    }
    // Updates keep the allocated address when the client omits it (as `kubectl apply` does).
    if let Some(old_spec) = old.and_then(|o| o.get("spec")) {
        if spec.get("clusterIP").is_none_or(|v| v.is_null() || v == "") && ty != "ExternalName" {
            if let Some(ip) = old_spec.get("clusterIP").filter(|v| !v.is_null()) {
                spec.insert("clusterIP".into(), ip.clone());
            }
            if let Some(ips) = old_spec.get("clusterIPs").filter(|v| !v.is_null()) {
                spec.insert("clusterIPs".into(), ips.clone());
            }
        }
        if spec.get("healthCheckNodePort").is_none_or(Value::is_null)
            && let Some(p) = old_spec.get("healthCheckNodePort").filter(|v| !v.is_null())
        {
            spec.insert("healthCheckNodePort".into(), p.clone());
        }
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        let old_ports = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in ports.iter_mut() {
            let Some(p) = p.as_object_mut() else { continue };
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
            if matches!(ty.as_str(), "NodePort" | "LoadBalancer")
                && p.get("nodePort").is_none_or(Value::is_null)
            {
                let same = old_ports.iter().find(|o| {
                    o["port"] == p["port"]
                        && o["protocol"].as_str().unwrap_or("TCP") == p["protocol"]
                });
                if let Some(np) = same
                    .and_then(|o| o.get("nodePort"))
                    .filter(|v| !v.is_null())
                {
                    p.insert("nodePort".into(), np.clone());
                }
            }
            if !matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
                // Changing the type away from NodePort/LoadBalancer drops the
                // node ports the old version held (the real server does this
                // for clients that resend the old spec).
                let held_before = old_ports.iter().any(|o| {
                    o.get("nodePort")
                        .is_some_and(|n| Some(n) == p.get("nodePort"))
                });
                if held_before || p.get("nodePort").and_then(Value::as_i64) == Some(0) {
                    p.remove("nodePort");
                }
            }
        }
    }
}

fn allocate(
    alloc: &mut Allocators,
    old: Option<&Value>,
    svc: &mut Value,
    before: &Held,
    taken_ips: &mut Vec<String>,
    taken_ports: &mut Vec<u16>,
) -> Result<(), ApiError> {
    let snapshot = svc.clone();
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty == "ExternalName" {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        return Ok(());
    }
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(old) = old {
        let old_ip = old
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !old_ip.is_empty() && requested != old_ip {
            return Err(invalid(
                &snapshot,
                vec![Cause::invalid(
                    "spec.clusterIPs[0]",
                    &json!(requested),
                    "may not change once set",
                )],
            ));
        }
    }
    if requested == "None" {
        spec.insert("clusterIPs".into(), json!(["None"]));
    } else if requested.is_empty() {
        let ip = alloc
            .next_ip()
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?;
        taken_ips.push(ip.clone());
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    } else if !before.ips.contains(&requested) {
        alloc.take_ip(&requested).map_err(|detail| {
            invalid(
                &snapshot,
                vec![Cause::invalid(
                    "spec.clusterIPs",
                    &json!([requested]),
                    &detail,
                )],
            )
        })?;
        taken_ips.push(requested.clone());
        spec.insert("clusterIPs".into(), json!([requested]));
    } else {
        spec.insert("clusterIPs".into(), json!([requested]));
    }
    set_default(spec, "ipFamilies", json!(["IPv4"]));
    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));

    let wants_node_ports = ty == "NodePort"
        || (ty == "LoadBalancer"
            && spec
                .get("allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false));
    let mut causes = Vec::new();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            let requested = p
                .get("nodePort")
                .and_then(Value::as_u64)
                .filter(|n| *n != 0);
            match (wants_node_ports, requested) {
                (_, Some(n)) => {
                    let n = n as u16;
                    if !before.ports.contains(&n) && !taken_ports.contains(&n) {
                        match alloc.take_port(n) {
                            Ok(()) => taken_ports.push(n),
                            Err(detail) => causes.push(Cause::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                &json!(n),
                                &detail,
                            )),
                        }
                    }
                }
                (true, None) => match alloc.next_port() {
                    Some(n) => {
                        taken_ports.push(n);
                        p.insert("nodePort".into(), json!(n));
                    }
                    None => {
                        return Err(ApiError::internal(
                            "failed to allocate a nodePort: range is full",
                        ));
                    }
                },
                (false, None) => {
                    p.remove("nodePort");
                }
            }
        }
    }
    let local = matches!(ty.as_str(), "LoadBalancer")
        && spec.get("externalTrafficPolicy").and_then(Value::as_str) == Some("Local");
    if local {
        match spec
            .get("healthCheckNodePort")
            .and_then(Value::as_u64)
            .filter(|n| *n != 0)
        {
            Some(n) => {
                let n = n as u16;
                if !before.ports.contains(&n) && !taken_ports.contains(&n) {
                    match alloc.take_port(n) {
                        Ok(()) => taken_ports.push(n),
                        Err(detail) => causes.push(Cause::invalid(
                            "spec.healthCheckNodePort",
                            &json!(n),
                            &detail,
                        )),
                    }
                }
            }
            None => match alloc.next_port() {
                Some(n) => {
                    taken_ports.push(n);
                    spec.insert("healthCheckNodePort".into(), json!(n));
                }
                None => {
                    return Err(ApiError::internal(
                        "failed to allocate a nodePort: range is full",
                    ));
                }
            },
        }
    } else {
        spec.remove("healthCheckNodePort");
    }
    if !causes.is_empty() {
        return Err(invalid(&snapshot, causes));
    }
    Ok(())
}
