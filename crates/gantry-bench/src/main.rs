//! `gantry-bench`: benchmarks of Gantry.
//!
//! `gantry-bench controller [--services N --nodes M]` runs the controller
//! benchmark (see [`driver`]); `gantry-bench controller-child ...` is the
//! controller process that benchmark starts (see [`child`]), so that the
//! peak memory it reports is the controller's alone.

mod child;
mod cluster;
mod driver;
mod error;
mod load;
mod procs;
mod report;
mod tally;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "gantry-bench", about = "Benchmarks of Gantry")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Controller benchmark: time-to-IP, provider calls, node add, no-op
    /// resync and peak memory, against the API emulator.
    Controller(driver::ControllerArgs),
    /// The controller process the benchmark starts (not for direct use).
    ControllerChild(ChildArgs),
}

/// Which provider serves the benchmark's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProviderChoice {
    /// Gantry's bare-metal provider (LocalLoadBalancer objects, `l2` pool).
    Local,
    /// An in-memory cloud behind an AWS-like client rate limit (10/s, burst 40).
    Counting,
}

impl ProviderChoice {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Counting => "counting",
        }
    }
}

/// Arguments of `controller-child`.
#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    /// kubeconfig of the API emulator.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Provider of the benchmark's class.
    #[arg(long, value_enum)]
    pub provider: ProviderChoice,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_addr: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller(args) => driver::run(args).await,
        Command::ControllerChild(args) => child::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gantry-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
