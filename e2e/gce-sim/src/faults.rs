//! Fault injection: rules that make the next N matching calls slow, fail
//! with a status (`429 rateLimitExceeded`, `503`, ...), or accept a
//! mutation whose Operation then ends in an error.

use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// One fault rule; the first matching rule whose turn it is (see
/// `every`) applies to a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fault {
    /// HTTP method to match (`GET`, `POST`, ...); any when absent.
    pub method: Option<String>,
    /// Substring of the request path to match; any when absent.
    pub path_contains: Option<String>,
    /// Status to answer with (429 and 503 get the real bodies); none for
    /// latency- or operation-only faults.
    pub status: Option<u16>,
    /// Delay before answering.
    pub latency_ms: u64,
    /// Accept the mutation but end its Operation with this error code
    /// (e.g. `QUOTA_EXCEEDED`) without applying it.
    pub operation_error: Option<String>,
    /// How many calls it applies to; 0 means without limit (until cleared).
    pub times: u32,
    /// Applies to every Nth matching call only (1 or absent: every call),
    /// for faults on a share of the traffic.
    pub every: Option<u32>,
    /// Matching calls seen so far (kept by the emulator).
    #[serde(skip_deserializing)]
    pub seen: u64,
}

/// What a fault does to one call.
#[derive(Debug, Clone, Default)]
pub struct Effect {
    /// Sleep this long first.
    pub latency: Duration,
    /// Then answer with this error.
    pub error: Option<ApiError>,
    /// Or end the Operation with this error code.
    pub operation_error: Option<String>,
}

/// The fault rules of one emulator.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
}

impl Faults {
    /// Adds a rule after the existing ones.
    pub fn push(&self, fault: Fault) {
        self.rules.lock().push(fault);
    }

    /// Shorthand: the next `times` calls whose path contains `path` fail
    /// with `status`.
    pub fn fail_next(&self, path: &str, status: u16, times: u32) {
        self.push(Fault {
            path_contains: Some(path.to_owned()),
            status: Some(status),
            times,
            ..Fault::default()
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules.lock().clear();
    }

    /// The rules with calls left.
    pub fn pending(&self) -> Vec<Fault> {
        self.rules.lock().clone()
    }

    /// Consumes one call of the first matching rule.
    pub fn take(&self, method: &str, path: &str) -> Option<Effect> {
        let mut rules = self.rules.lock();
        let mut chosen = None;
        for (index, rule) in rules.iter_mut().enumerate() {
            let matches = rule
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && rule
                    .path_contains
                    .as_deref()
                    .is_none_or(|p| path.contains(p));
            if !matches {
                continue;
            }
            rule.seen += 1;
            let every = u64::from(rule.every.unwrap_or(1).max(1));
            if rule.seen % every == 0 {
                chosen = Some(index);
                break;
            }
        }
        let index = chosen?;
        let rule = rules[index].clone();
        match rules[index].times {
            0 => {}
            1 => {
                rules.remove(index);
            }
            _ => rules[index].times -= 1,
        }
        let error = rule.status.map(|code| match code {
            429 => ApiError::rate_limited(),
            503 => ApiError::unavailable(),
            other => ApiError::injected(other),
        });
        Some(Effect {
            latency: Duration::from_millis(rule.latency_ms),
            error,
            operation_error: rule.operation_error,
        })
    }
}
