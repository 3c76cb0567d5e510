//! Errors: [`LocalError`] for building a provider from a class, and the
//! mapping of Kubernetes API failures onto [`ProviderError`] (transient or
//! permanent) for every call the provider makes.

use std::{future::Future, time::Duration};

use gantry_model::{ProviderError, class::ClassError};

/// Why a [`crate::LocalProvider`] could not be built from a class's settings.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The cluster id is empty, so ownership labels could not prove anything.
    #[error("the cluster id must not be empty")]
    EmptyClusterId,
    /// The class name is empty.
    #[error("the class name must not be empty")]
    EmptyClass,
    /// A pool entry does not parse.
    #[error("class {class}: invalid address pool")]
    BadPool {
        /// The class.
        class: String,
        /// What is wrong with the entry.
        #[source]
        source: ClassError,
    },
    /// `mode: l2` needs addresses to hand out.
    #[error("class {class}: mode l2 needs at least one entry in spec.local.pools")]
    NoPools {
        /// The class.
        class: String,
    },
}

/// Kubernetes API operations, as named in errors and timeouts.
pub(crate) mod op {
    pub(crate) const GET: &str = "GetLocalLoadBalancer";
    pub(crate) const LIST: &str = "ListLocalLoadBalancers";
    pub(crate) const CREATE: &str = "CreateLocalLoadBalancer";
    pub(crate) const REPLACE: &str = "ReplaceLocalLoadBalancer";
    pub(crate) const DELETE: &str = "DeleteLocalLoadBalancer";
    /// Not an API call: choosing an address from the pools.
    pub(crate) const ALLOCATE: &str = "AllocateAddress";
    /// Not an API call: turning the desired state into a spec.
    pub(crate) const BUILD: &str = "BuildLocalLoadBalancer";
}

/// Classify a Kubernetes API error.
///
/// Conflicts (409) are transient: they mean someone else wrote first, and a
/// retry re-reads. 404 is transient too: on create it means the CRD is not
/// installed yet, on replace that the object vanished under us. Other 4xx are
/// validation failures that the same input will hit again.
pub(crate) fn map_kube(operation: &'static str, err: kube::Error) -> ProviderError {
    match err {
        kube::Error::Api(status) if !is_retryable(status.code) => ProviderError::Rejected {
            operation,
            message: if status.reason.is_empty() {
                status.message.clone()
            } else {
                format!("{} ({})", status.message, status.reason)
            },
        },
        other => ProviderError::Transient {
            operation,
            source: Box::new(other),
        },
    }
}

fn is_retryable(code: u16) -> bool {
    matches!(code, 404 | 408 | 409 | 429) || code >= 500
}

/// Run one API call under a deadline, mapping its error.
pub(crate) async fn call<T>(
    operation: &'static str,
    limit: Duration,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.map_err(|e| map_kube(operation, e)),
        Err(_) => {
            tracing::warn!(
                operation,
                seconds = limit.as_secs(),
                "Kubernetes API call timed out"
            );
            Err(ProviderError::Timeout {
                operation,
                seconds: limit.as_secs(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_model::provider::ErrorClass;

    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("boom", "Reason").with_code(code),
        ))
    }

    #[test]
    fn classifies_api_errors() {
        for (code, class) in [
            (409, ErrorClass::Transient),
            (429, ErrorClass::Transient),
            (500, ErrorClass::Transient),
            (503, ErrorClass::Transient),
            (404, ErrorClass::Transient),
            (400, ErrorClass::Permanent),
            (403, ErrorClass::Permanent),
            (422, ErrorClass::Permanent),
        ] {
            assert_eq!(map_kube(op::CREATE, api(code)).class(), class, "{code}");
        }
        let rejected = map_kube(op::CREATE, api(422));
        assert!(rejected.to_string().contains("boom (Reason)"), "{rejected}");
    }

    #[tokio::test]
    async fn deadline_becomes_timeout() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, kube::Error>(())
        };
        let err = call(op::GET, Duration::from_millis(10), slow)
            .await
            .expect_err("must time out");
        assert!(
            matches!(
                err,
                ProviderError::Timeout {
                    operation: op::GET,
                    ..
                }
            ),
            "{err}"
        );
    }
}
