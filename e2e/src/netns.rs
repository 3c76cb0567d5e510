//! Network namespaces for scenarios that need a real Ethernet segment
//! (ARP, addresses moving between nodes): a "switch" namespace holding a
//! bridge, and one namespace per member with `eth0` plugged into it.
//!
//! Names are unique per run (`gt-<run>-<member>`), so reruns and parallel
//! tests never collide, and every namespace is deleted on drop, failure
//! included. Addresses are the members' own; nothing is routed outside the
//! namespaces. Creating namespaces needs root: see [`root_or_skip`].

use std::{
    ffi::OsStr,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use crate::{HarnessError, Process};

/// Set to `1` to skip netns scenarios when not running as root.
pub const SKIP_ENV: &str = "GANTRY_E2E_SKIP_NETNS";

/// Whether a netns scenario named `test` can run: `true` as root; `false`
/// (after saying so) when not root and [`SKIP_ENV`] is `1`; panics with a
/// clear message when not root otherwise, so a missing privilege never
/// passes silently.
pub fn root_or_skip(test: &str) -> bool {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if uid == "0" {
        return true;
    }
    if std::env::var(SKIP_ENV).as_deref() == Ok("1") {
        eprintln!("{test}: SKIPPED: network namespaces need root ({SKIP_ENV}=1)");
        return false;
    }
    panic!(
        "{test} needs root to create network namespaces (uid is {uid:?}); \
         run as root, or set {SKIP_ENV}=1 to skip it"
    );
}

/// A bridge and its member namespaces, deleted on drop.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Creates the switch and one namespace per `(member, address/24)`,
    /// each with loopback up and `eth0` on the bridge.
    pub fn new(members: &[(&str, Ipv4Addr)]) -> Result<Self, HarnessError> {
        let seq = LAB_SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("gt-{:x}{seq}-", std::process::id());
        let mut lab = Self {
            prefix,
            namespaces: Vec::new(),
        };
        let sw = lab.add_namespace("sw")?;
        run_ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        run_ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (member, addr) in members {
            let ns = lab.add_namespace(member)?;
            run_ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", member,
                "netns", &sw,
            ])?;
            run_ip(&["-n", &sw, "link", "set", member, "master", "br0", "up"])?;
            run_ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            run_ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(lab)
    }

    fn add_namespace(&mut self, member: &str) -> Result<String, HarnessError> {
        let ns = self.ns(member);
        run_ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        run_ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace name of `member`.
    pub fn ns(&self, member: &str) -> String {
        format!("{}{member}", self.prefix)
    }

    /// `program args` inside `member`'s namespace, to completion.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        member: &str,
        program: &Path,
        args: &[S],
    ) -> Result<Output, HarnessError> {
        Command::new("ip")
            .args([
                OsStr::new("netns"),
                OsStr::new("exec"),
                OsStr::new(&self.ns(member)),
            ])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| HarnessError::Spawn {
                program: program.display().to_string(),
                source,
            })
    }

    /// Starts `program args` inside `member`'s namespace as a [`Process`]
    /// (`ip netns exec` replaces itself with the program, so killing the
    /// process kills the program).
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        &self,
        member: &str,
        name: &str,
        program: &Path,
        args: &[&OsStr],
        log: PathBuf,
        ready: &str,
        timeout: Duration,
    ) -> Result<(Process, String), HarnessError> {
        let ns = self.ns(member);
        let mut full: Vec<&OsStr> = vec![
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(&ns),
            program.as_os_str(),
        ];
        full.extend_from_slice(args);
        Process::start(name, Path::new("ip"), &full, log, ready, timeout)
    }

    /// Whether `addr` is configured on `member`'s `eth0`.
    pub fn has_addr(&self, member: &str, addr: IpAddr) -> bool {
        Command::new("ip")
            .args(["-n", &self.ns(member), "-o", "addr", "show", "dev", "eth0"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .any(|w| w.split('/').next() == Some(addr.to_string().as_str()))
            })
            .unwrap_or(false)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = run_ip(&["netns", "del", ns]);
        }
    }
}

fn run_ip(args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn {
            program: "ip".into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Io(std::io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))))
    }
}
