//! Ingress -> global external Application Load Balancer, through the real
//! `google-cloud-compute-v1` client against the in-process Compute Engine
//! emulator: the seed's chain exactly, two hosts with TLS, a path change
//! made in place, certificate rotation and teardown (faults, a stale
//! fingerprint, foreign resources and the annotation-driven forms are in
//! `ingress_edges.rs`).

mod common;

use common::{PROJECT, l7::*};
use gantry_model::{LoadBalancer, fixtures::TEST_CERT_PEM, provider::DeleteOutcome};
use serde_json::{Value, json};

#[tokio::test]
async fn seed_ingress_comes_out_as_exactly_the_chain() {
    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;
    let desired = seed();

    let plan = p.plan(&desired).await.expect("plan");
    assert_eq!(writes(&p), 0, "plan only reads");
    assert!(!plan.is_empty());

    clear(&p);
    let status = p.ensure(&desired).await.expect("ensure");
    assert_eq!(status.ingress[0].ports.len(), 2, "80 and 443 are reported");
    let creates = plan.changes.len();
    let (total, made) = {
        let log = p.calls();
        let log = log.lock();
        (log.total(), log.writes())
    };
    println!("calls per Ingress create: {total} ({made} writes, {creates} planned changes)");
    assert_eq!(
        usize::try_from(made).expect("count"),
        creates,
        "the plan names every write"
    );

    // address -> forwarding rules -> proxies -> URL map -> backend service
    // -> health check + instance group, and the certificate.
    let addresses = of_kind(&sim, "compute#address");
    let rules = of_kind(&sim, "compute#forwardingRule");
    let http = of_kind(&sim, "compute#targetHttpProxy");
    let https = of_kind(&sim, "compute#targetHttpsProxy");
    let maps = of_kind(&sim, "compute#urlMap");
    let services = of_kind(&sim, "compute#backendService");
    let checks = of_kind(&sim, "compute#healthCheck");
    let groups = of_kind(&sim, "compute#instanceGroup");
    let certs = of_kind(&sim, "compute#sslCertificate");
    for (what, n) in [
        ("address", addresses.len()),
        ("http proxy", http.len()),
        ("https proxy", https.len()),
        ("url map", maps.len()),
        ("backend service", services.len()),
        ("health check", checks.len()),
        ("instance group", groups.len()),
        ("certificate", certs.len()),
    ] {
        assert_eq!(n, 1, "exactly one {what}");
    }
    assert_eq!(rules.len(), 2, "forwarding rules for 80 and 443");
    let ip = addresses[0]["address"].as_str().expect("ip");
    assert!(
        addresses[0]["selfLink"]
            .as_str()
            .expect("link")
            .contains("/global/")
    );
    assert_eq!(
        status.ingress[0].ip.map(|i| i.to_string()).as_deref(),
        Some(ip)
    );
    let mut ports: Vec<(&str, String)> = rules
        .iter()
        .map(|r| {
            assert_eq!(r["IPAddress"], ip);
            assert_eq!(r["loadBalancingScheme"], "EXTERNAL_MANAGED");
            (r["portRange"].as_str().expect("ports"), rel(&r["target"]))
        })
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        [
            ("443-443", global("targetHttpsProxies", &https[0]["name"])),
            ("80-80", global("targetHttpProxies", &http[0]["name"])),
        ]
    );
    let map_link = global("urlMaps", &maps[0]["name"]);
    assert_eq!(rel(&http[0]["urlMap"]), map_link);
    assert_eq!(rel(&https[0]["urlMap"]), map_link);
    assert_eq!(
        https[0]["sslCertificates"]
            .as_array()
            .expect("certs")
            .iter()
            .map(rel)
            .collect::<Vec<_>>(),
        [global("sslCertificates", &certs[0]["name"])]
    );

    // URL map: host testhost.com, `/*` -> the backend service of service-test:80.
    let be = global("backendServices", &services[0]["name"]);
    let map = &maps[0];
    assert_eq!(map["hostRules"][0]["hosts"], json!(["testhost.com"]));
    assert_eq!(map["hostRules"].as_array().map(Vec::len), Some(1));
    let matcher = &map["pathMatchers"][0];
    assert_eq!(matcher["name"], map["hostRules"][0]["pathMatcher"]);
    assert_eq!(matcher["pathRules"][0]["paths"], json!(["/*"]));
    assert_eq!(matcher["pathRules"].as_array().map(Vec::len), Some(1));
    assert_eq!(rel(&matcher["pathRules"][0]["service"]), be);
    // No default backend: a fixed 404 from the balancer itself.
    let abort = &map["defaultRouteAction"]["faultInjectionPolicy"]["abort"];
    assert_eq!(abort["httpStatus"], 404);
    assert_eq!(abort["percentage"], 100.0);

    // Backend service over the instance group's named port, with its check.
    let bs = &services[0];
    assert_eq!(bs["loadBalancingScheme"], "EXTERNAL_MANAGED");
    assert_eq!(bs["protocol"], "HTTP");
    assert_eq!(bs["portName"], "port32213");
    assert_eq!(
        rel(&bs["healthChecks"][0]),
        global("healthChecks", &checks[0]["name"])
    );
    assert_eq!(
        rel(&bs["backends"][0]["group"]),
        format!(
            "projects/{PROJECT}/zones/{ZONE}/instanceGroups/{}",
            groups[0]["name"].as_str().expect("name")
        )
    );
    assert_eq!(checks[0]["type"], "HTTP");
    assert_eq!(checks[0]["httpHealthCheck"]["port"], 32213);
    assert_eq!(checks[0]["httpHealthCheck"]["requestPath"], "/");
    assert_eq!(
        groups[0]["namedPorts"],
        json!([{"name": "port32213", "port": 32213}])
    );
    assert_eq!(groups[0]["size"], 1);
    assert!(
        certs[0].get("privateKey").is_none(),
        "keys are never returned"
    );

    // The load balancer's proxies and health checkers may reach the node port.
    let firewalls = of_kind(&sim, "compute#firewall");
    assert_eq!(firewalls.len(), 1);
    assert_eq!(
        firewalls[0]["sourceRanges"],
        json!(["130.211.0.0/22", "35.191.0.0/16"])
    );
    assert_eq!(
        firewalls[0]["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["32213"]}])
    );
    assert_eq!(firewalls[0]["direction"], "INGRESS");

    // A resync of the same state writes nothing and changes nothing.
    clear(&p);
    let before = sim.resources();
    let again = p.ensure(&desired).await.expect("resync");
    let total = p.calls().lock().total();
    println!("calls per no-op resync: {total} ({} writes)", writes(&p));
    assert_eq!(writes(&p), 0);
    assert_eq!(again, status);
    assert_eq!(sim.resources(), before);
    assert!(p.plan(&desired).await.expect("plan").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn two_hosts_two_paths_tls_then_path_change_and_rotation_in_place() {
    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;
    p.ensure(&shop("/login", TEST_CERT_PEM))
        .await
        .expect("ensure");

    let maps = of_kind(&sim, "compute#urlMap");
    assert_eq!(maps.len(), 1);
    let web = service_named(&sim, "port32213");
    let api = service_named(&sim, "port32400");
    assert_eq!(
        path_rules(&maps[0], "shop.example.com"),
        [
            (vec!["/api".to_string(), "/api/*".to_string()], api.clone()),
            (vec!["/*".to_string()], web.clone()),
        ]
    );
    assert_eq!(
        path_rules(&maps[0], "admin.example.com"),
        [(vec!["/login".to_string()], web.clone())]
    );
    assert_eq!(rel(&maps[0]["defaultService"]), web, "the default backend");
    assert_eq!(of_kind(&sim, "compute#backendService").len(), 2);
    assert_eq!(of_kind(&sim, "compute#healthCheck").len(), 2);
    assert_eq!(of_kind(&sim, "compute#sslCertificate").len(), 2);
    let https = of_kind(&sim, "compute#targetHttpsProxy");
    assert_eq!(
        https[0]["sslCertificates"].as_array().map(Vec::len),
        Some(2)
    );
    let groups = of_kind(&sim, "compute#instanceGroup");
    assert_eq!(groups.len(), 1, "one shared group per zone");
    assert_eq!(
        groups[0]["namedPorts"],
        json!([{"name": "port32213", "port": 32213}, {"name": "port32400", "port": 32400}])
    );

    // A path change is one URL map update, in place, with its fingerprint.
    let map_before = maps[0].clone();
    let count = sim.resources().len();
    clear(&p);
    p.ensure(&shop("/signin", TEST_CERT_PEM))
        .await
        .expect("path change");
    let log = p.calls();
    let writes: Vec<_> = log
        .lock()
        .counts()
        .iter()
        .filter(|((op, _), _)| !gantry_gcp::is_read(op))
        .map(|((op, outcome), n)| (*op, *outcome, *n))
        .collect();
    assert_eq!(
        writes,
        [("urlMaps.update", gantry_gcp::Outcome::Ok, 1)],
        "only the URL map changes"
    );
    let map_after = &of_kind(&sim, "compute#urlMap")[0];
    assert_eq!(map_after["id"], map_before["id"], "updated in place");
    assert_ne!(map_after["fingerprint"], map_before["fingerprint"]);
    assert_eq!(
        path_rules(map_after, "admin.example.com"),
        [(vec!["/signin".to_string()], web.clone())]
    );
    assert_eq!(sim.resources().len(), count, "no new resources");

    // A rotated Secret: the new certificate goes on the proxy, the old one goes.
    let old: Vec<String> = of_kind(&sim, "compute#sslCertificate")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    p.ensure(&shop("/signin", CERT_B)).await.expect("rotation");
    let certs = of_kind(&sim, "compute#sslCertificate");
    assert_eq!(certs.len(), 2);
    let names: Vec<&str> = certs.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| old.iter().any(|o| o == *n)).count(),
        1,
        "the unchanged certificate stays, the rotated one is new: {names:?} vs {old:?}"
    );
    let on_proxy: Vec<String> = of_kind(&sim, "compute#targetHttpsProxy")[0]["sslCertificates"]
        .as_array()
        .expect("certs")
        .iter()
        .map(rel)
        .collect();
    let mut want: Vec<String> = names
        .iter()
        .map(|n| global("sslCertificates", &json!(n)))
        .collect();
    let mut got = on_proxy.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // Teardown leaves nothing of Gantry's, and a replay finds nothing.
    let owner = shop("/signin", CERT_B).owner;
    assert_eq!(
        p.delete(&owner).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    assert_eq!(gantry_resources(&sim), Vec::<Value>::new());
    assert_eq!(
        p.delete(&owner).await.expect("replay"),
        DeleteOutcome::NotFound
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_leaves_nothing_and_list_owned_finds_the_ingress() {
    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;
    let desired = seed();
    p.ensure(&desired).await.expect("ensure");
    assert_eq!(
        p.list_owned(CLUSTER).await.expect("list"),
        vec![desired.owner.clone()]
    );
    clear(&p);
    assert_eq!(
        p.delete(&desired.owner).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    println!("calls per Ingress delete: {}", p.calls().lock().total());
    assert_eq!(gantry_resources(&sim), Vec::<Value>::new());
    assert!(p.list_owned(CLUSTER).await.expect("list").is_empty());
    // Only the test's own VM is left.
    let left: Vec<Value> = sim
        .resources()
        .into_iter()
        .filter(|r| r["kind"] != "compute#instance")
        .collect();
    assert_eq!(left, Vec::<Value>::new());
    sim.shutdown().await;
}
