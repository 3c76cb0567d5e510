//! Reflectors over the objects the dev cluster reacts to (Pods, Services,
//! EndpointSlices, Deployments). Every event pokes the shared change signal,
//! so controllers are level-triggered passes over the caches.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, Store},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;

use crate::{DevError, shared::Shared};

/// How long start-up waits for the first list of each resource.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Read-only caches of the watched objects.
#[derive(Clone)]
pub(crate) struct Informers {
    pub pods: Store<Pod>,
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub deployments: Store<Deployment>,
}

impl Informers {
    /// Starts one reflector per resource and waits until each has listed once.
    pub async fn start(shared: &Arc<Shared>) -> Result<(Informers, Vec<JoinHandle<()>>), DevError> {
        let mut tasks = Vec::new();
        let pods = reflect::<Pod>(shared, &mut tasks);
        let services = reflect::<Service>(shared, &mut tasks);
        let slices = reflect::<EndpointSlice>(shared, &mut tasks);
        let deployments = reflect::<Deployment>(shared, &mut tasks);
        let synced = async {
            pods.wait_until_ready().await.map_err(|_| "Pod")?;
            services.wait_until_ready().await.map_err(|_| "Service")?;
            slices
                .wait_until_ready()
                .await
                .map_err(|_| "EndpointSlice")?;
            deployments
                .wait_until_ready()
                .await
                .map_err(|_| "Deployment")?;
            Ok::<(), &'static str>(())
        };
        let outcome = tokio::time::timeout(SYNC_TIMEOUT, synced).await;
        let failed = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(kind)) => Some(kind),
            Err(_) => Some("the watched resources"),
        };
        if let Some(kind) = failed {
            for t in &tasks {
                t.abort();
            }
            return Err(DevError::InformerSync { kind });
        }
        Ok((
            Informers {
                pods,
                services,
                slices,
                deployments,
            },
            tasks,
        ))
    }
}

fn reflect<K>(shared: &Arc<Shared>, tasks: &mut Vec<JoinHandle<()>>) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let api = Api::<K>::all(shared.client.clone());
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let shared = shared.clone();
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitApply(_) | watcher::Event::Init) => {}
                Ok(_) => shared.poke(),
                Err(error) => {
                    tracing::warn!(%error, kind = %K::kind(&()), "Watch failed; retrying");
                }
            }
        }
    }));
    reader
}
