//! Typed annotation parsing: one parser per supported annotation.
//!
//! Part of the "translate" step. Every supported key is a constant below; its
//! value is matched against a strict allow-list grammar (see [`values`]), and
//! a value that does not match is an [`AnnotationError`] naming the key. Keys
//! under `gantry.dev/` that Gantry does not know, or that belong to the other
//! object kind, come back as warnings so a typo is never silently ignored.

pub mod values;

#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;

use crate::desired::{L4Options, L7Options};

/// Prefix of every Gantry annotation.
pub const PREFIX: &str = "gantry.dev/";

/// Service: the address to request (IPv4 or IPv6). Conflicts with a
/// different `spec.loadBalancerIP`.
pub const LOAD_BALANCER_IP: &str = "gantry.dev/load-balancer-ip";
/// Service and Ingress: `internet-facing` or `internal`, overriding the class.
pub const SCHEME: &str = "gantry.dev/scheme";
/// Service: `v2` sends PROXY protocol v2 to backends, `none` (default) does not.
pub const PROXY_PROTOCOL: &str = "gantry.dev/proxy-protocol";
/// Service: `true` or `false`, spread traffic across zones (AWS NLB).
pub const CROSS_ZONE: &str = "gantry.dev/cross-zone";
/// Service: Services with the same key may share one address when their
/// ports do not collide; 1-63 of `[a-z0-9-]`, alphanumeric at both ends.
pub const SHARED_IP: &str = "gantry.dev/shared-ip";
/// Service: comma-separated AWS subnet ids (`subnet-0123abcd`), no spaces.
pub const SUBNETS: &str = "gantry.dev/subnets";
/// Service: the HTTP path an Ingress balancer health-checks this Service's
/// node port on (default `/`); an absolute path of URI characters, at most
/// 255, no spaces. Read when the Service is an Ingress backend.
pub const HEALTH_CHECK_PATH: &str = "gantry.dev/health-check-path";
/// Ingress: `true` redirects plain HTTP to HTTPS.
pub const SSL_REDIRECT: &str = "gantry.dev/ssl-redirect";
/// Ingress: comma-separated ACM certificate ARNs served besides (or instead
/// of) certificates from `spec.tls`.
pub const CERTIFICATE_ARNS: &str = "gantry.dev/certificate-arns";
/// Ingress: name of a pre-reserved static address (RFC 1035 name, at most 63).
pub const STATIC_IP_NAME: &str = "gantry.dev/static-ip-name";
/// Ingress, legacy GCE: same as [`STATIC_IP_NAME`].
pub const LEGACY_STATIC_IP_NAME: &str = "kubernetes.io/ingress.global-static-ip-name";
/// Ingress, legacy GCE: `false` disables the plain HTTP frontend.
pub const LEGACY_ALLOW_HTTP: &str = "kubernetes.io/ingress.allow-http";
/// Service, legacy: comma-separated CIDRs, used when
/// `spec.loadBalancerSourceRanges` is empty.
pub const LEGACY_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
/// Ingress, legacy: the class name (an IngressClass name or a class alias such as `gce`).
pub const LEGACY_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
/// IngressClass: `"true"` marks the cluster's default class.
pub const DEFAULT_INGRESS_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";

/// Service without `spec.loadBalancerClass`, when Gantry runs as the
/// cluster's default load balancer implementation (with a default class):
/// the `LoadBalancerClass` to use instead of the default. The API server
/// makes `spec.loadBalancerClass` immutable, so this annotation is how a
/// Service moves between providers: change it, and the controller builds the
/// new balancer, switches status once it is ready, then deletes the old one.
pub const CLASS: &str = "gantry.dev/class";

/// Gantry keys a Service understands.
const SERVICE_KEYS: &[&str] = &[
    CLASS,
    LOAD_BALANCER_IP,
    SCHEME,
    PROXY_PROTOCOL,
    CROSS_ZONE,
    SHARED_IP,
    SUBNETS,
    HEALTH_CHECK_PATH,
];
/// Gantry keys an Ingress understands.
const INGRESS_KEYS: &[&str] = &[SCHEME, SSL_REDIRECT, CERTIFICATE_ARNS, STATIC_IP_NAME];

/// How many characters of a rejected value an error repeats.
const DISPLAY_LEN: usize = 64;

/// An annotation whose value does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: invalid value {value:?}: {reason}")]
pub struct AnnotationError {
    /// The annotation key.
    pub key: String,
    /// The value as given (truncated for display).
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
}

impl AnnotationError {
    /// Build an error, keeping at most 64 characters of `value` so a huge
    /// value cannot bloat Events and conditions.
    pub fn new(key: &str, value: &str, reason: impl Into<String>) -> Self {
        let mut shown: String = value.chars().take(DISPLAY_LEN).collect();
        if shown.len() < value.len() {
            shown.push_str("...");
        }
        Self {
            key: key.to_string(),
            value: shown,
            reason: reason.into(),
        }
    }
}

/// What a Service's annotations ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAnnotations {
    /// Options for the L4 balancer.
    pub options: L4Options,
    /// [`LOAD_BALANCER_IP`].
    pub load_balancer_ip: Option<IpAddr>,
    /// [`HEALTH_CHECK_PATH`].
    pub health_check_path: Option<String>,
    /// [`LEGACY_SOURCE_RANGES`] (empty when absent).
    pub source_ranges: Vec<IpNet>,
    /// Unknown or misplaced `gantry.dev/*` keys.
    pub warnings: Vec<String>,
}

/// What an Ingress's annotations ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressAnnotations {
    /// Options for the L7 balancer.
    pub options: L7Options,
    /// Unknown or misplaced `gantry.dev/*` keys.
    pub warnings: Vec<String>,
}

/// Warnings for `gantry.dev/*` keys not in `own`; `other` names the keys
/// that belong to the other object kind, so the warning can say so.
fn unknown_keys(
    annotations: &BTreeMap<String, String>,
    own: &[&str],
    other: &[&str],
    other_kind: &str,
) -> Vec<String> {
    annotations
        .keys()
        .filter(|k| k.starts_with(PREFIX) && !own.contains(&k.as_str()))
        .map(|k| {
            // Keys are user text too: bounded, and escaped unless plainly a key.
            let bounded = AnnotationError::new("", k, "").value;
            let plain = bounded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
            let shown = if plain {
                bounded
            } else {
                format!("{bounded:?}")
            };
            if other.contains(&k.as_str()) {
                format!("annotation {shown} applies to {other_kind} only; ignored")
            } else {
                format!("unknown annotation {shown} ignored")
            }
        })
        .collect()
}

/// Parse the annotations Gantry reads from a Service.
pub fn parse_service(
    annotations: &BTreeMap<String, String>,
) -> Result<ServiceAnnotations, AnnotationError> {
    let get = |k: &str| annotations.get(k).map(String::as_str);
    let mut out = ServiceAnnotations::default();
    if let Some(v) = get(LOAD_BALANCER_IP) {
        out.load_balancer_ip = Some(values::ip(LOAD_BALANCER_IP, v)?);
    }
    if let Some(v) = get(SCHEME) {
        out.options.scheme = Some(values::scheme(SCHEME, v)?);
    }
    if let Some(v) = get(PROXY_PROTOCOL) {
        out.options.proxy_protocol = values::proxy_protocol(PROXY_PROTOCOL, v)?;
    }
    if let Some(v) = get(CROSS_ZONE) {
        out.options.cross_zone = Some(values::boolean(CROSS_ZONE, v)?);
    }
    if let Some(v) = get(SHARED_IP) {
        out.options.shared_ip_key = Some(values::shared_ip_key(SHARED_IP, v)?);
    }
    if let Some(v) = get(SUBNETS) {
        out.options.subnets = values::subnets(SUBNETS, v)?;
    }
    if let Some(v) = get(HEALTH_CHECK_PATH) {
        out.health_check_path = Some(values::http_path(HEALTH_CHECK_PATH, v)?);
    }
    if let Some(v) = get(LEGACY_SOURCE_RANGES) {
        out.source_ranges = values::cidr_list(LEGACY_SOURCE_RANGES, v)?;
    }
    out.warnings = unknown_keys(annotations, SERVICE_KEYS, INGRESS_KEYS, "Ingresses");
    Ok(out)
}

/// Parse the annotations Gantry reads from an Ingress.
pub fn parse_ingress(
    annotations: &BTreeMap<String, String>,
) -> Result<IngressAnnotations, AnnotationError> {
    let get = |k: &str| annotations.get(k).map(String::as_str);
    let mut out = IngressAnnotations::default();
    if let Some(v) = get(SCHEME) {
        out.options.scheme = Some(values::scheme(SCHEME, v)?);
    }
    if let Some(v) = get(SSL_REDIRECT) {
        out.options.ssl_redirect = values::boolean(SSL_REDIRECT, v)?;
    }
    if let Some(v) = get(CERTIFICATE_ARNS) {
        out.options.certificate_refs = values::certificate_arns(CERTIFICATE_ARNS, v)?;
    }
    let ours = get(STATIC_IP_NAME)
        .map(|v| values::rfc1035_name(STATIC_IP_NAME, v))
        .transpose()?;
    let legacy = get(LEGACY_STATIC_IP_NAME)
        .map(|v| values::rfc1035_name(LEGACY_STATIC_IP_NAME, v))
        .transpose()?;
    out.options.static_ip_name = match (ours, legacy) {
        (Some(a), Some(b)) if a != b => {
            return Err(AnnotationError::new(
                STATIC_IP_NAME,
                &a,
                format!("conflicts with {LEGACY_STATIC_IP_NAME}={b:?}; set only one"),
            ));
        }
        (a, b) => a.or(b),
    };
    out.options.allow_http = match get(LEGACY_ALLOW_HTTP) {
        Some(v) => values::boolean(LEGACY_ALLOW_HTTP, v)?,
        None => true,
    };
    let service_only: Vec<&str> = SERVICE_KEYS
        .iter()
        .copied()
        .filter(|k| !INGRESS_KEYS.contains(k))
        .collect();
    out.warnings = unknown_keys(annotations, INGRESS_KEYS, &service_only, "Services");
    Ok(out)
}
