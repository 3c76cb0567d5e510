//! Service balancers against the in-process Compute Engine emulator
//! through the real `google-cloud-compute-v1` client: the chain a Service
//! becomes, updates, node churn across zones, no-op resyncs and teardown
//! (faults, foreign resources, the target-pool form and shared groups are
//! in `service_edges.rs`).

mod common;

use std::time::Duration;

use common::l4::*;
use gantry_model::{LoadBalancer, desired::Protocol, fixtures::l4_spec, provider::DeleteOutcome};
use serde_json::Value;

#[tokio::test]
async fn lifecycle_create_ports_nodes_noop_delete() {
    let sim = common::sim(Duration::from_millis(20)).await;
    let p = common::provider(&sim, "gcp", false).await;
    instances(&p, &[("n1", ZONE_A), ("n2", ZONE_A), ("n3", ZONE_B)]).await;
    take_calls(&p);
    let o = owner("web");
    let s = l4_spec(
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
    let s4 = l4_spec(s.listeners.clone(), vec![node("n1", ZONE_A)]);
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
    let s5 = l4_spec(
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
