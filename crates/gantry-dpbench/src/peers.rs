//! The peers compared: Gantry's datapath, HAProxy and nginx configured for
//! the same job (HTTP keep-alive with pooled backend connections, HTTPS
//! termination, TCP proxying), each on its own loopback address and pinned
//! to the proxy core, plus "direct" (the client talks to the backend).

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

use crate::{backend::Backend, error::BenchError};

/// Frontend ports shared by every proxy (each on its own address).
pub mod ports {
    /// Plain HTTP.
    pub const HTTP: u16 = 80;
    /// HTTPS.
    pub const HTTPS: u16 = 443;
    /// TCP to the backend's sink.
    pub const SINK: u16 = 9001;
    /// TCP to the backend's greeter.
    pub const GREET: u16 = 9002;
}

/// Where to pin processes.
#[derive(Clone, Copy, Debug)]
pub struct Pinning {
    /// Core of the proxies; none = unpinned (one core only).
    pub proxy_core: Option<usize>,
}

/// One peer: its frontends and, for proxies, its process.
pub struct Peer {
    /// Display name.
    pub name: &'static str,
    /// Plain HTTP frontend.
    pub http: SocketAddr,
    /// HTTPS frontend, none for direct.
    pub https: Option<SocketAddr>,
    /// TCP bulk frontend.
    pub sink: SocketAddr,
    /// TCP greet frontend.
    pub greet: SocketAddr,
    /// The proxy's process (killed on drop); none for direct.
    pub child: Option<Child>,
}

impl Peer {
    /// The client straight to the backend.
    pub fn direct(b: &Backend) -> Self {
        Self {
            name: "direct",
            http: b.http,
            https: None,
            sink: b.sink,
            greet: b.greet,
            child: None,
        }
    }

    /// Resident memory of the proxy's processes (all of its process tree),
    /// KiB; none for direct.
    pub fn rss_kib(&self) -> Result<Option<u64>, BenchError> {
        let Some(pid) = self.child.as_ref().and_then(Child::id) else {
            return Ok(None);
        };
        let mut total = 0;
        for p in tree(pid)? {
            total += rss_of(p).unwrap_or(0);
        }
        Ok(Some(total))
    }

    async fn wait_listening(&mut self) -> Result<(), BenchError> {
        let addrs = [
            Some(self.http),
            self.https,
            Some(self.sink),
            Some(self.greet),
        ];
        for addr in addrs.into_iter().flatten() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(addr).await.is_err() {
                if Instant::now() > deadline {
                    return Err(BenchError::NotReady {
                        what: self.name.into(),
                        addr: addr.to_string(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Someone else answering on these addresses (a leftover proxy) while
        // ours failed to bind must not pass for our peer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(child) = &mut self.child
            && !matches!(child.try_wait(), Ok(None))
        {
            return Err(BenchError::NotReady {
                what: format!("{} (exited; address in use?)", self.name),
                addr: self.http.to_string(),
            });
        }
        Ok(())
    }
}

fn addrs(ip: [u8; 4]) -> (IpAddr, SocketAddr, SocketAddr, SocketAddr, SocketAddr) {
    let ip = IpAddr::from(ip);
    let at = |p| SocketAddr::new(ip, p);
    (
        ip,
        at(ports::HTTP),
        at(ports::HTTPS),
        at(ports::SINK),
        at(ports::GREET),
    )
}

fn pinned(pin: Pinning, program: &Path) -> Command {
    let mut cmd = match pin.proxy_core {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.kill_on_drop(true).stdin(Stdio::null());
    cmd
}

fn spawn(cmd: &mut Command, what: &str) -> Result<Child, BenchError> {
    cmd.spawn().map_err(|source| BenchError::Spawn {
        what: what.into(),
        source,
    })
}

/// Files shared by the proxies' configurations.
pub struct Material {
    /// Scratch directory.
    pub dir: PathBuf,
    /// Certificate, PEM.
    pub cert: PathBuf,
    /// Key, PEM.
    pub key: PathBuf,
    /// Certificate then key, as HAProxy wants them.
    pub combined: PathBuf,
}

impl Material {
    /// Generates a self-signed certificate into `dir`.
    pub fn generate(dir: &Path) -> Result<Self, BenchError> {
        let ck = rcgen::generate_simple_self_signed(vec!["bench.test".to_owned()])
            .map_err(BenchError::Certificate)?;
        let cert = ck.cert.pem();
        let key = ck.key_pair.serialize_pem();
        let m = Self {
            dir: dir.to_owned(),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            combined: dir.join("combined.pem"),
        };
        write(&m.cert, &cert)?;
        write(&m.key, &key)?;
        write(&m.combined, &format!("{cert}{key}"))?;
        Ok(m)
    }
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(BenchError::io(format!("write {}", path.display())))
}

/// Starts Gantry's datapath (this binary's `datapath` subcommand).
pub async fn gantry(pin: Pinning, m: &Material, b: &Backend) -> Result<Peer, BenchError> {
    let (ip, http, https, sink, greet) = addrs([127, 0, 70, 1]);
    let exe = std::env::current_exe().map_err(BenchError::io("find this program"))?;
    let mut cmd = pinned(pin, &exe);
    cmd.arg("datapath")
        .arg("--l7-addr")
        .arg(ip.to_string())
        .arg("--l4-addr")
        .arg(ip.to_string())
        .arg("--backend-base")
        .arg(b.http.port().to_string())
        .arg("--cert")
        .arg(&m.cert)
        .arg("--key")
        .arg(&m.key)
        .stdout(Stdio::piped());
    let mut child = spawn(&mut cmd, "gantry-dpbench datapath")?;
    if let Some(out) = child.stdout.take() {
        let mut line = String::new();
        let mut reader = BufReader::new(out);
        let ok = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
        if !matches!(ok, Ok(Ok(_))) || line.trim() != "ready" {
            return Err(BenchError::Datapath(
                "no 'ready' from the datapath child".into(),
            ));
        }
    }
    let mut peer = Peer {
        name: "gantry",
        http,
        https: Some(https),
        sink,
        greet,
        child: Some(child),
    };
    peer.wait_listening().await?;
    Ok(peer)
}

/// Starts HAProxy in the foreground, one thread; TCP with `splice-auto`
/// (HAProxy's zero-copy relaying, as Gantry's datapath splices), its pipes
/// capped as Gantry's pool is.
pub async fn haproxy(pin: Pinning, m: &Material, b: &Backend) -> Result<Peer, BenchError> {
    let (ip, http, https, sink, greet) = addrs([127, 0, 71, 1]);
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "global\n  maxconn 9000\n  nbthread 1\n  maxpipes 256\n\
         defaults\n  timeout connect 5s\n  timeout client 300s\n  timeout server 300s\n\
         \x20 timeout http-request 10s\n  timeout http-keep-alive 300s\n\
         frontend web\n  mode http\n  option forwardfor\n\
         \x20 bind {ip}:{h}\n  bind {ip}:{s} ssl crt {crt} alpn http/1.1\n  default_backend web\n\
         backend web\n  mode http\n  http-reuse always\n  server s1 {bh}\n\
         frontend sink\n  mode tcp\n  option splice-auto\n  bind {ip}:{p1}\n  default_backend sink\n\
         backend sink\n  mode tcp\n  option splice-auto\n  server s1 {bs}\n\
         frontend greet\n  mode tcp\n  bind {ip}:{p2}\n  default_backend greet\n\
         backend greet\n  mode tcp\n  server s1 {bg}\n",
        h = ports::HTTP,
        s = ports::HTTPS,
        crt = m.combined.display(),
        bh = b.http,
        p1 = ports::SINK,
        bs = b.sink,
        p2 = ports::GREET,
        bg = b.greet,
    );
    let path = m.dir.join("haproxy.cfg");
    write(&path, &cfg)?;
    let mut cmd = pinned(pin, Path::new("haproxy"));
    cmd.arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn(&mut cmd, "haproxy")?;
    let mut peer = Peer {
        name: "haproxy",
        http,
        https: Some(https),
        sink,
        greet,
        child: Some(child),
    };
    peer.wait_listening().await?;
    Ok(peer)
}

/// Starts nginx in the foreground as one process (no master: killing it
/// leaves no worker behind).
pub async fn nginx(pin: Pinning, m: &Material, b: &Backend) -> Result<Peer, BenchError> {
    let (ip, http, https, sink, greet) = addrs([127, 0, 72, 1]);
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    let d = m.dir.display();
    let mut cfg = String::new();
    if module.exists() {
        let _ = writeln!(cfg, "load_module {};", module.display());
    }
    let _ = write!(
        cfg,
        "worker_processes 1;\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log warn;\n\
         worker_rlimit_nofile 20000;\nevents {{ worker_connections 19000; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
         \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 upstream web {{ server {bh}; keepalive 64; }}\n\
         \x20 server {{\n    listen {ip}:{h};\n    listen {ip}:{s} ssl;\n\
         \x20   ssl_certificate {crt};\n    ssl_certificate_key {key};\n\
         \x20   location / {{\n      proxy_pass http://web;\n      proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n\
         \x20     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n\
         stream {{\n  server {{ listen {ip}:{p1}; proxy_pass {bs}; proxy_timeout 300s; }}\n\
         \x20 server {{ listen {ip}:{p2}; proxy_pass {bg}; }}\n}}\n",
        h = ports::HTTP,
        s = ports::HTTPS,
        crt = m.cert.display(),
        key = m.key.display(),
        bh = b.http,
        p1 = ports::SINK,
        bs = b.sink,
        p2 = ports::GREET,
        bg = b.greet,
    );
    let path = m.dir.join("nginx.conf");
    write(&path, &cfg)?;
    let mut cmd = pinned(pin, Path::new("nginx"));
    cmd.arg("-p")
        .arg(&m.dir)
        .arg("-e")
        .arg(m.dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = spawn(&mut cmd, "nginx")?;
    let mut peer = Peer {
        name: "nginx",
        http,
        https: Some(https),
        sink,
        greet,
        child: Some(child),
    };
    peer.wait_listening().await?;
    Ok(peer)
}

/// `pid` and its descendants.
fn tree(pid: u32) -> Result<Vec<u32>, BenchError> {
    let mut parents = Vec::new();
    for e in std::fs::read_dir("/proc").map_err(BenchError::io("list /proc"))? {
        let Ok(e) = e else { continue };
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The command name may hold spaces; fields resume after its ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(pp) = ppid {
            parents.push((p, pp));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    Ok(out)
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
