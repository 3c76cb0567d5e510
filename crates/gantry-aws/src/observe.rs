//! Reading what AWS holds for one owner: the balancer by its deterministic
//! name, its listeners, and its target groups with their targets. Anything
//! found under our names must carry our ownership tags, or the read stops
//! with [`ProviderError::NotOwned`] before any write can happen.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, LoadBalancer, LoadBalancerStateEnum, TargetGroup,
};
use gantry_model::{Owner, ProviderError};

use crate::{
    api::{Api, Budget},
    error::has_code,
    nlb::{Health, Observed, ObservedListener, ObservedTg},
};

/// Most ARNs `DescribeTags` takes in one call.
const TAG_BATCH: usize = 20;

/// The balancer named `name`, if it exists.
pub(crate) async fn balancer(api: &Api, name: &str) -> Result<Option<LoadBalancer>, ProviderError> {
    let op = "DescribeLoadBalancers";
    match api
        .raw(
            op,
            Budget::General,
            api.elb.describe_load_balancers().names(name).send(),
        )
        .await?
    {
        Ok(out) => Ok(out.load_balancers().first().cloned()),
        Err(e) if has_code(&e, "LoadBalancerNotFound") => Ok(None),
        Err(e) => Err(crate::error::classify(op, e)),
    }
}

/// The target group named `name`, if it exists.
async fn target_group_by_name(api: &Api, name: &str) -> Result<Option<TargetGroup>, ProviderError> {
    let op = "DescribeTargetGroups";
    match api
        .raw(
            op,
            Budget::General,
            api.elb.describe_target_groups().names(name).send(),
        )
        .await?
    {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e) if has_code(&e, "TargetGroupNotFound") => Ok(None),
        Err(e) => Err(crate::error::classify(op, e)),
    }
}

/// Tags of each ARN, in batches of 20.
pub(crate) async fn tags(
    api: &Api,
    arns: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, ProviderError> {
    let mut all = BTreeMap::new();
    for chunk in arns.chunks(TAG_BATCH) {
        let out = api
            .call(
                "DescribeTags",
                Budget::General,
                api.elb
                    .describe_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .send(),
            )
            .await?;
        for desc in out.tag_descriptions() {
            let Some(arn) = desc.resource_arn() else {
                continue;
            };
            let map = desc
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
                .collect();
            all.insert(arn.to_string(), map);
        }
    }
    Ok(all)
}

/// The target group a forward action sends to.
pub(crate) fn forward_target(actions: &[Action]) -> Option<String> {
    let action = actions.first()?;
    action.target_group_arn().map(str::to_string).or_else(|| {
        action
            .forward_config()?
            .target_groups()
            .first()?
            .target_group_arn()
            .map(str::to_string)
    })
}

/// Whether a balancer has finished provisioning.
pub(crate) fn is_active(lb: &LoadBalancer) -> bool {
    lb.state().and_then(|s| s.code()) == Some(&LoadBalancerStateEnum::Active)
}

/// Everything AWS holds for this owner's NLB.
pub(crate) struct Snapshot {
    /// The diffable view.
    pub(crate) observed: Observed,
    /// The balancer itself.
    pub(crate) balancer: Option<LoadBalancer>,
}

/// Read the balancer `name` and target groups `wanted_tgs` (plus those the
/// balancer's listeners use), proving each ours.
pub(crate) async fn snapshot(
    api: &Api,
    owner: &Owner,
    class: &str,
    name: &str,
    wanted_tgs: impl Iterator<Item = &String>,
) -> Result<Snapshot, ProviderError> {
    let mut observed = Observed::default();
    let lb = balancer(api, name).await?;
    let mut groups: BTreeMap<String, TargetGroup> = BTreeMap::new();
    if let Some(lb) = &lb {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let lb_tags = tags(api, std::slice::from_ref(&arn)).await?;
        if !lb_tags.get(&arn).is_some_and(|t| owner.owns(class, t)) {
            return Err(ProviderError::NotOwned {
                resource: "load-balancer",
                name: name.to_string(),
                owner: owner.clone(),
            });
        }
        observed.balancer = Some((arn.clone(), lb.dns_name().unwrap_or_default().to_string()));
        let listeners = api
            .call(
                "DescribeListeners",
                Budget::General,
                api.elb.describe_listeners().load_balancer_arn(&arn).send(),
            )
            .await?;
        for l in listeners.listeners() {
            let (Some(larn), Some(port)) = (l.listener_arn(), l.port()) else {
                continue;
            };
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            observed.listeners.insert(
                port,
                ObservedListener {
                    arn: larn.to_string(),
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    target_group_arn: forward_target(l.default_actions()),
                    default_type: l
                        .default_actions()
                        .first()
                        .and_then(|a| a.r#type())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    certificate: l
                        .certificates()
                        .first()
                        .and_then(|c| c.certificate_arn())
                        .map(str::to_string),
                },
            );
        }
        let attached = api
            .call(
                "DescribeTargetGroups",
                Budget::General,
                api.elb
                    .describe_target_groups()
                    .load_balancer_arn(&arn)
                    .send(),
            )
            .await?;
        for tg in attached.target_groups() {
            if let Some(n) = tg.target_group_name() {
                groups.insert(n.to_string(), tg.clone());
            }
        }
        // Groups the listeners forward to, in case the attachment list lags.
        let known: BTreeSet<&str> = groups
            .values()
            .filter_map(|t| t.target_group_arn())
            .collect();
        let referenced: Vec<String> = observed
            .listeners
            .values()
            .filter_map(|l| l.target_group_arn.clone())
            .filter(|a| !known.contains(a.as_str()))
            .collect();
        if !referenced.is_empty() {
            let more = api
                .call(
                    "DescribeTargetGroups",
                    Budget::General,
                    api.elb
                        .describe_target_groups()
                        .set_target_group_arns(Some(referenced))
                        .send(),
                )
                .await?;
            for tg in more.target_groups() {
                if let Some(n) = tg.target_group_name() {
                    groups.insert(n.to_string(), tg.clone());
                }
            }
        }
    }
    for n in wanted_tgs {
        if groups.contains_key(n) {
            continue;
        }
        if let Some(tg) = target_group_by_name(api, n).await? {
            groups.insert(n.clone(), tg);
        }
    }
    let arns: Vec<String> = groups
        .values()
        .filter_map(|t| t.target_group_arn().map(str::to_string))
        .collect();
    let tg_tags = if arns.is_empty() {
        BTreeMap::new()
    } else {
        tags(api, &arns).await?
    };
    for (n, tg) in &groups {
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        if !tg_tags.get(&arn).is_some_and(|t| owner.owns(class, t)) {
            return Err(ProviderError::NotOwned {
                resource: "target-group",
                name: n.clone(),
                owner: owner.clone(),
            });
        }
        let health = api
            .call(
                "DescribeTargetHealth",
                Budget::General,
                api.elb
                    .describe_target_health()
                    .target_group_arn(&arn)
                    .send(),
            )
            .await?;
        let targets: BTreeSet<(String, u16)> = health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let t = d.target()?;
                let port = u16::try_from(t.port()?).ok()?;
                Some((t.id()?.to_string(), port))
            })
            .collect();
        observed.target_groups.insert(
            n.clone(),
            ObservedTg {
                arn,
                health: Health {
                    protocol: match tg.health_check_protocol().map(|p| p.as_str()) {
                        Some("HTTP") => "HTTP",
                        Some("HTTPS") => "HTTPS",
                        _ => "TCP",
                    },
                    port: tg.health_check_port().unwrap_or("traffic-port").to_string(),
                    path: tg
                        .health_check_path()
                        .filter(|_| tg.health_check_protocol().map(|p| p.as_str()) != Some("TCP"))
                        .map(str::to_string),
                },
                targets,
            },
        );
    }
    Ok(Snapshot {
        observed,
        balancer: lb,
    })
}

/// Attribute keys of NLBs and their target groups.
const CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";
const PROXY_V2: &str = "proxy_protocol_v2.enabled";

/// Read the NLB attributes Gantry manages: PROXY protocol v2 of every
/// target group, and cross-zone of the balancer when `cross_zone` is asked.
pub(crate) async fn nlb_attributes(
    api: &Api,
    observed: &mut crate::nlb::Observed,
    cross_zone: bool,
) -> Result<(), ProviderError> {
    if cross_zone && let Some((arn, _)) = &observed.balancer {
        let out = api
            .call(
                "DescribeLoadBalancerAttributes",
                Budget::General,
                api.elb
                    .describe_load_balancer_attributes()
                    .load_balancer_arn(arn)
                    .send(),
            )
            .await?;
        observed.cross_zone = out
            .attributes()
            .iter()
            .find(|a| a.key() == Some(CROSS_ZONE))
            .map(|a| a.value() == Some("true"));
    }
    let groups: Vec<(String, String)> = observed
        .target_groups
        .iter()
        .map(|(n, t)| (n.clone(), t.arn.clone()))
        .collect();
    for (name, arn) in groups {
        let out = api
            .call(
                "DescribeTargetGroupAttributes",
                Budget::General,
                api.elb
                    .describe_target_group_attributes()
                    .target_group_arn(&arn)
                    .send(),
            )
            .await?;
        let on = out
            .attributes()
            .iter()
            .any(|a| a.key() == Some(PROXY_V2) && a.value() == Some("true"));
        observed.proxy_protocol.insert(name, on);
    }
    Ok(())
}

/// Set one attribute of a balancer (`target_group` false) or target group.
pub(crate) async fn set_attribute(
    api: &Api,
    arn: &str,
    target_group: bool,
    on: bool,
) -> Result<(), ProviderError> {
    let value = if on { "true" } else { "false" };
    if target_group {
        let attr = aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
            .key(PROXY_V2)
            .value(value)
            .build();
        api.call(
            "ModifyTargetGroupAttributes",
            Budget::General,
            api.elb
                .modify_target_group_attributes()
                .target_group_arn(arn)
                .attributes(attr)
                .send(),
        )
        .await?;
    } else {
        let attr = aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
            .key(CROSS_ZONE)
            .value(value)
            .build();
        api.call(
            "ModifyLoadBalancerAttributes",
            Budget::General,
            api.elb
                .modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .attributes(attr)
                .send(),
        )
        .await?;
    }
    Ok(())
}
