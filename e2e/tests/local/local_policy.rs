//! `externalTrafficPolicy: Local` end to end: every node stays a target of
//! the balancer, the datapath's checks on `healthCheckNodePort` send
//! traffic only to nodes running a pod, and pods moving leaves the
//! balancer's spec untouched (no reconcile, no new generation).

use std::{collections::BTreeSet, net::SocketAddr};

use gantry_e2e::{
    local::LocalEnv,
    manifests::{echo, service},
    wait_for,
};
use serde_json::Value;

use crate::support::{T, consecutive_successes};

/// Names of the nodes running a pod labelled `app: {app}`.
fn pod_nodes(env: &LocalEnv, app: &str) -> BTreeSet<String> {
    let pods: Value = serde_json::from_str(&env.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "json",
    ]))
    .expect("pods JSON");
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
        .collect()
}

/// The `LocalLoadBalancer` of Service `name`.
fn balancer(env: &LocalEnv, name: &str) -> Option<Value> {
    env.local_balancers()
        .into_iter()
        .find(|b| b["spec"]["owner"]["name"] == name)
}

/// The node named in an echo answer.
fn answering_node(body: &str) -> String {
    let v: Value = serde_json::from_str(body).expect("echo JSON");
    v["node"].as_str().expect("node in answer").to_string()
}

#[test]
fn local_policy_keeps_every_node_and_traffic_follows_the_pods() {
    let env = LocalEnv::start(16).expect("environment");
    env.apply(
        "lp",
        &format!(
            "{}---\n{}",
            echo("lp", 1, "{name: http, containerPort: 8080}").text("lp"),
            service(
                "lp",
                "LoadBalancer",
                "{name: http, port: 80, targetPort: http}"
            )
            .spec("externalTrafficPolicy: Local"),
        ),
    );
    let ip = env.wait_ip("lp", T);
    let addr = SocketAddr::new(ip, 80);
    env.wait_http(addr, "\"pod\":\"lp-", T);

    let nodes: Value =
        serde_json::from_str(&env.kubectl(&["get", "nodes", "-o", "json"])).expect("nodes JSON");
    let all: BTreeSet<String> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
    let before = balancer(&env, "lp").expect("balancer");
    let targets: BTreeSet<String> = before["spec"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(targets, all, "every eligible node is a target");

    // One pod: the nodes without it fail their health check (kube-proxy's
    // 503), so every answer comes from the pod's node.
    let running = pod_nodes(&env, "lp");
    assert_eq!(running.len(), 1, "{running:?}");
    consecutive_successes(&env, addr, 20, |body| {
        let node = answering_node(body);
        assert!(running.contains(&node), "answer from {node}: {body}");
    });

    // Pods on every node: traffic reaches all of them through the health
    // checks alone, and the balancer is never rewritten.
    env.kubectl(&["scale", "deployment", "lp", "--replicas=3"]);
    wait_for("pods on all three nodes", T, || {
        (pod_nodes(&env, "lp") == all).then_some(())
    });
    let mut answered = BTreeSet::new();
    wait_for("answers from all three nodes", T, || {
        if let Ok(body) = env.http_get(addr) {
            answered.insert(answering_node(&body));
        }
        (answered == all).then_some(())
    });
    let after = balancer(&env, "lp").expect("balancer");
    assert_eq!(
        after["metadata"]["generation"], before["metadata"]["generation"],
        "pods moving must not change the balancer"
    );
    assert_eq!(after["spec"], before["spec"]);
}
