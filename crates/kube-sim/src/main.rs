//! The `kube-sim` binary: runs the emulator as a process, writes a
//! kubeconfig for kubectl/helm and prints `listening on URL`.

use std::net::SocketAddr;

use clap::Parser;
use kube_sim::{KubeSim, SimOptions};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", about = "A Kubernetes API server emulator")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0", env = "KUBE_SIM_LISTEN")]
    listen: SocketAddr,
    /// Serve HTTPS with a self-signed CA.
    #[arg(long, env = "KUBE_SIM_TLS")]
    tls: bool,
    /// Write a kubeconfig to this path on start.
    #[arg(long, env = "KUBE_SIM_KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Service ClusterIP range.
    #[arg(long, default_value = "10.96.0.0/16")]
    service_cidr: ipnet::IpNet,
    /// Watch BOOKMARK interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    bookmark_interval_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let opts = SimOptions {
        tls: args.tls,
        service_cidr: args.service_cidr,
        ..SimOptions::default()
    };
    let sim = KubeSim::start_on(opts, args.listen).await?;
    sim.set_bookmark_interval(std::time::Duration::from_millis(args.bookmark_interval_ms));
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, sim.kubeconfig_yaml()).map_err(|source| {
            kube_sim::SimError::WriteKubeconfig {
                path: path.display().to_string(),
                source,
            }
        })?;
    }
    println!("listening on {}", sim.url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
