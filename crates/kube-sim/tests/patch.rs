//! The four patch kinds through kube-rs: JSON merge, JSON patch, strategic
//! merge and server-side apply (ownership, removal, conflicts, force).

mod common;

use common::{cm, sim, status};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn merge_and_json_patch() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("p", &[("a", "1"), ("b", "2")]))
        .await
        .expect("create");

    let merged = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": null, "c": "3"}}})),
        )
        .await
        .expect("merge");
    let labels = merged.metadata.labels.expect("labels");
    assert_eq!(labels.len(), 2);
    assert_eq!(labels["c"], "3");
    assert!(!labels.contains_key("a"));

    let ops: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/k", "value": "json"},
        {"op": "add", "path": "/data/n", "value": "new"}
    ]))
    .expect("ops");
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    let data = patched.data.expect("data");
    assert_eq!(data["k"], "json");
    assert_eq!(data["n"], "new");

    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "other"}]))
            .expect("ops");
    let err = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(failing))
        .await
        .expect_err("test op fails");
    assert_eq!(status(err).code, 422);

    // A resourceVersion in the patch is a precondition.
    let stale = json!({"metadata": {"resourceVersion": "1", "labels": {"z": "z"}}});
    let err = api
        .patch("p", &PatchParams::default(), &Patch::Merge(stale))
        .await
        .expect_err("stale");
    assert_eq!(status(err).code, 409);
    sim.shutdown().await;
}

#[tokio::test]
async fn strategic_merge_service_ports_and_finalizers() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "s", "finalizers": ["a/one"]},
        "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}
    }))
    .expect("svc");
    api.create(&PostParams::default(), &svc)
        .await
        .expect("create");
    let patch = json!({
        "metadata": {"finalizers": ["a/two"]},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"name": "metrics", "port": 9090}]}
    });
    let out = api
        .patch("s", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("strategic");
    assert_eq!(
        out.metadata.finalizers.clone().expect("finalizers"),
        vec!["a/one", "a/two"]
    );
    let ports = out.spec.expect("spec").ports.expect("ports");
    let summary: Vec<(i32, String)> = ports
        .iter()
        .map(|p| {
            (
                p.port,
                p.target_port
                    .as_ref()
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 3, "{summary:?}");
    assert_eq!(ports[0].port, 80);
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(
        ports[0].target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
    );
    assert_eq!(ports[1].port, 443);
    assert_eq!(ports[2].port, 9090);

    let delete = json!({"spec": {"ports": [{"port": 443, "$patch": "delete"}]}, "metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one"]}});
    let out = api
        .patch("s", &PatchParams::default(), &Patch::Strategic(delete))
        .await
        .expect("directives");
    assert_eq!(out.metadata.finalizers.expect("finalizers"), vec!["a/two"]);
    let ports: Vec<i32> = out
        .spec
        .expect("spec")
        .ports
        .expect("ports")
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, vec![80, 9090]);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_lifecycle() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ssa", "labels": {"a": "1", "b": "2"}},
        "data": {"x": "1"}
    });
    let created = api
        .patch("ssa", &PatchParams::apply("one"), &Patch::Apply(&config))
        .await
        .expect("create by apply");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let managers: Vec<String> = created
        .metadata
        .managed_fields
        .clone()
        .expect("managed fields")
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["one"]);

    let again = api
        .patch("ssa", &PatchParams::apply("one"), &Patch::Apply(&config))
        .await
        .expect("re-apply");
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv.as_str()),
        "a no-op apply does not bump the RV"
    );

    let smaller = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"a": "1"}}, "data": {"x": "1"}});
    let out = api
        .patch("ssa", &PatchParams::apply("one"), &Patch::Apply(&smaller))
        .await
        .expect("shrink");
    assert!(
        !out.metadata.labels.expect("labels").contains_key("b"),
        "fields no longer applied are removed"
    );

    let rival = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"x": "2"}});
    let err = api
        .patch("ssa", &PatchParams::apply("two"), &Patch::Apply(&rival))
        .await
        .expect_err("conflict");
    let s = status(err);
    assert_eq!(s.code, 409);
    assert_eq!(s.reason, "Conflict");
    assert!(
        s.message.contains("conflict with \"one\"") && s.message.contains(".data.x"),
        "{}",
        s.message
    );

    // Agreeing on a value is shared ownership, not a conflict.
    let agree = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"x": "1"}});
    api.patch("ssa", &PatchParams::apply("three"), &Patch::Apply(&agree))
        .await
        .expect("shared");

    let forced = api
        .patch(
            "ssa",
            &PatchParams::apply("two").force(),
            &Patch::Apply(&rival),
        )
        .await
        .expect("force");
    assert_eq!(forced.data.expect("data")["x"], "2");

    // "one" no longer owns data.x, so dropping it from its config leaves the value alone.
    let labels_only = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"a": "1"}}});
    let out = api
        .patch(
            "ssa",
            &PatchParams::apply("one"),
            &Patch::Apply(&labels_only),
        )
        .await
        .expect("apply");
    assert_eq!(out.data.expect("data")["x"], "2");

    // fieldManager is required for apply.
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/ssa")
        .header("Content-Type", "application/apply-patch+yaml")
        .body(serde_json::to_vec(&config).expect("body"))
        .expect("request");
    let err = client
        .request::<ConfigMap>(req)
        .await
        .expect_err("no manager");
    assert_eq!(status(err).code, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn apply_on_status_subresource_keeps_spec() {
    let (sim, client) = sim().await;
    let api: Api<Service> = Api::namespaced(client, "default");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
    api.patch("lb", &PatchParams::apply("user"), &Patch::Apply(&svc))
        .await
        .expect("apply");
    let status_cfg = json!({"apiVersion": "v1", "kind": "Service", "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}});
    let out = api
        .patch_status(
            "lb",
            &PatchParams::apply("controller"),
            &Patch::Apply(&status_cfg),
        )
        .await
        .expect("status apply");
    assert_eq!(
        out.spec.as_ref().and_then(|s| s.type_.as_deref()),
        Some("LoadBalancer")
    );
    let ip = out
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .expect("ingress")[0]
        .ip
        .clone();
    assert_eq!(ip.as_deref(), Some("192.0.2.1"));
    // Re-applying the user's spec does not wipe the controller's status.
    let again = api
        .patch("lb", &PatchParams::apply("user"), &Patch::Apply(&svc))
        .await
        .expect("re-apply");
    assert!(
        again
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .is_some()
    );
    sim.shutdown().await;
}
