//! The frontend half of a Service balancer and the order of the whole
//! ensure: the reserved address, the backend half, one forwarding rule per
//! protocol (replaced when its address, ports or target change, since
//! Compute Engine cannot change those in place; the reserved address keeps
//! the IP meanwhile), the firewall rule, then removal of what the balancer
//! no longer uses.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{
    ObservedStatus, ProviderError,
    desired::{Protocol, Scheme},
    provider::{Action, IngressPoint, PortStatus},
};
use google_cloud_compute_v1::model::{
    Address, BackendService, Firewall, ForwardingRule, address::AddressType, firewall::Allowed,
    forwarding_rule::IPProtocol, forwarding_rule::LoadBalancingScheme,
};

use super::{
    backend::{self, backend_link, get},
    cx::{Cx, change, same_link},
    groups,
    wanted::{Rule, Wanted},
};
use crate::{api::request_id, labels, names::role};

/// Make the balancer match `w`; its status.
pub async fn ensure(cx: &Cx<'_>, w: &Wanted) -> Result<ObservedStatus, ProviderError> {
    let address = ensure_address(cx, w).await?;
    backend::ensure_health_check(cx, w).await?;
    let mut old_zones = BTreeSet::new();
    if w.target_pool {
        backend::ensure_target_pool(cx, w).await?;
    } else {
        old_zones = attached_zones(cx, w).await?;
        let links = groups::ensure(cx, &w.zones).await?;
        backend::ensure_backend_service(cx, w, &links).await?;
    }
    let ip = ensure_rules(cx, w, address.as_deref()).await?;
    ensure_firewall(cx, w).await?;
    cleanup(cx, w, &old_zones).await?;
    Ok(status(w, ip, !cx.dry))
}

/// The status: the rules' address and ports. Ready once every rule exists.
fn status(w: &Wanted, ip: Option<String>, ready: bool) -> ObservedStatus {
    let ports: Vec<PortStatus> = w
        .rules
        .iter()
        .flat_map(|r| {
            r.ports.iter().map(|p| PortStatus {
                port: *p,
                protocol: r.protocol,
            })
        })
        .collect();
    let ip = ip.and_then(|ip| ip.parse().ok());
    ObservedStatus {
        ready: ready && ip.is_some(),
        ingress: ip
            .map(|ip| {
                vec![IngressPoint {
                    ip: Some(ip),
                    hostname: None,
                    ports,
                }]
            })
            .unwrap_or_default(),
    }
}

/// Zones whose class group the backend service links to now (to find
/// groups that lose their last node).
async fn attached_zones(cx: &Cx<'_>, w: &Wanted) -> Result<BTreeSet<String>, ProviderError> {
    let api = cx.api;
    let bs: Option<BackendService> = get(cx, "regionBackendServices.get", || {
        api.clients
            .region_backend_services
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_backend_service(w.backend.clone())
            .send()
    })
    .await?;
    Ok(bs
        .filter(|b| cx.owns(b.description.as_deref()))
        .map(|b| {
            b.backends
                .iter()
                .filter_map(|x| {
                    let g = x.group.as_deref()?;
                    let zone = g.split("/zones/").nth(1)?.split('/').next()?;
                    Some(zone.to_string())
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The reserved address's IP (created now unless dry), or the requested IP.
async fn ensure_address(cx: &Cx<'_>, w: &Wanted) -> Result<Option<String>, ProviderError> {
    if let Some(ip) = &w.requested_ip {
        return Ok(Some(ip.clone()));
    }
    let api = cx.api;
    let name = w.address.clone();
    let get_address = || {
        api.clients
            .addresses
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_address(name.clone())
            .send()
    };
    if let Some(a) = get(cx, "addresses.get", get_address).await? {
        return owned_ip(cx, &name, a);
    }
    let body = Address::new()
        .set_name(name.clone())
        .set_description(cx.description(role::ADDRESS))
        .set_labels(labels::labels(cx.owner, cx.class))
        .set_address_type(match w.scheme {
            Scheme::InternetFacing => AddressType::External,
            Scheme::Internal => AddressType::Internal,
        });
    let id = request_id();
    let created = cx
        .write(
            "addresses.insert",
            change(Action::Create, "address", &name, "reserve"),
            || {
                api.clients
                    .addresses
                    .insert()
                    .set_project(cx.project())
                    .set_region(cx.region())
                    .set_request_id(id.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await;
    match created {
        Ok(()) if cx.dry => Ok(None),
        Ok(()) => owned_ip(cx, &name, api.call("addresses.get", get_address).await?),
        Err(e) if e.is_already_exists() => {
            owned_ip(cx, &name, api.call("addresses.get", get_address).await?)
        }
        Err(e) => Err(e.into()),
    }
}

fn owned_ip(cx: &Cx<'_>, name: &str, a: Address) -> Result<Option<String>, ProviderError> {
    if !cx.owns(a.description.as_deref()) {
        return Err(cx.not_owned("address", name));
    }
    Ok(a.address)
}

fn rule_protocol(p: Protocol) -> IPProtocol {
    match p {
        Protocol::Tcp => IPProtocol::Tcp,
        Protocol::Udp => IPProtocol::Udp,
    }
}

fn rule_body(cx: &Cx<'_>, w: &Wanted, r: &Rule, ip: Option<&str>) -> ForwardingRule {
    let mut fr = ForwardingRule::new()
        .set_name(r.name.clone())
        .set_description(cx.description(&role::forwarding_rule(r.protocol.as_str())))
        .set_labels(labels::labels(cx.owner, cx.class))
        .set_or_clear_ip_address(ip.map(str::to_string))
        .set_ip_protocol(rule_protocol(r.protocol))
        .set_ports(r.port_list())
        .set_or_clear_port_range(r.port_range())
        .set_load_balancing_scheme(match w.scheme {
            Scheme::InternetFacing => LoadBalancingScheme::External,
            Scheme::Internal => LoadBalancingScheme::Internal,
        });
    if w.target_pool {
        fr = fr.set_target(backend_link(cx, w));
    } else {
        fr = fr.set_backend_service(backend_link(cx, w));
    }
    if w.scheme == Scheme::Internal {
        fr = fr.set_network(format!("{}/networks/{}", cx.api.global_path(), w.network));
    }
    fr
}

/// Whether an existing rule already is what `want` describes.
fn rule_matches(have: &ForwardingRule, want: &ForwardingRule) -> bool {
    let link = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => same_link(a, b),
        (None, None) => true,
        _ => false,
    };
    let ports = |f: &ForwardingRule| -> (BTreeSet<String>, Option<String>) {
        (f.ports.iter().cloned().collect(), f.port_range.clone())
    };
    // `portRange` `80` comes back as `80-80`; lists are compared as sets.
    let (hp, hr) = ports(have);
    let (wp, wr) = ports(want);
    let range_same = match (hr.as_deref(), wr.as_deref()) {
        (None, None) => true,
        (Some(h), Some(w)) => h == w || h == format!("{w}-{w}"),
        // The list form may be answered with a range as well.
        (Some(_), None) => wr.is_none() && !wp.is_empty(),
        (None, Some(_)) => false,
    };
    (want.ip_address.is_none() || have.ip_address == want.ip_address)
        && have.ip_protocol == want.ip_protocol
        && hp == wp
        && range_same
        && link(&have.backend_service, &want.backend_service)
        && link(&have.target, &want.target)
        && have.load_balancing_scheme == want.load_balancing_scheme
}

/// One rule per protocol; the address they serve on.
async fn ensure_rules(
    cx: &Cx<'_>,
    w: &Wanted,
    ip: Option<&str>,
) -> Result<Option<String>, ProviderError> {
    let api = cx.api;
    let mut served = ip.map(str::to_string);
    for r in &w.rules {
        let name = r.name.clone();
        let have = get_rule(cx, &name).await?;
        let want = rule_body(cx, w, r, ip);
        if let Some(h) = &have {
            if !cx.owns(h.description.as_deref()) {
                return Err(cx.not_owned("forwarding-rule", &name));
            }
            if rule_matches(h, &want) {
                served = served.or_else(|| h.ip_address.clone());
                continue;
            }
            delete_rule(cx, &name, "replace: address, ports or target changed").await?;
        }
        let id = request_id();
        let ports = r
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        cx.write(
            "forwardingRules.insert",
            change(
                Action::Create,
                "forwarding-rule",
                &name,
                format!("{} {ports}", r.protocol.as_str()),
            ),
            || {
                api.clients
                    .forwarding_rules
                    .insert()
                    .set_project(cx.project())
                    .set_region(cx.region())
                    .set_request_id(id.clone())
                    .set_body(want.clone())
                    .send()
            },
        )
        .await?;
        if !cx.dry && served.is_none() {
            served = get_rule(cx, &name).await?.and_then(|f| f.ip_address);
        }
    }
    for name in &w.unused_rules {
        if let Some(h) = get_rule(cx, name).await?
            && cx.owns(h.description.as_deref())
        {
            delete_rule(cx, name, "protocol no longer served").await?;
        }
    }
    Ok(served)
}

async fn get_rule(cx: &Cx<'_>, name: &str) -> Result<Option<ForwardingRule>, ProviderError> {
    let api = cx.api;
    get(cx, "forwardingRules.get", || {
        api.clients
            .forwarding_rules
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_forwarding_rule(name)
            .send()
    })
    .await
}

/// Delete one of our rules; absent is done.
pub async fn delete_rule(cx: &Cx<'_>, name: &str, why: &str) -> Result<(), ProviderError> {
    let api = cx.api;
    let id = request_id();
    match cx
        .write(
            "forwardingRules.delete",
            change(Action::Delete, "forwarding-rule", name, why),
            || {
                api.clients
                    .forwarding_rules
                    .delete()
                    .set_project(cx.project())
                    .set_region(cx.region())
                    .set_forwarding_rule(name)
                    .set_request_id(id.clone())
                    .send()
            },
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn firewall_body(cx: &Cx<'_>, w: &Wanted) -> Firewall {
    Firewall::new()
        .set_name(w.firewall.clone())
        .set_description(cx.description(role::FIREWALL))
        .set_network(format!("{}/networks/{}", cx.api.global_path(), w.network))
        .set_source_ranges(w.source_ranges.iter().cloned())
        .set_allowed(w.firewall_ports.iter().map(|(proto, ports)| {
            Allowed::new()
                .set_ip_protocol(*proto)
                .set_ports(ports.iter().map(u16::to_string))
        }))
}

fn firewall_matches(have: &Firewall, want: &Firewall) -> bool {
    let allowed = |f: &Firewall| -> BTreeMap<String, BTreeSet<String>> {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for a in &f.allowed {
            m.entry(a.ip_protocol.clone().unwrap_or_default())
                .or_default()
                .extend(a.ports.iter().cloned());
        }
        m
    };
    let ranges = |f: &Firewall| -> BTreeSet<String> { f.source_ranges.iter().cloned().collect() };
    allowed(have) == allowed(want)
        && ranges(have) == ranges(want)
        && match (&have.network, &want.network) {
            (Some(a), Some(b)) => same_link(a, b),
            _ => false,
        }
}

async fn ensure_firewall(cx: &Cx<'_>, w: &Wanted) -> Result<(), ProviderError> {
    let api = cx.api;
    let name = w.firewall.clone();
    let have = get(cx, "firewalls.get", || {
        api.clients
            .firewalls
            .get()
            .set_project(cx.project())
            .set_firewall(name.clone())
            .send()
    })
    .await?;
    let want = firewall_body(cx, w);
    let detail = format!(
        "{} from {}",
        w.firewall_ports
            .iter()
            .map(|(p, ports)| format!(
                "{p}:{}",
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .collect::<Vec<_>>()
            .join(" "),
        w.source_ranges
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    );
    let id = request_id();
    match have {
        Some(h) if !cx.owns(h.description.as_deref()) => Err(cx.not_owned("firewall", &name)),
        Some(h) if firewall_matches(&h, &want) => Ok(()),
        Some(_) => Ok(cx
            .write(
                "firewalls.patch",
                change(Action::Update, "firewall", &name, detail),
                || {
                    api.clients
                        .firewalls
                        .patch()
                        .set_project(cx.project())
                        .set_firewall(name.clone())
                        .set_request_id(id.clone())
                        .set_body(want.clone())
                        .send()
                },
            )
            .await?),
        None => Ok(cx
            .write(
                "firewalls.insert",
                change(Action::Create, "firewall", &name, detail),
                || {
                    api.clients
                        .firewalls
                        .insert()
                        .set_project(cx.project())
                        .set_request_id(id.clone())
                        .set_body(want.clone())
                        .send()
                },
            )
            .await?),
    }
}

/// Remove what `w` no longer uses: the other form's backend and check, the
/// reserved address when an address is requested, and groups of zones
/// that lost their last node.
async fn cleanup(
    cx: &Cx<'_>,
    w: &Wanted,
    old_zones: &BTreeSet<String>,
) -> Result<(), ProviderError> {
    let name = |r: &str| crate::names::name(cx.owner, cx.class, r);
    if w.target_pool {
        super::teardown::delete_backend_service(cx, &name(role::BACKEND_SERVICE)).await?;
        super::teardown::delete_regional_check(cx, &name(role::HEALTH_CHECK)).await?;
    } else {
        super::teardown::delete_target_pool(cx, &name(role::TARGET_POOL)).await?;
        super::teardown::delete_legacy_check(cx, &name(role::HTTP_HEALTH_CHECK)).await?;
        let gone: BTreeSet<String> = old_zones
            .iter()
            .filter(|z| !w.zones.contains_key(*z))
            .cloned()
            .collect();
        if !gone.is_empty() {
            groups::release_unused(cx, Some(&gone)).await?;
        }
    }
    if w.requested_ip.is_some() {
        super::teardown::delete_address(cx, &w.address).await?;
    }
    Ok(())
}
