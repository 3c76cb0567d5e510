//! Service updates as the real registry applies them: carried-over
//! allocations, type changes that release or allocate node ports, traffic
//! policy changes, and fields that may not change once set.

mod common;

use common::{sim, status};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
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

fn hc(s: &Service) -> Option<i32> {
    s.spec.as_ref().and_then(|sp| sp.health_check_node_port)
}

async fn merge(api: &Api<Service>, name: &str, patch: Value) -> Result<Service, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
}

#[tokio::test]
async fn load_balancer_class_may_not_change_once_set() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "loadBalancerClass": "gantry.dev/a", "ports": [{"port": 80}]}});
    api.create(&PostParams::default(), &svc(lb))
        .await
        .expect("create");

    let s = status(
        merge(
            &api,
            "lb",
            json!({"spec": {"loadBalancerClass": "gantry.dev/b"}}),
        )
        .await
        .expect_err("class change"),
    );
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert_eq!(
        s.message,
        "Service \"lb\" is invalid: spec.loadBalancerClass: Invalid value: \"gantry.dev/b\": may not change once set"
    );
    let causes = s.details.expect("details").causes;
    assert_eq!(causes[0].field, "spec.loadBalancerClass");
    assert_eq!(causes[0].reason, "FieldValueInvalid");

    // Clearing it on a LoadBalancer is a change too.
    let s = status(
        merge(&api, "lb", json!({"spec": {"loadBalancerClass": null}}))
            .await
            .expect_err("class cleared"),
    );
    assert!(
        s.message
            .ends_with("spec.loadBalancerClass: Invalid value: \"null\": may not change once set"),
        "{}",
        s.message
    );

    // Leaving LoadBalancer drops it; coming back may set a new one.
    let cip = merge(&api, "lb", json!({"spec": {"type": "ClusterIP"}}))
        .await
        .expect("to ClusterIP");
    let spec = cip.spec.expect("spec");
    assert!(spec.load_balancer_class.is_none());
    assert!(spec.allocate_load_balancer_node_ports.is_none());
    assert!(spec.external_traffic_policy.is_none());
    let back = merge(
        &api,
        "lb",
        json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "gantry.dev/b"}}),
    )
    .await
    .expect("back to LoadBalancer with another class");
    assert_eq!(
        back.spec.and_then(|s| s.load_balancer_class).as_deref(),
        Some("gantry.dev/b")
    );

    // A class on a non-LoadBalancer Service is forbidden.
    let bad = json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "loadBalancerClass": "gantry.dev/a", "ports": [{"port": 80}]}});
    let s = status(
        api.create(&PostParams::default(), &svc(bad))
            .await
            .expect_err("class on NodePort"),
    );
    assert!(
        s.message.ends_with(
            "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"
        ),
        "{}",
        s.message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn cluster_ip_is_immutable_except_through_external_name() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let created = api
        .create(
            &PostParams::default(),
            &svc(json!({"metadata": {"name": "c"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .expect("create");
    let ip = created.spec.and_then(|s| s.cluster_ip).expect("ip");

    let s = status(
        merge(&api, "c", json!({"spec": {"clusterIP": "10.96.200.200"}}))
            .await
            .expect_err("address change"),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.ends_with(
            "spec.clusterIPs[0]: Invalid value: []string{\"10.96.200.200\"}: may not change once set"
        ),
        "{}",
        s.message
    );
    // A client that leaves the address out keeps it.
    let kept = merge(
        &api,
        "c",
        json!({"spec": {"clusterIP": "", "clusterIPs": null}}),
    )
    .await
    .expect("omitted address");
    assert_eq!(kept.spec.and_then(|s| s.cluster_ip), Some(ip.clone()));

    // To ExternalName releases the address; back allocates one.
    let ext = merge(
        &api,
        "c",
        json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
    )
    .await
    .expect("to ExternalName");
    let spec = ext.spec.expect("spec");
    assert!(spec.cluster_ip.is_none() && spec.cluster_ips.is_none());
    assert!(spec.ip_families.is_none() && spec.ip_family_policy.is_none());
    let reuse =
        json!({"metadata": {"name": "r"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    api.create(&PostParams::default(), &svc(reuse))
        .await
        .expect("released address is free again");
    let back = merge(
        &api,
        "c",
        json!({"spec": {"type": "ClusterIP", "externalName": null}}),
    )
    .await
    .expect("back to ClusterIP");
    let new_ip = back.spec.and_then(|s| s.cluster_ip).expect("new address");
    assert_ne!(new_ip, ip);
    sim.shutdown().await;
}

#[tokio::test]
async fn type_changes_release_and_allocate_node_ports() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let local = json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}});
    let created = api
        .create(&PostParams::default(), &svc(local))
        .await
        .expect("create");
    let ports = node_ports(&created);
    let health = hc(&created).expect("health-check port");
    assert_eq!(ports.len(), 2);

    // A plain type change (as `kubectl patch` sends it) drops everything the
    // new type does not use.
    let cip = merge(&api, "s", json!({"spec": {"type": "ClusterIP"}}))
        .await
        .expect("to ClusterIP");
    assert!(node_ports(&cip).is_empty());
    assert!(hc(&cip).is_none());
    let spec = cip.spec.clone().expect("spec");
    assert!(spec.external_traffic_policy.is_none());
    assert!(spec.allocate_load_balancer_node_ports.is_none());
    // The ports are free again.
    let mut reused = Vec::new();
    for (i, p) in ports.iter().chain([&health]).enumerate() {
        let name = format!("reuse{i}");
        let body = json!({"metadata": {"name": name}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": p}]}});
        api.create(&PostParams::default(), &svc(body))
            .await
            .expect("released port is free");
        reused.push(name);
    }

    // Back to NodePort allocates new ones.
    let np = merge(&api, "s", json!({"spec": {"type": "NodePort"}}))
        .await
        .expect("to NodePort");
    let fresh = node_ports(&np);
    assert_eq!(fresh.len(), 2);
    assert!(
        fresh
            .iter()
            .all(|p| (30000..=32767).contains(p) && !ports.contains(p))
    );
    assert_eq!(
        np.spec.and_then(|s| s.external_traffic_policy).as_deref(),
        Some("Cluster")
    );

    // Changing type to ClusterIP while naming a new node port is invalid.
    let s = status(
        merge(
            &api,
            "s",
            json!({"spec": {"type": "ClusterIP", "ports": [{"name": "a", "port": 80, "nodePort": 31999}, {"name": "b", "port": 81}]}}),
        )
        .await
        .expect_err("node port on ClusterIP"),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains(
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        ),
        "{}",
        s.message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn traffic_policy_changes_move_the_health_check_port() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let lb = json!({"metadata": {"name": "t"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
    let created = api
        .create(&PostParams::default(), &svc(lb))
        .await
        .expect("create");
    assert!(hc(&created).is_none());
    let ports = node_ports(&created);

    let local = merge(
        &api,
        "t",
        json!({"spec": {"externalTrafficPolicy": "Local"}}),
    )
    .await
    .expect("to Local");
    let health = hc(&local).expect("allocated on Local");
    assert!((30000..=32767).contains(&health));
    assert_eq!(node_ports(&local), ports, "node ports stay");

    // While Local, the health-check port is fixed.
    let s = status(
        merge(&api, "t", json!({"spec": {"healthCheckNodePort": 32000}}))
            .await
            .expect_err("health-check port change"),
    );
    assert!(
        s.message
            .contains("spec.healthCheckNodePort: Forbidden: field is immutable"),
        "{}",
        s.message
    );

    let cluster = merge(
        &api,
        "t",
        json!({"spec": {"externalTrafficPolicy": "Cluster"}}),
    )
    .await
    .expect("to Cluster");
    assert!(hc(&cluster).is_none(), "released on Cluster");
    let reuse = json!({"metadata": {"name": "u"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": health}]}});
    api.create(&PostParams::default(), &svc(reuse))
        .await
        .expect("health-check port is free again");

    // A health-check port on a Cluster policy Service is invalid.
    let s = status(
        merge(&api, "t", json!({"spec": {"healthCheckNodePort": 32001}}))
            .await
            .expect_err("health-check port on Cluster"),
    );
    assert!(
        s.message.contains("spec.healthCheckNodePort: Invalid value: 32001: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"),
        "{}",
        s.message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn resubmitting_a_manifest_keeps_allocations() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let manifest = json!({"metadata": {"name": "m"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}});
    let created = api
        .create(&PostParams::default(), &svc(manifest.clone()))
        .await
        .expect("create");
    let mut again = svc(manifest);
    again.metadata.resource_version = created.metadata.resource_version.clone();
    let replaced = api
        .replace("m", &PostParams::default(), &again)
        .await
        .expect("replace with the original manifest");
    assert_eq!(node_ports(&replaced), node_ports(&created));
    assert_eq!(hc(&replaced), hc(&created));
    assert_eq!(
        replaced.spec.and_then(|s| s.cluster_ip),
        created.spec.and_then(|s| s.cluster_ip)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn allocation_is_random_from_the_upper_band() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let mut ports = Vec::new();
    let mut ips = Vec::new();
    for i in 0..8 {
        let body = json!({"metadata": {"name": format!("n{i}")}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let s = api
            .create(&PostParams::default(), &svc(body))
            .await
            .expect("create");
        ports.extend(node_ports(&s));
        ips.push(s.spec.and_then(|s| s.cluster_ip).expect("ip"));
    }
    // 30000-30085 is kept for static requests while the rest has room.
    assert!(
        ports.iter().all(|p| (30086..=32767).contains(p)),
        "{ports:?}"
    );
    assert!(
        ports.windows(2).any(|w| w[1] != w[0] + 1),
        "not sequential: {ports:?}"
    );
    for ip in &ips {
        let ip: std::net::Ipv4Addr = ip.parse().expect("v4");
        assert!(ip >= std::net::Ipv4Addr::new(10, 96, 1, 1), "{ip}");
    }
    // Static requests in the lower band still work.
    let body = json!({"metadata": {"name": "static"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "ports": [{"port": 80, "nodePort": 30000}]}});
    api.create(&PostParams::default(), &svc(body))
        .await
        .expect("static port and address");
    let kubernetes = api.get("kubernetes").await.expect("kubernetes Service");
    assert_eq!(
        kubernetes.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("10.96.0.1")
    );
    sim.shutdown().await;
}
