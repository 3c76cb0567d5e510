//! Flags of the controller's subcommands of the `gantry` binary
//! (`controller`, `plan`); the binary crate assembles the full command line.
//! Every flag has a `GANTRY_*` environment fallback.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Plan output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable.
    #[default]
    Text,
    /// JSON array of entries.
    Json,
}

/// Flags shared by the subcommands that talk to a cluster.
#[derive(Clone, Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "GANTRY_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Identifies this cluster in ownership tags of cloud resources.
    #[arg(long, env = "GANTRY_CLUSTER_ID", default_value = "gantry")]
    pub cluster_id: String,
    /// LoadBalancerClass for Services without `spec.loadBalancerClass`.
    #[arg(long, env = "GANTRY_DEFAULT_CLASS")]
    pub default_class: Option<String>,
}

/// `gantry controller`.
#[derive(Clone, Debug, Args)]
pub struct ControllerArgs {
    /// Cluster access.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "GANTRY_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a Lease (disable only with a single replica).
    #[arg(long, env = "GANTRY_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "GANTRY_LEASE_NAME", default_value = "gantry-controller")]
    pub lease_name: String,
    /// Namespace of the leader Lease.
    #[arg(long, env = "GANTRY_LEASE_NAMESPACE", default_value = "gantry-system")]
    pub lease_namespace: String,
    /// Log format.
    #[arg(long, env = "GANTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How often each balancer is checked for drift (e.g. `10m`, `30s`).
    #[arg(long, env = "GANTRY_RESYNC", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
    /// How often orphaned balancers are collected.
    #[arg(long, env = "GANTRY_GC_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub gc_interval: Duration,
    /// Most reconciles of one kind (Service, Ingress) running at once.
    #[arg(long, env = "GANTRY_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Limit for every provider call.
    #[arg(long, env = "GANTRY_PROVIDER_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub provider_timeout: Duration,
}

/// `gantry plan`.
#[derive(Clone, Debug, Args)]
pub struct PlanArgs {
    /// Cluster access.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Only this namespace.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

/// Parse `90s`, `10m`, `1h`, `500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[derive(Debug, clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ControllerArgs,
    }

    #[test]
    fn controller_flags_are_consistent_and_defaults_hold() {
        Wrapper::command().debug_assert();
        let args =
            <Wrapper as clap::Parser>::try_parse_from(["controller", "--leader-elect", "false"])
                .expect("parses")
                .args;
        assert!(!args.leader_elect);
        assert_eq!(args.cluster.cluster_id, "gantry");
        assert_eq!(args.lease_namespace, "gantry-system");
        assert_eq!(args.resync, Duration::from_secs(600));
        assert_eq!(args.gc_interval, Duration::from_secs(300));
    }
}
