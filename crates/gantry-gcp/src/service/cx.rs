//! The context one Service reconcile runs in: the API door, the owner and
//! class every resource is described with, and whether this is a dry run
//! (then writes are only recorded as changes, for `plan`).

use std::future::Future;

use gantry_model::{
    Owner, ProviderError,
    provider::{Action, Change},
};
use google_cloud_compute_v1::model::Operation;
use parking_lot::Mutex;

use crate::{api::Api, error::CallError, labels};

/// One reconcile's context.
pub struct Cx<'a> {
    /// The call door.
    pub api: &'a Api,
    /// Whose balancer this is.
    pub owner: &'a Owner,
    /// The class served.
    pub class: &'a str,
    /// The cluster.
    pub cluster_id: &'a str,
    /// Record writes instead of making them.
    pub dry: bool,
    changes: Mutex<Vec<Change>>,
}

impl<'a> Cx<'a> {
    /// A context; `dry` for `plan`.
    pub fn new(
        api: &'a Api,
        owner: &'a Owner,
        class: &'a str,
        cluster_id: &'a str,
        dry: bool,
    ) -> Self {
        Self {
            api,
            owner,
            class,
            cluster_id,
            dry,
            changes: Mutex::new(Vec::new()),
        }
    }

    /// The changes made (or, dry, that would be made), in order.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes.into_inner()
    }

    /// The project.
    pub fn project(&self) -> String {
        self.api.project.clone()
    }

    /// The region.
    pub fn region(&self) -> String {
        self.api.region.clone()
    }

    /// The description of this owner's resource of `role`.
    pub fn description(&self, role: &str) -> String {
        labels::description(self.owner, self.class, role)
    }

    /// Whether `description` proves the resource is this owner's.
    pub fn owns(&self, description: Option<&str>) -> bool {
        labels::owned(self.owner, self.class, description)
    }

    /// The refusal for a resource with our name that is not ours.
    pub fn not_owned(&self, resource: &'static str, name: &str) -> ProviderError {
        ProviderError::NotOwned {
            resource,
            name: name.to_string(),
            owner: self.owner.clone(),
        }
    }

    /// Record a change and, unless dry, make it: `make` builds the request
    /// (called again on each retry), and the Operation is awaited.
    pub async fn write<F, Fut>(
        &self,
        operation: &'static str,
        change: Change,
        make: F,
    ) -> Result<(), CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
    {
        tracing::debug!(%change, "Compute Engine change");
        self.changes.lock().push(change);
        if self.dry {
            return Ok(());
        }
        self.api.mutate(operation, make).await
    }
}

/// A [`Change`].
pub fn change(action: Action, resource: &str, name: &str, detail: impl Into<String>) -> Change {
    Change {
        action,
        resource: resource.to_string(),
        name: name.to_string(),
        detail: detail.into(),
    }
}

/// Whether two links name the same resource, however much of the URL each
/// carries (`https://.../compute/v1/projects/...` or `projects/...`).
pub fn same_link(a: &str, b: &str) -> bool {
    relative(a) == relative(b)
}

/// A link from `projects/` on.
pub fn relative(link: &str) -> &str {
    link.find("projects/").map_or(link, |i| &link[i..])
}
