//! The back half of the chain: one health check and one global backend
//! service (`EXTERNAL_MANAGED`, HTTP, over the class's instance groups
//! through the node port's named port) per backend Service port, and the
//! SSL certificates made from the Ingress's TLS Secrets.

use std::collections::BTreeSet;

use gantry_model::{ProviderError, desired::HealthCheck as Check, provider::Action};
use google_cloud_compute_v1::model::{
    Backend as GroupBackend, BackendService, BackendServiceList, HTTPHealthCheck, HealthCheck,
    HealthCheckList, SslCertificate, SslCertificateList, TCPHealthCheck, backend::BalancingMode,
    backend_service, health_check,
};

use super::{
    cx::Cx,
    url_map::relative,
    wanted::{Backend, Wanted},
};
use crate::api::request_id;

/// Attempts at a fingerprinted change while others change the resource.
const FINGERPRINT_ATTEMPTS: usize = 4;

/// Per-request deadline of the backend services, as ingress controllers on
/// GCE default it.
const BACKEND_TIMEOUT_SEC: i32 = 30;

fn health_check_body(cx: &Cx<'_>, b: &Backend) -> HealthCheck {
    let hc = HealthCheck::new()
        .set_name(b.health_check.clone())
        .set_description(cx.description(&format!("hc-{}", b.role)));
    match &b.check {
        Check::Http { port, path } => hc.set_type(health_check::Type::Http).set_http_health_check(
            HTTPHealthCheck::new()
                .set_port(i32::from(*port))
                .set_request_path(path.clone()),
        ),
        Check::NodePortTcp => hc
            .set_type(health_check::Type::Tcp)
            .set_tcp_health_check(TCPHealthCheck::new().set_port(i32::from(b.node_port))),
    }
}

/// Whether an existing health check checks what `want` checks.
fn same_check(have: &HealthCheck, want: &HealthCheck) -> bool {
    let http = |h: &HealthCheck| {
        h.http_health_check
            .as_ref()
            .map(|c| (c.port, c.request_path.clone().unwrap_or_else(|| "/".into())))
    };
    let tcp = |h: &HealthCheck| h.tcp_health_check.as_ref().map(|c| c.port);
    have.r#type == want.r#type && http(have) == http(want) && tcp(have) == tcp(want)
}

/// Create or correct the health check of `b`.
pub async fn health_check(cx: &Cx<'_>, b: &Backend) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = b.health_check.as_str();
    let get = || {
        api.clients
            .health_checks
            .get()
            .set_project(api.project.clone())
            .set_health_check(name)
            .send()
    };
    let body = health_check_body(cx, b);
    let rid = request_id();
    match cx.get("healthChecks.get", get).await? {
        None => {
            cx.create(
                ("health-check", name),
                format!("{:?}", b.check),
                "healthChecks.insert",
                || {
                    api.clients
                        .health_checks
                        .insert()
                        .set_project(api.project.clone())
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
                || async { Ok(api.call("healthChecks.get", get).await?.description) },
            )
            .await
        }
        Some(have) => {
            cx.check_owned("health-check", name, have.description.as_deref())?;
            if same_check(&have, &body) {
                return Ok(());
            }
            cx.write(
                Action::Update,
                ("health-check", name),
                format!("{:?}", b.check),
                "healthChecks.update",
                || {
                    api.clients
                        .health_checks
                        .update()
                        .set_project(api.project.clone())
                        .set_health_check(name)
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await
        }
    }
}

fn backend_service_body(cx: &Cx<'_>, w: &Wanted, b: &Backend, groups: &[String]) -> BackendService {
    BackendService::new()
        .set_name(b.service.clone())
        .set_description(cx.description(&format!("be-{}", b.role)))
        .set_load_balancing_scheme(backend_service::LoadBalancingScheme::ExternalManaged)
        .set_protocol(backend_service::Protocol::Http)
        .set_port_name(b.port_name.clone())
        .set_timeout_sec(BACKEND_TIMEOUT_SEC)
        .set_health_checks([w.link("healthChecks", &b.health_check)])
        .set_backends(groups.iter().map(|g| {
            GroupBackend::new()
                .set_group(g.clone())
                .set_balancing_mode(BalancingMode::Utilization)
                .set_capacity_scaler(1.0)
        }))
}

/// What of a backend service Gantry sets, comparable across endpoints.
fn backend_shape(s: &BackendService) -> impl PartialEq + use<> {
    let groups: BTreeSet<String> = s
        .backends
        .iter()
        .filter_map(|b| b.group.as_deref().map(relative))
        .collect();
    let checks: BTreeSet<String> = s.health_checks.iter().map(|l| relative(l)).collect();
    (
        s.load_balancing_scheme.clone(),
        s.protocol.clone(),
        s.port_name.clone(),
        groups,
        checks,
    )
}

async fn get_backend_service(
    cx: &Cx<'_>,
    name: &str,
) -> Result<Option<BackendService>, ProviderError> {
    let api = cx.api;
    cx.get("backendServices.get", || {
        api.clients
            .backend_services
            .get()
            .set_project(api.project.clone())
            .set_backend_service(name)
            .send()
    })
    .await
}

/// Create or correct the backend service of `b` over `groups`.
pub async fn backend_service(
    cx: &Cx<'_>,
    w: &Wanted,
    b: &Backend,
    groups: &[String],
) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = b.service.as_str();
    let body = backend_service_body(cx, w, b, groups);
    let detail = format!(
        "{} via {} over {} group(s)",
        b.key,
        b.port_name,
        groups.len()
    );
    let Some(mut have) = get_backend_service(cx, name).await? else {
        let rid = request_id();
        return cx
            .create(
                ("backend-service", name),
                detail,
                "backendServices.insert",
                || {
                    api.clients
                        .backend_services
                        .insert()
                        .set_project(api.project.clone())
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
                || async {
                    let found = api
                        .call("backendServices.get", || {
                            api.clients
                                .backend_services
                                .get()
                                .set_project(api.project.clone())
                                .set_backend_service(name)
                                .send()
                        })
                        .await?;
                    Ok(found.description)
                },
            )
            .await;
    };
    cx.check_owned("backend-service", name, have.description.as_deref())?;
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        if backend_shape(&have) == backend_shape(&body) {
            return Ok(());
        }
        let patch = body
            .clone()
            .set_or_clear_fingerprint(have.fingerprint.clone());
        let rid = request_id();
        let result = cx
            .try_write(
                Action::Update,
                ("backend-service", name),
                detail.clone(),
                "backendServices.patch",
                || {
                    api.clients
                        .backend_services
                        .patch()
                        .set_project(api.project.clone())
                        .set_backend_service(name)
                        .set_request_id(rid.clone())
                        .set_body(patch.clone())
                        .send()
                },
            )
            .await;
        match result {
            Err(e) if e.is_stale_fingerprint() && attempt < FINGERPRINT_ATTEMPTS => {
                match get_backend_service(cx, name).await? {
                    Some(fresh) => have = fresh,
                    None => return Ok(()),
                }
            }
            other => return Ok(other?),
        }
    }
    Ok(())
}

/// Make the certificates that are missing; the names of every certificate
/// of this owner that exists (made now or before).
pub async fn certificates(cx: &Cx<'_>, w: &Wanted) -> Result<BTreeSet<String>, ProviderError> {
    let api = cx.api;
    let all = api
        .list_all::<SslCertificateList, _, _>("sslCertificates.list", |token| {
            api.clients
                .ssl_certificates
                .list()
                .set_project(api.project.clone())
                .set_page_token(token)
                .send()
        })
        .await?;
    let mut owned = BTreeSet::new();
    for cert in &all {
        let Some(name) = cert.name.as_deref() else {
            continue;
        };
        if cx.owns(cert.description.as_deref()) {
            owned.insert(name.to_string());
        } else if w.certs.iter().any(|c| c.name == name) {
            return Err(ProviderError::NotOwned {
                resource: "ssl-certificate",
                name: name.to_string(),
                owner: cx.owner.clone(),
            });
        }
    }
    for cert in &w.certs {
        if owned.contains(&cert.name) {
            continue;
        }
        let body = SslCertificate::new()
            .set_name(cert.name.clone())
            .set_description(cx.description(&format!("crt-{}", cert.secret)))
            .set_certificate(cert.cert_pem.clone())
            .set_private_key(cert.key_pem.clone());
        let rid = request_id();
        let name = cert.name.as_str();
        cx.create(
            ("ssl-certificate", name),
            format!("from Secret {}", cert.secret),
            "sslCertificates.insert",
            || {
                api.clients
                    .ssl_certificates
                    .insert()
                    .set_project(api.project.clone())
                    .set_request_id(rid.clone())
                    .set_body(body.clone())
                    .send()
            },
            || async {
                let found = api
                    .call("sslCertificates.get", || {
                        api.clients
                            .ssl_certificates
                            .get()
                            .set_project(api.project.clone())
                            .set_ssl_certificate(name)
                            .send()
                    })
                    .await?;
                Ok(found.description)
            },
        )
        .await?;
        owned.insert(cert.name.clone());
    }
    Ok(owned)
}

/// Delete this owner's backend services and health checks that `w` no
/// longer names (after the URL map stopped linking them).
pub async fn remove_stale(cx: &Cx<'_>, w: &Wanted) -> Result<(), ProviderError> {
    let api = cx.api;
    let services = api
        .list_all::<BackendServiceList, _, _>("backendServices.list", |token| {
            api.clients
                .backend_services
                .list()
                .set_project(api.project.clone())
                .set_page_token(token)
                .send()
        })
        .await?;
    for s in services {
        let Some(name) = s.name.as_deref() else {
            continue;
        };
        if !cx.owns(s.description.as_deref()) || w.backends.iter().any(|b| b.service == name) {
            continue;
        }
        let rid = request_id();
        cx.write(
            Action::Delete,
            ("backend-service", name),
            "no longer a backend",
            "backendServices.delete",
            || {
                api.clients
                    .backend_services
                    .delete()
                    .set_project(api.project.clone())
                    .set_backend_service(name)
                    .set_request_id(rid.clone())
                    .send()
            },
        )
        .await?;
    }
    let checks = api
        .list_all::<HealthCheckList, _, _>("healthChecks.list", |token| {
            api.clients
                .health_checks
                .list()
                .set_project(api.project.clone())
                .set_page_token(token)
                .send()
        })
        .await?;
    for c in checks {
        let Some(name) = c.name.as_deref() else {
            continue;
        };
        if !cx.owns(c.description.as_deref()) || w.backends.iter().any(|b| b.health_check == name) {
            continue;
        }
        let rid = request_id();
        cx.write(
            Action::Delete,
            ("health-check", name),
            "no longer a backend",
            "healthChecks.delete",
            || {
                api.clients
                    .health_checks
                    .delete()
                    .set_project(api.project.clone())
                    .set_health_check(name)
                    .set_request_id(rid.clone())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}
