//! Service -> L4 translation.

use k8s_openapi::api::core::v1::Node;

use super::{CLUSTER, class, invalid_field};
use crate::{
    annotations,
    class::ProviderKind,
    desired::{HealthCheck, L4Listener, L4Spec, LoadBalancerSpec, Protocol, Scheme},
    fixtures::{ServiceBuilder, node, service},
    identity::{Owner, OwnerKind},
    translate::{ServiceInputs, TranslateError, Translated, translate_service},
};

fn nodes() -> Vec<Node> {
    vec![
        node("n3", "10.0.0.3").zone("b").build(),
        node("n1", "10.0.0.1").zone("a").build(),
        node("n2", "10.0.0.2").zone("a").build(),
        node("down", "10.0.0.4").excluded().build(),
    ]
}

fn run(svc: ServiceBuilder) -> Result<Translated, TranslateError> {
    let class = class(ProviderKind::Aws);
    let nodes = nodes();
    translate_service(
        &svc.build(),
        &ServiceInputs {
            cluster_id: CLUSTER,
            class_name: "aws-public",
            class: &class,
            nodes: &nodes,
        },
    )
}

fn l4(svc: ServiceBuilder) -> L4Spec {
    match run(svc).expect("translates").desired.spec {
        LoadBalancerSpec::L4(s) => s,
        other => panic!("expected L4, got {other:?}"),
    }
}

fn err(svc: ServiceBuilder) -> TranslateError {
    run(svc).expect_err("must fail")
}

fn names(spec: &L4Spec) -> Vec<&str> {
    spec.backends.iter().map(|b| b.name.as_str()).collect()
}

#[test]
fn owner_class_listeners_backends() {
    let svc = service("web")
        .port("dns", "UDP", 53, 30053)
        .port("https", "TCP", 443, 30443)
        .port("dns-tcp", "TCP", 53, 31053)
        .port("", "", 80, 30080);
    let t = run(svc).expect("translates");
    assert_eq!(
        t.desired.owner,
        Owner {
            cluster_id: CLUSTER.into(),
            kind: OwnerKind::Service,
            namespace: "default".into(),
            name: "web".into(),
            uid: "uid-web".into(),
        }
    );
    assert_eq!(t.desired.class, "aws-public");
    assert_eq!(t.desired.provider, ProviderKind::Aws);
    assert!(t.warnings.is_empty());
    let LoadBalancerSpec::L4(spec) = t.desired.spec else {
        panic!("L4 expected")
    };
    let listener = |name: &str, protocol, port, node_port| L4Listener {
        name: name.into(),
        protocol,
        port,
        node_port,
    };
    // Sorted by (port, protocol); TCP and UDP may share a port.
    assert_eq!(
        spec.listeners,
        [
            listener("dns-tcp", Protocol::Tcp, 53, 31053),
            listener("dns", Protocol::Udp, 53, 30053),
            listener("", Protocol::Tcp, 80, 30080),
            listener("https", Protocol::Tcp, 443, 30443),
        ]
    );
    assert_eq!(names(&spec), ["n1", "n2", "n3"]);
    assert_eq!(spec.health_check, HealthCheck::NodePortTcp);
    assert!(spec.source_ranges.is_empty());
    assert_eq!(spec.requested_ip, None);
    assert_eq!(spec.options, Default::default());
}

#[test]
fn metadata_and_spec_errors() {
    let cases: Vec<(ServiceBuilder, TranslateError)> = vec![
        (
            service("web")
                .tcp(80, 30080)
                .with(|s| s.metadata.uid = None),
            TranslateError::Missing {
                field: "metadata.uid".into(),
            },
        ),
        (
            service("web")
                .tcp(80, 30080)
                .with(|s| s.metadata.namespace = None),
            TranslateError::Missing {
                field: "metadata.namespace".into(),
            },
        ),
        (
            service("web")
                .tcp(80, 30080)
                .with(|s| s.metadata.name = None),
            TranslateError::Missing {
                field: "metadata.name".into(),
            },
        ),
        (
            service("web").with(|s| s.spec = None),
            TranslateError::Missing {
                field: "spec".into(),
            },
        ),
        (
            service("web"),
            TranslateError::Missing {
                field: "spec.ports".into(),
            },
        ),
        (
            service("web").tcp(80, 30080).local(0),
            TranslateError::Missing {
                field: "spec.healthCheckNodePort".into(),
            },
        ),
    ];
    for (svc, want) in cases {
        assert_eq!(err(svc), want);
    }
}

#[test]
fn invalid_fields_are_named_with_their_value() {
    let cases: Vec<(ServiceBuilder, &str, &str, &str)> = vec![
        (
            service("web").tcp(80, 30080).port("s", "SCTP", 90, 30090),
            "spec.ports[1].protocol",
            "SCTP",
            "TCP and UDP",
        ),
        (
            service("web").tcp(80, 0),
            "spec.ports[0].nodePort",
            "",
            "allocateLoadBalancerNodePorts: false",
        ),
        (
            service("web").tcp(0, 30080),
            "spec.ports[0].port",
            "0",
            "1-65535",
        ),
        (
            service("web").tcp(80, 70000),
            "spec.ports[0].nodePort",
            "70000",
            "1-65535",
        ),
        (
            service("web").tcp(80, 30080).tcp(80, 30081),
            "spec.ports[1]",
            "80/TCP",
            "duplicate",
        ),
        (
            service("web").tcp(80, 30080).type_("NodePort"),
            "spec.type",
            "NodePort",
            "LoadBalancer",
        ),
        (
            service("web").tcp(80, 30080).with(|s| {
                s.spec.as_mut().expect("spec").external_traffic_policy = Some("Global".into())
            }),
            "spec.externalTrafficPolicy",
            "Global",
            "Cluster or Local",
        ),
        (
            service("web")
                .tcp(80, 30080)
                .source_ranges(&["10.0.0.0/8", "10.0.0.0/40"]),
            "spec.loadBalancerSourceRanges[1]",
            "10.0.0.0/40",
            "CIDR",
        ),
        (
            service("web")
                .tcp(80, 30080)
                .load_balancer_ip("192.0.2.300"),
            "spec.loadBalancerIP",
            "192.0.2.300",
            "address",
        ),
        (
            service("web")
                .tcp(80, 30080)
                .load_balancer_ip("192.0.2.1")
                .annotation(annotations::LOAD_BALANCER_IP, "192.0.2.2"),
            "spec.loadBalancerIP",
            "192.0.2.1",
            "gantry.dev/load-balancer-ip=192.0.2.2",
        ),
    ];
    for (svc, field, value, reason) in cases {
        match err(svc) {
            TranslateError::Invalid {
                field: f,
                value: v,
                reason: r,
            } => {
                assert_eq!((f.as_str(), v.as_str()), (field, value));
                assert!(r.contains(reason), "{field}: {r}");
            }
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn local_policy_keeps_every_eligible_node_and_checks_the_health_check_node_port() {
    // Upstream's service controller, the AWS Load Balancer Controller and
    // ingress-gce all register every eligible node and let kube-proxy's
    // health check node port say where endpoints are: targets then never
    // change when pods move, and shared instance groups see one node set.
    let local = l4(service("web").tcp(80, 30080).local(32000));
    assert_eq!(names(&local), ["n1", "n2", "n3"]);
    assert_eq!(
        local.health_check,
        HealthCheck::Http {
            port: 32000,
            path: "/healthz".into()
        }
    );
    let cluster = l4(service("web").tcp(80, 30080));
    assert_eq!(names(&cluster), names(&local));
    assert_eq!(cluster.health_check, HealthCheck::NodePortTcp);
}

#[test]
fn source_ranges_from_field_or_legacy_annotation() {
    let legacy = annotations::LEGACY_SOURCE_RANGES;
    let shown = |spec: L4Spec| -> Vec<String> {
        spec.source_ranges.iter().map(ToString::to_string).collect()
    };
    let field = l4(service("w").tcp(80, 30080).source_ranges(&[
        "192.0.2.7/24",
        " 10.0.0.0/8",
        "10.0.0.0/8",
        "2001:db8::1/64",
    ]));
    assert_eq!(
        shown(field),
        ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/64"]
    );
    let from_annotation = l4(service("w")
        .tcp(80, 30080)
        .annotation(legacy, "198.51.100.0/24"));
    assert_eq!(shown(from_annotation), ["198.51.100.0/24"]);
    let field_wins = l4(service("w")
        .tcp(80, 30080)
        .source_ranges(&["10.0.0.0/8"])
        .annotation(legacy, "198.51.100.0/24"));
    assert_eq!(shown(field_wins), ["10.0.0.0/8"]);
    match err(service("w")
        .tcp(80, 30080)
        .annotation(legacy, "10.0.0.0/8,x;y"))
    {
        TranslateError::Annotation(a) => assert_eq!(a.key, legacy),
        other => panic!("expected annotation error, got {other:?}"),
    }
}

#[test]
fn requested_ip_from_field_or_annotation() {
    let key = annotations::LOAD_BALANCER_IP;
    let ip = |s: &str| Some(s.parse().expect("ip"));
    let base = || service("w").tcp(80, 30080);
    assert_eq!(
        l4(base().load_balancer_ip("192.0.2.1")).requested_ip,
        ip("192.0.2.1")
    );
    assert_eq!(
        l4(base().annotation(key, "2001:db8::1")).requested_ip,
        ip("2001:db8::1")
    );
    assert_eq!(
        l4(base()
            .load_balancer_ip("192.0.2.1")
            .annotation(key, "192.0.2.1"))
        .requested_ip,
        ip("192.0.2.1")
    );
    assert_eq!(l4(base().load_balancer_ip("")).requested_ip, None);
}

#[test]
fn annotations_set_options_and_warn() {
    let t = run(service("w")
        .tcp(80, 30080)
        .annotation(annotations::SCHEME, "internal")
        .annotation(annotations::PROXY_PROTOCOL, "v2")
        .annotation(annotations::CROSS_ZONE, "true")
        .annotation(annotations::SHARED_IP, "team-a")
        .annotation(annotations::SUBNETS, "subnet-0123abcd")
        .annotation("gantry.dev/crosszone", "true")
        .annotation(annotations::SSL_REDIRECT, "true")
        .annotation("app.example.com/owner", "me"))
    .expect("translates");
    let LoadBalancerSpec::L4(spec) = &t.desired.spec else {
        panic!("L4 expected")
    };
    let o = &spec.options;
    assert_eq!(o.scheme, Some(Scheme::Internal));
    assert!(o.proxy_protocol);
    assert_eq!(o.cross_zone, Some(true));
    assert_eq!(o.shared_ip_key.as_deref(), Some("team-a"));
    assert_eq!(o.subnets, ["subnet-0123abcd"]);
    assert_eq!(
        t.warnings,
        [
            "unknown annotation gantry.dev/crosszone ignored",
            "annotation gantry.dev/ssl-redirect applies to Ingresses only; ignored",
        ]
    );

    let e = err(service("w")
        .tcp(80, 30080)
        .annotation(annotations::SCHEME, "public;"));
    assert_eq!(e.category(), "annotation");
    assert!(e.to_string().contains(annotations::SCHEME), "{e}");
    assert_eq!(
        invalid_field(&err(service("w").tcp(0, 1))),
        "spec.ports[0].port"
    );
}
