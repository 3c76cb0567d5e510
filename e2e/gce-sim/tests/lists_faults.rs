//! Paging and filters on list calls, unmanaged instance group membership,
//! and injected faults (429, 503, latency) through the handle and the
//! `/_sim/faults` endpoint.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn lists_page_with_max_results_and_page_token() {
    let sim = sim(0).await;
    for i in 0..7 {
        let owner = if i % 2 == 0 { "gantry" } else { "other" };
        create(
            &sim,
            "global/firewalls",
            json!({"name": format!("fw-{i}"), "allowed": [{"IPProtocol": "tcp"}],
                   "description": owner, "priority": 1000 + i}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = api("global/firewalls?maxResults=3");
        if let Some(t) = &token {
            path.push_str(&format!("&pageToken={t}"));
        }
        let (status, page) = get(&sim, &path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        seen.extend(names(&page));
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..7).map(|i| format!("fw-{i}")).collect();
    assert_eq!(seen, want);

    let (status, body) = get(&sim, &api("global/firewalls?pageToken=garbage!")).await;
    assert_eq!(status, 400);
    assert_eq!(reason(&body), "invalid");
    let (status, _) = get(&sim, &api("global/firewalls?maxResults=501")).await;
    assert_eq!(status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_filter_by_name_and_labels() {
    let sim = sim(0).await;
    for (name, owner) in [("a-1", "gantry"), ("a-2", "other"), ("b-1", "gantry")] {
        create(
            &sim,
            "regions/us-central1/addresses",
            json!({"name": name, "labels": {"owner": owner}}),
        )
        .await;
    }
    let q = |f: &str| {
        let encoded: String = form_urlencoded::byte_serialize(f.as_bytes()).collect();
        api(&format!("regions/us-central1/addresses?filter={encoded}"))
    };
    let (_, list) = get(&sim, &q("labels.owner = gantry")).await;
    assert_eq!(names(&list), ["a-1", "b-1"]);
    let (_, list) = get(&sim, &q("name = \"a-2\"")).await;
    assert_eq!(names(&list), ["a-2"]);
    let (_, list) = get(&sim, &q("(labels.owner = gantry) (name = a-*)")).await;
    assert_eq!(names(&list), ["a-1"]);
    let (_, list) = get(&sim, &q("name != a-1")).await;
    assert_eq!(names(&list), ["a-2", "b-1"]);
    let (_, list) = get(&sim, &q("name eq 'a-.*'")).await;
    assert_eq!(names(&list), ["a-1", "a-2"]);
    let (status, body) = get(&sim, &q("name =")).await;
    assert_eq!(status, 400, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn instance_groups_add_list_and_remove_members() {
    let sim = sim(0).await;
    for (zone, name) in [
        ("us-central1-a", "n1"),
        ("us-central1-a", "n2"),
        ("us-central1-b", "n3"),
    ] {
        create(
            &sim,
            &format!("zones/{zone}/instances"),
            json!({"name": name, "machineType": format!("zones/{zone}/machineTypes/e2-small")}),
        )
        .await;
    }
    create(
        &sim,
        "zones/us-central1-a/instanceGroups",
        json!({"name": "ig"}),
    )
    .await;
    let group = "zones/us-central1-a/instanceGroups/ig";
    let member = |n: &str| json!({"instances": [{"instance": link(&sim, &format!("zones/us-central1-a/instances/{n}"))}]});
    let (status, op) = post(&sim, &api(&format!("{group}/addInstances")), member("n1")).await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["operationType"], "compute.instanceGroups.addInstances");
    wait_ok(&sim, &op).await;
    let (_, op) = post(&sim, &api(&format!("{group}/addInstances")), member("n2")).await;
    wait_ok(&sim, &op).await;
    let (status, body) = post(&sim, &api(&format!("{group}/addInstances")), member("n1")).await;
    assert_eq!(status, 400);
    assert_eq!(reason(&body), "memberAlreadyExists");
    // An instance of another zone cannot join.
    let other =
        json!({"instances": [{"instance": link(&sim, "zones/us-central1-b/instances/n3")}]});
    let (status, body) = post(&sim, &api(&format!("{group}/addInstances")), other).await;
    assert_eq!(status, 400, "{body}");

    let (status, listed) = post(
        &sim,
        &api(&format!("{group}/listInstances")),
        json!({"instanceState": "ALL"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["kind"], "compute#instanceGroupsListInstances");
    assert_eq!(
        listed["items"][0]["instance"],
        link(&sim, "zones/us-central1-a/instances/n1")
    );
    assert_eq!(listed["items"][0]["status"], "RUNNING");
    let (_, ig) = get(&sim, &api(group)).await;
    assert_eq!(ig["size"], 2);

    let (_, ig) = get(&sim, &api(group)).await;
    let (status, body) = post(
        &sim,
        &api(&format!("{group}/setNamedPorts")),
        json!({"namedPorts": [{"name": "http", "port": 30080}], "fingerprint": "stale"}),
    )
    .await;
    assert_eq!(status, 412, "{body}");
    let (_, op) = post(
        &sim,
        &api(&format!("{group}/setNamedPorts")),
        json!({"namedPorts": [{"name": "http", "port": 30080}], "fingerprint": ig["fingerprint"]}),
    )
    .await;
    wait_ok(&sim, &op).await;
    let (_, ig) = get(&sim, &api(group)).await;
    assert_eq!(ig["namedPorts"], json!([{"name": "http", "port": 30080}]));

    let (_, op) = post(
        &sim,
        &api(&format!("{group}/removeInstances")),
        member("n1"),
    )
    .await;
    wait_ok(&sim, &op).await;
    // Deleting an instance drops it from its groups.
    let (_, op) = delete(&sim, &api("zones/us-central1-a/instances/n2")).await;
    wait_ok(&sim, &op).await;
    let (_, ig) = get(&sim, &api(group)).await;
    assert_eq!(ig["size"], 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_from_the_handle_fail_the_next_matching_calls() {
    let sim = sim(0).await;
    sim.faults().fail_next("/global/healthChecks", 429, 2);
    for _ in 0..2 {
        let (status, body) = get(&sim, &api("global/healthChecks")).await;
        assert_eq!(status, 429);
        assert_eq!(reason(&body), "rateLimitExceeded");
        assert_eq!(body["error"]["errors"][0]["domain"], "usageLimits");
    }
    let (status, _) = get(&sim, &api("global/healthChecks")).await;
    assert_eq!(status, 200);
    // Other paths were never affected.
    sim.faults().fail_next("/global/urlMaps", 503, 1);
    let (status, _) = get(&sim, &api("global/healthChecks")).await;
    assert_eq!(status, 200);
    let (status, body) = get(&sim, &api("global/urlMaps")).await;
    assert_eq!(status, 503);
    assert_eq!(reason(&body), "backendError");
    assert!(sim.faults().pending().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_from_the_endpoint_add_latency_and_failures() {
    let sim = sim(0).await;
    let rules = json!([
        {"method": "POST", "pathContains": "/firewalls", "status": 503, "times": 1},
        {"method": "GET", "pathContains": "/zones", "latencyMs": 300, "times": 1},
    ]);
    let (status, pending) = post(&sim, "/_sim/faults", rules).await;
    assert_eq!(status, 200);
    assert_eq!(pending.as_array().map(Vec::len), Some(2));
    let body = json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}]});
    let (status, _) = post(&sim, &api("global/firewalls"), body.clone()).await;
    assert_eq!(status, 503);
    let (status, _) = post(&sim, &api("global/firewalls"), body).await;
    assert_eq!(status, 200);
    let started = Instant::now();
    let (status, _) = get(&sim, &api("zones")).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The latency rule was used up.
    assert_eq!(sim.faults().pending(), vec![]);

    post(&sim, "/_sim/faults", json!({"status": 429, "times": 5})).await;
    let (status, _) = delete(&sim, "/_sim/faults").await;
    assert_eq!(status, 200);
    let (status, _) = get(&sim, &api("zones")).await;
    assert_eq!(status, 200);
    // The call log saw every API call (control calls excluded).
    assert!(sim.calls().iter().all(|c| !c.contains("/_sim/")));
    assert_eq!(sim.calls().len(), 4);
    assert_eq!(
        sim.calls()[0],
        "POST /compute/v1/projects/p1/global/firewalls"
    );
    let (status, _) = delete(&sim, "/_sim/calls").await;
    assert_eq!(status, 200);
    get(&sim, &api("zones")).await;
    let (_, calls) = get(&sim, "/_sim/calls").await;
    assert_eq!(calls, json!(["GET /compute/v1/projects/p1/zones"]));
    sim.clear_calls();
    assert!(sim.calls().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn aggregated_lists_group_by_scope_and_page_across_scopes() {
    let sim = sim(0).await;
    create(&sim, "global/addresses", json!({"name": "g-1"})).await;
    create(&sim, "regions/us-east1/addresses", json!({"name": "e-1"})).await;
    create(
        &sim,
        "regions/us-east1/addresses",
        json!({"name": "e-2", "labels": {"owner": "gantry"}}),
    )
    .await;
    let (status, all) = get(&sim, &api("aggregated/addresses")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["kind"], "compute#addressAggregatedList");
    assert_eq!(all["items"]["global"]["addresses"][0]["name"], "g-1");
    assert_eq!(
        all["items"]["regions/us-east1"]["addresses"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        all["items"]["regions/us-central1"]["warning"]["code"],
        "NO_RESULTS_ON_PAGE"
    );

    let (_, first) = get(&sim, &api("aggregated/addresses?maxResults=2")).await;
    assert_eq!(
        first["items"]["regions/us-east1"]["addresses"][0]["name"],
        "e-1"
    );
    let token = first["nextPageToken"].as_str().expect("a second page");
    let (_, second) = get(
        &sim,
        &api(&format!(
            "aggregated/addresses?maxResults=2&pageToken={token}"
        )),
    )
    .await;
    assert_eq!(
        second["items"]["regions/us-east1"]["addresses"][0]["name"],
        "e-2"
    );
    assert!(second.get("nextPageToken").is_none());

    let filter: String = form_urlencoded::byte_serialize(b"labels.owner = gantry").collect();
    let (_, owned) = get(&sim, &api(&format!("aggregated/addresses?filter={filter}"))).await;
    assert_eq!(
        owned["items"]["regions/us-east1"]["addresses"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(owned["items"]["global"].get("addresses").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_on_a_share_of_calls_without_limit() {
    let sim = sim(0).await;
    let (status, _) = post(
        &sim,
        "/_sim/faults",
        json!({"pathContains": "/regions", "status": 503, "every": 3, "times": 0}),
    )
    .await;
    assert_eq!(status, 200);
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(get(&sim, &api("regions")).await.0);
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200, 200, 503]);
    // Unlimited rules stay until cleared.
    assert_eq!(sim.faults().pending().len(), 1);
    sim.faults().clear();
    assert_eq!(get(&sim, &api("regions")).await.0, 200);
    sim.shutdown().await;
}
