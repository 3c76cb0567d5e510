//! Scheme changes against moto: AWS cannot change a balancer's scheme in
//! place, so a replacement is built in the owner's other name slot and
//! reported, and the old balancer goes once the new one is active.

mod common;

use common::{World, inspect::tagged_leftovers, owner, service};
use gantry_aws::Slot;
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer,
    desired::{LoadBalancerSpec, Protocol, Scheme},
    provider::{Action, DeleteOutcome},
};

fn with_scheme(mut desired: DesiredLoadBalancer, scheme: Scheme) -> DesiredLoadBalancer {
    match &mut desired.spec {
        LoadBalancerSpec::L4(spec) => spec.options.scheme = Some(scheme),
        LoadBalancerSpec::L7(spec) => spec.options.scheme = Some(scheme),
    }
    desired
}

/// (name, scheme, DNS name) of every balancer moto holds.
async fn balancers(w: &World) -> Vec<(String, String, String)> {
    let out = w
        .elb
        .describe_load_balancers()
        .send()
        .await
        .expect("balancers");
    let mut all: Vec<(String, String, String)> = out
        .load_balancers()
        .iter()
        .map(|lb| {
            (
                lb.load_balancer_name().unwrap_or_default().to_string(),
                lb.scheme()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                lb.dns_name().unwrap_or_default().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

fn hostname(status: &gantry_model::ObservedStatus) -> String {
    status.ingress[0].hostname.clone().expect("hostname")
}

async fn scheme_change_replaces_the_balancer(desired: fn(&World) -> DesiredLoadBalancer) {
    let w = World::new(1).await;
    let desired = desired(&w);
    let p = w.provider().await;
    let o = desired.owner.clone();
    let a = p.balancer_name_in(&o, Slot::A);
    let b = p.balancer_name_in(&o, Slot::B);

    let public = with_scheme(desired, Scheme::InternetFacing);
    p.ensure(&public).await.expect("create");
    let first = p.ensure(&public).await.expect("active");
    assert!(first.ready);
    let live = balancers(&w).await;
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].0.as_str(), live[0].1.as_str()),
        (a.as_str(), "internet-facing")
    );

    // To internal: the plan says a new balancer comes and the old one goes.
    let internal = with_scheme(public.clone(), Scheme::Internal);
    let plan = p.plan(&internal).await.expect("plan");
    assert!(
        plan.changes
            .iter()
            .any(|c| c.action == Action::Create && c.resource == "load-balancer" && c.name == b),
        "{plan:?}"
    );
    assert!(
        plan.changes
            .iter()
            .any(|c| c.action == Action::Delete && c.resource == "load-balancer" && c.name == a),
        "{plan:?}"
    );
    // First ensure: the replacement exists and status names it; the old
    // balancer still serves until the new one is active.
    let moved = p.ensure(&internal).await.expect("replace");
    let live = balancers(&w).await;
    assert_eq!(live.len(), 2, "{live:?}");
    let new = live.iter().find(|l| l.0 == b).expect("replacement");
    assert_eq!(new.1, "internal");
    assert_eq!(hostname(&moved), new.2, "status moves to the replacement");
    assert_ne!(hostname(&moved), hostname(&first));
    // Next resync: the replacement is active, the old balancer goes.
    let settled = p.ensure(&internal).await.expect("retire");
    assert!(settled.ready);
    let live = balancers(&w).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        (live[0].0.as_str(), live[0].1.as_str()),
        (b.as_str(), "internal")
    );
    assert!(p.plan(&internal).await.expect("plan").is_empty());

    // And back: slot A again.
    p.ensure(&public).await.expect("replace back");
    p.ensure(&public).await.expect("retire back");
    let live = balancers(&w).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        (live[0].0.as_str(), live[0].1.as_str()),
        (a.as_str(), "internet-facing")
    );

    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert_eq!(tagged_leftovers(&w, &o).await, Vec::<String>::new());
    assert!(balancers(&w).await.is_empty());
}

#[tokio::test]
async fn nlb_scheme_change_builds_a_replacement_then_retires_the_old() {
    scheme_change_replaces_the_balancer(|w| {
        service(
            &owner("web", "uid-s1"),
            &[(80, Protocol::Tcp, 30080)],
            w.nodes(&[0, 1]),
        )
    })
    .await;
}

#[tokio::test]
async fn alb_scheme_change_builds_a_replacement_then_retires_the_old() {
    scheme_change_replaces_the_balancer(|w| {
        common::simple_ingress(
            &common::ingress_owner("shop", "uid-s2"),
            w.nodes(&[0, 1]),
            vec![],
        )
    })
    .await;
}
