//! Local suite: bare-metal scenarios with `gantry controller` and
//! `gantry datapath` as processes against the API emulator, simulated nodes
//! answering on their node ports, and real HTTP traffic through the external
//! addresses Gantry hands out. This file holds the lifecycle scenarios;
//! the modules hold the traffic scenarios (TCP, UDP, Ingress, HTTPS, node
//! failure, reload under load) and bad configuration.

mod bad_config;
mod ingress;
mod l2;
mod l4;
mod local_policy;
mod support;

use std::{net::SocketAddr, time::Duration};

use gantry_e2e::{
    local::LocalEnv,
    manifests::{echo, service},
    wait_for,
};
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// An echo app `name` of two pods behind a LoadBalancer Service on port 80.
fn web(name: &str, extra_annotations: &str) -> String {
    format!(
        "{}---\n{}",
        echo(name, 2, "{name: http, containerPort: 8080}"),
        service(
            name,
            "LoadBalancer",
            "{name: http, port: 80, targetPort: http}"
        )
        .annotations(extra_annotations),
    )
}

fn owner_count(env: &LocalEnv, name: &str) -> usize {
    env.local_balancers()
        .iter()
        .filter(|b| b["spec"]["owner"]["name"] == name)
        .count()
}

#[test]
fn service_create_update_ports_nodes_and_delete() {
    let env = LocalEnv::start(1).expect("environment");
    env.apply("web", &web("web", ""));
    let ip = env.wait_ip("web", T);
    assert!(
        env.in_pool("pool-a", ip),
        "{ip} not from the default class's pool"
    );
    let body = env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"web-", T);
    assert!(body.contains("\"node\":\"node-"), "{body}");

    // Update ports: a second port appears in status and carries traffic.
    env.kubectl(&[
        "patch", "svc", "web", "--type", "json", "-p",
        r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"alt","port":8081,"targetPort":"http"}}]"#,
    ]);
    wait_for("port 8081 in status", T, || {
        let svc = env.get("svc", "web")?;
        let ports = svc["status"]["loadBalancer"]["ingress"][0]["ports"]
            .as_array()?
            .clone();
        ports.iter().any(|p| p["port"] == 8081).then_some(())
    });
    env.wait_http(SocketAddr::new(ip, 8081), "\"pod\":\"web-", T);
    assert_eq!(env.service_ip("web"), Some(ip), "the address never moves");

    // Add a node: the balancer's backends include it.
    let nodes = env.nodes.as_ref().expect("nodes");
    let added = env.rt.block_on(nodes.add_node()).expect("add node");
    wait_for("new node among the backends", T, || {
        let llb = env
            .local_balancers()
            .into_iter()
            .find(|b| b["spec"]["owner"]["name"] == "web")?;
        llb["spec"]["nodes"]
            .as_array()?
            .iter()
            .any(|n| n["name"] == added.name.as_str())
            .then_some(())
    });
    // A node stops and goes NotReady: it stays among the backends (a missed
    // heartbeat does not churn balancers), the datapath's health checks take
    // it out of rotation, and traffic keeps flowing through the others.
    env.rt
        .block_on(nodes.stop_node("node-1"))
        .expect("stop node");
    wait_for("node-1 NotReady", T, || {
        let node = env.get("node", "node-1")?;
        node["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] != "True")
            .then_some(())
    });
    let in_backends = |name: &str| {
        env.local_balancers()
            .into_iter()
            .find(|b| b["spec"]["owner"]["name"] == "web")
            .and_then(|llb| llb["spec"]["nodes"].as_array().cloned())
            .is_some_and(|nodes| nodes.iter().any(|n| n["name"] == name))
    };
    assert!(in_backends("node-1"), "a NotReady node must stay a backend");
    for _ in 0..10 {
        env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"web-", T);
    }
    // Deleting the Node is what takes it out of the backends.
    env.kubectl(&["delete", "node", "node-1", "--wait=true", "--timeout=30s"]);
    wait_for("node-1 out of the backends", T, || {
        (!in_backends("node-1")).then_some(())
    });
    for _ in 0..10 {
        env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"web-", T);
    }

    // Delete: balancer, finalizer and listener go.
    env.kubectl(&["delete", "svc", "web", "--wait=true", "--timeout=30s"]);
    assert!(env.get("svc", "web").is_none());
    assert_eq!(owner_count(&env, "web"), 0, "balancer left behind");
    wait_for("listener closed", T, || {
        env.http_get(SocketAddr::new(ip, 80)).is_err().then_some(())
    });
}

#[test]
fn class_switch_keeps_an_address_throughout() {
    let env = LocalEnv::start(2).expect("environment");
    env.apply("web", &web("mover", ""));
    let old_ip = env.wait_ip("mover", T);
    assert!(env.in_pool("pool-a", old_ip));
    env.wait_http(SocketAddr::new(old_ip, 80), "\"pod\":\"mover-", T);

    env.kubectl(&["annotate", "svc", "mover", "gantry.dev/class=pool-b"]);
    let new_ip = wait_for("address from pool-b", T, || {
        let ip = env.service_ip("mover");
        assert!(ip.is_some(), "status emptied during the migration");
        ip.filter(|ip| env.in_pool("pool-b", *ip))
    });
    env.wait_http(SocketAddr::new(new_ip, 80), "\"pod\":\"mover-", T);
    wait_for("old balancer deleted after the switch", T, || {
        (owner_count(&env, "mover") == 1).then_some(())
    });
    let left = env.local_balancers();
    assert_eq!(left[0]["spec"]["class"], "pool-b", "{left:?}");
    wait_for("old address released", T, || {
        env.http_get(SocketAddr::new(old_ip, 80))
            .is_err()
            .then_some(())
    });
}

#[test]
fn controller_killed_mid_provisioning_then_restarted() {
    let mut env = LocalEnv::start(3).expect("environment");
    // Slow every API call so the kill lands inside the provisioning.
    env.fault(json!({"action": "set_latency", "millis": 300}));
    env.apply("web", &web("crash", ""));
    wait_for("finalizer added (provisioning started)", T, || {
        let svc = env.get("svc", "crash")?;
        svc["metadata"]["finalizers"]
            .as_array()
            .filter(|f| !f.is_empty())
            .map(|_| ())
    });
    env.kill_controller();
    env.fault(json!({"action": "clear"}));
    env.start_controller().expect("restart");
    let ip = env.wait_ip("crash", T);
    env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"crash-", T);
    // Exactly one balancer, and it is the one status points at.
    std::thread::sleep(Duration::from_secs(1));
    let mine: Vec<_> = env
        .local_balancers()
        .into_iter()
        .filter(|b| b["spec"]["owner"]["name"] == "crash")
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["spec"]["addresses"][0], ip.to_string());
}

#[test]
fn watch_drops_and_expired_history_are_survived() {
    let env = LocalEnv::start(4).expect("environment");
    env.apply("a", &web("first", ""));
    env.wait_ip("first", T);
    env.fault(json!({"action": "close_watches"}));
    env.apply("b", &web("second", ""));
    let ip = env.wait_ip("second", T);
    env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"second-", T);
    env.fault(json!({"action": "expire_watch_history"}));
    env.fault(json!({"action": "close_watches"}));
    env.apply("c", &web("third", ""));
    let ip = env.wait_ip("third", T);
    env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"third-", T);
}

#[test]
fn service_deleted_while_controller_down_is_cleaned_up() {
    let mut env = LocalEnv::start(5).expect("environment");
    env.apply("web", &web("gone", ""));
    let ip = env.wait_ip("gone", T);
    env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"gone-", T);
    env.kill_controller();
    env.kubectl(&["delete", "svc", "gone", "--wait=false"]);
    // The finalizer holds the Service while nobody can clean up.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        env.get("svc", "gone").is_some(),
        "finalizer must hold the Service"
    );
    env.start_controller().expect("restart");
    wait_for("Service gone after cleanup", T, || {
        env.get("svc", "gone").is_none().then_some(())
    });
    assert_eq!(owner_count(&env, "gone"), 0);
    wait_for("listener closed", T, || {
        env.http_get(SocketAddr::new(ip, 80)).is_err().then_some(())
    });
}
