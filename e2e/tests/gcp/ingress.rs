//! The seed article's Ingress (`test-ingress`, `kubernetes.io/ingress.class:
//! gce`, TLS from `my-ssl-secret`, host `testhost.com`, path `/*` to
//! `service-test:80`) as a global external Application Load Balancer chain
//! in the emulator, then deleted without a trace.

use gantry_e2e::{
    gcp::{GcpEnv, GcpOptions},
    wait_for,
};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, api::PostParams};
use rcgen::{CertificateParams, KeyPair};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::support::{T, held, holdings, wait_holdings};

/// The seed manifests, as the model's own tests read them.
const SEED_INGRESS: &str =
    include_str!("../../../crates/gantry-model/tests/data/test-ingress.yaml");
const SEED_SERVICE: &str =
    include_str!("../../../crates/gantry-model/tests/data/service-test-nodeport.yaml");

/// A seed manifest without the fields the API server assigns itself (uid,
/// cluster IP), so it can be applied.
fn applicable(manifest: &str) -> String {
    manifest
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("uid:") && !l.starts_with("clusterIP:")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Create the `kubernetes.io/tls` Secret `name` for `host`.
fn tls_secret(env: &GcpEnv, name: &str, host: &str) {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec![host.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(cert.pem().into_bytes())),
            (
                "tls.key".to_string(),
                ByteString(key.serialize_pem().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(env.client.clone(), "default");
    env.rt
        .block_on(api.create(&PostParams::default(), &secret))
        .expect("create Secret");
}

/// The global chain of one Ingress with TLS over nodes in two zones.
fn l7_chain() -> BTreeMap<String, usize> {
    [
        ("global/addresses", 1),
        ("global/forwardingRules", 2),
        ("global/targetHttpProxies", 1),
        ("global/targetHttpsProxies", 1),
        ("global/urlMaps", 1),
        ("global/backendServices", 1),
        ("global/healthChecks", 1),
        ("global/sslCertificates", 1),
        ("global/firewalls", 1),
        ("zones/instanceGroups", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The last path segment of a link.
fn name_of(link: &Value) -> &str {
    link.as_str()
        .and_then(|l| l.rsplit('/').next())
        .unwrap_or_default()
}

#[test]
fn seed_ingress_becomes_one_url_map_chain_and_is_deleted() {
    let env = GcpEnv::start(GcpOptions::default()).expect("environment");
    env.apply("service-test", &applicable(SEED_SERVICE));
    tls_secret(&env, "my-ssl-secret", "testhost.com");
    env.apply("test-ingress", &applicable(SEED_INGRESS));
    let ip = env.wait_ip("ingress", "test-ingress", T);
    wait_holdings(&env, "the seed Ingress's chain", &l7_chain());

    let address = &held(&env, "global/addresses")[0];
    assert_eq!(address["address"], ip.as_str(), "{address}");
    let mut ports: Vec<String> = held(&env, "global/forwardingRules")
        .iter()
        .map(|r| {
            assert_eq!(r["IPAddress"], ip.as_str(), "{r}");
            r["portRange"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    ports.sort();
    assert_eq!(ports, ["443-443", "80-80"]);

    let url_map = &held(&env, "global/urlMaps")[0];
    let backend = &held(&env, "global/backendServices")[0];
    let hosts = &url_map["hostRules"];
    assert_eq!(hosts.as_array().map(Vec::len), Some(1), "{url_map}");
    assert_eq!(
        hosts[0]["hosts"],
        serde_json::json!(["testhost.com"]),
        "{url_map}"
    );
    let matcher = url_map["pathMatchers"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == hosts[0]["pathMatcher"]))
        .unwrap_or_else(|| panic!("path matcher of testhost.com: {url_map}"));
    let rule = &matcher["pathRules"][0];
    assert_eq!(rule["paths"], serde_json::json!(["/*"]), "{url_map}");
    assert_eq!(name_of(&rule["service"]), backend["name"], "{url_map}");

    let proxy = &held(&env, "global/targetHttpsProxies")[0];
    let cert = &held(&env, "global/sslCertificates")[0];
    assert_eq!(name_of(&proxy["urlMap"]), url_map["name"], "{proxy}");
    assert_eq!(
        name_of(&proxy["sslCertificates"][0]),
        cert["name"],
        "{proxy}"
    );
    assert_eq!(
        backend["backends"].as_array().map(Vec::len),
        Some(2),
        "{backend}"
    );
    for group in held(&env, "zones/instanceGroups") {
        assert!(
            group["namedPorts"].to_string().contains("32213"),
            "the node port is named on every group: {group}"
        );
    }
    let check = &held(&env, "global/healthChecks")[0];
    assert!(check.to_string().contains("32213"), "{check}");
    let firewall = held(&env, "global/firewalls")[0].to_string();
    for needle in ["32213", "35.191.0.0/16", "130.211.0.0/22"] {
        assert!(firewall.contains(needle), "{needle} missing: {firewall}");
    }

    env.kubectl(&[
        "delete",
        "ingress",
        "test-ingress",
        "--wait=true",
        "--timeout=60s",
    ]);
    wait_for("nothing of Gantry's left after the Ingress", T, || {
        holdings(&env).is_empty().then_some(())
    });
}
