//! The cluster-facing subcommands: `controller`, `plan`, `crd` and
//! `datapath`, each a thin shell over its library.

use std::{net::IpAddr, net::SocketAddr, sync::Arc};

use clap::Args;
use gantry_controller::{
    ControllerConfig, GantryController,
    cli::{ClusterArgs, ControllerArgs, LogFormat, OutputFormat, PlanArgs},
    error::Error,
    leader::LeaderConfig,
    plan,
};
use gantry_datapath::{AnnounceOptions, Announcing, BindPolicy, DatapathOptions};

use crate::factory::GantryFactory;
use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A client for the cluster the flags name.
pub async fn client(args: &ClusterArgs) -> Result<Client, Error> {
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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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

/// `gantry controller`.
pub async fn controller(args: ControllerArgs) -> Result<(), Error> {
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
        concurrency: args.concurrency,
        leader: args
            .leader_elect
            .then(|| LeaderConfig::new(args.lease_name, args.lease_namespace, identity)),
        ..ControllerConfig::default()
    };
    let factory = Arc::new(GantryFactory::new(
        client.clone(),
        config.cluster_id.clone(),
    ));
    GantryController::new(client, config, factory)
        .with_metrics_addr(args.metrics_addr)
        .run(shutdown_signal())
        .await
}

/// `gantry plan`.
pub async fn plan_cmd(args: PlanArgs) -> Result<(), Error> {
    init_logs(LogFormat::Text);
    let client = client(&args.cluster).await?;
    let opts = plan::PlanOptions {
        namespace: args.namespace,
        default_class: args.cluster.default_class,
        cluster_id: args.cluster.cluster_id,
    };
    let factory = Arc::new(GantryFactory::new(client.clone(), opts.cluster_id.clone()));
    let entries = plan::plan(client, &opts, factory).await?;
    match args.output {
        OutputFormat::Text => print!("{}", plan::render_text(&entries)),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&entries).map_err(Error::SerializePatch)?
        ),
    }
    Ok(())
}

/// `gantry crd`.
pub fn crd() -> Result<(), Error> {
    let yaml = gantry_controller::crd::yaml().map_err(Error::RenderCrd)?;
    print!("{yaml}");
    Ok(())
}

/// `gantry datapath` flags.
#[derive(Clone, Debug, Args)]
pub struct DatapathArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "GANTRY_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// This node's name: the key of this instance's status entries.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Addresses this node owns (`nodeAddresses` mode); without any, every
    /// address of every balancer is bound (one datapath for all, as in dev).
    #[arg(
        long = "address",
        env = "GANTRY_DATAPATH_ADDRESSES",
        value_delimiter = ','
    )]
    pub addresses: Vec<IpAddr>,
    /// Address of /metrics.
    #[arg(long, env = "GANTRY_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "GANTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Worker threads (default: one per core this process may use; with
    /// one, a single-threaded runtime).
    #[arg(long, env = "GANTRY_DATAPATH_THREADS")]
    pub threads: Option<std::num::NonZeroUsize>,
    /// Where `l2` addresses are announced from: this process, or a separate
    /// `gantry announce` beside it (this process then needs neither
    /// NET_ADMIN nor NET_RAW).
    #[arg(long, env = "GANTRY_DATAPATH_ANNOUNCER", value_enum, default_value_t = AnnouncerArg::InProcess)]
    pub announcer: AnnouncerArg,
}

/// `--announcer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AnnouncerArg {
    /// Announce from the datapath process.
    InProcess,
    /// A separate `gantry announce` announces.
    Separate,
}

/// Arguments of `gantry announce`.
#[derive(Debug, clap::Args)]
pub struct AnnounceArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "GANTRY_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// This node's name, as the datapath beside this process has it.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// The metrics address of the datapath beside this process: addresses
    /// are held only while it answers `/healthz` there.
    #[arg(long, env = "GANTRY_DATAPATH_HEALTH")]
    pub datapath: SocketAddr,
    /// Log format.
    #[arg(long, env = "GANTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The client of a node-local program (datapath, announcer): logs set up,
/// no cluster id or class of its own.
async fn node_client(
    kubeconfig: Option<std::path::PathBuf>,
    log_format: LogFormat,
) -> Result<Client, String> {
    init_logs(log_format);
    let cluster = ClusterArgs {
        kubeconfig,
        cluster_id: String::new(),
        default_class: None,
    };
    client(&cluster).await.map_err(|e| e.to_string())
}

/// `gantry datapath`.
pub async fn datapath(args: DatapathArgs) -> Result<(), String> {
    let client = node_client(args.kubeconfig, args.log_format).await?;
    let mut opts = DatapathOptions::new(args.node_name);
    if !args.addresses.is_empty() {
        opts.bind = BindPolicy::OwnAddresses(args.addresses);
    }
    opts.metrics_addr = args.metrics_addr;
    opts.announcing = match args.announcer {
        AnnouncerArg::InProcess => Announcing::InProcess,
        AnnouncerArg::Separate => Announcing::Separate,
    };
    gantry_datapath::run(client, opts, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// `gantry announce`.
pub async fn announce(args: AnnounceArgs) -> Result<(), String> {
    let client = node_client(args.kubeconfig, args.log_format).await?;
    let opts = AnnounceOptions {
        node_name: args.node_name,
        datapath: args.datapath,
    };
    gantry_datapath::announce(client, opts, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}
