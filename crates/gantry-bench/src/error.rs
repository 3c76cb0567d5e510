//! Why a benchmark run stopped.

use std::time::Duration;

/// Every way a run (driver or controller child) can fail.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A process, file or pipe operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A Kubernetes API call failed.
    #[error("{step}: {source}")]
    Kube {
        /// Which step.
        step: String,
        /// Why it failed.
        #[source]
        source: kube::Error,
    },
    /// The client configuration could not be built.
    #[error("client configuration: {0}")]
    ClientConfig(String),
    /// A child process said something unexpected (or nothing).
    #[error("{0}")]
    Protocol(String),
    /// A phase did not finish in time.
    #[error("{phase} did not finish within {waited:?}: {detail}")]
    Timeout {
        /// Which phase.
        phase: &'static str,
        /// How long it was given.
        waited: Duration,
        /// What was still missing.
        detail: String,
    },
    /// The controller failed.
    #[error("controller: {0}")]
    Controller(String),
}

impl BenchError {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// A Kubernetes API error in `step`.
    pub fn kube(step: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let step = step.into();
        move |source| Self::Kube { step, source }
    }
}

/// Results of this crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
