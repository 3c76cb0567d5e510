//! Events: core `v1` and `events.k8s.io/v1` are two views of one stored
//! object. Writes through either API are read back through the other, the
//! kube-rs `Recorder` (which creates and then merge-patches series through
//! `events.k8s.io`) shows up in the core list `kubectl describe` reads, and
//! the Event field selectors select on the stored fields.

mod common;

use common::{eventually, sim, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::{
    api::{
        core::v1::{Event as CoreEvent, EventSource, ObjectReference, Service},
        events::v1::Event as NewEvent,
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use serde_json::json;

fn regarding(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

fn new_event(name: &str, about: &str) -> NewEvent {
    NewEvent {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        regarding: Some(regarding(about)),
        note: Some(format!("note about {about}")),
        reason: Some("Provisioned".into()),
        type_: Some("Normal".into()),
        action: Some("Provision".into()),
        reporting_controller: Some("gantry.io/controller".into()),
        reporting_instance: Some("gantry-0".into()),
        deprecated_count: Some(4),
        ..Default::default()
    }
}

fn field(sel: &str) -> ListParams {
    ListParams::default().fields(sel)
}

#[tokio::test]
async fn events_v1_writes_read_back_as_core_events() {
    let (_sim, client) = sim().await;
    let new: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let created = new
        .create(&PostParams::default(), &new_event("e1", "web"))
        .await
        .expect("create");
    assert_eq!(created.note.as_deref(), Some("note about web"));
    assert_eq!(
        created.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );

    let ev = core.get("e1").await.expect("core get");
    assert_eq!(ev.involved_object.name.as_deref(), Some("web"));
    assert_eq!(ev.involved_object.kind.as_deref(), Some("Service"));
    assert_eq!(ev.message.as_deref(), Some("note about web"));
    assert_eq!(
        ev.reporting_component.as_deref(),
        Some("gantry.io/controller")
    );
    assert_eq!(ev.reporting_instance.as_deref(), Some("gantry-0"));
    assert_eq!(ev.count, Some(4));
    assert_eq!(ev.reason.as_deref(), Some("Provisioned"));
    assert_eq!(ev.action.as_deref(), Some("Provision"));
    assert!(ev.event_time.is_some());
    assert_eq!(ev.resource_version(), created.resource_version());
    let raw = serde_json::to_value(&ev).expect("json");
    assert!(
        raw.get("note").is_none() && raw.get("regarding").is_none(),
        "{raw}"
    );

    // The selector `kubectl describe` sends, plus the other Event fields.
    let describe = "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Service,involvedObject.uid=uid-web";
    let hits = core.list(&field(describe)).await.expect("list");
    assert_eq!(hits.items.len(), 1);
    for (sel, want) in [
        ("involvedObject.name=other", 0),
        ("reason=Provisioned", 1),
        ("reason!=Provisioned", 0),
        ("type=Normal", 1),
        ("type=Warning", 0),
        ("reportingComponent=gantry.io/controller", 1),
        // `source` falls back to the reporting controller when unset.
        ("source=gantry.io/controller", 1),
        ("involvedObject.apiVersion=v1", 1),
        ("involvedObject.fieldPath=", 1),
    ] {
        assert_eq!(
            core.list(&field(sel)).await.expect(sel).items.len(),
            want,
            "{sel}"
        );
        // The same labels select through the events.k8s.io API.
        assert_eq!(
            new.list(&field(sel)).await.expect(sel).items.len(),
            want,
            "{sel}"
        );
    }
}

#[tokio::test]
async fn core_writes_read_back_as_events_v1() {
    let (_sim, client) = sim().await;
    let new: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let ev = CoreEvent {
        metadata: ObjectMeta {
            name: Some("c1".into()),
            ..Default::default()
        },
        involved_object: regarding("db"),
        message: Some("pulled".into()),
        reason: Some("Pulled".into()),
        type_: Some("Warning".into()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some("node-1".into()),
        }),
        first_timestamp: Some(Time(Timestamp::now())),
        last_timestamp: Some(Time(Timestamp::now())),
        count: Some(7),
        ..Default::default()
    };
    core.create(&PostParams::default(), &ev)
        .await
        .expect("create");

    let got = new.get("c1").await.expect("events.k8s.io get");
    assert_eq!(got.note.as_deref(), Some("pulled"));
    assert_eq!(
        got.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("db")
    );
    assert_eq!(got.deprecated_count, Some(7));
    assert!(got.deprecated_first_timestamp.is_some() && got.deprecated_last_timestamp.is_some());
    let src = got.deprecated_source.clone().expect("deprecatedSource");
    assert_eq!(src.component.as_deref(), Some("kubelet"));
    assert_eq!(src.host.as_deref(), Some("node-1"));
    let listed = new.list(&ListParams::default()).await.expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].note.as_deref(), Some("pulled"));
    assert_eq!(
        core.list(&field("source=kubelet"))
            .await
            .expect("list")
            .items
            .len(),
        1
    );

    // An update through events.k8s.io lands on the same object.
    let mut changed = got.clone();
    changed.note = Some("pulled again".into());
    new.replace("c1", &PostParams::default(), &changed)
        .await
        .expect("replace");
    let ev = core.get("c1").await.expect("get");
    assert_eq!(ev.message.as_deref(), Some("pulled again"));
    assert_eq!(ev.source.and_then(|s| s.host).as_deref(), Some("node-1"));

    // Deleting through one API removes it from both.
    new.delete("c1", &Default::default()).await.expect("delete");
    assert_eq!(status(core.get("c1").await.expect_err("gone")).code, 404);
}

#[tokio::test]
async fn recorder_series_patches_show_up_in_core_views_and_watches() {
    let (_sim, client) = sim().await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))
    .expect("service");
    let svc = svcs
        .create(&PostParams::default(), &svc)
        .await
        .expect("svc");
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let mut watch = core
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "gantry".into(),
            instance: Some("gantry-0".into()),
        },
    );
    let ev = Event {
        type_: EventType::Warning,
        reason: "InvalidAnnotation".into(),
        note: Some("bad scheme".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = svc.object_ref(&());
    recorder.publish(&ev, &reference).await.expect("publish");
    recorder
        .publish(&ev, &reference)
        .await
        .expect("publish again");

    let sel = format!(
        "involvedObject.name=lb,involvedObject.namespace=default,involvedObject.kind=Service,involvedObject.uid={}",
        svc.uid().expect("uid")
    );
    let list = core.list(&field(&sel)).await.expect("list");
    assert_eq!(list.items.len(), 1, "one Event, its series counted");
    let e = &list.items[0];
    assert_eq!(e.message.as_deref(), Some("bad scheme"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(e.reporting_component.as_deref(), Some("gantry"));
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));

    // The core watch saw the create and the series patch, in core form.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), watch.try_next())
            .await
            .expect("watch event in time")
            .expect("watch ok")
            .expect("stream open");
        match next {
            WatchEvent::Added(e) | WatchEvent::Modified(e) => seen.push(e),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen[0].message.as_deref(), Some("bad scheme"));
    assert_eq!(seen[1].series.as_ref().and_then(|s| s.count), Some(2));

    // A merge patch through the core API is visible through events.k8s.io.
    let new: Api<NewEvent> = Api::namespaced(client, "default");
    core.patch(
        &e.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"message": "fixed"})),
    )
    .await
    .expect("patch");
    eventually("note follows message", || async {
        new.get(&e.name_any())
            .await
            .is_ok_and(|n| n.note.as_deref() == Some("fixed"))
    })
    .await;
}

#[tokio::test]
async fn unsupported_event_field_is_rejected() {
    let (_sim, client) = sim().await;
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let err = status(core.list(&field("message=x")).await.expect_err("400"));
    assert_eq!(err.code, 400);
    assert_eq!(err.message, "field label not supported: message");
}
