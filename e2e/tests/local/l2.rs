//! `l2` mode on a real Ethernet segment: three nodes, each a network
//! namespace running `gantry datapath` and a TCP backend on the node port,
//! the API emulator in its own namespace, and a client in another, all on
//! one bridge. The datapaths elect a holder for the virtual address through
//! a Lease; killing the holder's datapath (SIGKILL, as a node crash would)
//! must move the address and bring the client's answers back within 5 s,
//! and stopping the next holder gracefully must hand the address over.
//!
//! The same runs with the announcing in a process of its own beside each
//! datapath (`gantry announce`, as the chart runs it): killing a datapath
//! must make the announcer beside it let the address go.
//!
//! The `LocalLoadBalancer` is written directly (as the local provider would
//! publish it), so the scenario exercises the datapaths alone.

use std::{
    ffi::OsStr,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use gantry_e2e::{
    HarnessError, Process, Scratch, bin_dir, netns::Lab, netns::root_or_skip, ok, tools_dir,
    wait_for,
};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const NODE_PORT: u16 = 30080;
const NODES: [(&str, Ipv4Addr); 3] = [
    ("n1", Ipv4Addr::new(192, 0, 2, 11)),
    ("n2", Ipv4Addr::new(192, 0, 2, 12)),
    ("n3", Ipv4Addr::new(192, 0, 2, 13)),
];
const CTL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const CLI: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);
/// The failover budget the scenario asserts.
const FAILOVER: f64 = 5.0;
/// Port of each datapath's metrics, probed by a separate announcer.
const METRICS_PORT: u16 = 9464;

/// A backend on the node port: answers every connection with its node.
const BACKEND: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
s.listen(128)
print("serving", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall(("node=%s\n" % sys.argv[1]).encode())
    finally:
        c.close()
"#;

/// The client: one connection every 100 ms, each logged with its start
/// time (Unix seconds) and outcome.
const CLIENT: &str = r#"
import socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
print("started", flush=True)
while True:
    t = time.time()
    try:
        c = socket.create_connection(addr, timeout=0.3)
        c.settimeout(0.5)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(100)
            if not chunk:
                break
            data += chunk
        c.close()
        text = data.decode().strip()
        print("%.3f %s %s" % (t, "ok" if text.startswith("node=") else "fail", text), flush=True)
    except Exception as e:
        print("%.3f fail %s" % (t, e), flush=True)
    time.sleep(max(0.0, 0.1 - (time.time() - t)))
"#;

struct L2Env {
    // Fields drop in order: processes first, the namespaces last.
    datapaths: Vec<Option<Process>>,
    /// Separate announcers, when the datapaths leave announcing to them.
    _announcers: Vec<Process>,
    separate: bool,
    _backends: Vec<Process>,
    client: Option<Process>,
    _sim: Process,
    kubeconfig: PathBuf,
    scratch: Scratch,
    lab: Lab,
}

impl L2Env {
    /// Three nodes; `separate`: with an announcer process beside each
    /// datapath.
    fn start(separate: bool) -> Result<Self, HarnessError> {
        let mut members: Vec<(&str, Ipv4Addr)> = vec![("ctl", CTL), ("cli", CLI)];
        members.extend(NODES);
        let lab = Lab::new(&members)?;
        let scratch = Scratch::new("l2")?;
        let kubeconfig = scratch.path().join("kubeconfig");
        let bins = bin_dir()?;
        let listen = format!("{CTL}:0");
        let (sim, _) = lab.spawn(
            "ctl",
            "kube-sim",
            &bins.join("kube-sim"),
            &[
                OsStr::new("--listen"),
                OsStr::new(&listen),
                OsStr::new("--kubeconfig"),
                kubeconfig.as_os_str(),
            ],
            scratch.path().join("kube-sim.log"),
            "listening on ",
            Duration::from_secs(20),
        )?;
        let mut env = Self {
            datapaths: Vec::new(),
            _announcers: Vec::new(),
            separate,
            _backends: Vec::new(),
            client: None,
            _sim: sim,
            kubeconfig,
            scratch,
            lab,
        };
        let crds = Command::new(bins.join("gantry")).arg("crd").output()?;
        let crd_file = env.scratch.path().join("crds.yaml");
        std::fs::write(&crd_file, &crds.stdout)?;
        env.kubectl(&[OsStr::new("apply"), OsStr::new("-f"), crd_file.as_os_str()])?;
        let llb = env.scratch.path().join("llb.yaml");
        std::fs::write(&llb, balancer())?;
        env.kubectl(&[OsStr::new("apply"), OsStr::new("-f"), llb.as_os_str()])?;

        let backend = env.scratch.path().join("backend.py");
        std::fs::write(&backend, BACKEND)?;
        let port = NODE_PORT.to_string();
        for (node, _) in NODES {
            let (p, _) = env.lab.spawn(
                node,
                &format!("backend {node}"),
                Path::new("python3"),
                &[backend.as_os_str(), OsStr::new(node), OsStr::new(&port)],
                env.scratch.path().join(format!("backend-{node}.log")),
                "serving",
                Duration::from_secs(10),
            )?;
            env._backends.push(p);
        }
        for (node, ip) in NODES {
            let p = env.start_datapath(node, ip)?;
            env.datapaths.push(Some(p));
            if separate {
                let p = env.start_announcer(node, ip)?;
                env._announcers.push(p);
            }
        }
        Ok(env)
    }

    fn start_datapath(&self, node: &str, ip: Ipv4Addr) -> Result<Process, HarnessError> {
        let metrics = format!("{ip}:{METRICS_PORT}");
        let mut args = vec![
            OsStr::new("datapath"),
            OsStr::new("--kubeconfig"),
            self.kubeconfig.as_os_str(),
            OsStr::new("--node-name"),
            OsStr::new(node),
        ];
        if self.separate {
            args.extend([
                OsStr::new("--announcer"),
                OsStr::new("separate"),
                OsStr::new("--metrics-addr"),
                OsStr::new(&metrics),
            ]);
        }
        let (p, _) = self.lab.spawn(
            node,
            &format!("gantry datapath {node}"),
            &bin_dir()?.join("gantry"),
            &args,
            self.scratch.path().join(format!("datapath-{node}.log")),
            "",
            Duration::from_secs(5),
        )?;
        Ok(p)
    }

    fn start_announcer(&self, node: &str, ip: Ipv4Addr) -> Result<Process, HarnessError> {
        let datapath = format!("{ip}:{METRICS_PORT}");
        let (p, _) = self.lab.spawn(
            node,
            &format!("gantry announce {node}"),
            &bin_dir()?.join("gantry"),
            &[
                OsStr::new("announce"),
                OsStr::new("--kubeconfig"),
                self.kubeconfig.as_os_str(),
                OsStr::new("--node-name"),
                OsStr::new(node),
                OsStr::new("--datapath"),
                OsStr::new(&datapath),
            ],
            self.scratch.path().join(format!("announcer-{node}.log")),
            "",
            Duration::from_secs(5),
        )?;
        Ok(p)
    }

    fn kubectl(&self, args: &[&OsStr]) -> Result<String, HarnessError> {
        let mut full: Vec<&OsStr> = vec![OsStr::new("--kubeconfig"), self.kubeconfig.as_os_str()];
        full.extend_from_slice(args);
        Ok(ok(self.lab.run(
            "ctl",
            &tools_dir()?.join("kubectl"),
            &full,
        )?))
    }

    /// The holder the address Lease names, if any (none while the Lease
    /// does not exist).
    fn holder(&self) -> Option<String> {
        let kubectl = tools_dir().ok()?.join("kubectl");
        let out = self
            .lab
            .run(
                "ctl",
                &kubectl,
                &[
                    OsStr::new("--kubeconfig"),
                    self.kubeconfig.as_os_str(),
                    OsStr::new("get"),
                    OsStr::new("lease"),
                    OsStr::new("gantry-l2-192-0-2-100"),
                    OsStr::new("-o"),
                    OsStr::new("jsonpath={.spec.holderIdentity}"),
                ],
            )
            .ok()
            .filter(|o| o.status.success())?;
        let holder = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!holder.is_empty()).then_some(holder)
    }

    fn start_client(&mut self) -> Result<(), HarnessError> {
        let script = self.scratch.path().join("client.py");
        std::fs::write(&script, CLIENT)?;
        let (p, _) = self.lab.spawn(
            "cli",
            "client",
            Path::new("python3"),
            &[
                script.as_os_str(),
                OsStr::new(&VIP.to_string()),
                OsStr::new("80"),
            ],
            self.scratch.path().join("client.log"),
            "started",
            Duration::from_secs(10),
        )?;
        self.client = Some(p);
        Ok(())
    }

    /// The client's attempts so far: (start time, answered, text).
    fn attempts(&self) -> Vec<(f64, bool, String)> {
        let log = self
            .client
            .as_ref()
            .map(Process::output)
            .unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ' ');
                let t: f64 = parts.next()?.parse().ok()?;
                let outcome = parts.next()?;
                Some((t, outcome == "ok", parts.next().unwrap_or("").to_owned()))
            })
            .collect()
    }

    fn datapath(&mut self, node: &str) -> &mut Option<Process> {
        let i = NODES.iter().position(|(n, _)| *n == node).expect("a node");
        &mut self.datapaths[i]
    }

    fn dump(&self) {
        for p in self.datapaths.iter().flatten().chain(&self._announcers) {
            eprintln!("---- {} ----\n{}", p.name(), p.output());
        }
        if let Some(c) = &self.client {
            let out = c.output();
            let tail: Vec<&str> = out.lines().rev().take(80).collect();
            eprintln!("---- client (last lines) ----");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

impl Drop for L2Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
    }
}

fn balancer() -> String {
    let nodes: Vec<String> = NODES
        .iter()
        .map(|(n, a)| format!("{{name: {n}, address: \"{a}\"}}"))
        .collect();
    format!(
        r#"apiVersion: gantry.dev/v1alpha1
kind: LocalLoadBalancer
metadata:
  name: l2-web
spec:
  class: metal
  owner: {{kind: Service, namespace: default, name: web, uid: 00000000-0000-0000-0000-000000000001}}
  mode: l2
  addresses: ["{VIP}"]
  nodes: [{}]
  l4:
  - {{protocol: TCP, port: 80, nodePort: {NODE_PORT}, healthCheck: {{type: tcp}}}}
"#,
        nodes.join(", ")
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Seconds from `since` until the client's answers came back for good (the
/// first answered attempt after which every attempt up to `until` was
/// answered), or `None` if they did not.
fn recovered_after(attempts: &[(f64, bool, String)], since: f64, until: f64) -> Option<f64> {
    let window: Vec<_> = attempts
        .iter()
        .filter(|(t, _, _)| *t >= since && *t <= until)
        .collect();
    let last_failure = window.iter().rposition(|(_, ok, _)| !ok);
    let first_good = match last_failure {
        None => window.first()?,
        Some(i) => window.get(i + 1)?,
    };
    Some(first_good.0 - since)
}

/// Waits for a holder and steady answers, SIGKILLs the holder's datapath
/// and checks the address moved and answers came back within [`FAILOVER`];
/// the old and the new holder.
fn crash_moves_the_address(env: &mut L2Env, what: &str) -> (String, String) {
    let vip = IpAddr::V4(VIP);
    let t = Duration::from_secs(30);

    let first = wait_for("a holder of the address Lease", t, || env.holder());
    wait_for("the address on the holder's interface", t, || {
        env.lab.has_addr(&first, vip).then_some(())
    });
    for (node, _) in NODES.iter().filter(|(n, _)| *n != first) {
        assert!(!env.lab.has_addr(node, vip), "{node} has the address too");
    }
    env.start_client().expect("client");
    wait_for("the client answered 10 times in a row", t, || {
        let a = env.attempts();
        (a.len() >= 10 && a[a.len() - 10..].iter().all(|(_, ok, _)| *ok)).then_some(())
    });

    // Crash the holder's datapath: no chance to remove the address or to
    // release the Lease (an announcer of its own must notice instead).
    let killed_at = now();
    if let Some(mut p) = env.datapath(&first).take() {
        p.kill();
    }
    let second = wait_for("another holder", Duration::from_secs(10), || {
        env.holder().filter(|h| *h != first)
    });
    wait_for(
        "the address on the new holder",
        Duration::from_secs(10),
        || env.lab.has_addr(&second, vip).then_some(()),
    );
    wait_for(
        "the address gone from the dead holder",
        Duration::from_secs(10),
        || (!env.lab.has_addr(&first, vip)).then_some(()),
    );
    let until = killed_at + 9.0;
    wait_for("9 s of client attempts after the kill", t, || {
        env.attempts()
            .iter()
            .any(|(t, _, _)| *t > until)
            .then_some(())
    });
    let took = recovered_after(&env.attempts(), killed_at, until);
    eprintln!(
        "l2 failover ({what}) after SIGKILL of {first}'s datapath: {second} holds the address; answers back after {took:?} s"
    );
    let took = took.expect("the client got answers again and kept getting them");
    assert!(
        took <= FAILOVER,
        "answers came back after {took:.2} s, over {FAILOVER} s"
    );
    (first, second)
}

#[test]
fn l2_holder_killed_moves_the_address_within_five_seconds() {
    if !root_or_skip("l2_holder_killed_moves_the_address_within_five_seconds") {
        return;
    }
    let mut env = L2Env::start(false).expect("environment");
    let vip = IpAddr::V4(VIP);
    let t = Duration::from_secs(30);
    let (first, second) = crash_moves_the_address(&mut env, "in-process announcer");

    // A graceful stop removes the address and releases the Lease at once.
    let stopped_at = now();
    let mut p = env.datapath(&second).take().expect("second datapath");
    let status = p.interrupt(Duration::from_secs(20));
    assert!(
        status.is_some(),
        "datapath did not stop on SIGINT:\n{}",
        p.output()
    );
    assert!(
        !env.lab.has_addr(&second, vip),
        "a stopped holder left the address behind"
    );
    let third = wait_for(
        "the last node holds the address",
        Duration::from_secs(10),
        || env.holder().filter(|h| *h != first && *h != second),
    );
    wait_for(
        "the address on the last node",
        Duration::from_secs(10),
        || env.lab.has_addr(&third, vip).then_some(()),
    );
    let until = stopped_at + 6.0;
    wait_for("6 s of client attempts after the stop", t, || {
        env.attempts()
            .iter()
            .any(|(t, _, _)| *t > until)
            .then_some(())
    });
    let took = recovered_after(&env.attempts(), stopped_at, until);
    eprintln!(
        "l2 handover after stopping {second}'s datapath: {third} holds the address; answers back after {took:?} s"
    );
    let took = took.expect("the client got answers again after the handover");
    assert!(
        took <= FAILOVER,
        "answers came back after {took:.2} s, over {FAILOVER} s"
    );
    // Keep the stopped process for the failure dump until the end.
    drop(p);
}

#[test]
fn l2_separate_announcer_lets_go_when_its_datapath_dies() {
    if !root_or_skip("l2_separate_announcer_lets_go_when_its_datapath_dies") {
        return;
    }
    let mut env = L2Env::start(true).expect("environment");
    // The announcer beside the killed datapath keeps running; it is its
    // probe of the datapath that gives the address up.
    crash_moves_the_address(&mut env, "separate announcer");
}

#[test]
fn recovery_is_measured_from_the_last_failure() {
    let a = |t: f64, ok: bool| (t, ok, String::new());
    let attempts = vec![
        a(0.5, true),
        a(1.0, false),
        a(2.0, false),
        a(3.1, true),
        a(4.0, true),
    ];
    assert_eq!(recovered_after(&attempts, 0.0, 5.0), Some(3.1));
    assert_eq!(recovered_after(&attempts, 3.5, 5.0), Some(0.5));
    // Still failing at the end of the window: not recovered.
    let failing = vec![a(1.0, true), a(2.0, false)];
    assert_eq!(recovered_after(&failing, 0.0, 5.0), None);
}
