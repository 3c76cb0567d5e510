//! Error bodies and referential checks: notFound, alreadyExists,
//! conditionNotMet on stale fingerprints, resourceInUseByAnotherResource
//! along the load-balancer chains, and invalid names.

mod common;

use common::*;
use serde_json::{Value, json};

async fn global_chain(sim: &gce_sim::GceSim) {
    create(
        sim,
        "zones/us-central1-a/instanceGroups",
        json!({"name": "ig"}),
    )
    .await;
    create(
        sim,
        "global/healthChecks",
        json!({"name": "hc", "type": "TCP"}),
    )
    .await;
    create(
        sim,
        "global/backendServices",
        json!({"name": "bs", "healthChecks": ["global/healthChecks/hc"],
               "backends": [{"group": "zones/us-central1-a/instanceGroups/ig"}]}),
    )
    .await;
    create(
        sim,
        "global/urlMaps",
        json!({"name": "um", "defaultService": "global/backendServices/bs"}),
    )
    .await;
    create(
        sim,
        "global/targetHttpProxies",
        json!({"name": "thp", "urlMap": "global/urlMaps/um"}),
    )
    .await;
    create(sim, "global/addresses", json!({"name": "ip"})).await;
    let (_, ip) = get(sim, &api("global/addresses/ip")).await;
    create(
        sim,
        "global/forwardingRules",
        json!({"name": "fr", "IPAddress": ip["address"], "portRange": "80-80",
               "target": "global/targetHttpProxies/thp"}),
    )
    .await;
}

#[tokio::test]
async fn not_found_and_already_exists_use_the_real_body() {
    let sim = sim(0).await;
    let (status, body) = get(&sim, &api("global/urlMaps/nope")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": {"code": 404,
            "message": "The resource 'projects/p1/global/urlMaps/nope' was not found",
            "errors": [{"message": "The resource 'projects/p1/global/urlMaps/nope' was not found",
                "domain": "global", "reason": "notFound"}]}})
    );
    create(
        &sim,
        "global/firewalls",
        json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}]}),
    )
    .await;
    let (status, body) = post(
        &sim,
        &api("global/firewalls"),
        json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}]}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(reason(&body), "alreadyExists");
    assert_eq!(
        body["error"]["message"],
        "The resource 'projects/p1/global/firewalls/fw' already exists"
    );
    let (status, body) = delete(&sim, &api("global/firewalls/nope")).await;
    assert_eq!(status, 404);
    assert_eq!(reason(&body), "notFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn links_to_missing_resources_are_refused() {
    let sim = sim(0).await;
    let (status, body) = post(
        &sim,
        &api("global/targetHttpProxies"),
        json!({"name": "thp", "urlMap": "global/urlMaps/missing"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"]["message"],
        "The resource 'projects/p1/global/urlMaps/missing' was not found"
    );
    let (status, body) = post(
        &sim,
        &api("global/targetHttpProxies"),
        json!({"name": "thp"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_names_are_invalid() {
    let sim = sim(0).await;
    let long = "a".repeat(64);
    for name in ["Upper", "1abc", "ends-", "under_score", long.as_str(), ""] {
        let (status, body) = post(
            &sim,
            &api("global/healthChecks"),
            json!({"name": name, "type": "TCP"}),
        )
        .await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(reason(&body), "invalid", "{name}");
    }
    let ok = "a".repeat(63);
    let (status, _) = post(
        &sim,
        &api("global/healthChecks"),
        json!({"name": ok, "type": "TCP"}),
    )
    .await;
    assert_eq!(status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn deletes_follow_the_dependency_order() {
    let sim = sim(0).await;
    global_chain(&sim).await;
    let order = [
        (
            "global/addresses/ip",
            "address",
            "projects/p1/global/forwardingRules/fr",
        ),
        (
            "global/targetHttpProxies/thp",
            "target_http_proxy",
            "projects/p1/global/forwardingRules/fr",
        ),
        (
            "global/urlMaps/um",
            "url_map",
            "projects/p1/global/targetHttpProxies/thp",
        ),
        (
            "global/backendServices/bs",
            "backend_service",
            "projects/p1/global/urlMaps/um",
        ),
        (
            "global/healthChecks/hc",
            "health_check",
            "projects/p1/global/backendServices/bs",
        ),
        (
            "zones/us-central1-a/instanceGroups/ig",
            "instance_group",
            "projects/p1/global/backendServices/bs",
        ),
    ];
    for (path, kind, user) in order {
        let (status, body) = delete(&sim, &api(path)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(reason(&body), "resourceInUseByAnotherResource");
        assert_eq!(
            body["error"]["message"],
            format!("The {kind} resource 'projects/p1/{path}' is already being used by '{user}'")
        );
    }
    for path in [
        "global/forwardingRules/fr",
        "global/addresses/ip",
        "global/targetHttpProxies/thp",
        "global/urlMaps/um",
        "global/backendServices/bs",
        "global/healthChecks/hc",
        "zones/us-central1-a/instanceGroups/ig",
    ] {
        let (status, op) = delete(&sim, &api(path)).await;
        assert_eq!(status, 200, "{path}: {op}");
        assert_eq!(op["operationType"], "delete");
        wait_ok(&sim, &op).await;
    }
    let (_, everything) = get(&sim, "/_sim/resources").await;
    assert_eq!(everything, json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn target_pool_and_backend_service_rules_block_deletes() {
    let sim = sim(0).await;
    create(
        &sim,
        "regions/us-central1/targetPools",
        json!({"name": "tp"}),
    )
    .await;
    create(
        &sim,
        "regions/us-central1/healthChecks",
        json!({"name": "hc", "type": "TCP"}),
    )
    .await;
    create(
        &sim,
        "regions/us-central1/backendServices",
        json!({"name": "bs", "healthChecks": ["regions/us-central1/healthChecks/hc"]}),
    )
    .await;
    create(
        &sim,
        "regions/us-central1/forwardingRules",
        json!({"name": "fr-tp", "target": "regions/us-central1/targetPools/tp"}),
    )
    .await;
    create(
        &sim,
        "regions/us-central1/forwardingRules",
        json!({"name": "fr-bs", "backendService": "regions/us-central1/backendServices/bs"}),
    )
    .await;
    for path in [
        "regions/us-central1/targetPools/tp",
        "regions/us-central1/backendServices/bs",
        "regions/us-central1/healthChecks/hc",
    ] {
        let (status, body) = delete(&sim, &api(path)).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(reason(&body), "resourceInUseByAnotherResource");
    }
    sim.shutdown().await;
}

async fn patch(sim: &gce_sim::GceSim, path: &str, body: Value) -> (u16, Value) {
    call(sim, "PATCH", &api(path), Some(body)).await
}

#[tokio::test]
async fn stale_fingerprints_are_refused() {
    let sim = sim(0).await;
    global_chain(&sim).await;
    let (_, bs) = get(&sim, &api("global/backendServices/bs")).await;
    let fingerprint = bs["fingerprint"].clone();
    let (status, op) = patch(
        &sim,
        "global/backendServices/bs",
        json!({"fingerprint": fingerprint, "timeoutSec": 45}),
    )
    .await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["operationType"], "patch");
    wait_ok(&sim, &op).await;
    let (_, after) = get(&sim, &api("global/backendServices/bs")).await;
    assert_eq!(after["timeoutSec"], 45);
    assert_eq!(after["id"], bs["id"]);
    assert_ne!(after["fingerprint"], fingerprint);
    // Fields not in the patch are kept.
    assert_eq!(after["healthChecks"], bs["healthChecks"]);

    let (status, body) = patch(
        &sim,
        "global/backendServices/bs",
        json!({"fingerprint": fingerprint, "timeoutSec": 50}),
    )
    .await;
    assert_eq!(status, 412);
    assert_eq!(reason(&body), "conditionNotMet");
    let (status, _) = patch(&sim, "global/backendServices/bs", json!({"timeoutSec": 50})).await;
    assert_eq!(status, 412);

    // Update (PUT) replaces the whole resource, also under the fingerprint.
    let (_, um) = get(&sim, &api("global/urlMaps/um")).await;
    let (status, body) = call(&sim, "PUT", &api("global/urlMaps/um"),
        Some(json!({"name": "um", "defaultService": "global/backendServices/bs", "fingerprint": "stale"}))).await;
    assert_eq!(status, 412, "{body}");
    let (status, op) = call(
        &sim,
        "PUT",
        &api("global/urlMaps/um"),
        Some(
            json!({"name": "um", "defaultService": "global/backendServices/bs",
            "description": "v2", "fingerprint": um["fingerprint"]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["operationType"], "update");

    // Firewalls and health checks have no fingerprint: patch applies directly.
    let (status, op) = patch(
        &sim,
        "global/healthChecks/hc",
        json!({"checkIntervalSec": 10}),
    )
    .await;
    assert_eq!(status, 200, "{op}");

    // setLabels needs the current labelFingerprint.
    let (_, fr) = get(&sim, &api("global/forwardingRules/fr")).await;
    let (status, body) = post(
        &sim,
        &api("global/forwardingRules/fr/setLabels"),
        json!({"labels": {"a": "b"}, "labelFingerprint": "stale"}),
    )
    .await;
    assert_eq!(status, 412, "{body}");
    let (status, op) = post(
        &sim,
        &api("global/forwardingRules/fr/setLabels"),
        json!({"labels": {"a": "b"}, "labelFingerprint": fr["labelFingerprint"]}),
    )
    .await;
    assert_eq!(status, 200, "{op}");
    let (_, fr2) = get(&sim, &api("global/forwardingRules/fr")).await;
    assert_eq!(fr2["labels"], json!({"a": "b"}));
    assert_ne!(fr2["labelFingerprint"], fr["labelFingerprint"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn fingerprints_match_in_url_safe_base64_too() {
    let sim = sim(0).await;
    global_chain(&sim).await;
    // Fingerprints are written URL-safe; keep writing until one has a
    // character that differs between the two alphabets, then send it in
    // the standard alphabet.
    for round in 0..200 {
        let (_, um) = get(&sim, &api("global/urlMaps/um")).await;
        let fingerprint = um["fingerprint"].as_str().expect("fingerprint").to_owned();
        let standard = fingerprint.replace('-', "+").replace('_', "/");
        let (status, op) = call(
            &sim,
            "PUT",
            &api("global/urlMaps/um"),
            Some(
                json!({"name": "um", "defaultService": "global/backendServices/bs",
                "description": format!("round {round}"), "fingerprint": standard}),
            ),
        )
        .await;
        assert_eq!(status, 200, "{op}");
        if standard != fingerprint {
            sim.shutdown().await;
            return;
        }
    }
    panic!("no fingerprint with - or _ in 200 writes");
}

#[tokio::test]
async fn labels_descriptions_and_backend_regions_are_validated() {
    let sim = sim(0).await;
    let (status, body) = post(
        &sim,
        &api("regions/us-central1/addresses"),
        json!({"name": "ip", "labels": {"gantry.dev/owner": "x"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(reason(&body), "invalid");
    let (status, body) = post(
        &sim,
        &api("regions/us-central1/addresses"),
        json!({"name": "ip", "labels": {"owner": "Default_Svc"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &sim,
        &api("global/firewalls"),
        json!({"name": "fw", "allowed": [{"IPProtocol": "tcp"}], "description": "x".repeat(2049)}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    create(
        &sim,
        "regions/us-central1/addresses",
        json!({"name": "ip", "labels": {"owner": "gantry"}}),
    )
    .await;
    let (_, ip) = get(&sim, &api("regions/us-central1/addresses/ip")).await;
    let (status, body) = post(
        &sim,
        &api("regions/us-central1/addresses/ip/setLabels"),
        json!({"labels": {"Owner": "x"}, "labelFingerprint": ip["labelFingerprint"]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    create(
        &sim,
        "zones/us-east1-b/instanceGroups",
        json!({"name": "far"}),
    )
    .await;
    create(
        &sim,
        "zones/us-central1-c/instanceGroups",
        json!({"name": "near"}),
    )
    .await;
    let (status, body) = post(
        &sim,
        &api("regions/us-central1/backendServices"),
        json!({"name": "bs", "backends": [{"group": "zones/us-east1-b/instanceGroups/far"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(reason(&body), "invalid");
    create(
        &sim,
        "regions/us-central1/backendServices",
        json!({"name": "bs", "backends": [{"group": "zones/us-central1-c/instanceGroups/near"}]}),
    )
    .await;
    sim.shutdown().await;
}
