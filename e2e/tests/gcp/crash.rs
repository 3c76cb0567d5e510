//! The controller SIGKILLed in the middle of building a chain (the backend
//! service made, the forwarding rule not yet, no status written), then
//! started again: it finishes the one chain it began, without a duplicate.

use gantry_e2e::{
    gcp::{GcpEnv, GcpOptions},
    wait_for,
};
use serde_json::json;

use crate::support::{T, held, holdings, l4_chain, seed_service, wait_holdings};

#[test]
fn controller_killed_mid_creation_leaves_one_chain_after_restart() {
    let mut env = GcpEnv::start(GcpOptions::default()).expect("environment");
    // Hold the forwarding rule's insert so the kill lands after the backend
    // service exists and before the rule and the status do.
    env.fault(json!({
        "method": "POST",
        "pathContains": "/forwardingRules",
        "latencyMs": 5000,
        "times": 1,
    }));
    env.apply("svc", &seed_service("crash", ""));
    wait_for(
        "backend service made, forwarding rule insert sent",
        T,
        || {
            let sent = env
                .calls()
                .iter()
                .any(|c| c.starts_with("POST ") && c.ends_with("/forwardingRules"));
            (sent && !held(&env, "regions/backendServices").is_empty()).then_some(())
        },
    );
    assert!(
        held(&env, "regions/forwardingRules").is_empty(),
        "the rule must not exist yet"
    );
    assert_eq!(env.status_ip("svc", "crash"), None, "no status yet");
    env.kill_controller();
    env.clear_faults();

    env.start_controller().expect("restart");
    let ip = env.wait_ip("svc", "crash", T);
    wait_holdings(
        &env,
        "exactly one chain after the restart",
        &l4_chain(1, 1, 2),
    );
    assert_eq!(held(&env, "regions/addresses")[0]["address"], ip.as_str());
    assert_eq!(
        held(&env, "regions/forwardingRules")[0]["IPAddress"],
        ip.as_str()
    );

    env.kubectl(&["delete", "svc", "crash", "--wait=true", "--timeout=60s"]);
    wait_for("nothing of Gantry's left", T, || {
        holdings(&env).is_empty().then_some(())
    });
}
