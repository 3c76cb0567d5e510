use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{ServicePort, ServiceSpec},
    discovery::v1::{Endpoint, EndpointConditions, EndpointPort},
};
use kube::api::ObjectMeta;

use super::*;

fn svc(kind: &str, policy: &str, node_port: i32, health: Option<i32>) -> Arc<Service> {
    Arc::new(Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(kind.into()),
            external_traffic_policy: Some(policy.into()),
            health_check_node_port: health,
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                node_port: Some(node_port),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

fn ep(ip: &str, node: &str, ready: bool, terminating: bool) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        node_name: Some(node.into()),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(ready || terminating),
            terminating: Some(terminating),
        }),
        ..Endpoint::default()
    }
}

fn slice(endpoints: Vec<Endpoint>) -> Arc<EndpointSlice> {
    Arc::new(EndpointSlice {
        metadata: ObjectMeta {
            name: Some("web-abcde".into()),
            namespace: Some("default".into()),
            labels: Some(BTreeMap::from([(
                SERVICE_NAME_LABEL.to_string(),
                "web".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
        endpoints,
    })
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

#[test]
fn cluster_policy_uses_every_ready_endpoint() {
    let t = build(
        &[svc("NodePort", "Cluster", 30080, None)],
        &[slice(vec![
            ep("127.1.0.1", "node-1", true, false),
            ep("127.1.0.2", "node-2", false, false),
        ])],
    );
    let route = &t.node_ports[&(Protocol::Tcp, 30080)];
    assert_eq!(route.usable("node-3"), vec![addr("127.1.0.1:8080")]);
    assert!(t.health.is_empty());
}

#[test]
fn local_policy_uses_local_endpoints_and_reports_health() {
    let t = build(
        &[svc("LoadBalancer", "Local", 30080, Some(31000))],
        &[slice(vec![
            ep("127.1.0.1", "node-1", true, false),
            ep("127.1.0.2", "node-2", false, false),
        ])],
    );
    let route = &t.node_ports[&(Protocol::Tcp, 30080)];
    assert_eq!(route.usable("node-1"), vec![addr("127.1.0.1:8080")]);
    assert!(route.usable("node-2").is_empty(), "not ready");
    assert!(route.usable("node-3").is_empty(), "nothing local");
    let health = &t.health[&31000];
    assert_eq!(health.service, ("default".to_string(), "web".to_string()));
    assert_eq!(health.local_endpoints("node-1"), 1);
    assert_eq!(health.local_endpoints("node-2"), 0);
}

#[test]
fn terminating_serving_endpoints_are_a_fallback() {
    let t = build(
        &[svc("NodePort", "Cluster", 30080, None)],
        &[slice(vec![ep("127.1.0.1", "node-1", false, true)])],
    );
    assert_eq!(
        t.node_ports[&(Protocol::Tcp, 30080)].usable("node-1"),
        vec![addr("127.1.0.1:8080")]
    );
}

#[test]
fn cluster_ip_services_get_no_node_ports() {
    let t = build(&[svc("ClusterIP", "Cluster", 30080, None)], &[]);
    assert!(t.node_ports.is_empty());
}
