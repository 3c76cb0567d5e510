//! Why a benchmark run fails.

use std::io;

/// A failed step of the benchmark. Every variant is permanent for the run:
/// the benchmark stops and says which step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A peer or the load generator could not be started (missing program?).
    #[error("cannot start {what}")]
    Spawn {
        /// The program.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A peer did not accept connections on its listeners in time.
    #[error("{what} did not start listening on {addr} in time")]
    NotReady {
        /// The peer.
        what: String,
        /// The listener waited for.
        addr: String,
    },
    /// Writing the peers' configuration or reading `/proc` failed.
    #[error("{what}")]
    Io {
        /// The operation.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The self-signed certificate could not be generated.
    #[error("cannot generate the self-signed certificate")]
    Certificate(#[source] rcgen::Error),
    /// wrk ran but printed no result (its output is included).
    #[error("wrk against {target} gave no result: {output}")]
    Wrk {
        /// URL measured.
        target: String,
        /// wrk's stdout and stderr.
        output: String,
    },
    /// A measurement could not complete (no successful request...).
    #[error("{case} through {peer}: {reason}")]
    Measure {
        /// Case.
        case: &'static str,
        /// Peer.
        peer: String,
        /// What went wrong.
        reason: String,
    },
    /// The run was interrupted (SIGINT or SIGTERM).
    #[error("interrupted")]
    Interrupted,
    /// The datapath child could not apply its configuration.
    #[error("the datapath is not ready: {0}")]
    Datapath(String),
}

impl BenchError {
    /// An I/O failure of `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
