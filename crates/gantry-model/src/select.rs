//! Selection: which objects are Gantry's, in which class, and which Nodes may
//! receive traffic. The first step after "watch": the controller asks these
//! pure functions before it translates anything.

use std::{collections::BTreeSet, net::IpAddr};

use k8s_openapi::api::{
    core::v1::{Node, Service},
    networking::v1::{Ingress, IngressBackend, IngressClass},
};
use kube::ResourceExt;

use crate::{
    GROUP, INGRESS_CONTROLLER_NAME,
    annotations::{DEFAULT_INGRESS_CLASS, LEGACY_INGRESS_CLASS},
    class::LoadBalancerClass,
    desired::BackendNode,
};

#[cfg(test)]
mod tests;

/// `spec.loadBalancerClass` values `gantry.dev/<name>` select the
/// `LoadBalancerClass` `<name>`.
pub const SERVICE_CLASS_PREFIX: &str = "gantry.dev/";

/// Label that keeps a Node out of every load balancer (upstream's own).
pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// Taint the cluster autoscaler puts on a Node it is about to remove; such a
/// Node leaves the balancers first so its connections can drain.
pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// Label holding a Node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Whether and how a Service concerns Gantry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceSelection {
    /// Not `type: LoadBalancer`: no balancer at all (an existing one must go).
    NotLoadBalancer,
    /// A load balancer, but another controller's (or nobody's) to build.
    OtherController,
    /// Gantry builds it in this `LoadBalancerClass`.
    Class(String),
}

/// Decide whether a Service is Gantry's and in which class.
///
/// `spec.loadBalancerClass: gantry.dev/<name>` selects `<name>` (an empty
/// `<name>` is still returned, so the controller reports the missing class
/// rather than ignoring a Service clearly addressed to Gantry). A Service
/// without a class falls to `default_class`, which the controller resolves
/// from its flag or the class marked `default`, unless its
/// [`crate::annotations::CLASS`] annotation names another class.
pub fn select_service_class(svc: &Service, default_class: Option<&str>) -> ServiceSelection {
    let Some(spec) = &svc.spec else {
        return ServiceSelection::NotLoadBalancer;
    };
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return ServiceSelection::NotLoadBalancer;
    }
    match spec
        .load_balancer_class
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        Some(class) => match class.strip_prefix(SERVICE_CLASS_PREFIX) {
            Some(name) => ServiceSelection::Class(name.to_string()),
            None => ServiceSelection::OtherController,
        },
        // A class-less Service belongs to Gantry only when Gantry is the
        // default implementation; then the `gantry.dev/class` annotation may
        // pick another of its classes. Without a default class the annotation
        // is ignored, so Gantry never fights a cloud controller over Services.
        None => match default_class {
            Some(default) => {
                let chosen = svc
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(crate::annotations::CLASS))
                    .map(|c| c.trim())
                    .filter(|c| !c.is_empty())
                    .unwrap_or(default);
                ServiceSelection::Class(chosen.to_string())
            }
            None => ServiceSelection::OtherController,
        },
    }
}

/// The `LoadBalancerClass` an IngressClass of Gantry's stands for, or `None`
/// when the IngressClass belongs to another controller or points elsewhere.
fn class_of_ingress_class(ic: &IngressClass, lb_classes: &[LoadBalancerClass]) -> Option<String> {
    let spec = ic.spec.as_ref()?;
    if spec.controller.as_deref() != Some(INGRESS_CONTROLLER_NAME) {
        return None;
    }
    match &spec.parameters {
        Some(p) => {
            let cluster_scoped =
                matches!(p.scope.as_deref(), None | Some("Cluster")) && p.namespace.is_none();
            (p.api_group.as_deref() == Some(GROUP)
                && p.kind == "LoadBalancerClass"
                && cluster_scoped
                && !p.name.is_empty())
            .then(|| p.name.clone())
        }
        // No parameters: the class marked default; when several are marked,
        // the alphabetically first, the same rule the controller applies to
        // Services (and reports on the classes as a `Default` condition).
        None => lb_classes
            .iter()
            .filter(|c| c.spec.default)
            .map(|c| c.name_any())
            .min(),
    }
}

/// Decide which `LoadBalancerClass` an Ingress uses; `None` when it is not Gantry's.
///
/// Order: `spec.ingressClassName`; else the legacy `kubernetes.io/ingress.class`
/// annotation, matched against IngressClass names and then `LoadBalancerClass`
/// aliases (so `gce` works; if several classes share an alias the first by
/// name wins, deterministically); else the cluster's default IngressClass, if
/// exactly one IngressClass is marked default and it is Gantry's.
pub fn select_ingress_class(
    ing: &Ingress,
    ingress_classes: &[IngressClass],
    lb_classes: &[LoadBalancerClass],
) -> Option<String> {
    let by_name = |name: &str| ingress_classes.iter().find(|ic| ic.name_any() == name);

    let class_name = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(name) = class_name {
        return class_of_ingress_class(by_name(name)?, lb_classes);
    }

    if let Some(value) = ing.annotations().get(LEGACY_INGRESS_CLASS) {
        if let Some(ic) = by_name(value) {
            return class_of_ingress_class(ic, lb_classes);
        }
        let mut aliased: Vec<String> = lb_classes
            .iter()
            .filter(|c| c.spec.aliases.iter().any(|a| a == value))
            .map(|c| c.name_any())
            .collect();
        aliased.sort();
        return aliased.into_iter().next();
    }

    let mut defaults = ingress_classes.iter().filter(|ic| {
        ic.annotations()
            .get(DEFAULT_INGRESS_CLASS)
            .is_some_and(|v| v == "true")
    });
    match (defaults.next(), defaults.next()) {
        (Some(only), None) => class_of_ingress_class(only, lb_classes),
        // Several defaults is ambiguous; upstream refuses to default then too.
        _ => None,
    }
}

/// The Nodes that may receive load-balanced traffic, sorted by name.
///
/// A Node is eligible when it is not being deleted, it lacks the
/// `node.kubernetes.io/exclude-from-external-load-balancers` label (any
/// value) and the cluster autoscaler's `ToBeDeletedByClusterAutoscaler`
/// taint, and it has an InternalIP (preferred) or ExternalIP.
///
/// The `Ready` condition is deliberately not consulted, as upstream's
/// service controller stopped doing (KEP-3458): a kubelet that misses its
/// heartbeats often still forwards traffic, and a flapping `Ready` across
/// many Nodes would rewrite every balancer's backend set on each flap. The
/// balancer's own health checks decide whether a Node receives traffic.
///
/// Unschedulable (cordoned) Nodes stay eligible on purpose, as upstream's
/// service controller does since it stopped excluding them: cordoning is how
/// every drain and node upgrade starts, and dropping those Nodes would churn
/// balancers and cut connections still served by pods on them (or, in a
/// rolling upgrade, empty the pool). The exclusion label is the explicit way out.
pub fn eligible_nodes(nodes: &[Node]) -> Vec<BackendNode> {
    let mut out: Vec<BackendNode> = nodes.iter().filter_map(eligible).collect();
    out.sort();
    out
}

fn eligible(node: &Node) -> Option<BackendNode> {
    let scaling_down = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|taints| taints.iter().any(|t| t.key == TO_BE_DELETED_TAINT));
    if node.metadata.deletion_timestamp.is_some()
        || node.labels().contains_key(EXCLUDE_FROM_LB_LABEL)
        || scaling_down
    {
        return None;
    }
    let status = node.status.as_ref()?;
    let addresses = status.addresses.as_deref().unwrap_or_default();
    let first_of = |kind: &str| {
        addresses
            .iter()
            .filter(|a| a.type_ == kind)
            .find_map(|a| a.address.parse::<IpAddr>().ok())
    };
    let address = first_of("InternalIP").or_else(|| first_of("ExternalIP"))?;
    Some(BackendNode {
        name: node.metadata.name.clone()?,
        address,
        provider_id: node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .filter(|p| !p.is_empty()),
        zone: node.labels().get(ZONE_LABEL).cloned(),
    })
}

/// The Services and Secrets (same namespace) an Ingress refers to, so the
/// controller can map their changes back to the Ingress.
pub fn ingress_references(ing: &Ingress) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut services = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    let Some(spec) = &ing.spec else {
        return (services, secrets);
    };
    let mut add = |b: &IngressBackend| {
        if let Some(s) = &b.service {
            services.insert(s.name.clone());
        }
    };
    if let Some(b) = &spec.default_backend {
        add(b);
    }
    for rule in spec.rules.iter().flatten() {
        for path in rule.http.iter().flat_map(|h| &h.paths) {
            add(&path.backend);
        }
    }
    for tls in spec.tls.iter().flatten() {
        if let Some(name) = &tls.secret_name {
            secrets.insert(name.clone());
        }
    }
    (services, secrets)
}
