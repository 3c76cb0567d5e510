//! The recording provider behaves like a careful adapter (diff, idempotent
//! writes, ownership-filtered listing, faults), and the counting provider
//! throttles like a cloud API.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc};

use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, Owner, OwnerKind, ProviderError, ProviderKind,
    desired::{BackendNode, L4Listener, LoadBalancerSpec, Protocol},
    fixtures::l4_spec,
    provider::{Action, DeleteOutcome},
};
use gantry_testkit::{CountingProvider, FaultKind, Op, RateLimit, RecordingProvider};

fn owner(name: &str, cluster: &str) -> Owner {
    Owner {
        cluster_id: cluster.into(),
        kind: OwnerKind::Service,
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

fn node(i: u8) -> BackendNode {
    BackendNode {
        name: format!("node-{i}"),
        address: IpAddr::from([10, 0, 0, i]),
        provider_id: None,
        zone: None,
    }
}

fn desired(name: &str, nodes: &[u8], ports: &[u16]) -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: owner(name, "c1"),
        class: "a".into(),
        provider: ProviderKind::Local,
        spec: LoadBalancerSpec::L4(l4_spec(
            ports.iter().map(|p| L4Listener {
                name: String::new(),
                protocol: Protocol::Tcp,
                port: *p,
                node_port: 30000 + *p,
            }),
            nodes.iter().map(|i| node(*i)),
        )),
    }
}

#[tokio::test]
async fn ensure_writes_only_the_difference() {
    let p = RecordingProvider::new("a", ProviderKind::Local);
    let first = p
        .ensure(&desired("web", &[1, 2], &[80]))
        .await
        .expect("ensure");
    assert!(first.ready);
    assert_eq!(first.ingress[0].ip, Some(IpAddr::from([192, 0, 2, 1])));
    assert_eq!(first.ingress[0].ports[0].port, 80);
    let created = p.write_count();
    assert!(created >= 3, "balancer, listener, backend set");

    // Same desired state: zero writes, same address.
    let again = p
        .ensure(&desired("web", &[1, 2], &[80]))
        .await
        .expect("ensure");
    assert_eq!(p.write_count(), created);
    assert_eq!(again.ingress, first.ingress);

    // One more node: exactly one backend-set update.
    p.ensure(&desired("web", &[1, 2, 3], &[80]))
        .await
        .expect("ensure");
    let last = p.calls().pop().expect("a call");
    assert_eq!(last.writes.len(), 1, "{:?}", last.writes);
    assert_eq!(last.writes[0].resource, "backend-set");
    assert_eq!(last.writes[0].action, Action::Update);

    // Port change: delete one listener, create another.
    let plan = p
        .plan(&desired("web", &[1, 2, 3], &[443]))
        .await
        .expect("plan");
    let actions: Vec<_> = plan
        .changes
        .iter()
        .map(|c| (c.action, c.resource.as_str()))
        .collect();
    assert_eq!(
        actions,
        [(Action::Delete, "listener"), (Action::Create, "listener")]
    );
    assert_eq!(p.inventory().len(), 1, "plan changes nothing");
}

#[tokio::test]
async fn delete_is_idempotent_and_listing_filters_by_cluster() {
    let p = RecordingProvider::new("a", ProviderKind::Local);
    p.ensure(&desired("web", &[1], &[80]))
        .await
        .expect("ensure");
    let mut other = desired("api", &[1], &[80]);
    other.owner = owner("api", "c2");
    p.seed(other);
    assert_eq!(
        p.list_owned("c1").await.expect("list"),
        vec![owner("web", "c1")]
    );
    assert_eq!(
        p.delete(&owner("web", "c1")).await.expect("delete"),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        p.delete(&owner("web", "c1")).await.expect("delete"),
        DeleteOutcome::NotFound
    );
    assert_eq!(p.inventory().len(), 1);
    assert_eq!(p.calls_of(Op::Delete).len(), 2);
}

#[tokio::test]
async fn faults_and_readiness_are_injectable() {
    let p = RecordingProvider::new("a", ProviderKind::Local);
    p.fail_next_op(Op::Ensure, 1, FaultKind::Transient);
    p.fail_next(1, FaultKind::Permanent);
    let e = p
        .ensure(&desired("web", &[1], &[80]))
        .await
        .expect_err("fault");
    assert!(matches!(e, ProviderError::Transient { .. }));
    // Untargeted faults never hit list_owned.
    assert!(p.list_owned("c1").await.is_ok());
    let e = p.delete(&owner("web", "c1")).await.expect_err("fault");
    assert!(matches!(e, ProviderError::Rejected { .. }));
    assert_eq!(p.inventory().len(), 0, "failed calls change nothing");
    p.set_ready(false);
    assert!(
        !p.ensure(&desired("web", &[1], &[80]))
            .await
            .expect("ensure")
            .ready
    );
    p.set_ready(true);
    assert!(
        p.ensure(&desired("web", &[1], &[80]))
            .await
            .expect("ensure")
            .ready
    );
    let failed = p.calls().iter().filter(|c| c.error.is_some()).count();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn counting_provider_throttles_past_the_burst() {
    let inner = Arc::new(RecordingProvider::new("a", ProviderKind::Local));
    let limit = RateLimit {
        per_second: NonZeroU32::new(200).expect("non-zero"),
        burst: NonZeroU32::new(5).expect("non-zero"),
    };
    let p = CountingProvider::new(inner.clone(), limit);
    for _ in 0..12 {
        p.ensure(&desired("web", &[1], &[80]))
            .await
            .expect("ensure");
    }
    assert_eq!(p.count(Op::Ensure), 12);
    assert_eq!(p.total(), 12);
    assert!(p.throttled() >= 6, "throttled {}", p.throttled());
    assert_eq!(inner.calls_of(Op::Ensure).len(), 12);
}
