//! Request routing: maps `/compute/v1/projects/{project}/...` paths and
//! methods onto resource, operation and geography handlers, applies
//! injected faults, and serves the `/_sim/` control endpoints.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Value, json};

use crate::{
    aggregated,
    catalog::{self, ScopeKind},
    error::ApiError,
    faults::Fault,
    geography,
    list::{self, ListQuery},
    operations::{self, OperationFailure},
    resources::{self, Mutation, Target},
    server::Shared,
    verbs::{self, VerbOutcome},
};

/// Largest request body accepted (the real API's limit is far above what
/// load-balancer resources need).
const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long `operations.wait` blocks at most, as the real API does.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

type Reply = Response<Full<Bytes>>;

fn json_reply(status: u16, body: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    reply
}

fn error_reply(error: &ApiError) -> Reply {
    json_reply(error.code, &error.body())
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<hyper::body::Incoming>,
) -> Result<Reply, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        // HTTP/2 carries the authority in the URI instead of a Host header.
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| shared.address.clone());
    let base = format!("http://{host}/compute/v1/");
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(error_reply(&ApiError::parse(
                "The request body is too large.",
            )));
        }
    };
    if let Some(rest) = path.strip_prefix("/_sim/") {
        return Ok(control(&shared, &method, rest, &body));
    }
    shared.record_call(&method, &path);
    let mut operation_error = None;
    if let Some(effect) = shared.faults.take(method.as_str(), &path) {
        if !effect.latency.is_zero() {
            tokio::time::sleep(effect.latency).await;
        }
        if let Some(error) = effect.error {
            return Ok(error_reply(&error));
        }
        operation_error = effect.operation_error;
    }
    let body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(e) => return Ok(error_reply(&ApiError::parse(&e.to_string()))),
        }
    };
    let call = Call {
        method: &method,
        path: &path,
        query: query.as_deref(),
        base: &base,
        body,
        operation_error,
    };
    Ok(match route(&shared, call).await {
        Ok(reply) => reply,
        Err(error) => error_reply(&error),
    })
}

struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    query: Option<&'a str>,
    base: &'a str,
    body: Value,
    operation_error: Option<String>,
}

fn not_found_path(path: &str) -> ApiError {
    ApiError::not_found(path.trim_start_matches("/compute/v1/"))
}

async fn route(shared: &Shared, call: Call<'_>) -> Result<Reply, ApiError> {
    let rest = call
        .path
        .strip_prefix("/compute/v1/projects/")
        .ok_or_else(|| not_found_path(call.path))?;
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let (project, segs) = segs
        .split_first()
        .ok_or_else(|| not_found_path(call.path))?;
    let get = call.method == Method::GET;
    let (scope, tail): (String, Vec<&str>) = match segs {
        ["zones"] if get => {
            let items = geography::zones(project, call.base);
            let id = format!("projects/{project}/zones");
            return listing(items, &call, "compute#zoneList", &id);
        }
        ["regions"] if get => {
            let items = geography::regions(project, call.base);
            let id = format!("projects/{project}/regions");
            return listing(items, &call, "compute#regionList", &id);
        }
        [kind @ ("zones" | "regions"), name] if get => {
            let all = if *kind == "zones" {
                geography::zones(project, call.base)
            } else {
                geography::regions(project, call.base)
            };
            return all
                .into_iter()
                .find(|v| v["name"] == **name)
                .map(|v| json_reply(200, &v))
                .ok_or_else(|| ApiError::not_found(&format!("projects/{project}/{kind}/{name}")));
        }
        ["aggregated", collection] if get => {
            let state = shared.state.lock();
            let out = aggregated::list(&state, project, collection, call.query, call.base)?;
            return Ok(json_reply(200, &out));
        }
        ["global", tail @ ..] => (format!("projects/{project}/global"), tail.to_vec()),
        [kind @ ("zones" | "regions"), place, tail @ ..] => {
            (format!("projects/{project}/{kind}/{place}"), tail.to_vec())
        }
        // setUrlMap and setSslCertificates on global proxies live outside `global/`.
        [
            coll @ ("targetHttpProxies" | "targetHttpsProxies"),
            name,
            verb,
        ] => (
            format!("projects/{project}/global"),
            vec![*coll, *name, *verb],
        ),
        _ => return Err(not_found_path(call.path)),
    };
    if !resources::scope_exists(&scope) {
        return Err(ApiError::not_found(&scope));
    }
    let (coll_name, tail) = tail
        .split_first()
        .ok_or_else(|| not_found_path(call.path))?;
    if *coll_name == "operations" {
        return operation_call(shared, &scope, tail, &call).await;
    }
    let collection = catalog::collection(coll_name).ok_or_else(|| not_found_path(call.path))?;
    let kind = match scope.split('/').nth(2) {
        Some("zones") => ScopeKind::Zone,
        Some("regions") => ScopeKind::Region,
        _ => ScopeKind::Global,
    };
    if !collection.scopes.contains(&kind) {
        return Err(not_found_path(call.path));
    }
    let t = Target {
        project,
        scope,
        collection,
    };
    resource_call(shared, &t, tail, call)
}

/// A list response: `{"kind", "id", "items", "selfLink", "nextPageToken"}`.
fn listing(items: Vec<Value>, call: &Call<'_>, kind: &str, id: &str) -> Result<Reply, ApiError> {
    let page = list::page(items, &ListQuery::parse(call.query))?;
    let mut out = json!({
        "kind": kind,
        "id": id,
        "selfLink": format!("{}{id}", call.base),
    });
    // The real API leaves `items` out of an empty page.
    if !page.items.is_empty() {
        out["items"] = Value::Array(page.items);
    }
    if let Some(next) = page.next {
        out["nextPageToken"] = json!(next);
    }
    Ok(json_reply(200, &out))
}

fn resource_call(
    shared: &Shared,
    t: &Target<'_>,
    tail: &[&str],
    call: Call<'_>,
) -> Result<Reply, ApiError> {
    let method = call.method.clone();
    let mutating =
        method != Method::GET && !(method == Method::POST && tail.get(1) == Some(&"listInstances"));
    if mutating && let Some(code) = call.operation_error.clone() {
        return Ok(failed_operation(shared, t, tail, &call, code));
    }
    let request_id = if mutating {
        request_id(call.query)?
    } else {
        None
    };
    let mut state = shared.state.lock();
    let delay = state.operation_delay;
    // A repeated requestId answers the first call's Operation and changes
    // nothing, as the real API does for retried mutations.
    if let Some(earlier) = request_id
        .as_ref()
        .and_then(|id| state.request_ids.get(id))
        .and_then(|op| state.operations.get(op))
    {
        return Ok(json_reply(200, &earlier.render(delay, call.base)));
    }
    if mutating && let Some(name) = tail.first() {
        state.check_ready(&t.rel(name))?;
    }
    let mutation: Mutation = match (&method, tail) {
        (&Method::GET, []) => {
            let items = resources::list(&state, t, call.base);
            drop(state);
            let id = format!("{}/{}", t.scope, t.collection.name);
            let kind = format!("{}List", t.collection.kind);
            return listing(items, &call, &kind, &id);
        }
        (&Method::POST, []) => resources::insert(&mut state, t, call.body)?,
        (&Method::GET, [name]) => {
            let resource = resources::get(&state, t, name)?;
            let out = resources::render(&state, &t.rel(name), resource, call.base);
            return Ok(json_reply(200, &out));
        }
        (&Method::DELETE, [name]) => resources::delete(&mut state, t, name)?,
        (&Method::PATCH, [name]) => resources::modify(&mut state, t, name, call.body, false)?,
        (&Method::PUT, [name]) => resources::modify(&mut state, t, name, call.body, true)?,
        (&Method::POST, [name, verb]) => {
            match verbs::call(&mut state, t, name, verb, call.body, call.base)? {
                VerbOutcome::Mutation(m) => m,
                VerbOutcome::Json(v) => return Ok(json_reply(200, &v)),
            }
        }
        _ => return Err(not_found_path(call.path)),
    };
    let op = operations::record(
        &mut state,
        &t.scope,
        mutation.operation_type,
        &mutation.target,
        mutation.target_id,
        None,
    );
    if let Some(id) = request_id {
        state.request_ids.insert(id, op.clone());
    }
    if mutation.operation_type == "delete" {
        state.busy.remove(&mutation.target);
    } else {
        state.mark_busy(&mutation.target);
    }
    let rendered = state
        .operations
        .get(&op)
        .map(|o| o.render(delay, call.base))
        .unwrap_or(Value::Null);
    Ok(json_reply(200, &rendered))
}

/// The `requestId` query parameter: a UUID other than the zero UUID.
fn request_id(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(id) = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "requestId")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(None);
    };
    let groups: Vec<&str> = id.split('-').collect();
    let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()));
    if !shaped || id.chars().all(|c| c == '0' || c == '-') {
        return Err(ApiError::invalid_field(
            "requestId",
            &id,
            "The request ID must be a valid UUID with the exception that zero UUID is not supported.",
        ));
    }
    Ok(Some(id.to_ascii_lowercase()))
}

/// An injected operation failure: the call is accepted, nothing changes,
/// and the Operation ends DONE with the error.
fn failed_operation(
    shared: &Shared,
    t: &Target<'_>,
    tail: &[&str],
    call: &Call<'_>,
    code: String,
) -> Reply {
    let name = tail
        .first()
        .map(|s| (*s).to_owned())
        .or_else(|| {
            call.body
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let operation_type = match (call.method, tail.get(1)) {
        (&Method::POST, None) => "insert",
        (&Method::DELETE, _) => "delete",
        (&Method::PATCH, _) => "patch",
        (&Method::PUT, _) => "update",
        _ => "update",
    };
    let rel = t.rel(&name);
    let mut state = shared.state.lock();
    let delay = state.operation_delay;
    let failure = OperationFailure {
        message: format!("Injected operation failure {code} for '{rel}'"),
        code,
        http_status: 400,
    };
    let target_id = state.resources.get(&rel).map(resources::id_of).unwrap_or(0);
    let op = operations::record(
        &mut state,
        &t.scope,
        operation_type,
        &rel,
        target_id,
        Some(failure),
    );
    let rendered = state
        .operations
        .get(&op)
        .map(|o| o.render(delay, call.base))
        .unwrap_or(Value::Null);
    json_reply(200, &rendered)
}

async fn operation_call(
    shared: &Shared,
    scope: &str,
    tail: &[&str],
    call: &Call<'_>,
) -> Result<Reply, ApiError> {
    let rel_of = |name: &str| format!("{scope}/operations/{name}");
    match (call.method, tail) {
        (&Method::GET, []) => {
            let state = shared.state.lock();
            let prefix = format!("{scope}/operations/");
            let mut items: Vec<Value> = state
                .operations
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, o)| o.render(state.operation_delay, call.base))
                .collect();
            drop(state);
            items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            listing(
                items,
                call,
                "compute#operationList",
                &format!("{scope}/operations"),
            )
        }
        (&Method::GET, [name]) => {
            let state = shared.state.lock();
            let rel = rel_of(name);
            let op = state
                .operations
                .get(&rel)
                .ok_or_else(|| ApiError::not_found(&rel))?;
            Ok(json_reply(
                200,
                &op.render(state.operation_delay, call.base),
            ))
        }
        (&Method::DELETE, [name]) => {
            let rel = rel_of(name);
            let removed = shared.state.lock().operations.remove(&rel);
            removed.ok_or_else(|| ApiError::not_found(&rel))?;
            let mut reply = Response::new(Full::new(Bytes::new()));
            *reply.status_mut() = StatusCode::NO_CONTENT;
            Ok(reply)
        }
        (&Method::POST, [name, "wait"]) => {
            let rel = rel_of(name);
            let remaining = {
                let state = shared.state.lock();
                let op = state
                    .operations
                    .get(&rel)
                    .ok_or_else(|| ApiError::not_found(&rel))?;
                op.remaining(state.operation_delay)
            };
            tokio::time::sleep(remaining.min(WAIT_LIMIT)).await;
            let state = shared.state.lock();
            let op = state
                .operations
                .get(&rel)
                .ok_or_else(|| ApiError::not_found(&rel))?;
            Ok(json_reply(
                200,
                &op.render(state.operation_delay, call.base),
            ))
        }
        _ => Err(not_found_path(call.path)),
    }
}

/// The `/_sim/` control endpoints: `faults` (GET, POST one rule or a
/// list, DELETE), `resources` (GET everything stored) and `calls` (GET the
/// request log, DELETE to start counting afresh).
fn control(shared: &Shared, method: &Method, rest: &str, body: &[u8]) -> Reply {
    match (method, rest.trim_end_matches('/')) {
        (&Method::GET, "faults") => json_reply(200, &json!(shared.faults.pending())),
        (&Method::POST, "faults") => {
            let rules = serde_json::from_slice::<Vec<Fault>>(body)
                .or_else(|_| serde_json::from_slice::<Fault>(body).map(|f| vec![f]));
            match rules {
                Ok(rules) => {
                    rules.into_iter().for_each(|f| shared.faults.push(f));
                    json_reply(200, &json!(shared.faults.pending()))
                }
                Err(e) => error_reply(&ApiError::parse(&e.to_string())),
            }
        }
        (&Method::DELETE, "faults") => {
            shared.faults.clear();
            json_reply(200, &json!([]))
        }
        (&Method::GET, "resources") => json_reply(200, &json!(shared.snapshot())),
        (&Method::GET, "calls") => json_reply(200, &json!(shared.calls())),
        (&Method::DELETE, "calls") => {
            shared.calls.lock().clear();
            json_reply(200, &json!([]))
        }
        _ => error_reply(&ApiError::not_found(&format!("_sim/{rest}"))),
    }
}
