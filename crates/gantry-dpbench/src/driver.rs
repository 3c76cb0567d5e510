//! The benchmark driver: pins itself (load generator and backend) to one
//! core and the proxies to another, starts the peers, runs every case in
//! interleaved rounds (each round runs every peer once, in an order that
//! rotates between rounds), and prints medians, ratios and the RESULT line.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{
    backend::Backend,
    error::BenchError,
    load,
    peers::{self, Material, Peer, Pinning},
    report::{Samples, ratio, row},
};

/// Arguments of `gantry-dpbench run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Fewer and shorter rounds (the whole run in under two minutes).
    #[arg(long)]
    pub quick: bool,
    /// Rounds (default 5, quick 2).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Seconds per measurement (default 4, quick 1.5).
    #[arg(long)]
    pub secs: Option<f64>,
}

/// Backend ports: HTTP, sink, greet.
const BACKEND_BASE: u16 = 18080;
/// wrk connections for the throughput cases.
const WRK_CONNS: usize = 64;
/// Connections of the fixed-rate latency client.
const PACED_CONNS: usize = 16;
/// Idle connections opened at once.
const IDLE_BATCH: usize = 200;
/// Concurrent connect loops of the connection-rate case.
const CONN_LOOPS: usize = 32;

struct Plan {
    rounds: usize,
    secs: f64,
    idle_conns: usize,
}

/// Runs the benchmark.
pub fn main(args: RunArgs) -> Result<(), BenchError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pin = if cores >= 2 {
        // Before the runtime exists, so every thread it starts, wrk and
        // the backend stay on core 1; proxies are started on core 0.
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", "1"])
            .arg(std::process::id().to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|source| BenchError::Spawn {
                what: "taskset".into(),
                source,
            })?;
        if !status.success() {
            return Err(BenchError::Datapath(
                "taskset could not pin the driver".into(),
            ));
        }
        eprintln!(
            "pinning: proxies on core 0, load generator and backend on core 1 ({cores} cores)"
        );
        Pinning {
            proxy_core: Some(0),
        }
    } else {
        eprintln!("pinning: only one core, everything runs unpinned on it");
        Pinning { proxy_core: None }
    };
    let plan = Plan {
        rounds: args.rounds.unwrap_or(if args.quick { 2 } else { 5 }).max(1),
        secs: args.secs.unwrap_or(if args.quick { 1.5 } else { 4.0 }),
        idle_conns: if args.quick { 1000 } else { 4000 },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("start the runtime"))?;
    let dir = std::env::temp_dir().join(format!("gantry-dpbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(BenchError::io("create the scratch directory"))?;
    let result = rt.block_on(async {
        // On Ctrl-C or SIGTERM the run is dropped, and with it the proxies'
        // processes (killed on drop), so none outlives the benchmark.
        tokio::select! {
            r = run(&plan, pin, dir.clone()) => r,
            () = interrupted() => Err(BenchError::Interrupted),
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(plan: &Plan, pin: Pinning, dir: PathBuf) -> Result<(), BenchError> {
    let started = Instant::now();
    let backend = Backend::start(BACKEND_BASE).await?;
    let material = Material::generate(&dir)?;
    let mut all = vec![
        Peer::direct(&backend),
        peers::gantry(pin, &material, &backend).await?,
        peers::haproxy(pin, &material, &backend).await?,
        peers::nginx(pin, &material, &backend).await?,
    ];
    eprintln!(
        "peers up; {} rounds of {:.1} s per measurement",
        plan.rounds, plan.secs
    );
    let names: Vec<&'static str> = all.iter().map(|p| p.name).collect();

    // Memory first, while every proxy is fresh: afterwards allocators keep
    // memory from the throughput cases and the delta would mean little.
    let mut memory = Samples::default();
    for p in &all {
        if let Some(kib) = idle_memory(p, &backend, plan.idle_conns).await? {
            memory.push(p.name, kib);
        }
    }

    let secs_u = plan.secs.ceil().max(1.0) as u64;
    let mut http = Samples::default();
    for r in 0..plan.rounds {
        for p in rotated(&mut all, r) {
            let url = format!("http://{}/", p.http);
            http.push(p.name, load::wrk(&url, WRK_CONNS, secs_u).await?);
        }
    }
    let rate = http.median("direct") * 0.5;
    eprintln!("latency at {rate:.0} req/s (half the direct maximum)");

    let (p50, p99) = latency(&mut all, plan, rate).await?;
    // Half the direct maximum can exceed what a proxy sustains at all; then
    // its latency is queueing. Half the slowest proxy's maximum shows the
    // proxies' own added latency under a load every peer carries.
    let slowest = ["gantry", "haproxy", "nginx"]
        .iter()
        .map(|p| http.median(p))
        .fold(f64::INFINITY, f64::min);
    let low_rate = slowest * 0.5;
    eprintln!("latency at {low_rate:.0} req/s (half the slowest proxy's maximum)");
    let (low_p50, low_p99) = latency(&mut all, plan, low_rate).await?;

    let mut https = Samples::default();
    for r in 0..plan.rounds {
        for p in rotated(&mut all, r) {
            if let Some(a) = p.https {
                let url = format!("https://{a}/");
                https.push(p.name, load::wrk(&url, WRK_CONNS, secs_u).await?);
            }
        }
    }

    let mut bulk = Samples::default();
    for r in 0..plan.rounds {
        for p in rotated(&mut all, r) {
            bulk.push(p.name, load::bulk(p.sink, plan.secs).await?);
        }
    }

    let mut conns = Samples::default();
    let mut conn_failures = 0;
    for r in 0..plan.rounds {
        for p in rotated(&mut all, r) {
            let (rate, failed) = load::conn_rate(p.greet, CONN_LOOPS, plan.secs).await;
            conns.push(p.name, rate);
            conn_failures += failed;
        }
    }

    print_report(
        &names,
        &Report {
            http: &http,
            p50: &p50,
            p99: &p99,
            low_p50: &low_p50,
            low_p99: &low_p99,
            low_rate,
            https: &https,
            bulk: &bulk,
            conns: &conns,
            memory: &memory,
            conn_failures,
            rate,
            plan,
            elapsed: started.elapsed(),
        },
    );
    drop(all);
    Ok(())
}

/// Completes on SIGINT or SIGTERM (never, if neither can be watched).
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// p50 and p99 samples of every peer at `rate`, over the rounds.
async fn latency(
    all: &mut [Peer],
    plan: &Plan,
    rate: f64,
) -> Result<(Samples, Samples), BenchError> {
    let mut p50 = Samples::default();
    let mut p99 = Samples::default();
    for r in 0..plan.rounds {
        for p in rotated(all, r) {
            let l = load::paced(p.http, rate, PACED_CONNS, plan.secs).await?;
            p50.push(p.name, l.p50_us);
            p99.push(p.name, l.p99_us);
        }
    }
    Ok((p50, p99))
}

/// The peers in round `r`'s order: rotated by `r`.
fn rotated(all: &mut [Peer], r: usize) -> std::vec::IntoIter<&Peer> {
    let n = all.len();
    let mut v: Vec<&Peer> = all.iter().collect();
    v.rotate_left(r % n);
    v.into_iter()
}

/// KiB of proxy RSS per idle TCP connection (client side and backend side
/// together), from `n` connections held open through the sink frontend.
async fn idle_memory(p: &Peer, b: &Backend, n: usize) -> Result<Option<f64>, BenchError> {
    let Some(before) = p.rss_kib()? else {
        return Ok(None);
    };
    let base = b.sink_connections();
    // In batches, each reaching the backend before the next: a burst of
    // thousands of connects overflows accept queues, and an idle client
    // whose handshake the kernel dropped never retries.
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        let batch = IDLE_BATCH.min(n - held.len());
        held.append(&mut load::open_idle(p.sink, batch).await?);
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.sink_connections() < base + held.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if b.sink_connections() < base + held.len() {
            return Err(BenchError::Measure {
                case: "idle connections",
                peer: p.name.into(),
                reason: format!(
                    "only {} of {} reached the backend",
                    b.sink_connections().saturating_sub(base),
                    held.len()
                ),
            });
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = p.rss_kib()?.unwrap_or(before);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.sink_connections() > base && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Some(after.saturating_sub(before) as f64 / n as f64))
}

struct Report<'a> {
    http: &'a Samples,
    p50: &'a Samples,
    p99: &'a Samples,
    low_p50: &'a Samples,
    low_p99: &'a Samples,
    low_rate: f64,
    https: &'a Samples,
    bulk: &'a Samples,
    conns: &'a Samples,
    memory: &'a Samples,
    conn_failures: u64,
    rate: f64,
    plan: &'a Plan,
    elapsed: Duration,
}

fn print_report(names: &[&str], r: &Report<'_>) {
    let added = |s: &Samples, peer: &str| s.median(peer) - s.median("direct");
    let mut header = format!("{:<28} {:<8}", "case (median)", "unit");
    for n in names {
        header.push_str(&format!(" {n:>12}"));
    }
    println!("{header}");
    println!("{}", row("HTTP/1.1 keep-alive", "req/s", r.http, names, 0));
    println!(
        "{}",
        row(
            &format!("p50 at {:.0} req/s", r.rate),
            "us",
            r.p50,
            names,
            0
        )
    );
    println!(
        "{}",
        row(
            &format!("p99 at {:.0} req/s", r.rate),
            "us",
            r.p99,
            names,
            0
        )
    );
    println!(
        "{}",
        row(
            &format!("p50 at {:.0} req/s", r.low_rate),
            "us",
            r.low_p50,
            names,
            0
        )
    );
    println!(
        "{}",
        row(
            &format!("p99 at {:.0} req/s", r.low_rate),
            "us",
            r.low_p99,
            names,
            0
        )
    );
    println!("{}", row("HTTPS keep-alive", "req/s", r.https, names, 0));
    println!("{}", row("TCP bulk, 1 stream", "Gbit/s", r.bulk, names, 2));
    println!("{}", row("TCP connect+close", "conn/s", r.conns, names, 0));
    println!(
        "{}",
        row("memory per idle TCP conn", "KiB", r.memory, names, 2)
    );
    println!(
        "rounds={} secs={:.1} wrk=-t1 -c{WRK_CONNS} paced_conns={PACED_CONNS} connect_loops={CONN_LOOPS} idle_conns={} connect_failures={} elapsed={:.0}s",
        r.plan.rounds,
        r.plan.secs,
        r.plan.idle_conns,
        r.conn_failures,
        r.elapsed.as_secs_f64()
    );
    for peer in ["gantry", "haproxy", "nginx"] {
        println!(
            "{peer:<8} http x{:.2} of direct, added p50 {:.0} us, added p99 {:.0} us (at {:.0} req/s: {:.0} us, {:.0} us), tcp x{:.2} of direct, connect x{:.2} of direct",
            ratio(r.http.median(peer), r.http.median("direct")),
            added(r.p50, peer),
            added(r.p99, peer),
            r.low_rate,
            added(r.low_p50, peer),
            added(r.low_p99, peer),
            ratio(r.bulk.median(peer), r.bulk.median("direct")),
            ratio(r.conns.median(peer), r.conns.median("direct")),
        );
    }
    let g = |s: &Samples| s.median("gantry");
    println!(
        "RESULT datapath http_rps_vs_haproxy={:.2} http_rps_vs_nginx={:.2} http_rps_vs_direct={:.2} p99_added_us={:.0} p99_added_us_haproxy={:.0} https_rps_vs_nginx={:.2} tcp_gbps_vs_haproxy={:.2} tcp_gbps_vs_direct={:.2} conn_rate_vs_haproxy={:.2} kib_per_conn={:.2} kib_per_conn_haproxy={:.2}",
        ratio(g(r.http), r.http.median("haproxy")),
        ratio(g(r.http), r.http.median("nginx")),
        ratio(g(r.http), r.http.median("direct")),
        added(r.p99, "gantry"),
        added(r.p99, "haproxy"),
        ratio(g(r.https), r.https.median("nginx")),
        ratio(g(r.bulk), r.bulk.median("haproxy")),
        ratio(g(r.bulk), r.bulk.median("direct")),
        ratio(g(r.conns), r.conns.median("haproxy")),
        g(r.memory),
        r.memory.median("haproxy"),
    );
}
