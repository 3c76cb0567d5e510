//! Ingress on AWS: two hosts with two paths each and TLS become an ALB with
//! listeners on 80 and 443 and one rule per host and path in Ingress order.
//! The class names no certificate, so Gantry imports the Ingress's TLS
//! Secret into ACM, and deletes it with the balancer.

use base64::Engine;
use gantry_e2e::{aws::AwsEnv, manifests::service, wait_for};
use rcgen::{CertificateParams, KeyPair};

use crate::support::{T, figures};

/// A self-signed certificate for both hosts, as the Secret's base64 data
/// (`tls.crt`, `tls.key`).
fn certificate() -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["a.example.test".into(), "b.example.test".into()])
        .expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    let b64 = |pem: String| base64::engine::general_purpose::STANDARD.encode(pem);
    (b64(cert.pem()), b64(key.serialize_pem()))
}

/// Two NodePort backends, the TLS Secret, an IngressClass for the default
/// `aws` class (which names no certificate) and the Ingress.
fn manifests() -> String {
    let (cert_b64, key_b64) = certificate();
    let backend = |name| service(name, "NodePort", "{name: http, port: 80, targetPort: 8080}");
    format!(
        r#"{}---
{}---
apiVersion: v1
kind: Secret
metadata:
  name: site-tls
type: kubernetes.io/tls
data:
  tls.crt: {cert_b64}
  tls.key: {key_b64}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: gantry-aws
spec:
  controller: gantry.dev/ingress-controller
  parameters: {{apiGroup: gantry.dev, kind: LoadBalancerClass, name: aws, scope: Cluster}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
spec:
  ingressClassName: gantry-aws
  tls:
  - hosts: [a.example.test, b.example.test]
    secretName: site-tls
  rules:
  - host: a.example.test
    http:
      paths:
      - {{path: /exact, pathType: Exact, backend: {{service: {{name: alpha, port: {{number: 80}}}}}}}}
      - {{path: /pre, pathType: Prefix, backend: {{service: {{name: beta, port: {{number: 80}}}}}}}}
  - host: b.example.test
    http:
      paths:
      - {{path: /x, pathType: Prefix, backend: {{service: {{name: alpha, port: {{number: 80}}}}}}}}
      - {{path: /, pathType: Prefix, backend: {{service: {{name: beta, port: {{number: 80}}}}}}}}
"#,
        backend("alpha"),
        backend("beta"),
    )
}

#[test]
fn ingress_with_two_hosts_two_paths_and_tls_becomes_alb_rules() {
    let env = AwsEnv::start(3, "5s").expect("environment");
    env.proxy.reset();
    env.apply("site", &manifests());
    let dns = wait_for("ALB DNS name in the Ingress status", T, || {
        env.hostname("ingress", "site")
    });
    // The rules may land after the first status write; wait for all four.
    let inv = wait_for("four host and path rules on 443", T, || {
        let inv = env.inventory();
        let n = inv
            .rules
            .iter()
            .filter(|r| r.listener_port == 443 && r.priority != "default")
            .count();
        (n == 4).then_some(inv)
    });
    figures(&env, "Ingress create (ALB, 2 backends, TLS)");
    assert_eq!(inv.balancers.len(), 1, "{inv:#?}");
    assert_eq!(inv.balancers[0].kind, "application");
    assert_eq!(inv.balancers[0].dns, dns);
    // The TLS Secret was imported into ACM as Gantry's certificate.
    assert_eq!(inv.certificates.len(), 1, "{inv:#?}");
    let mut listeners: Vec<_> = inv
        .listeners
        .iter()
        .map(|l| (l.port, l.protocol.clone()))
        .collect();
    listeners.sort();
    assert_eq!(
        listeners,
        [(80, "HTTP".to_string()), (443, "HTTPS".to_string())]
    );
    // One target group per backend Service port.
    assert_eq!(inv.target_groups.len(), 2, "{inv:#?}");
    let mut rules: Vec<_> = inv
        .rules
        .iter()
        .filter(|r| r.listener_port == 443 && r.priority != "default")
        .collect();
    rules.sort_by_key(|r| r.priority.parse::<u32>().expect("numeric priority"));
    let shape: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            let mut c = r.conditions.clone();
            c.sort();
            c
        })
        .collect();
    assert_eq!(
        shape,
        [
            ["host-header=a.example.test", "path-pattern=/exact"],
            ["host-header=a.example.test", "path-pattern=/pre|/pre/*"],
            ["host-header=b.example.test", "path-pattern=/x|/x/*"],
            ["host-header=b.example.test", "path-pattern=/*"],
        ],
        "rules in Ingress order: {rules:#?}"
    );
    // alpha, beta, alpha, beta.
    assert_eq!(rules[0].target_group, rules[2].target_group);
    assert_eq!(rules[1].target_group, rules[3].target_group);
    assert_ne!(rules[0].target_group, rules[1].target_group);

    env.kubectl(&["delete", "ingress", "site", "--wait=true", "--timeout=60s"]);
    let left = env.inventory();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
