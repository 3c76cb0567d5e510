//! Operations: PENDING -> RUNNING -> DONE over the configured delay, at
//! the zonal, regional and global paths, with `get`, `wait` and errors.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gce_sim::Fault;
use serde_json::json;

#[tokio::test]
async fn operation_moves_through_its_states() {
    // PENDING for the first second, RUNNING until the third.
    let sim = sim(3000).await;
    let (status, op) = post(
        &sim,
        &api("global/healthChecks"),
        json!({"name": "hc", "type": "TCP", "tcpHealthCheck": {"port": 80}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(op["kind"], "compute#operation");
    assert_eq!(op["status"], "PENDING");
    assert_eq!(op["operationType"], "insert");
    assert_eq!(op["progress"], 0);
    assert_eq!(op["targetLink"], link(&sim, "global/healthChecks/hc"));
    assert!(op["insertTime"].is_string());
    assert!(op.get("region").is_none() && op.get("zone").is_none());
    let name = op["name"].as_str().expect("name").to_owned();
    assert_eq!(
        op["selfLink"],
        link(&sim, &format!("global/operations/{name}"))
    );

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, running) = get(&sim, &api(&format!("global/operations/{name}"))).await;
    assert_eq!(running["status"], "RUNNING", "{running}");
    assert!(running["startTime"].is_string());

    let started = Instant::now();
    let done = wait_ok(&sim, &op).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(done["progress"], 100);
    assert!(done["endTime"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn zonal_and_regional_operations_live_under_their_scope() {
    let sim = sim(0).await;
    let (_, op) = post(
        &sim,
        &api("zones/us-central1-b/instanceGroups"),
        json!({"name": "ig"}),
    )
    .await;
    assert_eq!(op["zone"], link(&sim, "zones/us-central1-b"));
    assert_eq!(op["status"], "DONE");
    let name = op["name"].as_str().expect("name");
    let (status, _) = get(
        &sim,
        &api(&format!("zones/us-central1-b/operations/{name}")),
    )
    .await;
    assert_eq!(status, 200);
    // Not visible under another scope.
    let (status, body) = get(&sim, &api(&format!("global/operations/{name}"))).await;
    assert_eq!(status, 404);
    assert_eq!(reason(&body), "notFound");

    let (_, op) = post(
        &sim,
        &api("regions/us-east1/addresses"),
        json!({"name": "ip"}),
    )
    .await;
    assert_eq!(op["region"], link(&sim, "regions/us-east1"));
    let name = op["name"].as_str().expect("name");
    let (status, list) = get(&sim, &api("regions/us-east1/operations")).await;
    assert_eq!(status, 200);
    assert_eq!(list["kind"], "compute#operationList");
    assert_eq!(list["items"][0]["name"], name);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_operation_error_ends_done_with_errors_and_changes_nothing() {
    let sim = sim(0).await;
    sim.faults().push(Fault {
        method: Some("POST".into()),
        path_contains: Some("/addresses".into()),
        operation_error: Some("QUOTA_EXCEEDED".into()),
        times: 1,
        ..Fault::default()
    });
    let (status, op) = post(
        &sim,
        &api("regions/us-east1/addresses"),
        json!({"name": "ip"}),
    )
    .await;
    assert_eq!(status, 200);
    let done = wait(&sim, &op).await;
    assert_eq!(done["error"]["errors"][0]["code"], "QUOTA_EXCEEDED");
    assert!(done["error"]["errors"][0]["message"].is_string());
    assert_eq!(done["httpErrorStatusCode"], 400);
    let (status, _) = get(&sim, &api("regions/us-east1/addresses/ip")).await;
    assert_eq!(status, 404);
    // The rule was used up: the retry succeeds.
    let (_, op) = post(
        &sim,
        &api("regions/us-east1/addresses"),
        json!({"name": "ip"}),
    )
    .await;
    wait_ok(&sim, &op).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn repeated_request_id_answers_the_first_operation() {
    let sim = sim(0).await;
    let path = api("global/healthChecks?requestId=6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b");
    let body = json!({"name": "hc", "type": "TCP"});
    let (status, first) = post(&sim, &path, body.clone()).await;
    assert_eq!(status, 200, "{first}");
    // A retry of the same call is not a second insert (no 409).
    let (status, again) = post(&sim, &path, body.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["name"], first["name"]);
    // Without the id the duplicate is refused.
    let (status, _) = post(&sim, &api("global/healthChecks"), body.clone()).await;
    assert_eq!(status, 409);
    for bad in ["nope", "00000000-0000-0000-0000-000000000000"] {
        let (status, err) = post(
            &sim,
            &api(&format!("global/healthChecks?requestId={bad}")),
            body.clone(),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert_eq!(reason(&err), "invalid");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn aggregated_operations_group_by_scope() {
    let sim = sim(0).await;
    let (_, zonal) = post(
        &sim,
        &api("zones/us-east1-c/instanceGroups"),
        json!({"name": "ig"}),
    )
    .await;
    let (_, global) = post(
        &sim,
        &api("global/healthChecks"),
        json!({"name": "hc", "type": "TCP"}),
    )
    .await;
    let (status, all) = get(&sim, &api("aggregated/operations")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["kind"], "compute#operationAggregatedList");
    assert_eq!(
        all["items"]["zones/us-east1-c"]["operations"][0]["name"],
        zonal["name"]
    );
    assert_eq!(
        all["items"]["global"]["operations"][0]["name"],
        global["name"]
    );
    assert_eq!(
        all["items"]["regions/us-east1"]["warning"]["code"],
        "NO_RESULTS_ON_PAGE"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn resources_are_not_ready_until_their_operation_is_done() {
    let sim = sim(3000).await;
    let (_, op) = post(
        &sim,
        &api("global/healthChecks"),
        json!({"name": "hc", "type": "TCP"}),
    )
    .await;
    // Linking to it, changing it or deleting it before the Operation ends is refused.
    let (status, body) = post(
        &sim,
        &api("global/backendServices"),
        json!({"name": "bs", "healthChecks": ["global/healthChecks/hc"]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(reason(&body), "resourceNotReady");
    assert_eq!(
        body["error"]["message"],
        "The resource 'projects/p1/global/healthChecks/hc' is not ready"
    );
    let (status, body) = delete(&sim, &api("global/healthChecks/hc")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(reason(&body), "resourceNotReady");
    // Reading it is fine.
    let (status, _) = get(&sim, &api("global/healthChecks/hc")).await;
    assert_eq!(status, 200);
    wait_ok(&sim, &op).await;
    let (status, op) = post(
        &sim,
        &api("global/backendServices"),
        json!({"name": "bs", "healthChecks": ["global/healthChecks/hc"]}),
    )
    .await;
    assert_eq!(status, 200, "{op}");
    sim.shutdown().await;
}
