//! Service semantics the real API server owns: ClusterIP and NodePort
//! allocation, the defaults it fills in, the fields it carries over or
//! drops on update, and its validation errors.
//!
//! The order follows the real registry: defaults, then (on update) carrying
//! over allocated values, then allocation, then dropping fields the new type
//! no longer uses, then validation. Anything allocated is given back when a
//! later step fails.

mod alloc;
mod update;
mod validate;

pub use alloc::Allocators;
use serde_json::{Map, Value, json};

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
            .filter(|s| !s.is_empty() && *s != "None")
            .map(str::to_string)
            .collect();
    } else if let Some(ip) = spec["clusterIP"]
        .as_str()
        .filter(|s| !s.is_empty() && *s != "None")
    {
        h.ips.push(ip.to_string());
    }
    h.ports.extend(node_ports(svc));
    if let Some(p) = port_value(&spec["healthCheckNodePort"]) {
        h.ports.push(p);
    }
    h
}

/// A non-zero port number from a JSON value.
fn port_value(v: &Value) -> Option<u16> {
    v.as_u64()
        .filter(|n| *n != 0)
        .and_then(|n| u16::try_from(n).ok())
}

/// The non-zero `nodePort`s of a Service.
fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| port_value(&p["nodePort"]))
                .collect()
        })
        .unwrap_or_default()
}

fn ty(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn str_at<'a>(svc: &'a Value, pointer: &str) -> &'a str {
    svc.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// NodePort or LoadBalancer.
fn needs_node_ports(svc: &Value) -> bool {
    matches!(ty(svc), "NodePort" | "LoadBalancer")
}

/// LoadBalancer with `externalTrafficPolicy: Local`.
fn needs_health_check(svc: &Value) -> bool {
    ty(svc) == "LoadBalancer" && str_at(svc, "/spec/externalTrafficPolicy") == "Local"
}

/// NodePort, LoadBalancer, or ClusterIP with external IPs.
fn externally_accessible(svc: &Value) -> bool {
    needs_node_ports(svc)
        || (ty(svc) == "ClusterIP"
            && svc
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()))
}

/// Whether new node ports are allocated for ports that do not name one.
fn allocates_node_ports(svc: &Value) -> bool {
    match ty(svc) {
        "NodePort" => true,
        "LoadBalancer" => {
            svc.pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
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

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
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

/// Go's rendering of a string list in field errors (`[]string{"a"}`).
fn go_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// What this request took from the allocators, given back on failure.
#[derive(Debug, Default)]
struct Taken {
    ips: Vec<String>,
    ports: Vec<u16>,
}

impl Taken {
    fn undo(&self, alloc: &mut Allocators) {
        for ip in &self.ips {
            alloc.release_ip(ip);
        }
        for p in &self.ports {
            alloc.release_port(*p);
        }
    }
}

/// Defaults, allocates and validates a Service being created (`old` is
/// `None`) or updated. On error nothing stays allocated. With `dry_run` the
/// allocations are computed and then released again.
pub fn admit(
    alloc: &mut Allocators,
    old: Option<&Value>,
    svc: &mut Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    if !svc.get("spec").is_some_and(Value::is_object)
        && let Some(o) = svc.as_object_mut()
    {
        o.insert("spec".into(), json!({}));
    }
    apply_defaults(svc);
    match old {
        None => {
            if let Some(o) = svc.as_object_mut() {
                o.insert("status".into(), json!({"loadBalancer": {}}));
            }
            update::normalize_cluster_ips(svc, None);
        }
        Some(old) => {
            update::patch_allocated_values(svc, old);
            update::normalize_cluster_ips(svc, Some(old));
        }
    }
    let before = old.map(held).unwrap_or_default();
    let mut taken = Taken::default();
    let mut result = allocate(alloc, old, svc, &before, &mut taken);
    if result.is_ok() {
        if let Some(old) = old {
            update::drop_type_dependent_fields(svc, old);
        }
        let mut causes = old
            .map(|o| update::validate_update(svc, o))
            .unwrap_or_default();
        causes.extend(validate::validate(svc));
        if !causes.is_empty() {
            result = Err(invalid(svc, causes));
        }
    }
    if result.is_err() || dry_run {
        taken.undo(alloc);
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

/// The defaults the real server's decoder fills in for a v1 Service.
fn apply_defaults(svc: &mut Value) {
    let accessible = externally_accessible(svc)
        || (svc.pointer("/spec/type").is_none_or(Value::is_null)
            && svc
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()));
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity") == Some(&json!("None")) {
        spec.remove("sessionAffinityConfig");
    }
    set_default(spec, "type", json!("ClusterIP"));
    let ty = spec["type"].as_str().unwrap_or("").to_string();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            let unset = p
                .get("targetPort")
                .is_none_or(|t| t.is_null() || *t == json!(0) || *t == json!(""));
            if unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    if accessible {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

fn allocate(
    alloc: &mut Allocators,
    old: Option<&Value>,
    svc: &mut Value,
    before: &Held,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    allocate_cluster_ips(alloc, old, svc, taken)?;
    if needs_node_ports(svc) {
        match old {
            None => init_node_ports(alloc, svc, taken)?,
            Some(_) => update_node_ports(alloc, svc, before, taken)?,
        }
    }
    let needed = old.is_some_and(needs_health_check);
    if needs_health_check(svc) && !needed {
        allocate_health_check(alloc, svc, taken)?;
    }
    Ok(())
}

fn allocate_cluster_ips(
    alloc: &mut Allocators,
    old: Option<&Value>,
    svc: &mut Value,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    if ty(svc) == "ExternalName" {
        return Ok(());
    }
    // Updates allocate only when the old version had no address (it was an
    // ExternalName); otherwise validation holds the address fixed.
    if old.is_some_and(|o| ty(o) != "ExternalName") {
        return Ok(());
    }
    let requested = str_at(svc, "/spec/clusterIP").to_string();
    let snapshot = svc.clone();
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if requested == "None" {
        spec.insert("clusterIPs".into(), json!(["None"]));
    } else if requested.is_empty() {
        let ip = alloc.next_ip().ok_or_else(|| {
            ApiError::internal_error("failed to allocate a serviceIP: range is full")
        })?;
        taken.ips.push(ip.clone());
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    } else {
        alloc.take_ip(&requested).map_err(|detail| {
            invalid(
                &snapshot,
                vec![Cause::invalid_shown(
                    "spec.clusterIPs",
                    &go_strings(std::slice::from_ref(&requested)),
                    &detail,
                )],
            )
        })?;
        taken.ips.push(requested.clone());
        spec.insert("clusterIPs".into(), json!([requested]));
    }
    set_default(spec, "ipFamilies", json!(["IPv4"]));
    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    Ok(())
}

fn take_node_port(
    alloc: &mut Allocators,
    svc: &Value,
    i: usize,
    port: u16,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    alloc.take_port(port).map_err(|detail| {
        invalid(
            svc,
            vec![Cause::invalid(
                format!("spec.ports[{i}].nodePort"),
                &json!(port),
                &detail,
            )],
        )
    })?;
    taken.ports.push(port);
    Ok(())
}

fn next_node_port(alloc: &mut Allocators, taken: &mut Taken) -> Result<u16, ApiError> {
    let port = alloc
        .next_port()
        .ok_or_else(|| ApiError::internal_error("failed to allocate a nodePort: range is full"))?;
    taken.ports.push(port);
    Ok(port)
}

/// Node ports on create: ports sharing a port number (TCP and UDP 53) share
/// one node port; a requested one is reserved, others are allocated.
fn init_node_ports(
    alloc: &mut Allocators,
    svc: &mut Value,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    let allocates = allocates_node_ports(svc);
    let snapshot = svc.clone();
    let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let requested_for = |number: &Value| {
        snapshot
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .filter(|p| p["port"] == *number)
                    .find_map(|p| port_value(&p["nodePort"]))
            })
    };
    let mut by_number: Vec<(Value, u16)> = Vec::new();
    for (i, p) in ports.iter_mut().enumerate() {
        let Some(p) = p.as_object_mut() else { continue };
        let own = p.get("nodePort").and_then(port_value);
        if own.is_none() && !allocates {
            continue;
        }
        let number = p.get("port").cloned().unwrap_or(Value::Null);
        match by_number
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, np)| *np)
        {
            None => {
                let np = match requested_for(&number) {
                    Some(np) => {
                        take_node_port(alloc, &snapshot, i, np, taken)?;
                        np
                    }
                    None => next_node_port(alloc, taken)?,
                };
                p.insert("nodePort".into(), json!(np));
                by_number.push((number, np));
            }
            Some(shared) => match own {
                None => {
                    p.insert("nodePort".into(), json!(shared));
                }
                Some(np) if np != shared => take_node_port(alloc, &snapshot, i, np, taken)?,
                Some(_) => {}
            },
        }
    }
    Ok(())
}

/// Node ports on update: ports the old version held are kept, new requests
/// reserved and missing ones allocated.
fn update_node_ports(
    alloc: &mut Allocators,
    svc: &mut Value,
    before: &Held,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    let allocates = allocates_node_ports(svc);
    let snapshot = svc.clone();
    let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, p) in ports.iter_mut().enumerate() {
        let Some(p) = p.as_object_mut() else { continue };
        match p.get("nodePort").and_then(port_value) {
            // Held by the old version or already taken for another port.
            Some(np) if before.ports.contains(&np) || taken.ports.contains(&np) => {}
            Some(np) => take_node_port(alloc, &snapshot, i, np, taken)?,
            None if allocates => {
                let np = next_node_port(alloc, taken)?;
                p.insert("nodePort".into(), json!(np));
            }
            None => {}
        }
    }
    Ok(())
}

/// The health-check node port of a Service turning into LoadBalancer with
/// `externalTrafficPolicy: Local`.
fn allocate_health_check(
    alloc: &mut Allocators,
    svc: &mut Value,
    taken: &mut Taken,
) -> Result<(), ApiError> {
    let requested = port_value(&svc["spec"]["healthCheckNodePort"]);
    match requested {
        Some(hc) => {
            alloc.take_port(hc).map_err(|e| {
                ApiError::internal_error(format!(
                    "failed to allocate requested HealthCheck NodePort {hc}: {e}"
                ))
            })?;
            taken.ports.push(hc);
        }
        None => {
            let hc = alloc.next_port().ok_or_else(|| {
                ApiError::internal_error(
                    "failed to allocate a HealthCheck NodePort 0: range is full",
                )
            })?;
            taken.ports.push(hc);
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("healthCheckNodePort".into(), json!(hc));
            }
        }
    }
    Ok(())
}
