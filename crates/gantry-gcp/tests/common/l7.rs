//! Helpers of the Ingress (L7) tests: a provider for the Gantry class the
//! seed's `gce` Ingress selects, the node VM, the Ingresses translated as
//! the controller does, and reading the URL maps and links the emulator
//! stores.

use std::time::Duration;

use gantry_gcp::{ApiOptions, Connection, GcpProvider};
use gantry_model::{
    DesiredLoadBalancer, IngressInputs, ProviderKind,
    fixtures::{
        IngressBuilder, TEST_CERT_PEM, TEST_KEY_PEM, backend, ingress, lb_class, node, secret,
        service,
    },
    select_ingress_class, translate_ingress,
};
use gce_sim::GceSim;
use google_cloud_compute_v1::model::Instance;
use serde_json::{Value, json};

pub use super::of_kind;
use super::{PROJECT, settings};

/// Cluster id of the Ingress tests; the other tests use `super::CLUSTER`.
pub const CLUSTER: &str = "seed-cluster";
pub const CLASS: &str = "gcp-public";
pub const ZONE: &str = "us-central1-a";

/// A running emulator whose Operations finish in 5 ms.
pub async fn sim() -> GceSim {
    super::sim(Duration::from_millis(5)).await
}

/// A provider of `CLASS` pointed at `sim`, with more attempts and shorter
/// backoff than `super::options()`.
pub async fn provider(sim: &GceSim) -> GcpProvider {
    GcpProvider::with_options(
        CLASS,
        CLUSTER,
        settings(sim, false),
        Connection {
            endpoint: Some(sim.url().to_string()),
            anonymous: true,
        },
        ApiOptions {
            max_attempts: 8,
            backoff_base: Duration::from_millis(5),
            backoff_cap: Duration::from_millis(50),
            ..super::options()
        },
    )
    .await
    .expect("provider builds")
}

/// The node VMs the cluster runs on, made in the emulator.
pub async fn instances(p: &GcpProvider, names: &[&str]) {
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
pub fn translate(ing: IngressBuilder, tls: &[(&str, &str)]) -> DesiredLoadBalancer {
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
        },
    )
    .expect("translates")
    .desired
}

/// The seed article's Ingress, as the API server serves it.
pub fn seed() -> DesiredLoadBalancer {
    seed_with(&[])
}

/// The seed with extra annotations.
pub fn seed_with(annotations: &[(&str, &str)]) -> DesiredLoadBalancer {
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

/// A shop with two TLS hosts, two paths on one and `login_path` on the
/// other, a default backend, and `api_secret_crt` as the admin certificate.
pub fn shop(login_path: &str, api_secret_crt: &str) -> DesiredLoadBalancer {
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

/// A second certificate, for rotation.
pub const CERT_B: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBsecondcertificatebody\n-----END CERTIFICATE-----\n";

/// The part of a link from `projects/` on.
pub fn rel(link: &Value) -> String {
    let s = link.as_str().unwrap_or_default();
    s.find("projects/")
        .map(|i| s[i..].to_string())
        .unwrap_or_default()
}

/// The relative link of the global `collection` resource `name`.
pub fn global(collection: &str, name: &Value) -> String {
    format!(
        "projects/{PROJECT}/global/{collection}/{}",
        name.as_str().expect("name")
    )
}

/// The `(paths, backend service link)` rules of `host` in `map`.
pub fn path_rules(map: &Value, host: &str) -> Vec<(Vec<String>, String)> {
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

/// The link of the backend service on named port `port_name`.
pub fn service_named(sim: &GceSim, port_name: &str) -> String {
    let bs = of_kind(sim, "compute#backendService");
    let found = bs
        .iter()
        .find(|b| b["portName"] == port_name)
        .expect("backend service");
    global("backendServices", &found["name"])
}

/// Every stored resource that says it is Gantry's.
pub fn gantry_resources(sim: &GceSim) -> Vec<Value> {
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
pub fn writes(p: &GcpProvider) -> u64 {
    p.calls().lock().writes()
}

/// Forget the calls counted so far.
pub fn clear(p: &GcpProvider) {
    p.calls().lock().clear();
}
