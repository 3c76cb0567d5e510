//! Resource shapes: field names, kinds, ids, links, defaults and the
//! static zones and regions, checked against what the real API returns.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn zones_and_regions_are_listed_and_linked() {
    let sim = sim(0).await;
    let (status, zones) = get(&sim, &api("zones")).await;
    assert_eq!(status, 200);
    assert_eq!(zones["kind"], "compute#zoneList");
    let items = zones["items"].as_array().expect("items");
    assert!(items.iter().any(|z| z["name"] == "us-central1-a"));
    let (status, zone) = get(&sim, &api("zones/us-east1-b")).await;
    assert_eq!(status, 200);
    assert_eq!(zone["kind"], "compute#zone");
    assert_eq!(zone["status"], "UP");
    assert_eq!(zone["region"], link(&sim, "regions/us-east1"));
    assert_eq!(zone["selfLink"], link(&sim, "zones/us-east1-b"));
    let (status, region) = get(&sim, &api("regions/europe-west1")).await;
    assert_eq!(status, 200);
    assert_eq!(region["kind"], "compute#region");
    assert_eq!(region["zones"].as_array().map(Vec::len), Some(3));
    let (status, body) = get(&sim, &api("zones/mars-north1-a")).await;
    assert_eq!(status, 404);
    assert_eq!(reason(&body), "notFound");
    sim.shutdown().await;
}

#[tokio::test]
async fn regional_forwarding_rule_has_the_real_fields() {
    let sim = sim(0).await;
    create(
        &sim,
        "regions/us-central1/addresses",
        json!({"name": "lb-ip", "description": "owned", "labels": {"owner": "gantry"}}),
    )
    .await;
    let (_, address) = get(&sim, &api("regions/us-central1/addresses/lb-ip")).await;
    assert_eq!(address["kind"], "compute#address");
    assert_eq!(address["status"], "RESERVED");
    assert_eq!(address["addressType"], "EXTERNAL");
    assert_eq!(address["region"], link(&sim, "regions/us-central1"));
    assert!(address["labelFingerprint"].is_string());
    let ip = address["address"].as_str().expect("address").to_owned();

    create(
        &sim,
        "regions/us-central1/targetPools",
        json!({"name": "pool"}),
    )
    .await;
    create(
        &sim,
        "regions/us-central1/forwardingRules",
        json!({
            "name": "fr-tcp",
            "IPAddress": link(&sim, "regions/us-central1/addresses/lb-ip"),
            "IPProtocol": "TCP",
            "portRange": "80",
            // A scope-relative link, as clients may send.
            "target": "regions/us-central1/targetPools/pool",
            "labels": {"owner": "gantry"},
        }),
    )
    .await;
    let (status, rule) = get(&sim, &api("regions/us-central1/forwardingRules/fr-tcp")).await;
    assert_eq!(status, 200);
    assert_eq!(rule["kind"], "compute#forwardingRule");
    let id = rule["id"].as_str().expect("id is a decimal string");
    assert!(id.parse::<u64>().is_ok(), "{id}");
    assert_eq!(rule["IPAddress"], ip.as_str());
    assert_eq!(rule["portRange"], "80-80");
    assert_eq!(rule["loadBalancingScheme"], "EXTERNAL");
    assert_eq!(
        rule["target"],
        link(&sim, "regions/us-central1/targetPools/pool")
    );
    assert_eq!(
        rule["selfLink"],
        link(&sim, "regions/us-central1/forwardingRules/fr-tcp")
    );
    assert!(rule["fingerprint"].is_string());
    assert!(rule["labelFingerprint"].is_string());
    let created = rule["creationTimestamp"].as_str().expect("timestamp");
    assert!(created.parse::<jiff::Timestamp>().is_ok(), "{created}");

    let (_, address) = get(&sim, &api("regions/us-central1/addresses/lb-ip")).await;
    assert_eq!(address["status"], "IN_USE");
    assert_eq!(
        address["users"],
        json!([link(&sim, "regions/us-central1/forwardingRules/fr-tcp")])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn global_chain_shapes_and_defaults() {
    let sim = sim(0).await;
    create(
        &sim,
        "zones/us-central1-a/instances",
        json!({"name": "node-a", "machineType": "zones/us-central1-a/machineTypes/e2-small"}),
    )
    .await;
    create(
        &sim,
        "zones/us-central1-a/instanceGroups",
        json!({"name": "ig-a", "namedPorts": [{"name": "port30080", "port": 30080}]}),
    )
    .await;
    create(
        &sim,
        "global/healthChecks",
        json!({"name": "hc", "type": "HTTP", "httpHealthCheck": {"port": 30080, "requestPath": "/healthz"}}),
    )
    .await;
    create(
        &sim,
        "global/backendServices",
        json!({
            "name": "bs",
            "portName": "port30080",
            "healthChecks": [link(&sim, "global/healthChecks/hc")],
            "backends": [{"group": link(&sim, "zones/us-central1-a/instanceGroups/ig-a")}],
        }),
    )
    .await;
    create(
        &sim,
        "global/urlMaps",
        json!({
            "name": "um",
            "defaultService": "global/backendServices/bs",
            "hostRules": [{"hosts": ["example.com"], "pathMatcher": "pm"}],
            "pathMatchers": [{"name": "pm", "defaultService": "global/backendServices/bs",
                "pathRules": [{"paths": ["/api/*"], "service": "global/backendServices/bs"}]}],
        }),
    )
    .await;
    create(
        &sim,
        "global/targetHttpProxies",
        json!({"name": "thp", "urlMap": "global/urlMaps/um"}),
    )
    .await;
    create(
        &sim,
        "global/forwardingRules",
        json!({"name": "fr-80", "portRange": "80", "target": "global/targetHttpProxies/thp"}),
    )
    .await;

    let (_, hc) = get(&sim, &api("global/healthChecks/hc")).await;
    assert_eq!(hc["kind"], "compute#healthCheck");
    assert_eq!(hc["checkIntervalSec"], 5);
    assert!(hc.get("fingerprint").is_none(), "health checks have none");
    assert!(hc.get("region").is_none());
    let (_, bs) = get(&sim, &api("global/backendServices/bs")).await;
    assert_eq!(bs["kind"], "compute#backendService");
    assert_eq!(bs["protocol"], "HTTP");
    assert_eq!(
        bs["backends"][0]["group"],
        link(&sim, "zones/us-central1-a/instanceGroups/ig-a")
    );
    let (_, um) = get(&sim, &api("global/urlMaps/um")).await;
    assert_eq!(um["kind"], "compute#urlMap");
    assert_eq!(
        um["pathMatchers"][0]["pathRules"][0]["service"],
        link(&sim, "global/backendServices/bs")
    );
    let (_, proxy) = get(&sim, &api("global/targetHttpProxies/thp")).await;
    assert_eq!(proxy["kind"], "compute#targetHttpProxy");
    assert_eq!(proxy["urlMap"], link(&sim, "global/urlMaps/um"));
    let (_, ig) = get(&sim, &api("zones/us-central1-a/instanceGroups/ig-a")).await;
    assert_eq!(ig["kind"], "compute#instanceGroup");
    assert_eq!(ig["size"], 0);
    assert_eq!(ig["zone"], link(&sim, "zones/us-central1-a"));
    let (_, instance) = get(&sim, &api("zones/us-central1-a/instances/node-a")).await;
    assert_eq!(instance["status"], "RUNNING");
    assert!(instance["networkInterfaces"][0]["networkIP"].is_string());

    // Lists carry the list kind and omit `items` when empty.
    let (_, list) = get(&sim, &api("global/forwardingRules")).await;
    assert_eq!(list["kind"], "compute#forwardingRuleList");
    assert_eq!(list["items"][0]["name"], "fr-80");
    let (_, empty) = get(&sim, &api("regions/us-east1/forwardingRules")).await;
    assert!(empty.get("items").is_none(), "{empty}");
    sim.shutdown().await;
}

#[tokio::test]
async fn ssl_certificate_private_key_is_never_returned() {
    let sim = sim(0).await;
    create(
        &sim,
        "global/sslCertificates",
        json!({"name": "cert", "certificate": "-----BEGIN CERTIFICATE-----", "privateKey": "secret"}),
    )
    .await;
    let (_, cert) = get(&sim, &api("global/sslCertificates/cert")).await;
    assert_eq!(cert["kind"], "compute#sslCertificate");
    assert_eq!(cert["type"], "SELF_MANAGED");
    assert!(cert.get("privateKey").is_none());
    assert!(!cert.to_string().contains("secret"));
    sim.shutdown().await;
}
