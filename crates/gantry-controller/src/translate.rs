//! Pipeline step "translate": gather everything an object refers to (Nodes,
//! EndpointSlices, backend Services, TLS Secrets) from a [`Source`] and call
//! gantry-model's pure translation.

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
    discovery::v1::EndpointSlice,
    networking::v1::{Ingress, IngressClass},
};
use kube::ResourceExt;

/// Label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Where translation inputs come from: the controller's caches, or (for
/// `gantry plan`) one-off API lists.
pub trait Source {
    /// Every Node.
    fn nodes(&self) -> Vec<Node>;
    /// EndpointSlices of Service `namespace/name`.
    fn slices_of(&self, namespace: &str, service: &str) -> Vec<EndpointSlice>;
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

/// The class Services without `spec.loadBalancerClass` get: the flag, else
/// the one `LoadBalancerClass` marked `default` (none if several are).
pub fn default_class(flag: Option<&str>, classes: &[LoadBalancerClass]) -> Option<String> {
    if let Some(flag) = flag {
        return Some(flag.to_string());
    }
    let mut defaults = classes.iter().filter(|c| c.spec.default);
    match (defaults.next(), defaults.next()) {
        (Some(only), None) => Some(only.name_any()),
        _ => None,
    }
}

/// The class a Service is Gantry's in, if any.
pub fn service_class(svc: &Service, flag: Option<&str>, source: &impl Source) -> Option<String> {
    let default = default_class(flag, &source.lb_classes());
    match select_service_class(svc, default.as_deref()) {
        ServiceSelection::Class(c) => Some(c),
        ServiceSelection::NotLoadBalancer | ServiceSelection::OtherController => None,
    }
}

/// The class an Ingress is Gantry's in, if any.
pub fn ingress_class(ing: &Ingress, source: &impl Source) -> Option<String> {
    select_ingress_class(ing, &source.ingress_classes(), &source.lb_classes())
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
    let slices = source.slices_of(
        svc.namespace().as_deref().unwrap_or_default(),
        &svc.name_any(),
    );
    translate_service(
        svc,
        &ServiceInputs {
            cluster_id,
            class_name,
            class,
            nodes: &nodes,
            slices: &slices,
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
    let (service_names, secret_names) = ingress_references(ing);
    let nodes = source.nodes();
    let services = source.services_in(&ns);
    // Only the Secrets the Ingress names, from its own namespace.
    let secrets: Vec<Secret> = secret_names
        .iter()
        .filter_map(|name| source.secret(&ns, name))
        .collect();
    let slices: Vec<EndpointSlice> = service_names
        .iter()
        .flat_map(|name| source.slices_of(&ns, name))
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
            slices: &slices,
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
    fn default_class_prefers_flag_then_unique_default() {
        let classes = [class("a", false), class("b", true)];
        assert_eq!(default_class(Some("x"), &classes).as_deref(), Some("x"));
        assert_eq!(default_class(None, &classes).as_deref(), Some("b"));
        let two = [class("a", true), class("b", true)];
        assert_eq!(default_class(None, &two), None, "ambiguous defaults");
        assert_eq!(default_class(None, &[class("a", false)]), None);
    }
}
