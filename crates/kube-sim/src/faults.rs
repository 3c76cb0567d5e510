//! Fault injection: a clonable [`Faults`] handle (and the `/_sim/faults`
//! admin endpoint for process mode) that closes watches, expires the watch
//! history, fails the next N matching requests with a chosen status, or adds
//! latency to every request.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use parking_lot::Mutex;
use serde::Deserialize;

use crate::{error::ApiError, server::Shared};

/// Which requests a failure rule applies to; `None` matches anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultMatcher<'a> {
    /// Verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: Option<&'a str>,
    /// Resource plural, optionally with subresource (`services`, `services/status`).
    pub resource: Option<&'a str>,
}

#[derive(Debug, Clone)]
struct Rule {
    remaining: usize,
    status: u16,
    verb: Option<String>,
    resource: Option<String>,
}

/// Mutable fault state shared by the server and every handle.
#[derive(Debug, Default)]
pub struct FaultState {
    rules: Mutex<Vec<Rule>>,
    latency: Mutex<Duration>,
}

impl FaultState {
    /// The configured per-request latency.
    pub fn latency(&self) -> Duration {
        *self.latency.lock()
    }

    /// Consumes a matching rule, if any, and returns the injected error.
    pub fn take(&self, verb: &str, resource: &str, subresource: Option<&str>) -> Option<ApiError> {
        let full = match subresource {
            Some(s) => format!("{resource}/{s}"),
            None => resource.to_string(),
        };
        let mut rules = self.rules.lock();
        let pos = rules.iter().position(|r| {
            r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource
                    .as_deref()
                    .is_none_or(|want| want == full || (subresource.is_none() && want == resource))
        })?;
        let rule = &mut rules[pos];
        rule.remaining -= 1;
        let status = rule.status;
        if rule.remaining == 0 {
            rules.remove(pos);
        }
        Some(ApiError::injected(status))
    }
}

/// A handle to inject faults into a running emulator.
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Weak<Shared>,
    pub(crate) state: Arc<FaultState>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    /// Ends every open watch stream (clients see the connection end and re-watch).
    pub fn close_watches(&self) {
        if let Some(s) = self.shared.upgrade() {
            s.state.lock().close_watches();
        }
    }

    /// Forgets the watch history: resuming from any earlier resourceVersion
    /// (and continuing an earlier list) answers 410 Gone.
    pub fn expire_watch_history(&self) {
        if let Some(s) = self.shared.upgrade() {
            s.state.lock().expire_history();
        }
    }

    /// Answers the next `n` requests matching `matcher` with `status` (in the
    /// real `Status` format; 429 carries `Retry-After: 1`).
    pub fn fail_next(&self, n: usize, status: u16, matcher: FaultMatcher<'_>) {
        if n == 0 {
            return;
        }
        self.state.rules.lock().push(Rule {
            remaining: n,
            status,
            verb: matcher.verb.map(str::to_string),
            resource: matcher.resource.map(str::to_string),
        });
    }

    /// Delays every API request by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock() = latency;
    }

    /// Drops all pending failure rules and latency.
    pub fn clear(&self) {
        self.state.rules.lock().clear();
        *self.state.latency.lock() = Duration::ZERO;
    }
}

/// The JSON body of `POST /_sim/faults`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FaultRequest {
    /// `{"action":"close_watches"}`
    CloseWatches,
    /// `{"action":"expire_watch_history"}`
    ExpireWatchHistory,
    /// `{"action":"fail_next","count":2,"status":500,"verb":"create","resource":"services"}`
    FailNext {
        /// How many requests fail.
        count: usize,
        /// HTTP status to answer.
        status: u16,
        /// Verb to match.
        verb: Option<String>,
        /// Resource to match.
        resource: Option<String>,
    },
    /// `{"action":"set_latency","millis":50}`
    SetLatency {
        /// Milliseconds of added latency.
        millis: u64,
    },
    /// `{"action":"clear"}`
    Clear,
}

impl Faults {
    /// Executes an admin request.
    pub fn execute(&self, req: FaultRequest) {
        match req {
            FaultRequest::CloseWatches => self.close_watches(),
            FaultRequest::ExpireWatchHistory => self.expire_watch_history(),
            FaultRequest::FailNext {
                count,
                status,
                verb,
                resource,
            } => self.fail_next(
                count,
                status,
                FaultMatcher {
                    verb: verb.as_deref(),
                    resource: resource.as_deref(),
                },
            ),
            FaultRequest::SetLatency { millis } => self.set_latency(Duration::from_millis(millis)),
            FaultRequest::Clear => self.clear(),
        }
    }
}
