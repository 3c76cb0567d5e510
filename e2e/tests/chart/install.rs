//! `helm install` into the API emulator, then `gantry controller` and
//! `gantry datapath` run as processes with exactly the arguments and
//! environment the installed Deployment and DaemonSet give their containers;
//! simulated nodes play kubelet and kube-proxy, and real HTTP goes through
//! the address the chart's class handed out. An upgrade changes the class's
//! pool and the controller follows; uninstall leaves no Gantry object behind
//! (the CRDs stay, as Helm documents).

use std::{
    ffi::{OsStr, OsString},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::Path,
    time::Duration,
};

use gantry_devcluster::{DevCluster, DevClusterOptions, SimNode};
use gantry_e2e::{
    Cluster, Process, bin_dir,
    local::http_get,
    manifests::{echo, service},
    ok, testdata, wait_for,
};
use serde_json::Value;

use super::chart_dir;

const T: Duration = Duration::from_secs(40);
const NS: &str = "gantry-system";
const RELEASE: &str = "gantry";

fn json(out: String) -> Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn kubectl(c: &Cluster, args: &[&str]) -> String {
    ok(c.kubectl(args).expect("kubectl"))
}

/// The first ingress IP of a Service in `default`.
fn service_ip(c: &Cluster, name: &str) -> Option<IpAddr> {
    let out = c
        .kubectl(["get", "svc", name, "-o", "json"])
        .expect("kubectl");
    if !out.status.success() {
        return None;
    }
    let svc: Value = serde_json::from_slice(&out.stdout).ok()?;
    svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()?
        .parse()
        .ok()
}

fn in_net(ip: IpAddr, third: u8) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == [127, 32, third])
}

/// An echo Deployment (the simulated kubelet runs `gantry.dev/echo`) and its
/// LoadBalancer Service without a class.
fn web(name: &str) -> String {
    let http = "{name: http, port: 80, targetPort: http}";
    format!(
        "{}---\n{}",
        echo(name, 1, "{name: http, containerPort: 8080}"),
        service(name, "LoadBalancer", http)
    )
}

/// Wait until `ip:80` answers through the datapath with the echo pod's body.
fn wait_http(rt: &tokio::runtime::Runtime, ip: IpAddr, name: &str) -> String {
    let needle = format!("\"pod\":\"{name}-");
    wait_for(&format!("HTTP from {ip} by {name}"), T, || {
        rt.block_on(http_get(SocketAddr::new(ip, 80)))
            .ok()
            .filter(|b| b.contains(&needle))
    })
}

fn apply(c: &Cluster, name: &str, yaml: &str) {
    let file = c.scratch().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).expect("write manifest");
    ok(
        c.kubectl([OsStr::new("apply"), OsStr::new("-f"), file.as_os_str()])
            .expect("kubectl"),
    );
}

/// Start a program as the installed workload `kind/name` would run it: its
/// container's args and environment (literal values, and the downward API
/// fields a pod on `node` would get). Two things differ, both because this
/// is a process on the test host rather than a pod: the kubeconfig (a pod
/// uses its ServiceAccount token) and the metrics address (a pod binds its
/// own or its node's IP; here an ephemeral loopback port avoids clashes).
fn start_as_rendered(
    c: &Cluster,
    (kind, name, container): (&str, &str, &str),
    node: &SimNode,
    ready: &str,
    metrics_port: u16,
) -> Process {
    let workload = json(kubectl(c, &["-n", NS, "get", kind, name, "-o", "json"]));
    let container = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|x| x["name"] == container)
        .unwrap_or_else(|| panic!("{name} has no container {container}"));
    let name = &format!("{name}-{}", container["name"].as_str().expect("name"));
    let mut args: Vec<OsString> = Vec::new();
    for e in container["env"].as_array().expect("env") {
        let var = e["name"].as_str().expect("env name");
        let field = e["valueFrom"]["fieldRef"]["fieldPath"].as_str();
        let value = match (var, field) {
            // One node's ports, on loopback.
            ("GANTRY_METRICS_ADDR" | "GANTRY_DATAPATH_HEALTH", _) => {
                format!("127.0.0.1:{metrics_port}")
            }
            (_, Some("spec.nodeName")) => node.name.clone(),
            (_, Some("status.hostIP")) => node.address.to_string(),
            _ => e["value"]
                .as_str()
                .unwrap_or_else(|| panic!("env {var} of {name} is not understood: {e}"))
                .to_string(),
        };
        args.push(format!("{var}={value}").into());
    }
    args.push(bin_dir().expect("bin dir").join("gantry").into());
    for a in container["args"].as_array().expect("args") {
        args.push(a.as_str().expect("arg").into());
    }
    args.push("--kubeconfig".into());
    args.push(c.kubeconfig.clone().into());
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    // `env` sets the environment of the one child, as the kubelet would.
    let (process, _) = Process::start(
        name,
        Path::new("env"),
        &refs,
        c.scratch().join(format!("{name}.log")),
        ready,
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{name} starts: {e}"));
    process
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn client(rt: &tokio::runtime::Runtime, kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kubeconfig.to_path_buf();
    rt.block_on(async move {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        kube::Client::try_from(config).expect("client")
    })
}

fn names(c: &Cluster, args: &[&str]) -> Vec<String> {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend(["-o", "json"]);
    json(kubectl(c, &full))["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn install_provisions_upgrade_follows_uninstall_leaves_nothing() {
    let c = Cluster::start(true).expect("cluster");
    let chart = chart_dir();
    let chart = chart.to_str().expect("utf-8 path");
    let values = testdata().join("chart/values.yaml");
    let values = values.to_str().expect("utf-8 path");
    let upgrade = testdata().join("chart/upgrade.yaml");
    let upgrade = upgrade.to_str().expect("utf-8 path");

    let out = ok(c
        .helm([
            "install",
            RELEASE,
            chart,
            "--namespace",
            NS,
            "--create-namespace",
            "-f",
            values,
            "--timeout",
            "60s",
        ])
        .expect("helm"));
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("kubectl get svc hello --watch"),
        "NOTES: {out}"
    );
    let class = json(kubectl(
        &c,
        &["get", "loadbalancerclass", "lab", "-o", "json"],
    ));
    assert_eq!(class["spec"]["local"]["pools"][0], "127.32.10.0/24");
    let ic = json(kubectl(&c, &["get", "ingressclass", "lab", "-o", "json"]));
    assert_eq!(ic["spec"]["parameters"]["name"], "lab");
    assert_eq!(names(&c, &["-n", NS, "daemonset"]), ["gantry-datapath"]);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let nodes = rt
        .block_on(DevCluster::start(
            client(&rt, &c.kubeconfig),
            DevClusterOptions {
                nodes: 2,
                node_address_base: Ipv4Addr::new(127, 32, 1, 1),
                pod_address_base: Ipv4Addr::new(127, 32, 2, 1),
                heartbeat_interval: Duration::from_secs(2),
                resync_interval: Duration::from_secs(2),
                ..DevClusterOptions::default()
            },
        ))
        .expect("simulated nodes");
    let node = nodes.nodes().into_iter().next().expect("a node");
    let mut controller = start_as_rendered(
        &c,
        ("deployment", "gantry-controller", "controller"),
        &node,
        "Serving metrics and health",
        free_port(),
    );
    // One datapath, as the DaemonSet runs it on the first node; in l2 mode
    // it binds every address, so it serves the whole pool. The announcer
    // beside it probes its metrics port.
    let metrics = free_port();
    let ds = ("daemonset", "gantry-datapath", "datapath");
    let mut datapath = start_as_rendered(&c, ds, &node, "", metrics);
    let mut announcer = start_as_rendered(&c, (ds.0, ds.1, "announcer"), &node, "", metrics);

    // A class-less Service gets an address from the chart's default class.
    apply(&c, "web", &web("web"));
    let ip = wait_for("external IP of web", T, || service_ip(&c, "web"));
    assert!(in_net(ip, 10), "{ip} is not from the installed pool");
    wait_http(&rt, ip, "web");
    // The announcer container took the address's Lease for this node.
    let lease_name = format!("gantry-l2-{}", ip.to_string().replace('.', "-"));
    wait_for("the announcer holds the address", T, || {
        let leases = json(kubectl(
            &c,
            &[
                "get",
                "leases",
                "-A",
                "-l",
                "gantry.dev/l2-address",
                "-o",
                "json",
            ],
        ));
        leases["items"]
            .as_array()?
            .iter()
            .any(|l| {
                l["metadata"]["name"] == lease_name.as_str()
                    && l["spec"]["holderIdentity"] == node.name.as_str()
            })
            .then_some(())
    });
    // The controller took the Lease the chart's Role allows.
    let lease = json(kubectl(
        &c,
        &["-n", NS, "get", "lease", "gantry-controller", "-o", "json"],
    ));
    assert!(lease["spec"]["holderIdentity"].is_string(), "{lease}");

    // Upgrade: the class's pool moves; the object changes and a new Service
    // gets an address from the new pool.
    let out = ok(c
        .helm([
            "upgrade",
            RELEASE,
            chart,
            "--namespace",
            NS,
            "-f",
            values,
            "-f",
            upgrade,
        ])
        .expect("helm"));
    assert!(out.contains("REVISION: 2"), "{out}");
    let class = json(kubectl(
        &c,
        &["get", "loadbalancerclass", "lab", "-o", "json"],
    ));
    assert_eq!(
        class["spec"]["local"]["pools"],
        serde_json::json!(["127.32.11.0/24"])
    );
    apply(&c, "web2", &web("web2"));
    let ip2 = wait_for("external IP of web2", T, || service_ip(&c, "web2"));
    assert!(in_net(ip2, 11), "{ip2} is not from the upgraded pool");
    wait_http(&rt, ip2, "web2");

    // Delete the Services while the controller runs, so their balancers go.
    kubectl(
        &c,
        &[
            "delete",
            "svc",
            "web",
            "web2",
            "--wait=true",
            "--timeout=40s",
        ],
    );
    wait_for("LocalLoadBalancers removed", T, || {
        names(&c, &["localloadbalancers"]).is_empty().then_some(())
    });
    kubectl(&c, &["delete", "deployment", "web", "web2", "--wait=true"]);
    controller.kill();
    announcer.kill();
    datapath.kill();
    rt.block_on(nodes.shutdown());

    let out = ok(c
        .helm([
            "uninstall",
            RELEASE,
            "--namespace",
            NS,
            "--wait",
            "--timeout",
            "60s",
        ])
        .expect("helm"));
    assert!(out.contains("uninstalled"), "{out}");
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    for kind in [
        "deployments",
        "daemonsets",
        "services",
        "serviceaccounts",
        "poddisruptionbudgets",
        "roles",
        "rolebindings",
    ] {
        let left = names(&c, &["-n", NS, kind, "-l", &selector]);
        assert!(left.is_empty(), "{kind} left after uninstall: {left:?}");
    }
    for kind in ["clusterroles", "clusterrolebindings"] {
        let left = names(&c, &[kind, "-l", &selector]);
        assert!(left.is_empty(), "{kind} left after uninstall: {left:?}");
    }
    for kind in [
        "loadbalancerclasses",
        "localloadbalancers",
        "ingressclasses",
    ] {
        let left = names(&c, &[kind]);
        assert!(left.is_empty(), "{kind} left after uninstall: {left:?}");
    }
    // CRDs are not removed by helm uninstall (Helm's documented rule for
    // the crds/ directory), so users' objects survive a reinstall.
    let crds = names(&c, &["crd"]);
    assert!(
        crds.iter().any(|n| n == "loadbalancerclasses.gantry.dev"),
        "{crds:?}"
    );
}
