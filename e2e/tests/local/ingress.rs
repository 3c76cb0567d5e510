//! L7 traffic through the datapath for Ingress: host and path routing
//! (Exact, Prefix, GCE-style `/*`, default backend) over HTTP, and TLS
//! termination choosing the certificate by SNI.

use std::{collections::BTreeMap, net::SocketAddr};

use gantry_e2e::{
    local::LocalEnv,
    manifests::{echo, service},
    wait_for,
};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{Api, api::PostParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::support::{T, echo_text, https, tls_connector};

/// IngressClass `gantry`, served by class pool-a.
pub const INGRESS_CLASS: &str = r#"apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: gantry
spec:
  controller: gantry.dev/ingress-controller
  parameters: {apiGroup: gantry.dev, kind: LoadBalancerClass, name: pool-a, scope: Cluster}
"#;

/// An echo app with `ECHO_TEXT` = `name` behind a NodePort Service `name`.
pub fn backend(name: &str) -> String {
    format!(
        "{}---\n{}",
        echo(name, 1, "{name: http, containerPort: 8080}").text(name),
        service(name, "NodePort", "{name: http, port: 80, targetPort: http}"),
    )
}

/// The first ingress IP in an Ingress's status.
pub fn ingress_ip(env: &LocalEnv, name: &str) -> std::net::IpAddr {
    wait_for(&format!("address of Ingress {name}"), T, || {
        env.get("ingress", name)?["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()?
            .parse()
            .ok()
    })
}

#[test]
fn ingress_routes_by_host_and_path() {
    let env = LocalEnv::start(8).expect("environment");
    env.apply("class", INGRESS_CLASS);
    for name in ["alpha", "beta", "fallback"] {
        env.apply(name, &backend(name));
    }
    env.apply(
        "site",
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
spec:
  ingressClassName: gantry
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - host: a.example.test
    http:
      paths:
      - {path: /exact, pathType: Exact, backend: {service: {name: alpha, port: {number: 80}}}}
      - {path: /pre, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
  - host: b.example.test
    http:
      paths:
      - {path: /star/*, pathType: ImplementationSpecific, backend: {service: {name: alpha, port: {number: 80}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
"#,
    );
    let ip = ingress_ip(&env, "site");
    assert!(env.in_pool("pool-a", ip), "{ip}");
    let addr = SocketAddr::new(ip, 80);
    // Wait for the whole configuration (every backend answering) first.
    wait_for("every backend reachable", T, || {
        (echo_text(&env, addr, "a.example.test", "/exact").as_deref() == Some("alpha")
            && echo_text(&env, addr, "a.example.test", "/pre").as_deref() == Some("beta")
            && echo_text(&env, addr, "other.test", "/").as_deref() == Some("fallback"))
        .then_some(())
    });
    let cases = [
        // Exact matches only the path itself.
        ("a.example.test", "/exact", "alpha"),
        ("a.example.test", "/exact/more", "fallback"),
        // Prefix matches whole path elements.
        ("a.example.test", "/pre", "beta"),
        ("a.example.test", "/pre/", "beta"),
        ("a.example.test", "/pre/deeper/x", "beta"),
        ("a.example.test", "/prefix", "fallback"),
        ("a.example.test", "/", "fallback"),
        // Host with a port still matches the rule's host.
        ("a.example.test:80", "/exact", "alpha"),
        // GCE-style trailing `/*` is a prefix, ahead of the catch-all `/`.
        ("b.example.test", "/star/x", "alpha"),
        ("b.example.test", "/star/x/y", "alpha"),
        ("b.example.test", "/elsewhere", "beta"),
        ("b.example.test", "/", "beta"),
        // An unknown host goes to the default backend.
        ("c.example.test", "/exact", "fallback"),
        ("c.example.test", "/", "fallback"),
    ];
    for (host, path, want) in cases {
        let got = echo_text(&env, addr, host, path);
        assert_eq!(got.as_deref(), Some(want), "Host {host} path {path}");
    }
}

/// A CA and, per host, a certificate for that host signed by it.
pub struct Pki {
    /// The CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// host -> (certificate PEM, key PEM, certificate DER)
    pub leaves: BTreeMap<String, (String, String, Vec<u8>)>,
}

/// Generate a CA and one certificate per host.
pub fn pki(hosts: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gantry e2e CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let leaves = hosts
        .iter()
        .map(|host| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(vec![(*host).to_string()]).expect("params");
            params.distinguished_name.push(DnType::CommonName, *host);
            let cert = params.signed_by(&key, &ca, &ca_key).expect("certificate");
            (
                (*host).to_string(),
                (cert.pem(), key.serialize_pem(), cert.der().to_vec()),
            )
        })
        .collect();
    Pki {
        ca_der: ca.der().to_vec(),
        leaves,
    }
}

/// Create a `kubernetes.io/tls` Secret in `default` with the given keys.
pub fn create_secret(env: &LocalEnv, name: &str, data: &[(&str, &str)]) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    let api: Api<Secret> = Api::namespaced(env.client.clone(), "default");
    env.rt
        .block_on(api.create(&PostParams::default(), &secret))
        .expect("create Secret");
}

#[test]
fn https_serves_each_sni_host_its_certificate_and_backend() {
    let env = LocalEnv::start(9).expect("environment");
    let hosts = ["a.tls.test", "b.tls.test"];
    let pki = pki(&hosts);
    env.apply("class", INGRESS_CLASS);
    env.apply("alpha", &backend("alpha"));
    env.apply("beta", &backend("beta"));
    for (host, secret) in [("a.tls.test", "a-tls"), ("b.tls.test", "b-tls")] {
        let (cert, key, _) = &pki.leaves[host];
        create_secret(&env, secret, &[("tls.crt", cert), ("tls.key", key)]);
    }
    env.apply(
        "secure",
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
spec:
  ingressClassName: gantry
  tls:
  - {hosts: [a.tls.test], secretName: a-tls}
  - {hosts: [b.tls.test], secretName: b-tls}
  rules:
  - host: a.tls.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
  - host: b.tls.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
"#,
    );
    let ip = ingress_ip(&env, "secure");
    let addr = SocketAddr::new(ip, 443);
    let connector = tls_connector(&pki.ca_der);
    for (host, want) in [("a.tls.test", "alpha"), ("b.tls.test", "beta")] {
        // The handshake itself checks the certificate's SAN against the SNI
        // name; comparing the DER also proves which Secret was chosen.
        let (leaf, body) = wait_for(&format!("HTTPS answer for {host}"), T, || {
            env.rt
                .block_on(https(&connector, addr, host))
                .inspect_err(|e| eprintln!("{host}: {e}"))
                .ok()
        });
        assert_eq!(leaf, pki.leaves[host].2, "certificate served for {host}");
        let other = hosts.iter().find(|h| **h != host).expect("other host");
        assert!(
            contains(&leaf, host.as_bytes()) && !contains(&leaf, other.as_bytes()),
            "the SAN of the certificate for {host} names it alone"
        );
        let v: serde_json::Value = serde_json::from_str(&body).expect("echo JSON");
        assert_eq!(v["text"], want, "{body}");
        assert_eq!(v["host"], host, "{body}");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
