//! Planning: which listeners, merges and conflicts.

use std::collections::BTreeMap;

use gantry_model::{
    class::LocalMode,
    local::{LocalL7Backend, LocalL7Path, LocalL7Rule, LocalOwner, LocalTls},
};

use super::*;
use crate::config::ObjectConfig;

fn spec(addr: &str) -> gantry_model::local::LocalLoadBalancerSpec {
    gantry_model::local::LocalLoadBalancerSpec {
        class: "local".into(),
        owner: LocalOwner {
            kind: "Service".into(),
            namespace: "default".into(),
            name: "web".into(),
            uid: "u".into(),
        },
        mode: LocalMode::NodeAddresses,
        addresses: vec![addr.parse().expect("ip")],
        nodes: vec![LocalNode {
            name: "n1".into(),
            address: "127.0.60.1".parse().expect("ip"),
        }],
        l4: Vec::new(),
        l7: None,
        source_ranges: Vec::new(),
    }
}

fn l4(port: u16, protocol: Protocol) -> LocalL4Listener {
    LocalL4Listener {
        protocol,
        port,
        node_port: 30000 + port,
        health_check: LocalHealthCheck::Tcp,
        proxy_protocol: false,
    }
}

fn l7(host: &str, tls: bool) -> LocalL7 {
    LocalL7 {
        rules: vec![LocalL7Rule {
            host: Some(host.into()),
            paths: vec![LocalL7Path {
                path: "/".into(),
                path_type: "Prefix".into(),
                backend: "b".into(),
            }],
        }],
        default_backend: None,
        backends: BTreeMap::from([(
            "b".to_owned(),
            LocalL7Backend {
                node_port: 30080,
                health_check: LocalHealthCheck::Tcp,
            },
        )]),
        tls: if tls {
            vec![LocalTls {
                secret_name: "s".into(),
                hosts: vec![host.into()],
            }]
        } else {
            Vec::new()
        },
        ssl_redirect: false,
        allow_http: true,
    }
}

fn key(addr: &str, port: u16, transport: Transport) -> ListenerKey {
    ListenerKey {
        addr: SocketAddr::new(addr.parse().expect("ip"), port),
        transport,
    }
}

#[test]
fn l4_conflicts_go_to_the_later_name() {
    let mut a = spec("127.0.50.1");
    a.l4 = vec![l4(80, Protocol::Tcp), l4(53, Protocol::Udp)];
    let mut b = spec("127.0.50.1");
    b.l4 = vec![l4(80, Protocol::Tcp), l4(80, Protocol::Udp)];
    let p = plan(
        &[ObjectConfig::new("b", 1, b), ObjectConfig::new("a", 2, a)],
        &BindPolicy::All,
    );
    assert_eq!(p.listeners.len(), 3);
    assert!(p.objects["a"].problems.is_empty());
    assert_eq!(p.objects["a"].generation, 2);
    let problems = &p.objects["b"].problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("127.0.50.1:80/tcp") && problems[0].contains("LocalLoadBalancer a")
    );
    assert_eq!(
        p.objects["b"].keys,
        vec![key("127.0.50.1", 80, Transport::Udp)]
    );
}

#[test]
fn l7_objects_share_listeners_and_tls_adds_443() {
    let mut a = spec("127.0.50.1");
    a.l7 = Some(l7("a.test", true));
    let mut b = spec("127.0.50.1");
    b.l7 = Some(l7("b.test", false));
    let p = plan(
        &[ObjectConfig::new("a", 1, a), ObjectConfig::new("b", 1, b)],
        &BindPolicy::All,
    );
    match &p.listeners[&key("127.0.50.1", 80, Transport::Tcp)] {
        ListenerPlan::L7 { tls: false, sites } => assert_eq!(sites.len(), 2),
        other => panic!("unexpected {other:?}"),
    }
    match &p.listeners[&key("127.0.50.1", 443, Transport::Tcp)] {
        ListenerPlan::L7 { tls: true, sites } => assert_eq!(sites[0].owner, "a"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p.listeners.len(), 2);
}

#[test]
fn l4_and_l7_on_one_port_conflict() {
    let mut a = spec("127.0.50.1");
    a.l4 = vec![l4(80, Protocol::Tcp)];
    let mut b = spec("127.0.50.1");
    b.l7 = Some(l7("b.test", false));
    let p = plan(
        &[ObjectConfig::new("a", 1, a), ObjectConfig::new("b", 1, b)],
        &BindPolicy::All,
    );
    assert_eq!(p.objects["b"].problems.len(), 1);
    assert!(p.objects["b"].keys.is_empty());
}

#[test]
fn own_addresses_filter_objects_and_addresses() {
    let mut a = spec("127.0.50.1");
    a.addresses.push("127.0.50.2".parse().expect("ip"));
    a.l4 = vec![l4(80, Protocol::Tcp)];
    let mut b = spec("127.0.50.3");
    b.l4 = vec![l4(80, Protocol::Tcp)];
    let bind = BindPolicy::OwnAddresses(vec!["127.0.50.2".parse().expect("ip")]);
    let p = plan(
        &[ObjectConfig::new("a", 1, a), ObjectConfig::new("b", 1, b)],
        &bind,
    );
    assert_eq!(p.objects.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(
        p.listeners.keys().copied().collect::<Vec<_>>(),
        [key("127.0.50.2", 80, Transport::Tcp)]
    );
}

#[test]
fn source_ranges_fail_closed() {
    let (r, problems) = SourceRanges::parse(&["127.0.0.0/30".into(), "bogus".into(), "::1".into()]);
    assert_eq!(problems.len(), 1);
    assert!(r.allows("127.0.0.3".parse().expect("ip")));
    assert!(
        r.allows("::ffff:127.0.0.1".parse().expect("ip")),
        "v4-mapped clients are v4"
    );
    assert!(r.allows("::1".parse().expect("ip")));
    assert!(!r.allows("127.0.0.4".parse().expect("ip")));
    let (r, problems) = SourceRanges::parse(&["bogus".into()]);
    assert_eq!(problems.len(), 1);
    assert!(
        !r.allows("127.0.0.1".parse().expect("ip")),
        "all-invalid admits nobody"
    );
    assert!(
        SourceRanges::parse(&[])
            .0
            .allows("192.0.2.1".parse().expect("ip"))
    );
    let open = SourceRanges::open();
    assert!(SourceRanges::union(&[&r, &open]).allows("192.0.2.1".parse().expect("ip")));
    assert!(!SourceRanges::union(&[&r, &r]).allows("192.0.2.1".parse().expect("ip")));
}

#[test]
fn udp_listeners_with_tcp_checks_are_not_probed() {
    let nodes = [LocalNode {
        name: "n".into(),
        address: "127.0.60.1".parse().expect("ip"),
    }];
    assert_eq!(
        targets(&nodes, 30053, &LocalHealthCheck::Tcp, true)[0].probe,
        Probe::None
    );
    assert_eq!(
        targets(&nodes, 30053, &LocalHealthCheck::Tcp, false)[0].probe,
        Probe::Tcp
    );
    let http = LocalHealthCheck::Http {
        port: 10256,
        path: "/healthz".into(),
    };
    let t = &targets(&nodes, 30053, &http, true)[0];
    assert_eq!(
        t.probe,
        Probe::Http {
            port: 10256,
            path: "/healthz".into()
        }
    );
    assert_eq!(t.addr.port(), 30053);
}
