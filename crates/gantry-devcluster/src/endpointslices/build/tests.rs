use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::api::ObjectMeta;

use super::*;

fn svc(target: IntOrString, publish_not_ready: bool) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            labels: Some(BTreeMap::from([("team".into(), "a".into())])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([("app".into(), "web".into())])),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(target),
                ..ServicePort::default()
            }]),
            publish_not_ready_addresses: Some(publish_not_ready),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn pod(name: &str, app: &str, port_name: &str, port: i32, ip: Option<&str>, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(BTreeMap::from([("app".into(), app.into())])),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "echo".into(),
                ports: Some(vec![ContainerPort {
                    name: Some(port_name.into()),
                    container_port: port,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            pod_ip: ip.map(str::to_string),
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn zone(_: &str) -> Option<String> {
    Some("zone-a".into())
}

#[test]
fn named_target_port_resolves_per_pod_into_groups() {
    let a = pod("a", "web", "http", 8080, Some("127.1.0.1"), true);
    let b = pod("b", "web", "http", 9090, Some("127.1.0.2"), true);
    let c = pod("c", "web", "http", 8080, Some("127.1.0.3"), false);
    let other = pod("d", "db", "http", 8080, Some("127.1.0.4"), true);
    let slices = desired(
        &svc(IntOrString::String("http".into()), false),
        &[&a, &b, &c, &other],
        zone,
    );
    assert_eq!(slices.len(), 2);
    let s8080 = slices
        .iter()
        .find(|s| s.ports[0].port == Some(8080))
        .expect("8080 group");
    assert_eq!(s8080.ports[0].name.as_deref(), Some("http"));
    assert_eq!(s8080.ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(s8080.endpoints.len(), 2);
    let ea = &s8080.endpoints[0];
    assert_eq!(ea.addresses, vec!["127.1.0.1".to_string()]);
    assert_eq!(ea.node_name.as_deref(), Some("node-1"));
    assert_eq!(ea.zone.as_deref(), Some("zone-a"));
    assert_eq!(
        ea.target_ref.as_ref().and_then(|r| r.name.as_deref()),
        Some("a")
    );
    let conditions = ea.conditions.clone().expect("conditions");
    assert_eq!(
        (conditions.ready, conditions.serving, conditions.terminating),
        (Some(true), Some(true), Some(false))
    );
    let ec = s8080.endpoints[1].conditions.clone().expect("conditions");
    assert_eq!(ec.ready, Some(false));
    assert!(slices.iter().any(|s| s.ports[0].port == Some(9090)));
}

#[test]
fn numeric_target_port_and_missing_names() {
    let a = pod("a", "web", "other", 8080, Some("127.1.0.1"), true);
    let by_number = desired(&svc(IntOrString::Int(7000), false), &[&a], zone);
    assert_eq!(by_number[0].ports[0].port, Some(7000));
    let unresolved = desired(&svc(IntOrString::String("http".into()), false), &[&a], zone);
    assert_eq!(unresolved.len(), 1);
    assert!(
        unresolved[0].ports.is_empty(),
        "an unresolvable name leaves the port out"
    );
    assert_eq!(unresolved[0].endpoints.len(), 1);
}

#[test]
fn pods_without_address_are_left_out_and_placeholder_remains() {
    let a = pod("a", "web", "http", 8080, None, false);
    let slices = desired(&svc(IntOrString::String("http".into()), false), &[&a], zone);
    assert_eq!(
        slices,
        vec![SliceContent {
            ports: vec![],
            endpoints: vec![]
        }]
    );
}

#[test]
fn terminating_pods_are_serving_but_not_ready() {
    let mut a = pod("a", "web", "http", 8080, Some("127.1.0.1"), true);
    a.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let slices = desired(&svc(IntOrString::String("http".into()), false), &[&a], zone);
    let c = slices[0].endpoints[0]
        .conditions
        .clone()
        .expect("conditions");
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(true), Some(true))
    );
    let published = desired(&svc(IntOrString::String("http".into()), true), &[&a], zone);
    assert_eq!(
        published[0].endpoints[0]
            .conditions
            .clone()
            .expect("c")
            .ready,
        Some(true)
    );
}

#[test]
fn large_groups_split_into_slices_of_one_hundred() {
    let pods: Vec<Pod> = (0..150)
        .map(|i| {
            pod(
                &format!("p{i:03}"),
                "web",
                "http",
                8080,
                Some("127.1.0.1"),
                true,
            )
        })
        .collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    let slices = desired(&svc(IntOrString::Int(8080), false), &refs, zone);
    assert_eq!(
        slices.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(),
        vec![100, 50]
    );
}

#[test]
fn labels_and_management() {
    let s = svc(IntOrString::Int(80), false);
    let l = labels(&s, "web");
    assert_eq!(l[SERVICE_NAME_LABEL], "web");
    assert_eq!(l[MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(l["team"], "a");
    assert!(is_managed(&s));
    let mut no_selector = s.clone();
    if let Some(spec) = no_selector.spec.as_mut() {
        spec.selector = None;
    }
    assert!(!is_managed(&no_selector));
}
