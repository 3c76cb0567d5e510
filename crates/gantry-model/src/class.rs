//! `LoadBalancerClass`: Gantry's cluster-scoped CRD naming a provider and its
//! settings. Services select it with `spec.loadBalancerClass:
//! gantry.dev/<name>`; Ingresses through an IngressClass whose
//! `spec.parameters` point at it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::desired::Scheme;

/// Which provider adapter serves a class.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// AWS Elastic Load Balancing v2 (NLB for Services, ALB for Ingress).
    Aws,
    /// Google Compute Engine load balancing.
    Gcp,
    /// Bare metal: Gantry's own address pools and datapath.
    Local,
}

impl ProviderKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Local => "local",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class of load balancers: one provider and its settings.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gantry.dev",
    version = "v1alpha1",
    kind = "LoadBalancerClass",
    plural = "loadbalancerclasses",
    shortname = "lbclass",
    status = "LoadBalancerClassStatus",
    printcolumn = r#"{"name":"Provider","type":"string","jsonPath":".spec.provider"}"#,
    printcolumn = r#"{"name":"Default","type":"boolean","jsonPath":".spec.default"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerClassSpec {
    /// The provider that builds balancers of this class.
    pub provider: ProviderKind,
    /// Services without `spec.loadBalancerClass` (and IngressClasses of
    /// Gantry's without parameters) use this class when it is true. The
    /// controller's `--default-class` flag wins over it for Services; when
    /// several classes are marked, the alphabetically first wins and each
    /// marked class reports the outcome in a `Default` condition.
    #[serde(default)]
    pub default: bool,
    /// Legacy `kubernetes.io/ingress.class` values that select this class
    /// (for example `gce`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Settings for `provider: aws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSettings>,
    /// Settings for `provider: gcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpSettings>,
    /// Settings for `provider: local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalSettings>,
}

/// AWS settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSettings {
    /// Region, e.g. `us-east-1`; defaults to the standard AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// API endpoint override (for testing against an emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Default scheme of balancers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// VPC id; discovered from subnets when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// Subnet ids; when empty, discovered by role and cluster tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<String>,
    /// ACM certificate ARN used for HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// Extra tags put on every resource.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// GCP settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSettings {
    /// Project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Region for Service balancers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// VPC network name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// API endpoint override (for testing against an emulator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Default scheme of Service balancers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// Use the legacy target-pool form for Service balancers.
    #[serde(default)]
    pub target_pools: bool,
}

/// How a local balancer's address reaches the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LocalMode {
    /// Addresses are the eligible nodes' own (like k3s ServiceLB).
    NodeAddresses,
    /// A virtual address from the pools, held by one node, announced by ARP/NDP.
    #[default]
    L2,
}

/// Bare-metal settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalSettings {
    /// Address pools: CIDRs (`192.0.2.0/28`, `2001:db8::/120`) or ranges
    /// (`192.0.2.10-192.0.2.20`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    /// How addresses are made reachable.
    #[serde(default)]
    pub mode: LocalMode,
    /// Interface that announces L2 addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// Observed state of a class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerClassStatus {
    /// `Accepted` says whether the settings are valid for the provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Errors in a class's settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassError {
    /// A settings block for another provider is present.
    #[error("spec.{field} is set but spec.provider is {provider}")]
    WrongSettings {
        /// The stray field.
        field: &'static str,
        /// The declared provider.
        provider: ProviderKind,
    },
    /// A pool entry does not parse.
    #[error("spec.local.pools[{index}]: {value:?} is not a CIDR or an address range ({reason})")]
    BadPool {
        /// Index in the list.
        index: usize,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

impl LoadBalancerClassSpec {
    /// Check that the settings fit the provider.
    pub fn validate(&self) -> Result<(), ClassError> {
        let stray = [
            ("aws", self.aws.is_some(), ProviderKind::Aws),
            ("gcp", self.gcp.is_some(), ProviderKind::Gcp),
            ("local", self.local.is_some(), ProviderKind::Local),
        ];
        for (field, set, kind) in stray {
            if set && kind != self.provider {
                return Err(ClassError::WrongSettings {
                    field,
                    provider: self.provider,
                });
            }
        }
        if let Some(local) = &self.local {
            for (index, value) in local.pools.iter().enumerate() {
                parse_pool(value).map_err(|reason| ClassError::BadPool {
                    index,
                    value: value.clone(),
                    reason,
                })?;
            }
        }
        Ok(())
    }
}

/// One parsed address pool entry: an inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolRange {
    /// First address.
    pub first: std::net::IpAddr,
    /// Last address (inclusive).
    pub last: std::net::IpAddr,
}

/// Parse `a.b.c.d/n`, `a:b::/n` or `first-last` into an inclusive range.
pub fn parse_pool(value: &str) -> Result<PoolRange, String> {
    let value = value.trim();
    if let Some((a, b)) = value.split_once('-') {
        let first: std::net::IpAddr = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
        let last: std::net::IpAddr = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err("range mixes IPv4 and IPv6".into());
        }
        if first > last {
            return Err("range is empty (first > last)".into());
        }
        return Ok(PoolRange { first, last });
    }
    let net: ipnet::IpNet = value.parse().map_err(|e| format!("{e}"))?;
    Ok(PoolRange {
        first: net.network(),
        last: net.broadcast(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse() {
        let r = parse_pool("192.0.2.0/30").expect("cidr");
        assert_eq!(r.first.to_string(), "192.0.2.0");
        assert_eq!(r.last.to_string(), "192.0.2.3");
        let r = parse_pool("192.0.2.10-192.0.2.20").expect("range");
        assert_eq!(r.last.to_string(), "192.0.2.20");
        assert!(parse_pool("2001:db8::/126").is_ok());
        for bad in [
            "",
            "10.0.0.0/33",
            "192.0.2.9-192.0.2.1",
            "192.0.2.1-2001:db8::1",
            "x;y",
        ] {
            assert!(parse_pool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_must_match_provider() {
        let spec = LoadBalancerClassSpec {
            provider: ProviderKind::Local,
            default: false,
            aliases: vec![],
            aws: Some(AwsSettings::default()),
            gcp: None,
            local: None,
        };
        assert_eq!(
            spec.validate(),
            Err(ClassError::WrongSettings {
                field: "aws",
                provider: ProviderKind::Local
            })
        );
    }
}
