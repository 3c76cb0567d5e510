//! One ensure (or, dry, one plan) of an Ingress balancer: the chain is
//! walked from the backends to the frontend so nothing links to what does
//! not exist yet, then what is no longer wanted goes, from the frontend
//! down, so nothing is deleted while still linked.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{ProviderError, desired::L7Spec, provider::Action};

use super::{
    backends,
    cx::Cx,
    firewall,
    frontend::{self, role},
    groups, proxies,
    wanted::{Address, Wanted, name},
};
use crate::api::request_id;

/// Make the provider match `w`; the frontend IP (`None` only when dry and
/// the address does not exist yet).
pub async fn apply(
    cx: &Cx<'_>,
    w: &Wanted,
    spec: &L7Spec,
) -> Result<Option<String>, ProviderError> {
    let ports: BTreeMap<String, u16> = w
        .backends
        .iter()
        .map(|b| (b.port_name.clone(), b.node_port))
        .collect();
    let group_links = groups::ensure(cx, &spec.nodes, &ports).await?;
    firewall::ensure(cx, w, &spec.nodes).await?;
    for b in &w.backends {
        backends::health_check(cx, b).await?;
    }
    for b in &w.backends {
        backends::backend_service(cx, w, b, &group_links).await?;
    }
    let certs = backends::certificates(cx, w).await?;
    frontend::url_map(cx, &w.url_map, role::URL_MAP, &w.routes).await?;
    if let Some(map) = &w.redirect_map {
        frontend::url_map(cx, map, role::REDIRECT_MAP, &Wanted::redirect_routes()).await?;
    }
    let ip = frontend::address(cx, w).await?;
    proxies::frontends(cx, w, ip.as_deref()).await?;

    // Nothing links to these any more.
    if w.redirect_map.is_none() {
        delete_url_map(cx, &name(cx.owner, cx.class, role::REDIRECT_MAP)).await?;
    }
    let wanted_certs: BTreeSet<&str> = w.certs.iter().map(|c| c.name.as_str()).collect();
    for stale in certs.iter().filter(|c| !wanted_certs.contains(c.as_str())) {
        delete_certificate(cx, stale).await?;
    }
    backends::remove_stale(cx, w).await?;
    if matches!(w.address, Address::Static(_)) {
        delete_address(cx, &name(cx.owner, cx.class, role::ADDRESS)).await?;
    }
    Ok(ip)
}

/// Delete this owner's URL map `map` if it exists.
async fn delete_url_map(cx: &Cx<'_>, map: &str) -> Result<(), ProviderError> {
    let api = cx.api;
    let found = cx
        .get("urlMaps.get", || {
            api.clients
                .url_maps
                .get()
                .set_project(api.project.clone())
                .set_url_map(map)
                .send()
        })
        .await?;
    if !found.is_some_and(|m| cx.owns(m.description.as_deref())) {
        return Ok(());
    }
    let rid = request_id();
    cx.write(
        Action::Delete,
        ("url-map", map),
        "no longer wanted",
        "urlMaps.delete",
        || {
            api.clients
                .url_maps
                .delete()
                .set_project(api.project.clone())
                .set_url_map(map)
                .set_request_id(rid.clone())
                .send()
        },
    )
    .await
}

/// Delete this owner's certificate `cert` (known to be ours from a list).
async fn delete_certificate(cx: &Cx<'_>, cert: &str) -> Result<(), ProviderError> {
    let api = cx.api;
    let rid = request_id();
    cx.write(
        Action::Delete,
        ("ssl-certificate", cert),
        "replaced or no longer wanted",
        "sslCertificates.delete",
        || {
            api.clients
                .ssl_certificates
                .delete()
                .set_project(api.project.clone())
                .set_ssl_certificate(cert)
                .set_request_id(rid.clone())
                .send()
        },
    )
    .await
}

/// Delete this owner's global address `address` if it exists.
async fn delete_address(cx: &Cx<'_>, address: &str) -> Result<(), ProviderError> {
    let api = cx.api;
    let found = cx
        .get("globalAddresses.get", || {
            api.clients
                .global_addresses
                .get()
                .set_project(api.project.clone())
                .set_address(address)
                .send()
        })
        .await?;
    if !found.is_some_and(|a| cx.owns(a.description.as_deref())) {
        return Ok(());
    }
    let rid = request_id();
    cx.write(
        Action::Delete,
        ("address", address),
        "a static address is used instead",
        "globalAddresses.delete",
        || {
            api.clients
                .global_addresses
                .delete()
                .set_project(api.project.clone())
                .set_address(address)
                .set_request_id(rid.clone())
                .send()
        },
    )
    .await
}
