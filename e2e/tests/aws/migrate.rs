//! Moving a Service between providers as the README describes: a class-less
//! Service on the default `local` class moves to the `aws` class with the
//! `gantry.dev/class` annotation and back, and its status is never empty on
//! the way; the old address stays only until the new balancer is ready.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use gantry_e2e::{
    aws::{classes, start_cloud, start_controller},
    local::LocalEnv,
    manifests::{echo, service},
    wait_for,
};
use k8s_openapi::api::core::v1::Service;
use kube::Api;

use crate::support::{T, summarize};

/// The mover's echo pods and its class-less Service.
fn mover() -> String {
    format!(
        "{}---\n{}",
        echo("mover", 2, "{name: http, containerPort: 8080}"),
        service(
            "mover",
            "LoadBalancer",
            "{name: http, port: 80, targetPort: http}"
        ),
    )
}

/// The first ingress point of the Service's status (`ip` or `hostname`),
/// read through the API client (fast enough to poll every 100 ms).
fn address(env: &LocalEnv, api: &Api<Service>) -> Option<String> {
    let svc = env.rt.block_on(api.get("mover")).expect("get Service");
    let point = svc.status?.load_balancer?.ingress?.into_iter().next()?;
    point.hostname.or(point.ip)
}

/// Poll the address every 100 ms until `done` accepts it, failing if it is
/// ever empty; when the address first satisfied `done`.
fn follow(
    env: &LocalEnv,
    api: &Api<Service>,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> (String, Instant) {
    let deadline = Instant::now() + T;
    loop {
        let addr = address(env, api);
        let Some(addr) = addr else {
            panic!("status went empty while {what}");
        };
        if done(&addr) {
            return (addr, Instant::now());
        }
        assert!(Instant::now() < deadline, "timed out while {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mover_balancers(env: &LocalEnv) -> usize {
    env.local_balancers()
        .iter()
        .filter(|b| b["spec"]["owner"]["name"] == "mover")
        .count()
}

#[test]
fn service_moves_from_local_to_aws_and_back_without_losing_its_address() {
    let mut env = LocalEnv::start(33).expect("environment");
    // The local environment's controller has no AWS credentials: replace
    // it with one that has, once the nodes name EC2 instances.
    env.kill_controller();
    let (_moto, proxy, world) =
        start_cloud(&env.rt, env.cluster.scratch()).expect("moto and its world");
    let nodes = env.nodes.as_ref().expect("nodes").nodes();
    let mut instances = Vec::new();
    for (node, inst) in nodes.iter().zip(&world.instances) {
        let patch = format!(r#"{{"spec":{{"providerID":"{}"}}}}"#, inst.provider_id());
        env.kubectl(&["patch", "node", &node.name, "--type", "merge", "-p", &patch]);
        instances.push(inst.id.clone());
    }
    env.apply("aws-classes", &classes(&proxy.endpoint, false));
    let log = env.cluster.scratch().join("controller-aws.log");
    env.controller = Some(start_controller(&env.cluster, &log, "10m").expect("controller"));

    env.apply("mover", &mover());
    let old_ip = env.wait_ip("mover", T);
    assert!(env.in_pool("pool-a", old_ip), "{old_ip} not from pool-a");
    env.wait_http(SocketAddr::new(old_ip, 80), "\"pod\":\"mover-", T);

    // To aws: the local address holds until the NLB is ready.
    let api: Api<Service> = Api::default_namespaced(env.client.clone());
    proxy.reset();
    let start = Instant::now();
    env.kubectl(&["annotate", "svc", "mover", "gantry.dev/class=aws"]);
    let (dns, switched) = follow(&env, &api, "moving to aws", |a| {
        a.ends_with("amazonaws.com")
    });
    // moto turns a new balancer `active` on the first describe after its
    // creation; the proxy saw when that happened.
    let calls = proxy.calls();
    let created = calls
        .iter()
        .position(|c| c.action == "CreateLoadBalancer" && !c.faulted)
        .expect("NLB created");
    let active = calls[created..]
        .iter()
        .find(|c| c.action == "DescribeLoadBalancers" && !c.faulted)
        .expect("NLB described after creation")
        .at;
    let lag = switched.saturating_duration_since(active);
    println!(
        "move local -> aws: status switched {:?} after the annotation, {lag:?} after the NLB became active",
        switched - start
    );
    summarize("move local -> aws", &calls);
    assert!(
        lag < Duration::from_secs(3),
        "the old address stayed {lag:?} after the NLB was active"
    );
    let inv = env
        .rt
        .block_on(world.inventory(gantry_e2e::aws::CLUSTER_ID));
    assert_eq!(inv.balancers.len(), 1, "{inv:#?}");
    assert_eq!(inv.balancers[0].dns, dns);
    let mut registered: Vec<String> = inv.target_groups[0]
        .targets
        .iter()
        .map(|(id, _, _)| id.clone())
        .collect();
    registered.sort();
    instances.sort();
    assert_eq!(registered, instances);
    wait_for("local balancer deleted after the move", T, || {
        (mover_balancers(&env) == 0).then_some(())
    });
    wait_for("old local address released", T, || {
        env.http_get(SocketAddr::new(old_ip, 80))
            .is_err()
            .then_some(())
    });

    // And back to the default local class: the NLB holds until the local
    // balancer is served, then goes.
    env.kubectl(&["annotate", "svc", "mover", "gantry.dev/class-"]);
    let (back, _) = follow(&env, &api, "moving back to local", |a| {
        a.parse().is_ok_and(|ip| env.in_pool("pool-a", ip))
    });
    let back_ip = back.parse().expect("IP");
    env.wait_http(SocketAddr::new(back_ip, 80), "\"pod\":\"mover-", T);
    wait_for("NLB deleted after moving back", T, || {
        env.rt
            .block_on(world.inventory(gantry_e2e::aws::CLUSTER_ID))
            .is_empty()
            .then_some(())
    });
    assert_eq!(mover_balancers(&env), 1);
}
