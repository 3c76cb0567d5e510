//! The context one Ingress reconcile runs in: the API door, the owner and
//! class every resource is described with, and whether this is a dry run
//! (then writes are only recorded as [`Change`]s, for `plan`).

use std::{collections::HashMap, future::Future, time::Duration};

use gantry_model::{
    Owner, ProviderError,
    provider::{Action, Change},
};
use google_cloud_compute_v1::model::Operation;
use parking_lot::Mutex;

use crate::{api::Api, error::CallError, labels};

/// Attempts at a mutation refused with `400 resourceNotReady` (a resource
/// it links to is still being changed by another Operation).
const NOT_READY_ATTEMPTS: u32 = 6;
/// Pause before the next such attempt, times the attempt number.
const NOT_READY_PAUSE: Duration = Duration::from_millis(100);

/// One reconcile's context.
pub struct Cx<'a> {
    /// The call door.
    pub api: &'a Api,
    /// Whose balancer this is.
    pub owner: &'a Owner,
    /// The class served.
    pub class: &'a str,
    /// The cluster (shared instance groups are described with it).
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
    pub fn project(&self) -> &str {
        &self.api.project
    }

    /// The description of this owner's resource of `role`.
    pub fn description(&self, role: &str) -> String {
        labels::description(self.owner, self.class, role)
    }

    /// The labels of this owner's labelled resources.
    pub fn labels(&self) -> HashMap<String, String> {
        labels::labels(self.owner, self.class)
    }

    /// Whether `description` proves the resource is this owner's.
    pub fn owns(&self, description: Option<&str>) -> bool {
        labels::owned(self.owner, self.class, description)
    }

    /// `Ok` when a resource found under our name is ours; a permanent
    /// error naming it otherwise (never adopted, changed or deleted).
    pub fn check_owned(
        &self,
        resource: &'static str,
        name: &str,
        description: Option<&str>,
    ) -> Result<(), ProviderError> {
        if self.owns(description) {
            Ok(())
        } else {
            Err(ProviderError::NotOwned {
                resource,
                name: name.to_string(),
                owner: self.owner.clone(),
            })
        }
    }

    /// A read that may find nothing: `404` is `None`.
    pub async fn get<T, F, Fut>(
        &self,
        operation: &'static str,
        make: F,
    ) -> Result<Option<T>, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<T>>,
    {
        match self.api.call(operation, make).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn record(&self, action: Action, resource: &str, name: &str, detail: impl Into<String>) {
        self.changes.lock().push(Change {
            action,
            resource: resource.to_string(),
            name: name.to_string(),
            detail: detail.into(),
        });
    }

    /// [`Api::mutate`], waiting out `resourceNotReady`: Compute Engine
    /// refuses to link to or change a resource while an Operation on it is
    /// still finishing, which passes on its own.
    pub async fn mutate<F, Fut>(
        &self,
        operation: &'static str,
        mut make: F,
    ) -> Result<(), CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.api.mutate(operation, &mut make).await {
                Err(e)
                    if e.reason() == Some("resourceNotReady") && attempt < NOT_READY_ATTEMPTS =>
                {
                    tokio::time::sleep(NOT_READY_PAUSE * attempt).await;
                }
                other => return other,
            }
        }
    }

    /// Records a create made outside [`Cx::create`].
    pub fn record_create(&self, resource: &str, name: &str, detail: impl Into<String>) {
        self.record(Action::Create, resource, name, detail);
    }

    /// Like [`Cx::write`], keeping the call's error whole (to tell a stale
    /// fingerprint from other failures).
    pub async fn try_write<F, Fut>(
        &self,
        action: Action,
        (resource, name): (&str, &str),
        detail: impl Into<String>,
        operation: &'static str,
        make: F,
    ) -> Result<(), CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
    {
        self.record(action, resource, name, detail);
        if self.dry {
            return Ok(());
        }
        match self.mutate(operation, make).await {
            Err(e) if action == Action::Delete && e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// A change to an existing resource (or a delete): recorded, and made
    /// unless dry. A delete of something already gone is success.
    pub async fn write<F, Fut>(
        &self,
        action: Action,
        what: (&str, &str),
        detail: impl Into<String>,
        operation: &'static str,
        make: F,
    ) -> Result<(), ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
    {
        Ok(self
            .try_write(action, what, detail, operation, make)
            .await?)
    }

    /// A create: recorded, and made unless dry. `409 alreadyExists` (a
    /// replay after a lost answer, or a concurrent create) is success only
    /// when `description` reads back a description of ours.
    pub async fn create<F, Fut, D, DFut>(
        &self,
        (resource, name): (&'static str, &str),
        detail: impl Into<String>,
        operation: &'static str,
        make: F,
        description: D,
    ) -> Result<(), ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
        D: FnOnce() -> DFut,
        DFut: Future<Output = Result<Option<String>, CallError>>,
    {
        self.record(Action::Create, resource, name, detail);
        if self.dry {
            return Ok(());
        }
        match self.mutate(operation, make).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_already_exists() => {
                let found = description().await?;
                self.check_owned(resource, name, found.as_deref())
            }
            Err(e) => Err(e.into()),
        }
    }
}
