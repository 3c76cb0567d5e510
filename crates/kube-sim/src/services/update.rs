//! What the real server does to a Service update around allocation: it
//! carries over values it allocated that the client left out, keeps
//! `clusterIP` and `clusterIPs` in step, drops fields the new type no longer
//! uses when the client did not change them, and rejects changes to
//! immutable fields.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{go_strings, needs_health_check, needs_node_ports, port_value, str_at, ty};
use crate::error::Cause;

fn spec_mut(svc: &mut Value) -> Option<&mut Map<String, Value>> {
    svc.get_mut("spec").and_then(Value::as_object_mut)
}

fn strings(svc: &Value, pointer: &str) -> Vec<String> {
    svc.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn needs_cluster_ip(svc: &Value) -> bool {
    ty(svc) != "ExternalName"
}

fn field<'a>(svc: &'a Value, name: &str) -> Option<&'a Value> {
    svc.get("spec")
        .and_then(|s| s.get(name))
        .filter(|v| !v.is_null())
}

fn same(old: &Value, new: &Value, name: &str) -> bool {
    field(old, name) == field(new, name)
}

/// Fills in what the server allocated and the client omitted, so that
/// resubmitting the same manifest keeps the address and ports.
pub fn patch_allocated_values(svc: &mut Value, old: &Value) {
    let old_node_ports = super::node_ports(old);
    let new_node_ports: BTreeSet<u16> = super::node_ports(svc).into_iter().collect();
    let carry_ips = needs_cluster_ip(old) && needs_cluster_ip(svc);
    let carry_ports = needs_node_ports(old) && needs_node_ports(svc);
    let carry_hc = needs_health_check(old) && needs_health_check(svc);
    let Some(spec) = spec_mut(svc) else { return };
    if carry_ips {
        if spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(ip) = field(old, "clusterIP")
        {
            spec.insert("clusterIP".into(), ip.clone());
        }
        let empty = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if empty
            && let Some(ips) =
                field(old, "clusterIPs").filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
        {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    if carry_ports {
        // Node ports by port name; a value already used by another port of
        // the new version is not carried over.
        let used: BTreeSet<u16> = old_node_ports
            .iter()
            .copied()
            .filter(|p| new_node_ports.contains(p))
            .collect();
        let old_ports = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(port_value).is_some() {
                    continue;
                }
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                let carried = old_ports
                    .iter()
                    .rfind(|o| o["name"].as_str().unwrap_or("") == name)
                    .and_then(|o| port_value(&o["nodePort"]));
                if let Some(np) = carried.filter(|np| !used.contains(np)) {
                    p.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
    if carry_hc
        && spec
            .get("healthCheckNodePort")
            .and_then(port_value)
            .is_none()
        && let Some(hc) = field(old, "healthCheckNodePort")
    {
        spec.insert("healthCheckNodePort".into(), hc.clone());
    }
}

/// Keeps `clusterIPs` in step with `clusterIP` for clients that only know
/// the singular field.
pub fn normalize_cluster_ips(svc: &mut Value, old: Option<&Value>) {
    let ip = str_at(svc, "/spec/clusterIP").to_string();
    let ips = strings(svc, "/spec/clusterIPs");
    let Some(old) = old else {
        if !ip.is_empty()
            && ips.is_empty()
            && let Some(spec) = spec_mut(svc)
        {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        return;
    };
    let old_ip = str_at(old, "/spec/clusterIP").to_string();
    let old_ips = strings(old, "/spec/clusterIPs");
    let mut ips_now = ips.clone();
    if !old_ips.is_empty() && ips.is_empty() && old_ip == ip {
        ips_now = old_ips.clone();
        if let Some(spec) = spec_mut(svc) {
            spec.insert("clusterIPs".into(), json!(old_ips));
        }
    }
    if old_ip != ip && ips_now == old_ips {
        let Some(spec) = spec_mut(svc) else { return };
        if !old_ip.is_empty() && ip.is_empty() {
            spec.remove("clusterIPs");
        } else {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
    }
}

/// Drops fields the new type does not use when the client left them as
/// they were, as the API server does for type changes.
pub fn drop_type_dependent_fields(svc: &mut Value, old: &Value) {
    let wipe_ips = needs_cluster_ip(old) && !needs_cluster_ip(svc);
    let same_ips = same(old, svc, "clusterIP") && same(old, svc, "clusterIPs");
    let wipe_families = wipe_ips && same(old, svc, "ipFamilies");
    let wipe_policy = wipe_ips && same(old, svc, "ipFamilyPolicy");
    let new_ports: BTreeSet<u16> = super::node_ports(svc).into_iter().collect();
    let old_ports: BTreeSet<u16> = super::node_ports(old).into_iter().collect();
    let wipe_node_ports =
        needs_node_ports(old) && !needs_node_ports(svc) && new_ports.is_subset(&old_ports);
    let wipe_hc = needs_health_check(old)
        && !needs_health_check(svc)
        && same(old, svc, "healthCheckNodePort");
    let leaving_lb = ty(old) == "LoadBalancer" && ty(svc) != "LoadBalancer";
    let wipe_alloc_lb = leaving_lb
        && field(svc, "allocateLoadBalancerNodePorts").is_some()
        && same(old, svc, "allocateLoadBalancerNodePorts");
    let wipe_class = leaving_lb && same(old, svc, "loadBalancerClass");
    let wipe_etp = super::externally_accessible(old)
        && !super::externally_accessible(svc)
        && same(old, svc, "externalTrafficPolicy");
    let is_lb = ty(svc) == "LoadBalancer";
    let Some(spec) = spec_mut(svc) else { return };
    if wipe_ips && same_ips {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    if wipe_families {
        spec.remove("ipFamilies");
    }
    if wipe_policy {
        spec.remove("ipFamilyPolicy");
    }
    if wipe_node_ports && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
    if wipe_hc {
        spec.remove("healthCheckNodePort");
    }
    if wipe_alloc_lb {
        spec.remove("allocateLoadBalancerNodePorts");
    }
    if wipe_class {
        spec.remove("loadBalancerClass");
    }
    if wipe_etp {
        spec.remove("externalTrafficPolicy");
    }
    // A Service that is no longer a LoadBalancer loses its balancer status.
    if !is_lb && let Some(status) = svc.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("loadBalancer".into(), json!({}));
    }
}

/// The update-only checks: addresses, IP families, the load-balancer class
/// and the health-check node port may not change.
pub fn validate_update(svc: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let external_name = ty(svc) == "ExternalName" || ty(old) == "ExternalName";
    let headless = |s: &Value| strings(s, "/spec/clusterIPs") == ["None"];
    let both_headless = headless(old) && headless(svc);
    if !external_name && !both_headless {
        let (o, n) = (
            strings(old, "/spec/clusterIPs"),
            strings(svc, "/spec/clusterIPs"),
        );
        let shown = go_strings(&n);
        if n.is_empty() && !o.is_empty() {
            causes.push(Cause::invalid_shown(
                "spec.clusterIPs[0]",
                &shown,
                "primary clusterIP can not be unset",
            ));
        } else if o.first().is_some_and(|first| Some(first) != n.first()) {
            causes.push(Cause::invalid_shown(
                "spec.clusterIPs[0]",
                &shown,
                "may not change once set",
            ));
        }
    }
    if !external_name && headless(old) == headless(svc) && !headless(svc) {
        let (o, n) = (
            strings(old, "/spec/ipFamilies"),
            strings(svc, "/spec/ipFamilies"),
        );
        if o.first()
            .is_some_and(|first| n.first().is_some_and(|f| f != first))
        {
            causes.push(Cause::invalid_shown(
                "spec.ipFamilies[0]",
                &go_strings(&n),
                "may not change once set",
            ));
        }
    }
    if ty(old) == "LoadBalancer"
        && ty(svc) == "LoadBalancer"
        && !same(old, svc, "loadBalancerClass")
    {
        let shown = match field(svc, "loadBalancerClass").and_then(Value::as_str) {
            Some(class) => format!("{class:?}"),
            None => "\"null\"".into(),
        };
        causes.push(Cause::invalid_shown(
            "spec.loadBalancerClass",
            &shown,
            "may not change once set",
        ));
    }
    if needs_health_check(old) && needs_health_check(svc) && !same(old, svc, "healthCheckNodePort")
    {
        causes.push(Cause::forbidden(
            "spec.healthCheckNodePort",
            "field is immutable",
        ));
    }
    causes
}
