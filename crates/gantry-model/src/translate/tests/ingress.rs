//! Ingress -> L7 translation.

use k8s_openapi::api::core::v1::{Secret, Service, TypedLocalObjectReference};

use super::{CLUSTER, class, invalid_field};
use crate::{
    annotations,
    class::ProviderKind,
    desired::{HealthCheck, L7Backend, L7Path, L7Spec, LoadBalancerSpec, PathMatch},
    fixtures::{
        IngressBuilder, TEST_CERT_PEM, TEST_KEY_PEM, backend, ingress, named_backend, node, secret,
        service, tls_secret,
    },
    identity::OwnerKind,
    translate::{IngressInputs, TranslateError, Translated, translate_ingress},
};

fn services() -> Vec<Service> {
    vec![
        service("web")
            .type_("NodePort")
            .port("http", "TCP", 80, 30080)
            .build(),
        service("api")
            .type_("NodePort")
            .port("grpc", "TCP", 9000, 30900)
            .tcp(8080, 30808)
            .annotation(annotations::HEALTH_CHECK_PATH, "/ready")
            .build(),
        service("local").tcp(80, 31080).local(32100).build(),
        service("local-no-hc").tcp(80, 31081).local(0).build(),
        service("internal").type_("ClusterIP").tcp(80, 0).build(),
        service("bad-hc")
            .type_("NodePort")
            .tcp(80, 31090)
            .annotation(annotations::HEALTH_CHECK_PATH, "/x;rm")
            .build(),
        service("elsewhere")
            .namespace("other")
            .tcp(80, 31099)
            .build(),
    ]
}

fn secrets() -> Vec<Secret> {
    let mut other_ns = tls_secret("foreign");
    other_ns.metadata.namespace = Some("other".into());
    vec![
        tls_secret("cert"),
        other_ns,
        secret("opaque", "Opaque", TEST_CERT_PEM, TEST_KEY_PEM),
        secret("not-pem", "kubernetes.io/tls", "hello", TEST_KEY_PEM),
        secret(
            "pub-key",
            "kubernetes.io/tls",
            TEST_CERT_PEM,
            "-----BEGIN PUBLIC KEY-----\n",
        ),
        secret(
            "ec-key",
            "kubernetes.io/tls",
            TEST_CERT_PEM,
            "-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----\n",
        ),
    ]
}

fn run(ing: IngressBuilder) -> Result<Translated, TranslateError> {
    let class = class(ProviderKind::Gcp);
    let nodes = vec![
        node("n2", "10.0.0.2").build(),
        node("n1", "10.0.0.1").build(),
        node("gone", "10.0.0.3").deleting().build(),
    ];
    translate_ingress(
        &ing.build(),
        &IngressInputs {
            cluster_id: CLUSTER,
            class_name: "gcp-public",
            class: &class,
            nodes: &nodes,
            services: &services(),
            secrets: &secrets(),
        },
    )
}

fn l7(ing: IngressBuilder) -> L7Spec {
    match run(ing).expect("translates").desired.spec {
        LoadBalancerSpec::L7(s) => s,
        other => panic!("expected L7, got {other:?}"),
    }
}

fn err(ing: IngressBuilder) -> TranslateError {
    run(ing).expect_err("must fail")
}

/// One path to `web:80`.
fn one_path(path: &str, path_type: &str) -> IngressBuilder {
    ingress("ing").rule(None, vec![(path, path_type, backend("web", 80))])
}

#[test]
fn path_types() {
    let ok: &[(&str, &str, &str, PathMatch)] = &[
        ("/foo", "Exact", "/foo", PathMatch::Exact),
        ("/foo/", "Prefix", "/foo/", PathMatch::Prefix),
        ("/", "Prefix", "/", PathMatch::Prefix),
        ("/*", "ImplementationSpecific", "/", PathMatch::Prefix),
        (
            "/foo/*",
            "ImplementationSpecific",
            "/foo/",
            PathMatch::Prefix,
        ),
        ("/foo/*", "", "/foo/", PathMatch::Prefix),
        ("/foo", "ImplementationSpecific", "/foo", PathMatch::Exact),
        ("/foo/", "", "/foo/", PathMatch::Exact),
        ("", "ImplementationSpecific", "/", PathMatch::Prefix),
        (
            "/a-b_c.d~e/%20",
            "Exact",
            "/a-b_c.d~e/%20",
            PathMatch::Exact,
        ),
    ];
    for (path, path_type, want_path, want_match) in ok {
        let spec = l7(one_path(path, path_type));
        let p = &spec.rules[0].paths[0];
        assert_eq!(
            (p.path.as_str(), p.path_match),
            (*want_path, *want_match),
            "{path:?} {path_type:?}"
        );
    }

    let field = "spec.rules[0].http.paths[0].path";
    let bad: &[(&str, &str, &str)] = &[
        ("foo", "Prefix", field),
        ("foo/*", "ImplementationSpecific", field),
        ("/foo*", "ImplementationSpecific", field),
        ("/*/foo", "ImplementationSpecific", field),
        ("/foo/**", "ImplementationSpecific", field),
        ("*", "", field),
        ("/a;b", "Exact", field),
        ("/a b", "Prefix", field),
        ("/a{b}", "Prefix", field),
        ("/a/../b", "Prefix", field),
        ("/a#b", "Exact", field),
        ("/ünï", "Exact", field),
        ("/", "Regex", "spec.rules[0].http.paths[0].pathType"),
    ];
    for (path, path_type, want) in bad {
        assert_eq!(
            invalid_field(&err(one_path(path, path_type))),
            *want,
            "{path:?}"
        );
    }
    assert_eq!(
        err(one_path("", "Exact")),
        TranslateError::Missing {
            field: field.into()
        }
    );
}

#[test]
fn backends_are_deduplicated_sorted_and_indexed() {
    let t = run(ingress("ing")
        .rule(
            Some("a.example.com"),
            vec![
                ("/api", "Prefix", backend("api", 8080)),
                ("/", "Prefix", backend("web", 80)),
                ("/grpc", "Prefix", named_backend("api", "grpc")),
            ],
        )
        .rule(
            Some("*.example.com"),
            vec![("/", "Prefix", named_backend("web", "http"))],
        )
        .rule(None, vec![("/", "Prefix", backend("local", 80))])
        .default_backend(backend("web", 80)))
    .expect("translates");
    assert_eq!(t.desired.owner.kind, OwnerKind::Ingress);
    assert_eq!(t.desired.owner.name, "ing");
    assert_eq!(t.desired.class, "gcp-public");
    assert_eq!(t.desired.provider, ProviderKind::Gcp);
    let LoadBalancerSpec::L7(spec) = t.desired.spec else {
        panic!("L7 expected")
    };
    let b = |service: &str, port, node_port| L7Backend {
        namespace: "default".into(),
        service: service.into(),
        port,
        node_port,
    };
    assert_eq!(
        spec.backends,
        [
            b("api", 8080, 30808),
            b("api", 9000, 30900),
            b("local", 80, 31080),
            b("web", 80, 30080),
        ]
    );
    let http = |port, path: &str| HealthCheck::Http {
        port,
        path: path.into(),
    };
    assert_eq!(
        spec.health_checks,
        [
            http(30808, "/ready"),
            http(30900, "/ready"),
            http(32100, "/healthz"),
            http(30080, "/"),
        ]
    );
    let path = |p: &str, backend| L7Path {
        path: p.into(),
        path_match: PathMatch::Prefix,
        backend,
    };
    assert_eq!(spec.rules.len(), 3);
    assert_eq!(spec.rules[0].host.as_deref(), Some("a.example.com"));
    assert_eq!(
        spec.rules[0].paths,
        [path("/api", 0), path("/", 3), path("/grpc", 1)]
    );
    assert_eq!(spec.rules[1].host.as_deref(), Some("*.example.com"));
    assert_eq!(spec.rules[1].paths, [path("/", 3)]);
    assert_eq!(spec.rules[2].host, None);
    assert_eq!(spec.rules[2].paths, [path("/", 2)]);
    assert_eq!(spec.default_backend, Some(3));
    let nodes: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(nodes, ["n1", "n2"]);
    assert!(spec.tls.is_empty());
    assert_eq!(spec.options, Default::default());
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn default_backend_only_and_empty_ingress() {
    let spec = l7(ingress("ing").default_backend(backend("web", 80)));
    assert!(spec.rules.is_empty());
    assert_eq!(spec.default_backend, Some(0));
    assert_eq!(spec.backends.len(), 1);
    let empty = l7(ingress("ing"));
    assert_eq!(empty.default_backend, None, "no default backend: fixed 404");
    assert!(empty.backends.is_empty() && empty.health_checks.is_empty());
}

#[test]
fn backend_errors() {
    let field = "spec.rules[0].http.paths[0].backend";
    let to = |b| ingress("ing").rule(None, vec![("/", "Prefix", b)]);
    let cases: Vec<(IngressBuilder, &str, &str)> = vec![
        (to(backend("missing", 80)), "default/missing", "not found"),
        (
            to(backend("elsewhere", 80)),
            "default/elsewhere",
            "not found",
        ),
        (to(backend("web", 81)), "default/web", "has no port 81"),
        (
            to(named_backend("web", "grpc")),
            "default/web",
            "no port named \"grpc\"",
        ),
        (
            to(backend("internal", 80)),
            "default/internal",
            "use type NodePort or LoadBalancer",
        ),
        (
            to(backend("local-no-hc", 80)),
            "default/local-no-hc",
            "healthCheckNodePort",
        ),
        (
            to(backend("bad-hc", 80)),
            "default/bad-hc",
            "gantry.dev/health-check-path",
        ),
    ];
    for (ing, service, reason) in cases {
        match err(ing) {
            TranslateError::Backend {
                field: f,
                service: s,
                reason: r,
            } => {
                assert_eq!((f.as_str(), s.as_str()), (field, service));
                assert!(r.contains(reason), "{service}: {r}");
            }
            other => panic!("{service}: expected Backend, got {other:?}"),
        }
    }
    match err(ingress("ing").default_backend(backend("missing", 1))) {
        TranslateError::Backend { field, .. } => assert_eq!(field, "spec.defaultBackend"),
        other => panic!("expected Backend, got {other:?}"),
    }

    let mut resource = backend("web", 80);
    resource.service = None;
    resource.resource = Some(TypedLocalObjectReference {
        api_group: Some("storage.example.com".into()),
        kind: "Bucket".into(),
        name: "static".into(),
    });
    let e = err(to(resource));
    assert_eq!(invalid_field(&e), format!("{field}.resource"));
    assert!(e.to_string().contains("Bucket/static"), "{e}");

    let mut no_port = backend("web", 80);
    if let Some(s) = no_port.service.as_mut() {
        s.port = None;
    }
    assert_eq!(
        err(to(no_port)),
        TranslateError::Missing {
            field: format!("{field}.service.port")
        }
    );
}

#[test]
fn hosts_are_dns_names() {
    let with_host =
        |h: &str| ingress("ing").rule(Some(h), vec![("/", "Prefix", backend("web", 80))]);
    for good in ["a.example.com", "*.example.com", "x", "a-1.b2"] {
        assert_eq!(l7(with_host(good)).rules[0].host.as_deref(), Some(good));
    }
    for bad in [
        "A.example.com",
        "a_b.example.com",
        "foo.*.com",
        "*",
        "-a.com",
        "a..com",
        "a.com.",
        "a.com;",
        "exämple.com",
        "a.com\n",
    ] {
        assert_eq!(
            invalid_field(&err(with_host(bad))),
            "spec.rules[0].host",
            "{bad:?}"
        );
    }
    let mut no_http = ingress("ing").rule(Some("a.com"), vec![]).build();
    if let Some(rule) = no_http.spec.as_mut().and_then(|s| s.rules.as_mut()) {
        rule[0].http = None;
    }
    let t = run(ingress("x").with(|i| *i = no_http)).expect("translates");
    assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
}

#[test]
fn tls_from_secrets() {
    let base = || one_path("/", "Prefix");
    let spec = l7(base()
        .tls(Some("cert"), &["a.example.com", "*.b.example.com"])
        .tls(Some("ec-key"), &[]));
    assert_eq!(spec.tls.len(), 2);
    assert_eq!(spec.tls[0].secret_name, "cert");
    assert_eq!(spec.tls[0].hosts, ["a.example.com", "*.b.example.com"]);
    assert_eq!(spec.tls[0].cert_pem, TEST_CERT_PEM);
    assert_eq!(spec.tls[0].key_pem, TEST_KEY_PEM);
    assert!(spec.tls[1].hosts.is_empty());
    assert!(
        !format!("{:?}", spec.tls[0]).contains("PRIVATE KEY"),
        "Debug must not print key material"
    );

    let t = run(base().tls(None, &["a.example.com"])).expect("no secret is a warning");
    assert!(t.warnings[0].contains("spec.tls[0]"), "{:?}", t.warnings);

    let field = "spec.tls[1].secretName";
    let secret_cases = [
        ("missing", "not found"),
        ("foreign", "not found"),
        ("opaque", "kubernetes.io/tls"),
        ("not-pem", "tls.crt"),
        ("pub-key", "tls.key"),
    ];
    for (name, reason) in secret_cases {
        match err(base().tls(Some("cert"), &[]).tls(Some(name), &[])) {
            TranslateError::Secret {
                field: f,
                secret,
                reason: r,
            } => {
                assert_eq!((f.as_str(), secret.as_str()), (field, name));
                assert!(r.contains(reason), "{name}: {r}");
            }
            other => panic!("{name}: expected Secret, got {other:?}"),
        }
    }
    for name in ["other/cert", "../cert", "cert..x", "Cert", "*.cert"] {
        let e = err(base().tls(Some("cert"), &[]).tls(Some(name), &[]));
        assert_eq!(invalid_field(&e), field, "{name}");
    }
    assert!(
        err(base().tls(Some("other/cert"), &[]))
            .to_string()
            .contains("cross-namespace"),
    );
    let e = err(base().tls(Some("cert"), &["ok.example.com", "Bad.example.com"]));
    assert_eq!(invalid_field(&e), "spec.tls[0].hosts[1]");
}

#[test]
fn annotations_set_options_and_warn() {
    let arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0123abcd-4567-89ab-cdef-0123456789ab";
    let t = run(one_path("/", "Prefix")
        .annotation(annotations::SCHEME, "internal")
        .annotation(annotations::SSL_REDIRECT, "true")
        .annotation(annotations::CERTIFICATE_ARNS, arn)
        .annotation(annotations::LEGACY_STATIC_IP_NAME, "web-ip")
        .annotation(annotations::LEGACY_ALLOW_HTTP, "false")
        .annotation(annotations::SUBNETS, "subnet-0123abcd")
        .legacy_class("gce"))
    .expect("translates");
    let LoadBalancerSpec::L7(spec) = &t.desired.spec else {
        panic!("L7 expected")
    };
    let o = &spec.options;
    assert_eq!(o.scheme, Some(crate::desired::Scheme::Internal));
    assert!(o.ssl_redirect);
    assert_eq!(o.certificate_refs, [arn]);
    assert_eq!(o.static_ip_name.as_deref(), Some("web-ip"));
    assert!(!o.allow_http);
    assert_eq!(
        t.warnings,
        ["annotation gantry.dev/subnets applies to Services only; ignored"]
    );

    match err(one_path("/", "Prefix").annotation(annotations::STATIC_IP_NAME, "Web IP")) {
        TranslateError::Annotation(a) => assert_eq!(a.key, annotations::STATIC_IP_NAME),
        other => panic!("expected annotation error, got {other:?}"),
    }
    assert_eq!(
        err(one_path("/", "Prefix").with(|i| i.metadata.uid = None)),
        TranslateError::Missing {
            field: "metadata.uid".into()
        }
    );
}
