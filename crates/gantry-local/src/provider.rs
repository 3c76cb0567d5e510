//! The [`LoadBalancer`] implementation: read the published object, choose
//! its address, and write it only when something differs.

use std::collections::BTreeMap;

use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, OwnerKind, Plan, ProviderError,
    class::{LocalMode, ProviderKind},
    local::{LocalLoadBalancer, LocalLoadBalancerSpec},
    provider::{Action, Change, DeleteOutcome},
};
use kube::api::{DeleteParams, ListParams, PostParams};
use tokio::sync::{Mutex, MutexGuard};

use crate::{
    LocalProvider,
    build::{self, observed},
    diff::{describe_create, describe_update},
    error::{call, op},
    index::{Index, Request, allocate, current_address, needs_new_address},
    labels::{ANNOTATION_SHARED_IP_KEY, is_owned_by, owner_labels, selector},
};

/// Serialises the choice of a NEW address with its write across every
/// provider in the process: two classes may list overlapping pools, and
/// each class has its own provider and index. Keeping an address needs no
/// such lock, so steady-state ensures never wait on it.
static ALLOCATION: Mutex<()> = Mutex::const_new(());

/// Kind name in `NotOwned` errors.
const RESOURCE: &str = "LocalLoadBalancer";
/// Resource type in plans.
const PLAN_RESOURCE: &str = "llb";
/// Name role passed to [`Owner::resource_name`].
const ROLE: &str = "llb";
/// Longest Kubernetes object name this provider writes.
const MAX_NAME: usize = 63;

/// Everything an ensure would write, computed without writing.
struct Prepared {
    name: String,
    existing: Option<LocalLoadBalancer>,
    spec: LocalLoadBalancerSpec,
    labels: BTreeMap<String, String>,
    shared_key: Option<String>,
    /// Held until the write that uses a newly chosen address has landed.
    _allocation: Option<MutexGuard<'static, ()>>,
}

impl Prepared {
    /// Whether the existing object lacks one of our labels or has a stale
    /// shared-IP key annotation.
    fn metadata_differs(&self, obj: &LocalLoadBalancer) -> bool {
        let labels = obj.metadata.labels.clone().unwrap_or_default();
        let annotation = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_SHARED_IP_KEY));
        self.labels.iter().any(|(k, v)| labels.get(k) != Some(v))
            || annotation != self.shared_key.as_ref()
    }

    /// `obj` with our spec and metadata applied, keeping everything else
    /// (other labels, resourceVersion for optimistic concurrency).
    fn apply_to(&self, mut obj: LocalLoadBalancer) -> LocalLoadBalancer {
        obj.spec = self.spec.clone();
        obj.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .extend(self.labels.clone());
        let annotations = obj.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match &self.shared_key {
            Some(key) => {
                annotations.insert(ANNOTATION_SHARED_IP_KEY.to_string(), key.clone());
            }
            None => {
                annotations.remove(ANNOTATION_SHARED_IP_KEY);
            }
        }
        obj
    }

    fn new_object(&self) -> LocalLoadBalancer {
        let mut obj = LocalLoadBalancer::new(&self.name, self.spec.clone());
        obj.metadata.annotations = Some(BTreeMap::new());
        self.apply_to(obj)
    }
}

// === impl LocalProvider ===

impl LocalProvider {
    fn object_name(&self, owner: &Owner) -> String {
        owner.resource_name(&self.class, ROLE, MAX_NAME)
    }

    async fn get(&self, name: &str) -> Result<Option<LocalLoadBalancer>, ProviderError> {
        call(op::GET, self.timeout, self.api.get_opt(name)).await
    }

    async fn list(&self, lp: &ListParams) -> Result<Vec<LocalLoadBalancer>, ProviderError> {
        Ok(call(op::LIST, self.timeout, self.api.list(lp)).await?.items)
    }

    /// Rebuild the index from every published object.
    async fn rebuild(&self) -> Result<Index, ProviderError> {
        let objects = self.list(&ListParams::default()).await?;
        tracing::debug!(class = %self.class, objects = objects.len(), "Rebuilt address index");
        Ok(Index::from_objects(&objects))
    }

    /// Compute the object `desired` maps to, allocating (in memory only) an
    /// address in `l2` mode. With `for_write`, a new address's lock is kept
    /// in the result so the caller writes before anyone else chooses.
    async fn prepare(
        &self,
        desired: &DesiredLoadBalancer,
        index: &mut Option<Index>,
        for_write: bool,
    ) -> Result<Prepared, ProviderError> {
        let draft = build::draft(desired, &self.class, self.mode)?;
        let name = self.object_name(&desired.owner);
        let existing = self.get(&name).await?;
        if let Some(obj) = &existing
            && !is_owned_by(obj, &desired.owner, &self.class)
        {
            return Err(ProviderError::NotOwned {
                resource: RESOURCE,
                name,
                owner: desired.owner.clone(),
            });
        }
        let mut spec = draft.spec;
        let mut allocation = None;
        if self.mode == LocalMode::L2 {
            let owner_key = desired.owner.object_key();
            let req = Request {
                object: &name,
                owner: &owner_key,
                class: &self.class,
                current: existing.as_ref().and_then(|o| current_address(&o.spec)),
                requested: draft.requested,
                shared_key: draft.shared_key.as_deref(),
                ports: &draft.ports,
            };
            if needs_new_address(&req) {
                if for_write {
                    allocation = Some(ALLOCATION.lock().await);
                }
                // A private index may be stale (other classes' providers may
                // have taken addresses since it was built), so a new address
                // is chosen from a fresh list; a shared book is current.
                if !self.shared || index.is_none() {
                    *index = Some(self.rebuild().await?);
                }
            } else if index.is_none() {
                *index = Some(self.rebuild().await?);
            }
            let current = index.get_or_insert_with(Index::default);
            spec.addresses = vec![allocate(&self.pools, current, &req)?];
        }
        Ok(Prepared {
            name,
            existing,
            spec,
            labels: owner_labels(&desired.owner, &self.class),
            shared_key: draft.shared_key,
            _allocation: allocation,
        })
    }

    async fn write(
        &self,
        prepared: &Prepared,
        index: &mut Option<Index>,
    ) -> Result<ObservedStatus, ProviderError> {
        let pp = PostParams::default();
        let (written, detail, verb) = match &prepared.existing {
            None => {
                let obj = prepared.new_object();
                let written = call(op::CREATE, self.timeout, self.api.create(&pp, &obj)).await;
                (written, describe_create(&prepared.spec), "Created")
            }
            Some(obj) => {
                let detail =
                    describe_update(&obj.spec, &prepared.spec, prepared.metadata_differs(obj));
                let next = prepared.apply_to(obj.clone());
                let written = call(
                    op::REPLACE,
                    self.timeout,
                    self.api.replace(&prepared.name, &pp, &next),
                )
                .await;
                (written, detail, "Updated")
            }
        };
        match written {
            Ok(obj) => {
                tracing::info!(name = %prepared.name, %detail, "{verb} LocalLoadBalancer");
                if let Some(index) = index.as_mut() {
                    index.insert(&obj);
                }
                Ok(observed(&obj))
            }
            Err(error) => {
                // The write may or may not have landed (conflict, timeout):
                // only a fresh list tells which addresses are taken now.
                *index = None;
                Err(error)
            }
        }
    }
}

#[async_trait::async_trait]
impl LoadBalancer for LocalProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    #[tracing::instrument(skip_all, fields(class = %self.class, owner = %desired.owner))]
    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        let mut index = self.index.lock().await;
        let prepared = self.prepare(desired, &mut index, false).await?;
        let change = match &prepared.existing {
            None => Some(Change {
                action: Action::Create,
                resource: PLAN_RESOURCE.to_string(),
                name: prepared.name.clone(),
                detail: describe_create(&prepared.spec),
            }),
            Some(obj) => {
                let detail =
                    describe_update(&obj.spec, &prepared.spec, prepared.metadata_differs(obj));
                (!detail.is_empty()).then(|| Change {
                    action: Action::Update,
                    resource: PLAN_RESOURCE.to_string(),
                    name: prepared.name.clone(),
                    detail,
                })
            }
        };
        Ok(Plan {
            changes: change.into_iter().collect(),
        })
    }

    #[tracing::instrument(skip_all, fields(class = %self.class, owner = %desired.owner))]
    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        let mut index = self.index.lock().await;
        let prepared = self.prepare(desired, &mut index, true).await?;
        if let Some(obj) = &prepared.existing
            && obj.spec == prepared.spec
            && !prepared.metadata_differs(obj)
        {
            return Ok(observed(obj));
        }
        self.write(&prepared, &mut index).await
    }

    #[tracing::instrument(skip_all, fields(class = %self.class, %owner))]
    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError> {
        let mut index = self.index.lock().await;
        let lp = ListParams::default().labels(&selector(
            &owner.cluster_id,
            &self.class,
            Some(&owner.uid),
        ));
        let mine: Vec<LocalLoadBalancer> = self
            .list(&lp)
            .await?
            .into_iter()
            .filter(|obj| is_owned_by(obj, owner, &self.class))
            .collect();
        if mine.is_empty() {
            return Ok(DeleteOutcome::NotFound);
        }
        for obj in mine {
            let Some(name) = obj.metadata.name.clone() else {
                continue;
            };
            let dp = DeleteParams::default();
            match call(op::DELETE, self.timeout, self.api.delete(&name, &dp)).await {
                Ok(outcome) => {
                    if let Some(index) = index.as_mut() {
                        match outcome.left() {
                            // Still present (a finalizer holds it): its
                            // address stays taken until it is really gone.
                            Some(remaining) => index.insert(&remaining),
                            None => index.remove(&name),
                        }
                    }
                    tracing::info!(%name, owner = %owner, "Deleted LocalLoadBalancer");
                }
                // Gone between list and delete: what we wanted.
                Err(ProviderError::Transient { .. }) if self.gone(&name).await? => {
                    if let Some(index) = index.as_mut() {
                        index.remove(&name);
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(DeleteOutcome::Deleted)
    }

    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError> {
        let lp = ListParams::default().labels(&selector(cluster_id, &self.class, None));
        let mut owners: Vec<Owner> = self
            .list(&lp)
            .await?
            .into_iter()
            .filter_map(|obj| {
                let o = &obj.spec.owner;
                let owner = Owner {
                    cluster_id: cluster_id.to_string(),
                    kind: OwnerKind::parse(&o.kind)?,
                    namespace: o.namespace.clone(),
                    name: o.name.clone(),
                    uid: o.uid.clone(),
                };
                // Labels and spec must tell the same story; an object whose
                // labels were edited to point elsewhere is not collected.
                is_owned_by(&obj, &owner, &self.class).then_some(owner)
            })
            .collect();
        owners.sort();
        owners.dedup();
        Ok(owners)
    }
}

impl LocalProvider {
    /// Whether `name` no longer exists (read after a failed delete).
    async fn gone(&self, name: &str) -> Result<bool, ProviderError> {
        Ok(self.get(name).await?.is_none())
    }
}
