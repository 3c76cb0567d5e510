//! The `gantry` binary: a thin shell over the library.

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use gantry_controller::{
    BuiltinFactory, ControllerConfig, GantryController,
    cli::{Cli, ClusterArgs, Command, ControllerArgs, LogFormat, OutputFormat, PlanArgs},
    error::Error,
    leader::LeaderConfig,
    plan,
};
use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn client(args: &ClusterArgs) -> Result<Client, Error> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| Error::ClientConfig(Box::new(e)))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::ClientConfig(Box::new(e)))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::ClientConfig(Box::new(e)))?,
    };
    Client::try_from(config).map_err(|e| Error::ClientConfig(Box::new(e)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn controller(args: ControllerArgs) -> Result<(), Error> {
    init_logs(args.log_format);
    let client = client(&args.cluster).await?;
    let identity = format!(
        "{}-{}",
        std::env::var("POD_NAME").unwrap_or_else(|_| "gantry".into()),
        uuid::Uuid::new_v4().simple()
    );
    let config = ControllerConfig {
        cluster_id: args.cluster.cluster_id,
        default_class: args.cluster.default_class,
        resync: args.resync,
        gc_interval: args.gc_interval,
        provider_timeout: args.provider_timeout,
        leader: args
            .leader_elect
            .then(|| LeaderConfig::new(args.lease_name, args.lease_namespace, identity)),
        ..ControllerConfig::default()
    };
    GantryController::new(client, config, Arc::new(BuiltinFactory))
        .with_metrics_addr(args.metrics_addr)
        .run(shutdown_signal())
        .await
}

async fn plan_cmd(args: PlanArgs) -> Result<(), Error> {
    init_logs(LogFormat::Text);
    let client = client(&args.cluster).await?;
    let opts = plan::PlanOptions {
        namespace: args.namespace,
        default_class: args.cluster.default_class,
        cluster_id: args.cluster.cluster_id,
    };
    let entries = plan::plan(client, &opts, Arc::new(BuiltinFactory)).await?;
    match args.output {
        OutputFormat::Text => print!("{}", plan::render_text(&entries)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&entries).map_err(Error::SerializePatch)?
        ),
    }
    Ok(())
}

fn crd() -> Result<(), Error> {
    let yaml = gantry_controller::crd::yaml().map_err(Error::RenderCrd)?;
    print!("{yaml}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller(args) => controller(args).await,
        Command::Plan(args) => plan_cmd(args).await,
        Command::Crd => crd(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gantry: {error}");
            ExitCode::FAILURE
        }
    }
}
