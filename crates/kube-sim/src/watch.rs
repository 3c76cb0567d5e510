//! Watches: newline-delimited JSON events streamed over chunked HTTP, resumed
//! from the bounded history by resourceVersion (410 when too old), with
//! synthetic ADDED events for a fresh watch, BOOKMARKs (periodic and the
//! `initial-events-end` one of watch-list), selectors that turn objects
//! leaving the selection into DELETED, and a bounded queue per watcher.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    api::{Ctx, read},
    error::ApiError,
    server::Shared,
    store::{Event, EventType, WatchMsg},
};

/// What a watch request asked for.
#[derive(Debug, Clone)]
struct Params {
    resource_version: Option<u64>,
    bookmarks: bool,
    initial_events: bool,
    timeout: Duration,
}

fn params(ctx: &Ctx) -> Result<Params, ApiError> {
    let rv = ctx
        .query
        .get("resourceVersion")
        .filter(|r| !r.is_empty() && *r != "0");
    let resource_version = match rv {
        None => None,
        Some(r) => Some(r.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: \"{r}\": must be a non-negative integer"
            ))
        })?),
    };
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    Ok(Params {
        resource_version,
        bookmarks: ctx.query.flag("allowWatchBookmarks"),
        initial_events: ctx.query.flag("sendInitialEvents"),
        timeout,
    })
}

/// One watch event line, `{"type":..,"object":..}\n`, written around an
/// already serialized object.
fn line_raw(kind: &str, object: &[u8]) -> Bytes {
    let mut s = Vec::with_capacity(object.len() + kind.len() + 24);
    s.extend_from_slice(b"{\"type\":\"");
    s.extend_from_slice(kind.as_bytes());
    s.extend_from_slice(b"\",\"object\":");
    s.extend_from_slice(object);
    s.extend_from_slice(b"}\n");
    Bytes::from(s)
}

fn line(kind: &str, object: &Value) -> Bytes {
    line_raw(kind, &serde_json::to_vec(object).unwrap_or_default())
}

/// Whether objects are served exactly as stored (no per-version conversion),
/// so a watcher can send an event's shared serialization.
fn served_as_stored(ctx: &Ctx) -> bool {
    ctx.rt.custom.is_none() && !crate::events::is_events_v1(&ctx.rt)
}

fn bookmark(ctx: &Ctx, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": ctx.rt.kind, "apiVersion": ctx.rt.api_version(), "metadata": meta}),
    )
}

/// Starts a watch; returns the receiving end of its byte stream.
pub fn start(shared: &Arc<Shared>, ctx: Ctx) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let p = params(&ctx)?;
    let sel = read::selectors(&ctx)?;
    let key = ctx.rt.storage_key();
    let ns_filter = if ctx.rt.namespaced {
        ctx.namespace.clone()
    } else {
        None
    };
    let in_ns = |o: &Value| {
        ns_filter
            .as_deref()
            .is_none_or(|ns| crate::object::namespace(o) == ns)
    };

    let mut initial: Vec<Bytes> = Vec::new();
    let (id, rx, start_rv) = {
        let mut st = shared.state.lock();
        match p.resource_version.filter(|_| !p.initial_events) {
            None => {
                let as_stored = served_as_stored(&ctx);
                for (_, o) in st.iter(&key, ns_filter.as_deref()) {
                    if sel.matches(o) {
                        initial.push(if as_stored {
                            line("ADDED", o)
                        } else {
                            line("ADDED", &read::with_version(o, &ctx))
                        });
                    }
                }
            }
            Some(rv) => match st.events_since(&key, rv) {
                Ok(events) => {
                    for e in events {
                        if let Some(b) = render(&ctx, &sel, &in_ns, &e) {
                            initial.push(b);
                        }
                    }
                }
                Err(floor) => {
                    let status =
                        ApiError::gone(format!("too old resource version: {rv} ({floor})"))
                            .to_status();
                    let (tx, out) = mpsc::channel(1);
                    let _ = tx.try_send(line("ERROR", &status));
                    return Ok(out);
                }
            },
        }
        let rv = st.rv;
        let (id, rx) = st.subscribe(&key);
        (id, rx, rv)
    };
    let (tx, out) = mpsc::channel::<Bytes>(64);
    let shared = shared.clone();
    tokio::spawn(async move {
        run(
            shared.clone(),
            ctx,
            p,
            sel,
            ns_filter,
            rx,
            tx,
            initial,
            start_rv,
        )
        .await;
        shared.state.lock().unsubscribe(&key, id);
    });
    Ok(out)
}

fn render(
    ctx: &Ctx,
    sel: &crate::selectors::Selectors,
    in_ns: &dyn Fn(&Value) -> bool,
    e: &Event,
) -> Option<Bytes> {
    if !in_ns(&e.object) {
        return None;
    }
    let now = sel.matches(&e.object);
    let before = e.old.as_deref().is_some_and(|o| sel.matches(o));
    let kind = match e.kind {
        EventType::Added if now => "ADDED",
        EventType::Modified if now && before => "MODIFIED",
        EventType::Modified if now => "ADDED",
        EventType::Modified if before => {
            // Leaving the selection: the previous content at the new resourceVersion.
            let mut old = read::with_version(e.old.as_deref()?, ctx);
            old["metadata"]["resourceVersion"] = json!(e.rv.to_string());
            return Some(line("DELETED", &old));
        }
        EventType::Deleted if before || now => "DELETED",
        _ => return None,
    };
    if served_as_stored(ctx) {
        // Every watcher of this resource sends the same bytes.
        return Some(line_raw(kind, e.object_json()));
    }
    Some(line(kind, &read::with_version(&e.object, ctx)))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: Arc<Shared>,
    ctx: Ctx,
    p: Params,
    sel: crate::selectors::Selectors,
    ns_filter: Option<String>,
    mut rx: mpsc::Receiver<WatchMsg>,
    tx: mpsc::Sender<Bytes>,
    initial: Vec<Bytes>,
    start_rv: u64,
) {
    let in_ns = |o: &Value| {
        ns_filter
            .as_deref()
            .is_none_or(|ns| crate::object::namespace(o) == ns)
    };
    for b in initial {
        if tx.send(b).await.is_err() {
            return;
        }
    }
    if p.initial_events && p.bookmarks && tx.send(bookmark(&ctx, start_rv, true)).await.is_err() {
        return;
    }
    let deadline = tokio::time::sleep(p.timeout);
    tokio::pin!(deadline);
    let interval = *shared.bookmark_interval.lock();
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.tick().await;
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(WatchMsg::Event(e)) => {
                    if let Some(b) = render(&ctx, &sel, &in_ns, &e)
                        && tx.send(b).await.is_err()
                    {
                        return;
                    }
                }
                Some(WatchMsg::Close) | None => return,
            },
            _ = ticker.tick(), if p.bookmarks => {
                // Only claim the global resourceVersion when every event up to it
                // has been delivered to this watcher (its queue is empty).
                let rv = {
                    let st = shared.state.lock();
                    if rx.is_empty() { Some(st.rv) } else { None }
                };
                if let Some(rv) = rv
                    && tx.send(bookmark(&ctx, rv, false)).await.is_err()
                {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
        }
    }
}
