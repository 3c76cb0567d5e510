//! The registry of served resource types: the built-in kinds and the ones
//! CustomResourceDefinitions add. Every handler resolves a URL to a
//! [`ResourceType`] here before touching the store.

use std::sync::Arc;

use serde_json::Value;

/// Verbs of a normal read-write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One servable resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group; empty for core.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Object kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether a `/status` subresource exists (and the main resource ignores `.status`).
    pub has_status: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Extra field-selector paths beyond `metadata.name` and `metadata.namespace`.
    pub field_selectors: Vec<String>,
    /// Whether strategic merge patch is supported (built-ins only).
    pub strategic: bool,
    /// For custom resources: the CRD-derived details.
    pub custom: Option<Arc<CustomInfo>>,
}

/// What a CustomResourceDefinition contributes to serving its resources.
#[derive(Debug, Clone, Default)]
pub struct CustomInfo {
    /// The CRD's name (`plural.group`).
    pub crd_name: String,
    /// The structural OpenAPI v3 schema for this version, if any.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns` for this version.
    pub printer_columns: Vec<Value>,
}

impl ResourceType {
    /// `apiVersion` string of this type (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key shared by all versions of a resource. `events.k8s.io`
    /// Events share core Events' storage: both APIs view one object.
    pub fn storage_key(&self) -> String {
        if crate::events::is_events_v1(self) {
            return "/events".into();
        }
        format!("{}/{}", self.group, self.plural)
    }

    /// The `apiVersion` objects of this type carry in storage.
    pub fn storage_api_version(&self) -> String {
        if crate::events::is_events_v1(self) {
            return "v1".into();
        }
        self.api_version()
    }

    /// Whether objects of this type carry a spec whose changes bump `metadata.generation`.
    pub fn tracks_generation(&self) -> bool {
        !matches!(
            (self.group.as_str(), self.plural.as_str()),
            ("", "configmaps")
                | ("", "secrets")
                | ("", "events")
                | ("", "endpoints")
                | ("", "serviceaccounts")
                | ("events.k8s.io", "events")
                | ("discovery.k8s.io", "endpointslices")
                | ("rbac.authorization.k8s.io", _)
        )
    }

    /// The list URL path of this type (namespace optional).
    pub fn list_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

/// `(group, version, plural, kind, namespaced, status subresource, short names, has a pod template)`.
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    &'static [&'static str],
    bool,
);

const BUILTINS: &[Builtin] = &[
    (
        "",
        "v1",
        "namespaces",
        "Namespace",
        false,
        true,
        &["ns"],
        false,
    ),
    ("", "v1", "services", "Service", true, true, &["svc"], true),
    (
        "",
        "v1",
        "endpoints",
        "Endpoints",
        true,
        false,
        &["ep"],
        false,
    ),
    ("", "v1", "nodes", "Node", false, true, &["no"], false),
    ("", "v1", "secrets", "Secret", true, false, &[], false),
    (
        "",
        "v1",
        "configmaps",
        "ConfigMap",
        true,
        false,
        &["cm"],
        false,
    ),
    ("", "v1", "events", "Event", true, false, &["ev"], false),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        &["sa"],
        false,
    ),
    ("", "v1", "pods", "Pod", true, true, &["po"], true),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
        &["pvc"],
        false,
    ),
    (
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
        true,
        &["rc"],
        true,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        false,
        &[],
        false,
    ),
    (
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        false,
        &["ev"],
        false,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        &[],
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        true,
        &["ing"],
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        false,
        &[],
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        false,
        &["netpol"],
        false,
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
        false,
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        true,
        &["deploy"],
        true,
    ),
    (
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        true,
        true,
        &["ds"],
        true,
    ),
    (
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        true,
        &["rs"],
        true,
    ),
    (
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        true,
        &["sts"],
        true,
    ),
    (
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
        false,
        &[],
        false,
    ),
    (
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
        &["pdb"],
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
        &[],
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
        &[],
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
        &[],
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        &[],
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        false,
        &[],
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        false,
        &[],
        false,
    ),
    ("batch", "v1", "jobs", "Job", true, true, &[], true),
    (
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        true,
        true,
        &["cj"],
        true,
    ),
    (
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        true,
        &["hpa"],
        true,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
        false,
        &["pc"],
        false,
    ),
    (
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        false,
        &["sc"],
        false,
    ),
];

/// Extra selectable fields the real server offers per built-in resource.
fn builtin_field_selectors(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
        ],
        ("", "secrets") => &["type"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "namespaces") => &["status.phase"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

fn builtin_categories(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "services" | "pods" | "replicationcontrollers")
        | ("apps", "deployments" | "daemonsets" | "replicasets" | "statefulsets")
        | ("batch", "jobs" | "cronjobs")
        | ("autoscaling", "horizontalpodautoscalers") => &["all"],
        _ => &[],
    }
}

fn singular_of(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

/// The set of served resource types.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = BUILTINS
            .iter()
            .map(
                |&(group, version, plural, kind, namespaced, has_status, short, _workload)| {
                    Arc::new(ResourceType {
                        group: group.into(),
                        version: version.into(),
                        plural: plural.into(),
                        singular: singular_of(kind),
                        kind: kind.into(),
                        namespaced,
                        has_status,
                        short_names: short.iter().map(|s| s.to_string()).collect(),
                        categories: builtin_categories(group, plural)
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                        field_selectors: builtin_field_selectors(group, plural)
                            .iter()
                            .map(|s| s.to_string())
                            .collect(),
                        // Every built-in kind accepts strategic merge patch; custom resources do not.
                        strategic: true,
                        custom: None,
                    })
                },
            )
            .collect();
        Registry { types }
    }
}

impl Registry {
    /// Finds a type by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Finds a type by group and kind (any version).
    pub fn find_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind)
            .cloned()
    }

    /// All served types.
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Groups and their versions in a stable order (core excluded), preferred version first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// Types served under one group version.
    pub fn in_group_version(&self, group: &str, version: &str) -> Vec<Arc<ResourceType>> {
        self.types
            .iter()
            .filter(|t| t.group == group && t.version == version)
            .cloned()
            .collect()
    }

    /// Replaces the types a CRD contributes (all versions of `group`/`plural`).
    pub fn set_custom(&mut self, group: &str, plural: &str, types: Vec<ResourceType>) {
        self.remove_custom(group, plural);
        self.types.extend(types.into_iter().map(Arc::new));
    }

    /// Removes the types a CRD contributed.
    pub fn remove_custom(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.custom.is_some() && t.group == group && t.plural == plural));
    }
}
