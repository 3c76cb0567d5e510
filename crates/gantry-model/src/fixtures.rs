//! Test fixtures: fluent builders for the Kubernetes objects translation and
//! selection read, and the typical desired state providers receive.
//! Compiled for this crate's tests and, with the `fixtures` feature, for
//! dependent crates' tests.
//!
//! Builders fill in what an API server would (namespace `default`, a UID
//! derived from the name) so translated owners are complete.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{
            Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, Secret, Service, ServicePort,
            ServiceSpec,
        },
        networking::v1::{
            HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass,
            IngressClassParametersReference, IngressClassSpec, IngressRule, IngressServiceBackend,
            IngressSpec, IngressTLS, ServiceBackendPort,
        },
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};

use crate::{
    GROUP, INGRESS_CONTROLLER_NAME,
    annotations::{DEFAULT_INGRESS_CLASS, LEGACY_INGRESS_CLASS},
    class::{LoadBalancerClass, LoadBalancerClassSpec, ProviderKind},
    desired::{BackendNode, HealthCheck, L4Listener, L4Options, L4Spec},
    select::{EXCLUDE_FROM_LB_LABEL, ZONE_LABEL},
};

/// A certificate-shaped PEM block (not a real certificate: translation only
/// checks the shape, and tests must not depend on crypto).
pub const TEST_CERT_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBfixturecertificatebody\n-----END CERTIFICATE-----\n";
/// A private-key-shaped PEM block.
pub const TEST_KEY_PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIBfixturekeybody\n-----END PRIVATE KEY-----\n";

/// Metadata in namespace `default` with UID `uid-<name>`.
pub fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectMeta::default()
    }
}

fn set(map: &mut Option<BTreeMap<String, String>>, key: &str, value: &str) {
    map.get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

// === Node ===

/// Builds a [`Node`]: Ready, no addresses until one is added.
#[derive(Clone, Debug)]
pub struct NodeBuilder(Node);

/// A Ready Node named `name` with InternalIP `ip`.
pub fn node(name: &str, ip: &str) -> NodeBuilder {
    NodeBuilder(Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..NodeCondition::default()
            }]),
            addresses: Some(vec![NodeAddress {
                type_: "InternalIP".into(),
                address: ip.into(),
            }]),
            ..NodeStatus::default()
        }),
    })
}

impl NodeBuilder {
    /// Set the Ready condition's status (`"True"`, `"False"`, `"Unknown"`).
    pub fn ready(mut self, status: &str) -> Self {
        let conds = self.status_mut().conditions.get_or_insert_with(Vec::new);
        conds.retain(|c| c.type_ != "Ready");
        conds.push(NodeCondition {
            type_: "Ready".into(),
            status: status.into(),
            ..NodeCondition::default()
        });
        self
    }

    /// Ready condition `False`.
    pub fn not_ready(self) -> Self {
        self.ready("False")
    }

    /// Replace the addresses with `(type, address)` pairs.
    pub fn addresses(mut self, addrs: &[(&str, &str)]) -> Self {
        self.status_mut().addresses = Some(
            addrs
                .iter()
                .map(|(t, a)| NodeAddress {
                    type_: (*t).into(),
                    address: (*a).into(),
                })
                .collect(),
        );
        self
    }

    /// Add a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        set(&mut self.0.metadata.labels, key, value);
        self
    }

    /// Label the Node out of load balancers.
    pub fn excluded(self) -> Self {
        self.label(EXCLUDE_FROM_LB_LABEL, "")
    }

    /// Set the zone label.
    pub fn zone(self, zone: &str) -> Self {
        self.label(ZONE_LABEL, zone)
    }

    /// Set `spec.providerID`.
    pub fn provider_id(mut self, id: &str) -> Self {
        self.0
            .spec
            .get_or_insert_with(NodeSpec::default)
            .provider_id = Some(id.into());
        self
    }

    /// Set `spec.unschedulable` (cordon).
    pub fn cordoned(mut self) -> Self {
        self.0
            .spec
            .get_or_insert_with(NodeSpec::default)
            .unschedulable = Some(true);
        self
    }

    /// Set a `deletionTimestamp`.
    pub fn deleting(mut self) -> Self {
        self.0.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        self
    }

    /// Apply any other change.
    pub fn with(mut self, f: impl FnOnce(&mut Node)) -> Self {
        f(&mut self.0);
        self
    }

    /// The Node.
    pub fn build(self) -> Node {
        self.0
    }

    fn status_mut(&mut self) -> &mut NodeStatus {
        self.0.status.get_or_insert_with(NodeStatus::default)
    }
}

// === Service ===

/// Builds a [`Service`] in `default`.
#[derive(Clone, Debug)]
pub struct ServiceBuilder(Service);

/// A Service of type LoadBalancer with no ports yet.
pub fn service(name: &str) -> ServiceBuilder {
    ServiceBuilder(Service {
        metadata: meta(name),
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

impl ServiceBuilder {
    fn spec(&mut self) -> &mut ServiceSpec {
        self.0.spec.get_or_insert_with(ServiceSpec::default)
    }

    /// Set `spec.type`.
    pub fn type_(mut self, t: &str) -> Self {
        self.spec().type_ = Some(t.into());
        self
    }

    /// Add a port; an empty name or protocol and a zero `node_port` are left unset.
    pub fn port(mut self, name: &str, protocol: &str, port: i32, node_port: i32) -> Self {
        self.spec()
            .ports
            .get_or_insert_with(Vec::new)
            .push(ServicePort {
                name: (!name.is_empty()).then(|| name.into()),
                protocol: (!protocol.is_empty()).then(|| protocol.into()),
                port,
                node_port: (node_port != 0).then_some(node_port),
                ..ServicePort::default()
            });
        self
    }

    /// Add a TCP port with a node port.
    pub fn tcp(self, port: i32, node_port: i32) -> Self {
        self.port("", "TCP", port, node_port)
    }

    /// `externalTrafficPolicy: Local` with this `healthCheckNodePort` (0 = unset).
    pub fn local(mut self, health_check_node_port: i32) -> Self {
        let spec = self.spec();
        spec.external_traffic_policy = Some("Local".into());
        spec.health_check_node_port =
            (health_check_node_port != 0).then_some(health_check_node_port);
        self
    }

    /// Set `spec.loadBalancerClass`.
    pub fn class(mut self, class: &str) -> Self {
        self.spec().load_balancer_class = Some(class.into());
        self
    }

    /// Set `spec.loadBalancerIP`.
    pub fn load_balancer_ip(mut self, ip: &str) -> Self {
        self.spec().load_balancer_ip = Some(ip.into());
        self
    }

    /// Set `spec.loadBalancerSourceRanges`.
    pub fn source_ranges(mut self, ranges: &[&str]) -> Self {
        self.spec().load_balancer_source_ranges =
            Some(ranges.iter().map(|r| (*r).to_string()).collect());
        self
    }

    /// Add an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        set(&mut self.0.metadata.annotations, key, value);
        self
    }

    /// Change the namespace.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0.metadata.namespace = Some(ns.into());
        self
    }

    /// Apply any other change.
    pub fn with(mut self, f: impl FnOnce(&mut Service)) -> Self {
        f(&mut self.0);
        self
    }

    /// The Service.
    pub fn build(self) -> Service {
        self.0
    }
}

// === Ingress ===

/// Builds an [`Ingress`] in `default`.
#[derive(Clone, Debug)]
pub struct IngressBuilder(Ingress);

/// An Ingress with an empty spec.
pub fn ingress(name: &str) -> IngressBuilder {
    IngressBuilder(Ingress {
        metadata: meta(name),
        spec: Some(IngressSpec::default()),
        status: None,
    })
}

/// A Service backend on a port number.
pub fn backend(service: &str, port: i32) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: service.into(),
            port: Some(ServiceBackendPort {
                number: Some(port),
                name: None,
            }),
        }),
        resource: None,
    }
}

/// A Service backend on a named port.
pub fn named_backend(service: &str, port: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: service.into(),
            port: Some(ServiceBackendPort {
                number: None,
                name: Some(port.into()),
            }),
        }),
        resource: None,
    }
}

impl IngressBuilder {
    fn spec(&mut self) -> &mut IngressSpec {
        self.0.spec.get_or_insert_with(IngressSpec::default)
    }

    /// Add a rule for `host` (`None` = any) with `(path, pathType, backend)`
    /// paths; an empty pathType leaves it unset.
    pub fn rule(mut self, host: Option<&str>, paths: Vec<(&str, &str, IngressBackend)>) -> Self {
        let paths = paths
            .into_iter()
            .map(|(path, path_type, backend)| HTTPIngressPath {
                path: (!path.is_empty()).then(|| path.into()),
                path_type: path_type.into(),
                backend,
            })
            .collect();
        self.spec()
            .rules
            .get_or_insert_with(Vec::new)
            .push(IngressRule {
                host: host.map(Into::into),
                http: Some(HTTPIngressRuleValue { paths }),
            });
        self
    }

    /// Set `spec.defaultBackend`.
    pub fn default_backend(mut self, backend: IngressBackend) -> Self {
        self.spec().default_backend = Some(backend);
        self
    }

    /// Add a TLS entry.
    pub fn tls(mut self, secret: Option<&str>, hosts: &[&str]) -> Self {
        self.spec()
            .tls
            .get_or_insert_with(Vec::new)
            .push(IngressTLS {
                secret_name: secret.map(Into::into),
                hosts: (!hosts.is_empty())
                    .then(|| hosts.iter().map(|h| (*h).to_string()).collect()),
            });
        self
    }

    /// Set `spec.ingressClassName`.
    pub fn class_name(mut self, name: &str) -> Self {
        self.spec().ingress_class_name = Some(name.into());
        self
    }

    /// Set the legacy `kubernetes.io/ingress.class` annotation.
    pub fn legacy_class(self, value: &str) -> Self {
        self.annotation(LEGACY_INGRESS_CLASS, value)
    }

    /// Add an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        set(&mut self.0.metadata.annotations, key, value);
        self
    }

    /// Apply any other change.
    pub fn with(mut self, f: impl FnOnce(&mut Ingress)) -> Self {
        f(&mut self.0);
        self
    }

    /// The Ingress.
    pub fn build(self) -> Ingress {
        self.0
    }
}

// === Secret ===

/// A `kubernetes.io/tls` Secret in `default` holding [`TEST_CERT_PEM`] and [`TEST_KEY_PEM`].
pub fn tls_secret(name: &str) -> Secret {
    secret(name, "kubernetes.io/tls", TEST_CERT_PEM, TEST_KEY_PEM)
}

/// A Secret of any type with `tls.crt` and `tls.key` set to the given text.
pub fn secret(name: &str, type_: &str, crt: &str, key: &str) -> Secret {
    let data = BTreeMap::from([
        ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
        ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
    ]);
    Secret {
        metadata: meta(name),
        type_: Some(type_.into()),
        data: Some(data),
        ..Secret::default()
    }
}

// === Classes ===

/// A Gantry IngressClass whose parameters point at `LoadBalancerClass` `lb_class`
/// (`None`: no parameters).
pub fn ingress_class(name: &str, lb_class: Option<&str>) -> IngressClass {
    IngressClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(IngressClassSpec {
            controller: Some(INGRESS_CONTROLLER_NAME.into()),
            parameters: lb_class.map(|c| IngressClassParametersReference {
                api_group: Some(GROUP.into()),
                kind: "LoadBalancerClass".into(),
                name: c.into(),
                namespace: None,
                scope: Some("Cluster".into()),
            }),
        }),
    }
}

/// Another controller's IngressClass.
pub fn foreign_ingress_class(name: &str, controller: &str) -> IngressClass {
    let mut ic = ingress_class(name, None);
    if let Some(spec) = ic.spec.as_mut() {
        spec.controller = Some(controller.into());
    }
    ic
}

/// Mark an IngressClass as the cluster default.
pub fn default_ingress_class(mut ic: IngressClass) -> IngressClass {
    set(&mut ic.metadata.annotations, DEFAULT_INGRESS_CLASS, "true");
    ic
}

/// A `LoadBalancerClass` for `provider` with `aliases`.
pub fn lb_class(name: &str, provider: ProviderKind, aliases: &[&str]) -> LoadBalancerClass {
    LoadBalancerClass::new(
        name,
        LoadBalancerClassSpec {
            provider,
            default: false,
            aliases: aliases.iter().map(|a| (*a).to_string()).collect(),
            aws: None,
            gcp: None,
            local: None,
        },
    )
}

/// The same class marked `default: true`.
pub fn default_lb_class(mut class: LoadBalancerClass) -> LoadBalancerClass {
    class.spec.default = true;
    class
}

// === Desired state ===

/// The L4 spec of a Service with `listeners` on `backends` and nothing else
/// set: `externalTrafficPolicy: Cluster` (a TCP check on each node port), no
/// source ranges, no requested address, no annotations.
///
/// Both lists are kept in the order given rather than sorted as translation
/// would, so a test can hand a provider input in any order.
pub fn l4_spec(
    listeners: impl IntoIterator<Item = L4Listener>,
    backends: impl IntoIterator<Item = BackendNode>,
) -> L4Spec {
    L4Spec {
        listeners: listeners.into_iter().collect(),
        backends: backends.into_iter().collect(),
        health_check: HealthCheck::NodePortTcp,
        source_ranges: Vec::new(),
        requested_ip: None,
        options: L4Options::default(),
    }
}
