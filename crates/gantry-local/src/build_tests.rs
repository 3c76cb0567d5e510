//! Table tests of the desired-state -> spec translation.

use gantry_model::{
    Owner, OwnerKind,
    desired::{
        BackendNode, L4Listener, L4Options, L7Backend, L7Options, L7Path, L7Rule, TlsCertificate,
    },
    local::{LocalLoadBalancerStatus, LocalNodeStatus},
};

use super::*;

fn owner(kind: OwnerKind) -> Owner {
    Owner {
        cluster_id: "c1".into(),
        kind,
        namespace: "default".into(),
        name: "web".into(),
        uid: "uid-1".into(),
    }
}

fn node(name: &str, ip: &str) -> BackendNode {
    BackendNode {
        name: name.into(),
        address: ip.parse().expect("ip"),
        provider_id: None,
        zone: None,
    }
}

fn l4() -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: owner(OwnerKind::Service),
        class: "metal".into(),
        provider: ProviderKind::Local,
        spec: LoadBalancerSpec::L4(L4Spec {
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
                node("b", "10.0.0.2"),
                node("a", "10.0.0.1"),
                node("c", "10.0.0.1"),
            ],
            health_check: HealthCheck::Http {
                port: 32000,
                path: "/healthz".into(),
            },
            source_ranges: vec!["203.0.113.0/24".parse().expect("net")],
            requested_ip: Some("192.0.2.7".parse().expect("ip")),
            options: L4Options {
                proxy_protocol: true,
                shared_ip_key: Some("k".into()),
                ..L4Options::default()
            },
        }),
    }
}

fn l7() -> DesiredLoadBalancer {
    let backend = |svc: &str, port, node_port| L7Backend {
        namespace: "default".into(),
        service: svc.into(),
        port,
        node_port,
    };
    DesiredLoadBalancer {
        owner: owner(OwnerKind::Ingress),
        class: "metal".into(),
        provider: ProviderKind::Local,
        spec: LoadBalancerSpec::L7(L7Spec {
            rules: vec![L7Rule {
                host: Some("testhost.com".into()),
                paths: vec![
                    L7Path {
                        path: "/".into(),
                        path_match: PathMatch::Prefix,
                        backend: 0,
                    },
                    L7Path {
                        path: "/exact".into(),
                        path_match: PathMatch::Exact,
                        backend: 1,
                    },
                ],
            }],
            default_backend: Some(1),
            backends: vec![
                backend("service-test", 80, 30100),
                backend("other", 8080, 30200),
            ],
            health_checks: vec![HealthCheck::NodePortTcp],
            nodes: vec![node("n1", "10.0.0.1")],
            tls: vec![TlsCertificate {
                secret_name: "my-ssl-secret".into(),
                hosts: vec!["testhost.com".into()],
                cert_pem: "-----BEGIN CERTIFICATE-----".into(),
                key_pem: "-----BEGIN PRIVATE KEY-----".into(),
            }],
            options: L7Options {
                ssl_redirect: true,
                ..L7Options::default()
            },
        }),
    }
}

#[test]
fn l4_maps_listeners_checks_ranges_and_nodes() {
    let d = draft(&l4(), "metal", LocalMode::L2).expect("draft");
    assert_eq!(d.spec.class, "metal");
    assert_eq!(d.spec.owner.kind, "Service");
    assert!(
        d.spec.addresses.is_empty(),
        "l2 addresses come from allocation"
    );
    assert_eq!(
        d.spec
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(d.spec.l4.len(), 2);
    assert_eq!(d.spec.l4[0].protocol, Protocol::Udp);
    assert_eq!(d.spec.l4[1].node_port, 30080);
    assert!(d.spec.l4.iter().all(|l| l.proxy_protocol));
    assert_eq!(
        d.spec.l4[0].health_check,
        LocalHealthCheck::Http {
            port: 32000,
            path: "/healthz".into()
        }
    );
    assert_eq!(d.spec.source_ranges, ["203.0.113.0/24"]);
    assert_eq!(d.requested, Some("192.0.2.7".parse().expect("ip")));
    assert_eq!(d.shared_key.as_deref(), Some("k"));
    assert_eq!(
        d.ports,
        BTreeSet::from([(53, Protocol::Udp), (80, Protocol::Tcp)])
    );
}

#[test]
fn node_addresses_mode_uses_sorted_distinct_node_addresses() {
    let d = draft(&l4(), "metal", LocalMode::NodeAddresses).expect("draft");
    let addrs: Vec<String> = d.spec.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(addrs, ["10.0.0.1", "10.0.0.2"]);
}

#[test]
fn l7_keys_backends_and_keeps_only_secret_names() {
    let d = draft(&l7(), "metal", LocalMode::L2).expect("draft");
    let l7 = d.spec.l7.clone().expect("l7");
    assert_eq!(l7.rules[0].paths[0].backend, "default/service-test:80");
    assert_eq!(l7.rules[0].paths[0].path_type, "Prefix");
    assert_eq!(l7.rules[0].paths[1].path_type, "Exact");
    assert_eq!(l7.default_backend.as_deref(), Some("default/other:8080"));
    assert_eq!(
        l7.backends["default/other:8080"].health_check,
        LocalHealthCheck::Tcp
    );
    assert_eq!(l7.backends["default/service-test:80"].node_port, 30100);
    assert_eq!(l7.tls.len(), 1);
    assert_eq!(l7.tls[0].secret_name, "my-ssl-secret");
    assert!(l7.ssl_redirect && l7.allow_http);
    let json = serde_json::to_string(&d.spec).expect("json");
    assert!(!json.contains("BEGIN"), "{json}");
    assert_eq!(
        d.ports,
        BTreeSet::from([(80, Protocol::Tcp), (443, Protocol::Tcp)])
    );
}

#[test]
fn bad_inputs_are_refused() {
    let mut other_class = l4();
    other_class.class = "elsewhere".into();
    assert!(matches!(
        draft(&other_class, "metal", LocalMode::L2),
        Err(ProviderError::Rejected { .. })
    ));
    let mut bad_index = l7();
    if let LoadBalancerSpec::L7(s) = &mut bad_index.spec {
        s.default_backend = Some(9);
    }
    assert!(matches!(
        draft(&bad_index, "metal", LocalMode::L2),
        Err(ProviderError::Rejected { .. })
    ));
    let mut refs = l7();
    if let LoadBalancerSpec::L7(s) = &mut refs.spec {
        s.options.certificate_refs = vec!["arn:cert".into()];
    }
    assert!(matches!(
        draft(&refs, "metal", LocalMode::L2),
        Err(ProviderError::Unsupported { .. })
    ));
}

#[test]
fn ready_needs_the_current_generation() {
    let mut d = draft(&l4(), "metal", LocalMode::L2).expect("draft");
    d.spec.addresses = vec!["192.0.2.7".parse().expect("ip")];
    let mut obj = LocalLoadBalancer::new("x", d.spec);
    obj.metadata.generation = Some(2);
    let served = |generation, ready, addresses: &[&str]| LocalLoadBalancerStatus {
        nodes: BTreeMap::from([(
            "n1".to_string(),
            LocalNodeStatus {
                observed_generation: generation,
                ready,
                message: None,
                addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
            },
        )]),
    };
    let status = |generation, ready| served(generation, ready, &[]);
    assert!(!observed(&obj).ready, "no status");
    obj.status = Some(status(1, true));
    assert!(!observed(&obj).ready, "stale generation");
    obj.status = Some(served(1, true, &["192.0.2.7"]));
    assert!(
        observed(&obj).ready,
        "an older generation serving the same address keeps serving during a reload"
    );
    obj.status = Some(served(1, true, &["192.0.2.8"]));
    assert!(
        !observed(&obj).ready,
        "an older generation on another address"
    );
    obj.status = Some(status(2, false));
    assert!(!observed(&obj).ready, "not ready");
    obj.status = Some(status(2, true));
    let o = observed(&obj);
    assert!(o.ready);
    assert_eq!(o.ingress.len(), 1);
    assert_eq!(
        o.ingress[0].ports,
        [
            PortStatus {
                port: 53,
                protocol: Protocol::Udp
            },
            PortStatus {
                port: 80,
                protocol: Protocol::Tcp
            }
        ]
    );
}
