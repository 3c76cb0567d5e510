//! Plan step: short, field-level descriptions of what an ensure would write,
//! for `plan` and for the log line of every write.

use std::{collections::BTreeSet, fmt::Display, net::IpAddr};

use gantry_model::{class::LocalMode, local::LocalLoadBalancerSpec};

/// `address 192.0.2.1, 2 listeners` (or routes for an Ingress).
pub(crate) fn describe_create(spec: &LocalLoadBalancerSpec) -> String {
    let mut parts = vec![addresses(&spec.addresses)];
    if !spec.l4.is_empty() {
        parts.push(count(spec.l4.len(), "listener"));
    }
    if let Some(l7) = &spec.l7 {
        parts.push(count(l7.rules.len(), "rule"));
        parts.push(count(l7.backends.len(), "backend"));
    }
    parts.push(count(spec.nodes.len(), "node"));
    parts.join(", ")
}

/// What differs between the published spec and the one an ensure would
/// write; empty when they are equal and `metadata_changed` is false.
pub(crate) fn describe_update(
    old: &LocalLoadBalancerSpec,
    new: &LocalLoadBalancerSpec,
    metadata_changed: bool,
) -> String {
    let mut parts = Vec::new();
    if old.class != new.class || old.owner != new.owner {
        parts.push("owner".to_string());
    }
    if old.mode != new.mode {
        parts.push(format!("mode {} -> {}", mode(old.mode), mode(new.mode)));
    }
    if old.addresses != new.addresses {
        parts.push(format!(
            "{} -> {}",
            addresses(&old.addresses),
            list(&new.addresses)
        ));
    }
    if old.nodes != new.nodes {
        let before: BTreeSet<&str> = old.nodes.iter().map(|n| n.name.as_str()).collect();
        let after: BTreeSet<&str> = new.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut words = vec!["nodes".to_string()];
        words.extend(after.difference(&before).map(|n| format!("+{n}")));
        words.extend(before.difference(&after).map(|n| format!("-{n}")));
        if words.len() == 1 {
            words.push("addresses changed".into());
        }
        parts.push(words.join(" "));
    }
    if old.l4 != new.l4 {
        let ports = |spec: &LocalLoadBalancerSpec| {
            list(
                &spec
                    .l4
                    .iter()
                    .map(|l| format!("{}/{}->{}", l.port, l.protocol.as_str(), l.node_port))
                    .collect::<Vec<_>>(),
            )
        };
        let (before, after) = (ports(old), ports(new));
        if before == after {
            parts.push("listener health checks or options".into());
        } else {
            parts.push(format!("listeners {before} -> {after}"));
        }
    }
    if old.l7 != new.l7 {
        parts.push("routes".into());
    }
    if old.source_ranges != new.source_ranges {
        parts.push(format!(
            "sourceRanges {} -> {}",
            list(&old.source_ranges),
            list(&new.source_ranges)
        ));
    }
    if metadata_changed {
        parts.push("labels/annotations".into());
    }
    parts.join("; ")
}

fn addresses(addrs: &[IpAddr]) -> String {
    match addrs {
        [] => "no address".to_string(),
        [one] => format!("address {one}"),
        many => format!("addresses {}", list(many)),
    }
}

fn list<T: Display>(items: &[T]) -> String {
    let words: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", words.join(", "))
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn mode(mode: LocalMode) -> &'static str {
    match mode {
        LocalMode::L2 => "l2",
        LocalMode::NodeAddresses => "nodeAddresses",
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::{
        desired::Protocol,
        local::{LocalHealthCheck, LocalL4Listener, LocalNode, LocalOwner},
    };

    use super::*;

    fn spec() -> LocalLoadBalancerSpec {
        LocalLoadBalancerSpec {
            class: "metal".into(),
            owner: LocalOwner {
                kind: "Service".into(),
                namespace: "ns".into(),
                name: "web".into(),
                uid: "u".into(),
            },
            mode: LocalMode::L2,
            addresses: vec!["192.0.2.1".parse().expect("ip")],
            nodes: vec![LocalNode {
                name: "n1".into(),
                address: "10.0.0.1".parse().expect("ip"),
            }],
            l4: [80, 443]
                .into_iter()
                .map(|port| LocalL4Listener {
                    protocol: Protocol::Tcp,
                    port,
                    node_port: 30000 + port,
                    health_check: LocalHealthCheck::Tcp,
                    proxy_protocol: false,
                })
                .collect(),
            l7: None,
            source_ranges: vec![],
        }
    }

    #[test]
    fn create_summarises_address_and_listeners() {
        assert_eq!(
            describe_create(&spec()),
            "address 192.0.2.1, 2 listeners, 1 node"
        );
    }

    #[test]
    fn update_names_the_fields_that_differ() {
        let old = spec();
        assert_eq!(describe_update(&old, &old, false), "");
        let mut new = spec();
        new.nodes.push(LocalNode {
            name: "n2".into(),
            address: "10.0.0.2".parse().expect("ip"),
        });
        new.l4[1].port = 8443;
        new.source_ranges = vec!["10.0.0.0/8".into()];
        assert_eq!(
            describe_update(&old, &new, true),
            "nodes +n2; listeners [80/TCP->30080, 443/TCP->30443] -> [80/TCP->30080, \
             8443/TCP->30443]; sourceRanges [] -> [10.0.0.0/8]; labels/annotations"
        );
    }
}
