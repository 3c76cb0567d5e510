//! Shared helpers for the provider's tests: an in-process emulator, a
//! provider pointed at it with anonymous credentials and short deadlines,
//! and reading what the emulator stores. The Service (L4) and Ingress (L7)
//! tests keep their own helpers in `l4` and `l7`.

#![allow(dead_code)]

pub mod l4;
pub mod l7;

use std::time::Duration;

use gantry_gcp::{ApiOptions, Connection, GcpProvider};
use gantry_model::class::GcpSettings;
use gce_sim::{GceSim, SimOptions};
use serde_json::Value;

/// Project every test uses.
pub const PROJECT: &str = "gantry-test";
/// Region every test uses.
pub const REGION: &str = "us-central1";
/// Cluster id of the tests other than the Ingress ones (`l7::CLUSTER`).
pub const CLUSTER: &str = "test-cluster";

/// A running emulator whose Operations take `delay` to finish.
pub async fn sim(delay: Duration) -> GceSim {
    GceSim::start(SimOptions {
        operation_delay: delay,
        ..SimOptions::default()
    })
    .await
    .expect("emulator starts")
}

/// Limits fit for tests: short backoff, generous rate.
pub fn options() -> ApiOptions {
    ApiOptions {
        call_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_attempts: 6,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(100),
        rate_per_second: 1000,
        burst: 1000,
    }
}

/// Class settings for `sim`.
pub fn settings(sim: &GceSim, target_pools: bool) -> GcpSettings {
    GcpSettings {
        project: Some(PROJECT.into()),
        region: Some(REGION.into()),
        network: Some("default".into()),
        endpoint: Some(sim.url().to_string()),
        scheme: None,
        target_pools,
    }
}

/// A provider of `class` pointed at `sim`.
pub async fn provider(sim: &GceSim, class: &str, target_pools: bool) -> GcpProvider {
    GcpProvider::with_options(
        class,
        CLUSTER,
        settings(sim, target_pools),
        Connection {
            endpoint: Some(sim.url().to_string()),
            anonymous: true,
        },
        options(),
    )
    .await
    .expect("provider builds")
}

/// Stored resources of `kind` (e.g. `compute#forwardingRule`).
pub fn of_kind(sim: &GceSim, kind: &str) -> Vec<Value> {
    sim.resources()
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}
