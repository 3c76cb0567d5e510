//! A Service through its whole life against the Compute Engine emulator:
//! the chain it comes out as, a port change, nodes added and removed in two
//! zones, a switch to another class and back, and deletion; with the calls
//! each step costs.

use std::time::Duration;

use gantry_e2e::{
    gcp::{CLASS_A, CLASS_B, GcpEnv, GcpOptions, ZONES, tags},
    wait_for,
};
use serde_json::Value;

use crate::support::{
    T, group_size, held, holdings, l4_chain, seed_service, settle, wait_holdings,
};

/// How long without a call counts as "the controller is done".
const QUIET: Duration = Duration::from_millis(1500);

/// The node ports of a Service, in port order.
fn node_ports(env: &GcpEnv, name: &str) -> Vec<u64> {
    let svc = env.get("svc", name).expect("Service");
    svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["nodePort"].as_u64())
        .collect()
}

/// The ports a rendered forwarding rule or firewall carries, flattened to
/// strings (`"80"`, `"80-80"`, ...).
fn ports_text(r: &Value) -> String {
    r.to_string()
}

#[test]
fn service_create_ports_nodes_class_switch_and_delete() {
    let mut env = GcpEnv::start(GcpOptions {
        resync: "3s".into(),
        ..GcpOptions::default()
    })
    .expect("environment");

    // --- create ---------------------------------------------------------
    env.clear_calls();
    env.apply("svc", &seed_service("service-test", ""));
    let ip = env.wait_ip("svc", "service-test", T);
    let create = settle(&env, QUIET);
    let table = env.kubectl(&["get", "svc", "service-test"]);
    assert!(table.contains(&ip), "kubectl get svc shows {ip}:\n{table}");
    wait_holdings(&env, "one chain after create", &l4_chain(1, 1, 2));
    assert_eq!(group_size(&env, ZONES[0]), 2);
    assert_eq!(group_size(&env, ZONES[1]), 1);
    let address = &held(&env, "regions/addresses")[0];
    assert_eq!(address["address"], ip.as_str(), "{address}");
    let rule = &held(&env, "regions/forwardingRules")[0];
    assert_eq!(rule["IPAddress"], ip.as_str(), "{rule}");
    assert!(ports_text(rule).contains("80"), "{rule}");
    let node_port = node_ports(&env, "service-test")[0];
    let firewall = &held(&env, "global/firewalls")[0];
    let fw = firewall.to_string();
    assert!(fw.contains(&node_port.to_string()), "{firewall}");
    for range in ["0.0.0.0/0", "35.191.0.0/16", "130.211.0.0/22"] {
        assert!(fw.contains(range), "{range} missing: {firewall}");
    }
    let backend = &held(&env, "regions/backendServices")[0];
    assert_eq!(
        backend["backends"].as_array().map(Vec::len),
        Some(2),
        "one backend per zone: {backend}"
    );
    // One insert per resource of the chain (7) and one addInstances per
    // zone's group (2); nothing written twice.
    assert_eq!(
        create.writes().len(),
        9,
        "writes of one Service create: {:?}",
        create.writes()
    );
    let check = &held(&env, "regions/healthChecks")[0];
    assert!(
        check.to_string().contains(&node_port.to_string()),
        "health check on the node port: {check}"
    );

    // --- no-op resyncs ----------------------------------------------------
    let runs_before = env.reconcile_runs("Service");
    env.clear_calls();
    wait_for("two resyncs of the Service", T, || {
        (env.reconcile_runs("Service") >= runs_before + 2).then_some(())
    });
    let resync = settle(&env, Duration::from_millis(200));
    let runs = env.reconcile_runs("Service") - runs_before;
    assert!(
        resync.writes().is_empty(),
        "a no-op resync writes nothing: {:?}",
        resync.writes()
    );

    // --- ports ------------------------------------------------------------
    env.clear_calls();
    env.kubectl(&[
        "patch", "svc", "service-test", "--type", "json", "-p",
        r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"alt","port":8443,"targetPort":"http","protocol":"TCP"}}]"#,
    ]);
    let alt_node_port = wait_for("second node port allocated", T, || {
        node_ports(&env, "service-test").get(1).copied()
    });
    wait_for("port 8443 on the forwarding rule and firewall", T, || {
        let rules = held(&env, "regions/forwardingRules");
        let fws = held(&env, "global/firewalls");
        (rules.iter().any(|r| ports_text(r).contains("8443"))
            && fws
                .iter()
                .any(|f| f.to_string().contains(&alt_node_port.to_string())))
        .then_some(())
    });
    let ports = settle(&env, QUIET);
    wait_holdings(&env, "one chain after the port change", &l4_chain(1, 1, 2));
    assert_eq!(
        env.status_ip("svc", "service-test").as_deref(),
        Some(ip.as_str()),
        "the address never moves"
    );

    // --- nodes --------------------------------------------------------------
    env.add_instance("node-b2", ZONES[1]);
    env.clear_calls();
    env.register_node("node-b2", ZONES[1]);
    wait_for("node-b2 in the zone-b group", T, || {
        (group_size(&env, ZONES[1]) == 2).then_some(())
    });
    let added = settle(&env, QUIET);
    let added_writes: Vec<_> = added.writes().into_iter().cloned().collect();
    assert_eq!(
        added_writes.len(),
        1,
        "a node added costs one write for the one balancer: {added_writes:?}"
    );
    assert!(
        added_writes[0].ends_with("/addInstances"),
        "{added_writes:?}"
    );

    env.clear_calls();
    env.remove_node("node-a2");
    wait_for("node-a2 out of the zone-a group", T, || {
        (group_size(&env, ZONES[0]) == 1).then_some(())
    });
    let removed = settle(&env, QUIET);
    let removed_writes = removed.writes();
    assert_eq!(removed_writes.len(), 1, "{removed_writes:?}");
    assert!(
        removed_writes[0].ends_with("/removeInstances"),
        "{removed_writes:?}"
    );
    wait_holdings(&env, "one chain after node changes", &l4_chain(1, 1, 2));

    println!(
        "GCP API economy: Service create {} calls ({} writes); \
         no-op resync {:.1} calls per resync ({} writes over {runs} resyncs); \
         port added {} calls ({} writes); \
         node added {} calls ({} writes) for 1 balancer; \
         node removed {} calls ({} writes)",
        create.total(),
        create.writes().len(),
        resync.total() as f64 / runs as f64,
        resync.writes().len(),
        ports.total(),
        ports.writes().len(),
        added.total(),
        added_writes.len(),
        removed.total(),
        removed_writes.len(),
    );

    // --- class switch and back ------------------------------------------------
    for (annotation, from, to) in [
        (format!("gantry.dev/class={CLASS_B}"), CLASS_A, CLASS_B),
        ("gantry.dev/class-".to_string(), CLASS_B, CLASS_A),
    ] {
        let before = env.status_ip("svc", "service-test").expect("an address");
        env.kubectl(&["annotate", "svc", "service-test", &annotation]);
        let after = wait_for(&format!("a new address after leaving {from}"), T, || {
            let now = env.status_ip("svc", "service-test");
            assert!(now.is_some(), "status emptied during the migration");
            now.filter(|ip| *ip != before)
        });
        wait_holdings(
            &env,
            &format!("one chain after moving from {from} to {to}"),
            &l4_chain(1, 1, 2),
        );
        for r in env.gantry_resources().into_values().flatten() {
            let class = tags(&r).and_then(|t| t.get("gantry.dev/class").cloned());
            // Instance groups are the cluster's, shared by every class (an
            // instance may be in one load-balanced group only); the rest
            // belong to the class the Service moved to.
            let want = (r["kind"] != "compute#instanceGroup").then_some(to);
            assert_eq!(class.as_deref(), want, "{r}");
        }
        assert_eq!(
            held(&env, "regions/addresses")[0]["address"],
            after.as_str()
        );
    }

    // --- delete -------------------------------------------------------------
    env.kubectl(&[
        "delete",
        "svc",
        "service-test",
        "--wait=true",
        "--timeout=60s",
    ]);
    assert!(env.get("svc", "service-test").is_none());
    wait_for("nothing of Gantry's left in the emulator", T, || {
        holdings(&env).is_empty().then_some(())
    });
    env.kill_controller();
}
