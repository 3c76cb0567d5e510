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

    /// Count one call.
    pub(crate) fn record(&mut self, operation: &'static str, outcome: Outcome) {
        *self.counts.entry((operation, outcome)).or_default() += 1;
        if self.order.len() >= ORDER_CAP {
            self.order.remove(0);
        }
        self.order.push(operation);
    }
}

/// Whether an operation only reads (`Describe*`, `List*`, `Get*`).
pub fn is_read(operation: &str) -> bool {
    ["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// The client-side limiter of `budget`.
fn limiter(budget: Budget) -> DefaultDirectRateLimiter {
    let (per_second, burst) = match budget {
        Budget::General => (10, 40),
        Budget::Targets => (4, 20),
    };
    RateLimiter::direct(Quota::per_second(nz(per_second)).allow_burst(nz(burst)))
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
            general: limiter(Budget::General),
            targets: limiter(Budget::Targets),
            timeout,
            log: Arc::new(Mutex::new(CallLog::default())),
        }
    }

    fn record(&self, operation: &'static str, outcome: Outcome) {
        self.log.lock().record(operation, outcome);
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// Permits granted right away, until the first refusal.
    fn burst(l: &DefaultDirectRateLimiter) -> u32 {
        let mut n = 0;
        while l.check().is_ok() {
            n += 1;
            assert!(n < 1000, "no limit");
        }
        n
    }

    #[test]
    fn budgets_are_the_load_balancer_controllers_defaults() {
        for (budget, size, per_second) in [(Budget::General, 40, 10), (Budget::Targets, 20, 4)] {
            let l = limiter(budget);
            let start = Instant::now();
            assert_eq!(burst(&l), size, "{budget:?} burst");
            std::thread::sleep(Duration::from_millis(600));
            // Refill at `per_second`: at least the time slept's worth, at
            // most the time elapsed's (however long the sleep really took).
            let refilled = burst(&l);
            let elapsed = start.elapsed().as_secs_f64();
            assert!(
                refilled >= (0.6 * f64::from(per_second)).floor() as u32,
                "{budget:?}: {refilled} after 600ms"
            );
            assert!(
                f64::from(refilled) <= elapsed * f64::from(per_second) + 1.0,
                "{budget:?}: {refilled} in {elapsed}s"
            );
        }
    }

    #[test]
    fn reads_are_describe_list_and_get() {
        for op in ["DescribeTags", "ListCertificates", "GetCertificate"] {
            assert!(is_read(op), "{op}");
        }
        for op in ["CreateLoadBalancer", "ImportCertificate", "RegisterTargets"] {
            assert!(!is_read(op), "{op}");
        }
    }
}
