//! The manifests of the seed article (`tests/data/`), end to end through
//! selection and translation, compared with the whole expected desired state.

use k8s_openapi::api::{
    core::v1::{Node, Service},
    networking::v1::Ingress,
};

use crate::{
    class::ProviderKind,
    desired::{
        BackendNode, DesiredLoadBalancer, HealthCheck, L4Listener, L4Spec, L7Backend, L7Options,
        L7Path, L7Rule, L7Spec, LoadBalancerSpec, PathMatch, Protocol, TlsCertificate,
    },
    fixtures::{TEST_CERT_PEM, TEST_KEY_PEM, foreign_ingress_class, lb_class, node, tls_secret},
    identity::{Owner, OwnerKind},
    select::{ServiceSelection, ingress_references, select_ingress_class, select_service_class},
    translate::{
        IngressInputs, ServiceInputs, TranslateError, translate_ingress, translate_service,
    },
};

const NODEPORT_SERVICE: &str = include_str!("../../../tests/data/service-test-nodeport.yaml");
const LB_SERVICE: &str = include_str!("../../../tests/data/service-test-loadbalancer.yaml");
const INGRESS: &str = include_str!("../../../tests/data/test-ingress.yaml");

const CLUSTER: &str = "seed-cluster";

/// Three nodes: one Ready, one NotReady (still a backend: the balancer's
/// health check decides, not the heartbeat), one excluded from balancers.
fn nodes() -> Vec<Node> {
    vec![
        node("gke-node-2", "10.100.0.3")
            .not_ready()
            .zone("us-central1-a")
            .provider_id("gce://seed-project/us-central1-a/gke-node-2")
            .build(),
        node("gke-node-1", "10.100.0.2")
            .zone("us-central1-a")
            .provider_id("gce://seed-project/us-central1-a/gke-node-1")
            .build(),
        node("gke-node-3", "10.100.0.4")
            .excluded()
            .zone("us-central1-b")
            .build(),
    ]
}

fn backends() -> Vec<BackendNode> {
    ["1", "2"]
        .into_iter()
        .map(|n| BackendNode {
            name: format!("gke-node-{n}"),
            address: format!("10.100.0.{}", if n == "1" { 2 } else { 3 })
                .parse()
                .expect("ip"),
            provider_id: Some(format!("gce://seed-project/us-central1-a/gke-node-{n}")),
            zone: Some("us-central1-a".into()),
        })
        .collect()
}

fn gce_class() -> crate::class::LoadBalancerClass {
    lb_class("gcp-public", ProviderKind::Gcp, &["gce"])
}

#[test]
fn seed_load_balancer_service() {
    let svc: Service = serde_yaml::from_str(LB_SERVICE).expect("yaml");
    let class = gce_class();
    let ServiceSelection::Class(class_name) = select_service_class(&svc, Some("gcp-public")) else {
        panic!("the seed Service has no class and must fall to the default")
    };
    let nodes = nodes();
    let t = translate_service(
        &svc,
        &ServiceInputs {
            cluster_id: CLUSTER,
            class_name: &class_name,
            class: &class.spec,
            nodes: &nodes,
        },
    )
    .expect("translates");
    let want = DesiredLoadBalancer {
        owner: Owner {
            cluster_id: CLUSTER.into(),
            kind: OwnerKind::Service,
            namespace: "default".into(),
            name: "service-test".into(),
            uid: "6f1c6a7e-2b1d-4c3e-9a55-0d3c2f1e8b02".into(),
        },
        class: "gcp-public".into(),
        provider: ProviderKind::Gcp,
        spec: LoadBalancerSpec::L4(L4Spec {
            listeners: vec![L4Listener {
                name: String::new(),
                protocol: Protocol::Tcp,
                port: 80,
                node_port: 32213,
            }],
            backends: backends(),
            health_check: HealthCheck::NodePortTcp,
            source_ranges: vec![],
            requested_ip: None,
            options: Default::default(),
        }),
    };
    assert_eq!(t.desired, want);
    assert!(t.warnings.is_empty());
    // The desired state survives the wire (the controller stores and compares it).
    let json = serde_json::to_string(&t.desired).expect("json");
    assert_eq!(
        serde_json::from_str::<DesiredLoadBalancer>(&json).expect("json"),
        want
    );
}

#[test]
fn seed_nodeport_service_gets_no_balancer() {
    let svc: Service = serde_yaml::from_str(NODEPORT_SERVICE).expect("yaml");
    assert_eq!(
        select_service_class(&svc, Some("gcp-public")),
        ServiceSelection::NotLoadBalancer
    );
    let class = gce_class();
    let e = translate_service(
        &svc,
        &ServiceInputs {
            cluster_id: CLUSTER,
            class_name: "gcp-public",
            class: &class.spec,
            nodes: &nodes(),
        },
    )
    .expect_err("NodePort is not a load balancer");
    assert!(
        matches!(&e, TranslateError::Invalid { field, value, .. } if field == "spec.type" && value == "NodePort"),
        "{e:?}"
    );
}

#[test]
fn seed_ingress_through_the_gce_alias() {
    let ing: Ingress = serde_yaml::from_str(INGRESS).expect("yaml");
    let backend: Service = serde_yaml::from_str(NODEPORT_SERVICE).expect("yaml");
    let lb_classes = vec![
        lb_class("aws-public", ProviderKind::Aws, &["alb"]),
        gce_class(),
    ];
    let ingress_classes = vec![foreign_ingress_class("nginx", "k8s.io/ingress-nginx")];
    let class_name =
        select_ingress_class(&ing, &ingress_classes, &lb_classes).expect("gce selects Gantry");
    assert_eq!(class_name, "gcp-public");

    let (services, secrets) = ingress_references(&ing);
    assert_eq!(services.into_iter().collect::<Vec<_>>(), ["service-test"]);
    assert_eq!(secrets.into_iter().collect::<Vec<_>>(), ["my-ssl-secret"]);

    let class = gce_class();
    let nodes = nodes();
    let t = translate_ingress(
        &ing,
        &IngressInputs {
            cluster_id: CLUSTER,
            class_name: &class_name,
            class: &class.spec,
            nodes: &nodes,
            services: &[backend],
            secrets: &[tls_secret("my-ssl-secret")],
        },
    )
    .expect("translates");
    let want = DesiredLoadBalancer {
        owner: Owner {
            cluster_id: CLUSTER.into(),
            kind: OwnerKind::Ingress,
            namespace: "default".into(),
            name: "test-ingress".into(),
            uid: "0b7f5a52-5d7e-4f7a-8e61-3c9d1a2b4c03".into(),
        },
        class: "gcp-public".into(),
        provider: ProviderKind::Gcp,
        spec: LoadBalancerSpec::L7(L7Spec {
            rules: vec![L7Rule {
                host: Some("testhost.com".into()),
                // GCE's `/*` is a prefix match of `/`.
                paths: vec![L7Path {
                    path: "/".into(),
                    path_match: PathMatch::Prefix,
                    backend: 0,
                }],
            }],
            default_backend: None,
            backends: vec![L7Backend {
                namespace: "default".into(),
                service: "service-test".into(),
                port: 80,
                node_port: 32213,
            }],
            health_checks: vec![HealthCheck::Http {
                port: 32213,
                path: "/".into(),
            }],
            nodes: backends(),
            // The article's TLS entry lists no hosts: the default certificate.
            tls: vec![TlsCertificate {
                secret_name: "my-ssl-secret".into(),
                hosts: vec![],
                cert_pem: TEST_CERT_PEM.into(),
                key_pem: TEST_KEY_PEM.into(),
            }],
            options: L7Options::default(),
        }),
    };
    assert_eq!(t.desired, want);
    assert_eq!(
        match &t.desired.spec {
            LoadBalancerSpec::L7(s) => s.backends[0].key(),
            LoadBalancerSpec::L4(_) => String::new(),
        },
        "default/service-test:80"
    );
    // The legacy class annotation is not a Gantry key: no warning for it.
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}
