//! Faults: an AWS endpoint answering `Throttling` and 500 to a share of
//! calls, and a controller killed between creating the NLB and writing the
//! Service's status. Both must converge on exactly one set of resources.

use std::time::Duration;

use gantry_e2e::{aws::AwsEnv, wait_for};
use serde_json::json;

use crate::support::{T, figures, ready, seed_service, target_ids};

#[test]
fn throttling_and_server_errors_still_converge_without_duplicates() {
    let env = AwsEnv::start(3, "5s").expect("environment");
    // Every third call is answered by the proxy instead of moto,
    // alternating Throttling (400) and InternalFailure (500).
    env.proxy.fail_every(3);
    env.proxy.reset();
    env.apply("service-test", &seed_service());
    let dns = wait_for("NLB DNS name in status despite faults", T, || {
        ready(&env, "svc", "service-test")
    });
    let f = figures(&env, "Service create with every 3rd call failing");
    assert!(f.faulted > 0, "no fault was injected");

    // Ports change and a node joins, still under faults.
    env.kubectl(&[
        "patch", "svc", "service-test", "--type", "json", "-p",
        r#"[{"op":"add","path":"/spec/ports/0/name","value":"http"},{"op":"add","path":"/spec/ports/-","value":{"name":"alt","port":8080,"targetPort":"http"}}]"#,
    ]);
    env.add_node(3);
    let added = env.instance(3).id.clone();
    wait_for("two listeners, new node in both target groups", T, || {
        let inv = env.inventory();
        (inv.listeners.len() == 2
            && inv.target_groups.len() == 2
            && inv
                .target_groups
                .iter()
                .all(|tg| target_ids(tg).contains(&added) && tg.targets.len() == 4))
        .then_some(())
    });
    let inv = env.inventory();
    assert_eq!(inv.balancers.len(), 1, "duplicate balancer: {inv:#?}");
    assert_eq!(inv.balancers[0].dns, dns);
    assert_eq!(inv.security_groups.len(), 1, "{inv:#?}");

    // Deleting under faults still leaves nothing behind.
    env.kubectl(&[
        "delete",
        "svc",
        "service-test",
        "--wait=true",
        "--timeout=60s",
    ]);
    let left = env.inventory();
    assert!(left.is_empty(), "left behind: {left:#?}");
    let all = figures(&env, "whole scenario under faults");
    assert!(all.faulted >= 5, "too few faults to mean anything: {all:?}");
}

#[test]
fn controller_killed_after_nlb_created_before_status_written() {
    let mut env = AwsEnv::start(3, "5s").expect("environment");
    // Every status write fails until the faults are cleared, so the
    // controller creates the NLB but cannot record it.
    env.fault(json!({
        "action": "fail_next", "count": 100000, "status": 500,
        "resource": "services/status",
    }));
    env.apply("service-test", &seed_service());
    wait_for("NLB created with its listener", T, || {
        let calls = env.proxy.calls();
        calls
            .iter()
            .any(|c| c.action == "CreateListener" && !c.faulted)
            .then_some(())
    });
    // Give the controller a moment to try (and fail) its status write.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        env.hostname("svc", "service-test").is_none(),
        "status was written despite the fault"
    );
    env.kill_controller();
    env.fault(json!({"action": "clear"}));
    env.proxy.reset();
    env.start_controller().expect("restart");
    let dns = wait_for("NLB DNS name in status after restart", T, || {
        ready(&env, "svc", "service-test")
    });
    let f = figures(&env, "restart after the crash");
    assert_eq!(
        f.count("CreateLoadBalancer"),
        0,
        "the restart created again"
    );
    let inv = env.inventory();
    assert_eq!(inv.balancers.len(), 1, "exactly one NLB: {inv:#?}");
    assert_eq!(inv.balancers[0].dns, dns);
    assert_eq!(inv.target_groups.len(), 1, "{inv:#?}");
    assert_eq!(inv.listeners.len(), 1, "{inv:#?}");
}
