//! Allocation decisions over a hand-built record.

use std::collections::BTreeMap;

use gantry_model::local::LocalOwner;

use super::*;

fn pools(entries: &[&str]) -> Pools {
    Pools::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("pools")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn obj(name: &str, addr: &str, key: Option<&str>, ports: &[u16]) -> LocalLoadBalancer {
    let mut o = LocalLoadBalancer::new(
        name,
        LocalLoadBalancerSpec {
            class: "metal".into(),
            owner: LocalOwner {
                kind: "Service".into(),
                namespace: "ns".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
            },
            mode: LocalMode::L2,
            addresses: vec![ip(addr)],
            nodes: vec![],
            l4: ports
                .iter()
                .map(|p| gantry_model::local::LocalL4Listener {
                    protocol: Protocol::Tcp,
                    port: *p,
                    node_port: 30000 + p,
                    health_check: gantry_model::local::LocalHealthCheck::Tcp,
                    proxy_protocol: false,
                })
                .collect(),
            l7: None,
            source_ranges: vec![],
        },
    );
    if let Some(k) = key {
        o.metadata.annotations = Some(BTreeMap::from([(
            ANNOTATION_SHARED_IP_KEY.to_string(),
            k.to_string(),
        )]));
    }
    o
}

fn tcp(ports: &[u16]) -> BTreeSet<(u16, Protocol)> {
    ports.iter().map(|p| (*p, Protocol::Tcp)).collect()
}

fn req<'a>(ports: &'a BTreeSet<(u16, Protocol)>) -> Request<'a> {
    Request {
        object: "me",
        owner: "ns/me",
        class: "metal",
        current: None,
        requested: None,
        shared_key: None,
        ports,
    }
}

#[test]
fn fresh_allocation_takes_the_lowest_free_address_and_then_exhausts() {
    let p = pools(&["192.0.2.0/30"]);
    let ports = tcp(&[80]);
    let mut index = Index::default();
    assert_eq!(
        allocate(&p, &index, &req(&ports)).expect("first"),
        ip("192.0.2.1")
    );
    index.insert(&obj("a", "192.0.2.1", None, &[80]));
    assert_eq!(
        allocate(&p, &index, &req(&ports)).expect("second"),
        ip("192.0.2.2")
    );
    index.insert(&obj("b", "192.0.2.2", None, &[80]));
    let err = allocate(&p, &index, &req(&ports)).expect_err("exhausted");
    assert!(matches!(err, ProviderError::Exhausted { .. }), "{err}");
    index.remove("a");
    assert_eq!(
        allocate(&p, &index, &req(&ports)).expect("freed"),
        ip("192.0.2.1")
    );
}

#[test]
fn ipv6_is_used_only_when_pools_are_ipv6_or_it_is_requested() {
    let ports = tcp(&[80]);
    let v6 = pools(&["2001:db8::/126"]);
    assert_eq!(
        allocate(&v6, &Index::default(), &req(&ports)).expect("v6"),
        ip("2001:db8::")
    );
    let mixed = pools(&["2001:db8::/126", "192.0.2.8/31"]);
    assert_eq!(
        allocate(&mixed, &Index::default(), &req(&ports)).expect("v4 first"),
        ip("192.0.2.8")
    );
    let r = Request {
        requested: Some(ip("2001:db8::2")),
        ..req(&ports)
    };
    assert_eq!(
        allocate(&mixed, &Index::default(), &r).expect("requested"),
        ip("2001:db8::2")
    );
}

#[test]
fn requested_addresses_must_be_in_a_pool_and_free() {
    let p = pools(&["192.0.2.0/29"]);
    let ports = tcp(&[80]);
    let mut index = Index::default();
    index.insert(&obj("a", "192.0.2.3", None, &[443]));
    let outside = Request {
        requested: Some(ip("198.51.100.1")),
        ..req(&ports)
    };
    let err = allocate(&p, &index, &outside)
        .expect_err("outside")
        .to_string();
    assert!(err.contains("spec.loadBalancerIP 198.51.100.1"), "{err}");
    let network = Request {
        requested: Some(ip("192.0.2.0")),
        ..req(&ports)
    };
    assert!(
        allocate(&p, &index, &network).is_err(),
        "network address is not usable"
    );
    let taken = Request {
        requested: Some(ip("192.0.2.3")),
        ..req(&ports)
    };
    let err = allocate(&p, &index, &taken).expect_err("taken").to_string();
    assert!(err.contains("already allocated to ns/a"), "{err}");
}

#[test]
fn current_address_is_kept_even_outside_the_pools() {
    // Pools may shrink; a balancer keeps its address rather than move.
    let p = pools(&["192.0.2.0/30"]);
    let ports = tcp(&[80]);
    let r = Request {
        current: Some(ip("203.0.113.9")),
        ..req(&ports)
    };
    assert!(!needs_new_address(&r));
    assert_eq!(
        allocate(&p, &Index::default(), &r).expect("kept"),
        ip("203.0.113.9")
    );
    let moved = Request {
        requested: Some(ip("192.0.2.2")),
        ..r
    };
    assert!(needs_new_address(&moved));
}

#[test]
fn shared_keys_share_on_disjoint_ports_only() {
    let p = pools(&["192.0.2.0/30"]);
    let mut index = Index::default();
    index.insert(&obj("a", "192.0.2.1", Some("k"), &[80]));
    let ports = tcp(&[443]);
    let sharing = Request {
        shared_key: Some("k"),
        ..req(&ports)
    };
    assert_eq!(
        allocate(&p, &index, &sharing).expect("share"),
        ip("192.0.2.1")
    );
    let other_key = Request {
        shared_key: Some("other"),
        ..req(&ports)
    };
    assert_eq!(
        allocate(&p, &index, &other_key).expect("own"),
        ip("192.0.2.2")
    );

    let clashing_ports = tcp(&[80, 8080]);
    let clashing = Request {
        shared_key: Some("k"),
        ..req(&clashing_ports)
    };
    let err = allocate(&p, &index, &clashing)
        .expect_err("clash")
        .to_string();
    assert!(err.contains("ports 80/TCP collide with ns/a"), "{err}");
    let asking = Request {
        requested: Some(ip("192.0.2.1")),
        ..clashing
    };
    let err = allocate(&p, &index, &asking)
        .expect_err("clash")
        .to_string();
    assert!(err.contains("ports 80/TCP collide with ns/a"), "{err}");
}
