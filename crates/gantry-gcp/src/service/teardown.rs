//! Removing a Service balancer, in dependency order (forwarding rules,
//! backend service or target pool, health checks, the class's instance
//! groups nothing uses any more, firewall rule, address), every step safe to
//! replay: an absent resource is done, and a resource with our name but
//! another owner's description is left alone. Also the search for every
//! Service owner that has resources in the class, for garbage collection.

use std::collections::BTreeSet;

use gantry_model::{Owner, OwnerKind, ProviderError, provider::Action};
use google_cloud_compute_v1::model::{
    AddressList, BackendServiceList, FirewallList, ForwardingRuleList, HealthCheckList,
    HttpHealthCheckList, TargetPoolList,
};

use super::{
    backend::get,
    cx::{Cx, change},
    groups,
};
use crate::{
    api::{Api, request_id},
    labels, names,
    names::role,
};

/// Delete every resource of the Service `cx.owner`; whether there was any.
pub async fn delete(cx: &Cx<'_>) -> Result<bool, ProviderError> {
    let name = |r: &str| names::name(cx.owner, cx.class, r);
    let mut any = false;
    for p in ["TCP", "UDP"] {
        any |= delete_rule_if_ours(cx, &name(&role::forwarding_rule(p))).await?;
    }
    any |= delete_backend_service(cx, &name(role::BACKEND_SERVICE)).await?;
    any |= delete_target_pool(cx, &name(role::TARGET_POOL)).await?;
    any |= delete_regional_check(cx, &name(role::HEALTH_CHECK)).await?;
    any |= delete_legacy_check(cx, &name(role::HTTP_HEALTH_CHECK)).await?;
    if any {
        // Only when this Service had a backend: the class's groups are
        // shared, and one that another balancer uses is refused by Compute
        // Engine and kept.
        groups::release_unused(cx, None).await?;
    }
    any |= delete_firewall(cx, &name(role::FIREWALL)).await?;
    any |= delete_address(cx, &name(role::ADDRESS)).await?;
    Ok(any)
}

/// Delete one resource after checking, with `read`, that it is ours.
macro_rules! delete_owned {
    ($cx:expr, $resource:literal, $get_op:literal, $del_op:literal, $name:expr, $read:expr, $del:expr) => {{
        let cx: &Cx<'_> = $cx;
        let name: &str = $name;
        match get(cx, $get_op, $read).await? {
            None => Ok(false),
            Some(r) if !cx.owns(r.description.as_deref()) => {
                tracing::warn!(resource = $resource, name, "Not Gantry's; left alone");
                Ok(false)
            }
            Some(_) => {
                match cx
                    .write($del_op, change(Action::Delete, $resource, name, ""), $del)
                    .await
                {
                    Ok(()) => Ok(true),
                    Err(e) if e.is_not_found() => Ok(true),
                    Err(e) => Err(ProviderError::from(e)),
                }
            }
        }
    }};
}

async fn delete_rule_if_ours(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "forwarding-rule",
        "forwardingRules.get",
        "forwardingRules.delete",
        name,
        || api
            .clients
            .forwarding_rules
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_forwarding_rule(name)
            .send(),
        || api
            .clients
            .forwarding_rules
            .delete()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_forwarding_rule(name)
            .set_request_id(id.clone())
            .send()
    )
}

/// Delete the owner's backend service if it exists and is ours.
pub async fn delete_backend_service(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "backend-service",
        "regionBackendServices.get",
        "regionBackendServices.delete",
        name,
        || api
            .clients
            .region_backend_services
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_backend_service(name)
            .send(),
        || api
            .clients
            .region_backend_services
            .delete()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_backend_service(name)
            .set_request_id(id.clone())
            .send()
    )
}

/// Delete the owner's target pool if it exists and is ours.
pub async fn delete_target_pool(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "target-pool",
        "targetPools.get",
        "targetPools.delete",
        name,
        || api
            .clients
            .target_pools
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_target_pool(name)
            .send(),
        || api
            .clients
            .target_pools
            .delete()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_target_pool(name)
            .set_request_id(id.clone())
            .send()
    )
}

/// Delete the owner's regional health check if it exists and is ours.
pub async fn delete_regional_check(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "health-check",
        "regionHealthChecks.get",
        "regionHealthChecks.delete",
        name,
        || api
            .clients
            .region_health_checks
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_health_check(name)
            .send(),
        || api
            .clients
            .region_health_checks
            .delete()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_health_check(name)
            .set_request_id(id.clone())
            .send()
    )
}

/// Delete the owner's legacy HTTP health check if it exists and is ours.
pub async fn delete_legacy_check(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "http-health-check",
        "httpHealthChecks.get",
        "httpHealthChecks.delete",
        name,
        || api
            .clients
            .http_health_checks
            .get()
            .set_project(cx.project())
            .set_http_health_check(name)
            .send(),
        || api
            .clients
            .http_health_checks
            .delete()
            .set_project(cx.project())
            .set_http_health_check(name)
            .set_request_id(id.clone())
            .send()
    )
}

async fn delete_firewall(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "firewall",
        "firewalls.get",
        "firewalls.delete",
        name,
        || api
            .clients
            .firewalls
            .get()
            .set_project(cx.project())
            .set_firewall(name)
            .send(),
        || api
            .clients
            .firewalls
            .delete()
            .set_project(cx.project())
            .set_firewall(name)
            .set_request_id(id.clone())
            .send()
    )
}

/// Delete the owner's reserved address if it exists and is ours.
pub async fn delete_address(cx: &Cx<'_>, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let id = request_id();
    delete_owned!(
        cx,
        "address",
        "addresses.get",
        "addresses.delete",
        name,
        || api
            .clients
            .addresses
            .get()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_address(name)
            .send(),
        || api
            .clients
            .addresses
            .delete()
            .set_project(cx.project())
            .set_region(cx.region())
            .set_address(name)
            .set_request_id(id.clone())
            .send()
    )
}

/// Every Service owner with a resource of Gantry's for `cluster_id` in `class`.
pub async fn list_owned(
    api: &Api,
    class: &str,
    cluster_id: &str,
) -> Result<Vec<Owner>, ProviderError> {
    let (p, r) = (api.project.clone(), api.region.clone());
    let mut descriptions: Vec<Option<String>> = Vec::new();
    macro_rules! collect {
        ($list:ty, $op:literal, $client:ident, regional) => {{
            let items = api
                .list_all::<$list, _, _>($op, |token| {
                    api.clients
                        .$client
                        .list()
                        .set_project(p.clone())
                        .set_region(r.clone())
                        .set_page_token(token)
                        .send()
                })
                .await?;
            descriptions.extend(items.into_iter().map(|i| i.description));
        }};
        ($list:ty, $op:literal, $client:ident, global) => {{
            let items = api
                .list_all::<$list, _, _>($op, |token| {
                    api.clients
                        .$client
                        .list()
                        .set_project(p.clone())
                        .set_page_token(token)
                        .send()
                })
                .await?;
            descriptions.extend(items.into_iter().map(|i| i.description));
        }};
    }
    collect!(
        ForwardingRuleList,
        "forwardingRules.list",
        forwarding_rules,
        regional
    );
    collect!(AddressList, "addresses.list", addresses, regional);
    collect!(
        BackendServiceList,
        "regionBackendServices.list",
        region_backend_services,
        regional
    );
    collect!(TargetPoolList, "targetPools.list", target_pools, regional);
    collect!(
        HealthCheckList,
        "regionHealthChecks.list",
        region_health_checks,
        regional
    );
    collect!(
        HttpHealthCheckList,
        "httpHealthChecks.list",
        http_health_checks,
        global
    );
    collect!(FirewallList, "firewalls.list", firewalls, global);
    let owners: BTreeSet<Owner> = descriptions
        .iter()
        .filter_map(|d| labels::owner_of(d.as_deref(), cluster_id, class))
        .filter(|o| o.kind == OwnerKind::Service)
        .collect();
    Ok(owners.into_iter().collect())
}
