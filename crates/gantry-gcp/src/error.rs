//! Errors: [`GcpError`] for building a provider from a class, [`CallError`]
//! for one failed Compute Engine call (kept whole so that callers can treat
//! `404 notFound` or `409 alreadyExists` as answers), and their mapping onto
//! the model's [`ProviderError`] (transient or permanent).

use gantry_model::ProviderError;

/// Why a [`crate::GcpProvider`] could not be built from a class's settings.
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    /// The cluster id is empty, so ownership labels could not prove anything.
    #[error("the cluster id must not be empty")]
    EmptyClusterId,
    /// The class name is empty.
    #[error("the class name must not be empty")]
    EmptyClass,
    /// The class's settings are invalid (permanent until the class changes).
    #[error("class {class}: {field} {value:?}: {reason}")]
    BadSetting {
        /// The class.
        class: String,
        /// The field, e.g. `spec.gcp.region`.
        field: &'static str,
        /// The value found.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A Compute Engine client could not be built (bad endpoint, no
    /// Application Default Credentials on this host).
    #[error("class {class}: cannot build the Compute Engine {service} client")]
    Client {
        /// The class.
        class: String,
        /// Which client.
        service: &'static str,
        /// What went wrong.
        #[source]
        source: google_cloud_gax::client_builder::Error,
    },
}

/// One Compute Engine call that failed after its retries.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The service (or the transport) answered with an error.
    #[error("{operation}: {source}")]
    Api {
        /// The API operation, e.g. `forwardingRules.insert`.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: google_cloud_compute_v1::Error,
    },
    /// No answer before the per-call deadline.
    #[error("{operation} timed out after {seconds}s")]
    Timeout {
        /// The API operation.
        operation: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The call was accepted but its Operation ended with an error.
    #[error("{operation}: operation failed with {code}: {message}")]
    Operation {
        /// The API operation that started the Operation.
        operation: &'static str,
        /// The first error code of the Operation, e.g. `RESOURCE_IN_USE_BY_ANOTHER_RESOURCE`.
        code: String,
        /// Its message.
        message: String,
        /// `httpErrorStatusCode` of the Operation, when given.
        http_status: Option<u16>,
    },
}

impl CallError {
    /// The HTTP status of the failure, if there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Api { source, .. } => source.http_status_code(),
            Self::Operation { http_status, .. } => *http_status,
            Self::Timeout { .. } => None,
        }
    }

    /// The Google API `reason` (`notFound`, `alreadyExists`,
    /// `conditionNotMet`, `rateLimitExceeded`...), if the body carried one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Api { source, .. } => source.status().and_then(|s| {
                s.details.iter().find_map(|d| match d {
                    google_cloud_gax::error::rpc::StatusDetails::ErrorInfo(info)
                        if !info.reason.is_empty() =>
                    {
                        Some(info.reason.as_str())
                    }
                    _ => None,
                })
            }),
            Self::Operation { .. } | Self::Timeout { .. } => None,
        }
    }

    /// `404`: the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.http_status() == Some(404)
    }

    /// `409`: a resource of that name exists already.
    pub fn is_already_exists(&self) -> bool {
        self.http_status() == Some(409)
    }

    /// `412`: the fingerprint sent is stale; re-read and retry.
    pub fn is_stale_fingerprint(&self) -> bool {
        self.http_status() == Some(412)
    }

    /// Whether repeating the same call later may succeed: throttling, 5xx,
    /// transport failures, timeouts, a dependency that is still busy
    /// (`resourceNotReady`, or in use while the thing using it is being
    /// removed), and a shared instance group another reconcile has just
    /// changed (`memberAlreadyExists`: the next attempt re-reads the
    /// members and adds only those still missing).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Api { source, .. } => {
                if let Some(status) = source.http_status_code() {
                    status == 429
                        || status >= 500
                        || matches!(
                            self.reason(),
                            Some(
                                "rateLimitExceeded"
                                    | "resourceNotReady"
                                    | "resourceInUseByAnotherResource"
                                    | "memberAlreadyExists"
                            )
                        )
                } else {
                    // No HTTP answer: connection, IO or deadline trouble.
                    source.is_timeout()
                        || source.is_io()
                        || source.is_connect()
                        || source.is_transport()
                        || source.is_exhausted()
                        || source.is_transient_and_before_rpc()
                }
            }
            Self::Operation {
                code, http_status, ..
            } => {
                http_status.is_some_and(|s| s == 429 || s >= 500)
                    || matches!(
                        code.as_str(),
                        "RATE_LIMIT_EXCEEDED"
                            | "RESOURCE_NOT_READY"
                            | "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
                            | "MEMBER_ALREADY_EXISTS"
                            | "INTERNAL_ERROR"
                            | "BACKEND_ERROR"
                    )
            }
        }
    }

    /// The operation name.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Api { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::Operation { operation, .. } => operation,
        }
    }
}

impl From<CallError> for ProviderError {
    fn from(err: CallError) -> Self {
        let operation = err.operation();
        match err {
            CallError::Timeout { operation, seconds } => {
                ProviderError::Timeout { operation, seconds }
            }
            err if err.is_transient() => ProviderError::Transient {
                operation,
                source: Box::new(err),
            },
            CallError::Operation { code, message, .. } if code.contains("QUOTA") => {
                ProviderError::Exhausted {
                    resource: "quota",
                    message: format!("{operation}: {code}: {message}"),
                }
            }
            err => ProviderError::Rejected {
                operation,
                message: err.to_string(),
            },
        }
    }
}
