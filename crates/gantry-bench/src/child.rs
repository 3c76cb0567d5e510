//! `gantry-bench controller-child`: a real [`GantryController`] (leader
//! election off, the benchmark's class as default) in its own process.
//!
//! It serves `/metrics`, `/healthz` and `/readyz`, prints `metrics-addr
//! ADDR` on stdout once bound, then answers each `stats` line on stdin with
//! one JSON [`Stats`] line. It stops when stdin closes.

use std::{io::Write, sync::Arc};

use gantry_controller::{ControllerConfig, GantryController, StaticFactory, server};
use gantry_local::LocalProvider;
use gantry_model::{
    LoadBalancer, ProviderKind,
    class::{LocalMode, LocalSettings},
};
use gantry_testkit::{CountingProvider, RateLimit, RecordingProvider};
use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing_subscriber::EnvFilter;

use crate::{
    ChildArgs, ProviderChoice,
    error::{BenchError, Result},
    tally::{Stats, Tally},
};

/// The benchmark's `LoadBalancerClass`.
pub const CLASS: &str = "bench";
/// Cluster id the controller tags balancers with.
pub const CLUSTER_ID: &str = "gantry-bench";
/// Address pool of the local class: large enough for any run, and on
/// loopback. Nothing binds these addresses: the benchmark's datapath
/// stand-in only reports readiness, it carries no traffic.
pub const POOL: &str = "127.100.0.0/16";

/// Log filter unless `RUST_LOG` says otherwise: warnings, except the watch
/// failures the forced relist of the no-op resync step causes on purpose.
const LOG_FILTER: &str = "warn,gantry_controller::watch=error";

/// A client for the cluster described by `path`.
pub async fn client(path: &std::path::Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(path).map_err(|e| BenchError::ClientConfig(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| BenchError::ClientConfig(e.to_string()))?;
    Client::try_from(config).map_err(|e| BenchError::ClientConfig(e.to_string()))
}

/// Handles the child keeps to report the emulated cloud's figures.
struct CloudHandles {
    recording: Arc<RecordingProvider>,
    counting: Arc<CountingProvider>,
}

fn build_provider(
    client: &Client,
    choice: ProviderChoice,
) -> Result<(Arc<dyn LoadBalancer>, Option<CloudHandles>)> {
    match choice {
        ProviderChoice::Local => {
            let settings = LocalSettings {
                pools: vec![POOL.to_string()],
                mode: LocalMode::L2,
                interface: None,
            };
            // As the gantry binary's factory does: one address book for the
            // process, so a new address needs no full list.
            let provider = LocalProvider::new(client.clone(), CLUSTER_ID, CLASS, settings)
                .map_err(|e| BenchError::Controller(e.to_string()))?
                .with_address_book(&gantry_local::AddressBook::default());
            Ok((Arc::new(provider), None))
        }
        ProviderChoice::Counting => {
            let recording = Arc::new(RecordingProvider::new(CLASS, ProviderKind::Aws));
            let inner: Arc<dyn LoadBalancer> = recording.clone();
            let counting = Arc::new(CountingProvider::new(inner, RateLimit::AWS));
            let provider: Arc<dyn LoadBalancer> = counting.clone();
            Ok((
                provider,
                Some(CloudHandles {
                    recording,
                    counting,
                }),
            ))
        }
    }
}

/// Sum of every `gantry_provider_calls_total` series in `text`.
fn provider_calls_in(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("gantry_provider_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Run the controller child until stdin closes.
pub async fn run(args: ChildArgs) -> Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let client = client(&args.kubeconfig).await?;
    let (provider, cloud) = build_provider(&client, args.provider)?;
    let tally = Arc::new(Tally::new(provider));
    let factory = StaticFactory::new().with(CLASS, tally.clone());
    let config = ControllerConfig {
        cluster_id: CLUSTER_ID.into(),
        default_class: Some(CLASS.into()),
        leader: None,
        ..ControllerConfig::default()
    };
    let controller = GantryController::new(client, config, Arc::new(factory));
    let metrics = controller.metrics();
    let health = controller.health();
    let (bound, serve) = server::bind(args.metrics_addr, metrics.clone(), health.clone())
        .await
        .map_err(|e| BenchError::Controller(e.to_string()))?;
    let server = tokio::spawn(serve);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(controller.run(async move {
        let _ = stop_rx.await;
    }));
    say(&format!("metrics-addr {bound}"))?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let outcome = loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(cmd)) if cmd.trim() == "stats" => {
                    let stats = Stats {
                        ready: health.ready(),
                        calls: tally.counts(),
                        controller_calls: provider_calls_in(&metrics.encode()),
                        per_owner: tally.per_owner(),
                        reconciles: metrics.reconcile_count("Service"),
                        provider_writes: cloud.as_ref().map(|c| c.recording.write_count() as u64),
                        throttled: cloud.as_ref().map(|c| c.counting.throttled()),
                        admitted: cloud.as_ref().map(|c| c.counting.total()),
                    };
                    let json = serde_json::to_string(&stats)
                        .map_err(|e| BenchError::Protocol(e.to_string()))?;
                    say(&json)?;
                }
                Ok(Some(other)) => {
                    tracing::warn!(command = other, "Unknown command");
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(BenchError::io("reading commands")(e)),
            },
            finished = &mut Box::pin(wait_finished(&running)) => {
                break Err(BenchError::Controller(finished));
            }
        }
    };
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), running).await;
    server.abort();
    outcome
}

/// Resolves (with a description) once the controller task has ended.
async fn wait_finished<T>(handle: &tokio::task::JoinHandle<T>) -> String {
    while !handle.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    "stopped before it was asked to".to_string()
}

fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(BenchError::io("writing to the driver"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_provider_call_series() {
        let text = "# TYPE gantry_provider_calls counter\n\
            gantry_provider_calls_total{provider=\"local\",op=\"ensure\",outcome=\"ok\"} 12\n\
            gantry_provider_calls_total{provider=\"local\",op=\"plan\",outcome=\"ok\"} 3\n\
            gantry_reconcile_runs_total{kind=\"Service\"} 40\n";
        assert_eq!(provider_calls_in(text), 15);
    }
}
