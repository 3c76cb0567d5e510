//! A Google Cloud environment for end-to-end scenarios: the API emulator,
//! the Compute Engine emulator (`gce-sim`) and `gantry controller`, each as
//! its own process, with instances in two zones of one region and the
//! Nodes that stand for them (`spec.providerID` `gce://PROJECT/ZONE/NAME`).
//!
//! Nothing answers on the nodes: the suite checks what the controller builds
//! in the emulator and what it writes to the cluster, not traffic. Every
//! call reaches loopback only.

use std::{collections::BTreeMap, ffi::OsStr, process::Command, time::Duration};

use k8s_openapi::api::core::v1::Node;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{Cluster, HarnessError, Process, Scratch, bin_dir, ok, wait_for};

mod sim;

pub use sim::{DESCRIPTION_PREFIX, LABEL_MANAGED, collection, http_call, is_gantry, tags};

/// Cluster id the controller runs with.
pub const CLUSTER_ID: &str = "e2e";
/// Project the classes and instances live in.
pub const PROJECT: &str = "gantry-e2e";
/// Region of the Service balancers.
pub const REGION: &str = "us-central1";
/// The two zones nodes are spread over.
pub const ZONES: [&str; 2] = ["us-central1-a", "us-central1-b"];
/// The default class (alias `gce`).
pub const CLASS_A: &str = "gcp-a";
/// A second class with the same settings, for class switches.
pub const CLASS_B: &str = "gcp-b";

/// How an environment is started.
#[derive(Clone, Debug)]
pub struct GcpOptions {
    /// Milliseconds an emulator Operation takes from PENDING to DONE.
    pub operation_delay_ms: u64,
    /// The controller's `--resync`.
    pub resync: String,
    /// Nodes to start with, as `(name, zone)`.
    pub nodes: Vec<(String, String)>,
}

impl Default for GcpOptions {
    fn default() -> Self {
        Self {
            operation_delay_ms: 50,
            resync: "10m".into(),
            nodes: vec![
                ("node-a1".into(), ZONES[0].into()),
                ("node-a2".into(), ZONES[0].into()),
                ("node-b1".into(), ZONES[1].into()),
            ],
        }
    }
}

/// One scenario's environment.
pub struct GcpEnv {
    /// The API emulator process and kubectl access.
    pub cluster: Cluster,
    /// Runtime for async helpers.
    pub rt: tokio::runtime::Runtime,
    /// Client for the API emulator.
    pub client: kube::Client,
    /// The Compute Engine emulator.
    pub sim: Process,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub sim_url: String,
    /// `gantry controller`, when running.
    pub controller: Option<Process>,
    options: GcpOptions,
    controller_runs: u32,
    // Holds the emulator's log; dropped last.
    _scratch: Scratch,
}

impl std::fmt::Debug for GcpEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpEnv")
            .field("sim_url", &self.sim_url)
            .finish_non_exhaustive()
    }
}

impl GcpEnv {
    /// Start everything: both emulators, CRDs, the two gcp classes,
    /// instances and their Nodes, and the controller.
    pub fn start(options: GcpOptions) -> Result<Self, HarnessError> {
        let scratch = Scratch::new("gce-sim")?;
        let delay = options.operation_delay_ms.to_string();
        let (sim, line) = Process::start(
            "gce-sim",
            &bin_dir()?.join("gce-sim"),
            &[
                OsStr::new("--listen"),
                OsStr::new("127.0.0.1:0"),
                OsStr::new("--operation-delay-ms"),
                OsStr::new(&delay),
            ],
            scratch.path().join("gce-sim.log"),
            "listening on ",
            Duration::from_secs(20),
        )?;
        let sim_url = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string();

        let cluster = Cluster::start(true)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let kubeconfig = cluster.kubeconfig.clone();
        let client = rt.block_on(async move {
            let kc = kube::config::Kubeconfig::read_from(&kubeconfig).map_err(io)?;
            let config = kube::Config::from_custom_kubeconfig(
                kc,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(io)?;
            kube::Client::try_from(config).map_err(io)
        })?;

        let crds = Command::new(bin_dir()?.join("gantry"))
            .arg("crd")
            .output()?;
        let crd_file = cluster.scratch().join("crds.yaml");
        std::fs::write(&crd_file, &crds.stdout)?;
        ok(cluster.kubectl([OsStr::new("apply"), OsStr::new("-f"), crd_file.as_os_str()])?);

        let env = Self {
            cluster,
            rt,
            client,
            sim,
            sim_url,
            controller: None,
            options,
            controller_runs: 0,
            _scratch: scratch,
        };
        env.apply("classes", &env.classes());
        for (name, zone) in env.options.nodes.clone() {
            env.add_node(&name, &zone);
        }
        let mut env = env;
        env.start_controller()?;
        Ok(env)
    }

    /// The two gcp classes, pointing at the emulator.
    fn classes(&self) -> String {
        let class = |name: &str, default: bool, aliases: &str| {
            format!(
                "apiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: {name}\nspec:\n  provider: gcp\n  default: {default}\n  aliases: [{aliases}]\n  gcp:\n    project: {PROJECT}\n    region: {REGION}\n    endpoint: \"{}\"\n    network: default\n    scheme: internet-facing\n",
                self.sim_url
            )
        };
        format!(
            "{}---\n{}",
            class(CLASS_A, true, "gce"),
            class(CLASS_B, false, "")
        )
    }

    /// Start `gantry controller` (again) and wait until it serves health.
    pub fn start_controller(&mut self) -> Result<(), HarnessError> {
        self.controller_runs += 1;
        let log = self
            .cluster
            .scratch()
            .join(format!("controller-{}.log", self.controller_runs));
        // `Process::start` takes no environment; `env` sets the anonymous
        // credentials switch and then execs the controller in place, so the
        // process killed later is the controller itself.
        let gantry = bin_dir()?.join("gantry");
        let (process, _) = Process::start(
            "gantry controller",
            std::path::Path::new("env"),
            &[
                OsStr::new("GANTRY_GCP_ANONYMOUS_CREDENTIALS=1"),
                gantry.as_os_str(),
                OsStr::new("controller"),
                OsStr::new("--kubeconfig"),
                self.cluster.kubeconfig.as_os_str(),
                OsStr::new("--cluster-id"),
                OsStr::new(CLUSTER_ID),
                OsStr::new("--leader-elect"),
                OsStr::new("false"),
                OsStr::new("--metrics-addr"),
                OsStr::new("127.0.0.1:0"),
                OsStr::new("--resync"),
                OsStr::new(&self.options.resync),
                OsStr::new("--gc-interval"),
                OsStr::new("10m"),
            ],
            log,
            "Serving metrics and health",
            Duration::from_secs(20),
        )?;
        self.controller = Some(process);
        Ok(())
    }

    /// SIGKILL the controller, as a crash would.
    pub fn kill_controller(&mut self) {
        if let Some(mut p) = self.controller.take() {
            p.kill();
        }
    }

    /// The controller's output so far.
    pub fn controller_log(&self) -> String {
        self.controller
            .as_ref()
            .map(Process::output)
            .unwrap_or_default()
    }

    /// The controller's `/metrics` text.
    pub fn metrics(&self) -> String {
        let line = self
            .controller
            .as_ref()
            .and_then(|p| p.find_line("Serving metrics and health"))
            .expect("controller running");
        // The field may be wrapped in colour escapes: take the loopback
        // address and the port digits after it.
        let rest = line
            .split("127.0.0.1:")
            .nth(1)
            .expect("a loopback address in the metrics line");
        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let bound = format!("127.0.0.1:{port}");
        let (status, body) = self
            .rt
            .block_on(http_call(&bound, "GET", "/metrics", None))
            .expect("metrics endpoint");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The sum of the `gantry_reconcile_runs_total` counters for `kind`.
    pub fn reconcile_runs(&self, kind: &str) -> u64 {
        let prefix = format!("gantry_reconcile_runs_total{{kind=\"{kind}\"}} ");
        self.metrics()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum()
    }

    /// Create instance `name` in `zone` in the Compute Engine emulator and
    /// the Ready Node that stands for it.
    pub fn add_node(&self, name: &str, zone: &str) {
        self.add_instance(name, zone);
        self.register_node(name, zone);
    }

    /// Create instance `name` in `zone` and wait for its Operation, as a
    /// cloud's instance is running before its kubelet registers.
    pub fn add_instance(&self, name: &str, zone: &str) {
        let (status, op) = self.sim_call(
            "POST",
            &format!("/compute/v1/projects/{PROJECT}/zones/{zone}/instances"),
            Some(json!({
                "name": name,
                "machineType": format!("zones/{zone}/machineTypes/e2-small"),
                "networkInterfaces": [{"network": "global/networks/default", "networkIP": node_ip(name)}],
            })),
        );
        assert_eq!(status, 200, "instance insert: {op}");
        let link = op["selfLink"].as_str().expect("Operation selfLink");
        let path = &link[link.find("/compute/v1/").expect("API path")..];
        let (status, done) = self.sim_call("POST", &format!("{path}/wait"), None);
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["status"], "DONE", "{done}");
        assert!(done["error"].is_null(), "{done}");
    }

    /// Create the Ready Node for instance `name` in `zone`
    /// (`spec.providerID` `gce://PROJECT/ZONE/NAME`).
    pub fn register_node(&self, name: &str, zone: &str) {
        let ip = node_ip(name);
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": zone,
                    "topology.kubernetes.io/region": REGION,
                },
            },
            "spec": {"providerID": format!("gce://{PROJECT}/{zone}/{name}")},
        }))
        .expect("Node");
        let status = json!({"status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }],
        }});
        let api: Api<Node> = Api::all(self.client.clone());
        let name = name.to_string();
        self.rt
            .block_on(async move {
                api.create(&PostParams::default(), &node).await?;
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
            })
            .expect("Node created and Ready");
    }

    /// Delete the Node `name` (the instance stays, as after a node is
    /// drained from the cluster).
    pub fn remove_node(&self, name: &str) {
        let api: Api<Node> = Api::all(self.client.clone());
        self.rt
            .block_on(api.delete(name, &DeleteParams::default()))
            .expect("Node deleted");
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

    /// The first ingress IP in the status of a Service or Ingress.
    pub fn status_ip(&self, kind: &str, name: &str) -> Option<String> {
        self.get(kind, name)?["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .map(str::to_string)
    }

    /// Wait for the external IP of a Service or Ingress.
    pub fn wait_ip(&self, kind: &str, name: &str, timeout: Duration) -> String {
        wait_for(&format!("external IP of {kind} {name}"), timeout, || {
            self.status_ip(kind, name)
        })
    }

    /// One call to the Compute Engine emulator; status and JSON body
    /// (`Null` when empty).
    pub fn sim_call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let authority = self.sim_url.trim_start_matches("http://").to_string();
        let (status, text) = self
            .rt
            .block_on(http_call(&authority, method, path, body))
            .expect("gce-sim answers");
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("gce-sim JSON")
        };
        (status, value)
    }

    /// Every resource the Compute Engine emulator holds (not a counted
    /// API call).
    pub fn resources(&self) -> Vec<Value> {
        let (status, body) = self.sim_call("GET", "/_sim/resources", None);
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// The resources that name Gantry as their owner (in labels or
    /// description), by collection (`addresses`, `forwardingRules`, ...).
    pub fn gantry_resources(&self) -> BTreeMap<String, Vec<Value>> {
        let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for r in self.resources() {
            if is_gantry(&r) {
                out.entry(collection(&r)).or_default().push(r);
            }
        }
        out
    }

    /// `METHOD path` of every Compute Engine call since the last
    /// [`GcpEnv::clear_calls`].
    pub fn calls(&self) -> Vec<String> {
        let (status, body) = self.sim_call("GET", "/_sim/calls", None);
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Start counting calls afresh.
    pub fn clear_calls(&self) {
        let (status, body) = self.sim_call("DELETE", "/_sim/calls", None);
        assert_eq!(status, 200, "{body}");
    }

    /// Add fault rules (one rule or a list, in gce-sim's format).
    pub fn fault(&self, rules: Value) {
        let (status, body) = self.sim_call("POST", "/_sim/faults", Some(rules));
        assert_eq!(status, 200, "{body}");
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        let (status, body) = self.sim_call("DELETE", "/_sim/faults", None);
        assert_eq!(status, 200, "{body}");
    }
}

impl Drop for GcpEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- controller ----\n{}", self.controller_log());
        }
    }
}

/// A loopback address for a node (never contacted; the emulator and the
/// Node agree on it).
fn node_ip(name: &str) -> String {
    let n: u32 = name.bytes().map(u32::from).sum();
    format!("127.60.{}.{}", (n / 250) % 250, n % 250 + 1)
}

fn io<E: std::error::Error + Send + Sync + 'static>(e: E) -> HarnessError {
    HarnessError::Io(std::io::Error::other(e))
}
