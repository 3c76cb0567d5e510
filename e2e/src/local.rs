//! A bare-metal environment for end-to-end scenarios: the API emulator,
//! `gantry controller` and `gantry datapath` as their own processes (as they
//! run in a cluster), and simulated nodes that play kubelet and kube-proxy
//! (in the test process, since a real cluster's nodes are not Gantry's).
//!
//! Each environment takes a `slot` so that suites running in parallel use
//! distinct loopback addresses: nodes on 127.(20+slot).1.x, pods on
//! 127.(20+slot).2.x, class `pool-a` on 127.(20+slot).10.0/24 (the default)
//! and class `pool-b` on 127.(20+slot).11.0/24.

use std::{
    ffi::OsStr,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::Command,
    time::Duration,
};

use bytes::Bytes;
use gantry_devcluster::{DevCluster, DevClusterOptions};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::{Cluster, HarnessError, Process, bin_dir, ok, wait_for};

/// Cluster id the controller runs with.
pub const CLUSTER_ID: &str = "e2e";

/// One scenario's environment.
pub struct LocalEnv {
    /// The API emulator process and kubectl access.
    pub cluster: Cluster,
    /// Runtime for the simulated nodes and async helpers.
    pub rt: tokio::runtime::Runtime,
    /// Client for the emulator.
    pub client: kube::Client,
    /// The simulated nodes.
    pub nodes: Option<DevCluster>,
    /// `gantry controller`, when running.
    pub controller: Option<Process>,
    /// `gantry datapath`.
    pub datapath: Process,
    slot: u8,
    controller_runs: u32,
}

impl std::fmt::Debug for LocalEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEnv")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl LocalEnv {
    /// Start everything: emulator, CRDs, classes, nodes, datapath, controller.
    pub fn start(slot: u8) -> Result<Self, HarnessError> {
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

        let gantry = bin_dir()?.join("gantry");
        let crds = Command::new(&gantry).arg("crd").output()?;
        let crd_file = cluster.scratch().join("crds.yaml");
        std::fs::write(&crd_file, &crds.stdout)?;
        ok(cluster.kubectl([OsStr::new("apply"), OsStr::new("-f"), crd_file.as_os_str()])?);
        let second = 20 + slot;
        let classes = format!(
            "apiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: pool-a\nspec:\n  provider: local\n  default: true\n  local:\n    mode: l2\n    pools: [\"127.{second}.10.0/24\"]\n---\napiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: pool-b\nspec:\n  provider: local\n  local:\n    mode: l2\n    pools: [\"127.{second}.11.0/24\"]\n"
        );
        let class_file = cluster.scratch().join("classes.yaml");
        std::fs::write(&class_file, classes)?;
        ok(cluster.kubectl([
            OsStr::new("apply"),
            OsStr::new("-f"),
            class_file.as_os_str(),
        ])?);

        let node_client = client.clone();
        let nodes = rt
            .block_on(DevCluster::start(
                node_client,
                DevClusterOptions {
                    nodes: 3,
                    node_address_base: Ipv4Addr::new(127, second, 1, 1),
                    pod_address_base: Ipv4Addr::new(127, second, 2, 1),
                    heartbeat_interval: Duration::from_secs(2),
                    resync_interval: Duration::from_secs(2),
                    ..DevClusterOptions::default()
                },
            ))
            .map_err(io)?;

        let (datapath, _) = Process::start(
            "gantry datapath",
            &gantry,
            &[
                OsStr::new("datapath"),
                OsStr::new("--kubeconfig"),
                cluster.kubeconfig.as_os_str(),
                OsStr::new("--node-name"),
                OsStr::new("dp-1"),
            ],
            cluster.scratch().join("datapath.log"),
            "",
            Duration::from_secs(5),
        )?;
        let mut env = Self {
            cluster,
            rt,
            client,
            nodes: Some(nodes),
            controller: None,
            datapath,
            slot,
            controller_runs: 0,
        };
        env.start_controller()?;
        Ok(env)
    }

    /// Start `gantry controller` (again) and wait until it serves health.
    pub fn start_controller(&mut self) -> Result<(), HarnessError> {
        self.controller_runs += 1;
        let gantry = bin_dir()?.join("gantry");
        let log = self
            .cluster
            .scratch()
            .join(format!("controller-{}.log", self.controller_runs));
        let (process, _) = Process::start(
            "gantry controller",
            &gantry,
            &[
                OsStr::new("controller"),
                OsStr::new("--kubeconfig"),
                self.cluster.kubeconfig.as_os_str(),
                OsStr::new("--cluster-id"),
                OsStr::new(CLUSTER_ID),
                OsStr::new("--leader-elect"),
                OsStr::new("false"),
                OsStr::new("--metrics-addr"),
                OsStr::new("127.0.0.1:0"),
                OsStr::new("--gc-interval"),
                OsStr::new("5s"),
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

    /// The pool of class `pool-a` or `pool-b`: whether `ip` is in it.
    pub fn in_pool(&self, class: &str, ip: IpAddr) -> bool {
        let third = if class == "pool-a" { 10 } else { 11 };
        matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == [127, 20 + self.slot, third])
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

    /// The first ingress IP in a Service's status.
    pub fn service_ip(&self, name: &str) -> Option<IpAddr> {
        self.get("svc", name)?["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()?
            .parse()
            .ok()
    }

    /// Wait for a Service's external IP.
    pub fn wait_ip(&self, name: &str, timeout: Duration) -> IpAddr {
        wait_for(&format!("external IP of {name}"), timeout, || {
            self.service_ip(name)
        })
    }

    /// The `LocalLoadBalancer` objects.
    pub fn local_balancers(&self) -> Vec<Value> {
        let v: Value =
            serde_json::from_str(&self.kubectl(&["get", "localloadbalancers", "-o", "json"]))
                .expect("list JSON");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// HTTP GET `/` on `addr`; the response body on 2xx.
    pub fn http_get(&self, addr: SocketAddr) -> Result<String, String> {
        self.rt.block_on(http_get(addr))
    }

    /// Wait until `addr` answers with a body containing `needle`.
    pub fn wait_http(&self, addr: SocketAddr, needle: &str, timeout: Duration) -> String {
        wait_for(
            &format!("HTTP answer from {addr} containing {needle:?}"),
            timeout,
            || self.http_get(addr).ok().filter(|b| b.contains(needle)),
        )
    }

    /// Send a fault-injection command to the emulator.
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

    /// The controller's output so far.
    pub fn controller_log(&self) -> String {
        self.controller
            .as_ref()
            .map(Process::output)
            .unwrap_or_default()
    }
}

impl Drop for LocalEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- controller ----\n{}", self.controller_log());
            eprintln!("---- datapath ----\n{}", self.datapath.output());
        }
        if let Some(nodes) = self.nodes.take() {
            self.rt.block_on(nodes.shutdown());
        }
    }
}

fn io<E: std::error::Error + Send + Sync + 'static>(e: E) -> HarnessError {
    HarnessError::Io(std::io::Error::other(e))
}

/// HTTP GET `/` through hyper; the body on 2xx.
pub async fn http_get(addr: SocketAddr) -> Result<String, String> {
    let limit = Duration::from_secs(3);
    let stream = tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let request = hyper::Request::get("/")
        .header(hyper::header::HOST, "e2e")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(limit, sender.send_request(request))
        .await
        .map_err(|_| "no response".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
