//! The API verbs over the store: reads, writes, deletes and the per-kind
//! admission logic the real server applies. HTTP concerns (routing, bodies,
//! content negotiation) stay in `router`.

pub mod admit;
pub mod delete;
pub mod read;
pub mod write;

use std::{collections::HashMap, sync::Arc};

use crate::{
    error::{ApiError, Gr},
    patch::fields::Scope,
    registry::ResourceType,
};

/// Query parameters of a request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    map: HashMap<String, String>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let map = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Query { map }
    }

    /// One parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A boolean parameter (`true` or `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// Whether `dryRun=All` was requested.
    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

/// Everything a verb needs to know about its target.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The resource type.
    pub rt: Arc<ResourceType>,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Object name from the URL.
    pub name: Option<String>,
    /// Subresource from the URL (`status`).
    pub subresource: Option<String>,
    /// Query parameters.
    pub query: Query,
    /// The client's User-Agent, for default field manager names.
    pub user_agent: String,
}

impl Ctx {
    /// Group/resource naming for errors.
    pub fn gr(&self) -> Gr<'_> {
        Gr {
            group: &self.rt.group,
            resource: &self.rt.plural,
        }
    }

    /// The namespace key in the store ("" for cluster-scoped).
    pub fn ns_key(&self) -> &str {
        if self.rt.namespaced {
            self.namespace.as_deref().unwrap_or("")
        } else {
            ""
        }
    }

    /// Whether this request targets the status subresource.
    pub fn is_status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }

    /// The parts of the object this request may write.
    pub fn scope(&self) -> Scope {
        if self.is_status() {
            Scope::StatusOnly
        } else if self.rt.has_status {
            Scope::NoStatus
        } else {
            Scope::All
        }
    }

    /// The field manager: `fieldManager` or the User-Agent's program name.
    pub fn manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_string();
        }
        let ua = self.user_agent.split('/').next().unwrap_or("").trim();
        if ua.is_empty() {
            "unknown".into()
        } else {
            ua.to_string()
        }
    }

    /// The required object name.
    pub fn name(&self) -> Result<&str, ApiError> {
        self.name.as_deref().ok_or_else(ApiError::no_route)
    }
}
