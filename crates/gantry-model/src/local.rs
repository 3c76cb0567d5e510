//! `LocalLoadBalancer`: the bare-metal provider's published configuration.
//!
//! The local provider (allocation) and every datapath instance (traffic)
//! meet through these cluster-scoped objects: the provider writes `spec`,
//! each datapath reports its own entry under `status.nodes`. They are also
//! the allocation record: a restarted provider rebuilds which addresses are
//! taken from them before handing out anything new.
//!
//! TLS keys never appear here: L7 entries name Secrets, which the datapath
//! reads itself.

use std::{collections::BTreeMap, net::IpAddr};

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::class::LocalMode;

/// Spec of one bare-metal load balancer, written by the local provider.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gantry.dev",
    version = "v1alpha1",
    kind = "LocalLoadBalancer",
    plural = "localloadbalancers",
    shortname = "llb",
    status = "LocalLoadBalancerStatus",
    printcolumn = r#"{"name":"Class","type":"string","jsonPath":".spec.class"}"#,
    printcolumn = r#"{"name":"Owner","type":"string","jsonPath":".spec.owner.name"}"#,
    printcolumn = r#"{"name":"Addresses","type":"string","jsonPath":".spec.addresses"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LocalLoadBalancerSpec {
    /// The `LoadBalancerClass` this balancer belongs to.
    pub class: String,
    /// The Service or Ingress it serves.
    pub owner: LocalOwner,
    /// How the addresses reach the network.
    pub mode: LocalMode,
    /// External addresses clients connect to (allocated from the class's
    /// pools in `l2` mode; the eligible nodes' own in `nodeAddresses` mode).
    pub addresses: Vec<IpAddr>,
    /// Nodes that receive traffic, with the address their node ports answer on.
    pub nodes: Vec<LocalNode>,
    /// Passthrough listeners (Services).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l4: Vec<LocalL4Listener>,
    /// HTTP(S) routing (Ingresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l7: Option<LocalL7>,
    /// Client CIDRs allowed to connect; empty = everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_ranges: Vec<String>,
}

/// The object a local balancer serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalOwner {
    /// `Service` or `Ingress`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

/// A backend node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalNode {
    /// Node name.
    pub name: String,
    /// Address its node ports answer on.
    pub address: IpAddr,
}

/// Health check against a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum LocalHealthCheck {
    /// TCP connect to the node port.
    Tcp,
    /// HTTP GET `path` on `port`, healthy on 2xx.
    Http {
        /// Port on the node.
        port: u16,
        /// Request path.
        path: String,
    },
}

// Written out by hand: kube's structural-schema rewrite hoists variant
// properties into one object and panics when the variants of an internally
// tagged enum give the tag different values. The wire format is unchanged.
impl JsonSchema for LocalHealthCheck {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LocalHealthCheck".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "How node health is checked: `tcp` connects to the node port; `http` GETs `path` on `port` and is healthy on 2xx.",
            "type": "object",
            "properties": {
                "type": { "type": "string", "enum": ["tcp", "http"] },
                "port": { "type": "integer", "format": "uint16", "minimum": 0, "maximum": 65535 },
                "path": { "type": "string" }
            },
            "required": ["type"]
        })
    }
}

/// One passthrough listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalL4Listener {
    /// `TCP` or `UDP`.
    pub protocol: crate::desired::Protocol,
    /// Port on the external addresses.
    pub port: u16,
    /// Node port on every node.
    pub node_port: u16,
    /// How node health is checked.
    pub health_check: LocalHealthCheck,
    /// Send PROXY protocol v2 to the node port.
    #[serde(default)]
    pub proxy_protocol: bool,
}

/// HTTP(S) routing of an Ingress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalL7 {
    /// Host rules in Ingress order.
    pub rules: Vec<LocalL7Rule>,
    /// Backend for unmatched requests; none = 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<String>,
    /// Backends by key (`namespace/service:port`).
    pub backends: BTreeMap<String, LocalL7Backend>,
    /// Certificates: Secrets in the owner's namespace, with their SNI hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<LocalTls>,
    /// Redirect HTTP to HTTPS.
    #[serde(default)]
    pub ssl_redirect: bool,
    /// Serve plain HTTP at all.
    #[serde(default = "default_true")]
    pub allow_http: bool,
}

fn default_true() -> bool {
    true
}

/// One host rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalL7Rule {
    /// Host (may start with `*.`); none = any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Paths in order.
    pub paths: Vec<LocalL7Path>,
}

/// One path route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalL7Path {
    /// The path.
    pub path: String,
    /// `Exact` or `Prefix`.
    pub path_type: String,
    /// Backend key.
    pub backend: String,
}

/// A backend Service port, reached at a node port on every node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalL7Backend {
    /// Node port.
    pub node_port: u16,
    /// Health check.
    pub health_check: LocalHealthCheck,
}

/// A TLS certificate reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalTls {
    /// Secret name (in the owner's namespace, type `kubernetes.io/tls`).
    pub secret_name: String,
    /// SNI hosts; empty = default certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// What the datapaths report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalLoadBalancerStatus {
    /// Per datapath node: whether it serves the current spec. Each datapath
    /// merge-patches only its own key, so instances never overwrite each other.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, LocalNodeStatus>,
}

/// One datapath's report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalNodeStatus {
    /// `metadata.generation` of the spec it serves.
    pub observed_generation: i64,
    /// Whether all listeners are bound and at least one backend is healthy.
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The spec addresses this instance serves at `observed_generation`.
    /// While a newer generation is being applied, a balancer whose addresses
    /// did not change keeps serving, so it stays ready (a node joining the
    /// backends must not look like an outage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpAddr>,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn crd_schema_is_structural_and_names_both_checks() {
        let crd = LocalLoadBalancer::crd();
        let json = serde_json::to_string(&crd).expect("json");
        assert!(json.contains(r#""enum":["tcp","http"]"#), "{json}");
    }

    #[test]
    fn health_checks_keep_their_wire_format() {
        for (check, wire) in [
            (LocalHealthCheck::Tcp, r#"{"type":"tcp"}"#),
            (
                LocalHealthCheck::Http {
                    port: 32000,
                    path: "/healthz".into(),
                },
                r#"{"type":"http","port":32000,"path":"/healthz"}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&check).expect("json"), wire);
            assert_eq!(
                serde_json::from_str::<LocalHealthCheck>(wire).expect("parse"),
                check
            );
        }
    }
}
