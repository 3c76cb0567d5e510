//! Services -> NLB against moto: create, no-op resync, port change, node
//! churn, delete, a foreign balancer under our name, attributes, and a
//! restart after a half-done ensure.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    CLASS, World,
    inspect::{shape, tagged_leftovers, tags_of, targets, writes},
    owner, service,
};
use gantry_model::{
    LoadBalancer, Owner, ProviderError, desired::Protocol, provider::DeleteOutcome,
};

#[tokio::test]
async fn service_lifecycle_create_noop_ports_nodes_delete() {
    let w = World::new(2).await;
    let p = w.provider().await;
    let o = owner("web", "uid-1");
    let lb_name = p.balancer_name(&o);
    assert!(lb_name.len() <= 32);

    // Create: one TCP and one UDP port, three nodes.
    let desired = service(
        &o,
        &[(80, Protocol::Tcp, 30080), (53, Protocol::Udp, 30053)],
        w.nodes(&[0, 1, 2]),
    );
    let plan = p.plan(&desired).await.expect("plan");
    assert!(!plan.is_empty());
    assert_eq!(writes(&p), 0, "plan only reads");
    let status = p.ensure(&desired).await.expect("ensure");
    let host = status.ingress[0].hostname.clone().expect("dns name");
    assert!(
        !status.ready,
        "a balancer just created is still provisioning"
    );
    assert!(!host.is_empty());
    let s = shape(&w, &o, &lb_name).await;
    assert_eq!(s.listeners.len(), 2, "{s:?}");
    let by_port: BTreeMap<i32, (String, String)> = s
        .listeners
        .iter()
        .map(|(p, proto, tg)| (*p, (proto.clone(), tg.clone())))
        .collect();
    assert_eq!(by_port[&80].0, "TCP");
    assert_eq!(by_port[&53].0, "UDP");
    assert_eq!(s.targets[&by_port[&80].1], targets(&w, &[0, 1, 2], 30080));
    assert_eq!(s.targets[&by_port[&53].1], targets(&w, &[0, 1, 2], 30053));

    // Resync: nothing to do, no write.
    let before = writes(&p);
    let again = p.ensure(&desired).await.expect("ensure again");
    assert_eq!(writes(&p), before, "a no-op resync writes nothing");
    assert_eq!(again.ingress[0].hostname.as_deref(), Some(host.as_str()));
    assert!(again.ready, "active on the next resync");
    assert!(p.plan(&desired).await.expect("plan").is_empty());

    // Ports change: 80 moves to node port 30081, 53 goes, 443 arrives.
    let desired = service(
        &o,
        &[(80, Protocol::Tcp, 30081), (443, Protocol::Tcp, 30443)],
        w.nodes(&[0, 1, 2]),
    );
    p.ensure(&desired).await.expect("ports change");
    let s = shape(&w, &o, &lb_name).await;
    let ports: BTreeSet<i32> = s.listeners.iter().map(|l| l.0).collect();
    assert_eq!(ports, BTreeSet::from([80, 443]));
    assert_eq!(s.targets.len(), 2, "old target groups are gone: {s:?}");
    for (port, np) in [(80, 30081), (443, 30443)] {
        let tg = &s
            .listeners
            .iter()
            .find(|l| l.0 == port)
            .expect("listener")
            .2;
        assert_eq!(s.targets[tg], targets(&w, &[0, 1, 2], np));
    }
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before);

    // Nodes: 0 leaves, 3 joins; registration comes before deregistration.
    let mark = p.calls().lock().order().len();
    let desired = service(
        &o,
        &[(80, Protocol::Tcp, 30081), (443, Protocol::Tcp, 30443)],
        w.nodes(&[1, 2, 3]),
    );
    p.ensure(&desired).await.expect("nodes change");
    let order: Vec<&str> = p.calls().lock().order()[mark..].to_vec();
    let writes_now: Vec<&str> = order
        .into_iter()
        .filter(|op| !gantry_aws::is_read(op))
        .collect();
    assert_eq!(
        writes_now,
        [
            "RegisterTargets",
            "RegisterTargets",
            "DeregisterTargets",
            "DeregisterTargets"
        ],
        "one register and one deregister per target group, registers first"
    );
    let s = shape(&w, &o, &lb_name).await;
    for (port, np) in [(80, 30081), (443, 30443)] {
        let tg = &s
            .listeners
            .iter()
            .find(|l| l.0 == port)
            .expect("listener")
            .2;
        assert_eq!(s.targets[tg], targets(&w, &[1, 2, 3], np));
    }

    // The class lists this owner.
    assert_eq!(
        p.list_owned(common::CLUSTER).await.expect("list"),
        vec![o.clone()]
    );

    // Delete: nothing with our tags remains; deleting again finds nothing.
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert_eq!(tagged_leftovers(&w, &o).await, Vec::<String>::new());
    assert_eq!(
        p.delete(&o).await.expect("delete again"),
        DeleteOutcome::NotFound
    );
    assert!(
        p.list_owned(common::CLUSTER)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn tcp_and_udp_on_one_port_share_a_tcp_udp_listener() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("dns", "uid-2");
    let desired = service(
        &o,
        &[(53, Protocol::Tcp, 30053), (53, Protocol::Udp, 30053)],
        w.nodes(&[0, 1]),
    );
    let status = p.ensure(&desired).await.expect("ensure");
    assert_eq!(status.ingress[0].ports.len(), 2);
    let s = shape(&w, &o, &p.balancer_name(&o)).await;
    let l: Vec<_> = s.listeners.iter().collect();
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].0, l[0].1.as_str()), (53, "TCP_UDP"));
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before);
}

#[tokio::test]
async fn foreign_balancer_with_our_name_is_not_owned_and_untouched() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("web", "uid-3");
    let name = p.balancer_name(&o);
    let foreign = w
        .elb
        .create_load_balancer()
        .name(&name)
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .set_subnets(Some(w.public_subnets.clone()))
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("team")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .expect("foreign balancer");
    let foreign_arn = foreign.load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_string();

    let desired = service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0]));
    for result in [
        p.plan(&desired).await.map(|_| ()),
        p.ensure(&desired).await.map(|_| ()),
    ] {
        match result {
            Err(ProviderError::NotOwned { name: n, .. }) => assert_eq!(n, name),
            other => panic!("expected NotOwned, got {other:?}"),
        }
    }
    assert_eq!(writes(&p), 0, "nothing written next to a foreign balancer");
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::NotFound);
    let still = w
        .elb
        .describe_load_balancers()
        .load_balancer_arns(&foreign_arn)
        .send()
        .await
        .expect("foreign balancer still there");
    assert_eq!(still.load_balancers().len(), 1);
    let listeners = w
        .elb
        .describe_listeners()
        .load_balancer_arn(&foreign_arn)
        .send()
        .await
        .expect("listeners");
    assert!(listeners.listeners().is_empty(), "no listener added");
    assert_eq!(
        tags_of(&w, &foreign_arn)
            .await
            .get("team")
            .map(String::as_str),
        Some("someone-else")
    );
}

#[tokio::test]
async fn subnets_are_discovered_by_role_and_cluster_tags_or_taken_from_the_class() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("web", "uid-4");
    p.ensure(&service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0])))
        .await
        .expect("ensure");
    let lb = w
        .elb
        .describe_load_balancers()
        .names(p.balancer_name(&o))
        .send()
        .await
        .expect("lb");
    let mut subnets: Vec<String> = lb.load_balancers()[0]
        .availability_zones()
        .iter()
        .filter_map(|z| z.subnet_id().map(str::to_string))
        .collect();
    subnets.sort();
    let mut want = w.public_subnets.clone();
    want.sort();
    assert_eq!(
        subnets, want,
        "only the subnets tagged for internet-facing balancers"
    );

    // A cluster with no tagged subnets gets a clear rejection and nothing is created.
    let other = gantry_aws::AwsProvider::with_loader(
        CLASS,
        "another-cluster",
        gantry_model::class::AwsSettings {
            region: Some(common::REGION.into()),
            endpoint: Some(w.moto.endpoint.clone()),
            ..Default::default()
        },
        aws_config::defaults(aws_config::BehaviorVersion::latest()).credentials_provider(
            aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "test"),
        ),
        std::time::Duration::from_secs(20),
    )
    .await
    .expect("provider");
    let o2 = Owner {
        cluster_id: "another-cluster".into(),
        ..owner("web", "uid-5")
    };
    match other
        .ensure(&service(&o2, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0])))
        .await
    {
        Err(ProviderError::Rejected { message, .. }) => {
            assert!(message.contains("kubernetes.io/role/elb"), "{message}")
        }
        r => panic!("expected a rejection, got {r:?}"),
    }
    assert_eq!(other.calls().lock().writes(), 0);
}

#[tokio::test]
async fn health_check_changes_in_place() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("local", "uid-6");
    let mut desired = service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0]));
    p.ensure(&desired).await.expect("ensure");
    // externalTrafficPolicy: Local -> HTTP /healthz on healthCheckNodePort.
    if let gantry_model::desired::LoadBalancerSpec::L4(spec) = &mut desired.spec {
        spec.health_check = gantry_model::desired::HealthCheck::Http {
            port: 32100,
            path: "/healthz".into(),
        };
    }
    let mark = p.calls().lock().order().len();
    p.ensure(&desired)
        .await
        .expect("ensure with HTTP health check");
    let written: Vec<&str> = p.calls().lock().order()[mark..]
        .iter()
        .copied()
        .filter(|op| !gantry_aws::is_read(op))
        .collect();
    assert_eq!(written, ["ModifyTargetGroup"]);
    let s = shape(&w, &o, &p.balancer_name(&o)).await;
    let tg_name = &s.listeners.iter().next().expect("listener").2;
    let tg = w
        .elb
        .describe_target_groups()
        .names(tg_name)
        .send()
        .await
        .expect("tg");
    let tg = &tg.target_groups()[0];
    assert_eq!(tg.health_check_protocol().map(|p| p.as_str()), Some("HTTP"));
    assert_eq!(tg.health_check_port(), Some("32100"));
    assert_eq!(tg.health_check_path(), Some("/healthz"));
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before);
}

#[tokio::test]
async fn proxy_protocol_and_cross_zone_are_attributes_kept_in_step() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("pp", "uid-7");
    let mut desired = service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0, 1]));
    let set = |d: &mut gantry_model::DesiredLoadBalancer, proxy: bool, cross: Option<bool>| {
        if let gantry_model::desired::LoadBalancerSpec::L4(spec) = &mut d.spec {
            spec.options.proxy_protocol = proxy;
            spec.options.cross_zone = cross;
        }
    };
    set(&mut desired, true, Some(true));
    p.ensure(&desired).await.expect("ensure");
    let lb_arn = w
        .elb
        .describe_load_balancers()
        .names(p.balancer_name(&o))
        .send()
        .await
        .expect("lb")
        .load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_string();
    let s = shape(&w, &o, &p.balancer_name(&o)).await;
    let tg_name = s.listeners.iter().next().expect("listener").2.clone();
    let tg_arn = w
        .elb
        .describe_target_groups()
        .names(&tg_name)
        .send()
        .await
        .expect("tg")
        .target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    let attrs = |lb: bool| {
        let w = &w;
        let (lb_arn, tg_arn) = (lb_arn.clone(), tg_arn.clone());
        async move {
            let pairs: Vec<(String, String)> = if lb {
                w.elb
                    .describe_load_balancer_attributes()
                    .load_balancer_arn(lb_arn)
                    .send()
                    .await
                    .expect("lb attrs")
                    .attributes()
                    .iter()
                    .map(|a| {
                        (
                            a.key().unwrap_or_default().into(),
                            a.value().unwrap_or_default().into(),
                        )
                    })
                    .collect()
            } else {
                w.elb
                    .describe_target_group_attributes()
                    .target_group_arn(tg_arn)
                    .send()
                    .await
                    .expect("tg attrs")
                    .attributes()
                    .iter()
                    .map(|a| {
                        (
                            a.key().unwrap_or_default().into(),
                            a.value().unwrap_or_default().into(),
                        )
                    })
                    .collect()
            };
            pairs.into_iter().collect::<BTreeMap<String, String>>()
        }
    };
    assert_eq!(
        attrs(true)
            .await
            .get("load_balancing.cross_zone.enabled")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        attrs(false)
            .await
            .get("proxy_protocol_v2.enabled")
            .map(String::as_str),
        Some("true")
    );
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before, "a no-op resync writes nothing");

    // PROXY protocol off again: one attribute write.
    set(&mut desired, false, Some(true));
    let mark = p.calls().lock().order().len();
    p.ensure(&desired).await.expect("proxy off");
    let written: Vec<&str> = p.calls().lock().order()[mark..]
        .iter()
        .copied()
        .filter(|op| !gantry_aws::is_read(op))
        .collect();
    assert_eq!(written, ["ModifyTargetGroupAttributes"]);
    assert_eq!(
        attrs(false)
            .await
            .get("proxy_protocol_v2.enabled")
            .map(String::as_str),
        Some("false")
    );
}

#[tokio::test]
async fn a_restarted_provider_finishes_a_half_done_ensure_without_duplicates() {
    let w = World::new(1).await;
    let o = owner("crash", "uid-8");
    // First run, then undo its last steps by hand: the state a controller
    // leaves when it dies after creating the balancer and target group but
    // before registering targets and creating the listener.
    let first = w.provider().await;
    first
        .ensure(&service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0])))
        .await
        .expect("first ensure");
    let lb_arn = w
        .elb
        .describe_load_balancers()
        .names(first.balancer_name(&o))
        .send()
        .await
        .expect("lb")
        .load_balancers()[0]
        .load_balancer_arn()
        .expect("arn")
        .to_string();
    let listeners = w
        .elb
        .describe_listeners()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .expect("listeners");
    for l in listeners.listeners() {
        let tg = l.default_actions()[0]
            .target_group_arn()
            .expect("tg")
            .to_string();
        w.elb
            .deregister_targets()
            .target_group_arn(&tg)
            .targets(
                aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                    .id(&w.instances[0].1)
                    .port(30080)
                    .build(),
            )
            .send()
            .await
            .expect("deregister");
        w.elb
            .delete_listener()
            .listener_arn(l.listener_arn().expect("arn"))
            .send()
            .await
            .expect("delete listener");
    }
    drop(first);

    // "Restart": a new provider with the real nodes converges.
    let second = w.provider().await;
    let desired = service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0, 1]));
    second.ensure(&desired).await.expect("ensure after restart");
    let tagged = tagged_leftovers(&w, &o).await;
    assert_eq!(
        tagged
            .iter()
            .filter(|a| a.contains(":loadbalancer/"))
            .count(),
        1,
        "exactly one balancer: {tagged:?}"
    );
    assert_eq!(
        tagged
            .iter()
            .filter(|a| a.contains(":targetgroup/"))
            .count(),
        1,
        "exactly one target group: {tagged:?}"
    );
    let s = shape(&w, &o, &second.balancer_name(&o)).await;
    let tg = &s.listeners.iter().next().expect("listener").2;
    assert_eq!(s.targets[tg], targets(&w, &[0, 1], 30080));
    let before = writes(&second);
    second.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&second), before);
}
