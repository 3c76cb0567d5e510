//! The provider's metric: AWS API calls by operation and outcome, as a
//! Prometheus counter family (`aws_api_calls_total`, under the registry's
//! prefix). Every provider keeps its own [`CallLog`]; [`CallMetrics`] holds
//! the logs of the providers a process built and sums them at each scrape,
//! so labels stay bounded (operation names are the SDK's fixed set,
//! outcomes three) and a rebuilt provider's counts are never lost.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter},
    registry::Registry,
};

use crate::{AwsProvider, CallLog, Outcome};

/// Name of the counter family (the registry adds its prefix and `_total`).
pub const METRIC: &str = "aws_api_calls";

/// The call logs of every provider a process built, exported as one
/// counter family.
#[derive(Clone, Debug, Default)]
pub struct CallMetrics {
    logs: Arc<Mutex<Vec<Arc<Mutex<CallLog>>>>>,
}

impl CallMetrics {
    /// Count `provider`'s calls from now on (and those it made already).
    pub fn track(&self, provider: &AwsProvider) {
        self.logs.lock().push(provider.calls());
    }

    /// Register the counter family with `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }

    /// Calls by (operation, outcome), summed over every tracked provider.
    pub fn totals(&self) -> BTreeMap<(&'static str, Outcome), u64> {
        let mut totals = BTreeMap::new();
        for log in self.logs.lock().iter() {
            for (key, n) in log.lock().counts() {
                *totals.entry(*key).or_default() += n;
            }
        }
        totals
    }
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
        }
    }
}

impl Collector for CallMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let totals = self.totals();
        let mut family = encoder.encode_descriptor(
            METRIC,
            "AWS API calls by operation and outcome",
            None,
            MetricType::Counter,
        )?;
        for ((operation, outcome), n) in totals {
            let labels = [("operation", operation), ("outcome", outcome.as_str())];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_encode_with_bounded_labels() {
        let metrics = CallMetrics::default();
        let log = Arc::new(Mutex::new(CallLog::default()));
        log.lock().record("CreateLoadBalancer", Outcome::Ok);
        log.lock().record("CreateLoadBalancer", Outcome::Ok);
        log.lock().record("DescribeTags", Outcome::Timeout);
        metrics.logs.lock().push(log);
        let mut registry = Registry::with_prefix("gantry");
        metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
        assert!(
            out.contains(
                "gantry_aws_api_calls_total{operation=\"CreateLoadBalancer\",outcome=\"ok\"} 2"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "gantry_aws_api_calls_total{operation=\"DescribeTags\",outcome=\"timeout\"} 1"
            ),
            "{out}"
        );
    }
}
