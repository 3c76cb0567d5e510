//! Input and output of [`Engine::apply`](crate::Engine::apply): one resolved
//! object per `LocalLoadBalancer`, one readiness per object.

use gantry_model::local::LocalLoadBalancerSpec;

/// One `LocalLoadBalancer` with its TLS material resolved.
#[derive(Clone, Debug)]
pub struct ObjectConfig {
    /// Object name (cluster-scoped).
    pub name: String,
    /// `metadata.generation` of `spec`.
    pub generation: i64,
    /// The spec.
    pub spec: LocalLoadBalancerSpec,
    /// Certificates read from the Secrets the spec names.
    pub tls: Vec<TlsMaterial>,
    /// Problems found while resolving (missing Secret...); each makes the
    /// object not ready and is reported in its message.
    pub problems: Vec<String>,
}

impl ObjectConfig {
    /// An object without TLS material or problems.
    pub fn new(name: impl Into<String>, generation: i64, spec: LocalLoadBalancerSpec) -> Self {
        Self {
            name: name.into(),
            generation,
            spec,
            tls: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// The content of a `kubernetes.io/tls` Secret, with the SNI hosts it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsMaterial {
    /// Secret name, for messages.
    pub secret_name: String,
    /// SNI hosts (`*.` wildcards allowed); empty = default certificate.
    pub hosts: Vec<String>,
    /// `tls.crt`: PEM certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// `tls.key`: PEM private key.
    pub key_pem: Vec<u8>,
}

/// Whether this instance serves one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Generation applied.
    pub generation: i64,
    /// All listeners bound and at least one healthy node.
    pub ready: bool,
    /// Why not, when not ready.
    pub message: Option<String>,
}
