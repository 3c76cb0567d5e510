//! The end-to-end harness: starts Gantry's programs as separate processes
//! (as they run in a cluster) and drives them with the real `kubectl` and
//! `helm` binaries.
//!
//! `e2e/run` builds the binaries and tells the suites where they are through
//! `GANTRY_BIN_DIR` (Gantry's own programs) and `GANTRY_TOOLS_DIR` (kubectl,
//! helm, moto_server, installed by `scripts/install-tools.sh`). A suite run
//! without them fails at once with a message saying so.

pub mod aws;
pub mod gcp;
pub mod local;
pub mod manifests;
pub mod netns;

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// Errors of the harness itself (not of the system under test).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A required environment variable is missing.
    #[error("{0} is not set: run the suites through e2e/run")]
    MissingEnv(&'static str),
    /// A program could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A started process did not report readiness.
    #[error("{program} did not report {what} within {secs}s; output so far:\n{output}")]
    NotReady {
        /// The program.
        program: String,
        /// What was awaited.
        what: &'static str,
        /// The limit.
        secs: u64,
        /// What it printed.
        output: String,
    },
    /// Scratch directory trouble.
    #[error("scratch directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Where Gantry's binaries are.
pub fn bin_dir() -> Result<PathBuf, HarnessError> {
    std::env::var_os("GANTRY_BIN_DIR")
        .map(PathBuf::from)
        .ok_or(HarnessError::MissingEnv("GANTRY_BIN_DIR"))
}

/// Where kubectl, helm and moto_server are.
pub fn tools_dir() -> Result<PathBuf, HarnessError> {
    std::env::var_os("GANTRY_TOOLS_DIR")
        .map(PathBuf::from)
        .ok_or(HarnessError::MissingEnv("GANTRY_TOOLS_DIR"))
}

/// Directory of checked-in test data.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A scratch directory removed on drop (kept when `GANTRY_E2E_KEEP` is set).
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

static SCRATCH_SEQ: AtomicU32 = AtomicU32::new(0);

impl Scratch {
    /// Make a fresh directory under the system temp dir.
    pub fn new(label: &str) -> Result<Self, HarnessError> {
        let seq = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("gantry-e2e-{label}-{}-{seq}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("GANTRY_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            eprintln!("keeping {}", self.path.display());
        }
    }
}

/// A child process killed on drop, whose output is collected for failure
/// messages.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Start `program args` with stdout+stderr to `log`, then wait until a
    /// line of its output contains `ready` (at once when `ready` is empty);
    /// return that line.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[&OsStr],
        log: PathBuf,
        ready: &str,
        timeout: Duration,
    ) -> Result<(Self, String), HarnessError> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        let process = Self {
            name: name.to_string(),
            child,
            log,
        };
        if ready.is_empty() {
            return Ok((process, String::new()));
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(line) = process.find_line(ready) {
                return Ok((process, line));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(HarnessError::NotReady {
            program: name.to_string(),
            what: "readiness",
            secs: timeout.as_secs(),
            output: process.output(),
        })
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first output line containing `needle`.
    pub fn find_line(&self, needle: &str) -> Option<String> {
        let file = std::fs::File::open(&self.log).ok()?;
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains(needle))
    }

    /// Ask the process to stop as Ctrl-C would, and wait up to `timeout`
    /// for it to exit; its exit status, or `None` if it did not stop.
    pub fn interrupt(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kill the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- output of {} ----\n{}", self.name, self.output());
        }
    }
}

/// The Kubernetes API emulator running as its own process.
#[derive(Debug)]
pub struct Cluster {
    /// The emulator process.
    pub process: Process,
    /// Its URL.
    pub url: String,
    /// A kubeconfig file for it.
    pub kubeconfig: PathBuf,
    scratch: Scratch,
}

impl Cluster {
    /// Start `kube-sim` (plain HTTP, or HTTPS when `tls`).
    pub fn start(tls: bool) -> Result<Self, HarnessError> {
        let scratch = Scratch::new("cluster")?;
        let kubeconfig = scratch.path().join("kubeconfig");
        let program = bin_dir()?.join("kube-sim");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--kubeconfig"),
            kubeconfig.as_os_str(),
        ];
        if tls {
            args.push(OsStr::new("--tls"));
        }
        let (process, line) = Process::start(
            "kube-sim",
            &program,
            &args,
            scratch.path().join("kube-sim.log"),
            "listening on ",
            Duration::from_secs(20),
        )?;
        let url = line
            .split("listening on ")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string();
        Ok(Self {
            process,
            url,
            kubeconfig,
            scratch,
        })
    }

    /// A scratch directory living as long as the cluster.
    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    /// Run real kubectl against this cluster.
    pub fn kubectl<I, S>(&self, args: I) -> Result<Output, HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.tool("kubectl", args)
    }

    /// Run real helm against this cluster.
    pub fn helm<I, S>(&self, args: I) -> Result<Output, HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.tool("helm", args)
    }

    fn tool<I, S>(&self, name: &str, args: I) -> Result<Output, HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = tools_dir()?.join(name);
        // helm keeps caches and config under HOME-derived directories; keep
        // them in scratch so runs never share state.
        let home = self.scratch.path().join("home");
        std::fs::create_dir_all(&home)?;
        Command::new(&program)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .map_err(|source| HarnessError::Spawn {
                program: program.display().to_string(),
                source,
            })
    }
}

/// Stdout of a command that must have succeeded; panics with both streams
/// otherwise (for use in tests).
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// Poll `f` until it returns `Some`, or panic after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
