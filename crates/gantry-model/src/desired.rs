//! The desired state of one load balancer, as translated from a Service
//! (L4) or an Ingress (L7). Providers receive only this; they never see a
//! Kubernetes object.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{class::ProviderKind, identity::Owner};

/// Everything a provider needs to build or update one load balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredLoadBalancer {
    /// Who owns it (and so how its resources are named and tagged).
    pub owner: Owner,
    /// Name of the `LoadBalancerClass` it belongs to.
    pub class: String,
    /// Which provider the class selects.
    pub provider: ProviderKind,
    /// L4 (Service) or L7 (Ingress) shape.
    pub spec: LoadBalancerSpec,
}

/// The two shapes a load balancer takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoadBalancerSpec {
    /// A Service of type LoadBalancer: passthrough TCP/UDP.
    L4(L4Spec),
    /// An Ingress: HTTP(S) with host/path routing and TLS termination.
    L7(L7Spec),
}

/// Transport protocol of a listener.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum Protocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// Upper-case name as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// One frontend port of an L4 balancer and the node port it forwards to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4Listener {
    /// The Service port's name (may be empty for single-port Services).
    pub name: String,
    /// TCP or UDP. A Service may mix both, on the same or different ports.
    pub protocol: Protocol,
    /// The port clients connect to.
    pub port: u16,
    /// The node port every backend node answers on.
    pub node_port: u16,
}

/// One node that receives traffic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendNode {
    /// `Node.metadata.name`.
    pub name: String,
    /// The node's InternalIP (or, failing that, first) address.
    pub address: IpAddr,
    /// `Node.spec.providerID` (e.g. `aws:///us-east-1a/i-0abc`, `gce://p/z/n`).
    pub provider_id: Option<String>,
    /// `topology.kubernetes.io/zone` label.
    pub zone: Option<String>,
}

/// How the balancer decides a node is healthy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HealthCheck {
    /// TCP connect to the listener's own node port (`externalTrafficPolicy: Cluster`).
    NodePortTcp,
    /// HTTP GET `path` on `port` (`healthCheckNodePort` with `/healthz` for `Local`,
    /// or the backend's node port for L7).
    Http {
        /// Port on the node.
        port: u16,
        /// Request path.
        path: String,
    },
}

/// Whether the balancer faces the internet or only the private network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Public address.
    InternetFacing,
    /// Private address in the cluster's network.
    Internal,
}

/// Options of an L4 balancer that annotations may set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4Options {
    /// Overrides the class's scheme.
    pub scheme: Option<Scheme>,
    /// Send PROXY protocol v2 to backends.
    pub proxy_protocol: bool,
    /// Spread across zones (AWS NLB attribute).
    pub cross_zone: Option<bool>,
    /// Services with the same key may share one address if ports do not collide.
    pub shared_ip_key: Option<String>,
    /// Explicit subnets (AWS) overriding class and discovery.
    pub subnets: Vec<String>,
}

/// An L4 (Service) balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L4Spec {
    /// Frontend ports, sorted by (port, protocol).
    pub listeners: Vec<L4Listener>,
    /// Eligible nodes, sorted by name.
    pub backends: Vec<BackendNode>,
    /// Health check applied to every backend.
    pub health_check: HealthCheck,
    /// `spec.loadBalancerSourceRanges` (empty = everyone).
    pub source_ranges: Vec<IpNet>,
    /// `spec.loadBalancerIP` or the Gantry annotation asking for an address.
    pub requested_ip: Option<IpAddr>,
    /// Annotation-driven options.
    pub options: L4Options,
}

/// How an L7 path matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PathMatch {
    /// The request path equals the path.
    Exact,
    /// Element-wise prefix (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`).
    Prefix,
}

/// A backend of an L7 route: one Service port, reached through its node port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L7Backend {
    /// Namespace of the Service.
    pub namespace: String,
    /// Service name.
    pub service: String,
    /// Service port number.
    pub port: u16,
    /// The node port for that Service port.
    pub node_port: u16,
}

impl L7Backend {
    /// `namespace/service:port`, unique within one balancer.
    pub fn key(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.service, self.port)
    }
}

/// One path of a host rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L7Path {
    /// Path as matched (for GCE-style `/foo/*` this is `/foo/`, with Prefix).
    pub path: String,
    /// Exact or Prefix.
    pub path_match: PathMatch,
    /// Index into [`L7Spec::backends`].
    pub backend: usize,
}

/// Routes for one host (or every host when `host` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L7Rule {
    /// Host to match; may start with `*.`.
    pub host: Option<String>,
    /// Paths in Ingress order.
    pub paths: Vec<L7Path>,
}

/// A TLS certificate served for some hosts.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsCertificate {
    /// Name of the Secret it came from (same namespace as the Ingress).
    pub secret_name: String,
    /// SNI hosts it is served for (empty = default certificate).
    pub hosts: Vec<String>,
    /// PEM certificate chain.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
}

impl std::fmt::Debug for TlsCertificate {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("secret_name", &self.secret_name)
            .field("hosts", &self.hosts)
            .field("cert_pem_len", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// Options of an L7 balancer that annotations may set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L7Options {
    /// Overrides the class's scheme.
    pub scheme: Option<Scheme>,
    /// Redirect plain HTTP to HTTPS.
    pub ssl_redirect: bool,
    /// Certificate ARNs / names managed outside Gantry (e.g. ACM).
    pub certificate_refs: Vec<String>,
    /// Name of a pre-existing static address to use.
    pub static_ip_name: Option<String>,
    /// Serve plain HTTP at all (`kubernetes.io/ingress.allow-http: "false"`
    /// turns it off). Distinct from `ssl_redirect`, which keeps an HTTP
    /// frontend that only redirects.
    #[serde(default = "default_true")]
    pub allow_http: bool,
}

fn default_true() -> bool {
    true
}

impl Default for L7Options {
    fn default() -> Self {
        Self {
            scheme: None,
            ssl_redirect: false,
            certificate_refs: Vec::new(),
            static_ip_name: None,
            allow_http: true,
        }
    }
}

/// An L7 (Ingress) balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L7Spec {
    /// Host rules in Ingress order.
    pub rules: Vec<L7Rule>,
    /// Backend for requests no rule matches; `None` means a fixed 404.
    pub default_backend: Option<usize>,
    /// Distinct backends referenced by rules and the default backend.
    pub backends: Vec<L7Backend>,
    /// Health check per backend, same index as `backends`.
    pub health_checks: Vec<HealthCheck>,
    /// Eligible nodes, sorted by name.
    pub nodes: Vec<BackendNode>,
    /// Certificates from the Ingress's TLS section.
    pub tls: Vec<TlsCertificate>,
    /// Annotation-driven options.
    pub options: L7Options,
}
