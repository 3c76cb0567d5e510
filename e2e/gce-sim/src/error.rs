//! Errors: the Google API error body every failed call returns, and the
//! emulator's own start-up failure.

use serde_json::{Value, json};

/// A failed API call, rendered as the JSON body Compute Engine sends:
/// `{"error":{"code":..,"message":..,"errors":[{"message":..,"domain":..,"reason":..}]}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Human-readable message, the same in the outer error and its one entry.
    pub message: String,
    /// Machine-readable reason (`notFound`, `alreadyExists`, ...).
    pub reason: &'static str,
    /// Error domain (`global` for most, `usageLimits` for rate limits).
    pub domain: &'static str,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason,
            domain: "global",
        }
    }

    /// `404 notFound` for a resource path such as `projects/p/global/urlMaps/m`.
    pub fn not_found(resource: &str) -> Self {
        Self::new(
            404,
            "notFound",
            format!("The resource '{resource}' was not found"),
        )
    }

    /// `409 alreadyExists`.
    pub fn already_exists(resource: &str) -> Self {
        Self::new(
            409,
            "alreadyExists",
            format!("The resource '{resource}' already exists"),
        )
    }

    /// `412 conditionNotMet`: a stale or missing fingerprint.
    pub fn condition_not_met(message: &str) -> Self {
        Self::new(412, "conditionNotMet", message)
    }

    /// `400 resourceNotReady`: an Operation on the resource is still running.
    pub fn not_ready(resource: &str) -> Self {
        Self::new(
            400,
            "resourceNotReady",
            format!("The resource '{resource}' is not ready"),
        )
    }

    /// `400 resourceInUseByAnotherResource`.
    pub fn in_use(kind: &str, resource: &str, user: &str) -> Self {
        Self::new(
            400,
            "resourceInUseByAnotherResource",
            format!("The {kind} resource '{resource}' is already being used by '{user}'"),
        )
    }

    /// `400 invalid` for a field with a bad value.
    pub fn invalid_field(field: &str, value: &str, why: &str) -> Self {
        Self::new(
            400,
            "invalid",
            format!("Invalid value for field '{field}': '{value}'. {why}"),
        )
    }

    /// `400 required` for a missing field.
    pub fn required(field: &str) -> Self {
        Self::new(
            400,
            "required",
            format!("Required field '{field}' not specified"),
        )
    }

    /// `400 parseError` for a body that is not JSON.
    pub fn parse(detail: &str) -> Self {
        Self::new(
            400,
            "parseError",
            format!("Invalid JSON payload received. {detail}"),
        )
    }

    /// `400 badRequest` for a method the collection does not have.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "badRequest", message)
    }

    /// `429 rateLimitExceeded` (domain `usageLimits`), as quota throttling answers.
    pub fn rate_limited() -> Self {
        Self {
            domain: "usageLimits",
            ..Self::new(
                429,
                "rateLimitExceeded",
                "Rate Limit Exceeded: too many requests for this project",
            )
        }
    }

    /// `503 backendError`.
    pub fn unavailable() -> Self {
        Self::new(503, "backendError", "The service is currently unavailable.")
    }

    /// Any other injected status.
    pub fn injected(code: u16) -> Self {
        let reason = match code {
            500 => "backendError",
            403 => "forbidden",
            401 => "authError",
            404 => "notFound",
            _ => "injected",
        };
        Self::new(code, reason, format!("Injected failure with status {code}"))
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{
                    "message": self.message,
                    "domain": self.domain,
                    "reason": self.reason,
                }],
            }
        })
    }
}

/// The emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding the listen address failed (permanent for that address).
    #[error("binding {address} failed")]
    Bind {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading back the bound address failed.
    #[error("reading the bound address failed")]
    LocalAddr(#[source] std::io::Error),
}
