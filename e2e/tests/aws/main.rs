//! AWS suite: `gantry controller` as a process against the API emulator and
//! `moto_server`, through a proxy that counts the controller's calls. This
//! file holds the Service lifecycle and the API economy figures; the modules
//! hold the Ingress, faults and crash, and the move between providers.

mod faults;
mod ingress;
mod migrate;
mod support;

use std::{collections::BTreeSet, time::Duration};

use gantry_e2e::{aws::AwsEnv, wait_for};

use crate::support::{T, figures, ready, seed_service, target_ids};

#[test]
fn seed_service_lifecycle_and_api_economy() {
    let env = AwsEnv::start(4, "5s").expect("environment");

    // Create: the seed's Service gets an NLB whose DNS name is its address.
    env.proxy.reset();
    env.apply("service-test", &seed_service());
    let dns = wait_for("NLB DNS name in status", T, || {
        ready(&env, "svc", "service-test")
    });
    let create = figures(&env, "Service create");
    let inv = env.inventory();
    assert_eq!(inv.balancers.len(), 1, "{inv:#?}");
    let lb = &inv.balancers[0];
    assert_eq!(
        (lb.kind.as_str(), lb.scheme.as_str()),
        ("network", "internet-facing")
    );
    assert_eq!(lb.dns, dns);
    let ports: Vec<_> = inv
        .listeners
        .iter()
        .map(|l| (l.port, l.protocol.clone()))
        .collect();
    assert_eq!(ports, [(80, "TCP".to_string())]);
    assert_eq!(inv.target_groups.len(), 1, "{inv:#?}");
    let node_port = env.get("svc", "service-test").expect("svc")["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("node port") as i32;
    let tg = &inv.target_groups[0];
    assert_eq!(
        target_ids(tg),
        (0..4).map(|i| env.instance(i).id.clone()).collect()
    );
    for (id, port, health) in &tg.targets {
        assert_eq!(*port, node_port, "{id} registered at the node port");
        assert_eq!(health, "healthy", "{id}");
    }
    for (action, n) in [
        ("CreateLoadBalancer", 1),
        ("CreateTargetGroup", 1),
        ("CreateListener", 1),
        ("RegisterTargets", 1),
    ] {
        assert_eq!(create.count(action), n, "{action} per Service create");
    }
    // `kubectl get svc` shows the DNS name as EXTERNAL-IP.
    let table = env.kubectl(&["get", "svc", "service-test"]);
    println!("kubectl get svc service-test:\n{table}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("EXTERNAL-IP")),
        "{table}"
    );
    assert!(table.contains(&dns), "{table}");

    // A no-op resync (the controller resyncs every 5 s) reads, never writes.
    env.proxy.reset();
    std::thread::sleep(Duration::from_secs(7));
    let resync = figures(&env, "no-op resync (7 s window, resync every 5 s)");
    assert!(resync.reads > 0, "no resync happened in the window");
    assert_eq!(resync.writes, 0, "a no-op resync must not write");

    // Change ports: a second listener and target group.
    env.kubectl(&[
        "patch", "svc", "service-test", "--type", "json", "-p",
        r#"[{"op":"add","path":"/spec/ports/0/name","value":"http"},{"op":"add","path":"/spec/ports/-","value":{"name":"alt","port":8080,"targetPort":"http"}}]"#,
    ]);
    wait_for("listeners on 80 and 8080", T, || {
        let inv = env.inventory();
        let ports: BTreeSet<i32> = inv.listeners.iter().map(|l| l.port).collect();
        (ports == BTreeSet::from([80, 8080]) && inv.target_groups.len() == 2).then_some(())
    });
    assert_eq!(
        env.hostname("svc", "service-test").as_deref(),
        Some(dns.as_str())
    );

    // Add a node: registered in both target groups.
    env.proxy.reset();
    env.add_node(4);
    let added = env.instance(4).id.clone();
    wait_for("new node registered in every target group", T, || {
        env.inventory()
            .target_groups
            .iter()
            .all(|tg| target_ids(tg).contains(&added))
            .then_some(())
    });
    let node = figures(&env, "node added (1 balancer, 2 target groups)");
    assert_eq!(node.count("RegisterTargets"), 2, "one per target group");
    assert_eq!(node.writes, 2, "nothing but the registrations");

    // Remove a node: deregistered everywhere.
    env.remove_node(0);
    let gone = env.instance(0).id.clone();
    wait_for("removed node deregistered", T, || {
        env.inventory()
            .target_groups
            .iter()
            .all(|tg| !target_ids(tg).contains(&gone) && tg.targets.len() == 4)
            .then_some(())
    });

    // Switch to another class (internal) and back: one balancer at a time
    // once each move is done, and the address follows.
    env.kubectl(&[
        "annotate",
        "svc",
        "service-test",
        "gantry.dev/class=aws-internal",
    ]);
    let internal = wait_for("internal NLB in status, old one deleted", T, || {
        let host = env.hostname("svc", "service-test");
        assert!(host.is_some(), "status emptied during the class switch");
        let inv = env.inventory();
        (inv.balancers.len() == 1 && inv.balancers[0].scheme == "internal")
            .then(|| inv.balancers[0].dns.clone())
            .filter(|d| host.as_deref() == Some(d.as_str()))
    });
    assert_ne!(internal, dns);
    env.kubectl(&["annotate", "svc", "service-test", "gantry.dev/class-"]);
    wait_for("back on an internet-facing NLB", T, || {
        let host = env.hostname("svc", "service-test");
        assert!(host.is_some(), "status emptied during the class switch");
        let inv = env.inventory();
        (inv.balancers.len() == 1 && inv.balancers[0].scheme == "internet-facing")
            .then(|| inv.balancers[0].dns.clone())
            .filter(|d| host.as_deref() == Some(d.as_str()))
    });

    // Delete: nothing of Gantry's is left in moto.
    env.kubectl(&[
        "delete",
        "svc",
        "service-test",
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(env.get("svc", "service-test").is_none());
    let left = env.inventory();
    assert!(left.is_empty(), "left behind: {left:#?}");
}
