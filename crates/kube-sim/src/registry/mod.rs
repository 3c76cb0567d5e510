//! The registry of served resource types: the built-in kinds and the ones
//! CustomResourceDefinitions add. Every handler resolves a URL to a
//! [`ResourceType`] here before touching the store.

use std::sync::Arc;

use serde_json::Value;

mod builtins;

use builtins::{BUILTINS, builtin_categories, builtin_field_selectors, singular_of};

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
