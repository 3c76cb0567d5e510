//! `run`: the datapath driven by the Kubernetes API.
//!
//! watch `LocalLoadBalancer` -> resolve TLS Secrets -> `Engine::apply` ->
//! report `status.nodes.<node>`. The engine is re-applied when the set of
//! (object, generation) changes and every [`secrets::REFRESH`] (re-reading
//! Secrets); status is re-reported when node health flips. Nothing is
//! applied before the first complete list, so a restarted instance never
//! drops listeners of objects it has not seen yet.

mod holding;
pub(crate) mod secrets;
pub(crate) mod status;

use std::{collections::BTreeMap, sync::Arc};

use futures::StreamExt;
use gantry_model::local::LocalLoadBalancer;
use kube::{
    Api, Client, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};

use self::{holding::Holding, secrets::SecretCache, status::StatusReporter};
use crate::{
    announce, config::ObjectConfig, engine::Engine, error::DatapathError, options::DatapathOptions,
};

/// Serves every `LocalLoadBalancer` this node should until `shutdown`
/// completes, then stops listening and drains.
pub async fn run(
    client: Client,
    opts: DatapathOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DatapathError> {
    let engine = Arc::new(Engine::new(&opts));
    let metrics_task = match opts.metrics_addr {
        Some(addr) => Some(engine.serve_metrics(addr).await?),
        None => None,
    };
    let announcer = Holding::start(client.clone(), &opts);
    let result = drive(client, &opts, &engine, &announcer, shutdown).await;
    // Addresses off and their Leases released before the listeners close:
    // clients move to the next holder instead of meeting a closing socket.
    announcer.shutdown().await;
    engine.shutdown().await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    result
}

async fn drive(
    client: Client,
    opts: &DatapathOptions,
    engine: &Engine,
    announcer: &Holding,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DatapathError> {
    let api: Api<LocalLoadBalancer> = Api::all(client.clone());
    let stream = watcher(api.clone(), watcher::Config::default()).default_backoff();
    tokio::pin!(stream);
    tokio::pin!(shutdown);
    let mut secrets = SecretCache::new(client.clone());
    let mut held = announcer.held();
    let mut interfaces = BTreeMap::new();
    let mut reporter = StatusReporter::new(api, opts.node_name.clone());
    let mut health = engine.health_changes();
    let mut refresh = tokio::time::interval(secrets::REFRESH);
    refresh.tick().await;

    let mut objects: BTreeMap<String, LocalLoadBalancer> = BTreeMap::new();
    let mut relist: Option<BTreeMap<String, LocalLoadBalancer>> = None;
    let mut synced = false;
    let mut applied: Option<BTreeMap<String, i64>> = None;
    loop {
        let mut force = false;
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = stream.next() => match event {
                None => return Err(DatapathError::WatchEnded),
                Some(Err(error)) => {
                    tracing::warn!(%error, "Watch on LocalLoadBalancer failed; retrying");
                    continue;
                }
                Some(Ok(event)) => match event {
                    watcher::Event::Init => relist = Some(BTreeMap::new()),
                    watcher::Event::InitApply(o) => {
                        if let Some(r) = relist.as_mut() {
                            r.insert(o.name_any(), o);
                        }
                    }
                    watcher::Event::InitDone => {
                        if let Some(r) = relist.take() {
                            objects = r;
                        }
                        synced = true;
                    }
                    watcher::Event::Apply(o) => {
                        objects.insert(o.name_any(), o);
                    }
                    watcher::Event::Delete(o) => {
                        objects.remove(&o.name_any());
                    }
                },
            },
            _ = health.changed() => {
                let readiness = engine.readiness().await;
                announcer.compete(&opts.node_name, &objects, &readiness, &interfaces);
                let now_held = announcer.held_of(&mut held, &objects);
                reporter.report(&objects, &readiness, &now_held).await;
                continue;
            }
            Ok(()) = held.changed() => {
                let readiness = engine.readiness().await;
                let now_held = announcer.held_of(&mut held, &objects);
                reporter.report(&objects, &readiness, &now_held).await;
                continue;
            }
            _ = refresh.tick() => {
                secrets.clear();
                force = true;
            }
        }
        if !synced {
            continue;
        }
        let generations: BTreeMap<String, i64> = objects
            .iter()
            .map(|(n, o)| (n.clone(), o.metadata.generation.unwrap_or_default()))
            .collect();
        if !force && applied.as_ref() == Some(&generations) {
            // Only status (ours or another node's) changed; still make sure
            // our entry is what it should be.
            let readiness = engine.readiness().await;
            announcer.compete(&opts.node_name, &objects, &readiness, &interfaces);
            let now_held = announcer.held_of(&mut held, &objects);
            reporter.report(&objects, &readiness, &now_held).await;
            continue;
        }
        let mut configs = Vec::new();
        for (name, obj) in &objects {
            if !obj.spec.addresses.iter().any(|a| opts.bind.binds(*a)) {
                continue;
            }
            let mut cfg = ObjectConfig::new(name, generations[name], obj.spec.clone());
            (cfg.tls, cfg.problems) = secrets.resolve(&obj.spec).await;
            configs.push(cfg);
        }
        let readiness = engine.apply(configs).await;
        applied = Some(generations);
        // Only an announcer here needs each class's interface (one read per
        // class); a separate one reads them itself.
        if announcer.announces() {
            interfaces = announce::class_interfaces(&client, objects.values()).await;
        }
        announcer.compete(&opts.node_name, &objects, &readiness, &interfaces);
        let now_held = announcer.held_of(&mut held, &objects);
        reporter.report(&objects, &readiness, &now_held).await;
    }
}
