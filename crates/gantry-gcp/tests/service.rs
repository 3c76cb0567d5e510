//! Service balancers against the in-process Compute Engine emulator
//! through the real `google-cloud-compute-v1` client: the chain a Service
//! becomes, updates, node churn across zones, no-op resyncs, faults,
//! foreign resources, the target-pool form and teardown.

mod common;

use std::{net::IpAddr, time::Duration};

use gantry_gcp::GcpProvider;
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, Owner, OwnerKind, ProviderKind,
    desired::{
        BackendNode, HealthCheck, L4Listener, L4Options, L4Spec, LoadBalancerSpec, Protocol,
    },
    provider::{DeleteOutcome, ErrorClass},
};
use gce_sim::GceSim;
use google_cloud_compute_v1::model::Instance;
use serde_json::Value;

const ZONE_A: &str = "us-central1-a";
const ZONE_B: &str = "us-central1-b";

fn owner(name: &str) -> Owner {
    Owner {
        cluster_id: common::CLUSTER.into(),
        kind: OwnerKind::Service,
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

fn node(name: &str, zone: &str) -> BackendNode {
    BackendNode {
        name: name.into(),
        address: IpAddr::from([10, 0, 0, 1]),
        provider_id: Some(format!("gce://{}/{zone}/{name}", common::PROJECT)),
        zone: Some(zone.into()),
    }
}

fn listener(protocol: Protocol, port: u16, node_port: u16) -> L4Listener {
    L4Listener {
        name: format!("{}-{port}", protocol.as_str().to_lowercase()),
        protocol,
        port,
        node_port,
    }
}

fn desired(owner: &Owner, class: &str, spec: L4Spec) -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: owner.clone(),
        class: class.into(),
        provider: ProviderKind::Gcp,
        spec: LoadBalancerSpec::L4(spec),
    }
}

fn spec(listeners: Vec<L4Listener>, backends: Vec<BackendNode>) -> L4Spec {
    L4Spec {
        listeners,
        backends,
        health_check: HealthCheck::NodePortTcp,
        source_ranges: vec![],
        requested_ip: None,
        options: L4Options::default(),
    }
}

/// Create the nodes' instances in the emulator, as a cluster would have them.
async fn instances(p: &GcpProvider, nodes: &[(&str, &str)]) {
    let api = p.api();
    for (name, zone) in nodes {
        api.mutate("instances.insert", || {
            api.clients
                .instances
                .insert()
                .set_project(common::PROJECT)
                .set_zone(*zone)
                .set_body(
                    Instance::new()
                        .set_name(*name)
                        .set_machine_type(format!("zones/{zone}/machineTypes/e2-standard-2")),
                )
                .send()
        })
        .await
        .expect("instance");
    }
}

/// Stored resources of `kind` (e.g. `compute#forwardingRule`).
fn of_kind(sim: &GceSim, kind: &str) -> Vec<Value> {
    sim.resources()
        .into_iter()
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// Resources whose description names Gantry.
fn gantrys(sim: &GceSim) -> Vec<Value> {
    sim.resources()
        .into_iter()
        .filter(|r| {
            r["description"]
                .as_str()
                .is_some_and(|d| d.starts_with(gantry_gcp::labels::DESCRIPTION_PREFIX))
        })
        .collect()
}

/// Writes (and all calls) since the last reset, and reset.
fn take_calls(p: &GcpProvider) -> (u64, u64, Vec<&'static str>) {
    let log = p.calls();
    let mut log = log.lock();
    let out = (
        log.writes(),
        log.total(),
        log.order()
            .iter()
            .copied()
            .filter(|op| !gantry_gcp::is_read(op))
            .collect(),
    );
    log.clear();
    out
}

fn ends_with(v: &Value, suffix: &str) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(suffix))
}

#[tokio::test]
async fn lifecycle_create_ports_nodes_noop_delete() {
    let sim = common::sim(Duration::from_millis(20)).await;
    let p = common::provider(&sim, "gcp", false).await;
    instances(&p, &[("n1", ZONE_A), ("n2", ZONE_A), ("n3", ZONE_B)]).await;
    take_calls(&p);
    let o = owner("web");
    let s = spec(
        vec![
            listener(Protocol::Tcp, 80, 30080),
            listener(Protocol::Udp, 53, 30053),
        ],
        vec![node("n1", ZONE_A), node("n2", ZONE_A)],
    );

    // Plan first: changes listed, nothing written.
    let plan = p.plan(&desired(&o, "gcp", s.clone())).await.expect("plan");
    assert!(plan.changes.len() >= 7, "{:#?}", plan.changes);
    assert_eq!(take_calls(&p).0, 0, "plan writes nothing");
    assert!(gantrys(&sim).is_empty());

    // Create.
    let status = p
        .ensure(&desired(&o, "gcp", s.clone()))
        .await
        .expect("create");
    let (writes, total, _) = take_calls(&p);
    println!("calls per Service create: {total} ({writes} writes)");
    assert!(status.ready);
    let ip = status.ingress[0].ip.expect("ip");
    assert_eq!(status.ingress[0].ports.len(), 2);

    let addresses = of_kind(&sim, "compute#address");
    assert_eq!(addresses.len(), 1);
    assert_eq!(addresses[0]["address"], ip.to_string());
    let rules = of_kind(&sim, "compute#forwardingRule");
    assert_eq!(rules.len(), 2, "one rule per protocol");
    for r in &rules {
        assert_eq!(r["IPAddress"], ip.to_string());
        assert_eq!(r["loadBalancingScheme"], "EXTERNAL");
        assert!(r["backendService"].as_str().is_some());
        let ports = r["ports"].as_array().expect("ports");
        match r["IPProtocol"].as_str() {
            Some("TCP") => assert_eq!(ports, &[Value::from("80")]),
            Some("UDP") => assert_eq!(ports, &[Value::from("53")]),
            other => panic!("protocol {other:?}"),
        }
    }
    let bs = of_kind(&sim, "compute#backendService");
    assert_eq!(bs.len(), 1);
    assert_eq!(bs[0]["loadBalancingScheme"], "EXTERNAL");
    assert_eq!(bs[0]["protocol"], "UNSPECIFIED");
    assert_eq!(bs[0]["backends"].as_array().map(Vec::len), Some(1));
    let hcs = of_kind(&sim, "compute#healthCheck");
    assert_eq!(hcs.len(), 1);
    assert_eq!(hcs[0]["type"], "TCP");
    assert_eq!(hcs[0]["tcpHealthCheck"]["port"], 30080);
    assert!(ends_with(
        &bs[0]["healthChecks"][0],
        &format!("/healthChecks/{}", hcs[0]["name"].as_str().expect("name"))
    ));
    let groups = of_kind(&sim, "compute#instanceGroup");
    assert_eq!(groups.len(), 1, "one zone so far");
    assert_eq!(groups[0]["size"], 2);
    let fw = of_kind(&sim, "compute#firewall");
    assert_eq!(fw.len(), 1);
    let ranges: Vec<&str> = fw[0]["sourceRanges"]
        .as_array()
        .expect("ranges")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for r in ["0.0.0.0/0", "35.191.0.0/16", "130.211.0.0/22"] {
        assert!(ranges.contains(&r), "{ranges:?}");
    }
    assert!(of_kind(&sim, "compute#targetPool").is_empty());

    // No-op resync: reads only.
    let again = p
        .ensure(&desired(&o, "gcp", s.clone()))
        .await
        .expect("resync");
    let (writes, total, ops) = take_calls(&p);
    println!("calls per no-op resync: {total} ({writes} writes)");
    assert_eq!(writes, 0, "{ops:?}");
    assert_eq!(again, status);

    // A node added in a second zone: only instance-group calls plus the
    // backend service taking the new group.
    let mut s2 = s.clone();
    s2.backends.push(node("n3", ZONE_B));
    p.ensure(&desired(&o, "gcp", s2.clone()))
        .await
        .expect("zone b");
    let (writes, total, ops) = take_calls(&p);
    println!("calls per node added (new zone): {total} ({writes} writes: {ops:?})");
    assert_eq!(
        ops,
        [
            "instanceGroups.insert",
            "instanceGroups.addInstances",
            "regionBackendServices.update"
        ]
    );
    // A node added in a zone that has a group: one addInstances.
    instances(&p, &[("n4", ZONE_B)]).await;
    take_calls(&p);
    let mut s3 = s2.clone();
    s3.backends.push(node("n4", ZONE_B));
    p.ensure(&desired(&o, "gcp", s3.clone())).await.expect("n4");
    let (writes, total, ops) = take_calls(&p);
    println!("calls per node added (existing zone): {total} ({writes} writes)");
    assert_eq!(ops, ["instanceGroups.addInstances"]);
    // Nodes removed: zone A loses one, zone B empties.
    let s4 = spec(s.listeners.clone(), vec![node("n1", ZONE_A)]);
    p.ensure(&desired(&o, "gcp", s4.clone()))
        .await
        .expect("shrink");
    let (_, _, ops) = take_calls(&p);
    assert_eq!(
        ops,
        [
            "instanceGroups.removeInstances",
            "regionBackendServices.update",
            "instanceGroups.delete"
        ]
    );
    assert_eq!(of_kind(&sim, "compute#instanceGroup").len(), 1);

    // Ports change: the TCP rule is replaced on the same address, UDP kept.
    let s5 = spec(
        vec![
            listener(Protocol::Tcp, 8080, 30081),
            listener(Protocol::Udp, 53, 30053),
        ],
        s4.backends.clone(),
    );
    let st = p
        .ensure(&desired(&o, "gcp", s5.clone()))
        .await
        .expect("ports");
    let (_, _, ops) = take_calls(&p);
    assert_eq!(
        st.ingress[0].ip,
        Some(ip),
        "the reserved address keeps the IP"
    );
    assert_eq!(
        ops,
        [
            "regionHealthChecks.update",
            "forwardingRules.delete",
            "forwardingRules.insert",
            "firewalls.patch"
        ]
    );
    let tcp = of_kind(&sim, "compute#forwardingRule")
        .into_iter()
        .find(|r| r["IPProtocol"] == "TCP")
        .expect("tcp rule");
    assert_eq!(tcp["ports"], serde_json::json!(["8080"]));
    assert_eq!(of_kind(&sim, "compute#forwardingRule").len(), 2);

    // Garbage collection sees the owner.
    assert_eq!(
        p.list_owned(common::CLUSTER).await.expect("list"),
        vec![o.clone()]
    );

    // Delete: nothing of Gantry's is left; a second delete finds nothing.
    assert_eq!(p.delete(&o).await.expect("delete"), DeleteOutcome::Deleted);
    assert!(gantrys(&sim).is_empty(), "{:#?}", gantrys(&sim));
    assert_eq!(p.delete(&o).await.expect("again"), DeleteOutcome::NotFound);
    assert!(
        p.list_owned(common::CLUSTER)
            .await
            .expect("list")
            .is_empty()
    );
    sim.shutdown().await;
}

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
    let s = spec(
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
    for (kind, n) in [
        ("compute#address", 1),
        ("compute#forwardingRule", 1),
        ("compute#backendService", 1),
        ("compute#healthCheck", 1),
        ("compute#instanceGroup", 2),
        ("compute#firewall", 1),
    ] {
        assert_eq!(of_kind(&sim, kind).len(), n, "{kind}");
    }
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
    let s = spec(
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
    let mut s = spec(
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
    let mut s = spec(vec![listener(Protocol::Tcp, 80, 30080)], vec![]);
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
    let s = spec(
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
    for (kind, n) in [
        ("compute#address", 1),
        ("compute#forwardingRule", 1),
        ("compute#backendService", 1),
        ("compute#healthCheck", 1),
        ("compute#instanceGroup", 2),
        ("compute#firewall", 1),
    ] {
        assert_eq!(of_kind(&sim, kind).len(), n, "{kind}");
    }
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
    let s = spec(
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
    let s2 = spec(
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
