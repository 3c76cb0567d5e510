//! Errors: [`AwsError`] for building a provider from a class, and the
//! mapping of AWS API failures onto [`ProviderError`] (transient or
//! permanent) for every call the provider makes.

use aws_sdk_elasticloadbalancingv2::{
    config::http::HttpResponse, error::ProvideErrorMetadata, error::SdkError,
};
use gantry_model::ProviderError;

/// Why an [`crate::AwsProvider`] could not be built from a class's settings.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The cluster id is empty, so ownership tags could not prove anything.
    #[error("the cluster id must not be empty")]
    EmptyClusterId,
    /// The class name is empty.
    #[error("the class name must not be empty")]
    EmptyClass,
    /// Neither the class nor the standard AWS chain names a region.
    #[error("class {class}: no AWS region (set spec.aws.region or AWS_REGION)")]
    NoRegion {
        /// The class.
        class: String,
    },
    /// The HTTPS client could not be set up (permanent: the trust store or
    /// TLS provider is unusable on this host).
    #[error("class {class}: cannot build the HTTPS client")]
    HttpClient {
        /// The class.
        class: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// Error codes AWS uses for rate limiting; always worth a retry.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];

/// Error codes that say "not yet": a dependency is still being torn down or
/// a resource is still settling, so the same call will succeed later.
/// `DependencyViolation` is EC2's: a security group still held by the
/// network interfaces of a balancer being deleted; `ResourceInUseException`
/// is ACM's for a certificate a listener being deleted still uses.
const NOT_YET_CODES: &[&str] = &[
    "ResourceInUse",
    "ResourceInUseException",
    "OperationNotPermitted",
    "DependencyViolation",
];

/// Classify an SDK error: throttling, 5xx, dispatch failures and SDK
/// timeouts are transient; every other service error is a rejection that
/// the same input will hit again.
pub(crate) fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_string);
    let transient = match &err {
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| s >= 500 || s == 429)
                || code
                    .as_deref()
                    .is_some_and(|c| THROTTLING_CODES.contains(&c) || NOT_YET_CODES.contains(&c))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        // Building the request failed: our input is wrong.
        _ => false,
    };
    if transient {
        ProviderError::Transient {
            operation,
            source: Box::new(err),
        }
    } else {
        let message = match (code, err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            _ => format!(
                "{}",
                aws_sdk_elasticloadbalancingv2::error::DisplayErrorContext(&err)
            ),
        };
        ProviderError::Rejected { operation, message }
    }
}

/// Whether `err` carries the service error code `code` (for "not found"
/// answers that are a normal outcome of a read).
pub(crate) fn has_code<E>(err: &SdkError<E, HttpResponse>, code: &str) -> bool
where
    E: ProvideErrorMetadata,
{
    err.code() == Some(code)
}
