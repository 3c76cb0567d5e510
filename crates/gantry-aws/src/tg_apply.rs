//! Carrying out a [`TgStep`] against AWS, one way for both balancer kinds,
//! so an NLB and an ALB create, check, register and deregister their
//! target groups with the same calls. Like every step it is safe to
//! replay: the group's name is deterministic, and (de)registering a target
//! twice is no error.

use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
use gantry_model::ProviderError;

use crate::{
    api::{Api, Budget},
    ensure::{Context, missing},
    nlb::{Health, Observed, ObservedTg, TARGET_BATCH},
    tg_diff::TgStep,
};

/// The wanted target group a step names, as the balancer kind sees it.
pub(crate) struct Group<'a> {
    /// Traffic protocol: the only part the kinds fill differently (an
    /// NLB's listener protocol, always HTTP for an ALB).
    pub(crate) protocol: ProtocolEnum,
    /// The node port targets answer on.
    pub(crate) node_port: u16,
    /// Health check.
    pub(crate) health: &'a Health,
}

/// Make `step`. `want` is the group it names, `None` when that group is no
/// longer wanted: only a deregistration still runs then, since it needs
/// nothing but the group's ARN. A created group joins `observed` so later
/// steps find its ARN. A new group goes into `vpc_id` (the balancer's),
/// or else into the context's VPC.
pub(crate) async fn apply(
    cx: &Context<'_>,
    step: &TgStep,
    want: Option<Group<'_>>,
    observed: &mut Observed,
    vpc_id: Option<&str>,
) -> Result<(), ProviderError> {
    let api = cx.api;
    match (step, want) {
        (TgStep::Create(name), Some(tg)) => {
            let op = "CreateTargetGroup";
            let vpc = vpc_id
                .or(cx.vpc_id.as_deref())
                .ok_or_else(|| missing(op, "VPC id for the target group"))?;
            let out = api
                .call(
                    op,
                    Budget::General,
                    api.elb
                        .create_target_group()
                        .name(name)
                        .protocol(tg.protocol)
                        .port(i32::from(tg.node_port))
                        .vpc_id(vpc)
                        .target_type(TargetTypeEnum::Instance)
                        .health_check_protocol(ProtocolEnum::from(tg.health.protocol))
                        .health_check_port(&tg.health.port)
                        .set_health_check_path(tg.health.path.clone())
                        .set_tags(Some(cx.tags("target-group")))
                        .send(),
                )
                .await?;
            let arn = out
                .target_groups()
                .first()
                .and_then(|t| t.target_group_arn())
                .ok_or_else(|| missing(op, "target group ARN"))?;
            observed.target_groups.insert(
                name.clone(),
                ObservedTg {
                    arn: arn.to_string(),
                    health: tg.health.clone(),
                    targets: Default::default(),
                },
            );
        }
        (TgStep::ModifyHealth(name), Some(tg)) => {
            if let Some(have) = observed.target_groups.get(name) {
                modify_health(api, &have.arn, tg.health).await?;
            }
        }
        (TgStep::Register(name, ids), Some(tg)) => {
            if let Some(have) = observed.target_groups.get(name) {
                let targets: Vec<(String, u16)> =
                    ids.iter().map(|id| (id.clone(), tg.node_port)).collect();
                move_targets(api, &have.arn, &targets, true).await?;
            }
        }
        (TgStep::Deregister(name, targets), _) => {
            if let Some(have) = observed.target_groups.get(name) {
                move_targets(api, &have.arn, targets, false).await?;
            }
        }
        (TgStep::Create(_) | TgStep::ModifyHealth(_) | TgStep::Register(..), None) => {}
    }
    Ok(())
}

/// Change a target group's health check in place.
async fn modify_health(api: &Api, arn: &str, health: &Health) -> Result<(), ProviderError> {
    api.call(
        "ModifyTargetGroup",
        Budget::General,
        api.elb
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_protocol(ProtocolEnum::from(health.protocol))
            .health_check_port(&health.port)
            .set_health_check_path(health.path.clone())
            .send(),
    )
    .await?;
    Ok(())
}

/// Register or deregister `targets` (instance id, port) in batches of
/// [`TARGET_BATCH`], the most one call takes.
async fn move_targets(
    api: &Api,
    arn: &str,
    targets: &[(String, u16)],
    register: bool,
) -> Result<(), ProviderError> {
    for chunk in targets.chunks(TARGET_BATCH) {
        let batch: Vec<TargetDescription> = chunk
            .iter()
            .map(|(id, port)| {
                TargetDescription::builder()
                    .id(id)
                    .port(i32::from(*port))
                    .build()
            })
            .collect();
        if register {
            api.call(
                "RegisterTargets",
                Budget::Targets,
                api.elb
                    .register_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(batch))
                    .send(),
            )
            .await?;
        } else {
            api.call(
                "DeregisterTargets",
                Budget::Targets,
                api.elb
                    .deregister_targets()
                    .target_group_arn(arn)
                    .set_targets(Some(batch))
                    .send(),
            )
            .await?;
        }
    }
    Ok(())
}
