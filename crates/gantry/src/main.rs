//! The `gantry` binary: the controller, the datapath, the planning and CRD
//! tools, and the all-in-one dev environment.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gantry_controller::cli::{ControllerArgs, PlanArgs};

mod commands;
mod dev;
mod factory;
mod fetch;
mod table;

/// Gantry: load balancers for Kubernetes Services and Ingresses on AWS, GCP
/// and bare metal.
#[derive(Debug, Parser)]
#[command(name = "gantry", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller.
    Controller(ControllerArgs),
    /// Print the changes the controller would make, without making any.
    Plan(PlanArgs),
    /// Print the CustomResourceDefinitions as YAML (for `kubectl apply -f -`).
    Crd,
    /// Run the bare-metal datapath of one node.
    Datapath(commands::DatapathArgs),
    /// Announce one node's share of the `l2` addresses, beside a datapath
    /// run with `--announcer separate`.
    Announce(commands::AnnounceArgs),
    /// Run everything on this machine: an emulated cluster, simulated nodes,
    /// the controller, the local provider and the datapath, with an example.
    Dev(dev::DevArgs),
}

fn main() -> ExitCode {
    // Several client libraries link rustls with different crypto back ends;
    // with more than one compiled in, rustls cannot pick one by itself, so
    // the process chooses ring (what kube and the AWS SDK are built with)
    // before any client exists. An error only means one is already set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // The datapath sizes its runtime to its cores; the rest use tokio's
    // default.
    let runtime = match &cli.command {
        Command::Datapath(args) => gantry_datapath::runtime(args.threads),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("gantry: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Controller(args) => commands::controller(args).await.map_err(|e| e.to_string()),
        Command::Plan(args) => commands::plan_cmd(args).await.map_err(|e| e.to_string()),
        Command::Crd => commands::crd().map_err(|e| e.to_string()),
        Command::Datapath(args) => commands::datapath(args).await,
        Command::Announce(args) => commands::announce(args).await,
        Command::Dev(args) => {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            dev::run(args, commands::shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gantry: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn help_lists_every_subcommand() {
        Cli::command().debug_assert();
        let help = Cli::command().render_help().to_string();
        for sub in ["controller", "plan", "crd", "datapath", "announce", "dev"] {
            assert!(help.contains(sub), "{sub} missing from:\n{help}");
        }
    }

    #[test]
    fn controller_flags_parse() {
        let cli = Cli::try_parse_from(["gantry", "controller", "--default-class", "local"])
            .expect("parses");
        let Command::Controller(args) = cli.command else {
            panic!("expected controller");
        };
        assert_eq!(args.cluster.default_class.as_deref(), Some("local"));
    }
}
