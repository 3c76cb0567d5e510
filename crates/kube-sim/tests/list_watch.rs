//! Lists and watches: selectors, paging, resume by resourceVersion, 410 on
//! compacted history, bookmarks, selector exits, and kube-rs `watcher()`
//! recovering from dropped watches and expired history without missing an
//! event.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{cm, eventually, sim, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams},
    runtime::{WatchStreamExt, reflector, watcher},
};
use serde_json::json;

async fn names(api: &Api<ConfigMap>, lp: &ListParams) -> Vec<String> {
    api.list(lp)
        .await
        .expect("list")
        .items
        .iter()
        .map(|c| c.name_any())
        .collect()
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    for (name, labels) in [
        ("a", vec![("env", "prod"), ("tier", "web")]),
        ("b", vec![("env", "dev")]),
        ("c", vec![("env", "test"), ("tier", "db")]),
        ("d", vec![]),
    ] {
        api.create(&PostParams::default(), &cm(name, &labels))
            .await
            .expect("create");
    }
    let cases: &[(&str, &[&str])] = &[
        ("env=prod", &["a"]),
        ("env==prod", &["a"]),
        ("env!=prod", &["b", "c", "d"]),
        ("env in (prod, dev)", &["a", "b"]),
        ("env notin (prod,dev)", &["c", "d"]),
        ("tier", &["a", "c"]),
        ("!tier", &["b", "d"]),
        ("env,tier=db", &["c"]),
    ];
    for (sel, want) in cases {
        assert_eq!(
            names(&api, &ListParams::default().labels(sel)).await,
            *want,
            "{sel}"
        );
    }
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name=b")).await,
        vec!["b"]
    );
    assert_eq!(
        names(
            &api,
            &ListParams::default().fields("metadata.name!=b,metadata.namespace=default")
        )
        .await,
        vec!["a", "c", "d"]
    );
    let err = api
        .list(&ListParams::default().fields("data.k=v"))
        .await
        .expect_err("unsupported field");
    let s = status(err);
    assert_eq!(s.code, 400);
    assert!(
        s.message.contains("field label not supported"),
        "{}",
        s.message
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn limit_and_continue() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), &[]))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("continue");
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    let third = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().expect("continue")),
        )
        .await
        .expect("page 3");
    assert!(
        third
            .metadata
            .continue_
            .as_deref()
            .is_none_or(str::is_empty)
    );
    let all: Vec<String> = [first.items, second.items, third.items]
        .concat()
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(all, vec!["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    sim.faults().expire_watch_history();
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect_err("expired");
    let s = status(err);
    assert_eq!(s.code, 410);
    assert_eq!(s.reason, "Expired");
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_from_resource_version_and_gone() {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("before", &[]))
        .await
        .expect("create");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    api.create(&PostParams::default(), &cm("one", &[]))
        .await
        .expect("create");
    api.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .expect("patch");
    api.create(&PostParams::default(), &cm("two", &[]))
        .await
        .expect("create");

    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        match stream.try_next().await.expect("event").expect("some") {
            WatchEvent::Added(c) => seen.push(format!("ADDED {}", c.name_any())),
            WatchEvent::Modified(c) => seen.push(format!("MODIFIED {}", c.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED one", "MODIFIED one", "ADDED two"]);

    sim.faults().expire_watch_history();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("event").expect("some") {
        WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_selector_exit() {
    let (sim, client) = sim().await;
    sim.set_bookmark_interval(Duration::from_millis(100));
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &cm("m", &[("app", "x")]))
        .await
        .expect("create");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let wp = WatchParams::default().labels("app=x");
    let mut stream = api.watch(&wp, &rv).await.expect("watch").boxed();

    api.patch(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .expect("relabel");
    let mut saw_delete = false;
    let mut bookmark_rv = None;
    while !(saw_delete && bookmark_rv.is_some()) {
        let ev = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("in time")
            .expect("event")
            .expect("some");
        match ev {
            WatchEvent::Deleted(c) => {
                // The object left the selection: DELETED with its last matching content.
                assert_eq!(c.labels()["app"], "x");
                saw_delete = true;
            }
            WatchEvent::Bookmark(b) => bookmark_rv = Some(b.metadata.resource_version),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        bookmark_rv
            .expect("bookmark")
            .parse::<u64>()
            .expect("numeric")
            >= rv.parse::<u64>().expect("numeric")
    );
    sim.shutdown().await;
}

async fn server_state(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| (c.name_any(), c.resource_version().unwrap_or_default()))
        .collect()
}

async fn reflector_recovers(streaming: bool) {
    let (sim, client) = sim().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let config = if streaming {
        watcher::Config::default().streaming_lists()
    } else {
        watcher::Config::default()
    };
    let stream = reflector::reflector(writer, watcher(api.clone(), config).default_backoff())
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader.wait_until_ready().await.expect("ready");

    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("early-{i}"), &[]))
            .await
            .expect("create");
    }
    sim.faults().close_watches();
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("during-{i}"), &[]))
            .await
            .expect("create");
    }
    api.delete("early-0", &Default::default())
        .await
        .expect("delete");
    sim.faults().expire_watch_history();
    sim.faults().close_watches();
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("late-{i}"), &[]))
            .await
            .expect("create");
    }
    api.patch(
        "early-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .expect("patch");

    let want = server_state(&api).await;
    eventually("reflector matches the server", || {
        let reader = reader.clone();
        let want = want.clone();
        async move {
            let got: BTreeMap<String, String> = reader
                .state()
                .iter()
                .map(|c| (c.name_any(), c.resource_version().unwrap_or_default()))
                .collect();
            got == want
        }
    })
    .await;
    task.abort();
    sim.shutdown().await;
}

#[tokio::test]
async fn watcher_recovers_from_closed_watches_and_410() {
    reflector_recovers(false).await;
}

#[tokio::test]
async fn streaming_list_watcher_recovers() {
    reflector_recovers(true).await;
}
