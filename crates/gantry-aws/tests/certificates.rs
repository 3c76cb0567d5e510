//! An Ingress's TLS Secret imported into ACM against moto: imported once
//! and tagged as Gantry's, served by the HTTPS listener, re-imported into
//! the same ARN when the Secret changes, replaced when the Secret is
//! renamed, and deleted with the balancer.

mod common;

use common::{
    CLASS, World, ingress_owner,
    inspect::{tagged_leftovers, writes},
    simple_ingress,
};
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, Owner,
    desired::{LoadBalancerSpec, TlsCertificate},
    identity::TAG_ROLE,
    provider::DeleteOutcome,
};

fn secret(name: &str) -> TlsCertificate {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    TlsCertificate {
        secret_name: name.into(),
        hosts: vec!["shop.example.com".into()],
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// ARN, Secret tag and leaf PEM of every certificate in ACM owned by `owner`.
async fn owned(acm: &aws_sdk_acm::Client, owner: &Owner) -> Vec<(String, String, String)> {
    let list = acm.list_certificates().send().await.expect("list");
    let mut out = Vec::new();
    for c in list.certificate_summary_list() {
        let arn = c.certificate_arn().expect("arn");
        let tags: std::collections::BTreeMap<String, String> = acm
            .list_tags_for_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .expect("tags")
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().unwrap_or("").to_string()))
            .collect();
        if !owner.owns(CLASS, &tags) {
            continue;
        }
        assert_eq!(tags.get(TAG_ROLE).map(String::as_str), Some("certificate"));
        let pem = acm
            .get_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .expect("get")
            .certificate()
            .unwrap_or_default()
            .to_string();
        out.push((
            arn.to_string(),
            tags.get("gantry.dev/secret").cloned().unwrap_or_default(),
            pem,
        ));
    }
    out
}

/// The certificate of the listener on 443.
async fn https_certificate(w: &World, lb_name: &str) -> Option<String> {
    let lb = w
        .elb
        .describe_load_balancers()
        .names(lb_name)
        .send()
        .await
        .expect("balancer");
    let arn = lb.load_balancers()[0].load_balancer_arn().expect("arn");
    let listeners = w
        .elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .expect("listeners");
    listeners
        .listeners()
        .iter()
        .find(|l| l.port() == Some(443))
        .and_then(|l| l.certificates().first())
        .and_then(|c| c.certificate_arn())
        .map(str::to_string)
}

fn with_tls(mut desired: DesiredLoadBalancer, tls: TlsCertificate) -> DesiredLoadBalancer {
    if let LoadBalancerSpec::L7(spec) = &mut desired.spec {
        spec.tls = vec![tls];
    }
    desired
}

fn non_reads(p: &gantry_aws::AwsProvider, mark: usize) -> Vec<&'static str> {
    p.calls().lock().order()[mark..]
        .iter()
        .copied()
        .filter(|op| !gantry_aws::is_read(op))
        .collect()
}

#[tokio::test]
async fn tls_secret_is_imported_reimported_on_change_and_deleted() {
    let w = World::new(1).await;
    let acm = aws_sdk_acm::Client::new(&w.moto.sdk_config().await);
    let p = w.provider().await;
    let o = ingress_owner("shop", "uid-c1");
    let lb_name = p.balancer_name(&o);
    let first = secret("shop-tls");
    let desired = with_tls(simple_ingress(&o, w.nodes(&[0]), vec![]), first.clone());

    let plan = p.plan(&desired).await.expect("plan");
    assert!(
        plan.changes
            .iter()
            .any(|c| c.resource == "certificate" && c.name == "shop-tls"),
        "{plan:?}"
    );
    p.ensure(&desired).await.expect("ensure");
    let certs = owned(&acm, &o).await;
    assert_eq!(certs.len(), 1, "{certs:?}");
    let (arn, tagged_secret, pem) = &certs[0];
    assert_eq!(tagged_secret, "shop-tls");
    assert_eq!(pem.trim(), first.cert_pem.trim());
    assert_eq!(https_certificate(&w, &lb_name).await.as_ref(), Some(arn));

    // No-op: nothing planned, nothing written.
    assert!(p.plan(&desired).await.expect("plan").is_empty());
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before, "a no-op resync writes nothing");

    // The Secret changes: re-imported into the same ARN, listener untouched.
    let second = secret("shop-tls");
    let desired = with_tls(desired, second.clone());
    let mark = p.calls().lock().order().len();
    p.ensure(&desired).await.expect("re-import");
    assert_eq!(
        non_reads(&p, mark),
        ["ImportCertificate", "AddTagsToCertificate"]
    );
    let certs = owned(&acm, &o).await;
    assert_eq!(certs.len(), 1);
    assert_eq!(&certs[0].0, arn, "same ARN");
    assert_eq!(certs[0].2.trim(), second.cert_pem.trim());
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before, "settled after the re-import");

    // Renamed Secret: a new certificate, the listener moves, the old goes.
    let desired = with_tls(desired, secret("shop-tls-v2"));
    p.ensure(&desired).await.expect("rename");
    let certs = owned(&acm, &o).await;
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0].1, "shop-tls-v2");
    assert_ne!(&certs[0].0, arn);
    assert_eq!(
        https_certificate(&w, &lb_name).await.as_ref(),
        Some(&certs[0].0)
    );

    // Delete: certificate gone with everything else; a replay finds nothing.
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(owned(&acm, &o).await.is_empty());
    assert_eq!(tagged_leftovers(&w, &o).await, Vec::<String>::new());
    assert_eq!(
        p.delete(&o).await.expect("delete again"),
        DeleteOutcome::NotFound
    );
}

#[tokio::test]
async fn an_import_whose_listener_was_never_made_is_found_again() {
    let w = World::new(1).await;
    let acm = aws_sdk_acm::Client::new(&w.moto.sdk_config().await);
    let o = ingress_owner("shop", "uid-c2");
    let desired = with_tls(
        simple_ingress(&o, w.nodes(&[0]), vec![]),
        secret("shop-tls"),
    );
    let p = w.provider().await;
    p.ensure(&desired).await.expect("ensure");
    // A crash right after the import: the balancer and all but the
    // certificate are gone; a fresh provider must reuse the certificate.
    let arn = owned(&acm, &o).await[0].0.clone();
    let lb = w
        .elb
        .describe_load_balancers()
        .names(p.balancer_name(&o))
        .send()
        .await
        .expect("balancer");
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().expect("arn");
    for l in w
        .elb
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .send()
        .await
        .expect("listeners")
        .listeners()
    {
        w.elb
            .delete_listener()
            .listener_arn(l.listener_arn().expect("arn"))
            .send()
            .await
            .expect("delete listener");
    }
    let again = w.provider().await;
    again.ensure(&desired).await.expect("finish");
    let certs = owned(&acm, &o).await;
    assert_eq!(certs.len(), 1, "no second import: {certs:?}");
    assert_eq!(certs[0].0, arn);
    assert_eq!(https_certificate(&w, &p.balancer_name(&o)).await, Some(arn));
    assert_eq!(
        again.delete(&o).await.expect("delete"),
        DeleteOutcome::Deleted
    );
}
