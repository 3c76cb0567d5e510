//! Invalid AWS settings and options against moto: each ends as a permanent
//! error naming the field and the value, before anything is created.

mod common;

use common::{World, ingress_owner, owner, service, simple_ingress};
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer,
    class::AwsSettings,
    desired::{LoadBalancerSpec, Protocol, TlsCertificate},
    provider::ErrorClass,
};

/// Whether moto holds any balancer, target group, Gantry security group or
/// certificate.
async fn anything_created(w: &World) -> Vec<String> {
    let mut found = Vec::new();
    let lbs = w.elb.describe_load_balancers().send().await.expect("lbs");
    found.extend(
        lbs.load_balancers()
            .iter()
            .filter_map(|l| l.load_balancer_name().map(str::to_string)),
    );
    let tgs = w.elb.describe_target_groups().send().await.expect("tgs");
    found.extend(
        tgs.target_groups()
            .iter()
            .filter_map(|t| t.target_group_name().map(str::to_string)),
    );
    let sgs = w.ec2.describe_security_groups().send().await.expect("sgs");
    found.extend(
        sgs.security_groups()
            .iter()
            .filter_map(|g| g.group_name())
            .filter(|n| n.starts_with("g-"))
            .map(str::to_string),
    );
    let acm = aws_sdk_acm::Client::new(&w.moto.sdk_config().await);
    let certs = acm.list_certificates().send().await.expect("certs");
    found.extend(
        certs
            .certificate_summary_list()
            .iter()
            .filter_map(|c| c.certificate_arn().map(str::to_string)),
    );
    found
}

fn tls() -> Vec<TlsCertificate> {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["shop.example.com".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    vec![TlsCertificate {
        secret_name: "shop-tls".into(),
        hosts: vec![],
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }]
}

#[tokio::test]
async fn invalid_settings_and_options_are_permanent_errors_and_create_nothing() {
    let w = World::new(1).await;
    let base = AwsSettings {
        region: Some(common::REGION.into()),
        endpoint: Some(w.moto.endpoint.clone()),
        ..AwsSettings::default()
    };
    let svc = service(
        &owner("web", "uid-v1"),
        &[(80, Protocol::Tcp, 30080)],
        w.nodes(&[0]),
    );
    let ing = {
        let mut d = simple_ingress(&ingress_owner("shop", "uid-v2"), w.nodes(&[0]), tls());
        if let LoadBalancerSpec::L7(spec) = &mut d.spec {
            spec.tls = tls();
        }
        d
    };
    let l4 = |f: fn(&mut gantry_model::desired::L4Spec)| {
        let mut d = svc.clone();
        if let LoadBalancerSpec::L4(spec) = &mut d.spec {
            f(spec);
        }
        d
    };
    let l7 = |f: fn(&mut gantry_model::desired::L7Spec)| {
        let mut d = ing.clone();
        if let LoadBalancerSpec::L7(spec) = &mut d.spec {
            f(spec);
        }
        d
    };
    let cases: Vec<(&str, AwsSettings, DesiredLoadBalancer, &str, &str)> = vec![
        (
            "class subnet id",
            AwsSettings {
                subnets: vec!["subnet-zz".into()],
                ..base.clone()
            },
            svc.clone(),
            "spec.aws.subnets",
            "subnet-zz",
        ),
        (
            "class VPC id",
            AwsSettings {
                vpc_id: Some("vpc-1".into()),
                ..base.clone()
            },
            svc.clone(),
            "spec.aws.vpcId",
            "vpc-1",
        ),
        (
            "class certificate ARN",
            AwsSettings {
                certificate_arn: Some("arn:aws:acm:nowhere".into()),
                ..base.clone()
            },
            ing.clone(),
            "spec.aws.certificateArn",
            "arn:aws:acm:nowhere",
        ),
        (
            "annotation subnet id",
            base.clone(),
            l4(|s| s.options.subnets = vec!["subnet-NOPE".into()]),
            "gantry.dev/subnets",
            "subnet-NOPE",
        ),
        (
            "annotation certificate ARN",
            base.clone(),
            l7(|s| s.options.certificate_refs = vec!["arn:aws:acm:x".into()]),
            "gantry.dev/certificate-arns",
            "arn:aws:acm:x",
        ),
        (
            "source range CIDR",
            base.clone(),
            l4(|s| s.source_ranges = vec!["10.0.0.1/8".parse().expect("cidr")]),
            "spec.loadBalancerSourceRanges",
            "10.0.0.1/8",
        ),
        (
            "protocol combination",
            base.clone(),
            l4(|s| {
                s.listeners = vec![
                    gantry_model::desired::L4Listener {
                        name: "dns-tcp".into(),
                        protocol: Protocol::Tcp,
                        port: 53,
                        node_port: 30053,
                    },
                    gantry_model::desired::L4Listener {
                        name: "dns-udp".into(),
                        protocol: Protocol::Udp,
                        port: 53,
                        node_port: 30054,
                    },
                ]
            }),
            "port 53",
            "30054",
        ),
    ];
    for (case, settings, desired, field, value) in cases {
        let p = w.provider_with(settings).await;
        for result in [
            p.plan(&desired).await.map(|_| ()),
            p.ensure(&desired).await.map(|_| ()),
        ] {
            let err = result.expect_err(case);
            assert_eq!(err.class(), ErrorClass::Permanent, "{case}: {err}");
            let text = err.to_string();
            assert!(
                text.contains(field) && text.contains(value),
                "{case}: {text}"
            );
        }
        assert_eq!(p.calls().lock().total(), 0, "{case}: no call at all");
    }

    // A well-formed subnet id that does not exist: one read, no write.
    let p = w
        .provider_with(AwsSettings {
            subnets: vec!["subnet-0123456789abcdef0".into()],
            ..base.clone()
        })
        .await;
    let err = p.ensure(&svc).await.expect_err("missing subnet");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(
        err.to_string().contains("spec.aws.subnets")
            && err.to_string().contains("subnet-0123456789abcdef0"),
        "{err}"
    );
    assert_eq!(p.calls().lock().writes(), 0);

    assert_eq!(anything_created(&w).await, Vec::<String>::new());
}
