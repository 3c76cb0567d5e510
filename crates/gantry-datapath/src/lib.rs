//! Gantry's bare-metal load balancer datapath.
//!
//! Every instance watches all `LocalLoadBalancer` objects, serves those
//! with an address it binds, and reports whether it does in its own entry
//! of their status:
//!
//! - L4: TCP streams (optionally announced with PROXY protocol v2) and UDP
//!   sessions relayed to node ports, round robin over healthy nodes;
//! - L7: HTTP/1.1 and HTTP/2, TLS with SNI from Secrets, host and path
//!   routing as Ingresses define it;
//! - active health checks plus passive ejection on failed connects;
//! - reloads that keep sockets and established connections, and drain
//!   removed listeners.
//!
//! [`run`] drives it from the API; [`Engine`] is the same datapath without
//! the API, for tests, embedding and benchmarks. [`announce`] is the `l2`
//! announcer as a process of its own, beside a datapath run with
//! [`Announcing::Separate`].

mod announce;
mod backend;
mod config;
mod engine;
mod error;
mod health;
mod io;
mod l4;
mod l7;
mod listener;
mod metrics;
mod options;
mod plan;
mod run;
mod runtime;
#[cfg(target_os = "linux")]
mod splice;
mod watch;

pub use announce::standalone::{AnnounceOptions, announce};
pub use backend::FAILURES_TO_EJECT;
pub use config::{ObjectConfig, Readiness, TlsMaterial};
pub use engine::Engine;
pub use error::{DatapathError, ListenerError, TlsError};
pub use l4::{
    tcp::CONNECT_TIMEOUT,
    udp::{MAX_SESSIONS, SESSION_IDLE},
};
pub use options::{Announcing, BindPolicy, DatapathOptions};
pub use run::{run, secrets::REFRESH as SECRET_REFRESH, status::FIELD_MANAGER};
pub use runtime::runtime;
