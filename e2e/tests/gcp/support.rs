//! What the GCP scenarios share: the seed's Service, the emulator's holdings
//! summarised per collection, the chain one Service balancer should come
//! out as, and call counting for the API economy figures.

use std::{collections::BTreeMap, time::Duration};

use gantry_e2e::{
    gcp::{GcpEnv, collection},
    manifests::service,
    wait_for,
};
use serde_json::Value;

/// Deadline of every wait.
pub const T: Duration = Duration::from_secs(60);

/// The seed's `type: LoadBalancer` Service (port 80 to the pods' `http`
/// port); `annotations` is a flow-map body.
pub fn seed_service(name: &str, annotations: &str) -> String {
    service(
        name,
        "LoadBalancer",
        "{name: http, port: 80, targetPort: http, protocol: TCP}",
    )
    .annotations(annotations)
    .to_string()
}

/// Scope and collection of a resource: `regions/forwardingRules`,
/// `global/backendServices`, `zones/instanceGroups`, ...
pub fn kind_of(r: &Value) -> String {
    let link = r["selfLink"].as_str().unwrap_or_default();
    let scope = if link.contains("/global/") {
        "global"
    } else if link.contains("/regions/") {
        "regions"
    } else {
        "zones"
    };
    format!("{scope}/{}", collection(r))
}

/// Gantry's resources in the emulator, counted per scope and collection.
pub fn holdings(env: &GcpEnv) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for list in env.gantry_resources().into_values() {
        for r in list {
            *out.entry(kind_of(&r)).or_insert(0) += 1;
        }
    }
    out
}

/// Gantry's resources of one scope and collection.
pub fn held(env: &GcpEnv, kind: &str) -> Vec<Value> {
    env.gantry_resources()
        .into_values()
        .flatten()
        .filter(|r| kind_of(r) == kind)
        .collect()
}

/// The regional passthrough chain of `balancers` Services with `rules`
/// forwarding rules each, and `groups` instance groups in all.
pub fn l4_chain(balancers: usize, rules: usize, groups: usize) -> BTreeMap<String, usize> {
    BTreeMap::from([
        ("regions/addresses".to_string(), balancers),
        ("regions/backendServices".to_string(), balancers),
        ("regions/healthChecks".to_string(), balancers),
        ("regions/forwardingRules".to_string(), balancers * rules),
        ("global/firewalls".to_string(), balancers),
        ("zones/instanceGroups".to_string(), groups),
    ])
}

/// Wait until Gantry's holdings are exactly `want`; panics with the last
/// holdings otherwise.
pub fn wait_holdings(env: &GcpEnv, what: &str, want: &BTreeMap<String, usize>) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let last = holdings(env);
        if &last == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the emulator holds {last:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether a logged call (`METHOD path`) changes something: every method
/// but GET, except the two reads Compute Engine serves on POST (waiting on
/// an Operation, listing an instance group's members).
pub fn is_write(call: &str) -> bool {
    !call.starts_with("GET ") && !call.ends_with("/wait") && !call.ends_with("/listInstances")
}

/// Calls of one step: all of them, and the writes among them.
#[derive(Clone, Debug, Default)]
pub struct Count {
    /// Every Compute Engine call.
    pub calls: Vec<String>,
}

impl Count {
    /// The number of calls.
    pub fn total(&self) -> usize {
        self.calls.len()
    }

    /// The writes among them.
    pub fn writes(&self) -> Vec<&String> {
        self.calls.iter().filter(|c| is_write(c)).collect()
    }
}

/// Wait until no Compute Engine call has arrived for `quiet`, then return
/// the calls since the last clear.
pub fn settle(env: &GcpEnv, quiet: Duration) -> Count {
    let mut seen = env.calls().len();
    let mut since = std::time::Instant::now();
    wait_for("the controller to stop calling the emulator", T, || {
        std::thread::sleep(Duration::from_millis(200));
        let now = env.calls().len();
        if now != seen {
            seen = now;
            since = std::time::Instant::now();
        }
        (since.elapsed() >= quiet).then_some(())
    });
    Count { calls: env.calls() }
}

/// The instance group of `zone` among Gantry's, as JSON.
pub fn group_in(env: &GcpEnv, zone: &str) -> Option<Value> {
    held(env, "zones/instanceGroups")
        .into_iter()
        .find(|g| g["zone"].as_str().is_some_and(|z| z.ends_with(zone)))
}

/// The `size` of Gantry's instance group in `zone` (0 when it has none).
pub fn group_size(env: &GcpEnv, zone: &str) -> u64 {
    group_in(env, zone)
        .and_then(|g| g["size"].as_u64())
        .unwrap_or(0)
}
