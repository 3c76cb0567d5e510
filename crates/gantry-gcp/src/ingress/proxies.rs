//! The front of the chain: the target HTTP(S) proxies and the global
//! forwarding rules, each created when missing and corrected in place when
//! it differs (proxies by `setUrlMap` and `setSslCertificates`, forwarding
//! rules by `setTarget`), and removed, rule first, when a frontend is no
//! longer wanted (`allow-http` off, TLS gone).

use gantry_model::{ProviderError, provider::Action};
use google_cloud_compute_v1::model::{
    ForwardingRule, TargetHttpProxy, TargetHttpsProxiesSetSslCertificatesRequest, TargetHttpsProxy,
    TargetReference, UrlMapReference, forwarding_rule,
};

use super::{
    cx::Cx,
    frontend::role,
    url_map::relative,
    wanted::{Frontend, Wanted, name},
};
use crate::api::request_id;

/// Which of the two frontends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Port 80, target HTTP proxy.
    Http,
    /// Port 443, target HTTPS proxy.
    Https,
}

/// The proxy as far as Gantry sets it: description, URL map, certificates.
struct Proxy {
    description: Option<String>,
    url_map: Option<String>,
    certs: Vec<String>,
}

async fn get_proxy(cx: &Cx<'_>, kind: Kind, proxy: &str) -> Result<Option<Proxy>, ProviderError> {
    let api = cx.api;
    Ok(match kind {
        Kind::Http => cx
            .get("targetHttpProxies.get", || {
                api.clients
                    .target_http_proxies
                    .get()
                    .set_project(api.project.clone())
                    .set_target_http_proxy(proxy)
                    .send()
            })
            .await?
            .map(|p| Proxy {
                description: p.description,
                url_map: p.url_map,
                certs: Vec::new(),
            }),
        Kind::Https => cx
            .get("targetHttpsProxies.get", || {
                api.clients
                    .target_https_proxies
                    .get()
                    .set_project(api.project.clone())
                    .set_target_https_proxy(proxy)
                    .send()
            })
            .await?
            .map(|p| Proxy {
                description: p.description,
                url_map: p.url_map,
                certs: p.ssl_certificates,
            }),
    })
}

/// Create or correct the proxy of one frontend.
async fn proxy(cx: &Cx<'_>, w: &Wanted, kind: Kind, f: &Frontend) -> Result<(), ProviderError> {
    let api = cx.api;
    let p = f.proxy.as_str();
    let map_link = w.link("urlMaps", &f.url_map);
    let certs = w.cert_links();
    let (resource, proxy_role) = match kind {
        Kind::Http => ("target-http-proxy", role::HTTP_PROXY),
        Kind::Https => ("target-https-proxy", role::HTTPS_PROXY),
    };
    let Some(have) = get_proxy(cx, kind, p).await? else {
        let description = cx.description(proxy_role);
        let rid = request_id();
        let readback = || async {
            Ok(get_proxy(cx, kind, p)
                .await
                .ok()
                .flatten()
                .and_then(|p| p.description))
        };
        return match kind {
            Kind::Http => {
                let body = TargetHttpProxy::new()
                    .set_name(p)
                    .set_description(description)
                    .set_url_map(map_link.clone());
                cx.create(
                    (resource, p),
                    format!("to {}", f.url_map),
                    "targetHttpProxies.insert",
                    || {
                        api.clients
                            .target_http_proxies
                            .insert()
                            .set_project(api.project.clone())
                            .set_request_id(rid.clone())
                            .set_body(body.clone())
                            .send()
                    },
                    readback,
                )
                .await
            }
            Kind::Https => {
                let body = TargetHttpsProxy::new()
                    .set_name(p)
                    .set_description(description)
                    .set_url_map(map_link.clone())
                    .set_ssl_certificates(certs.clone());
                cx.create(
                    (resource, p),
                    format!("to {} with {} certificate(s)", f.url_map, certs.len()),
                    "targetHttpsProxies.insert",
                    || {
                        api.clients
                            .target_https_proxies
                            .insert()
                            .set_project(api.project.clone())
                            .set_request_id(rid.clone())
                            .set_body(body.clone())
                            .send()
                    },
                    readback,
                )
                .await
            }
        };
    };
    cx.check_owned(resource, p, have.description.as_deref())?;
    if have.url_map.as_deref().map(relative).as_deref() != Some(map_link.as_str()) {
        let body = UrlMapReference::new().set_url_map(map_link.clone());
        let rid = request_id();
        let detail = format!("URL map -> {}", f.url_map);
        match kind {
            Kind::Http => {
                cx.write(
                    Action::Update,
                    (resource, p),
                    detail,
                    "targetHttpProxies.setUrlMap",
                    || {
                        api.clients
                            .target_http_proxies
                            .set_url_map()
                            .set_project(api.project.clone())
                            .set_target_http_proxy(p)
                            .set_request_id(rid.clone())
                            .set_body(body.clone())
                            .send()
                    },
                )
                .await?;
            }
            Kind::Https => {
                cx.write(
                    Action::Update,
                    (resource, p),
                    detail,
                    "targetHttpsProxies.setUrlMap",
                    || {
                        api.clients
                            .target_https_proxies
                            .set_url_map()
                            .set_project(api.project.clone())
                            .set_target_https_proxy(p)
                            .set_request_id(rid.clone())
                            .set_body(body.clone())
                            .send()
                    },
                )
                .await?;
            }
        }
    }
    let have_certs: Vec<String> = have.certs.iter().map(|c| relative(c)).collect();
    if kind == Kind::Https && have_certs != certs {
        // A rotated Secret's new certificate goes on before the old one is
        // deleted (by the caller, after this), so HTTPS never lacks one.
        let body =
            TargetHttpsProxiesSetSslCertificatesRequest::new().set_ssl_certificates(certs.clone());
        let rid = request_id();
        cx.write(
            Action::Update,
            (resource, p),
            format!("{} certificate(s)", certs.len()),
            "targetHttpsProxies.setSslCertificates",
            || {
                api.clients
                    .target_https_proxies
                    .set_ssl_certificates()
                    .set_project(api.project.clone())
                    .set_target_https_proxy(p)
                    .set_request_id(rid.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}

async fn get_rule(cx: &Cx<'_>, rule: &str) -> Result<Option<ForwardingRule>, ProviderError> {
    let api = cx.api;
    cx.get("globalForwardingRules.get", || {
        api.clients
            .global_forwarding_rules
            .get()
            .set_project(api.project.clone())
            .set_forwarding_rule(rule)
            .send()
    })
    .await
}

async fn delete_rule(cx: &Cx<'_>, rule: &str, why: &str) -> Result<(), ProviderError> {
    let api = cx.api;
    let rid = request_id();
    cx.write(
        Action::Delete,
        ("forwarding-rule", rule),
        why,
        "globalForwardingRules.delete",
        || {
            api.clients
                .global_forwarding_rules
                .delete()
                .set_project(api.project.clone())
                .set_forwarding_rule(rule)
                .set_request_id(rid.clone())
                .send()
        },
    )
    .await
}

/// Create or correct the forwarding rule of one frontend on `ip`.
async fn rule(
    cx: &Cx<'_>,
    w: &Wanted,
    kind: Kind,
    f: &Frontend,
    ip: Option<&str>,
) -> Result<(), ProviderError> {
    let api = cx.api;
    let r = f.rule.as_str();
    let target = w.link(
        match kind {
            Kind::Http => "targetHttpProxies",
            Kind::Https => "targetHttpsProxies",
        },
        &f.proxy,
    );
    let mut existing = get_rule(cx, r).await?;
    if let Some(have) = &existing {
        cx.check_owned("forwarding-rule", r, have.description.as_deref())?;
        // The address of a forwarding rule cannot change: make it anew.
        if ip.is_some() && have.ip_address.as_deref() != ip {
            delete_rule(cx, r, "address changed").await?;
            existing = None;
        }
    }
    let Some(have) = existing else {
        let mut body = ForwardingRule::new()
            .set_name(r)
            .set_description(cx.description(match kind {
                Kind::Http => role::HTTP_RULE,
                Kind::Https => role::HTTPS_RULE,
            }))
            .set_labels(cx.labels())
            .set_ip_protocol(forwarding_rule::IPProtocol::Tcp)
            .set_port_range(f.port.to_string())
            .set_target(target.clone())
            .set_load_balancing_scheme(forwarding_rule::LoadBalancingScheme::ExternalManaged)
            .set_network_tier(forwarding_rule::NetworkTier::Premium);
        if let Some(ip) = ip {
            body = body.set_ip_address(ip);
        }
        let rid = request_id();
        return cx
            .create(
                ("forwarding-rule", r),
                format!("port {} to {}", f.port, f.proxy),
                "globalForwardingRules.insert",
                || {
                    api.clients
                        .global_forwarding_rules
                        .insert()
                        .set_project(api.project.clone())
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
                || async {
                    Ok(get_rule(cx, r)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|r| r.description))
                },
            )
            .await;
    };
    if have.target.as_deref().map(relative).as_deref() != Some(target.as_str()) {
        let body = TargetReference::new().set_target(target.clone());
        let rid = request_id();
        cx.write(
            Action::Update,
            ("forwarding-rule", r),
            format!("target -> {}", f.proxy),
            "globalForwardingRules.setTarget",
            || {
                api.clients
                    .global_forwarding_rules
                    .set_target()
                    .set_project(api.project.clone())
                    .set_forwarding_rule(r)
                    .set_request_id(rid.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}

/// Remove one frontend that is no longer wanted (rule, then proxy), if it
/// exists and is ours.
async fn remove(cx: &Cx<'_>, kind: Kind) -> Result<(), ProviderError> {
    let api = cx.api;
    let (rule_role, proxy_role) = match kind {
        Kind::Http => (role::HTTP_RULE, role::HTTP_PROXY),
        Kind::Https => (role::HTTPS_RULE, role::HTTPS_PROXY),
    };
    let r = name(cx.owner, cx.class, rule_role);
    if let Some(have) = get_rule(cx, &r).await?
        && cx.owns(have.description.as_deref())
    {
        delete_rule(cx, &r, "frontend no longer wanted").await?;
    }
    let p = name(cx.owner, cx.class, proxy_role);
    let Some(have) = get_proxy(cx, kind, &p).await? else {
        return Ok(());
    };
    if !cx.owns(have.description.as_deref()) {
        return Ok(());
    }
    let rid = request_id();
    match kind {
        Kind::Http => {
            cx.write(
                Action::Delete,
                ("target-http-proxy", &p),
                "frontend no longer wanted",
                "targetHttpProxies.delete",
                || {
                    api.clients
                        .target_http_proxies
                        .delete()
                        .set_project(api.project.clone())
                        .set_target_http_proxy(&p)
                        .set_request_id(rid.clone())
                        .send()
                },
            )
            .await
        }
        Kind::Https => {
            cx.write(
                Action::Delete,
                ("target-https-proxy", &p),
                "frontend no longer wanted",
                "targetHttpsProxies.delete",
                || {
                    api.clients
                        .target_https_proxies
                        .delete()
                        .set_project(api.project.clone())
                        .set_target_https_proxy(&p)
                        .set_request_id(rid.clone())
                        .send()
                },
            )
            .await
        }
    }
}

/// Both frontends: the wanted ones made or corrected, the others removed.
pub async fn frontends(cx: &Cx<'_>, w: &Wanted, ip: Option<&str>) -> Result<(), ProviderError> {
    for (kind, f) in [(Kind::Http, &w.http), (Kind::Https, &w.https)] {
        match f {
            Some(f) => {
                proxy(cx, w, kind, f).await?;
                rule(cx, w, kind, f, ip).await?;
            }
            None => remove(cx, kind).await?,
        }
    }
    Ok(())
}
