//! The backend half of a Service balancer: the health check and the
//! regional backend service over the class's instance groups, or, in the
//! legacy form, the legacy HTTP health check and the target pool holding
//! the instances. Each is read, created when missing, and changed in place
//! only when it differs (backend services with their fingerprint, re-read
//! and retried on `412 conditionNotMet`).

use std::collections::BTreeSet;

use gantry_model::{ProviderError, desired::Scheme, provider::Action};
use google_cloud_compute_v1::model::{
    Backend, BackendService, HTTPHealthCheck, HealthCheck, HttpHealthCheck, InstanceReference,
    TCPHealthCheck, TargetPool, TargetPoolsAddInstanceRequest, TargetPoolsRemoveInstanceRequest,
    backend::BalancingMode,
    backend_service::{LoadBalancingScheme, Protocol as BsProtocol},
    health_check::Type as HcType,
};

use super::{
    cx::{Cx, change, relative, same_link},
    wanted::{Instance, Probe, Wanted},
};
use crate::{api::request_id, names::role};

/// Attempts at a fingerprinted update when another writer changes the
/// resource between our read and our write.
const FINGERPRINT_ATTEMPTS: usize = 4;

/// Read one resource: `None` when absent.
pub async fn get<T, F, Fut>(
    cx: &Cx<'_>,
    operation: &'static str,
    make: F,
) -> Result<Option<T>, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = google_cloud_compute_v1::Result<T>>,
{
    match cx.api.call(operation, make).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `projects/P/regions/R/healthChecks/N` (or the global legacy check).
pub fn health_check_link(cx: &Cx<'_>, w: &Wanted) -> String {
    if w.target_pool {
        format!(
            "{}/httpHealthChecks/{}",
            cx.api.global_path(),
            w.health_check
        )
    } else {
        format!("{}/healthChecks/{}", cx.api.region_path(), w.health_check)
    }
}

/// Link of the backend service or target pool.
pub fn backend_link(cx: &Cx<'_>, w: &Wanted) -> String {
    if w.target_pool {
        format!("{}/targetPools/{}", cx.api.region_path(), w.backend)
    } else {
        format!("{}/backendServices/{}", cx.api.region_path(), w.backend)
    }
}

fn regional_check(cx: &Cx<'_>, w: &Wanted) -> HealthCheck {
    let hc = HealthCheck::new()
        .set_name(w.health_check.clone())
        .set_description(cx.description(role::HEALTH_CHECK));
    match &w.probe {
        Probe::Tcp(port) => hc
            .set_type(HcType::Tcp)
            .set_tcp_health_check(TCPHealthCheck::new().set_port(i32::from(*port))),
        Probe::Http(port, path) => hc.set_type(HcType::Http).set_http_health_check(
            HTTPHealthCheck::new()
                .set_port(i32::from(*port))
                .set_request_path(path.clone()),
        ),
    }
}

fn regional_check_matches(have: &HealthCheck, w: &Wanted) -> bool {
    match &w.probe {
        Probe::Tcp(port) => {
            have.r#type == Some(HcType::Tcp)
                && have.tcp_health_check.as_ref().and_then(|t| t.port) == Some(i32::from(*port))
        }
        Probe::Http(port, path) => {
            have.r#type == Some(HcType::Http)
                && have.http_health_check.as_ref().is_some_and(|h| {
                    h.port == Some(i32::from(*port)) && h.request_path.as_deref() == Some(path)
                })
        }
    }
}

/// The health check, created or corrected.
pub async fn ensure_health_check(cx: &Cx<'_>, w: &Wanted) -> Result<(), ProviderError> {
    if w.target_pool {
        return ensure_legacy_check(cx, w).await;
    }
    let api = cx.api;
    let name = w.health_check.clone();
    let have = get(cx, "regionHealthChecks.get", || {
        api.clients
            .region_health_checks
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_health_check(name.clone())
            .send()
    })
    .await?;
    let body = regional_check(cx, w);
    let id = request_id();
    match have {
        Some(h) if !cx.owns(h.description.as_deref()) => Err(cx.not_owned("health-check", &name)),
        Some(h) if regional_check_matches(&h, w) => Ok(()),
        Some(_) => Ok(cx
            .write(
                "regionHealthChecks.update",
                change(
                    Action::Update,
                    "health-check",
                    &name,
                    probe_detail(&w.probe),
                ),
                || {
                    api.clients
                        .region_health_checks
                        .update()
                        .set_project(cx.project())
                        .set_region(cx.region())
                        .set_health_check(name.clone())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?),
        None => Ok(cx
            .write(
                "regionHealthChecks.insert",
                change(
                    Action::Create,
                    "health-check",
                    &name,
                    probe_detail(&w.probe),
                ),
                || {
                    api.clients
                        .region_health_checks
                        .insert()
                        .set_project(cx.project())
                        .set_region(cx.region())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?),
    }
}

fn probe_detail(p: &Probe) -> String {
    match p {
        Probe::Tcp(port) => format!("TCP {port}"),
        Probe::Http(port, path) => format!("HTTP {port}{path}"),
    }
}

async fn ensure_legacy_check(cx: &Cx<'_>, w: &Wanted) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = w.health_check.clone();
    let (port, path) = match &w.probe {
        Probe::Http(port, path) => (*port, path.clone()),
        // `wanted` never asks a target pool for a TCP check.
        Probe::Tcp(port) => (*port, "/".to_string()),
    };
    let have = get(cx, "httpHealthChecks.get", || {
        api.clients
            .http_health_checks
            .get()
            .set_project(cx.project())
            .set_http_health_check(name.clone())
            .send()
    })
    .await?;
    let body = HttpHealthCheck::new()
        .set_name(name.clone())
        .set_description(cx.description(role::HTTP_HEALTH_CHECK))
        .set_port(i32::from(port))
        .set_request_path(path.clone());
    let id = request_id();
    match have {
        Some(h) if !cx.owns(h.description.as_deref()) => {
            Err(cx.not_owned("http-health-check", &name))
        }
        Some(h) if h.port == Some(i32::from(port)) && h.request_path.as_deref() == Some(&path) => {
            Ok(())
        }
        Some(_) => Ok(cx
            .write(
                "httpHealthChecks.update",
                change(
                    Action::Update,
                    "http-health-check",
                    &name,
                    probe_detail(&w.probe),
                ),
                || {
                    api.clients
                        .http_health_checks
                        .update()
                        .set_project(cx.project())
                        .set_http_health_check(name.clone())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?),
        None => Ok(cx
            .write(
                "httpHealthChecks.insert",
                change(
                    Action::Create,
                    "http-health-check",
                    &name,
                    probe_detail(&w.probe),
                ),
                || {
                    api.clients
                        .http_health_checks
                        .insert()
                        .set_project(cx.project())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?),
    }
}

fn bs_scheme(s: Scheme) -> LoadBalancingScheme {
    match s {
        Scheme::InternetFacing => LoadBalancingScheme::External,
        Scheme::Internal => LoadBalancingScheme::Internal,
    }
}

fn bs_protocol(w: &Wanted) -> BsProtocol {
    match w.rules.as_slice() {
        [only] if only.protocol == gantry_model::desired::Protocol::Udp => BsProtocol::Udp,
        [_] => BsProtocol::Tcp,
        // TCP and UDP on one backend service.
        _ => BsProtocol::Unspecified,
    }
}

/// The regional backend service over `groups`.
pub async fn ensure_backend_service(
    cx: &Cx<'_>,
    w: &Wanted,
    groups: &[String],
) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = w.backend.clone();
    let hc = health_check_link(cx, w);
    let mut body = BackendService::new()
        .set_name(name.clone())
        .set_description(cx.description(role::BACKEND_SERVICE))
        .set_load_balancing_scheme(bs_scheme(w.scheme))
        .set_protocol(bs_protocol(w))
        .set_health_checks([hc.clone()])
        .set_backends(groups.iter().map(|g| {
            Backend::new()
                .set_group(g.clone())
                .set_balancing_mode(BalancingMode::Connection)
        }));
    if w.scheme == Scheme::Internal {
        body = body.set_network(format!("{}/networks/{}", cx.api.global_path(), w.network));
    }
    for _ in 0..FINGERPRINT_ATTEMPTS {
        let have = get(cx, "regionBackendServices.get", || {
            api.clients
                .region_backend_services
                .get()
                .set_project(cx.project())
                .set_region(cx.region())
                .set_backend_service(name.clone())
                .send()
        })
        .await?;
        let id = request_id();
        let result = match have {
            Some(b) if !cx.owns(b.description.as_deref()) => {
                return Err(cx.not_owned("backend-service", &name));
            }
            Some(b) => {
                let have_groups: BTreeSet<&str> = b
                    .backends
                    .iter()
                    .filter_map(|x| x.group.as_deref().map(relative))
                    .collect();
                let want_groups: BTreeSet<&str> = groups.iter().map(|g| relative(g)).collect();
                let same = have_groups == want_groups
                    && b.health_checks.len() == 1
                    && same_link(&b.health_checks[0], &hc)
                    && b.load_balancing_scheme == body.load_balancing_scheme
                    && b.protocol == body.protocol;
                if same {
                    return Ok(());
                }
                let update = body.clone().set_or_clear_fingerprint(b.fingerprint.clone());
                cx.write(
                    "regionBackendServices.update",
                    change(
                        Action::Update,
                        "backend-service",
                        &name,
                        format!("{} instance groups", groups.len()),
                    ),
                    || {
                        api.clients
                            .region_backend_services
                            .update()
                            .set_project(cx.project())
                            .set_region(cx.region())
                            .set_backend_service(name.clone())
                            .set_request_id(id.clone())
                            .set_body(update.clone())
                            .send()
                    },
                )
                .await
            }
            None => {
                cx.write(
                    "regionBackendServices.insert",
                    change(
                        Action::Create,
                        "backend-service",
                        &name,
                        format!("{} instance groups", groups.len()),
                    ),
                    || {
                        api.clients
                            .region_backend_services
                            .insert()
                            .set_project(cx.project())
                            .set_region(cx.region())
                            .set_request_id(id.clone())
                            .set_body(body.clone())
                            .send()
                    },
                )
                .await
            }
        };
        match result {
            Ok(()) => return Ok(()),
            // Someone changed it since our read: read again.
            Err(e) if e.is_stale_fingerprint() || e.is_already_exists() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ProviderError::Transient {
        operation: "regionBackendServices.update",
        source: format!("backend service {name} kept changing under us").into(),
    })
}

/// The target pool holding the instances, with the legacy check.
pub async fn ensure_target_pool(cx: &Cx<'_>, w: &Wanted) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = w.backend.clone();
    let hc = health_check_link(cx, w);
    let wanted: BTreeSet<String> = w.zones.values().flatten().map(Instance::link).collect();
    let have = get(cx, "targetPools.get", || {
        api.clients
            .target_pools
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_target_pool(name.clone())
            .send()
    })
    .await?;
    let Some(pool) = have else {
        let body = TargetPool::new()
            .set_name(name.clone())
            .set_description(cx.description(role::TARGET_POOL))
            .set_health_checks([hc.clone()])
            .set_instances(wanted.iter().cloned());
        let id = request_id();
        return Ok(cx
            .write(
                "targetPools.insert",
                change(
                    Action::Create,
                    "target-pool",
                    &name,
                    format!("{} instances", wanted.len()),
                ),
                || {
                    api.clients
                        .target_pools
                        .insert()
                        .set_project(cx.project())
                        .set_region(cx.region())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?);
    };
    if !cx.owns(pool.description.as_deref()) {
        return Err(cx.not_owned("target-pool", &name));
    }
    let current: BTreeSet<String> = pool
        .instances
        .iter()
        .map(|l| relative(l).to_string())
        .collect();
    let add: Vec<String> = wanted.difference(&current).cloned().collect();
    let remove: Vec<String> = current.difference(&wanted).cloned().collect();
    if !add.is_empty() {
        let body = TargetPoolsAddInstanceRequest::new()
            .set_instances(add.iter().map(|l| InstanceReference::new().set_instance(l)));
        let id = request_id();
        cx.write(
            "targetPools.addInstance",
            change(
                Action::Update,
                "target-pool",
                &name,
                format!("add {} instances", add.len()),
            ),
            || {
                api.clients
                    .target_pools
                    .add_instance()
                    .set_project(cx.project())
                    .set_region(cx.region())
                    .set_target_pool(name.clone())
                    .set_request_id(id.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await?;
    }
    if !remove.is_empty() {
        let body = TargetPoolsRemoveInstanceRequest::new().set_instances(
            remove
                .iter()
                .map(|l| InstanceReference::new().set_instance(l)),
        );
        let id = request_id();
        cx.write(
            "targetPools.removeInstance",
            change(
                Action::Update,
                "target-pool",
                &name,
                format!("remove {} instances", remove.len()),
            ),
            || {
                api.clients
                    .target_pools
                    .remove_instance()
                    .set_project(cx.project())
                    .set_region(cx.region())
                    .set_target_pool(name.clone())
                    .set_request_id(id.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}
