//! `gantry announce`: the `l2` announcer as a process of its own, beside a
//! datapath run with [`Announcing::Separate`](crate::Announcing), so that
//! only this small process holds `NET_ADMIN` and `NET_RAW` and the proxy
//! that parses client traffic holds neither.
//!
//! It competes for an object's addresses while the datapath of this node
//! both reports itself ready for that object (its entry in the object's
//! status) and answers `/healthz` on its metrics address: a datapath that
//! died or hangs leaves its last status behind, and the probe is what
//! makes this announcer let go within a second, as the in-process one
//! does by dying with it.

use std::{collections::BTreeMap, future::Future, net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use gantry_model::local::LocalLoadBalancer;
use http::{Request, header::HOST};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, reflector},
        watcher::{self, Event, watcher},
    },
};
use tokio::net::TcpStream;

use super::{Announcer, Timing, class_interfaces, targets};
use crate::{config::Readiness, error::DatapathError};

/// How often the datapath is probed and the targets recomputed.
const CHECK: Duration = Duration::from_millis(500);
/// A datapath slower than this to answer counts as gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// How `gantry announce` runs.
#[derive(Clone, Debug)]
pub struct AnnounceOptions {
    /// This node's name: the Leases' holder identity, and the key of the
    /// status entries of the datapath beside this announcer.
    pub node_name: String,
    /// That datapath's metrics address, probed at `/healthz`.
    pub datapath: SocketAddr,
}

/// Announces this node's share of the `l2` addresses until `shutdown`
/// completes, then removes them and releases their Leases.
pub async fn announce(
    client: Client,
    opts: AnnounceOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DatapathError> {
    let announcer = Announcer::start(client.clone(), &opts.node_name, Timing::default());
    let result = follow(client, &opts, &announcer, shutdown).await;
    announcer.shutdown().await;
    result
}

async fn follow(
    client: Client,
    opts: &AnnounceOptions,
    announcer: &Announcer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DatapathError> {
    let api: Api<LocalLoadBalancer> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let stream = reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tokio::pin!(stream);
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut synced = false;
    let mut alive = false;
    let mut interfaces = BTreeMap::new();
    let mut generations = None;
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            event = stream.next() => match event {
                None => return Err(DatapathError::WatchEnded),
                Some(Err(error)) => {
                    tracing::warn!(%error, "Watch on LocalLoadBalancer failed; retrying");
                    continue;
                }
                Some(Ok(event)) => synced |= matches!(event, Event::InitDone),
            },
            _ = tick.tick() => {
                let now = answers(opts.datapath).await;
                if now != alive {
                    tracing::info!(datapath = %opts.datapath, alive = now, "Datapath liveness changed");
                }
                alive = now;
            }
        }
        if !synced {
            continue;
        }
        let objects: BTreeMap<String, LocalLoadBalancer> = store
            .state()
            .into_iter()
            .map(|o| (o.name_any(), (*o).clone()))
            .collect();
        let now: BTreeMap<String, i64> = objects
            .iter()
            .map(|(n, o)| (n.clone(), o.metadata.generation.unwrap_or_default()))
            .collect();
        if generations.as_ref() != Some(&now) {
            interfaces = class_interfaces(&client, objects.values()).await;
            generations = Some(now);
        }
        let readiness = if alive {
            reported(&opts.node_name, &objects)
        } else {
            BTreeMap::new()
        };
        announcer.set_targets(targets(&opts.node_name, &objects, &readiness, &interfaces));
    }
}

/// What the datapath of `node` reports for each object it serves.
fn reported(
    node: &str,
    objects: &BTreeMap<String, LocalLoadBalancer>,
) -> BTreeMap<String, Readiness> {
    objects
        .iter()
        .filter_map(|(name, o)| {
            let entry = o.status.as_ref()?.nodes.get(node)?;
            Some((
                name.clone(),
                Readiness {
                    generation: entry.observed_generation,
                    ready: entry.ready,
                    message: entry.message.clone(),
                },
            ))
        })
        .collect()
}

/// Whether the datapath at `addr` answers `/healthz` in time.
async fn answers(addr: SocketAddr) -> bool {
    let probe = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .ok()?;
        let request = Request::get("/healthz")
            .header(HOST, addr.to_string())
            .body(Empty::new())
            .ok()?;
        let exchange = async { sender.send_request(request).await.ok() };
        tokio::select! {
            response = exchange => response.map(|r| r.status().is_success()),
            _ = conn => None,
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use gantry_model::local::{LocalLoadBalancerStatus, LocalNodeStatus};

    use super::*;

    fn object(entries: &[(&str, bool)]) -> LocalLoadBalancer {
        let spec = serde_json::from_value(serde_json::json!({
            "class": "metal",
            "owner": {"kind": "Service", "namespace": "d", "name": "w", "uid": "u"},
            "mode": "l2",
            "addresses": ["192.0.2.100"],
            "nodes": [],
        }))
        .expect("spec");
        let mut o = LocalLoadBalancer::new("x", spec);
        o.status = Some(LocalLoadBalancerStatus {
            nodes: entries
                .iter()
                .map(|(n, ready)| {
                    let entry = LocalNodeStatus {
                        observed_generation: 4,
                        ready: *ready,
                        ..LocalNodeStatus::default()
                    };
                    ((*n).to_owned(), entry)
                })
                .collect(),
        });
        o
    }

    #[test]
    fn readiness_is_what_this_nodes_datapath_reported() {
        let objects = BTreeMap::from([
            ("ready".to_owned(), object(&[("n1", true), ("n2", false)])),
            ("not-ready".to_owned(), object(&[("n1", false)])),
            ("elsewhere".to_owned(), object(&[("n2", true)])),
        ]);
        let got = reported("n1", &objects);
        let summary: Vec<(&str, bool, i64)> = got
            .iter()
            .map(|(n, r)| (n.as_str(), r.ready, r.generation))
            .collect();
        assert_eq!(summary, [("not-ready", false, 4), ("ready", true, 4)]);
    }

    #[tokio::test]
    async fn a_datapath_counts_as_alive_only_while_it_answers() {
        let engine = crate::Engine::new(&crate::DatapathOptions::new("n1"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        assert!(!answers(addr).await, "nothing listens yet");
        let task = engine.serve_metrics(addr).await.expect("metrics");
        assert!(answers(addr).await, "the metrics server answers /healthz");
        task.abort();
        let _ = task.await;
        assert!(!answers(addr).await, "stopped");
    }
}
