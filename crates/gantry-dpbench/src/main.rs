//! `gantry-dpbench`: Gantry's datapath side by side with HAProxy, nginx and
//! a direct connection, on loopback (see `e2e/bench datapath`).
//!
//! `gantry-dpbench run [--quick]` drives the benchmark; `gantry-dpbench
//! datapath ...` is the datapath child it starts.

mod backend;
mod child;
mod driver;
mod error;
mod load;
mod peers;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Datapath benchmark: Gantry, HAProxy, nginx and direct on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the benchmark and prints the table and the RESULT line.
    Run(driver::RunArgs),
    /// The datapath child (started by `run`).
    Datapath(child::ChildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => driver::main(args),
        Cmd::Datapath(args) => {
            // The datapath's own runtime: current-thread, since the
            // driver pins it to one core.
            match gantry_datapath::runtime(None) {
                Ok(rt) => rt.block_on(child::run(args)),
                Err(source) => Err(error::BenchError::Io {
                    what: "start the runtime".into(),
                    source,
                }),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            eprintln!("gantry-dpbench: {msg}");
            ExitCode::FAILURE
        }
    }
}
