//! The `gce-sim` binary: runs the Compute Engine emulator until Ctrl-C.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use gce_sim::{GceSim, SimOptions};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(name = "gce-sim", about = "Compute Engine v1 REST API emulator")]
struct Args {
    /// Address to listen on (loopback); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Milliseconds an Operation takes from PENDING to DONE.
    #[arg(long, default_value_t = 200)]
    operation_delay_ms: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let options = SimOptions {
        listen: args.listen,
        operation_delay: Duration::from_millis(args.operation_delay_ms),
    };
    let sim = match GceSim::start(options).await {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("gce-sim: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("listening on {}", sim.url());
    let _ = tokio::signal::ctrl_c().await;
    sim.shutdown().await;
    std::process::ExitCode::SUCCESS
}
