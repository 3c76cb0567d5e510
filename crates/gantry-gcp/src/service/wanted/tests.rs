use std::net::IpAddr;

use gantry_model::{
    OwnerKind,
    desired::{BackendNode, L4Listener, L4Options},
};

use super::*;

fn owner() -> Owner {
    Owner {
        cluster_id: "c1".into(),
        kind: OwnerKind::Service,
        namespace: "default".into(),
        name: "web".into(),
        uid: "u1".into(),
    }
}

fn node(name: &str, id: Option<&str>) -> BackendNode {
    BackendNode {
        name: name.into(),
        address: IpAddr::from([10, 0, 0, 1]),
        provider_id: id.map(str::to_string),
        zone: None,
    }
}

fn spec() -> L4Spec {
    L4Spec {
        listeners: vec![
            L4Listener {
                name: "dns".into(),
                protocol: Protocol::Udp,
                port: 53,
                node_port: 30053,
            },
            L4Listener {
                name: "http".into(),
                protocol: Protocol::Tcp,
                port: 80,
                node_port: 30080,
            },
        ],
        backends: vec![
            node("a", Some("gce://p/us-central1-a/a")),
            node("b", Some("gce://p/us-central1-b/b")),
            node("c", None),
        ],
        health_check: HealthCheck::NodePortTcp,
        source_ranges: vec![],
        requested_ip: None,
        options: L4Options::default(),
    }
}

#[test]
fn provider_ids_parse_strictly() {
    let i = parse_provider_id("gce://proj/us-central1-a/node-1").expect("valid");
    assert_eq!(
        i.link(),
        "projects/proj/zones/us-central1-a/instances/node-1"
    );
    for bad in [
        "aws:///us-east-1a/i-1",
        "gce://proj/us-central1-a",
        "gce://proj/us-central1-a/n/x",
        "gce:///us-central1-a/n",
        "gce://proj/Zone/n",
    ] {
        assert!(parse_provider_id(bad).is_none(), "{bad}");
    }
}

#[test]
fn one_rule_per_protocol_nodes_by_zone_and_a_firewall_with_checkers() {
    let w = wanted(&owner(), "gcp", &spec(), &GcpSettings::default()).expect("valid");
    assert_eq!(w.rules.len(), 2);
    assert!(w.unused_rules.is_empty());
    assert_eq!(w.zones.len(), 2, "node c has no instance yet");
    assert_eq!(w.probe, Probe::Tcp(30080));
    assert_eq!(
        w.firewall_ports["tcp"],
        BTreeSet::from([80, 30080]),
        "frontend port, node port and the probe's port"
    );
    assert_eq!(w.firewall_ports["udp"], BTreeSet::from([53, 30053]));
    assert!(w.source_ranges.contains("0.0.0.0/0"));
    for r in HEALTH_CHECKER_RANGES {
        assert!(w.source_ranges.contains(*r));
    }
    assert_eq!(w.scheme, Scheme::InternetFacing);
}

#[test]
fn target_pools_probe_kube_proxy_and_many_ports_take_a_range() {
    let mut s = spec();
    s.listeners = (0..7)
        .map(|i| L4Listener {
            name: format!("p{i}"),
            protocol: Protocol::Tcp,
            port: 8000 + i,
            node_port: 30000 + i,
        })
        .collect();
    let settings = GcpSettings {
        target_pools: true,
        ..GcpSettings::default()
    };
    let w = wanted(&owner(), "gcp", &s, &settings).expect("valid");
    assert_eq!(w.probe, Probe::Http(10256, "/healthz".into()));
    assert_eq!(w.rules[0].port_list(), Vec::<String>::new());
    assert_eq!(w.rules[0].port_range().as_deref(), Some("8000-8006"));
    assert_eq!(w.unused_rules.len(), 1, "the UDP rule is not used");
}

#[test]
fn invalid_options_name_the_field_and_value() {
    let cases: Vec<(L4Spec, GcpSettings, &str)> = vec![
        (
            L4Spec {
                options: L4Options {
                    proxy_protocol: true,
                    ..L4Options::default()
                },
                ..spec()
            },
            GcpSettings::default(),
            "gantry.dev/proxy-protocol",
        ),
        (
            L4Spec {
                options: L4Options {
                    subnets: vec!["subnet-1".into()],
                    ..L4Options::default()
                },
                ..spec()
            },
            GcpSettings::default(),
            "subnet-1",
        ),
        (
            L4Spec {
                requested_ip: Some("2001:db8::1".parse().expect("ip")),
                ..spec()
            },
            GcpSettings::default(),
            "2001:db8::1",
        ),
        (
            L4Spec {
                options: L4Options {
                    scheme: Some(Scheme::Internal),
                    ..L4Options::default()
                },
                ..spec()
            },
            GcpSettings {
                target_pools: true,
                ..GcpSettings::default()
            },
            "spec.gcp.targetPools",
        ),
        (
            L4Spec {
                backends: vec![node("x", Some("aws:///us-east-1a/i-1"))],
                ..spec()
            },
            GcpSettings::default(),
            "aws:///us-east-1a/i-1",
        ),
    ];
    for (s, settings, needle) in cases {
        let err = wanted(&owner(), "gcp", &s, &settings).expect_err(needle);
        assert_eq!(err.class(), gantry_model::provider::ErrorClass::Permanent);
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    }
}
