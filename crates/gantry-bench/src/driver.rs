//! `gantry-bench controller`: the driver of the controller benchmark.
//!
//! Per provider (the counting one first, the local one last, each with a
//! fresh emulator and controller process):
//!
//! 1. start `kube-sim`, create the namespace, CRDs, class and M Ready Nodes
//!    (and, for the local provider, the datapath stand-in of [`cluster`]);
//! 2. start the controller child and wait for its `/readyz`;
//! 3. create N Services at a steady rate and measure time-to-IP ([`load`]);
//! 4. wait until the controller is quiet; calls per Service = provider
//!    calls so far / N;
//! 5. add one Ready Node, wait until every balancer got its call(s) and the
//!    controller is quiet; node-add calls = the most calls one balancer got;
//! 6. force a relist (expire the watch history, close every watch), wait
//!    until every Service was reconciled again and the controller is quiet;
//!    no-op resync writes = provider write calls + changed Services +
//!    created or changed Events;
//! 7. read the child's `VmHWM` (peak resident set).
//!
//! "Quiet" means: no provider call and no reconcile for `--quiet-secs`.
//! For the local provider that is longer than the controller's 5 s
//! re-check of balancers that are not ready yet, so a pending re-check is
//! never mistaken for the end; the counting provider's balancers are ready
//! at once, so nothing is pending there.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::api::{core::v1::Service, events::v1::Event};
use kube::{Api, Client, ResourceExt, api::ListParams};

use crate::{
    ProviderChoice, cluster,
    error::{BenchError, Result},
    load,
    procs::{ControllerProcess, Emulator},
    report::{self, Figures},
    tally::Stats,
};

/// Arguments of `gantry-bench controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Services to create.
    #[arg(long, default_value_t = 1000)]
    pub services: usize,
    /// Nodes in the cluster before the node-add step.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Services created per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Run only this provider (default: counting, then local).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderChoice>,
    /// Serve the emulator over HTTPS, as a real API server would.
    #[arg(long)]
    pub tls: bool,
    /// How long the controller must be idle to count as done with a step
    /// (default: 6 s for the local provider, longer than the controller's
    /// 5 s re-check of balancers not ready yet; 3 s for the counting one,
    /// whose balancers are ready at once).
    #[arg(long)]
    pub quiet_secs: Option<u64>,
    /// The `kube-sim` binary (default: next to this one).
    #[arg(long)]
    pub kube_sim: Option<PathBuf>,
}

/// Run the benchmark and print its RESULT lines (the local provider's last).
pub async fn run(args: ControllerArgs) -> Result<()> {
    if args.services == 0 || args.rate.is_nan() || args.rate <= 0.0 {
        return Err(BenchError::Protocol(
            "--services must be at least 1 and --rate positive".into(),
        ));
    }
    let exe = std::env::current_exe().map_err(BenchError::io("locating this program"))?;
    let kube_sim = args
        .kube_sim
        .clone()
        .unwrap_or_else(|| exe.with_file_name("kube-sim"));
    let order = match args.provider {
        Some(p) => vec![p],
        None => vec![ProviderChoice::Counting, ProviderChoice::Local],
    };
    println!(
        "controller benchmark: {} Services at {}/s, {} nodes, providers: {}",
        args.services,
        args.rate,
        args.nodes,
        order
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut results = Vec::new();
    for provider in order {
        let dir = std::env::temp_dir().join(format!(
            "gantry-bench-{}-{}",
            std::process::id(),
            provider.as_str()
        ));
        std::fs::create_dir_all(&dir).map_err(BenchError::io("creating a scratch directory"))?;
        let outcome = run_one(&args, provider, &exe, &kube_sim, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        let figures = outcome?;
        for line in report::target_lines(&figures, provider) {
            println!("{line}");
        }
        results.push(report::result_line(&figures, provider));
    }
    println!();
    for line in results {
        println!("{line}");
    }
    Ok(())
}

async fn run_one(
    args: &ControllerArgs,
    provider: ProviderChoice,
    exe: &std::path::Path,
    kube_sim: &std::path::Path,
    dir: &std::path::Path,
) -> Result<Figures> {
    println!();
    println!("== provider {}", provider.as_str());
    let sim = Emulator::start(kube_sim, dir, args.tls).await?;
    let result = async {
        cluster::setup(&sim.client, args.nodes, provider).await?;
        let standin = (provider == ProviderChoice::Local)
            .then(|| cluster::DatapathStandIn::start(&sim.client));
        let mut child = ControllerProcess::start(exe, &sim.kubeconfig, provider).await?;
        let steps = Steps {
            args,
            provider,
            sim: &sim,
        };
        let figures = steps.measure(&mut child).await;
        if let Some(s) = &standin {
            println!("  datapath stand-in reports written: {}", s.reports());
        }
        child.stop().await;
        if let Some(s) = standin {
            s.stop();
        }
        figures
    }
    .await;
    sim.stop().await;
    result
}

struct Steps<'a> {
    args: &'a ControllerArgs,
    provider: ProviderChoice,
    sim: &'a Emulator,
}

impl Steps<'_> {
    fn client(&self) -> &Client {
        &self.sim.client
    }

    fn quiet(&self) -> Duration {
        let default = match self.provider {
            ProviderChoice::Local => 6,
            ProviderChoice::Counting => 3,
        };
        Duration::from_secs(self.args.quiet_secs.unwrap_or(default))
    }

    /// A limit for a step that may make one rate-limited call per Service.
    fn limit(&self) -> Duration {
        Duration::from_secs(60 + self.args.services as u64 / 5)
    }

    async fn measure(&self, child: &mut ControllerProcess) -> Result<Figures> {
        let n = self.args.services;
        child.wait_ready(Duration::from_secs(60)).await?;
        println!(
            "  controller ready (metrics on {}), RSS {:.1} MiB",
            child.metrics_addr,
            mib(child.vm_kib("VmRSS")?)
        );

        // Time-to-IP.
        let limit = Duration::from_secs_f64(n as f64 / self.args.rate) + self.limit();
        let outcome = load::run(self.client(), n, self.args.rate, limit).await?;
        let p50 = report::percentile(&outcome.latencies_ms, 50.0);
        let p99 = report::percentile(&outcome.latencies_ms, 99.0);
        let max = report::percentile(&outcome.latencies_ms, 100.0);
        println!(
            "  created {n} Services in {:.2} s ({:.1}/s); time-to-IP p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; all had an address after {:.2} s",
            outcome.creation_span.as_secs_f64(),
            rate(n, outcome.creation_span),
            outcome.all_ready.as_secs_f64()
        );
        let created = settle(
            child,
            self.quiet(),
            self.limit(),
            "settling after creation",
            |_| true,
        )
        .await?;
        let calls_per_service = created.controller_calls as f64 / n as f64;
        println!(
            "  provider calls until quiet: {} (plan {}, ensure {}, delete {}, list_owned {}; the controller's counter says {}) = {calls_per_service:.2} per Service",
            created.calls.total(),
            created.calls.plan,
            created.calls.ensure,
            created.calls.delete,
            created.calls.list_owned,
            created.controller_calls,
        );
        if let (Some(writes), Some(throttled), Some(admitted)) =
            (created.provider_writes, created.throttled, created.admitted)
        {
            println!(
                "  emulated cloud: {admitted} calls let through by the rate limiter, {writes} writes applied, {throttled} calls waited for a token"
            );
        }

        println!("  {}", memory(child)?);
        let node_add_calls = self.node_add(child, &created).await?;
        println!("  {}", memory(child)?);
        let noop_resync_writes = self.noop_resync(child).await?;
        println!("  {}", memory(child)?);

        let peak = mib(child.vm_kib("VmHWM")?);
        println!("  controller peak RSS (VmHWM) {peak:.1} MiB");
        Ok(Figures {
            services: n,
            nodes: self.args.nodes,
            p50_ms: p50,
            p99_ms: p99,
            all_ready_s: outcome.all_ready.as_secs_f64(),
            calls_per_service,
            node_add_calls,
            noop_resync_writes,
            peak_rss_mib: peak,
        })
    }

    /// Add one Ready Node; the most provider calls one balancer got for it.
    async fn node_add(&self, child: &mut ControllerProcess, before: &Stats) -> Result<u64> {
        let n = self.args.services;
        let specs = generations(self.client(), self.provider).await?;
        let started = Instant::now();
        cluster::add_node(self.client(), self.args.nodes).await?;
        let base = before.per_owner.clone();
        let after = settle(child, self.quiet(), self.limit(), "node add", |s| {
            touched(&base, &s.per_owner) >= n
        })
        .await?;
        let deltas: Vec<u64> = after
            .per_owner
            .iter()
            .map(|(uid, c)| c.saturating_sub(base.get(uid).copied().unwrap_or(0)))
            .collect();
        let max = deltas.iter().copied().max().unwrap_or(0);
        let min = deltas.iter().copied().min().unwrap_or(0);
        let calls = after.calls.since(&before.calls);
        println!(
            "  node add: {} balancers re-ensured, calls per balancer min {min} max {max}, {} calls in all (plan {}, ensure {}, delete {}, list_owned {}), quiet after {:.1} s",
            touched(&base, &after.per_owner),
            calls.total(),
            calls.plan,
            calls.ensure,
            calls.delete,
            calls.list_owned,
            started.elapsed().as_secs_f64()
        );
        if let (Some(a), Some(b)) = (after.admitted, before.admitted) {
            println!(
                "  node add: {} calls let through by the rate limiter",
                a.saturating_sub(b)
            );
        }
        if self.provider == ProviderChoice::Local {
            let name = cluster::node_name(self.args.nodes);
            let llbs = Api::<gantry_model::local::LocalLoadBalancer>::all(self.client().clone())
                .list(&ListParams::default())
                .await
                .map_err(BenchError::kube("listing LocalLoadBalancers"))?;
            let with = llbs
                .items
                .iter()
                .filter(|l| l.spec.nodes.iter().any(|node| node.name == name))
                .count();
            let (writes, most) =
                spec_writes(&specs, &generations(self.client(), self.provider).await?);
            println!(
                "  {with} of {} LocalLoadBalancers list the new node; balancer spec writes {writes} (at most {most} per balancer)",
                llbs.items.len()
            );
        }
        Ok(max)
    }

    /// Make the controller relist: forget the emulator's watch history, then
    /// end every watch, so that resuming answers 410 Gone. A watch that got
    /// a bookmark between the two steps resumes without error, so this is
    /// repeated until reconciles start (at most 5 times).
    async fn force_relist(&self, child: &mut ControllerProcess, reconciles: u64) -> Result<()> {
        for attempt in 1..=5 {
            self.sim.fault("expire_watch_history").await?;
            self.sim.fault("close_watches").await?;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if child.stats().await?.reconciles > reconciles {
                    println!("  forced a relist (attempt {attempt})");
                    return Ok(());
                }
            }
        }
        Err(BenchError::Timeout {
            phase: "forced relist",
            waited: Duration::from_secs(25),
            detail: "no reconcile followed 5 attempts to end the watches".into(),
        })
    }

    /// Force a relist that changes nothing; the writes it caused.
    async fn noop_resync(&self, child: &mut ControllerProcess) -> Result<u64> {
        let n = self.args.services as u64;
        let before = child.stats().await?;
        let services = versions::<Service>(self.client()).await?;
        let events = versions::<Event>(self.client()).await?;
        let llbs = generations(self.client(), self.provider).await?;
        let started = Instant::now();
        self.force_relist(child, before.reconciles).await?;
        let target = before.reconciles + n;
        let after = settle(child, self.quiet(), self.limit(), "no-op resync", |s| {
            s.reconciles >= target
        })
        .await?;
        let calls = after.calls.since(&before.calls);
        let changed = |old: &HashMap<String, String>, new: &HashMap<String, String>| {
            new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).count() as u64
        };
        let svc_writes = changed(&services, &versions::<Service>(self.client()).await?);
        let event_writes = changed(&events, &versions::<Event>(self.client()).await?);
        let (llb_writes, _) = spec_writes(&llbs, &generations(self.client(), self.provider).await?);
        let cloud_writes = after
            .provider_writes
            .zip(before.provider_writes)
            .map(|(a, b)| a.saturating_sub(b));
        println!(
            "  no-op resync: {} reconciles, provider calls plan {} ensure {} delete {} list_owned {}; Services changed {svc_writes}, Events written {event_writes}, balancer specs changed {}; quiet after {:.1} s",
            after.reconciles - before.reconciles,
            calls.plan,
            calls.ensure,
            calls.delete,
            calls.list_owned,
            match (self.provider, cloud_writes) {
                (ProviderChoice::Local, _) => llb_writes.to_string(),
                (_, Some(w)) => w.to_string(),
                (_, None) => "?".into(),
            },
            started.elapsed().as_secs_f64()
        );
        Ok(calls.writing() + svc_writes + event_writes)
    }
}

/// How many owners in `now` have more calls than in `base`.
fn touched(base: &HashMap<String, u64>, now: &HashMap<String, u64>) -> usize {
    now.iter()
        .filter(|(uid, c)| **c > base.get(*uid).copied().unwrap_or(0))
        .count()
}

/// Poll the child until `ready(stats)` holds and then nothing (provider
/// calls, reconciles) changes for `quiet`.
async fn settle(
    child: &mut ControllerProcess,
    quiet: Duration,
    limit: Duration,
    phase: &'static str,
    ready: impl Fn(&Stats) -> bool,
) -> Result<Stats> {
    let start = Instant::now();
    let mut last = child.stats().await?;
    let mut still_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = child.stats().await?;
        let key = |s: &Stats| (s.calls.total(), s.controller_calls, s.reconciles);
        if key(&now) != key(&last) {
            still_since = Instant::now();
        }
        let done = ready(&now) && still_since.elapsed() >= quiet;
        last = now;
        if done {
            return Ok(last);
        }
        if start.elapsed() > limit {
            return Err(BenchError::Timeout {
                phase,
                waited: limit,
                detail: format!(
                    "{} reconciles and {} provider calls so far; step condition {}; last change {:.1} s ago",
                    last.reconciles,
                    last.calls.total(),
                    if ready(&last) { "met" } else { "not met" },
                    still_since.elapsed().as_secs_f64()
                ),
            });
        }
    }
}

/// `name -> resourceVersion` of every `K` in the benchmark's namespace.
async fn versions<K>(client: &Client) -> Result<HashMap<String, String>>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), cluster::NAMESPACE);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(BenchError::kube(format!("listing {}", K::plural(&()))))?;
    Ok(list
        .items
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect())
}

/// `name -> generation` of every LocalLoadBalancer (empty for other providers).
async fn generations(client: &Client, provider: ProviderChoice) -> Result<HashMap<String, i64>> {
    if provider != ProviderChoice::Local {
        return Ok(HashMap::new());
    }
    let api: Api<gantry_model::local::LocalLoadBalancer> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(BenchError::kube("listing LocalLoadBalancers"))?;
    Ok(list
        .items
        .iter()
        .map(|o| (o.name_any(), o.metadata.generation.unwrap_or_default()))
        .collect())
}

/// Spec writes between two [`generations`] snapshots: in all, and the most
/// one balancer got.
fn spec_writes(before: &HashMap<String, i64>, after: &HashMap<String, i64>) -> (i64, i64) {
    let deltas = after
        .iter()
        .map(|(name, g)| g - before.get(name).copied().unwrap_or(0));
    deltas.fold((0, 0), |(sum, max), d| (sum + d, max.max(d)))
}

/// The child's current and peak resident set, as a line.
fn memory(child: &ControllerProcess) -> Result<String> {
    Ok(format!(
        "controller memory: RSS {:.1} MiB, peak so far {:.1} MiB, {} open file descriptors",
        mib(child.vm_kib("VmRSS")?),
        mib(child.vm_kib("VmHWM")?),
        child.open_fds()?
    ))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn rate(n: usize, span: Duration) -> f64 {
    if span.is_zero() {
        n as f64
    } else {
        (n.saturating_sub(1)) as f64 / span.as_secs_f64()
    }
}
