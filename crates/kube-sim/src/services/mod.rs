//! Service semantics the real API server owns: ClusterIP and NodePort
//! allocation, the defaults it fills in, and its validation errors.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr},
    ops::RangeInclusive,
};

use ipnet::IpNet;
use serde_json::{Value, json};

use crate::error::{ApiError, Cause};

/// ClusterIP and NodePort allocators.
#[derive(Debug)]
pub struct Allocators {
    cidr: IpNet,
    ips: BTreeSet<u128>,
    next_ip: u128,
    ports: RangeInclusive<u16>,
    used_ports: BTreeSet<u16>,
    next_port: u16,
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Allocators {
    /// Allocators over a service CIDR and a node-port range.
    pub fn new(cidr: IpNet, ports: RangeInclusive<u16>) -> Self {
        let next_port = *ports.start();
        Allocators {
            cidr,
            ips: BTreeSet::new(),
            next_ip: 1,
            ports,
            used_ports: BTreeSet::new(),
            next_port,
        }
    }

    fn ip_at(&self, offset: u128) -> IpAddr {
        let base = ip_to_u128(self.cidr.network());
        match self.cidr {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from((base + offset) as u32)),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(base + offset)),
        }
    }

    fn size(&self) -> u128 {
        let bits = match self.cidr {
            IpNet::V4(_) => 32,
            IpNet::V6(_) => 128,
        };
        let host_bits = bits - u32::from(self.cidr.prefix_len());
        if host_bits >= 127 {
            u128::MAX / 2
        } else {
            1u128 << host_bits
        }
    }

    /// Usable offsets exclude the network and (for IPv4) broadcast addresses.
    fn usable(&self, offset: u128) -> bool {
        offset >= 1 && offset < self.size() - 1
    }

    /// Allocates a specific ClusterIP; `Err` carries the field detail.
    pub fn take_ip(&mut self, ip: &str) -> Result<(), String> {
        let parsed: IpAddr = ip.parse().map_err(|_| {
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()
        })?;
        if !self.cidr.contains(&parsed) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ));
        }
        let offset = ip_to_u128(parsed) - ip_to_u128(self.cidr.network());
        if !self.usable(offset) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                self.cidr
            ));
        }
        if !self.ips.insert(offset) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Allocates the next free ClusterIP.
    pub fn next_ip(&mut self) -> Option<String> {
        let size = self.size();
        let span = size.saturating_sub(2).min(1 << 24);
        for i in 0..span {
            let offset = 1 + (self.next_ip - 1 + i) % span;
            if self.usable(offset) && !self.ips.contains(&offset) {
                self.ips.insert(offset);
                self.next_ip = offset + 1;
                return Some(self.ip_at(offset).to_string());
            }
        }
        None
    }

    /// Releases a ClusterIP.
    pub fn release_ip(&mut self, ip: &str) {
        if let Ok(parsed) = ip.parse::<IpAddr>()
            && self.cidr.contains(&parsed)
        {
            self.ips
                .remove(&(ip_to_u128(parsed) - ip_to_u128(self.cidr.network())));
        }
    }

    /// Allocates a specific node port; `Err` carries the field detail.
    pub fn take_port(&mut self, port: u16) -> Result<(), String> {
        if !self.ports.contains(&port) {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {}-{}",
                self.ports.start(),
                self.ports.end()
            ));
        }
        if !self.used_ports.insert(port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    /// Allocates the next free node port.
    pub fn next_port(&mut self) -> Option<u16> {
        let (lo, hi) = (*self.ports.start() as u32, *self.ports.end() as u32);
        let span = hi - lo + 1;
        for i in 0..span {
            let p = (lo + (self.next_port as u32 - lo + i) % span) as u16;
            if !self.used_ports.contains(&p) {
                self.used_ports.insert(p);
                self.next_port = if p as u32 == hi { lo as u16 } else { p + 1 };
                return Some(p);
            }
        }
        None
    }

    /// Releases a node port.
    pub fn release_port(&mut self, port: u16) {
        self.used_ports.remove(&port);
    }
}

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

fn validate(svc: &Value) -> Vec<Cause> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocators {
        Allocators::new("10.96.0.0/16".parse().expect("cidr"), 30000..=30002)
    }

    #[test]
    fn ip_allocation_skips_taken_and_reuses_released() {
        let mut a = alloc();
        assert_eq!(a.next_ip().as_deref(), Some("10.96.0.1"));
        a.take_ip("10.96.0.2").expect("free");
        assert_eq!(a.next_ip().as_deref(), Some("10.96.0.3"));
        assert!(a.take_ip("10.96.0.2").is_err());
        assert!(a.take_ip("10.97.0.2").is_err());
        assert!(a.take_ip("10.96.255.255").is_err());
        a.release_ip("10.96.0.2");
        a.take_ip("10.96.0.2").expect("released");
    }

    #[test]
    fn port_allocation_wraps_and_exhausts() {
        let mut a = alloc();
        assert_eq!(a.next_port(), Some(30000));
        a.take_port(30002).expect("free");
        assert_eq!(a.next_port(), Some(30001));
        assert_eq!(a.next_port(), None);
        a.release_port(30000);
        assert_eq!(a.next_port(), Some(30000));
        assert!(a.take_port(29999).is_err());
    }
}
