//! Metadata rules of the real server: finalizers on objects being deleted,
//! deletion fields a client cannot move, generated names, and the JSON
//! patch `test` semantics kube-rs's finalizer helper depends on.

mod common;

use std::collections::BTreeSet;

use common::{cm, sim, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn deleting_objects_accept_no_new_finalizers() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut obj = cm("f", &[]);
    obj.metadata.finalizers = Some(vec!["a.example/one".into(), "a.example/two".into()]);
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    api.delete("f", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = api.get("f").await.expect("still there");
    let ts = deleting
        .metadata
        .deletion_timestamp
        .clone()
        .expect("deleting");

    let add = json!({"metadata": {"finalizers": ["a.example/one", "a.example/two", "b.example/x", "a.example/z"]}});
    let s = status(
        api.patch("f", &PatchParams::default(), &Patch::Merge(add))
            .await
            .expect_err("new finalizer"),
    );
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        "ConfigMap \"f\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"a.example/z\", \"b.example/x\"}"
    );
    assert_eq!(
        s.details.expect("details").causes[0].field,
        "metadata.finalizers"
    );

    // An update that moves the deletion fields has them ignored.
    let moved = json!({"metadata": {"deletionTimestamp": "2001-01-01T00:00:00Z", "deletionGracePeriodSeconds": 99, "labels": {"l": "v"}}});
    let kept = api
        .patch("f", &PatchParams::default(), &Patch::Merge(moved))
        .await
        .expect("update of a deleting object");
    assert_eq!(kept.metadata.deletion_timestamp, Some(ts));
    assert_eq!(
        kept.metadata.deletion_grace_period_seconds,
        deleting.metadata.deletion_grace_period_seconds
    );
    assert_eq!(
        kept.metadata
            .labels
            .and_then(|l| l.get("l").cloned())
            .as_deref(),
        Some("v")
    );

    // Removing finalizers works; removing the last one deletes the object.
    let fewer = json!({"metadata": {"finalizers": ["a.example/two"]}});
    api.patch("f", &PatchParams::default(), &Patch::Merge(fewer))
        .await
        .expect("remove one");
    let none = json!({"metadata": {"finalizers": null}});
    api.patch("f", &PatchParams::default(), &Patch::Merge(none))
        .await
        .expect("remove the last");
    assert_eq!(status(api.get("f").await.expect_err("gone")).code, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn deletion_timestamp_cannot_be_set_by_an_update() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("d", &[]))
        .await
        .expect("create");
    let patch = json!({"metadata": {"deletionTimestamp": "2001-01-01T00:00:00Z"}});
    let after = api
        .patch("d", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("update");
    assert!(after.metadata.deletion_timestamp.is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_names_use_the_real_alphabet() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let alphabet: BTreeSet<char> = "bcdfghjklmnpqrstvwxz2456789".chars().collect();
    let mut names = BTreeSet::new();
    for _ in 0..20 {
        let mut obj = cm("", &[]);
        obj.metadata.name = None;
        obj.metadata.generate_name = Some("gen-".into());
        let created = api
            .create(&PostParams::default(), &obj)
            .await
            .expect("create");
        let name = created.metadata.name.expect("name");
        let suffix = name.strip_prefix("gen-").expect("prefix kept");
        assert_eq!(suffix.len(), 5, "{name}");
        assert!(suffix.chars().all(|c| alphabet.contains(&c)), "{name}");
        names.insert(name);
    }
    assert_eq!(names.len(), 20, "suffixes differ");

    // Long prefixes are cut so the name stays within 63 characters.
    let mut long = cm("", &[]);
    long.metadata.name = None;
    long.metadata.generate_name = Some(format!("{}-", "x".repeat(70)));
    let created = api
        .create(&PostParams::default(), &long)
        .await
        .expect("create");
    let name = created.metadata.name.expect("name");
    assert_eq!(name.len(), 63);
    assert!(name.starts_with(&"x".repeat(58)));
    sim.shutdown().await;
}

#[tokio::test]
async fn json_patch_test_of_a_missing_path_against_null() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("j", &[]))
        .await
        .expect("create");
    // What kube-rs's finalizer helper sends for an object without finalizers.
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["j.example/cleanup"]}
    ]))
    .expect("ops");
    let patched = api
        .patch("j", &PatchParams::default(), &Patch::<()>::Json(add))
        .await
        .expect("test against null holds for a missing key");
    assert_eq!(
        patched.metadata.finalizers,
        Some(vec!["j.example/cleanup".to_string()])
    );

    // The same test now fails: the key exists.
    let again: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null}
    ]))
    .expect("ops");
    let s = status(
        api.patch("j", &PatchParams::default(), &Patch::<()>::Json(again))
            .await
            .expect_err("key exists"),
    );
    assert_eq!(s.code, 422);
    assert_eq!(s.reason, "Invalid");
    assert_eq!(
        s.message,
        "the server rejected our request due to an error in our request"
    );

    // A missing parent fails too.
    let parent: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/missing", "value": null}
    ]))
    .expect("ops");
    let s = status(
        api.patch("j", &PatchParams::default(), &Patch::<()>::Json(parent))
            .await
            .expect_err("parent missing"),
    );
    assert_eq!(s.code, 422);
    sim.shutdown().await;
}
