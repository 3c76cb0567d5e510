//! The two processes a run starts: the API emulator (`kube-sim`) and the
//! controller child (`gantry-bench controller-child`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use kube::Client;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines},
    net::TcpStream,
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::{
    ProviderChoice,
    error::{BenchError, Result},
    tally::Stats,
};

/// How long a process may take to print its first line.
const START_LIMIT: Duration = Duration::from_secs(30);

async fn first_line(lines: &mut Lines<BufReader<ChildStdout>>, who: &str) -> Result<String> {
    match tokio::time::timeout(START_LIMIT, lines.next_line()).await {
        Ok(Ok(Some(line))) => Ok(line),
        Ok(Ok(None)) => Err(BenchError::Protocol(format!(
            "{who} exited before saying where it listens"
        ))),
        Ok(Err(e)) => Err(BenchError::io(format!("reading from {who}"))(e)),
        Err(_) => Err(BenchError::Timeout {
            phase: "process start",
            waited: START_LIMIT,
            detail: format!("{who} printed nothing"),
        }),
    }
}

/// The API emulator as its own process.
pub struct Emulator {
    child: Child,
    /// Its kubeconfig file.
    pub kubeconfig: PathBuf,
    /// A client for it.
    pub client: Client,
}

impl Emulator {
    /// Start `bin` on an ephemeral loopback port, writing its kubeconfig into `dir`.
    pub async fn start(bin: &Path, dir: &Path, tls: bool) -> Result<Self> {
        let kubeconfig = dir.join("kubeconfig");
        let mut cmd = Command::new(bin);
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if tls {
            cmd.arg("--tls");
        }
        let mut child = cmd
            .spawn()
            .map_err(BenchError::io(format!("starting {}", bin.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Protocol("kube-sim has no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = first_line(&mut lines, "kube-sim").await?;
        if !line.starts_with("listening on ") {
            return Err(BenchError::Protocol(format!(
                "kube-sim said {line:?} instead of `listening on URL`"
            )));
        }
        // Keep reading (and discarding) so the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = crate::child::client(&kubeconfig).await?;
        Ok(Self {
            child,
            kubeconfig,
            client,
        })
    }

    /// `POST /_sim/faults` with `{"action": action}`.
    pub async fn fault(&self, action: &str) -> Result<()> {
        let body = serde_json::json!({ "action": action }).to_string();
        let req = http::Request::post("/_sim/faults")
            .header("content-type", "application/json")
            .body(body.into_bytes())
            .map_err(|e| BenchError::Protocol(format!("building fault request: {e}")))?;
        self.client
            .request_text(req)
            .await
            .map_err(BenchError::kube(format!("fault {action}")))?;
        Ok(())
    }

    /// Stop the emulator.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The controller child process.
pub struct ControllerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    pid: u32,
    /// Where it serves `/metrics` and `/readyz`.
    pub metrics_addr: SocketAddr,
}

impl ControllerProcess {
    /// Start `exe controller-child` against `kubeconfig` with `provider`.
    pub async fn start(exe: &Path, kubeconfig: &Path, provider: ProviderChoice) -> Result<Self> {
        let mut child = Command::new(exe)
            .arg("controller-child")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--provider")
            .arg(provider.as_str())
            .arg("--metrics-addr")
            .arg("127.0.0.1:0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(BenchError::io("starting the controller child"))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::Protocol("the controller child has no pid".into()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Protocol("the controller child has no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        let line = first_line(&mut lines, "the controller child").await?;
        let metrics_addr = line
            .strip_prefix("metrics-addr ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                BenchError::Protocol(format!(
                    "the controller child said {line:?} instead of `metrics-addr ADDR`"
                ))
            })?;
        Ok(Self {
            child,
            stdin,
            lines,
            pid,
            metrics_addr,
        })
    }

    /// Wait until `/readyz` answers 200.
    pub async fn wait_ready(&self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(200) = http_get_status(self.metrics_addr, "/readyz").await {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(BenchError::Timeout {
                    phase: "controller start",
                    waited: limit,
                    detail: "/readyz never answered 200".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ask for the child's current [`Stats`].
    pub async fn stats(&mut self) -> Result<Stats> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| BenchError::Protocol("the controller child was stopped".into()))?;
        stdin
            .write_all(b"stats\n")
            .await
            .map_err(BenchError::io("asking the controller child for stats"))?;
        let line = match tokio::time::timeout(Duration::from_secs(10), self.lines.next_line()).await
        {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(BenchError::Controller("the child exited".into())),
            Ok(Err(e)) => return Err(BenchError::io("reading stats")(e)),
            Err(_) => {
                return Err(BenchError::Timeout {
                    phase: "stats",
                    waited: Duration::from_secs(10),
                    detail: "the controller child did not answer".into(),
                });
            }
        };
        serde_json::from_str(&line)
            .map_err(|e| BenchError::Protocol(format!("stats line {line:?}: {e}")))
    }

    /// A `Vm*` figure (in KiB) from `/proc/<pid>/status`: `VmHWM` is the peak
    /// resident set, `VmRSS` the current one.
    pub fn vm_kib(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let text =
            std::fs::read_to_string(&path).map_err(BenchError::io(format!("reading {path}")))?;
        text.lines()
            .find_map(|l| {
                let rest = l.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .ok_or_else(|| BenchError::Protocol(format!("no {field} in {path}")))
    }

    /// Open file descriptors of the child (sockets included).
    pub fn open_fds(&self) -> Result<usize> {
        let path = format!("/proc/{}/fd", self.pid);
        let dir = std::fs::read_dir(&path).map_err(BenchError::io(format!("reading {path}")))?;
        Ok(dir.count())
    }

    /// Close stdin (the child shuts down) and wait for it, killing it after 10 s.
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Status code of a plain HTTP/1.1 GET.
async fn http_get_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))
}
