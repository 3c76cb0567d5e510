//! Test support for Gantry.
//!
//! - [`RecordingProvider`]: an in-memory [`gantry_model::LoadBalancer`] for one
//!   class that diffs desired states like a real adapter, records every call
//!   and every write, and injects faults (errors, not-ready, latency).
//! - [`CountingProvider`]: wraps any provider behind a client-side token
//!   bucket shaped like AWS's API limits and counts the calls that pass.

mod counting;
mod diff;
mod recording;

pub use counting::{CountingProvider, RateLimit};
pub use diff::diff;
pub use recording::{Call, FaultKind, Op, RecordingProvider};
