//! Service allocation and validation as the real API server does it.

mod common;

use common::{sim, status};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn svc(v: Value) -> Service {
    serde_json::from_value(v).expect("service")
}

fn node_ports(s: &Service) -> Vec<i32> {
    s.spec
        .as_ref()
        .and_then(|sp| sp.ports.as_ref())
        .map(|ps| ps.iter().filter_map(|p| p.node_port).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn cluster_ip_allocation_and_defaults() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let a = api
        .create(
            &PostParams::default(),
            &svc(json!({"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .expect("a");
    let spec = a.spec.clone().expect("spec");
    let ip: std::net::Ipv4Addr = spec.cluster_ip.clone().expect("ip").parse().expect("ipv4");
    assert!(
        ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 96, 0, 0), 16)
            .expect("net")
            .contains(&ip)
    );
    assert_ne!(
        ip.to_string(),
        "10.96.0.1",
        "the kubernetes Service holds the first address"
    );
    assert_eq!(spec.cluster_ips, Some(vec![ip.to_string()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_string()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    assert_eq!(spec.internal_traffic_policy.as_deref(), Some("Cluster"));
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let port = &spec.ports.expect("ports")[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80))
    );
    assert!(port.node_port.is_none());

    let want = json!({"metadata": {"name": "b"}, "spec": {"clusterIP": "10.96.7.7", "ports": [{"port": 80}]}});
    let b = api
        .create(&PostParams::default(), &svc(want))
        .await
        .expect("b");
    assert_eq!(
        b.spec.expect("spec").cluster_ip.as_deref(),
        Some("10.96.7.7")
    );

    let taken = json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "10.96.7.7", "ports": [{"port": 80}]}});
    let s = status(
        api.create(&PostParams::default(), &svc(taken))
            .await
            .expect_err("taken"),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("provided IP is already allocated"),
        "{}",
        s.message
    );

    let outside = json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "10.1.2.3", "ports": [{"port": 80}]}});
    let s = status(
        api.create(&PostParams::default(), &svc(outside))
            .await
            .expect_err("out of range"),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("not in the valid range"),
        "{}",
        s.message
    );

    let headless =
        json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}});
    let h = api
        .create(&PostParams::default(), &svc(headless))
        .await
        .expect("headless");
    assert_eq!(
        h.spec.expect("spec").cluster_ips,
        Some(vec!["None".to_string()])
    );

    // Releasing on delete makes the address reusable.
    api.delete("b", &DeleteParams::default())
        .await
        .expect("delete");
    let again = json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "10.96.7.7", "ports": [{"port": 80}]}});
    api.create(&PostParams::default(), &svc(again))
        .await
        .expect("reuse");
    sim.shutdown().await;
}

#[tokio::test]
async fn node_port_allocation_lifecycle() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let np = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 31000}, {"name": "b", "port": 81}]}});
    let created = api
        .create(&PostParams::default(), &svc(np))
        .await
        .expect("create");
    let ports = node_ports(&created);
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0], 31000);
    assert!((30000..=32767).contains(&ports[1]));
    assert_eq!(
        created
            .spec
            .as_ref()
            .and_then(|s| s.external_traffic_policy.as_deref()),
        Some("Cluster")
    );

    let clash = json!({"metadata": {"name": "clash"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}});
    let s = status(
        api.create(&PostParams::default(), &svc(clash.clone()))
            .await
            .expect_err("taken"),
    );
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert!(
        s.message.contains("provided port is already allocated"),
        "{}",
        s.message
    );
    let cause = &s.details.expect("details").causes[0];
    assert_eq!(cause.field, "spec.ports[0].nodePort");

    // Updates keep allocated ports even when the client omits them.
    let relabel = json!({"metadata": {"labels": {"x": "y"}}, "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}});
    let updated = api
        .patch("np", &PatchParams::default(), &Patch::Merge(relabel))
        .await
        .expect("patch");
    assert_eq!(node_ports(&updated), ports);

    // Type change to ClusterIP releases them.
    let to_cluster = json!({"spec": {"type": "ClusterIP", "externalTrafficPolicy": null}});
    let changed = api
        .patch("np", &PatchParams::default(), &Patch::Merge(to_cluster))
        .await
        .expect("to ClusterIP");
    assert!(node_ports(&changed).is_empty());
    api.create(&PostParams::default(), &svc(clash))
        .await
        .expect("port released by type change");
    api.delete("clash", &DeleteParams::default())
        .await
        .expect("delete");
    let reuse = json!({"metadata": {"name": "reuse"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}});
    api.create(&PostParams::default(), &svc(reuse))
        .await
        .expect("port released by delete");
    sim.shutdown().await;
}

#[tokio::test]
async fn load_balancer_variants() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let no_np = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}});
    let lb = api
        .create(&PostParams::default(), &svc(no_np))
        .await
        .expect("lb");
    assert!(node_ports(&lb).is_empty());
    assert!(lb.spec.expect("spec").health_check_node_port.is_none());

    let local = json!({"metadata": {"name": "local"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}});
    let l = api
        .create(&PostParams::default(), &svc(local))
        .await
        .expect("local");
    let hc = l
        .spec
        .as_ref()
        .and_then(|s| s.health_check_node_port)
        .expect("health check node port");
    assert!((30000..=32767).contains(&hc));
    assert_eq!(node_ports(&l).len(), 1);
    assert_ne!(node_ports(&l)[0], hc);
    assert_eq!(
        l.spec.and_then(|s| s.allocate_load_balancer_node_ports),
        Some(true)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn validation_errors_are_invalid_status() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let cases = [
        (json!({"metadata": {"name": "v"}, "spec": {}}), "spec.ports"),
        (
            json!({"metadata": {"name": "v"}, "spec": {"ports": [{"port": 0}]}}),
            "spec.ports[0].port",
        ),
        (
            json!({"metadata": {"name": "v"}, "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}}),
            "spec.ports[1]",
        ),
        (
            json!({"metadata": {"name": "v"}, "spec": {"type": "Weird", "ports": [{"port": 80}]}}),
            "spec.type",
        ),
    ];
    for (body, field) in cases {
        let s = status(
            api.create(&PostParams::default(), &svc(body))
                .await
                .expect_err("invalid"),
        );
        assert_eq!(s.code, 422);
        assert_eq!(s.reason, "Invalid");
        assert!(
            s.message.starts_with("Service \"v\" is invalid: "),
            "{}",
            s.message
        );
        let causes = s.details.expect("details").causes;
        assert!(
            causes.iter().any(|c| c.field == field),
            "{field}: {causes:?}"
        );
    }
    sim.shutdown().await;
}
