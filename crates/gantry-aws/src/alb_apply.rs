//! Carrying out the steps of [`crate::alb_diff::diff`] for an Ingress's ALB,
//! in order, each safe to replay.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig,
    LoadBalancerTypeEnum, PathPatternConditionConfig, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, RuleCondition,
};
use gantry_model::{
    ProviderError,
    desired::Protocol,
    provider::{IngressPoint, ObservedStatus, PortStatus},
};

use crate::{
    alb::{self, Default, Wanted},
    alb_diff::{Rules, Step},
    api::Budget,
    ensure::{Context, create_balancer, delete_listener, delete_target_group, forward, missing},
    nlb::{Observed, ObservedTg},
    tg_apply::{self, Group},
};

fn default_action(want: &Default, observed: &Observed) -> Result<Action, ProviderError> {
    Ok(match want {
        Default::Forward(tg) => forward(&arn_of(observed, tg)?.arn),
        Default::NotFound => Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("404")
                    .content_type("text/plain")
                    .message_body("not found")
                    .build(),
            )
            .build(),
        Default::RedirectHttps => Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("HTTPS")
                    .port("443")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build(),
    })
}

fn arn_of<'a>(observed: &'a Observed, tg: &str) -> Result<&'a ObservedTg, ProviderError> {
    observed
        .target_groups
        .get(tg)
        .ok_or_else(|| ProviderError::Rejected {
            operation: "CreateRule",
            message: format!("target group {tg} missing after its creation"),
        })
}

fn conditions(rule: &alb::WantedRule) -> Vec<RuleCondition> {
    let mut out = Vec::new();
    if let Some(host) = &rule.host {
        out.push(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(HostHeaderConditionConfig::builder().values(host).build())
                .build(),
        );
    }
    out.push(
        RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                PathPatternConditionConfig::builder()
                    .set_values(Some(rule.paths.clone()))
                    .build(),
            )
            .build(),
    );
    out
}

/// Run `steps`; returns the balancer's DNS name.
pub(crate) async fn apply(
    cx: &Context<'_>,
    wanted: &Wanted,
    mut observed: Observed,
    rules: &Rules,
    steps: &[Step],
    mut vpc_id: Option<String>,
) -> Result<String, ProviderError> {
    let api = cx.api;
    let mut listener_arns: BTreeMap<u16, String> = observed
        .listeners
        .iter()
        .map(|(p, l)| (*p, l.arn.clone()))
        .collect();
    for step in steps {
        match step {
            Step::CreateBalancer => {
                let (balancer, vpc) =
                    create_balancer(cx, &wanted.name, LoadBalancerTypeEnum::Application).await?;
                vpc_id = vpc.or(vpc_id);
                observed.balancer = Some(balancer);
            }
            Step::TargetGroup(step) => {
                let want = wanted.target_groups.get(step.name()).map(|t| Group {
                    protocol: ProtocolEnum::Http,
                    node_port: t.node_port,
                    health: &t.health,
                });
                tg_apply::apply(cx, step, want, &mut observed, vpc_id.as_deref()).await?;
            }
            Step::CreateListener(port) | Step::ModifyListener(port) => {
                let Some(l) = wanted.listeners.get(port) else {
                    continue;
                };
                let action = default_action(&l.default, &observed)?;
                let protocol = ProtocolEnum::from(l.protocol);
                let certs = l
                    .certificate
                    .as_ref()
                    .map(|c| vec![Certificate::builder().certificate_arn(c).build()]);
                if let Some(arn) = listener_arns.get(port) {
                    api.call(
                        "ModifyListener",
                        Budget::General,
                        api.elb
                            .modify_listener()
                            .listener_arn(arn)
                            .protocol(protocol)
                            .port(i32::from(*port))
                            .set_certificates(certs)
                            .default_actions(action)
                            .send(),
                    )
                    .await?;
                } else {
                    let (lb_arn, _) = observed
                        .balancer
                        .as_ref()
                        .ok_or_else(|| missing("CreateListener", "balancer"))?;
                    let out = api
                        .call(
                            "CreateListener",
                            Budget::General,
                            api.elb
                                .create_listener()
                                .load_balancer_arn(lb_arn)
                                .protocol(protocol)
                                .port(i32::from(*port))
                                .set_certificates(certs)
                                .default_actions(action)
                                .set_tags(Some(cx.tags("listener")))
                                .send(),
                        )
                        .await?;
                    let arn = out
                        .listeners()
                        .first()
                        .and_then(|l| l.listener_arn())
                        .ok_or_else(|| missing("CreateListener", "listener ARN"))?;
                    listener_arns.insert(*port, arn.to_string());
                }
            }
            Step::CreateRule(port, priority) | Step::ModifyRule(port, priority) => {
                let Some(rule) = wanted
                    .listeners
                    .get(port)
                    .and_then(|l| l.rules.get(priority - 1))
                else {
                    continue;
                };
                let action = forward(&arn_of(&observed, &rule.target_group)?.arn);
                match rules.get(port).and_then(|r| r.get(priority)) {
                    Some(have) if matches!(step, Step::ModifyRule(..)) => {
                        api.call(
                            "ModifyRule",
                            Budget::General,
                            api.elb
                                .modify_rule()
                                .rule_arn(&have.arn)
                                .set_conditions(Some(conditions(rule)))
                                .actions(action)
                                .send(),
                        )
                        .await?;
                    }
                    _ => {
                        let arn = listener_arns
                            .get(port)
                            .ok_or_else(|| missing("CreateRule", "listener"))?;
                        api.call(
                            "CreateRule",
                            Budget::General,
                            api.elb
                                .create_rule()
                                .listener_arn(arn)
                                .priority(i32::try_from(*priority).unwrap_or(i32::MAX))
                                .set_conditions(Some(conditions(rule)))
                                .actions(action)
                                .set_tags(Some(cx.tags("rule")))
                                .send(),
                        )
                        .await?;
                    }
                }
            }
            Step::DeleteRule(port, priority) => {
                if let Some(have) = rules.get(port).and_then(|r| r.get(priority)) {
                    let op = "DeleteRule";
                    match api
                        .raw(
                            op,
                            Budget::General,
                            api.elb.delete_rule().rule_arn(&have.arn).send(),
                        )
                        .await?
                    {
                        Ok(_) => {}
                        Err(e) if crate::error::has_code(&e, "RuleNotFound") => {}
                        Err(e) => return Err(crate::error::classify(op, e)),
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
        .map(|(_, dns)| dns)
        .ok_or_else(|| missing("CreateLoadBalancer", "balancer"))
}

/// The status an ALB reports: its DNS name and its listener ports.
pub(crate) fn status(wanted: &Wanted, dns_name: String, ready: bool) -> ObservedStatus {
    ObservedStatus {
        ingress: vec![IngressPoint {
            ip: None,
            hostname: (!dns_name.is_empty()).then_some(dns_name),
            ports: wanted
                .listeners
                .keys()
                .map(|p| PortStatus {
                    port: *p,
                    protocol: Protocol::Tcp,
                })
                .collect(),
        }],
        ready,
    }
}
