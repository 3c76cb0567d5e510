//! Teardown of an Ingress balancer, in dependency order: forwarding rules,
//! proxies, URL maps, backend services, health checks, certificates, the
//! firewall rule, the address, and last the class's instance groups if nothing uses them any
//! more. Resources are found by listing each global collection and keeping
//! those whose description names this owner, so a half-made chain (after a
//! crash) goes too; every step treats `404` as done, so a replay after a
//! crash at any point finishes the job.

use gantry_model::{Owner, OwnerKind, ProviderError, provider::Action};
use google_cloud_compute_v1::model::{
    AddressList, BackendServiceList, FirewallList, ForwardingRuleList, HealthCheckList,
    SslCertificateList, TargetHttpProxyList, TargetHttpsProxyList, UrlMapList,
};

use super::{cx::Cx, groups};
use crate::{
    api::{Api, request_id},
    labels,
};

/// Names and descriptions of every item of one global collection.
macro_rules! list {
    ($api:expr, $list:ty, $client:ident, $op:literal) => {{
        let api: &Api = $api;
        api.list_all::<$list, _, _>($op, |token| {
            api.clients
                .$client
                .list()
                .set_project(api.project.clone())
                .set_page_token(token)
                .send()
        })
        .await?
        .into_iter()
        .filter_map(|item| Some((item.name?, item.description)))
        .collect::<Vec<(String, Option<String>)>>()
    }};
}

/// Delete every item of this owner in one global collection.
macro_rules! delete_owned {
    ($cx:expr, $list:ty, $client:ident, $setter:ident, $resource:literal, $list_op:literal, $op:literal) => {{
        let cx: &Cx<'_> = $cx;
        let api = cx.api;
        let mut found = 0usize;
        for (name, description) in list!(api, $list, $client, $list_op) {
            if !cx.owns(description.as_deref()) {
                continue;
            }
            found += 1;
            let rid = request_id();
            cx.write(Action::Delete, ($resource, &name), "teardown", $op, || {
                api.clients
                    .$client
                    .delete()
                    .set_project(api.project.clone())
                    .$setter(&name)
                    .set_request_id(rid.clone())
                    .send()
            })
            .await?;
        }
        found
    }};
}

/// Delete everything of `cx.owner`; whether anything of it was found.
pub async fn delete(cx: &Cx<'_>) -> Result<bool, ProviderError> {
    let mut found = 0;
    found += delete_owned!(
        cx,
        ForwardingRuleList,
        global_forwarding_rules,
        set_forwarding_rule,
        "forwarding-rule",
        "globalForwardingRules.list",
        "globalForwardingRules.delete"
    );
    found += delete_owned!(
        cx,
        TargetHttpProxyList,
        target_http_proxies,
        set_target_http_proxy,
        "target-http-proxy",
        "targetHttpProxies.list",
        "targetHttpProxies.delete"
    );
    found += delete_owned!(
        cx,
        TargetHttpsProxyList,
        target_https_proxies,
        set_target_https_proxy,
        "target-https-proxy",
        "targetHttpsProxies.list",
        "targetHttpsProxies.delete"
    );
    found += delete_owned!(
        cx,
        UrlMapList,
        url_maps,
        set_url_map,
        "url-map",
        "urlMaps.list",
        "urlMaps.delete"
    );
    found += delete_owned!(
        cx,
        BackendServiceList,
        backend_services,
        set_backend_service,
        "backend-service",
        "backendServices.list",
        "backendServices.delete"
    );
    found += delete_owned!(
        cx,
        HealthCheckList,
        health_checks,
        set_health_check,
        "health-check",
        "healthChecks.list",
        "healthChecks.delete"
    );
    found += delete_owned!(
        cx,
        SslCertificateList,
        ssl_certificates,
        set_ssl_certificate,
        "ssl-certificate",
        "sslCertificates.list",
        "sslCertificates.delete"
    );
    found += delete_owned!(
        cx,
        FirewallList,
        firewalls,
        set_firewall,
        "firewall",
        "firewalls.list",
        "firewalls.delete"
    );
    found += delete_owned!(
        cx,
        AddressList,
        global_addresses,
        set_address,
        "address",
        "globalAddresses.list",
        "globalAddresses.delete"
    );
    groups::release_unused(cx).await?;
    Ok(found > 0)
}

/// Owners of Ingress balancers of `cluster_id` in `class`.
pub async fn list_owned(
    api: &Api,
    cluster_id: &str,
    class: &str,
) -> Result<Vec<Owner>, ProviderError> {
    let mut owners: Vec<Owner> = Vec::new();
    let mut keep = |description: Option<String>| {
        if let Some(o) = labels::owner_of(description.as_deref(), cluster_id, class)
            && o.kind == OwnerKind::Ingress
            && !owners.contains(&o)
        {
            owners.push(o);
        }
    };
    for (_, d) in list!(
        api,
        ForwardingRuleList,
        global_forwarding_rules,
        "globalForwardingRules.list"
    ) {
        keep(d);
    }
    for (_, d) in list!(api, UrlMapList, url_maps, "urlMaps.list") {
        keep(d);
    }
    for (_, d) in list!(
        api,
        BackendServiceList,
        backend_services,
        "backendServices.list"
    ) {
        keep(d);
    }
    Ok(owners)
}
