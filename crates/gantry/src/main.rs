//! The `gantry` binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dev;
mod factory;
mod fetch;
mod table;

/// Gantry: load balancers for Kubernetes Services and Ingresses.
#[derive(Debug, Parser)]
#[command(name = "gantry", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything on this machine: an emulated cluster, simulated nodes,
    /// the controller, the local provider and the datapath, with an example.
    Dev(dev::DevArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            match dev::run(args, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gantry dev: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
