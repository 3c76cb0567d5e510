//! Orphan collection: a balancer whose owner is gone is deleted; balancers
//! whose owners exist are kept, whether or not those owners are Gantry's.

mod common;

use common::{CLUSTER, Harness, WAIT, base, wait_for};
use gantry_model::{
    DesiredLoadBalancer, Owner, OwnerKind, ProviderKind, desired::LoadBalancerSpec,
    fixtures::l4_spec,
};
use gantry_testkit::Op;
use kube::ResourceExt;

fn desired(class: &str, name: &str, uid: &str) -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: Owner {
            cluster_id: CLUSTER.into(),
            kind: OwnerKind::Service,
            namespace: common::NS.into(),
            name: name.into(),
            uid: uid.into(),
        },
        class: class.into(),
        provider: ProviderKind::Local,
        spec: LoadBalancerSpec::L4(l4_spec([], [])),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deletes_orphans_and_keeps_owned() {
    let mut h = Harness::new(&[("a", base(1))]).await;
    h.create_nodes(1).await;
    let provider = h.provider("a");
    // An owner that exists but is not (or no longer) Gantry's.
    let plain = h
        .create_service_with("plain", "a", |svc| {
            if let Some(spec) = svc.spec.as_mut() {
                spec.type_ = Some("ClusterIP".into());
                spec.load_balancer_class = None;
            }
        })
        .await;
    provider.seed(desired("a", "plain", &plain.uid().expect("uid")));
    // An owner that is gone, and one whose name now belongs to another object.
    provider.seed(desired("a", "gone", "uid-of-a-deleted-service"));
    provider.seed(desired("a", "plain", "uid-of-an-older-plain"));
    // Another cluster's balancer is never ours to collect.
    let mut foreign = desired("a", "gone", "uid-other-cluster");
    foreign.owner.cluster_id = "another-cluster".into();
    provider.seed(foreign.clone());

    h.config.gc_interval = std::time::Duration::from_millis(300);
    h.start().await;
    h.create_service("ours", "a").await;
    h.wait_for_ip("ours").await;

    wait_for("orphans collected", WAIT, || async {
        let inv = provider.inventory();
        let uids: Vec<&str> = inv.keys().map(|o| o.uid.as_str()).collect();
        (!uids.contains(&"uid-of-a-deleted-service") && !uids.contains(&"uid-of-an-older-plain"))
            .then_some(())
    })
    .await;
    // Let a few more rounds run; nothing else may go.
    let rounds = provider.calls_of(Op::ListOwned).len();
    wait_for("two more GC rounds", WAIT, || async {
        (provider.calls_of(Op::ListOwned).len() >= rounds + 2).then_some(())
    })
    .await;
    let inv = provider.inventory();
    let names: Vec<(String, String)> = inv
        .keys()
        .map(|o| (o.name.clone(), o.cluster_id.clone()))
        .collect();
    assert_eq!(inv.len(), 3, "{names:?}");
    assert!(inv.contains_key(&foreign.owner), "other cluster kept");
    assert!(names.contains(&("ours".into(), CLUSTER.into())));
    assert!(names.contains(&("plain".into(), CLUSTER.into())));
    let deleted: Vec<String> = provider
        .calls_of(Op::Delete)
        .into_iter()
        .filter_map(|c| c.owner.map(|o| o.uid))
        .collect();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    h.shutdown().await;
}
