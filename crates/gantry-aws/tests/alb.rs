//! Ingress -> ALB against moto: rules per host and path in order, default
//! action, no-op resync, rule changes, delete.

mod common;

use std::collections::BTreeMap;

use common::{CLASS, World};
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, Owner, OwnerKind, ProviderKind,
    desired::{
        HealthCheck, L7Backend, L7Options, L7Path, L7Rule, L7Spec, LoadBalancerSpec, PathMatch,
    },
    provider::DeleteOutcome,
};

fn ingress_owner() -> Owner {
    Owner {
        kind: OwnerKind::Ingress,
        ..common::owner("shop", "uid-i1")
    }
}

fn backend(service: &str, node_port: u16) -> L7Backend {
    L7Backend {
        namespace: "default".into(),
        service: service.into(),
        port: 80,
        node_port,
    }
}

fn path(p: &str, how: PathMatch, backend: usize) -> L7Path {
    L7Path {
        path: p.into(),
        path_match: how,
        backend,
    }
}

fn ingress(w: &World, rules: Vec<L7Rule>, default_backend: Option<usize>) -> DesiredLoadBalancer {
    let backends = vec![backend("web", 30100), backend("api", 30200)];
    DesiredLoadBalancer {
        owner: ingress_owner(),
        class: CLASS.into(),
        provider: ProviderKind::Aws,
        spec: LoadBalancerSpec::L7(L7Spec {
            rules,
            default_backend,
            health_checks: vec![HealthCheck::NodePortTcp; backends.len()],
            backends,
            nodes: w.nodes(&[0, 1]),
            tls: vec![],
            options: L7Options::default(),
        }),
    }
}

fn two_hosts() -> Vec<L7Rule> {
    vec![
        L7Rule {
            host: Some("shop.example.com".into()),
            paths: vec![
                path("/api", PathMatch::Prefix, 1),
                path("/", PathMatch::Prefix, 0),
            ],
        },
        L7Rule {
            host: Some("admin.example.com".into()),
            paths: vec![
                path("/login", PathMatch::Exact, 0),
                path("/v1/", PathMatch::Prefix, 1),
            ],
        },
    ]
}

/// (priority, hosts, paths, target group name) of the HTTP listener's rules,
/// and its default action type.
async fn routes(
    w: &World,
    lb_name: &str,
) -> (Vec<(String, Vec<String>, Vec<String>, String)>, String) {
    let lb = w
        .elb
        .describe_load_balancers()
        .names(lb_name)
        .send()
        .await
        .expect("balancer");
    let lb = &lb.load_balancers()[0];
    assert_eq!(lb.r#type().map(|t| t.as_str()), Some("application"));
    let listeners = w
        .elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancer_arn().expect("arn"))
        .send()
        .await
        .expect("listeners");
    assert_eq!(listeners.listeners().len(), 1, "only HTTP without TLS");
    let l = &listeners.listeners()[0];
    assert_eq!(l.port(), Some(80));
    let default = l.default_actions()[0]
        .r#type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let rules = w
        .elb
        .describe_rules()
        .listener_arn(l.listener_arn().expect("arn"))
        .send()
        .await
        .expect("rules");
    let mut names = BTreeMap::new();
    let mut out = Vec::new();
    for r in rules.rules() {
        if r.is_default() == Some(true) || r.priority() == Some("default") {
            continue;
        }
        let mut hosts = Vec::new();
        let mut paths = Vec::new();
        for c in r.conditions() {
            match c.field() {
                Some("host-header") => hosts.extend(
                    c.host_header_config()
                        .map(|h| h.values().to_vec())
                        .unwrap_or_default(),
                ),
                Some("path-pattern") => paths.extend(
                    c.path_pattern_config()
                        .map(|p| p.values().to_vec())
                        .unwrap_or_default(),
                ),
                _ => {}
            }
        }
        let tg_arn = r.actions()[0]
            .target_group_arn()
            .expect("forward")
            .to_string();
        if !names.contains_key(&tg_arn) {
            let tg = w
                .elb
                .describe_target_groups()
                .target_group_arns(&tg_arn)
                .send()
                .await
                .expect("tg");
            let name = tg.target_groups()[0]
                .target_group_name()
                .expect("name")
                .to_string();
            names.insert(tg_arn.clone(), name);
        }
        out.push((
            r.priority().unwrap_or_default().to_string(),
            hosts,
            paths,
            names[&tg_arn].clone(),
        ));
    }
    out.sort_by_key(|r| r.0.parse::<u32>().unwrap_or(0));
    (out, default)
}

#[tokio::test]
async fn ingress_rules_in_order_default_404_resync_change_delete() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = ingress_owner();
    let lb_name = p.balancer_name(&o);
    let desired = ingress(&w, two_hosts(), None);
    let status = p.ensure(&desired).await.expect("ensure");
    assert!(status.ingress[0].hostname.is_some());
    let (rules, default) = routes(&w, &lb_name).await;
    assert_eq!(default, "fixed-response", "no default backend: 404");
    let web = o.resource_name(CLASS, "default-web-80-30100", 32);
    let api = o.resource_name(CLASS, "default-api-80-30200", 32);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rules,
        vec![
            (
                "1".into(),
                s(&["shop.example.com"]),
                s(&["/api", "/api/*"]),
                api.clone()
            ),
            (
                "2".into(),
                s(&["shop.example.com"]),
                s(&["/*"]),
                web.clone()
            ),
            (
                "3".into(),
                s(&["admin.example.com"]),
                s(&["/login"]),
                web.clone()
            ),
            (
                "4".into(),
                s(&["admin.example.com"]),
                s(&["/v1", "/v1/*"]),
                api.clone()
            ),
        ]
    );
    for tg in [&web, &api] {
        let arn = w
            .elb
            .describe_target_groups()
            .names(tg.as_str())
            .send()
            .await
            .expect("tg")
            .target_groups()[0]
            .target_group_arn()
            .expect("arn")
            .to_string();
        let health = w
            .elb
            .describe_target_health()
            .target_group_arn(&arn)
            .send()
            .await
            .expect("health");
        assert_eq!(
            health.target_health_descriptions().len(),
            2,
            "both nodes registered"
        );
    }

    // Resync: no write.
    let before = p.calls().lock().writes();
    p.ensure(&desired).await.expect("resync");
    assert_eq!(p.calls().lock().writes(), before);
    assert!(p.plan(&desired).await.expect("plan").is_empty());

    // Drop the admin host and add a default backend: two rules go, the
    // default action forwards.
    let mut rules = two_hosts();
    rules.truncate(1);
    let desired = ingress(&w, rules, Some(0));
    p.ensure(&desired).await.expect("change");
    let (rules, default) = routes(&w, &lb_name).await;
    assert_eq!(default, "forward");
    assert_eq!(rules.len(), 2, "{rules:?}");
    let before = p.calls().lock().writes();
    p.ensure(&desired).await.expect("resync");
    assert_eq!(p.calls().lock().writes(), before);

    assert_eq!(
        p.list_owned(common::CLUSTER).await.expect("list"),
        vec![o.clone()]
    );
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(
        p.list_owned(common::CLUSTER)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(p.delete(&o).await.expect("again"), DeleteOutcome::NotFound);
}

/// Ask moto's ACM for a certificate (no SDK for ACM in this crate yet:
/// one JSON call by hand). Returns its ARN.
async fn request_certificate(endpoint: &str, domain: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = endpoint.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = format!("{{\"DomainName\":\"{domain}\"}}");
    let req = format!(
        "POST / HTTP/1.1\r\nhost: {addr}\r\nx-amz-target: CertificateManager.RequestCertificate\r\ncontent-type: application/x-amz-json-1.1\r\nauthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/acm/aws4_request, SignedHeaders=host, Signature=0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.expect("write");
    let mut resp = String::new();
    sock.read_to_string(&mut resp).await.expect("read");
    let start = resp
        .find("arn:aws:acm:")
        .expect("certificate ARN in the answer");
    let end = resp[start..].find('"').expect("end of ARN") + start;
    resp[start..end].to_string()
}

#[tokio::test]
async fn tls_with_an_acm_certificate_serves_https_and_redirects_http() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = ingress_owner();
    let cert = request_certificate(&w.moto.endpoint, "shop.example.com").await;
    let mut desired = ingress(&w, two_hosts(), None);
    if let LoadBalancerSpec::L7(spec) = &mut desired.spec {
        spec.options.certificate_refs = vec![cert.clone()];
        spec.options.ssl_redirect = true;
    }
    let status = p.ensure(&desired).await.expect("ensure");
    let ports: Vec<u16> = status.ingress[0].ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, [80, 443]);
    let lb = w
        .elb
        .describe_load_balancers()
        .names(p.balancer_name(&o))
        .send()
        .await
        .expect("balancer");
    let listeners = w
        .elb
        .describe_listeners()
        .load_balancer_arn(lb.load_balancers()[0].load_balancer_arn().expect("arn"))
        .send()
        .await
        .expect("listeners");
    let mut seen = BTreeMap::new();
    for l in listeners.listeners() {
        let rules = w
            .elb
            .describe_rules()
            .listener_arn(l.listener_arn().expect("arn"))
            .send()
            .await
            .expect("rules");
        let custom = rules
            .rules()
            .iter()
            .filter(|r| r.priority() != Some("default"))
            .count();
        seen.insert(
            l.port().unwrap_or(0),
            (
                l.protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                l.default_actions()[0]
                    .r#type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                l.certificates()
                    .first()
                    .and_then(|c| c.certificate_arn())
                    .map(str::to_string),
                custom,
            ),
        );
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            (80, ("HTTP".into(), "redirect".into(), None, 0)),
            (
                443,
                ("HTTPS".into(), "fixed-response".into(), Some(cert), 4)
            ),
        ])
    );
    let before = p.calls().lock().writes();
    p.ensure(&desired).await.expect("resync");
    assert_eq!(
        p.calls().lock().writes(),
        before,
        "a no-op resync writes nothing"
    );
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(
        p.list_owned(common::CLUSTER)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_tls_secret_without_pem_data_is_rejected_by_name_before_any_call() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let mut desired = ingress(&w, two_hosts(), None);
    if let LoadBalancerSpec::L7(spec) = &mut desired.spec {
        spec.tls = vec![gantry_model::desired::TlsCertificate {
            secret_name: "shop-tls".into(),
            hosts: vec!["shop.example.com".into()],
            cert_pem: "-----BEGIN CERTIFICATE-----".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----".into(),
        }];
    }
    match p.ensure(&desired).await {
        Err(gantry_model::ProviderError::Rejected { message, .. }) => {
            assert!(message.contains("shop-tls"), "{message}")
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(p.calls().lock().total(), 0, "rejected before any call");
}
