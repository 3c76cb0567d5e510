//! The middle of the chain: the URL maps (created when missing, replaced
//! in place by `update` with the current fingerprint, re-read on `412`)
//! and the global address the forwarding rules use.

use gantry_model::{ProviderError, provider::Action};
use google_cloud_compute_v1::model::{Address, UrlMap};

use super::{
    cx::Cx,
    url_map::{self, Routes},
    wanted::{Address as WantedAddress, Wanted},
};
use crate::api::request_id;

/// Attempts at a fingerprinted change while others change the resource.
const FINGERPRINT_ATTEMPTS: usize = 4;

/// Roles of the frontend resources (name and description).
pub mod role {
    /// The routing URL map.
    pub const URL_MAP: &str = "um";
    /// The redirect-only URL map of `ssl-redirect`.
    pub const REDIRECT_MAP: &str = "um-redirect";
    /// The reserved global address.
    pub const ADDRESS: &str = "ip";
    /// HTTP forwarding rule and proxy.
    pub const HTTP_RULE: &str = "fr-http";
    /// HTTP target proxy.
    pub const HTTP_PROXY: &str = "tp-http";
    /// HTTPS forwarding rule.
    pub const HTTPS_RULE: &str = "fr-https";
    /// HTTPS target proxy.
    pub const HTTPS_PROXY: &str = "tps-https";
}

async fn get_url_map(cx: &Cx<'_>, map: &str) -> Result<Option<UrlMap>, ProviderError> {
    let api = cx.api;
    cx.get("urlMaps.get", || {
        api.clients
            .url_maps
            .get()
            .set_project(api.project.clone())
            .set_url_map(map)
            .send()
    })
    .await
}

/// Create the URL map `map` with `routes`, or update it in place.
pub async fn url_map(
    cx: &Cx<'_>,
    map: &str,
    map_role: &str,
    routes: &Routes,
) -> Result<(), ProviderError> {
    let api = cx.api;
    let body = url_map::write(
        UrlMap::new()
            .set_name(map)
            .set_description(cx.description(map_role)),
        routes,
    );
    let detail = format!("{} host rule(s)", routes.host_rules.len());
    let Some(mut have) = get_url_map(cx, map).await? else {
        let rid = request_id();
        return cx
            .create(
                ("url-map", map),
                detail,
                "urlMaps.insert",
                || {
                    api.clients
                        .url_maps
                        .insert()
                        .set_project(api.project.clone())
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
                || async {
                    let found = api
                        .call("urlMaps.get", || {
                            api.clients
                                .url_maps
                                .get()
                                .set_project(api.project.clone())
                                .set_url_map(map)
                                .send()
                        })
                        .await?;
                    Ok(found.description)
                },
            )
            .await;
    };
    cx.check_owned("url-map", map, have.description.as_deref())?;
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        if url_map::read(&have).as_ref() == Some(routes) {
            return Ok(());
        }
        let update = body
            .clone()
            .set_or_clear_fingerprint(have.fingerprint.clone());
        let rid = request_id();
        let result = cx
            .try_write(
                Action::Update,
                ("url-map", map),
                detail.clone(),
                "urlMaps.update",
                || {
                    api.clients
                        .url_maps
                        .update()
                        .set_project(api.project.clone())
                        .set_url_map(map)
                        .set_request_id(rid.clone())
                        .set_body(update.clone())
                        .send()
                },
            )
            .await;
        match result {
            Err(e) if e.is_stale_fingerprint() && attempt < FINGERPRINT_ATTEMPTS => {
                match get_url_map(cx, map).await? {
                    Some(fresh) => have = fresh,
                    None => return Ok(()),
                }
            }
            other => return Ok(other?),
        }
    }
    Ok(())
}

async fn get_address(cx: &Cx<'_>, address: &str) -> Result<Option<Address>, ProviderError> {
    let api = cx.api;
    cx.get("globalAddresses.get", || {
        api.clients
            .global_addresses
            .get()
            .set_project(api.project.clone())
            .set_address(address)
            .send()
    })
    .await
}

/// The frontend IP: of the address Gantry reserves (made when missing) or
/// of the static one named. `None` only in a dry run before the address
/// exists.
pub async fn address(cx: &Cx<'_>, w: &Wanted) -> Result<Option<String>, ProviderError> {
    let api = cx.api;
    match &w.address {
        WantedAddress::Static(reserved) => match get_address(cx, reserved).await? {
            Some(a) => Ok(a.address),
            None => Err(ProviderError::Rejected {
                operation: "globalAddresses.get",
                message: format!("the static global address {reserved:?} does not exist"),
            }),
        },
        WantedAddress::Own(own) => {
            if let Some(a) = get_address(cx, own).await? {
                cx.check_owned("address", own, a.description.as_deref())?;
                return Ok(a.address);
            }
            let body = Address::new()
                .set_name(own.clone())
                .set_description(cx.description(role::ADDRESS))
                .set_labels(cx.labels());
            let rid = request_id();
            cx.create(
                ("address", own),
                "global, external",
                "globalAddresses.insert",
                || {
                    api.clients
                        .global_addresses
                        .insert()
                        .set_project(api.project.clone())
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
                || async {
                    let found = api
                        .call("globalAddresses.get", || {
                            api.clients
                                .global_addresses
                                .get()
                                .set_project(api.project.clone())
                                .set_address(own)
                                .send()
                        })
                        .await?;
                    Ok(found.description)
                },
            )
            .await?;
            if cx.dry {
                return Ok(None);
            }
            Ok(get_address(cx, own).await?.and_then(|a| a.address))
        }
    }
}
