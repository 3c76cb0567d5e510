//! HTTP front: maps paths to discovery documents, the admin endpoint and
//! resource verbs; reads bodies; negotiates JSON vs Table output; applies
//! injected faults; renders errors as `Status`.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::{
    api::{Ctx, Query, delete, read, write},
    discovery,
    error::ApiError,
    faults::{FaultRequest, Faults},
    openapi,
    patch::PatchKind,
    protobuf,
    server::Shared,
    table, watch,
};

/// The response body type.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body accepted, like the real server's 3 MiB limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

fn full(bytes: impl Into<Bytes>) -> Body {
    UnsyncBoxBody::new(Full::new(bytes.into()).map_err(|e| match e {}))
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut resp = json_response(e.code, &e.to_status());
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Entry point for every request.
pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(route(shared, req)
        .await
        .unwrap_or_else(|e| error_response(&e)))
}

/// A parsed resource path.
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_resource_path(segs: &[&str]) -> Option<Target> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let owned = |s: &&str| s.to_string();
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        other => (None, other.to_vec()),
    };
    let plural = rest.first().map(owned)?;
    Some(Target {
        group,
        version,
        namespace,
        plural,
        name: rest.get(1).map(owned),
        subresource: rest.get(2).map(owned),
    })
    .filter(|_| rest.len() <= 3)
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let collected = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let bytes = collected.to_bytes();
    if bytes.len() > MAX_BODY {
        return Err(ApiError::bad_request("the request body is too large"));
    }
    Ok(bytes)
}

fn parse_object(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    if content_type.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else if content_type.contains("protobuf") {
        protobuf::decode(body)
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode the object: {e}")))
    }
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (&method, segs.as_slice()) {
        (&Method::GET, ["version"]) => return Ok(json_response(200, &discovery::version())),
        (&Method::GET, ["healthz" | "livez" | "readyz", ..]) => {
            let mut r = Response::new(full("ok"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return Ok(r);
        }
        (&Method::POST, ["_sim", "faults"]) => {
            let body = read_body(req).await?;
            let request: FaultRequest = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid fault request: {e}")))?;
            Faults {
                shared: Arc::downgrade(&shared),
                state: shared.faults.clone(),
            }
            .execute(request);
            return Ok(json_response(200, &json!({"status": "ok"})));
        }
        (&Method::GET, ["openapi", "v3"]) => {
            return Ok(json_response(
                200,
                &openapi::index(&shared.state.lock().registry),
            ));
        }
        (&Method::GET, ["openapi", "v3", "api", v]) => {
            return openapi::group_version(&shared.state.lock().registry, "", v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        (&Method::GET, ["openapi", "v3", "apis", g, v]) => {
            return openapi::group_version(&shared.state.lock().registry, g, v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        (&Method::GET, ["api"]) => {
            return Ok(json_response(
                200,
                &discovery::api_versions(&shared.address),
            ));
        }
        (&Method::GET, ["apis"]) => {
            return Ok(json_response(
                200,
                &discovery::group_list(&shared.state.lock().registry),
            ));
        }
        (&Method::GET, ["api", v]) => {
            return discovery::resource_list(&shared.state.lock().registry, "", v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        (&Method::GET, ["apis", g]) => {
            return discovery::group(&shared.state.lock().registry, g)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        (&Method::GET, ["apis", g, v]) => {
            return discovery::resource_list(&shared.state.lock().registry, g, v)
                .map(|d| json_response(200, &d))
                .ok_or_else(ApiError::no_route);
        }
        _ => {}
    }
    let target = parse_resource_path(&segs).ok_or_else(ApiError::no_route)?;
    let rt = shared
        .state
        .lock()
        .registry
        .find(&target.group, &target.version, &target.plural)
        .ok_or_else(ApiError::no_route)?;
    if target.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &target.subresource
        && !(sub == "status" && rt.has_status)
        && !(sub == "finalize" && rt.plural == "namespaces")
        && !(sub == "scale" && crate::scale::supports(&rt))
    {
        return Err(ApiError::no_route());
    }
    let query = Query::parse(req.uri().query());
    let ctx = Ctx {
        rt: rt.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        subresource: target.subresource.clone().filter(|s| s == "status"),
        query,
        user_agent: header_str(&req, header::USER_AGENT).to_string(),
    };
    let watching = ctx.query.flag("watch");
    let verb = match (&method, ctx.name.is_some()) {
        (&Method::GET, true) => "get",
        (&Method::GET, false) if watching => "watch",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(e) = shared
        .faults
        .take(verb, &rt.plural, ctx.subresource.as_deref())
    {
        return Err(e);
    }
    if target.subresource.as_deref() == Some("scale") {
        return scale_request(&shared, &ctx, verb, req).await;
    }
    let accept = header_str(&req, header::ACCEPT).to_string();
    let wants_table = accept.contains("as=Table");
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    match verb {
        "get" => {
            let obj = read::get(&shared.state.lock(), &ctx)?;
            let obj = read::with_version(&obj, &ctx);
            if wants_table {
                let include = ctx.query.get("includeObject").unwrap_or("Metadata");
                return Ok(json_response(
                    200,
                    &table::render(&rt, &[obj], json!({"resourceVersion": ""}), include, true),
                ));
            }
            Ok(json_response(200, &obj))
        }
        "list" if !wants_table => {
            let snapshot = read::list_snapshot(&shared.state.lock(), &ctx)?;
            let mut resp = Response::new(full(read::list_json(snapshot, &ctx)?));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        "list" => {
            let list = read::list(&shared.state.lock(), &ctx)?;
            if wants_table {
                let include = ctx.query.get("includeObject").unwrap_or("Metadata");
                let items = list["items"].as_array().cloned().unwrap_or_default();
                return Ok(json_response(
                    200,
                    &table::render(&rt, &items, list["metadata"].clone(), include, true),
                ));
            }
            Ok(json_response(200, &list))
        }
        "watch" => {
            let include = ctx
                .query
                .get("includeObject")
                .unwrap_or("Metadata")
                .to_string();
            let rx = watch::start(&shared, ctx)?;
            let table_rt = wants_table.then_some(rt);
            let stream = futures::stream::unfold(
                (rx, table_rt, include, true),
                |(mut rx, table_rt, include, first)| async move {
                    let bytes = rx.recv().await?;
                    let bytes = match &table_rt {
                        Some(rt) => tableize(rt, &bytes, &include, first),
                        None => bytes,
                    };
                    Some((
                        Ok::<_, Infallible>(Frame::data(bytes)),
                        (rx, table_rt, include, false),
                    ))
                },
            );
            let mut resp = Response::new(UnsyncBoxBody::new(StreamBody::new(stream)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        "create" => {
            let body = read_body(req).await?;
            let obj = parse_object(&content_type, &body)?;
            let (code, v) = write::create(&mut shared.state.lock(), &ctx, obj)?;
            Ok(json_response(code, &read::present(v, &ctx)))
        }
        "update" => {
            let body = read_body(req).await?;
            let obj = parse_object(&content_type, &body)?;
            let (code, v) = write::update(&mut shared.state.lock(), &ctx, obj)?;
            Ok(json_response(code, &read::present(v, &ctx)))
        }
        "patch" => {
            let kind = PatchKind::from_content_type(&content_type).ok_or_else(|| {
                ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {content_type}"
                ))
            })?;
            let body = read_body(req).await?;
            let (code, v) = write::patch(&mut shared.state.lock(), &ctx, kind, &body)?;
            Ok(json_response(code, &read::present(v, &ctx)))
        }
        "delete" => {
            let body = read_body(req).await?;
            let opts = delete::DeleteOptions::from_request(&ctx, &body);
            let (code, v) = delete::delete(&mut shared.state.lock(), &ctx, &opts)?;
            Ok(json_response(code, &read::present(v, &ctx)))
        }
        "deletecollection" => {
            let body = read_body(req).await?;
            let opts = delete::DeleteOptions::from_request(&ctx, &body);
            let (code, v) = delete::delete_collection(&mut shared.state.lock(), &ctx, &opts)?;
            Ok(json_response(code, &v))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// GET, PUT and PATCH on the `scale` subresource.
async fn scale_request(
    shared: &Shared,
    ctx: &Ctx,
    verb: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    match verb {
        "get" => Ok(json_response(
            200,
            &crate::scale::get(&shared.state.lock(), ctx)?,
        )),
        "update" => {
            let body = read_body(req).await?;
            let obj = parse_object(&content_type, &body)?;
            let (code, v) = crate::scale::update(&mut shared.state.lock(), ctx, obj)?;
            Ok(json_response(code, &v))
        }
        "patch" => {
            let kind = PatchKind::from_content_type(&content_type).ok_or_else(|| {
                ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type}"
                ))
            })?;
            let body = read_body(req).await?;
            let (code, v) = crate::scale::patch(&mut shared.state.lock(), ctx, kind, &body)?;
            Ok(json_response(code, &v))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// Turns one watch event line into the Table form kubectl asks for with `get -w`.
fn tableize(rt: &crate::registry::ResourceType, line: &Bytes, include: &str, first: bool) -> Bytes {
    let Ok(mut ev) = serde_json::from_slice::<Value>(line) else {
        return line.clone();
    };
    let ty = ev["type"].as_str().unwrap_or("");
    if matches!(ty, "ADDED" | "MODIFIED" | "DELETED") {
        let obj = ev["object"].clone();
        let rv = obj["metadata"]["resourceVersion"].clone();
        ev["object"] = table::render(rt, &[obj], json!({"resourceVersion": rv}), include, first);
    }
    let mut out = serde_json::to_vec(&ev).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}
