//! Table tests of class selection, node eligibility and Ingress references.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Taint;

use super::*;
use crate::{
    class::ProviderKind,
    fixtures::{
        backend, default_ingress_class, default_lb_class, foreign_ingress_class, ingress,
        ingress_class, lb_class, node, service,
    },
};

#[test]
fn service_class_selection() {
    use ServiceSelection::*;
    let cases: Vec<(Service, Option<&str>, ServiceSelection)> = vec![
        (
            service("a").type_("NodePort").build(),
            Some("d"),
            NotLoadBalancer,
        ),
        (
            service("a").type_("ClusterIP").build(),
            None,
            NotLoadBalancer,
        ),
        (
            service("a").with(|s| s.spec = None).build(),
            Some("d"),
            NotLoadBalancer,
        ),
        (
            service("a").class("gantry.dev/aws-public").build(),
            None,
            Class("aws-public".into()),
        ),
        (
            service("a").class("gantry.dev/aws-public").build(),
            Some("d"),
            Class("aws-public".into()),
        ),
        (
            service("a").class("service.k8s.aws/nlb").build(),
            Some("d"),
            OtherController,
        ),
        (
            service("a").class("example.com/gantry.dev/x").build(),
            Some("d"),
            OtherController,
        ),
        (service("a").build(), Some("d"), Class("d".into())),
        (service("a").class("").build(), Some("d"), Class("d".into())),
        (service("a").build(), None, OtherController),
        // The class annotation moves a class-less Service between Gantry's
        // classes, only when Gantry is the default implementation.
        (
            service("a").annotation("gantry.dev/class", "aws").build(),
            Some("d"),
            Class("aws".into()),
        ),
        (
            service("a").annotation("gantry.dev/class", " ").build(),
            Some("d"),
            Class("d".into()),
        ),
        (
            service("a").annotation("gantry.dev/class", "aws").build(),
            None,
            OtherController,
        ),
        (
            service("a")
                .class("gantry.dev/local")
                .annotation("gantry.dev/class", "aws")
                .build(),
            Some("d"),
            Class("local".into()),
        ),
    ];
    for (i, (svc, default, want)) in cases.into_iter().enumerate() {
        assert_eq!(select_service_class(&svc, default), want, "case {i}");
    }
}

#[test]
fn ingress_class_selection() {
    let gce = lb_class("gcp-public", ProviderKind::Gcp, &["gce"]);
    let aws = lb_class("aws-public", ProviderKind::Aws, &["alb"]);
    let lbs = vec![gce.clone(), aws.clone()];
    let ics = vec![
        ingress_class("gantry-aws", Some("aws-public")),
        foreign_ingress_class("nginx", "k8s.io/ingress-nginx"),
        ingress_class("gantry-bare", None),
        {
            let mut ic = ingress_class("gantry-wrong", Some("x"));
            if let Some(p) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
                p.kind = "ConfigMap".into();
            }
            ic
        },
        {
            let mut ic = ingress_class("gantry-ns", Some("x"));
            if let Some(p) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
                p.scope = Some("Namespace".into());
                p.namespace = Some("default".into());
            }
            ic
        },
    ];
    let with_default_lb = vec![default_lb_class(gce.clone()), aws.clone()];
    let two_defaults = vec![default_lb_class(gce.clone()), default_lb_class(aws.clone())];

    let cases: Vec<(&str, Ingress, &[LoadBalancerClass], Option<&str>)> = vec![
        (
            "by class name",
            ingress("i").class_name("gantry-aws").build(),
            &lbs,
            Some("aws-public"),
        ),
        (
            "foreign class name",
            ingress("i").class_name("nginx").build(),
            &lbs,
            None,
        ),
        (
            "unknown class name",
            ingress("i").class_name("nope").build(),
            &lbs,
            None,
        ),
        (
            "wrong parameter kind",
            ingress("i").class_name("gantry-wrong").build(),
            &lbs,
            None,
        ),
        (
            "namespaced parameters",
            ingress("i").class_name("gantry-ns").build(),
            &lbs,
            None,
        ),
        (
            "no parameters, no default",
            ingress("i").class_name("gantry-bare").build(),
            &lbs,
            None,
        ),
        (
            "no parameters, one default",
            ingress("i").class_name("gantry-bare").build(),
            &with_default_lb,
            Some("gcp-public"),
        ),
        (
            "no parameters, two defaults: the alphabetically first wins",
            ingress("i").class_name("gantry-bare").build(),
            &two_defaults,
            Some("aws-public"),
        ),
        (
            "legacy alias gce",
            ingress("i").legacy_class("gce").build(),
            &lbs,
            Some("gcp-public"),
        ),
        (
            "legacy alias alb",
            ingress("i").legacy_class("alb").build(),
            &lbs,
            Some("aws-public"),
        ),
        (
            "legacy IngressClass name",
            ingress("i").legacy_class("gantry-aws").build(),
            &lbs,
            Some("aws-public"),
        ),
        (
            "legacy foreign",
            ingress("i").legacy_class("nginx").build(),
            &lbs,
            None,
        ),
        (
            "legacy unknown",
            ingress("i").legacy_class("traefik").build(),
            &lbs,
            None,
        ),
        (
            "class name beats annotation",
            ingress("i").class_name("nginx").legacy_class("gce").build(),
            &lbs,
            None,
        ),
        (
            "nothing set, no default class",
            ingress("i").build(),
            &lbs,
            None,
        ),
    ];
    for (name, ing, lb_classes, want) in cases {
        assert_eq!(
            select_ingress_class(&ing, &ics, lb_classes).as_deref(),
            want,
            "{name}"
        );
    }

    // Shared alias: the first class by name wins, whatever the list order.
    let dup = vec![
        lb_class("z-class", ProviderKind::Gcp, &["gce"]),
        lb_class("a-class", ProviderKind::Gcp, &["gce"]),
    ];
    let ing = ingress("i").legacy_class("gce").build();
    assert_eq!(
        select_ingress_class(&ing, &[], &dup).as_deref(),
        Some("a-class")
    );
}

#[test]
fn default_ingress_class_selection() {
    let lbs = vec![lb_class("aws-public", ProviderKind::Aws, &[])];
    let ing = ingress("i").build();
    let ours = default_ingress_class(ingress_class("gantry", Some("aws-public")));
    let theirs = default_ingress_class(foreign_ingress_class("nginx", "k8s.io/ingress-nginx"));
    let plain = ingress_class("gantry", Some("aws-public"));

    assert_eq!(
        select_ingress_class(&ing, std::slice::from_ref(&ours), &lbs).as_deref(),
        Some("aws-public")
    );
    assert_eq!(select_ingress_class(&ing, &[plain], &lbs), None);
    assert_eq!(
        select_ingress_class(&ing, std::slice::from_ref(&theirs), &lbs),
        None
    );
    // Two defaults are ambiguous even if one is Gantry's.
    assert_eq!(select_ingress_class(&ing, &[ours, theirs], &lbs), None);
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn node_eligibility() {
    let nodes = vec![
        node("zeta", "10.0.0.9")
            .zone("z1")
            .provider_id("aws:///z1/i-9")
            .build(),
        node("alpha", "10.0.0.1").build(),
        node("not-ready", "10.0.0.2").not_ready().build(),
        node("unknown", "10.0.0.3").ready("Unknown").build(),
        node("excluded", "10.0.0.4").excluded().build(),
        node("excluded-false", "10.0.0.5")
            .label(EXCLUDE_FROM_LB_LABEL, "false")
            .build(),
        node("deleting", "10.0.0.6").deleting().build(),
        node("cordoned", "10.0.0.7").cordoned().build(),
        node("scaling-down", "10.0.0.12")
            .with(|n| {
                n.spec.get_or_insert_with(Default::default).taints = Some(vec![Taint {
                    key: TO_BE_DELETED_TAINT.into(),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                }])
            })
            .build(),
        node("external-only", "")
            .addresses(&[("Hostname", "h"), ("ExternalIP", "203.0.113.8")])
            .build(),
        node("internal-first", "")
            .addresses(&[
                ("ExternalIP", "203.0.113.9"),
                ("InternalIP", "bogus"),
                ("InternalIP", "10.0.0.10"),
            ])
            .build(),
        node("no-address", "")
            .addresses(&[("Hostname", "h")])
            .build(),
        node("no-status", "10.0.0.11")
            .with(|n| n.status = None)
            .build(),
    ];
    let got = eligible_nodes(&nodes);
    let names: Vec<&str> = got.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "alpha",
            "cordoned",
            "external-only",
            "internal-first",
            "not-ready",
            "unknown",
            "zeta"
        ],
        "NotReady does not eject a Node; deletion, the exclusion label and the autoscaler's taint do"
    );
    assert_eq!(got[2].address, ip("203.0.113.8"));
    assert_eq!(
        got[3].address,
        ip("10.0.0.10"),
        "first parseable InternalIP wins"
    );
    let zeta = &got[6];
    assert_eq!(zeta.zone.as_deref(), Some("z1"));
    assert_eq!(zeta.provider_id.as_deref(), Some("aws:///z1/i-9"));
    assert_eq!(got[0].zone, None);
    assert_eq!(got[0].provider_id, None);
}

#[test]
fn ingress_references_cover_rules_default_and_tls() {
    let ing = ingress("i")
        .default_backend(backend("fallback", 80))
        .rule(
            Some("a.example"),
            vec![
                ("/", "Prefix", backend("web", 80)),
                ("/api", "Prefix", backend("api", 8080)),
            ],
        )
        .rule(None, vec![("/", "Prefix", backend("web", 443))])
        .tls(Some("cert-a"), &["a.example"])
        .tls(None, &[])
        .tls(Some("cert-b"), &[])
        .with(|i| {
            if let Some(spec) = i.spec.as_mut() {
                spec.rules
                    .get_or_insert_with(Vec::new)
                    .push(Default::default());
            }
        })
        .build();
    let (services, secrets) = ingress_references(&ing);
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["api", "fallback", "web"]
    );
    assert_eq!(
        secrets.into_iter().collect::<Vec<_>>(),
        ["cert-a", "cert-b"]
    );
    let (s, t) = ingress_references(&ingress("i").with(|i| i.spec = None).build());
    assert!(s.is_empty() && t.is_empty());
}
