//! The pure half of the EndpointSlice controller: from a Service and the
//! pods it selects, the slices that should exist. Pods are grouped by their
//! resolved ports (a named `targetPort` may resolve differently per pod),
//! one group per slice, at most [`MAX_ENDPOINTS`] endpoints each.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{ObjectReference, Pod, Service, ServicePort},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use crate::compare::normalized;

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming a slice's manager.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value for [`MANAGED_BY_LABEL`], the same as the real one.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// The label set on slices of headless Services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Endpoints per slice, as the real controller's default.
pub const MAX_ENDPOINTS: usize = 100;

/// The content of one slice.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceContent {
    /// Resolved ports.
    pub ports: Vec<EndpointPort>,
    /// Endpoints, sorted by pod name.
    pub endpoints: Vec<Endpoint>,
}

/// Whether the controller manages slices for this Service at all: only
/// Services with a selector (and not ExternalName) get slices.
pub fn is_managed(svc: &Service) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    spec.selector.is_some() && spec.type_.as_deref() != Some("ExternalName")
}

/// The labels a Service's slices carry.
pub fn labels(svc: &Service, name: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != SERVICE_NAME_LABEL && k.as_str() != MANAGED_BY_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(SERVICE_NAME_LABEL.into(), name.into());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The slices a Service should have, given all pods of its namespace.
/// Always at least one (an empty placeholder when nothing is selected).
pub fn desired(
    svc: &Service,
    pods: &[&Pod],
    zone_of: impl Fn(&str) -> Option<String>,
) -> Vec<SliceContent> {
    let Some(spec) = svc.spec.as_ref() else {
        return vec![placeholder()];
    };
    let selector = spec.selector.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_ports = spec.ports.clone().unwrap_or_default();
    let mut groups: BTreeMap<String, SliceContent> = BTreeMap::new();
    let mut selected: Vec<&&Pod> = pods.iter().filter(|p| selects(&selector, p)).collect();
    selected.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in selected {
        let Some(endpoint) = endpoint(pod, publish_not_ready, &zone_of) else {
            continue;
        };
        let ports: Vec<EndpointPort> = svc_ports.iter().filter_map(|sp| resolve(sp, pod)).collect();
        let key = normalized(&ports).to_string();
        groups
            .entry(key)
            .or_insert_with(|| SliceContent {
                ports,
                endpoints: Vec::new(),
            })
            .endpoints
            .push(endpoint);
    }
    let mut out = Vec::new();
    for group in groups.into_values() {
        for chunk in group.endpoints.chunks(MAX_ENDPOINTS) {
            out.push(SliceContent {
                ports: group.ports.clone(),
                endpoints: chunk.to_vec(),
            });
        }
    }
    if out.is_empty() {
        out.push(placeholder());
    }
    out
}

fn placeholder() -> SliceContent {
    SliceContent {
        ports: Vec::new(),
        endpoints: Vec::new(),
    }
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// The endpoint of a pod, if it belongs in slices at all: it needs an
/// address and must not have finished.
fn endpoint(
    pod: &Pod,
    publish_not_ready: bool,
    zone_of: &impl Fn(&str) -> Option<String>,
) -> Option<Endpoint> {
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let serving = pod_ready(pod);
    let ready = publish_not_ready || (serving && !terminating);
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    Some(Endpoint {
        addresses: vec![ip],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        zone: node_name.as_deref().and_then(zone_of),
        node_name,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    })
}

/// A Service port as this pod serves it: the number from `targetPort`, or
/// the pod's container port of that name. `None` when the name is not found.
fn resolve(sp: &ServicePort, pod: &Pod) -> Option<EndpointPort> {
    let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
    let port = match &sp.target_port {
        None => sp.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => named_port(pod, name, &protocol)?,
    };
    Some(EndpointPort {
        name: Some(sp.name.clone().unwrap_or_default()),
        port: Some(port),
        protocol: Some(protocol),
        app_protocol: sp.app_protocol.clone(),
    })
}

fn named_port(pod: &Pod, name: &str, protocol: &str) -> Option<i32> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol
        })
        .map(|p| p.container_port)
}

#[cfg(test)]
mod tests;
