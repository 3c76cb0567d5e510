//! Deleting one owner's balancer in dependency order (listeners, balancer,
//! target groups, security group, imported certificates), and finding every owner this class holds
//! resources for.
//! Target groups are found by their tags rather than by name, so groups
//! orphaned by a crash or by an earlier port layout go too.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{
    Owner, ProviderError,
    identity::{TAG_CLASS, TAG_CLUSTER},
};

use crate::{
    api::{Api, Budget},
    ensure::{delete_listener, delete_target_group},
    error::has_code,
    observe::{balancer, forward_target, tags},
    slot::Slot,
};

/// ARN and name of every target group in the account and region.
async fn all_target_groups(api: &Api) -> Result<Vec<(String, String)>, ProviderError> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = api
            .call(
                "DescribeTargetGroups",
                Budget::General,
                api.elb
                    .describe_target_groups()
                    .set_marker(marker.take())
                    .page_size(400)
                    .send(),
            )
            .await?;
        for tg in page.target_groups() {
            if let (Some(arn), Some(name)) = (tg.target_group_arn(), tg.target_group_name()) {
                out.push((arn.to_string(), name.to_string()));
            }
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(out),
        }
    }
}

/// ARN of every load balancer in the account and region.
async fn all_balancers(api: &Api) -> Result<Vec<String>, ProviderError> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = api
            .call(
                "DescribeLoadBalancers",
                Budget::General,
                api.elb
                    .describe_load_balancers()
                    .set_marker(marker.take())
                    .page_size(400)
                    .send(),
            )
            .await?;
        out.extend(
            page.load_balancers()
                .iter()
                .filter_map(|lb| lb.load_balancer_arn().map(str::to_string)),
        );
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => return Ok(out),
        }
    }
}

/// Remove the balancer `name` of `owner` (listeners first) and the target
/// groups it uses; whether it existed. A balancer with our name but foreign
/// tags is left alone.
pub(crate) async fn delete_balancer(
    api: &Api,
    owner: &Owner,
    class: &str,
    name: &str,
) -> Result<bool, ProviderError> {
    let Some(lb) = balancer(api, name).await? else {
        return Ok(false);
    };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let lb_tags = tags(api, std::slice::from_ref(&arn)).await?;
    if !lb_tags.get(&arn).is_some_and(|t| owner.owns(class, t)) {
        tracing::warn!(%owner, name, "a load balancer with our name is not ours; leaving it");
        return Ok(false);
    }
    let listeners = api
        .call(
            "DescribeListeners",
            Budget::General,
            api.elb.describe_listeners().load_balancer_arn(&arn).send(),
        )
        .await?;
    // The groups it uses, read before the listeners and rules naming them go.
    let mut used: BTreeSet<String> = BTreeSet::new();
    for l in listeners.listeners() {
        used.extend(forward_target(l.default_actions()));
        if let Some(larn) = l.listener_arn() {
            let rules = api
                .call(
                    "DescribeRules",
                    Budget::General,
                    api.elb.describe_rules().listener_arn(larn).send(),
                )
                .await?;
            used.extend(
                rules
                    .rules()
                    .iter()
                    .filter_map(|r| forward_target(r.actions())),
            );
        }
    }
    for l in listeners.listeners() {
        if let Some(larn) = l.listener_arn() {
            delete_listener(api, larn).await?;
        }
    }
    let op = "DeleteLoadBalancer";
    match api
        .raw(
            op,
            Budget::General,
            api.elb
                .delete_load_balancer()
                .load_balancer_arn(&arn)
                .send(),
        )
        .await?
    {
        Ok(_) => {}
        Err(e) if has_code(&e, "LoadBalancerNotFound") => {}
        Err(e) if has_code(&e, "OperationNotPermitted") => {
            return Err(ProviderError::DeletionRefused {
                message: format!("load balancer {name} has deletion protection on"),
            });
        }
        Err(e) => return Err(crate::error::classify(op, e)),
    }
    let used: Vec<String> = used.into_iter().collect();
    if !used.is_empty() {
        let group_tags = tags(api, &used).await?;
        for tg in &used {
            if group_tags.get(tg).is_some_and(|t| owner.owns(class, t)) {
                delete_target_group(api, tg).await?;
            }
        }
    }
    Ok(true)
}

/// Remove everything of `owner` in `class`: the balancer in either name
/// slot, every target group tagged for it, its security group and its
/// imported certificates, in that order.
pub(crate) async fn delete(
    api: &Api,
    owner: &Owner,
    class: &str,
    role: &str,
) -> Result<bool, ProviderError> {
    let mut deleted = false;
    for slot in [Slot::A, Slot::B] {
        deleted |= delete_balancer(api, owner, class, &slot.name(owner, class, role)).await?;
    }
    let groups = all_target_groups(api).await?;
    let arns: Vec<String> = groups.iter().map(|(a, _)| a.clone()).collect();
    let group_tags = tags(api, &arns).await?;
    for (arn, _) in &groups {
        if group_tags.get(arn).is_some_and(|t| owner.owns(class, t)) {
            delete_target_group(api, arn).await?;
            deleted = true;
        }
    }
    // Last: the group may be held by the balancer's network interfaces for
    // a while after its deletion (a transient error; the replay finishes).
    if crate::security_group::delete_owned(api, owner, class).await? {
        deleted = true;
    }
    // Only Ingresses import certificates; a Service's delete skips the scan.
    if owner.kind == gantry_model::OwnerKind::Ingress {
        let certs: Vec<String> = crate::certificate::owned(api, owner, class)
            .await?
            .into_iter()
            .map(|(arn, _)| arn)
            .collect();
        crate::certificate::delete(api, &certs).await?;
        deleted |= !certs.is_empty();
    }
    Ok(deleted)
}

/// Owners of every balancer or target group tagged for `cluster_id` and `class`.
pub(crate) async fn list_owned(
    api: &Api,
    cluster_id: &str,
    class: &str,
) -> Result<Vec<Owner>, ProviderError> {
    let mut arns = all_balancers(api).await?;
    arns.extend(all_target_groups(api).await?.into_iter().map(|(a, _)| a));
    let all: BTreeMap<String, BTreeMap<String, String>> = tags(api, &arns).await?;
    let groups = crate::security_group::tagged(api, cluster_id, class).await?;
    let owners: BTreeSet<Owner> = all
        .values()
        .chain(groups.iter())
        .filter(|t| {
            t.get(TAG_CLASS).map(String::as_str) == Some(class)
                && t.get(TAG_CLUSTER).map(String::as_str) == Some(cluster_id)
        })
        .filter_map(Owner::from_tags)
        .collect();
    Ok(owners.into_iter().collect())
}
