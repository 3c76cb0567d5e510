//! Service validation parity with the real server for common mistakes:
//! field paths in `details.causes` and the real messages.

mod common;

use common::{sim, status};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

fn svc(v: Value) -> Service {
    serde_json::from_value(v).expect("service")
}

/// Creates `spec` as Service "v" and returns the causes of its 422.
async fn causes(api: &Api<Service>, spec: Value) -> Vec<(String, String)> {
    let body = json!({"metadata": {"name": "v"}, "spec": spec});
    let s = status(
        api.create(&PostParams::default(), &svc(body))
            .await
            .expect_err("invalid"),
    );
    assert_eq!(s.code, 422, "{}", s.message);
    assert_eq!(s.reason, "Invalid");
    assert!(
        s.message.starts_with("Service \"v\" is invalid: "),
        "{}",
        s.message
    );
    s.details
        .expect("details")
        .causes
        .into_iter()
        .map(|c| (c.field, c.message))
        .collect()
}

fn has(got: &[(String, String)], field: &str, message: &str) -> bool {
    got.iter().any(|(f, m)| f == field && m == message)
}

#[tokio::test]
async fn common_mistakes_get_the_real_field_errors() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"ports": [{"port": 80}, {"name": "b", "port": 81}]}),
            "spec.ports[0].name",
            "Required value",
        ),
        (
            json!({"ports": [{"name": "Web", "port": 80}]}),
            "spec.ports[0].name",
            "Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        (
            json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}),
            "spec.ports[1].name",
            "Duplicate value: \"a\"",
        ),
        (
            json!({"ports": [{"port": 80, "targetPort": "http--x"}]}),
            "spec.ports[0].targetPort",
            "Invalid value: \"http--x\": must not contain consecutive hyphens",
        ),
        (
            json!({"ports": [{"port": 80, "targetPort": "8080"}]}),
            "spec.ports[0].targetPort",
            "Invalid value: \"8080\": must contain at least one letter (a-z)",
        ),
        (
            json!({"ports": [{"port": 80, "protocol": "HTTP"}]}),
            "spec.ports[0].protocol",
            "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
        ),
        (
            json!({"type": "NodePort", "loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": [{"port": 80}]}),
            "spec.LoadBalancerSourceRanges",
            "Forbidden: may only be used when `type` is 'LoadBalancer'",
        ),
        (
            json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"], "ports": [{"port": 80}]}),
            "spec.LoadBalancerSourceRanges[0]",
            "Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ),
        (
            json!({"externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
            "spec.externalTrafficPolicy",
            "Invalid value: \"Local\": may only be set for externally-accessible services",
        ),
        (
            json!({"type": "NodePort", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
            "spec.allocateLoadBalancerNodePorts",
            "Forbidden: may only be used when `type` is 'LoadBalancer'",
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
            "spec.ports[0].nodePort",
            "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 40000}]}),
            "spec.ports[0].nodePort",
            "Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
        (
            json!({"ports": [{"port": 80, "nodePort": 31000}]}),
            "spec.ports[0].nodePort",
            "Forbidden: may not be used when `type` is 'ClusterIP'",
        ),
        (
            json!({"type": "LoadBalancer", "clusterIP": "None", "ports": [{"port": 80}]}),
            "spec.clusterIPs[0]",
            "Invalid value: \"None\": may not be set to 'None' for LoadBalancer services",
        ),
    ];
    for (spec, field, message) in cases {
        let got = causes(&api, spec.clone()).await;
        assert!(
            has(&got, field, message),
            "{spec}: want {field}: {message}, got {got:?}"
        );
    }
    // Valid variants of the same fields pass.
    let ok = json!({"metadata": {"name": "ok"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "loadBalancerSourceRanges": [" 10.0.0.0/8", "2001:db8::/64"], "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353}]}});
    api.create(&PostParams::default(), &svc(ok))
        .await
        .expect("valid Service");
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_creates_leave_nothing_allocated() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    // The node port and address are allocated before validation fails on
    // the port name; both must be free afterwards.
    let bad = json!({"type": "NodePort", "clusterIP": "10.96.5.5", "ports": [{"name": "Bad", "port": 80, "nodePort": 30500}]});
    causes(&api, bad).await;
    let good = json!({"metadata": {"name": "g"}, "spec": {"type": "NodePort", "clusterIP": "10.96.5.5", "ports": [{"port": 80, "nodePort": 30500}]}});
    api.create(&PostParams::default(), &svc(good))
        .await
        .expect("nothing leaked");
    sim.shutdown().await;
}
