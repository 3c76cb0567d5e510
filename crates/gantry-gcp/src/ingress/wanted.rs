//! The wanted global external Application Load Balancer of one Ingress,
//! computed without I/O: every resource's name, and what each holds.
//!
//! Chain: global address -> global forwarding rules (80, and 443 with TLS)
//! -> target HTTP/HTTPS proxy -> URL map -> one global backend service per
//! backend Service port (over the class's per-zone instance groups, through
//! a named port for the node port) -> one health check per backend; SSL
//! certificates from the Ingress's TLS Secrets on the HTTPS proxy; a
//! firewall rule opening the node ports to the load balancer's ranges.

use gantry_model::{
    Owner, ProviderError, ProviderKind,
    desired::{HealthCheck, L7Spec, Scheme, TlsCertificate},
};
use sha2::{Digest, Sha256};

use super::{
    frontend::role,
    url_map::{self, Fallback, Routes},
};

/// Longest Compute Engine resource name.
pub const NAME_LEN: usize = 63;

/// The frontend address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A global address Gantry reserves and owns, by name.
    Own(String),
    /// A global address reserved outside Gantry (`static-ip-name`), used
    /// as it is and never changed or released.
    Static(String),
}

/// One frontend: a forwarding rule on a port to a target proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frontend {
    /// Forwarding rule name.
    pub rule: String,
    /// Target proxy name.
    pub proxy: String,
    /// Name of the URL map the proxy uses.
    pub url_map: String,
    /// `portRange` of the forwarding rule.
    pub port: u16,
}

/// One backend Service port: a backend service and its health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `namespace/service:port`.
    pub key: String,
    /// `service-port`, the readable part of the roles of its resources.
    pub role: String,
    /// Backend service name.
    pub service: String,
    /// Health check name.
    pub health_check: String,
    /// Named port of the instance groups (`port32213`) for the node port.
    pub port_name: String,
    /// The node port.
    pub node_port: u16,
    /// How nodes are checked.
    pub check: HealthCheck,
}

/// One SSL certificate made from a TLS Secret. Certificates cannot change
/// in place, so the name carries a hash of the content: a rotated Secret
/// is a new certificate, swapped onto the proxy before the old one goes.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Certificate name.
    pub name: String,
    /// The Secret it comes from.
    pub secret: String,
    /// PEM chain.
    pub cert_pem: String,
    /// PEM key.
    pub key_pem: String,
}

impl std::fmt::Debug for Certificate {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("name", &self.name)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

/// The whole wanted chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Project id (links are `projects/{project}/global/...`).
    pub project: String,
    /// Frontend address.
    pub address: Address,
    /// Plain HTTP frontend, unless `allow-http` is off.
    pub http: Option<Frontend>,
    /// HTTPS frontend, when the Ingress has TLS.
    pub https: Option<Frontend>,
    /// The routing URL map's name.
    pub url_map: String,
    /// Its routes.
    pub routes: Routes,
    /// The HTTP frontend's redirect-only URL map (`ssl-redirect`).
    pub redirect_map: Option<String>,
    /// Backends, in the order of `L7Spec::backends`.
    pub backends: Vec<Backend>,
    /// Certificates Gantry makes from Secrets.
    pub certs: Vec<Certificate>,
    /// Certificates named by annotation, made outside Gantry.
    pub foreign_certs: Vec<String>,
    /// The firewall rule letting the load balancer reach the node ports.
    pub firewall: String,
}

impl Wanted {
    /// `projects/{project}/global/{collection}/{name}`.
    pub fn link(&self, collection: &str, name: &str) -> String {
        global_link(&self.project, collection, name)
    }

    /// The links the HTTPS proxy should hold, ours first.
    pub fn cert_links(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.name.as_str())
            .chain(self.foreign_certs.iter().map(String::as_str))
            .map(|name| self.link("sslCertificates", name))
            .collect()
    }

    /// The routes of the redirect-only URL map.
    pub fn redirect_routes() -> Routes {
        Routes {
            fallback: Fallback::RedirectHttps,
            host_rules: Vec::new(),
            matchers: Vec::new(),
        }
    }
}

/// `projects/{project}/global/{collection}/{name}`.
pub fn global_link(project: &str, collection: &str, name: &str) -> String {
    format!("projects/{project}/global/{collection}/{name}")
}

/// The name of `owner`'s resource with `role` in `class`.
pub fn name(owner: &Owner, class: &str, role: &str) -> String {
    owner.resource_name(class, role, NAME_LEN)
}

/// The named port of a node port, as ingress controllers on GCE name it.
pub fn port_name(node_port: u16) -> String {
    format!("port{node_port}")
}

/// A short hex digest, to tell certificate contents apart in names.
fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` is a Compute Engine resource name (RFC 1035, at most 63).
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= NAME_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.last() != Some(&b'-')
}

fn unsupported(message: String) -> ProviderError {
    ProviderError::Unsupported {
        provider: ProviderKind::Gcp,
        message,
    }
}

fn certificate(owner: &Owner, class: &str, tls: &TlsCertificate) -> Certificate {
    let role = format!(
        "crt-{}-{}",
        tls.secret_name,
        digest(&[&tls.cert_pem, &tls.key_pem])
    );
    Certificate {
        name: name(owner, class, &role),
        secret: tls.secret_name.clone(),
        cert_pem: tls.cert_pem.clone(),
        key_pem: tls.key_pem.clone(),
    }
}

/// The wanted chain for `spec`, or a permanent error naming what cannot be
/// built (nothing is created then).
pub fn wanted(
    owner: &Owner,
    class: &str,
    project: &str,
    spec: &L7Spec,
) -> Result<Wanted, ProviderError> {
    if spec.options.scheme == Some(Scheme::Internal) {
        return Err(unsupported(
            "scheme internal for an Ingress: only the global external Application Load \
             Balancer is built"
                .into(),
        ));
    }
    if spec.backends.is_empty() {
        return Err(unsupported(
            "an Ingress without any Service backend (no rule and no default backend)".into(),
        ));
    }
    if spec.health_checks.len() != spec.backends.len() {
        return Err(ProviderError::Rejected {
            operation: "Ensure",
            message: format!(
                "{} health checks for {} backends",
                spec.health_checks.len(),
                spec.backends.len()
            ),
        });
    }
    for name in spec
        .options
        .certificate_refs
        .iter()
        .chain(spec.options.static_ip_name.iter())
    {
        if !valid_name(name) {
            return Err(unsupported(format!(
                "{name:?} is not a Compute Engine resource name (certificates and static \
                 addresses are named, lower-case, at most 63 characters)"
            )));
        }
    }
    let backends: Vec<Backend> = spec
        .backends
        .iter()
        .zip(&spec.health_checks)
        .map(|(b, check)| {
            let role = format!("{}-{}", b.service, b.port);
            Backend {
                key: b.key(),
                role: role.clone(),
                service: name(owner, class, &format!("be-{role}")),
                health_check: name(owner, class, &format!("hc-{role}")),
                port_name: port_name(b.node_port),
                node_port: b.node_port,
                check: check.clone(),
            }
        })
        .collect();
    let certs: Vec<Certificate> = spec
        .tls
        .iter()
        .map(|t| certificate(owner, class, t))
        .collect();
    let tls = !certs.is_empty() || !spec.options.certificate_refs.is_empty();
    let url_map = name(owner, class, role::URL_MAP);
    let redirect = spec.options.ssl_redirect && tls;
    let redirect_map = redirect.then(|| name(owner, class, role::REDIRECT_MAP));
    let http = spec.options.allow_http.then(|| Frontend {
        rule: name(owner, class, role::HTTP_RULE),
        proxy: name(owner, class, role::HTTP_PROXY),
        url_map: redirect_map.clone().unwrap_or_else(|| url_map.clone()),
        port: 80,
    });
    let https = tls.then(|| Frontend {
        rule: name(owner, class, role::HTTPS_RULE),
        proxy: name(owner, class, role::HTTPS_PROXY),
        url_map: url_map.clone(),
        port: 443,
    });
    if http.is_none() && https.is_none() {
        return Err(unsupported(
            "allow-http is off and the Ingress has no TLS certificate: nothing to serve".into(),
        ));
    }
    let service_link = |i: usize| {
        global_link(
            project,
            "backendServices",
            &backends[i.min(backends.len() - 1)].service,
        )
    };
    let fallback = match spec.default_backend {
        Some(i) => Fallback::Service(service_link(i)),
        None => Fallback::NotFound(service_link(0)),
    };
    let routes = url_map::routes(spec, service_link, &fallback);
    let address = match &spec.options.static_ip_name {
        Some(n) => Address::Static(n.clone()),
        None => Address::Own(name(owner, class, role::ADDRESS)),
    };
    Ok(Wanted {
        project: project.to_string(),
        address,
        http,
        https,
        url_map,
        routes,
        redirect_map,
        backends,
        certs,
        foreign_certs: spec.options.certificate_refs.clone(),
        firewall: name(owner, class, super::firewall::ROLE),
    })
}
