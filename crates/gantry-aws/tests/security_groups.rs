//! Source ranges against moto: every balancer gets its own security group
//! opening its listener ports to the Service's `loadBalancerSourceRanges`
//! (or to everyone), kept in step by diff and deleted after the balancer.

mod common;

use std::collections::BTreeSet;

use common::{
    World,
    inspect::{security_groups, tagged_leftovers, writes},
    owner, service,
};
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer,
    desired::{LoadBalancerSpec, Protocol},
    provider::DeleteOutcome,
};

fn with_ranges(mut desired: DesiredLoadBalancer, ranges: &[&str]) -> DesiredLoadBalancer {
    if let LoadBalancerSpec::L4(spec) = &mut desired.spec {
        spec.source_ranges = ranges.iter().map(|r| r.parse().expect("cidr")).collect();
    }
    desired
}

fn rules(items: &[(&str, i32, &str)]) -> BTreeSet<(String, i32, String)> {
    items
        .iter()
        .map(|(p, port, c)| (p.to_string(), *port, c.to_string()))
        .collect()
}

async fn balancer_groups(w: &World, name: &str) -> Vec<String> {
    let out = w
        .elb
        .describe_load_balancers()
        .names(name)
        .send()
        .await
        .expect("balancer");
    out.load_balancers()[0].security_groups().to_vec()
}

#[tokio::test]
async fn nlb_source_ranges_are_security_group_rules_kept_in_step() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("dns", "uid-sg1");
    let ports = [(53, Protocol::Udp, 30053), (80, Protocol::Tcp, 30080)];
    let desired = with_ranges(
        service(&o, &ports, w.nodes(&[0, 1])),
        &["10.0.0.0/8", "2001:db8::/32"],
    );
    p.ensure(&desired).await.expect("ensure");

    let groups = security_groups(&w, &o).await;
    assert_eq!(groups.len(), 1, "one group per balancer: {groups:?}");
    let (sg, have) = &groups[0];
    assert_eq!(
        *have,
        rules(&[
            ("tcp", 80, "10.0.0.0/8"),
            ("tcp", 80, "2001:db8::/32"),
            ("udp", 53, "10.0.0.0/8"),
            ("udp", 53, "2001:db8::/32"),
        ])
    );
    let name = p.balancer_name(&o);
    assert_eq!(balancer_groups(&w, &name).await, vec![sg.clone()]);

    // A no-op resync plans and writes nothing.
    assert!(p.plan(&desired).await.expect("plan").is_empty());
    let before = writes(&p);
    p.ensure(&desired).await.expect("resync");
    assert_eq!(writes(&p), before, "a no-op resync writes nothing");

    // Narrowing: one authorize, then one revoke; nothing else changes.
    let desired = with_ranges(desired, &["10.1.0.0/16"]);
    let plan = p.plan(&desired).await.expect("plan");
    assert_eq!(plan.changes.len(), 1, "{plan:?}");
    assert_eq!(plan.changes[0].resource, "security-group");
    let mark = p.calls().lock().order().len();
    p.ensure(&desired).await.expect("narrow");
    let written: Vec<&str> = p.calls().lock().order()[mark..]
        .iter()
        .copied()
        .filter(|op| !gantry_aws::is_read(op))
        .collect();
    assert_eq!(
        written,
        [
            "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress"
        ]
    );
    let groups = security_groups(&w, &o).await;
    assert_eq!(
        groups[0].1,
        rules(&[("tcp", 80, "10.1.0.0/16"), ("udp", 53, "10.1.0.0/16")])
    );

    // No ranges: open to everyone, IPv4 and IPv6.
    let desired = with_ranges(desired, &[]);
    p.ensure(&desired).await.expect("open");
    assert_eq!(
        security_groups(&w, &o).await[0].1,
        rules(&[
            ("tcp", 80, "0.0.0.0/0"),
            ("tcp", 80, "::/0"),
            ("udp", 53, "0.0.0.0/0"),
            ("udp", 53, "::/0"),
        ])
    );

    // Delete: the group goes after the balancer; a replay finds nothing.
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert_eq!(tagged_leftovers(&w, &o).await, Vec::<String>::new());
    assert_eq!(
        p.delete(&o).await.expect("delete again"),
        DeleteOutcome::NotFound
    );
}

#[tokio::test]
async fn a_foreign_group_with_our_name_is_refused_before_any_write() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = owner("web", "uid-sg2");
    let desired = service(&o, &[(80, Protocol::Tcp, 30080)], w.nodes(&[0]));
    p.ensure(&desired).await.expect("ensure");
    // A second owner whose group name is taken by someone else's group.
    let other = owner("api", "uid-sg3");
    let taken = p
        .plan(&service(&other, &[(80, Protocol::Tcp, 30081)], vec![]))
        .await
        .expect("plan");
    let sg_name = taken
        .changes
        .iter()
        .find(|c| c.resource == "security-group")
        .map(|c| c.name.clone())
        .expect("the plan names the group");
    w.ec2
        .create_security_group()
        .group_name(&sg_name)
        .description("not Gantry's")
        .vpc_id(&w.vpc)
        .send()
        .await
        .expect("foreign group");
    let before = writes(&p);
    match p
        .ensure(&service(&other, &[(80, Protocol::Tcp, 30081)], vec![]))
        .await
    {
        Err(gantry_model::ProviderError::NotOwned { resource, .. }) => {
            assert_eq!(resource, "security-group")
        }
        other => panic!("expected NotOwned, got {other:?}"),
    }
    assert_eq!(writes(&p), before, "nothing written for the refused owner");
    assert!(p.delete(&o).await.is_ok());
}

#[tokio::test]
async fn alb_gets_a_group_open_on_its_listener_ports() {
    let w = World::new(1).await;
    let p = w.provider().await;
    let o = common::ingress_owner("shop", "uid-sg4");
    let desired = common::simple_ingress(&o, w.nodes(&[0]), vec![]);
    p.ensure(&desired).await.expect("ensure");
    let groups = security_groups(&w, &o).await;
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].1,
        rules(&[("tcp", 80, "0.0.0.0/0"), ("tcp", 80, "::/0")])
    );
    assert_eq!(
        balancer_groups(&w, &p.balancer_name(&o)).await,
        vec![groups[0].0.clone()]
    );
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(security_groups(&w, &o).await.is_empty());
}
