//! Service of type LoadBalancer -> L4 [`DesiredLoadBalancer`].

use std::{collections::BTreeMap, net::IpAddr};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};

use super::{ServiceInputs, TranslateError, Translated, owner, port};
use crate::{
    annotations::{self, LOAD_BALANCER_IP},
    desired::{DesiredLoadBalancer, HealthCheck, L4Listener, L4Spec, LoadBalancerSpec, Protocol},
    identity::OwnerKind,
    select::eligible_nodes,
};

/// The path kube-proxy answers on `healthCheckNodePort`.
const KUBE_PROXY_HEALTH_PATH: &str = "/healthz";

/// Translate a Service of type LoadBalancer.
pub fn translate_service(
    service: &Service,
    inputs: &ServiceInputs<'_>,
) -> Result<Translated, TranslateError> {
    let owner = owner(&service.metadata, OwnerKind::Service, inputs.cluster_id)?;
    let spec = service
        .spec
        .as_ref()
        .ok_or_else(|| TranslateError::Missing {
            field: "spec".into(),
        })?;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Err(TranslateError::Invalid {
            field: "spec.type".into(),
            value: spec.type_.clone().unwrap_or_default(),
            reason: "only Services of type LoadBalancer get a load balancer".into(),
        });
    }
    let empty = BTreeMap::new();
    let parsed =
        annotations::parse_service(service.metadata.annotations.as_ref().unwrap_or(&empty))?;

    let listeners = listeners(spec)?;
    let nodes = eligible_nodes(inputs.nodes);
    let (backends, health_check) = match spec.external_traffic_policy.as_deref() {
        None | Some("Cluster") => (nodes, HealthCheck::NodePortTcp),
        Some("Local") => {
            let port_value =
                spec.health_check_node_port
                    .ok_or_else(|| TranslateError::Missing {
                        field: "spec.healthCheckNodePort".into(),
                    })?;
            let hc_port = port("spec.healthCheckNodePort".into(), port_value)?;
            // Every eligible node, as for `Cluster`: the check decides which
            // serve (see `ServiceInputs::nodes`).
            let check = HealthCheck::Http {
                port: hc_port,
                path: KUBE_PROXY_HEALTH_PATH.into(),
            };
            (nodes, check)
        }
        Some(other) => {
            return Err(TranslateError::Invalid {
                field: "spec.externalTrafficPolicy".into(),
                value: other.into(),
                reason: "must be Cluster or Local".into(),
            });
        }
    };

    let source_ranges = source_ranges(spec, parsed.source_ranges)?;
    let requested_ip = requested_ip(spec, parsed.load_balancer_ip)?;

    Ok(Translated {
        desired: DesiredLoadBalancer {
            owner,
            class: inputs.class_name.to_string(),
            provider: inputs.class.provider,
            spec: LoadBalancerSpec::L4(L4Spec {
                listeners,
                backends,
                health_check,
                source_ranges,
                requested_ip,
                options: parsed.options,
            }),
        },
        warnings: parsed.warnings,
    })
}

/// Frontends from `spec.ports`, sorted by (port, protocol).
fn listeners(spec: &ServiceSpec) -> Result<Vec<L4Listener>, TranslateError> {
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() {
        return Err(TranslateError::Missing {
            field: "spec.ports".into(),
        });
    }
    let mut out: Vec<L4Listener> = Vec::with_capacity(ports.len());
    for (i, p) in ports.iter().enumerate() {
        let protocol = match p.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some(other) => {
                return Err(TranslateError::Invalid {
                    field: format!("spec.ports[{i}].protocol"),
                    value: other.into(),
                    reason: "only TCP and UDP are supported".into(),
                });
            }
        };
        let frontend = port(format!("spec.ports[{i}].port"), p.port)?;
        let node_port_value = p.node_port.ok_or_else(|| TranslateError::Invalid {
            field: format!("spec.ports[{i}].nodePort"),
            value: String::new(),
            reason: "Gantry balancers forward to node ports; a node port is required \
                     (do not set spec.allocateLoadBalancerNodePorts: false)"
                .into(),
        })?;
        let node_port = port(format!("spec.ports[{i}].nodePort"), node_port_value)?;
        if out
            .iter()
            .any(|l| l.port == frontend && l.protocol == protocol)
        {
            return Err(TranslateError::Invalid {
                field: format!("spec.ports[{i}]"),
                value: format!("{frontend}/{}", protocol.as_str()),
                reason: "duplicate port and protocol".into(),
            });
        }
        out.push(L4Listener {
            name: p.name.clone().unwrap_or_default(),
            protocol,
            port: frontend,
            node_port,
        });
    }
    out.sort_by_key(|l| (l.port, l.protocol));
    Ok(out)
}

/// `spec.loadBalancerSourceRanges`, else the legacy annotation; canonical
/// (host bits cleared), sorted and deduplicated.
fn source_ranges(spec: &ServiceSpec, legacy: Vec<IpNet>) -> Result<Vec<IpNet>, TranslateError> {
    let field = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    let mut out = if field.is_empty() {
        legacy
    } else {
        field
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.trim()
                    .parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|_| TranslateError::Invalid {
                        field: format!("spec.loadBalancerSourceRanges[{i}]"),
                        value: v.clone(),
                        reason: "not a CIDR (e.g. 203.0.113.0/24)".into(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    out.sort();
    out.dedup();
    Ok(out)
}

/// `spec.loadBalancerIP` and the Gantry annotation; both may be set only if equal.
fn requested_ip(
    spec: &ServiceSpec,
    annotation: Option<IpAddr>,
) -> Result<Option<IpAddr>, TranslateError> {
    let field = match spec.load_balancer_ip.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => Some(v.parse::<IpAddr>().map_err(|_| TranslateError::Invalid {
            field: "spec.loadBalancerIP".into(),
            value: v.into(),
            reason: "not an IPv4 or IPv6 address".into(),
        })?),
        None => None,
    };
    match (field, annotation) {
        (Some(f), Some(a)) if f != a => Err(TranslateError::Invalid {
            field: "spec.loadBalancerIP".into(),
            value: f.to_string(),
            reason: format!("differs from annotation {LOAD_BALANCER_IP}={a}; set only one"),
        }),
        (f, a) => Ok(f.or(a)),
    }
}
