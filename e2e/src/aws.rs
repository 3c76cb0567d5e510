//! An AWS environment for end-to-end scenarios: the API emulator,
//! `moto_server` and `gantry controller` as their own processes, a VPC with
//! tagged subnets and EC2 instances seeded into moto, Nodes whose
//! `spec.providerID` names those instances, and `aws` classes whose endpoint
//! is a counting, fault-injecting proxy in front of moto.

pub mod inventory;
pub mod moto;
pub mod proxy;

use std::{
    ffi::{OsStr, OsString},
    path::Path,
    process::Command,
    time::Duration,
};

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{
    Cluster, HarnessError, Process,
    aws::{
        moto::{Instance, Moto, TEST_KEY, World},
        proxy::Proxy,
    },
    bin_dir, ok,
};

/// Cluster id the controller runs with (and the subnets are tagged for).
pub const CLUSTER_ID: &str = "e2e";

/// Zones of the seeded subnets.
pub const ZONES: [&str; 2] = ["us-east-1a", "us-east-1b"];

/// Instances seeded per zone: Nodes come and go among them.
pub const PER_ZONE: usize = 3;

/// The `aws` class (the default one) and `aws-internal`, both pointed at
/// `endpoint`.
pub fn classes(endpoint: &str, aws_default: bool) -> String {
    format!(
        "apiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: aws\nspec:\n  provider: aws\n  default: {aws_default}\n  aws:\n    region: {region}\n    endpoint: {endpoint}\n---\napiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: aws-internal\nspec:\n  provider: aws\n  aws:\n    region: {region}\n    endpoint: {endpoint}\n    scheme: internal\n",
        region = moto::REGION
    )
}

/// Start `gantry controller` against `cluster` with test AWS credentials in
/// its environment (and no shared config files or instance metadata, so
/// nothing is looked up beyond loopback); waits until it serves health.
pub fn start_controller(
    cluster: &Cluster,
    log: &Path,
    resync: &str,
) -> Result<Process, HarnessError> {
    let gantry = bin_dir()?.join("gantry");
    // Empty files: no profile can add settings or credentials.
    let none = cluster.scratch().join("empty-aws-config");
    std::fs::write(&none, "")?;
    let var = |k: &str, v: &OsStr| {
        let mut s = OsString::from(format!("{k}="));
        s.push(v);
        s
    };
    let args: Vec<OsString> = vec![
        var("AWS_ACCESS_KEY_ID", OsStr::new(TEST_KEY)),
        var("AWS_SECRET_ACCESS_KEY", OsStr::new(TEST_KEY)),
        var("AWS_EC2_METADATA_DISABLED", OsStr::new("true")),
        var("AWS_CONFIG_FILE", none.as_os_str()),
        var("AWS_SHARED_CREDENTIALS_FILE", none.as_os_str()),
        gantry.into_os_string(),
        "controller".into(),
        "--kubeconfig".into(),
        cluster.kubeconfig.clone().into_os_string(),
        "--cluster-id".into(),
        CLUSTER_ID.into(),
        "--leader-elect".into(),
        "false".into(),
        "--metrics-addr".into(),
        "127.0.0.1:0".into(),
        "--gc-interval".into(),
        "5s".into(),
        "--resync".into(),
        resync.into(),
    ];
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    // `env` sets the variables and execs the controller in the same process,
    // so killing the child kills the controller.
    let (process, _) = Process::start(
        "gantry controller",
        Path::new("env"),
        &args,
        log.to_path_buf(),
        "Serving metrics and health",
        Duration::from_secs(20),
    )?;
    Ok(process)
}

/// One scenario's environment.
pub struct AwsEnv {
    /// The API emulator process and kubectl access.
    pub cluster: Cluster,
    /// Runtime for the proxy and async helpers.
    pub rt: tokio::runtime::Runtime,
    /// Client for the emulator.
    pub client: kube::Client,
    /// moto.
    pub moto: Moto,
    /// The proxy the classes talk through.
    pub proxy: Proxy,
    /// What was seeded into moto, and clients to read it.
    pub world: World,
    /// `gantry controller`, when running.
    pub controller: Option<Process>,
    resync: String,
    controller_runs: u32,
}

impl std::fmt::Debug for AwsEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsEnv")
            .field("moto", &self.moto.addr)
            .finish_non_exhaustive()
    }
}

/// A multi-threaded runtime for the harness's async parts.
pub fn runtime() -> Result<tokio::runtime::Runtime, HarnessError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Moto, the proxy in front of it and the seeded world, on `rt`.
pub fn start_cloud(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
) -> Result<(Moto, Proxy, World), HarnessError> {
    let moto = Moto::start(dir)?;
    let proxy = rt.block_on(Proxy::start(moto.addr))?;
    let world = rt.block_on(World::seed(&moto.endpoint(), CLUSTER_ID, &ZONES, PER_ZONE))?;
    Ok((moto, proxy, world))
}

/// Apply the output of `gantry crd` to `cluster`.
pub fn apply_crds(cluster: &Cluster) -> Result<(), HarnessError> {
    let crds = Command::new(bin_dir()?.join("gantry"))
        .arg("crd")
        .output()?;
    let file = cluster.scratch().join("crds.yaml");
    std::fs::write(&file, &crds.stdout)?;
    ok(cluster.kubectl([OsStr::new("apply"), OsStr::new("-f"), file.as_os_str()])?);
    Ok(())
}

impl AwsEnv {
    /// Start everything: emulator, CRDs, moto with its world, the proxy,
    /// classes `aws` (default) and `aws-internal`, one Ready Node per
    /// instance of `nodes`, and the controller resyncing every `resync`.
    pub fn start(nodes: usize, resync: &str) -> Result<Self, HarnessError> {
        let cluster = Cluster::start(true)?;
        let rt = runtime()?;
        let kubeconfig = cluster.kubeconfig.clone();
        let client = rt.block_on(async move {
            let kc = kube::config::Kubeconfig::read_from(&kubeconfig).map_err(io)?;
            let options = kube::config::KubeConfigOptions::default();
            let config = kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(io)?;
            kube::Client::try_from(config).map_err(io)
        })?;
        apply_crds(&cluster)?;
        let (moto, proxy, world) = start_cloud(&rt, cluster.scratch())?;
        let mut env = Self {
            cluster,
            rt,
            client,
            moto,
            proxy,
            world,
            controller: None,
            resync: resync.to_string(),
            controller_runs: 0,
        };
        env.apply("classes", &classes(&env.proxy.endpoint, true));
        for i in 0..nodes {
            env.add_node(i);
        }
        env.start_controller()?;
        Ok(env)
    }

    /// Start `gantry controller` (again).
    pub fn start_controller(&mut self) -> Result<(), HarnessError> {
        self.controller_runs += 1;
        let log = self
            .cluster
            .scratch()
            .join(format!("controller-{}.log", self.controller_runs));
        self.controller = Some(start_controller(&self.cluster, &log, &self.resync)?);
        Ok(())
    }

    /// SIGKILL the controller, as a crash would.
    pub fn kill_controller(&mut self) {
        if let Some(mut p) = self.controller.take() {
            p.kill();
        }
    }

    /// Node name for the `i`-th seeded instance.
    pub fn node_name(i: usize) -> String {
        format!("node-{}", i + 1)
    }

    /// The `i`-th seeded instance.
    pub fn instance(&self, i: usize) -> &Instance {
        &self.world.instances[i]
    }

    /// Register a Ready Node running on the `i`-th seeded instance.
    pub fn add_node(&self, i: usize) {
        let inst = self.instance(i).clone();
        let name = Self::node_name(i);
        let api: Api<Node> = Api::all(self.client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": inst.zone,
                },
            },
            "spec": {"providerID": inst.provider_id()},
        }))
        .expect("node object");
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": format!("127.60.0.{}", i + 1)}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        }});
        self.rt
            .block_on(async {
                api.create(&PostParams::default(), &node).await?;
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
            })
            .expect("register node");
    }

    /// Delete the Node of the `i`-th seeded instance.
    pub fn remove_node(&self, i: usize) {
        let api: Api<Node> = Api::all(self.client.clone());
        self.rt
            .block_on(api.delete(&Self::node_name(i), &DeleteParams::default()))
            .expect("delete node");
    }

    /// `kubectl apply` of a manifest text.
    pub fn apply(&self, name: &str, yaml: &str) {
        let file = self.cluster.scratch().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).expect("write manifest");
        ok(self
            .cluster
            .kubectl([OsStr::new("apply"), OsStr::new("-f"), file.as_os_str()])
            .expect("kubectl"));
    }

    /// `kubectl` with arguments; stdout of a successful run.
    pub fn kubectl(&self, args: &[&str]) -> String {
        ok(self.cluster.kubectl(args).expect("kubectl"))
    }

    /// An object as JSON, or `None` when it does not exist.
    pub fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self
            .cluster
            .kubectl(["get", kind, name, "-o", "json"])
            .expect("kubectl");
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("kubectl JSON"))
    }

    /// The first ingress hostname in the status of a Service or Ingress.
    pub fn hostname(&self, kind: &str, name: &str) -> Option<String> {
        self.get(kind, name)?["status"]["loadBalancer"]["ingress"][0]["hostname"]
            .as_str()
            .map(str::to_string)
    }

    /// Send a fault-injection command to the API emulator.
    pub fn fault(&self, command: Value) {
        let client = self.client.clone();
        self.rt
            .block_on(async move {
                let req = http::Request::post("/_sim/faults")
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&command).expect("json"))
                    .expect("request");
                client.request_text(req).await
            })
            .expect("fault endpoint");
    }

    /// Everything of Gantry's in moto.
    pub fn inventory(&self) -> inventory::Inventory {
        self.rt.block_on(self.world.inventory(CLUSTER_ID))
    }

    /// The controller's output so far.
    pub fn controller_log(&self) -> String {
        self.controller
            .as_ref()
            .map(Process::output)
            .unwrap_or_default()
    }
}

impl Drop for AwsEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- controller ----\n{}", self.controller_log());
        }
    }
}

fn io<E: std::error::Error + Send + Sync + 'static>(e: E) -> HarnessError {
    HarnessError::Io(std::io::Error::other(e))
}
