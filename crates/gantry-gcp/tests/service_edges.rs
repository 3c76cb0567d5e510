//! Service balancers at the edges, against the in-process Compute Engine
//! emulator through the real `google-cloud-compute-v1` client: faults,
//! foreign resources, the target-pool form, invalid input, a restarted
//! provider, and the cluster's shared instance groups under concurrent
//! reconciles.

mod common;

use std::{net::IpAddr, time::Duration};

use common::l4::*;
use gantry_model::{
    LoadBalancer,
    desired::Protocol,
    fixtures::l4_spec,
    provider::{DeleteOutcome, ErrorClass},
};

#[tokio::test]
async fn faults_on_a_share_of_calls_converge_without_duplicates() {
    let sim = common::sim(Duration::from_millis(10)).await;
    let p = common::provider(&sim, "gcp", false).await;
    instances(&p, &[("n1", ZONE_A), ("n2", ZONE_B)]).await;
    for (status, path) in [
        (429, "/forwardingRules"),
        (503, "/backendServices"),
        (429, "/instanceGroups"),
        (503, "/addresses"),
        (503, "/firewalls"),
    ] {
        sim.faults().fail_next(path, status, 2);
    }
    let o = owner("faulty");
    let s = l4_spec(
        vec![listener(Protocol::Tcp, 443, 30443)],
        vec![node("n1", ZONE_A), node("n2", ZONE_B)],
    );
    let st = p
        .ensure(&desired(&o, "gcp", s.clone()))
        .await
        .expect("converges");
    assert!(st.ready);
    let errors: u64 = p
        .calls()
        .lock()
        .counts()
        .iter()
        .filter(|((_, outcome), _)| *outcome == gantry_gcp::Outcome::Error)
        .map(|(_, n)| n)
        .sum();
    assert!(errors >= 10, "faults were hit ({errors})");
    assert_one_chain(&sim, 2);
    take_calls(&p);
    p.ensure(&desired(&o, "gcp", s)).await.expect("resync");
    assert_eq!(take_calls(&p).0, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_foreign_resource_with_our_name_is_neither_adopted_nor_deleted() {
    let sim = common::sim(Duration::ZERO).await;
    let p = common::provider(&sim, "gcp", false).await;
    instances(&p, &[("n1", ZONE_A)]).await;
    let o = owner("taken");
    // Someone else's firewall rule under the name Gantry would use.
    let name = o.resource_name("gcp", "fw", 63);
    let api = p.api();
    api.mutate("firewalls.insert", || {
        api.clients
            .firewalls
            .insert()
            .set_project(common::PROJECT)
            .set_body(
                google_cloud_compute_v1::model::Firewall::new()
                    .set_name(name.clone())
                    .set_description("hand-made")
                    .set_network("global/networks/default")
                    .set_allowed([google_cloud_compute_v1::model::firewall::Allowed::new()
                        .set_ip_protocol("tcp")
                        .set_ports(["22"])]),
            )
            .send()
    })
    .await
    .expect("foreign firewall");
    let s = l4_spec(
        vec![listener(Protocol::Tcp, 80, 30080)],
        vec![node("n1", ZONE_A)],
    );
    let err = p.ensure(&desired(&o, "gcp", s)).await.expect_err("refused");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.to_string().contains(&name), "{err}");
    // Teardown removes ours and leaves the foreign rule as it was.
    p.delete(&o).await.expect("delete");
    let fw = of_kind(&sim, "compute#firewall");
    assert_eq!(fw.len(), 1);
    assert_eq!(fw[0]["description"], "hand-made");
    assert_eq!(fw[0]["allowed"][0]["ports"], serde_json::json!(["22"]));
    assert!(gantrys(&sim).is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn target_pool_form_with_a_requested_address() {
    let sim = common::sim(Duration::from_millis(10)).await;
    let p = common::provider(&sim, "legacy", true).await;
    instances(&p, &[("n1", ZONE_A), ("n2", ZONE_B)]).await;
    take_calls(&p);
    let o = owner("pool");
    let mut s = l4_spec(
        vec![listener(Protocol::Tcp, 80, 30080)],
        vec![node("n1", ZONE_A)],
    );
    s.requested_ip = Some(IpAddr::from([203, 0, 113, 7]));
    let st = p
        .ensure(&desired(&o, "legacy", s.clone()))
        .await
        .expect("create");
    assert_eq!(st.ingress[0].ip, Some(IpAddr::from([203, 0, 113, 7])));
    assert!(
        of_kind(&sim, "compute#address").is_empty(),
        "a requested address is not reserved"
    );
    let pools = of_kind(&sim, "compute#targetPool");
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["instances"].as_array().map(Vec::len), Some(1));
    let hhc = of_kind(&sim, "compute#httpHealthCheck");
    assert_eq!(hhc.len(), 1);
    assert_eq!(hhc[0]["port"], 10256);
    assert_eq!(hhc[0]["requestPath"], "/healthz");
    let rule = &of_kind(&sim, "compute#forwardingRule")[0];
    assert!(ends_with(
        &rule["target"],
        &format!("/targetPools/{}", pools[0]["name"].as_str().expect("name"))
    ));
    assert_eq!(rule["IPAddress"], "203.0.113.7");
    assert!(of_kind(&sim, "compute#backendService").is_empty());
    assert!(of_kind(&sim, "compute#instanceGroup").is_empty());

    take_calls(&p);
    s.backends.push(node("n2", ZONE_B));
    p.ensure(&desired(&o, "legacy", s.clone()))
        .await
        .expect("add");
    assert_eq!(take_calls(&p).2, ["targetPools.addInstance"]);
    p.ensure(&desired(&o, "legacy", s)).await.expect("noop");
    assert_eq!(take_calls(&p).0, 0);

    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(gantrys(&sim).is_empty(), "{:#?}", gantrys(&sim));
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_annotations_create_nothing() {
    let sim = common::sim(Duration::ZERO).await;
    let p = common::provider(&sim, "gcp", false).await;
    let mut s = l4_spec(vec![listener(Protocol::Tcp, 80, 30080)], vec![]);
    s.options.proxy_protocol = true;
    let err = p
        .ensure(&desired(&owner("bad"), "gcp", s))
        .await
        .expect_err("refused");
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(
        err.to_string().contains("gantry.dev/proxy-protocol"),
        "{err}"
    );
    assert_eq!(p.calls().lock().total(), 0, "no call at all");
    assert!(sim.calls().is_empty());
    assert!(gantrys(&sim).is_empty());
    // Not `shutdown`: the emulator's server task has not run yet (no call
    // was made), and a shutdown sent before it starts listening for one is
    // missed; dropping the runtime stops it.
    drop(sim);
}

#[tokio::test]
async fn a_restarted_provider_finishes_a_half_done_ensure_without_duplicates() {
    let sim = common::sim(Duration::from_millis(10)).await;
    let first = common::provider(&sim, "gcp", false).await;
    instances(&first, &[("n1", ZONE_A), ("n2", ZONE_B)]).await;
    let o = owner("restart");
    let s = l4_spec(
        vec![listener(Protocol::Tcp, 80, 30080)],
        vec![node("n1", ZONE_A), node("n2", ZONE_B)],
    );
    // Forwarding rules keep failing: the first controller stops after the
    // address, check, groups and backend service exist.
    sim.faults().fail_next("/forwardingRules", 503, 0);
    let err = first
        .ensure(&desired(&o, "gcp", s.clone()))
        .await
        .expect_err("rules refused");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(of_kind(&sim, "compute#backendService").len(), 1);
    assert!(of_kind(&sim, "compute#forwardingRule").is_empty());
    sim.faults().clear();

    // A new controller (fresh provider, same names) finishes the chain.
    let second = common::provider(&sim, "gcp", false).await;
    let st = second
        .ensure(&desired(&o, "gcp", s.clone()))
        .await
        .expect("finishes");
    assert!(st.ready);
    let (_, _, ops) = take_calls(&second);
    assert_eq!(ops, ["forwardingRules.insert", "firewalls.insert"]);
    assert_one_chain(&sim, 2);
    second.ensure(&desired(&o, "gcp", s)).await.expect("noop");
    assert_eq!(take_calls(&second).0, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_member_another_reconcile_just_added_is_a_transient_conflict() {
    // Two Services' reconciles share the cluster's groups and may both read
    // the members before either adds a node: the second add is refused with
    // `memberAlreadyExists`. That must be retried (re-reading the members),
    // not end as a permanent error that waits for the next change.
    let sim = common::sim(Duration::from_millis(10)).await;
    let p = common::provider(&sim, "gcp", false).await;
    instances(&p, &[("n1", ZONE_A), ("n2", ZONE_A)]).await;
    let s = l4_spec(
        vec![listener(Protocol::Tcp, 80, 30080)],
        vec![node("n1", ZONE_A)],
    );
    p.ensure(&desired(&owner("first"), "gcp", s))
        .await
        .expect("first Service");
    let group = of_kind(&sim, "compute#instanceGroup")[0]["name"]
        .as_str()
        .expect("group name")
        .to_owned();
    let api = p.api();
    let add_n1 = || {
        api.clients
            .instance_groups
            .add_instances()
            .set_project(common::PROJECT)
            .set_zone(ZONE_A)
            .set_instance_group(group.clone())
            .set_body(
                google_cloud_compute_v1::model::InstanceGroupsAddInstancesRequest::new()
                    .set_instances([google_cloud_compute_v1::model::InstanceReference::new()
                        .set_instance(format!(
                            "projects/{}/zones/{ZONE_A}/instances/n1",
                            common::PROJECT
                        ))]),
            )
            .send()
    };
    let err = api
        .mutate("instanceGroups.addInstances", add_n1)
        .await
        .expect_err("n1 is a member already");
    assert!(err.is_transient(), "{err:?}");
    let err = gantry_model::ProviderError::from(err);
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");

    // The second Service, over both nodes, adds only the missing one.
    take_calls(&p);
    let s2 = l4_spec(
        vec![listener(Protocol::Tcp, 81, 30081)],
        vec![node("n1", ZONE_A), node("n2", ZONE_A)],
    );
    p.ensure(&desired(&owner("second"), "gcp", s2))
        .await
        .expect("second Service");
    let groups = of_kind(&sim, "compute#instanceGroup");
    assert_eq!(groups.len(), 1, "one shared group");
    assert_eq!(groups[0]["size"], 2);
}
