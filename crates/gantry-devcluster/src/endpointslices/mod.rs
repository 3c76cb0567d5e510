//! The EndpointSlice controller: keeps `<service>-<suffix>` slices in step
//! with the pods each selector-bearing Service selects, writing only when the
//! content changed, and deletes slices whose Service is gone or lost its
//! selector. Existing slices are read with a fresh list on every pass: after
//! our own create the cache may lag, and acting on it would duplicate slices.

pub mod build;

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::{
        core::v1::{Pod, Service},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
    runtime::reflector::Store,
};

use crate::{DevError, compare::normalized, nodes::error_chain, shared::Shared};
use build::{MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, SliceContent};

/// The EndpointSlice controller.
pub(crate) struct EndpointSlices {
    shared: Arc<Shared>,
    services: Store<Service>,
    pods: Store<Pod>,
}

impl EndpointSlices {
    pub fn new(shared: Arc<Shared>, services: Store<Service>, pods: Store<Pod>) -> Self {
        EndpointSlices {
            shared,
            services,
            pods,
        }
    }

    /// One pass over every Service and every managed slice.
    pub async fn pass(&self) {
        if let Err(error) = self.try_pass().await {
            tracing::warn!(error = %error_chain(&error), "EndpointSlice pass failed");
        }
    }

    async fn try_pass(&self) -> Result<(), DevError> {
        let all: Api<EndpointSlice> = Api::all(self.shared.client.clone());
        let listed = all
            .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")))
            .await
            .map_err(|source| DevError::List {
                kind: "EndpointSlice",
                source: Box::new(source),
            })?;
        let mut existing: BTreeMap<(String, String), Vec<EndpointSlice>> = BTreeMap::new();
        for slice in listed.items {
            let (Some(ns), Some(svc)) = (
                slice.namespace(),
                slice.labels().get(SERVICE_NAME_LABEL).cloned(),
            ) else {
                continue;
            };
            existing.entry((ns, svc)).or_default().push(slice);
        }
        let pods = self.pods.state();
        let zones = self.zones();
        for svc in self.services.state() {
            let (Some(ns), Some(name)) = (svc.namespace(), svc.metadata.name.clone()) else {
                continue;
            };
            let current = existing
                .remove(&(ns.clone(), name.clone()))
                .unwrap_or_default();
            if !build::is_managed(&svc) || svc.metadata.deletion_timestamp.is_some() {
                self.delete_all(&ns, current).await;
                continue;
            }
            let in_ns: Vec<&Pod> = pods
                .iter()
                .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
                .map(AsRef::as_ref)
                .collect();
            let desired = build::desired(&svc, &in_ns, |node| zones.get(node).cloned());
            if let Err(error) = self.sync_service(&svc, &ns, &name, desired, current).await {
                tracing::warn!(error = %error_chain(&error), service = %name, "EndpointSlice sync failed");
            }
        }
        // Whatever is left belongs to Services that no longer exist.
        for ((ns, _), slices) in existing {
            self.delete_all(&ns, slices).await;
        }
        Ok(())
    }

    fn zones(&self) -> BTreeMap<String, String> {
        match &self.shared.opts.zone {
            Some(zone) => self
                .shared
                .nodes()
                .into_iter()
                .map(|n| (n.name, zone.clone()))
                .collect(),
            None => BTreeMap::new(),
        }
    }

    async fn sync_service(
        &self,
        svc: &Service,
        ns: &str,
        name: &str,
        desired: Vec<SliceContent>,
        current: Vec<EndpointSlice>,
    ) -> Result<(), DevError> {
        let api: Api<EndpointSlice> = Api::namespaced(self.shared.client.clone(), ns);
        let labels = build::labels(svc, name);
        let owner = owner_ref(svc, name);
        let wanted: Vec<EndpointSlice> = desired
            .into_iter()
            .map(|c| slice_object(ns, name, &labels, owner.clone(), c))
            .collect();
        let mut spare: Vec<EndpointSlice> = current;
        let mut unmatched: Vec<EndpointSlice> = Vec::new();
        // Exact matches first: those need no write at all.
        for want in wanted {
            match spare.iter().position(|s| same_content(s, &want)) {
                Some(i) => {
                    spare.remove(i);
                }
                None => unmatched.push(want),
            }
        }
        for want in unmatched {
            // Reuse a slice with the same ports if there is one, else any.
            let reuse = spare
                .iter()
                .position(|s| normalized(&s.ports) == normalized(&want.ports))
                .or_else(|| (!spare.is_empty()).then_some(0));
            match reuse {
                Some(i) => {
                    let old = spare.remove(i);
                    let mut next = want;
                    next.metadata.name = old.metadata.name.clone();
                    next.metadata.generate_name = old.metadata.generate_name.clone();
                    next.metadata.resource_version = old.metadata.resource_version.clone();
                    let slice_name = next.metadata.name.clone().unwrap_or_default();
                    api.replace(&slice_name, &PostParams::default(), &next)
                        .await
                        .map_err(|source| DevError::Update {
                            kind: "EndpointSlice",
                            namespace: ns.to_string(),
                            name: slice_name.clone(),
                            source: Box::new(source),
                        })?;
                }
                None => {
                    api.create(&PostParams::default(), &want)
                        .await
                        .map_err(|source| DevError::Create {
                            kind: "EndpointSlice",
                            namespace: ns.to_string(),
                            name: format!("{name}-"),
                            source: Box::new(source),
                        })?;
                }
            }
        }
        self.delete_all(ns, spare).await;
        Ok(())
    }

    async fn delete_all(&self, ns: &str, slices: Vec<EndpointSlice>) {
        let api: Api<EndpointSlice> = Api::namespaced(self.shared.client.clone(), ns);
        for slice in slices {
            let name = slice.name_any();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(error) => {
                    tracing::warn!(%error, slice = %name, "EndpointSlice delete failed");
                }
            }
        }
    }
}

fn owner_ref(svc: &Service, name: &str) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: name.to_string(),
        uid: svc.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Generated names keep room for the random suffix within 63 characters.
fn generate_name(service: &str) -> String {
    let prefix: String = service.chars().take(57).collect();
    format!("{prefix}-")
}

fn slice_object(
    ns: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    owner: Option<OwnerReference>,
    content: SliceContent,
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(name)),
            namespace: Some(ns.to_string()),
            labels: Some(labels.clone()),
            owner_references: owner.map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: content.endpoints,
        ports: Some(content.ports),
    }
}

/// Whether `have` already says what `want` says (labels, owner, ports,
/// endpoints), so no write is needed.
fn same_content(have: &EndpointSlice, want: &EndpointSlice) -> bool {
    have.address_type == want.address_type
        && have.metadata.labels == want.metadata.labels
        && normalized(&have.metadata.owner_references)
            == normalized(&want.metadata.owner_references)
        && normalized(&have.ports) == normalized(&want.ports)
        && normalized(&have.endpoints) == normalized(&want.endpoints)
}
