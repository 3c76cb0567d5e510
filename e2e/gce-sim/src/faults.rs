//! Fault injection: rules that make the next N matching calls slow, fail
//! with a status (`429 rateLimitExceeded`, `503`, ...), or accept a
//! mutation whose Operation then ends in an error.

use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// One fault rule; the first rule with calls left that matches a request
/// applies to it.
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
    /// How many matching calls it applies to.
    pub times: u32,
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
        let index = rules.iter().position(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
        })?;
        let rule = rules[index].clone();
        rules[index].times -= 1;
        if rules[index].times == 0 {
            rules.remove(index);
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
