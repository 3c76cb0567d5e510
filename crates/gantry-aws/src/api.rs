//! The one door every AWS call goes through: client-side rate limits, a
//! deadline per call, and a count of calls by operation and outcome (the
//! provider's metric, and how tests prove a no-op resync writes nothing).

use std::{collections::BTreeMap, future::Future, num::NonZeroU32, sync::Arc, time::Duration};

use aws_sdk_elasticloadbalancingv2::{
    config::http::HttpResponse, error::ProvideErrorMetadata, error::SdkError,
};
use gantry_model::ProviderError;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::error::classify;

/// `n` as a `NonZeroU32`; `n` must be at least 1.
const fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(n.saturating_sub(1))
}

/// Which budget a call spends. The figures are the AWS Load Balancer
/// Controller's defaults, so a cluster moving to Gantry keeps its API usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Budget {
    /// Everything else: 10 calls/s, bursts of 40.
    General,
    /// `RegisterTargets` / `DeregisterTargets`: 4 calls/s, bursts of 20.
    Targets,
}

/// Outcome of one call, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The service answered with an error.
    Error,
    /// No answer before the deadline.
    Timeout,
}

/// Calls made so far, by operation and outcome, plus the order of
/// operations (bounded) for checks such as "register before deregister".
#[derive(Debug, Default)]
pub struct CallLog {
    counts: BTreeMap<(&'static str, Outcome), u64>,
    order: Vec<&'static str>,
}

/// Most recent operations kept in [`CallLog::order`].
const ORDER_CAP: usize = 4096;

impl CallLog {
    /// Calls by operation and outcome.
    pub fn counts(&self) -> &BTreeMap<(&'static str, Outcome), u64> {
        &self.counts
    }

    /// Operations in call order (the most recent few thousand).
    pub fn order(&self) -> &[&'static str] {
        &self.order
    }

    /// Calls that change something (everything but reads, see [`is_read`]).
    pub fn writes(&self) -> u64 {
        self.counts
            .iter()
            .filter(|((op, _), _)| !is_read(op))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every call.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Whether an operation only reads (`Describe*`, `List*`, `Get*`).
pub fn is_read(operation: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Clients, limits and accounting shared by every step of the provider.
pub(crate) struct Api {
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) acm: aws_sdk_acm::Client,
    general: DefaultDirectRateLimiter,
    targets: DefaultDirectRateLimiter,
    pub(crate) timeout: Duration,
    pub(crate) log: Arc<Mutex<CallLog>>,
}

impl Api {
    pub(crate) fn new(config: &aws_config::SdkConfig, timeout: Duration) -> Self {
        Self {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            acm: aws_sdk_acm::Client::new(config),
            general: RateLimiter::direct(Quota::per_second(nz(10)).allow_burst(nz(40))),
            targets: RateLimiter::direct(Quota::per_second(nz(4)).allow_burst(nz(20))),
            timeout,
            log: Arc::new(Mutex::new(CallLog::default())),
        }
    }

    fn record(&self, operation: &'static str, outcome: Outcome) {
        let mut log = self.log.lock();
        *log.counts.entry((operation, outcome)).or_default() += 1;
        if log.order.len() >= ORDER_CAP {
            log.order.remove(0);
        }
        log.order.push(operation);
    }

    /// Run one call under the budget and deadline, handing back the SDK's
    /// own error so that the caller can treat "not found" as an answer.
    pub(crate) async fn raw<T, E>(
        &self,
        operation: &'static str,
        budget: Budget,
        fut: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<Result<T, SdkError<E, HttpResponse>>, ProviderError> {
        match budget {
            Budget::General => self.general.until_ready().await,
            Budget::Targets => self.targets.until_ready().await,
        }
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(result) => {
                self.record(
                    operation,
                    if result.is_ok() {
                        Outcome::Ok
                    } else {
                        Outcome::Error
                    },
                );
                Ok(result)
            }
            Err(_) => {
                self.record(operation, Outcome::Timeout);
                Err(ProviderError::Timeout {
                    operation,
                    seconds: self.timeout.as_secs(),
                })
            }
        }
    }

    /// Run one call under the budget and deadline, classifying its error.
    pub(crate) async fn call<T, E>(
        &self,
        operation: &'static str,
        budget: Budget,
        fut: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, ProviderError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.raw(operation, budget, fut)
            .await?
            .map_err(|e| classify(operation, e))
    }
}
