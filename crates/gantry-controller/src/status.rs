//! `status.loadBalancer.ingress` in a form common to Services and Ingresses:
//! built from what the provider reports, read back from objects, compared,
//! and rendered for a server-side-apply patch.

use gantry_model::ObservedStatus;
use serde_json::{Value, json};

/// One entry of `status.loadBalancer.ingress`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    /// IP address.
    pub ip: Option<String>,
    /// DNS name.
    pub hostname: Option<String>,
    /// `VIP` for Service IPs (Ingress status has no such field).
    pub ip_mode: Option<String>,
    /// `(port, protocol)` pairs, sorted.
    pub ports: Vec<(i32, String)>,
}

/// The addresses to publish for `observed`. `service` adds `ipMode: VIP`
/// to IP entries (traffic to the address goes through the balancer).
pub fn from_observed(observed: &ObservedStatus, service: bool) -> Vec<Address> {
    let mut out: Vec<Address> = observed
        .ingress
        .iter()
        .map(|p| {
            let mut ports: Vec<(i32, String)> = p
                .ports
                .iter()
                .map(|ps| (i32::from(ps.port), ps.protocol.as_str().to_string()))
                .collect();
            ports.sort();
            Address {
                ip: p.ip.map(|ip| ip.to_string()),
                hostname: p.hostname.clone(),
                ip_mode: (service && p.ip.is_some()).then(|| "VIP".to_string()),
                ports,
            }
        })
        .collect();
    out.sort();
    out
}

/// Normalise addresses read from an object for comparison.
pub fn normalise(mut addrs: Vec<Address>) -> Vec<Address> {
    for a in &mut addrs {
        a.ports.sort();
    }
    addrs.sort();
    addrs
}

/// JSON for `status.loadBalancer.ingress`.
pub fn to_json(addrs: &[Address]) -> Vec<Value> {
    addrs
        .iter()
        .map(|a| {
            let mut v = serde_json::Map::new();
            if let Some(ip) = &a.ip {
                v.insert("ip".into(), json!(ip));
            }
            if let Some(h) = &a.hostname {
                v.insert("hostname".into(), json!(h));
            }
            if let Some(m) = &a.ip_mode {
                v.insert("ipMode".into(), json!(m));
            }
            if !a.ports.is_empty() {
                v.insert(
                    "ports".into(),
                    Value::Array(
                        a.ports
                            .iter()
                            .map(|(port, protocol)| json!({"port": port, "protocol": protocol}))
                            .collect(),
                    ),
                );
            }
            Value::Object(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use gantry_model::{
        desired::Protocol,
        provider::{IngressPoint, PortStatus},
    };

    use super::*;

    fn observed() -> ObservedStatus {
        ObservedStatus {
            ingress: vec![IngressPoint {
                ip: Some("192.0.2.7".parse::<IpAddr>().expect("ip")),
                hostname: None,
                ports: vec![
                    PortStatus {
                        port: 443,
                        protocol: Protocol::Tcp,
                    },
                    PortStatus {
                        port: 53,
                        protocol: Protocol::Udp,
                    },
                ],
            }],
            ready: true,
        }
    }

    #[test]
    fn service_addresses_have_vip_mode_and_sorted_ports() {
        let a = from_observed(&observed(), true);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].ip_mode.as_deref(), Some("VIP"));
        assert_eq!(a[0].ports, vec![(53, "UDP".into()), (443, "TCP".into())]);
        let j = to_json(&a);
        assert_eq!(
            j[0],
            json!({"ip": "192.0.2.7", "ipMode": "VIP",
                   "ports": [{"port": 53, "protocol": "UDP"}, {"port": 443, "protocol": "TCP"}]})
        );
        let ing = from_observed(&observed(), false);
        assert_eq!(ing[0].ip_mode, None);
    }

    #[test]
    fn comparison_is_order_insensitive() {
        let mut read = from_observed(&observed(), true);
        read[0].ports.reverse();
        assert_ne!(read, from_observed(&observed(), true));
        assert_eq!(normalise(read), from_observed(&observed(), true));
    }
}
