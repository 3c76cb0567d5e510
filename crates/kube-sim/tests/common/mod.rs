//! Shared helpers for the integration tests.

#![allow(dead_code)]

use std::{future::Future, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Client, api::ObjectMeta};
use kube_sim::{KubeSim, SimOptions};

/// Starts an emulator and a client for it.
pub async fn sim() -> (KubeSim, Client) {
    let sim = KubeSim::start(SimOptions::default()).await.expect("start");
    let client = sim.client();
    (sim, client)
}

/// A ConfigMap with labels.
pub fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

/// The API status of a failed call.
pub fn status(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` until it returns true or ten seconds pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}
