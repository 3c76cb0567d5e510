//! `gantry dev`: the whole of Gantry on one machine, on loopback only.
//!
//! It starts the Kubernetes API emulator, simulated nodes that play the
//! kubelet's and kube-proxy's parts (each node answers on every Service's
//! node port), the controller with the local provider, and the datapath that
//! carries traffic from each external address to the nodes' node ports. Then
//! it applies the article's example (a small HTTP backend behind Service
//! `service-test` of type LoadBalancer), prints the Service as
//! `kubectl get svc` would, and the reply fetched through its external IP.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use gantry_controller::{ControllerConfig, GantryController};
use gantry_datapath::DatapathOptions;
use gantry_devcluster::{DevCluster, DevClusterOptions};
use gantry_model::{LoadBalancerClass, local::LocalLoadBalancer};
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Service, networking::v1::IngressClass},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use kube_sim::{KubeSim, SimOptions};

use crate::factory::GantryFactory;

/// Field manager of the objects `gantry dev` applies.
const MANAGER: &str = "gantry-dev";
/// Cluster id of the dev environment.
const CLUSTER_ID: &str = "gantry-dev";
/// The class every Service without one gets.
const CLASS: &str = "local";

/// `gantry dev` flags.
#[derive(Clone, Debug, Args)]
pub struct DevArgs {
    /// Number of simulated nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Where to write the kubeconfig for kubectl and helm.
    #[arg(long, default_value = "gantry-dev.kubeconfig")]
    pub kubeconfig: PathBuf,
    /// Address of the Kubernetes API emulator.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// External addresses handed out by the `local` class (loopback only).
    #[arg(long, default_value = "127.0.100.1-127.0.100.254")]
    pub pool: String,
    /// Do not apply the article's example.
    #[arg(long)]
    pub no_sample: bool,
    /// Exit after showing the example instead of serving until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// How long to wait for the example's external IP and reply.
    #[arg(long, default_value = "60s", value_parser = humantime_secs)]
    pub timeout: Duration,
}

fn humantime_secs(s: &str) -> Result<Duration, String> {
    let digits = s.trim_end_matches('s');
    digits
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{s:?} is not a number of seconds such as 60s"))
}

/// Why `gantry dev` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The API emulator did not start.
    #[error("starting the Kubernetes API emulator: {0}")]
    Sim(#[source] kube_sim::SimError),
    /// The kubeconfig could not be written.
    #[error("writing {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An API call of the set-up failed.
    #[error("{step}: {source}")]
    Api {
        /// Which step.
        step: &'static str,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The simulated nodes did not start.
    #[error("starting the simulated nodes: {0}")]
    Nodes(#[source] gantry_devcluster::DevError),
    /// The example did not get an address in time.
    #[error(
        "service-test got no external IP within {0:?}; see the Events: kubectl describe svc service-test"
    )]
    NoAddress(Duration),
    /// The example did not answer through its address.
    #[error("no reply through http://{addr}/ within {timeout:?}: {last}")]
    NoReply {
        /// Where it was asked.
        addr: SocketAddr,
        /// Limit.
        timeout: Duration,
        /// Last failure.
        last: String,
    },
    /// A component stopped with an error.
    #[error("{component} stopped: {message}")]
    Component {
        /// Which.
        component: &'static str,
        /// Its error.
        message: String,
    },
}

/// Run the dev environment until `shutdown` (or, with `--once`, until the
/// example has answered).
pub async fn run(args: DevArgs, shutdown: impl Future<Output = ()>) -> Result<(), DevError> {
    let started = Instant::now();
    let sim = KubeSim::start_on(
        SimOptions {
            tls: true,
            ..SimOptions::default()
        },
        args.listen,
    )
    .await
    .map_err(DevError::Sim)?;
    let kubeconfig = std::path::absolute(&args.kubeconfig).unwrap_or(args.kubeconfig.clone());
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml()).map_err(|source| DevError::Kubeconfig {
        path: kubeconfig.clone(),
        source,
    })?;
    println!("Kubernetes API emulator listening on {}", sim.url());
    let client = sim.client();
    let result = serve(&args, &client, &kubeconfig, started, shutdown).await;
    sim.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
    result
}

async fn serve(
    args: &DevArgs,
    client: &Client,
    kubeconfig: &std::path::Path,
    started: Instant,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    install_crds(client).await?;
    install_class(client, &args.pool).await?;
    let cluster = DevCluster::start(
        client.clone(),
        DevClusterOptions {
            nodes: args.nodes,
            ..DevClusterOptions::default()
        },
    )
    .await
    .map_err(DevError::Nodes)?;
    for node in cluster.nodes() {
        println!("node {} at {}", node.name, node.address);
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let datapath = tokio::spawn(gantry_datapath::run(
        client.clone(),
        DatapathOptions::new("dev-datapath"),
        stopped(),
    ));
    let config = ControllerConfig {
        cluster_id: CLUSTER_ID.into(),
        default_class: Some(CLASS.into()),
        ..ControllerConfig::default()
    };
    let factory = Arc::new(GantryFactory::new(client.clone(), CLUSTER_ID));
    let controller =
        tokio::spawn(GantryController::new(client.clone(), config, factory).run(stopped()));

    let outcome = async {
        if !args.no_sample {
            sample(client, args.timeout, started).await?;
        }
        println!();
        println!("export KUBECONFIG={}", kubeconfig.display());
        println!("kubectl get svc,ingress -A    # what Gantry serves");
        if args.once {
            return Ok(());
        }
        println!("Serving until Ctrl-C.");
        tokio::select! {
            () = shutdown => Ok(()),
            r = watch_component("controller", &controller) => r,
            r = watch_component("datapath", &datapath) => r,
        }
    }
    .await;

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), datapath).await;
    cluster.shutdown().await;
    outcome
}

/// Resolve when a background component has stopped, as an error.
async fn watch_component<E: std::fmt::Display>(
    component: &'static str,
    handle: &tokio::task::JoinHandle<Result<(), E>>,
) -> Result<(), DevError> {
    while !handle.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(DevError::Component {
        component,
        message: "exited".into(),
    })
}

async fn install_crds(client: &Client) -> Result<(), DevError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [LoadBalancerClass::crd(), LocalLoadBalancer::crd()] {
        api.create(&PostParams::default(), &crd)
            .await
            .map_err(|source| DevError::Api {
                step: "installing CRDs",
                source,
            })?;
    }
    Ok(())
}

async fn install_class(client: &Client, pool: &str) -> Result<(), DevError> {
    let class = serde_json::json!({
        "apiVersion": "gantry.dev/v1alpha1",
        "kind": "LoadBalancerClass",
        "metadata": { "name": CLASS },
        "spec": {
            "provider": "local",
            "default": true,
            "local": { "pools": [pool], "mode": "l2" },
        },
    });
    let api: Api<LoadBalancerClass> = Api::all(client.clone());
    api.patch(CLASS, &PatchParams::apply(MANAGER), &Patch::Apply(&class))
        .await
        .map_err(|source| DevError::Api {
            step: "creating LoadBalancerClass local",
            source,
        })?;
    let ingress_class = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": "gantry",
            "annotations": { "ingressclass.kubernetes.io/is-default-class": "true" },
        },
        "spec": {
            "controller": gantry_model::INGRESS_CONTROLLER_NAME,
            "parameters": { "apiGroup": "gantry.dev", "kind": "LoadBalancerClass", "name": CLASS },
        },
    });
    let api: Api<IngressClass> = Api::all(client.clone());
    api.patch(
        "gantry",
        &PatchParams::apply(MANAGER),
        &Patch::Apply(&ingress_class),
    )
    .await
    .map_err(|source| DevError::Api {
        step: "creating IngressClass gantry",
        source,
    })?;
    Ok(())
}

/// The article's example: an HTTP backend and Service `service-test`.
async fn sample(client: &Client, timeout: Duration, started: Instant) -> Result<(), DevError> {
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "service-test", "namespace": "default" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "service-test" } },
            "template": {
                "metadata": { "labels": { "app": "service-test" } },
                "spec": { "containers": [{
                    "name": "echo",
                    "image": "gantry.dev/echo",
                    "ports": [{ "name": "http", "containerPort": 8080 }],
                }]},
            },
        },
    });
    let service = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": "service-test", "namespace": "default" },
        "spec": {
            "type": "LoadBalancer",
            "selector": { "app": "service-test" },
            "ports": [{ "name": "http", "port": 80, "targetPort": "http" }],
        },
    });
    let params = PatchParams::apply(MANAGER);
    Api::<Deployment>::namespaced(client.clone(), "default")
        .patch("service-test", &params, &Patch::Apply(&deployment))
        .await
        .map_err(|source| DevError::Api {
            step: "applying Deployment service-test",
            source,
        })?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .patch("service-test", &params, &Patch::Apply(&service))
        .await
        .map_err(|source| DevError::Api {
            step: "applying Service service-test",
            source,
        })?;
    println!("applied Deployment and Service service-test (type LoadBalancer, port 80)");

    let deadline = started + timeout;
    let (svc, ip) = loop {
        let svc = services
            .get("service-test")
            .await
            .map_err(|source| DevError::Api {
                step: "reading Service service-test",
                source,
            })?;
        if let Some(ip) = external_ip(&svc) {
            break (svc, ip);
        }
        if Instant::now() > deadline {
            return Err(DevError::NoAddress(timeout));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!();
    print!("{}", crate::table::services(&[svc]));
    println!();
    let addr = SocketAddr::new(ip, 80);
    let reply = crate::fetch::get_until(addr, "service-test", deadline)
        .await
        .map_err(|last| DevError::NoReply {
            addr,
            timeout,
            last,
        })?;
    println!("$ curl http://{addr}/");
    println!("{}", reply.trim_end());
    println!(
        "(external IP and reply after {:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn external_ip(svc: &Service) -> Option<IpAddr> {
    svc.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .iter()
        .find_map(|i| i.ip.as_deref()?.parse().ok())
}
