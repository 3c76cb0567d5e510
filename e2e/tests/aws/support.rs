//! What the AWS scenarios share: the seed's Service, waiting for a ready
//! address, and the API economy figures counted at the proxy.

use std::{collections::BTreeMap, time::Duration};

use gantry_e2e::{
    aws::{AwsEnv, inventory::TargetGroup, proxy::Call},
    manifests::service,
};

/// Deadline of every wait: generous, since under injected faults a failed
/// reconcile is retried after the controller's backoff.
pub const T: Duration = Duration::from_secs(60);

/// The seed article's Service: port 80 to the pods' `http` port, no class
/// (the default class applies).
pub fn seed_service() -> String {
    service(
        "service-test",
        "LoadBalancer",
        "{port: 80, targetPort: http, protocol: TCP}",
    )
    .selector("service_test_pod")
    .to_string()
}

/// The hostname in the status of a Service or Ingress once its Ready
/// condition (Services) is True.
pub fn ready(env: &AwsEnv, kind: &str, name: &str) -> Option<String> {
    let obj = env.get(kind, name)?;
    let host = obj["status"]["loadBalancer"]["ingress"][0]["hostname"].as_str()?;
    if kind == "svc" {
        let conds = obj["status"]["conditions"].as_array()?;
        conds
            .iter()
            .find(|c| c["type"] == "Ready" && c["status"] == "True")?;
    }
    Some(host.to_string())
}

/// Instance ids registered in a target group.
pub fn target_ids(tg: &TargetGroup) -> std::collections::BTreeSet<String> {
    tg.targets.iter().map(|(id, _, _)| id.clone()).collect()
}

/// Calls of one step, by action.
#[derive(Debug)]
pub struct Figures {
    /// Calls by action.
    pub by_action: BTreeMap<String, usize>,
    /// Calls that only read.
    pub reads: usize,
    /// Calls that change something.
    pub writes: usize,
    /// Calls the proxy answered with an injected error.
    pub faulted: usize,
}

impl Figures {
    /// Calls of `action`.
    pub fn count(&self, action: &str) -> usize {
        self.by_action.get(action).copied().unwrap_or(0)
    }
}

/// The calls the proxy saw since its last reset, printed as one figure.
pub fn figures(env: &AwsEnv, step: &str) -> Figures {
    summarize(step, &env.proxy.calls())
}

/// Count and print `calls` as the figure of `step`.
pub fn summarize(step: &str, calls: &[Call]) -> Figures {
    let mut by_action = BTreeMap::new();
    for c in calls {
        *by_action.entry(c.action.clone()).or_insert(0) += 1;
    }
    let reads = calls.iter().filter(|c| c.is_read()).count();
    let f = Figures {
        reads,
        writes: calls.len() - reads,
        faulted: calls.iter().filter(|c| c.faulted).count(),
        by_action,
    };
    println!(
        "API economy: {step}: {} calls ({} reads, {} writes): {:?}",
        calls.len(),
        f.reads,
        f.writes,
        f.by_action
    );
    f
}
