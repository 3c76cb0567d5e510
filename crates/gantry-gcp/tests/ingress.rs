//! Ingress -> global external Application Load Balancer, through the real
//! `google-cloud-compute-v1` client against the in-process Compute Engine
//! emulator: the seed's chain exactly, two hosts with TLS, a path change
//! made in place, certificate rotation, teardown, and convergence under
//! injected `503`s.

use std::time::Duration;

use gantry_gcp::{ApiOptions, Connection, GcpProvider};
use gantry_model::{
    DesiredLoadBalancer, IngressInputs, LoadBalancer, ProviderKind,
    class::GcpSettings,
    fixtures::{
        IngressBuilder, TEST_CERT_PEM, TEST_KEY_PEM, backend, ingress, lb_class, node, secret,
        service,
    },
    provider::DeleteOutcome,
    select_ingress_class, translate_ingress,
};
use gce_sim::{Fault, GceSim, SimOptions};
use google_cloud_compute_v1::model::Instance;
use serde_json::{Value, json};

const PROJECT: &str = "gantry-test";
const REGION: &str = "us-central1";
const CLUSTER: &str = "seed-cluster";
const CLASS: &str = "gcp-public";
const ZONE: &str = "us-central1-a";

async fn sim() -> GceSim {
    GceSim::start(SimOptions {
        operation_delay: Duration::from_millis(5),
        ..SimOptions::default()
    })
    .await
    .expect("emulator starts")
}

async fn provider(sim: &GceSim) -> GcpProvider {
    let endpoint = sim.url().to_string();
    GcpProvider::with_options(
        CLASS,
        CLUSTER,
        GcpSettings {
            project: Some(PROJECT.into()),
            region: Some(REGION.into()),
            network: Some("default".into()),
            endpoint: Some(endpoint.clone()),
            scheme: None,
            target_pools: false,
        },
        Connection {
            endpoint: Some(endpoint),
            anonymous: true,
        },
        ApiOptions {
            call_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 8,
            backoff_base: Duration::from_millis(5),
            backoff_cap: Duration::from_millis(50),
            rate_per_second: 1000,
            burst: 1000,
        },
    )
    .await
    .expect("provider builds")
}

/// The node VMs the cluster runs on, made in the emulator.
async fn instances(p: &GcpProvider, names: &[&str]) {
    let api = p.api();
    for name in names {
        api.mutate("instances.insert", || {
            api.clients
                .instances
                .insert()
                .set_project(PROJECT)
                .set_zone(ZONE)
                .set_body(
                    Instance::new()
                        .set_name(*name)
                        .set_machine_type(format!("zones/{ZONE}/machineTypes/e2-small")),
                )
                .send()
        })
        .await
        .expect("instance");
    }
    // Count only the provider's own calls from here.
    clear(p);
}

/// The desired state of `ing`, translated as the controller does, with
/// `(name, certificate)` TLS Secrets.
fn translate(ing: IngressBuilder, tls: &[(&str, &str)]) -> DesiredLoadBalancer {
    let ing = ing.build();
    let secrets: Vec<_> = tls
        .iter()
        .map(|(name, crt)| secret(name, "kubernetes.io/tls", crt, TEST_KEY_PEM))
        .collect();
    let class = lb_class(CLASS, ProviderKind::Gcp, &["gce"]);
    let class_name = select_ingress_class(&ing, &[], std::slice::from_ref(&class))
        .expect("class gce selects the Gantry class");
    let services = [
        service("service-test")
            .type_("NodePort")
            .tcp(80, 32213)
            .build(),
        service("api").type_("NodePort").tcp(8080, 32400).build(),
    ];
    let nodes = [node("gke-node-1", "10.100.0.2")
        .zone(ZONE)
        .provider_id(&format!("gce://{PROJECT}/{ZONE}/gke-node-1"))
        .build()];
    translate_ingress(
        &ing,
        &IngressInputs {
            cluster_id: CLUSTER,
            class_name: &class_name,
            class: &class.spec,
            nodes: &nodes,
            services: &services,
            secrets: &secrets,
            slices: &[],
        },
    )
    .expect("translates")
    .desired
}

/// The seed article's Ingress, as the API server serves it.
fn seed() -> DesiredLoadBalancer {
    let ing = ingress("test-ingress")
        .legacy_class("gce")
        .tls(Some("my-ssl-secret"), &[])
        .rule(
            Some("testhost.com"),
            vec![("/*", "ImplementationSpecific", backend("service-test", 80))],
        );
    translate(ing, &[("my-ssl-secret", TEST_CERT_PEM)])
}

/// Stored resources of one kind (`compute#urlMap`...), name-sorted.
fn of_kind(sim: &GceSim, kind: &str) -> Vec<Value> {
    sim.resources()
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// The part of a link from `projects/` on.
fn rel(link: &Value) -> String {
    let s = link.as_str().unwrap_or_default();
    s.find("projects/")
        .map(|i| s[i..].to_string())
        .unwrap_or_default()
}

fn global(collection: &str, name: &Value) -> String {
    format!(
        "projects/{PROJECT}/global/{collection}/{}",
        name.as_str().expect("name")
    )
}

/// Every stored resource that says it is Gantry's.
fn gantry_resources(sim: &GceSim) -> Vec<Value> {
    sim.resources()
        .into_iter()
        .filter(|r| {
            r["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("Managed by Gantry"))
                || r["labels"]["gantry-managed"] == "true"
        })
        .collect()
}

/// Writes counted by the provider since the last clear.
fn writes(p: &GcpProvider) -> u64 {
    p.calls().lock().writes()
}

fn clear(p: &GcpProvider) {
    p.calls().lock().clear();
}

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

fn shop(login_path: &str, api_secret_crt: &str) -> DesiredLoadBalancer {
    let ing = ingress("shop")
        .legacy_class("gce")
        .tls(Some("shop-tls"), &["shop.example.com"])
        .tls(Some("admin-tls"), &["admin.example.com"])
        .rule(
            Some("shop.example.com"),
            vec![
                ("/api", "Prefix", backend("api", 8080)),
                ("/", "Prefix", backend("service-test", 80)),
            ],
        )
        .rule(
            Some("admin.example.com"),
            vec![(login_path, "Exact", backend("service-test", 80))],
        )
        .default_backend(backend("service-test", 80));
    translate(
        ing,
        &[("shop-tls", TEST_CERT_PEM), ("admin-tls", api_secret_crt)],
    )
}

fn path_rules(map: &Value, host: &str) -> Vec<(Vec<String>, String)> {
    let matcher = map["hostRules"]
        .as_array()
        .expect("host rules")
        .iter()
        .find(|h| h["hosts"] == json!([host]))
        .map(|h| h["pathMatcher"].clone())
        .expect("host rule");
    let m = map["pathMatchers"]
        .as_array()
        .expect("matchers")
        .iter()
        .find(|m| m["name"] == matcher)
        .expect("matcher");
    m["pathRules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                serde_json::from_value(r["paths"].clone()).expect("paths"),
                rel(&r["service"]),
            )
        })
        .collect()
}

fn service_named(sim: &GceSim, port_name: &str) -> String {
    let bs = of_kind(sim, "compute#backendService");
    let found = bs
        .iter()
        .find(|b| b["portName"] == port_name)
        .expect("backend service");
    global("backendServices", &found["name"])
}

const CERT_B: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBsecondcertificatebody\n-----END CERTIFICATE-----\n";

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

/// The seed with extra annotations.
fn seed_with(annotations: &[(&str, &str)]) -> DesiredLoadBalancer {
    let mut ing = ingress("test-ingress")
        .legacy_class("gce")
        .tls(Some("my-ssl-secret"), &[])
        .rule(
            Some("testhost.com"),
            vec![("/*", "ImplementationSpecific", backend("service-test", 80))],
        );
    for (k, v) in annotations {
        ing = ing.annotation(k, v);
    }
    translate(ing, &[("my-ssl-secret", TEST_CERT_PEM)])
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
