//! Table tests of every annotation grammar, including the injection corpus.

use std::collections::BTreeMap;

use super::*;
use crate::desired::Scheme;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

const ARN: &str =
    "arn:aws:acm:us-east-1:123456789012:certificate/0123abcd-4567-89ab-cdef-0123456789ab";
const ARN2: &str = "arn:aws-us-gov:acm:us-gov-west-1:000000000000:certificate/ffffffff-0000-1111-2222-333333333333";

/// Which object kind reads an annotation.
#[derive(Clone, Copy, Debug)]
enum On {
    Service,
    Ingress,
}

/// Every supported annotation with one valid value.
const SUPPORTED: &[(On, &str, &str)] = &[
    (On::Service, LOAD_BALANCER_IP, "192.0.2.10"),
    (On::Service, SCHEME, "internal"),
    (On::Service, PROXY_PROTOCOL, "v2"),
    (On::Service, CROSS_ZONE, "true"),
    (On::Service, SHARED_IP, "team-a"),
    (
        On::Service,
        SUBNETS,
        "subnet-0123abcd,subnet-0123456789abcdef0",
    ),
    (On::Service, HEALTH_CHECK_PATH, "/healthz"),
    (
        On::Service,
        LEGACY_SOURCE_RANGES,
        "10.0.0.0/8,2001:db8::/32",
    ),
    (On::Ingress, SCHEME, "internet-facing"),
    (On::Ingress, SSL_REDIRECT, "false"),
    (On::Ingress, CERTIFICATE_ARNS, ARN),
    (On::Ingress, STATIC_IP_NAME, "web-ip"),
    (On::Ingress, LEGACY_STATIC_IP_NAME, "web-ip"),
    (On::Ingress, LEGACY_ALLOW_HTTP, "false"),
];

fn parse(on: On, key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    let m = map(&[(key, value)]);
    match on {
        On::Service => parse_service(&m).map(|a| a.warnings),
        On::Ingress => parse_ingress(&m).map(|a| a.warnings),
    }
}

#[test]
fn every_supported_value_parses_without_warnings() {
    for (on, key, value) in SUPPORTED {
        assert_eq!(parse(*on, key, value), Ok(vec![]), "{key}={value:?}");
    }
}

#[test]
fn service_values_land_in_options() {
    let a = parse_service(&map(&[
        (LOAD_BALANCER_IP, "2001:db8::7"),
        (SCHEME, "internal"),
        (PROXY_PROTOCOL, "v2"),
        (CROSS_ZONE, "false"),
        (SHARED_IP, "a1"),
        (SUBNETS, "subnet-ffffffff,subnet-0123abcd,subnet-ffffffff"),
        (HEALTH_CHECK_PATH, "/ready?full=1"),
        (LEGACY_SOURCE_RANGES, "10.1.2.3/8, 192.0.2.0/24"),
    ]))
    .expect("valid");
    assert_eq!(a.load_balancer_ip, Some("2001:db8::7".parse().expect("ip")));
    assert_eq!(a.options.scheme, Some(Scheme::Internal));
    assert!(a.options.proxy_protocol);
    assert_eq!(a.options.cross_zone, Some(false));
    assert_eq!(a.options.shared_ip_key.as_deref(), Some("a1"));
    assert_eq!(a.options.subnets, ["subnet-0123abcd", "subnet-ffffffff"]);
    assert_eq!(a.health_check_path.as_deref(), Some("/ready?full=1"));
    // Host bits cleared, as upstream's net.ParseCIDR does; spaces trimmed.
    let ranges: Vec<String> = a.source_ranges.iter().map(ToString::to_string).collect();
    assert_eq!(ranges, ["10.0.0.0/8", "192.0.2.0/24"]);

    let none = parse_service(&map(&[(PROXY_PROTOCOL, "none")])).expect("valid");
    assert!(!none.options.proxy_protocol);
    assert_eq!(none.options.cross_zone, None);
    assert_eq!(
        parse_service(&BTreeMap::new()),
        Ok(ServiceAnnotations::default())
    );
}

#[test]
fn ingress_values_land_in_options() {
    let a = parse_ingress(&map(&[
        (SCHEME, "internal"),
        (SSL_REDIRECT, "true"),
        (CERTIFICATE_ARNS, &format!("{ARN2},{ARN},{ARN2}")),
        (LEGACY_STATIC_IP_NAME, "legacy-ip"),
        (LEGACY_ALLOW_HTTP, "false"),
    ]))
    .expect("valid");
    assert_eq!(a.options.scheme, Some(Scheme::Internal));
    assert!(a.options.ssl_redirect);
    // Order kept (the first is the default certificate), duplicates dropped.
    assert_eq!(a.options.certificate_refs, [ARN2, ARN]);
    assert_eq!(a.options.static_ip_name.as_deref(), Some("legacy-ip"));
    assert!(!a.options.allow_http);

    let d = parse_ingress(&BTreeMap::new()).expect("empty");
    assert!(d.options.allow_http, "HTTP is allowed unless turned off");
    assert!(!d.options.ssl_redirect);

    let same = parse_ingress(&map(&[
        (STATIC_IP_NAME, "ip1"),
        (LEGACY_STATIC_IP_NAME, "ip1"),
    ]));
    assert_eq!(
        same.expect("equal").options.static_ip_name.as_deref(),
        Some("ip1")
    );
    let e = parse_ingress(&map(&[
        (STATIC_IP_NAME, "ip1"),
        (LEGACY_STATIC_IP_NAME, "ip2"),
    ]))
    .expect_err("conflict");
    assert_eq!(e.key, STATIC_IP_NAME);
    assert!(e.reason.contains(LEGACY_STATIC_IP_NAME), "{e}");
}

#[test]
fn invalid_values_are_rejected_with_key_and_reason() {
    let cases: &[(On, &str, &str, &str)] = &[
        (On::Service, LOAD_BALANCER_IP, "192.0.2.300", "IPv4 or IPv6"),
        (
            On::Service,
            LOAD_BALANCER_IP,
            "192.0.2.0/24",
            "IPv4 or IPv6",
        ),
        (On::Service, LOAD_BALANCER_IP, "[::1]", "IPv4 or IPv6"),
        (On::Service, LOAD_BALANCER_IP, "", "empty"),
        (On::Service, SCHEME, "public", "internet-facing"),
        (On::Service, SCHEME, "Internal", "internet-facing"),
        (On::Service, PROXY_PROTOCOL, "v1", "v2"),
        (On::Service, PROXY_PROTOCOL, "true", "v2"),
        (On::Service, CROSS_ZONE, "yes", "\"true\""),
        (On::Service, CROSS_ZONE, "True", "\"true\""),
        (On::Service, SHARED_IP, "-a", "1-63"),
        (On::Service, SHARED_IP, "a-", "1-63"),
        (On::Service, SHARED_IP, "Team", "1-63"),
        (On::Service, SHARED_IP, "a_b", "1-63"),
        (On::Service, SHARED_IP, &"a".repeat(64), "longer than 63"),
        (On::Service, SUBNETS, "subnet-0123abc", "subnet id"),
        (
            On::Service,
            SUBNETS,
            "subnet-0123456789abcdef01",
            "subnet id",
        ),
        (On::Service, SUBNETS, "subnet-0123ABCD", "subnet id"),
        (On::Service, SUBNETS, "sg-0123abcd", "subnet id"),
        (
            On::Service,
            SUBNETS,
            "subnet-0123abcd, subnet-0123abce",
            "subnet id",
        ),
        (On::Service, SUBNETS, "subnet-0123abcd,", "empty item"),
        (On::Service, HEALTH_CHECK_PATH, "healthz", "start with '/'"),
        (On::Service, HEALTH_CHECK_PATH, "/a b", "without spaces"),
        (On::Service, HEALTH_CHECK_PATH, "/a%zz", "two hex digits"),
        (On::Service, HEALTH_CHECK_PATH, "/a/../b", "'..'"),
        (
            On::Service,
            HEALTH_CHECK_PATH,
            &format!("/{}", "a".repeat(255)),
            "longer than 255",
        ),
        (On::Service, LEGACY_SOURCE_RANGES, "10.0.0.0/33", "CIDR"),
        (On::Service, LEGACY_SOURCE_RANGES, "10.0.0.1", "CIDR"),
        (On::Ingress, SSL_REDIRECT, "1", "\"true\""),
        (
            On::Ingress,
            CERTIFICATE_ARNS,
            "arn:aws:iam::123456789012:server-certificate/x",
            "ACM",
        ),
        (
            On::Ingress,
            CERTIFICATE_ARNS,
            &ARN.replace("123456789012", "12345678901"),
            "ACM",
        ),
        (
            On::Ingress,
            CERTIFICATE_ARNS,
            &ARN.replace("us-east-1", "useast1"),
            "ACM",
        ),
        (
            On::Ingress,
            CERTIFICATE_ARNS,
            &ARN.replace("arn:aws:", "arn:azure:"),
            "ACM",
        ),
        (
            On::Ingress,
            CERTIFICATE_ARNS,
            &ARN.replace("0123abcd-", "0123abcd"),
            "ACM",
        ),
        (
            On::Ingress,
            CERTIFICATE_ARNS,
            &format!("{ARN}:extra"),
            "ACM",
        ),
        (On::Ingress, STATIC_IP_NAME, "1ip", "RFC 1035"),
        (On::Ingress, STATIC_IP_NAME, "ip.example", "RFC 1035"),
        (On::Ingress, LEGACY_STATIC_IP_NAME, "IP", "RFC 1035"),
        (On::Ingress, LEGACY_ALLOW_HTTP, "no", "\"true\""),
    ];
    for (on, key, value, reason) in cases {
        let e = parse(*on, key, value).expect_err(&format!("{key}={value:?} must fail"));
        assert_eq!(e.key, *key, "{value:?}");
        assert!(e.reason.contains(reason), "{key}={value:?}: {e}");
    }
}

/// Characters that have broken other controllers' generated configs.
const INJECTION: &[&str] = &[
    ";", "{", "}", "#", "$", "\n", "\r", "\0", "\"", "'", "`", "\\", "\t", "${x}", "\r\n",
];

/// Replace the first ASCII letter or digit with its full-width look-alike,
/// and every `a`/`e`/`o` with the Cyrillic one.
fn look_alikes(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(i) = value.find(|c: char| c.is_ascii_alphanumeric()) {
        let c = value[i..].chars().next().expect("found");
        let wide = char::from_u32(c as u32 + 0xFEE0).expect("full-width form");
        out.push(format!("{}{wide}{}", &value[..i], &value[i + 1..]));
    }
    let cyrillic: String = value
        .chars()
        .map(|c| match c {
            'a' => '\u{430}',
            'e' => '\u{435}',
            'o' => '\u{43e}',
            c => c,
        })
        .collect();
    if cyrillic != value {
        out.push(cyrillic);
    }
    out
}

#[test]
fn injection_corpus_is_rejected_by_every_parser() {
    for (on, key, valid) in SUPPORTED {
        let mid = valid.len() / 2;
        let mut bad: Vec<String> = Vec::new();
        for p in INJECTION {
            bad.push((*p).to_string());
            bad.push(format!("{valid}{p}"));
            bad.push(format!("{p}{valid}"));
            bad.push(format!("{}{p}{}", &valid[..mid], &valid[mid..]));
            bad.push(format!("{valid},{p}"));
        }
        bad.extend(look_alikes(valid));
        // Over-long: well past every limit, but otherwise plausible.
        bad.push(format!("{valid}{}", "0".repeat(5000)));
        bad.push(vec![*valid; 600].join(","));
        for value in &bad {
            let e = parse(*on, key, value).expect_err(&format!("{key} accepted {value:?}"));
            assert_eq!(&e.key, key);
            let shown = e.to_string();
            assert!(
                !shown.contains(['\n', '\r', '\0']),
                "error text must escape control characters: {shown:?}"
            );
            assert!(
                e.value.chars().count() <= 64 + 3,
                "value not truncated: {}",
                e.value
            );
        }
    }
}

#[test]
fn error_value_is_truncated_for_display() {
    let e = AnnotationError::new("k", &"x".repeat(100), "r");
    assert_eq!(e.value, format!("{}...", "x".repeat(64)));
    let short = AnnotationError::new("k", "ünï", "r");
    assert_eq!(short.value, "ünï");
}

#[test]
fn unknown_and_misplaced_gantry_keys_are_warnings() {
    let svc = parse_service(&map(&[
        ("gantry.dev/sheme", "internal"),
        (SSL_REDIRECT, "true"),
        ("example.com/other", "x"),
        ("notgantry.dev/x", "y"),
    ]))
    .expect("warnings only");
    assert_eq!(
        svc.warnings,
        [
            "unknown annotation gantry.dev/sheme ignored",
            "annotation gantry.dev/ssl-redirect applies to Ingresses only; ignored",
        ]
    );
    let ing = parse_ingress(&map(&[
        (CROSS_ZONE, "true"),
        (HEALTH_CHECK_PATH, "/x"),
        ("gantry.dev/foo", "1"),
        (LEGACY_INGRESS_CLASS, "gce"),
    ]))
    .expect("warnings only");
    assert_eq!(
        ing.warnings,
        [
            "annotation gantry.dev/cross-zone applies to Services only; ignored",
            "unknown annotation gantry.dev/foo ignored",
            "annotation gantry.dev/health-check-path applies to Services only; ignored",
        ]
    );
    // A hostile key is shown escaped and bounded.
    let hostile = format!("gantry.dev/x\n{}", "y".repeat(200));
    let w = parse_service(&map(&[(&hostile, "v")]))
        .expect("warning")
        .warnings;
    assert_eq!(w.len(), 1);
    assert!(!w[0].contains('\n') && w[0].len() < 120, "{}", w[0]);
}
