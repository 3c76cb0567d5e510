//! Ingress balancers at the edges, against the in-process Compute Engine
//! emulator through the real `google-cloud-compute-v1` client: injected
//! `503`s, a stale URL map fingerprint, a foreign URL map with our name,
//! and the forms the annotations ask for (redirect-only HTTP, HTTPS only,
//! a static address reserved outside Gantry).

mod common;

use common::{PROJECT, l7::*};
use gantry_model::{LoadBalancer, fixtures::TEST_CERT_PEM};
use gce_sim::Fault;
use serde_json::Value;

#[tokio::test]
async fn injected_503s_converge_without_duplicates() {
    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;
    // Every third call fails with 503 backendError until cleared.
    sim.faults().push(Fault {
        status: Some(503),
        every: Some(3),
        times: 0,
        ..Fault::default()
    });
    let desired = seed();
    p.ensure(&desired).await.expect("converges despite 503s");
    p.ensure(&desired).await.expect("resync");
    sim.faults().clear();
    for (kind, n) in [
        ("compute#address", 1),
        ("compute#forwardingRule", 2),
        ("compute#targetHttpProxy", 1),
        ("compute#targetHttpsProxy", 1),
        ("compute#urlMap", 1),
        ("compute#backendService", 1),
        ("compute#healthCheck", 1),
        ("compute#instanceGroup", 1),
        ("compute#sslCertificate", 1),
        ("compute#firewall", 1),
    ] {
        assert_eq!(of_kind(&sim, kind).len(), n, "{kind}");
    }
    let errors: u64 = p
        .calls()
        .lock()
        .counts()
        .iter()
        .filter(|((_, o), _)| *o == gantry_gcp::Outcome::Error)
        .map(|(_, n)| n)
        .sum();
    assert!(errors > 0, "faults were injected");
    sim.faults().push(Fault {
        status: Some(503),
        every: Some(3),
        times: 0,
        ..Fault::default()
    });
    p.delete(&desired.owner).await.expect("delete converges");
    sim.faults().clear();
    assert_eq!(gantry_resources(&sim), Vec::<Value>::new());
    sim.shutdown().await;
}

#[tokio::test]
async fn stale_fingerprint_on_url_map_update_is_reread_and_retried() {
    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;
    p.ensure(&shop("/login", TEST_CERT_PEM))
        .await
        .expect("ensure");
    let id = of_kind(&sim, "compute#urlMap")[0]["id"].clone();
    // The next URL map update answers 412 conditionNotMet, as when another
    // writer changed the map between our read and our write.
    sim.faults().push(Fault {
        method: Some("PUT".into()),
        path_contains: Some("/urlMaps/".into()),
        status: Some(412),
        times: 1,
        ..Fault::default()
    });
    clear(&p);
    p.ensure(&shop("/signin", TEST_CERT_PEM))
        .await
        .expect("converges after re-reading");
    let log = p.calls();
    let counts = log.lock().counts().clone();
    assert_eq!(
        counts.get(&("urlMaps.update", gantry_gcp::Outcome::Error)),
        Some(&1)
    );
    assert_eq!(
        counts.get(&("urlMaps.update", gantry_gcp::Outcome::Ok)),
        Some(&1)
    );
    let maps = of_kind(&sim, "compute#urlMap");
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0]["id"], id);
    assert_eq!(
        path_rules(&maps[0], "admin.example.com")[0].0,
        ["/signin".to_string()]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn foreign_url_map_with_our_name_is_neither_adopted_nor_deleted() {
    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;
    let desired = seed();
    let name = desired.owner.resource_name(CLASS, "um", 63);
    let api = p.api();
    api.mutate("urlMaps.insert", || {
        api.clients
            .url_maps
            .insert()
            .set_project(PROJECT)
            .set_body(
                google_cloud_compute_v1::model::UrlMap::new()
                    .set_name(name.clone())
                    .set_description("made by hand"),
            )
            .send()
    })
    .await
    .expect("foreign map");
    let err = p.ensure(&desired).await.expect_err("not ours");
    assert!(
        matches!(&err, gantry_model::ProviderError::NotOwned { resource: "url-map", name: n, .. } if *n == name),
        "{err:?}"
    );
    assert_eq!(err.class(), gantry_model::provider::ErrorClass::Permanent);
    p.delete(&desired.owner).await.expect("delete");
    let maps = of_kind(&sim, "compute#urlMap");
    assert_eq!(maps.len(), 1, "the foreign map stays");
    assert_eq!(maps[0]["description"], "made by hand");
    assert_eq!(gantry_resources(&sim), Vec::<Value>::new());
    sim.shutdown().await;
}

#[tokio::test]
async fn ssl_redirect_allow_http_off_and_a_static_address() {
    use gantry_model::annotations::{LEGACY_ALLOW_HTTP, SSL_REDIRECT, STATIC_IP_NAME};

    let sim = sim().await;
    let p = provider(&sim).await;
    instances(&p, &["gke-node-1"]).await;

    // ssl-redirect: port 80 answers with a redirect-only URL map.
    p.ensure(&seed_with(&[(SSL_REDIRECT, "true")]))
        .await
        .expect("redirect");
    let maps = of_kind(&sim, "compute#urlMap");
    assert_eq!(maps.len(), 2);
    let redirect = maps
        .iter()
        .find(|m| m["defaultUrlRedirect"]["httpsRedirect"] == true)
        .expect("redirect map");
    let routing = maps
        .iter()
        .find(|m| m["hostRules"].is_array())
        .expect("routing map");
    let http = &of_kind(&sim, "compute#targetHttpProxy")[0];
    let https = &of_kind(&sim, "compute#targetHttpsProxy")[0];
    assert_eq!(rel(&http["urlMap"]), global("urlMaps", &redirect["name"]));
    assert_eq!(rel(&https["urlMap"]), global("urlMaps", &routing["name"]));

    // allow-http off: the HTTP rule, proxy and redirect map go.
    p.ensure(&seed_with(&[(LEGACY_ALLOW_HTTP, "false")]))
        .await
        .expect("https only");
    assert!(of_kind(&sim, "compute#targetHttpProxy").is_empty());
    assert_eq!(of_kind(&sim, "compute#urlMap").len(), 1);
    let rules = of_kind(&sim, "compute#forwardingRule");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["portRange"], "443-443");

    // A static address reserved outside Gantry: the rule moves onto it and
    // Gantry's own address is released; the static one is never touched.
    let api = p.api();
    api.mutate("globalAddresses.insert", || {
        api.clients
            .global_addresses
            .insert()
            .set_project(PROJECT)
            .set_body(google_cloud_compute_v1::model::Address::new().set_name("site-ip"))
            .send()
    })
    .await
    .expect("static address");
    let desired = seed_with(&[(LEGACY_ALLOW_HTTP, "false"), (STATIC_IP_NAME, "site-ip")]);
    let status = p.ensure(&desired).await.expect("static");
    let addresses = of_kind(&sim, "compute#address");
    assert_eq!(addresses.len(), 1, "only the static address is left");
    assert_eq!(addresses[0]["name"], "site-ip");
    let ip = addresses[0]["address"].clone();
    assert_eq!(of_kind(&sim, "compute#forwardingRule")[0]["IPAddress"], ip);
    assert_eq!(
        status.ingress[0].ip.map(|i| i.to_string()),
        ip.as_str().map(str::to_string)
    );

    p.delete(&desired.owner).await.expect("delete");
    assert_eq!(gantry_resources(&sim), Vec::<Value>::new());
    assert_eq!(
        of_kind(&sim, "compute#address").len(),
        1,
        "static address kept"
    );
    sim.shutdown().await;
}
