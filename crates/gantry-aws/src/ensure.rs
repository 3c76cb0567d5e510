//! Carrying out the steps of [`crate::nlb::diff`] against AWS, in order.
//! Every step is safe to replay: creates use deterministic names (AWS
//! answers a repeated identical create with the existing resource), and
//! deletes treat "not found" as done.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, Tag,
};
use gantry_model::{
    ObservedStatus, Owner, ProviderError,
    desired::{Protocol, Scheme},
    identity::TAG_ROLE,
    provider::{IngressPoint, PortStatus},
};

use crate::{
    api::{Api, Budget},
    error::has_code,
    nlb::{NlbProtocol, Observed, Step, Wanted},
    tg_apply::{self, Group},
};

/// What creating resources needs besides the diff.
pub(crate) struct Context<'a> {
    pub(crate) api: &'a Api,
    pub(crate) owner: &'a Owner,
    pub(crate) class: &'a str,
    /// Extra tags from the class, put under the ownership tags.
    pub(crate) extra_tags: &'a BTreeMap<String, String>,
    pub(crate) scheme: Scheme,
    /// Subnets for a new balancer (resolved only when one is created).
    pub(crate) subnets: Vec<String>,
    /// VPC of new target groups when no balancer exists to say it.
    pub(crate) vpc_id: Option<String>,
    /// Security groups a new balancer is created with.
    pub(crate) security_groups: Vec<String>,
}

impl Context<'_> {
    pub(crate) fn tags(&self, role: &str) -> Vec<Tag> {
        let mut all = self.extra_tags.clone();
        all.extend(self.owner.tags(self.class));
        all.insert(TAG_ROLE.to_string(), role.to_string());
        all.into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }
}

/// A forward action to one target group.
pub(crate) fn forward(tg_arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg_arn)
        .build()
}

/// A response that lacks a field the API promises.
pub(crate) fn missing(operation: &'static str, what: &str) -> ProviderError {
    ProviderError::Rejected {
        operation,
        message: format!("the response carries no {what}"),
    }
}

/// Create the balancer `name` of `kind` in the context's subnets and scheme,
/// tagged as ours; its (ARN, DNS name) and the VPC it landed in.
pub(crate) async fn create_balancer(
    cx: &Context<'_>,
    name: &str,
    kind: LoadBalancerTypeEnum,
) -> Result<((String, String), Option<String>), ProviderError> {
    let op = "CreateLoadBalancer";
    let api = cx.api;
    let out = api
        .call(
            op,
            Budget::General,
            api.elb
                .create_load_balancer()
                .name(name)
                .r#type(kind)
                .scheme(match cx.scheme {
                    Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
                    Scheme::Internal => LoadBalancerSchemeEnum::Internal,
                })
                .set_subnets(Some(cx.subnets.clone()))
                .set_security_groups(
                    (!cx.security_groups.is_empty()).then(|| cx.security_groups.clone()),
                )
                .set_tags(Some(cx.tags("load-balancer")))
                .send(),
        )
        .await?;
    let lb = out
        .load_balancers()
        .first()
        .ok_or_else(|| missing(op, "load balancer"))?;
    let arn = lb
        .load_balancer_arn()
        .ok_or_else(|| missing(op, "load balancer ARN"))?;
    Ok((
        (
            arn.to_string(),
            lb.dns_name().unwrap_or_default().to_string(),
        ),
        lb.vpc_id().map(str::to_string),
    ))
}

/// Run `steps`, updating `observed` as resources appear, and report status.
pub(crate) async fn apply(
    cx: &Context<'_>,
    wanted: &Wanted,
    mut observed: Observed,
    steps: &[Step],
    mut vpc_id: Option<String>,
) -> Result<(String, String), ProviderError> {
    let api = cx.api;
    for step in steps {
        match step {
            Step::CreateBalancer => {
                let (balancer, vpc) =
                    create_balancer(cx, &wanted.name, LoadBalancerTypeEnum::Network).await?;
                vpc_id = vpc.or(vpc_id);
                observed.balancer = Some(balancer);
            }
            Step::TargetGroup(step) => {
                let want = wanted.target_groups.get(step.name()).map(|t| Group {
                    protocol: ProtocolEnum::from(t.protocol.as_str()),
                    node_port: t.node_port,
                    health: &t.health,
                });
                tg_apply::apply(cx, step, want, &mut observed, vpc_id.as_deref()).await?;
            }
            Step::SetProxyProtocol(name) => {
                if let Some(have) = observed.target_groups.get(name) {
                    crate::observe::set_attribute(api, &have.arn, true, wanted.proxy_protocol)
                        .await?;
                }
            }
            Step::SetCrossZone => {
                if let Some((arn, _)) = &observed.balancer {
                    crate::observe::set_attribute(
                        api,
                        arn,
                        false,
                        wanted.cross_zone.unwrap_or(false),
                    )
                    .await?;
                }
            }
            Step::CreateListener(port) | Step::ModifyListener(port) => {
                let Some(l) = wanted.listeners.get(port) else {
                    continue;
                };
                let Some(tg) = observed.target_groups.get(&l.target_group) else {
                    continue;
                };
                let protocol = ProtocolEnum::from(l.protocol.as_str());
                match observed.listeners.get(port) {
                    None => {
                        let (lb_arn, _) = observed
                            .balancer
                            .as_ref()
                            .ok_or_else(|| missing("CreateListener", "balancer"))?;
                        api.call(
                            "CreateListener",
                            Budget::General,
                            api.elb
                                .create_listener()
                                .load_balancer_arn(lb_arn)
                                .protocol(protocol)
                                .port(i32::from(*port))
                                .default_actions(forward(&tg.arn))
                                .set_tags(Some(cx.tags("listener")))
                                .send(),
                        )
                        .await?;
                    }
                    Some(have) => {
                        api.call(
                            "ModifyListener",
                            Budget::General,
                            api.elb
                                .modify_listener()
                                .listener_arn(&have.arn)
                                .protocol(protocol)
                                .port(i32::from(*port))
                                .default_actions(forward(&tg.arn))
                                .send(),
                        )
                        .await?;
                    }
                }
            }
            Step::DeleteListener(port) => {
                if let Some(have) = observed.listeners.get(port) {
                    delete_listener(api, &have.arn).await?;
                }
            }
            Step::DeleteTargetGroup(name) => {
                if let Some(have) = observed.target_groups.get(name) {
                    delete_target_group(api, &have.arn).await?;
                }
            }
        }
    }
    observed
        .balancer
        .ok_or_else(|| missing("CreateLoadBalancer", "balancer"))
}

/// Delete a listener; one already gone is success.
pub(crate) async fn delete_listener(api: &Api, arn: &str) -> Result<(), ProviderError> {
    let op = "DeleteListener";
    match api
        .raw(
            op,
            Budget::General,
            api.elb.delete_listener().listener_arn(arn).send(),
        )
        .await?
    {
        Ok(_) => Ok(()),
        Err(e) if has_code(&e, "ListenerNotFound") => Ok(()),
        Err(e) => Err(crate::error::classify(op, e)),
    }
}

/// Delete a target group; one already gone is success. One still in use
/// (its listener's deletion not yet settled) is a transient error.
pub(crate) async fn delete_target_group(api: &Api, arn: &str) -> Result<(), ProviderError> {
    let op = "DeleteTargetGroup";
    match api
        .raw(
            op,
            Budget::General,
            api.elb.delete_target_group().target_group_arn(arn).send(),
        )
        .await?
    {
        Ok(_) => Ok(()),
        Err(e) if has_code(&e, "TargetGroupNotFound") => Ok(()),
        Err(e) => Err(crate::error::classify(op, e)),
    }
}

/// The status an NLB reports: its DNS name and every listener's ports.
pub(crate) fn status(wanted: &Wanted, dns_name: String, ready: bool) -> ObservedStatus {
    let mut ports = Vec::new();
    for l in wanted.listeners.values() {
        let protos: &[Protocol] = match l.protocol {
            NlbProtocol::Tcp => &[Protocol::Tcp],
            NlbProtocol::Udp => &[Protocol::Udp],
            NlbProtocol::TcpUdp => &[Protocol::Tcp, Protocol::Udp],
        };
        for p in protos {
            ports.push(PortStatus {
                port: l.port,
                protocol: *p,
            });
        }
    }
    ObservedStatus {
        ingress: vec![IngressPoint {
            ip: None,
            hostname: (!dns_name.is_empty()).then_some(dns_name),
            ports,
        }],
        ready,
    }
}
