//! The Deployment controller of the dev cluster. Deployments are expanded
//! straight into Pods named `<deployment>-<template hash>-<suffix>`, owned by
//! the Deployment: ReplicaSets are skipped, since nothing in the dev cluster
//! reads them and they would only double the objects to keep in step.
//! Scaling, template changes (a rolling update: new pods first, old pods
//! deleted as new ones become ready) and status are honoured.

pub mod plan;

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::OwnerReference,
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::reflector::Store,
};
use serde_json::json;

use crate::{DevError, compare::normalized_without_times, nodes::error_chain, shared::Shared};
use plan::PodView;

/// The label carrying the template hash, as the real controller sets it.
pub const HASH_LABEL: &str = "pod-template-hash";

/// The Deployment controller.
pub(crate) struct Deployments {
    shared: Arc<Shared>,
    deployments: Store<Deployment>,
    pods: Store<Pod>,
}

impl Deployments {
    pub fn new(shared: Arc<Shared>, deployments: Store<Deployment>, pods: Store<Pod>) -> Self {
        Deployments {
            shared,
            deployments,
            pods,
        }
    }

    /// One pass over every Deployment, then over pods whose Deployment is gone.
    pub async fn pass(&self) {
        let deployments = self.deployments.state();
        for d in &deployments {
            if let Err(error) = self.sync(d).await {
                tracing::warn!(error = %error_chain(&error), deployment = %d.name_any(), "Deployment sync failed");
            }
        }
        if let Err(error) = self.collect_orphans().await {
            tracing::warn!(error = %error_chain(&error), "Orphan pod collection failed");
        }
    }

    async fn sync(&self, d: &Deployment) -> Result<(), DevError> {
        let (Some(ns), Some(name), Some(uid)) = (
            d.namespace(),
            d.metadata.name.clone(),
            d.metadata.uid.clone(),
        ) else {
            return Ok(());
        };
        if d.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(spec) = d.spec.as_ref() else {
            return Ok(());
        };
        let desired = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = plan::template_hash(&spec.template, collision);
        let hash_name = format!("{name}-{hash}");
        let pods_api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &ns);

        // A fresh list, not the cache: acting on a stale cache right after
        // our own creates would create the same pods twice.
        let selector = match_labels(spec.selector.match_labels.as_ref());
        let listed = pods_api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| DevError::List {
                kind: "Pod",
                source: Box::new(source),
            })?;
        let owned: Vec<&Pod> = listed
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| is_owned_by(p, &uid))
            .collect();
        let views: Vec<PodView> = owned.iter().map(|p| view(p)).collect();

        if !spec.paused.unwrap_or(false) {
            let recreate =
                spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
            let todo = plan::plan(desired, &hash, &views, recreate);
            for _ in 0..todo.create {
                let pod = pod_for(d, &ns, &name, &uid, &hash, &hash_name);
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                pods_api
                    .create(&PostParams::default(), &pod)
                    .await
                    .map_err(|source| DevError::Create {
                        kind: "Pod",
                        namespace: ns.clone(),
                        name: pod_name,
                        source: Box::new(source),
                    })?;
            }
            for victim in &todo.delete {
                match pods_api.delete(victim, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(source) => {
                        return Err(DevError::Delete {
                            kind: "Pod",
                            namespace: ns.clone(),
                            name: victim.clone(),
                            source: Box::new(source),
                        });
                    }
                }
            }
        }

        let status = plan::status(
            d.metadata.generation,
            desired,
            &hash_name,
            &hash,
            &views,
            d.status.as_ref(),
            Timestamp::now(),
        );
        let current = d.status.clone().unwrap_or_default();
        let typed: k8s_openapi::api::apps::v1::DeploymentStatus =
            serde_json::from_value(status.clone()).map_err(|source| DevError::Encode {
                kind: "DeploymentStatus",
                source,
            })?;
        if normalized_without_times(&current) == normalized_without_times(&typed) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(self.shared.client.clone(), &ns);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .map(|_| ())
        .map_err(|source| DevError::Update {
            kind: "Deployment",
            namespace: ns,
            name,
            source: Box::new(source),
        })
    }

    /// Deletes pods whose controlling Deployment no longer exists, for API
    /// servers without a garbage collector. A live GET confirms absence
    /// before anything is deleted, so a lagging cache never costs a pod.
    async fn collect_orphans(&self) -> Result<(), DevError> {
        for pod in self.pods.state() {
            let Some(owner) = controller_ref(&pod).filter(|o| o.kind == "Deployment") else {
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(ns) = pod.namespace() else { continue };
            let cached = self
                .deployments
                .state()
                .iter()
                .any(|d| d.metadata.uid.as_deref() == Some(&owner.uid));
            if cached {
                continue;
            }
            let api: Api<Deployment> = Api::namespaced(self.shared.client.clone(), &ns);
            let live = api
                .get_opt(&owner.name)
                .await
                .map_err(|source| DevError::List {
                    kind: "Deployment",
                    source: Box::new(source),
                })?;
            if live.is_some_and(|d| d.metadata.uid.as_deref() == Some(&owner.uid)) {
                continue;
            }
            let pods_api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &ns);
            let _ = pods_api
                .delete(&pod.name_any(), &DeleteParams::default())
                .await;
        }
        Ok(())
    }
}

fn match_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn controller_ref(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

fn is_owned_by(pod: &Pod, uid: &str) -> bool {
    controller_ref(pod).is_some_and(|o| o.uid == uid)
}

fn view(pod: &Pod) -> PodView {
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    PodView {
        name: pod.name_any(),
        hash: pod.labels().get(HASH_LABEL).cloned(),
        ready,
    }
}

fn pod_for(d: &Deployment, ns: &str, name: &str, uid: &str, hash: &str, hash_name: &str) -> Pod {
    let template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(HASH_LABEL.to_string(), hash.to_string());
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{hash_name}-{}", plan::random_suffix())),
            namespace: Some(ns.to_string()),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: name.to_string(),
                uid: uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}
