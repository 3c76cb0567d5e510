//! Pipeline step "translate": gather everything an object refers to (Nodes,
//! backend Services, TLS Secrets) from a [`Source`] and call gantry-model's
//! pure translation.
//!
//! EndpointSlices are not among them: a balancer's targets are the eligible
//! nodes, and for `externalTrafficPolicy: Local` its health check on
//! `healthCheckNodePort` finds the nodes with endpoints. The controller
//! therefore watches no EndpointSlices, the busiest kind in a cluster.

use gantry_model::{
    LoadBalancerClass, LoadBalancerClassSpec,
    select::{ServiceSelection, ingress_references, select_ingress_class, select_service_class},
    translate::{
        IngressInputs, ServiceInputs, TranslateError, Translated, translate_ingress,
        translate_service,
    },
};
use k8s_openapi::api::{
    core::v1::{Node, Secret, Service},
    networking::v1::{Ingress, IngressClass},
};
use kube::ResourceExt;

/// Where translation inputs come from: the controller's caches, or (for
/// `gantry plan`) one-off API lists.
pub trait Source {
    /// Every Node.
    fn nodes(&self) -> Vec<Node>;
    /// Services in `namespace`.
    fn services_in(&self, namespace: &str) -> Vec<Service>;
    /// Secret `namespace/name`, if it exists.
    fn secret(&self, namespace: &str, name: &str) -> Option<Secret>;
    /// Every IngressClass.
    fn ingress_classes(&self) -> Vec<IngressClass>;
    /// Every LoadBalancerClass.
    fn lb_classes(&self) -> Vec<LoadBalancerClass>;
    /// LoadBalancerClass `name`.
    fn lb_class(&self, name: &str) -> Option<LoadBalancerClass> {
        self.lb_classes().into_iter().find(|c| c.name_any() == name)
    }
}

/// The class Services without `spec.loadBalancerClass` get: the
/// controller's `--default-class` flag when set; else, among the classes
/// marked `spec.default: true`, the alphabetically first by name. Several
/// marked classes are a misconfiguration that the class status reports on
/// each of them (see [`crate::classes`]), but the outcome is deterministic.
pub fn default_class(flag: Option<&str>, classes: &[LoadBalancerClass]) -> Option<String> {
    if let Some(flag) = flag {
        return Some(flag.to_string());
    }
    marked_default(classes).into_iter().next()
}

/// Names of the classes marked `spec.default: true`, sorted.
pub fn marked_default(classes: &[LoadBalancerClass]) -> Vec<String> {
    let mut names: Vec<String> = classes
        .iter()
        .filter(|c| c.spec.default)
        .map(|c| c.name_any())
        .collect();
    names.sort();
    names
}

/// The class a Service is Gantry's in, if any.
pub fn service_class(svc: &Service, flag: Option<&str>, source: &impl Source) -> Option<String> {
    let default = default_class(flag, &source.lb_classes());
    match select_service_class(svc, default.as_deref()) {
        ServiceSelection::Class(c) => Some(c),
        ServiceSelection::NotLoadBalancer | ServiceSelection::OtherController => None,
    }
}

/// The class an Ingress is Gantry's in, if any. An IngressClass of Gantry's
/// without parameters stands for the default class; when several classes
/// are marked default, the same one wins as for Services without the flag
/// (the alphabetically first), so the selection sees only that one marked.
pub fn ingress_class(ing: &Ingress, source: &impl Source) -> Option<String> {
    let mut classes = source.lb_classes();
    let winner = marked_default(&classes).into_iter().next();
    for c in &mut classes {
        c.spec.default = c.spec.default && Some(c.name_any()) == winner;
    }
    select_ingress_class(ing, &source.ingress_classes(), &classes)
}

/// A [`Source`] whose Secrets were read for one Ingress (the controller
/// caches no Secrets; see [`crate::secrets`]).
pub struct WithSecrets<'a, S> {
    /// Everything else.
    pub inner: &'a S,
    /// The Secrets read.
    pub secrets: &'a [Secret],
}

impl<S: Source> Source for WithSecrets<'_, S> {
    fn nodes(&self) -> Vec<Node> {
        self.inner.nodes()
    }

    fn services_in(&self, namespace: &str) -> Vec<Service> {
        self.inner.services_in(namespace)
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        self.secrets
            .iter()
            .find(|s| {
                s.metadata.name.as_deref() == Some(name)
                    && s.metadata.namespace.as_deref() == Some(namespace)
            })
            .cloned()
    }

    fn ingress_classes(&self) -> Vec<IngressClass> {
        self.inner.ingress_classes()
    }

    fn lb_classes(&self) -> Vec<LoadBalancerClass> {
        self.inner.lb_classes()
    }

    fn lb_class(&self, name: &str) -> Option<LoadBalancerClass> {
        self.inner.lb_class(name)
    }
}

/// Translate a Service selected for `class_name`.
pub fn service(
    svc: &Service,
    source: &impl Source,
    cluster_id: &str,
    class_name: &str,
    class: &LoadBalancerClassSpec,
) -> Result<Translated, TranslateError> {
    let nodes = source.nodes();
    translate_service(
        svc,
        &ServiceInputs {
            cluster_id,
            class_name,
            class,
            nodes: &nodes,
        },
    )
}

/// Translate an Ingress selected for `class_name`.
pub fn ingress(
    ing: &Ingress,
    source: &impl Source,
    cluster_id: &str,
    class_name: &str,
    class: &LoadBalancerClassSpec,
) -> Result<Translated, TranslateError> {
    let ns = ing.namespace().unwrap_or_default();
    let (_, secret_names) = ingress_references(ing);
    let nodes = source.nodes();
    let services = source.services_in(&ns);
    // Only the Secrets the Ingress names, from its own namespace.
    let secrets: Vec<Secret> = secret_names
        .iter()
        .filter_map(|name| source.secret(&ns, name))
        .collect();
    translate_ingress(
        ing,
        &IngressInputs {
            cluster_id,
            class_name,
            class,
            nodes: &nodes,
            services: &services,
            secrets: &secrets,
        },
    )
}

#[cfg(test)]
mod tests {
    use gantry_model::ProviderKind;
    use kube::api::ObjectMeta;

    use super::*;

    fn class(name: &str, default: bool) -> LoadBalancerClass {
        LoadBalancerClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: LoadBalancerClassSpec {
                provider: ProviderKind::Local,
                default,
                aliases: vec![],
                aws: None,
                gcp: None,
                local: None,
            },
            status: None,
        }
    }

    #[test]
    fn default_class_prefers_flag_then_first_marked_default() {
        let classes = [class("a", false), class("b", true)];
        assert_eq!(default_class(Some("x"), &classes).as_deref(), Some("x"));
        assert_eq!(default_class(None, &classes).as_deref(), Some("b"));
        let two = [class("z", true), class("b", true), class("m", true)];
        assert_eq!(default_class(None, &two).as_deref(), Some("b"));
        assert_eq!(marked_default(&two), ["b", "m", "z"]);
        assert_eq!(default_class(None, &[class("a", false)]), None);
    }
}
