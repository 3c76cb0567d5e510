//! Carrying an Ingress's ALB from what AWS holds to what is wanted: read
//! the listeners' rules, diff, and apply in order (balancer, target groups,
//! targets registered before deregistered, listeners, rules, then removal
//! of what nothing uses).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, FixedResponseActionConfig, HostHeaderConditionConfig,
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, PathPatternConditionConfig, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, RuleCondition, TargetDescription,
    TargetTypeEnum,
};
use gantry_model::{
    ProviderError,
    desired::{Protocol, Scheme},
    provider::{Action as ChangeAction, Change, IngressPoint, ObservedStatus, PortStatus},
};

use crate::{
    alb::{self, Default, ObservedRule, Wanted},
    api::Budget,
    ensure::{Context, delete_listener, delete_target_group},
    nlb::{Observed, ObservedTg, TARGET_BATCH},
    observe::forward_target,
};

/// Rules of each listener, by priority.
pub(crate) type Rules = BTreeMap<u16, BTreeMap<usize, ObservedRule>>;

/// One write, in the order it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    CreateBalancer,
    CreateTargetGroup(String),
    ModifyHealth(String),
    Register(String, Vec<String>),
    Deregister(String, Vec<(String, u16)>),
    CreateListener(u16),
    ModifyListener(u16),
    CreateRule(u16, usize),
    ModifyRule(u16, usize),
    DeleteRule(u16, usize),
    DeleteListener(u16),
    DeleteTargetGroup(String),
}

/// Read the non-default rules of every listener.
pub(crate) async fn rules(cx: &Context<'_>, observed: &Observed) -> Result<Rules, ProviderError> {
    let api = cx.api;
    let mut all = Rules::new();
    for (port, l) in &observed.listeners {
        let out = api
            .call(
                "DescribeRules",
                Budget::General,
                api.elb.describe_rules().listener_arn(&l.arn).send(),
            )
            .await?;
        let mut by_priority = BTreeMap::new();
        for r in out.rules() {
            let Some(priority) = r.priority().and_then(|p| p.parse::<usize>().ok()) else {
                continue;
            };
            let mut hosts = Vec::new();
            let mut paths = Vec::new();
            for c in r.conditions() {
                // The typed configs hold several values; the legacy list one.
                let values: Vec<String> = match (c.host_header_config(), c.path_pattern_config()) {
                    (Some(h), _) if !h.values().is_empty() => h.values().to_vec(),
                    (_, Some(p)) if !p.values().is_empty() => p.values().to_vec(),
                    _ => c.values().to_vec(),
                };
                match c.field() {
                    Some("host-header") => hosts.extend(values),
                    Some("path-pattern") => paths.extend(values),
                    _ => {}
                }
            }
            by_priority.insert(
                priority,
                ObservedRule {
                    arn: r.rule_arn().unwrap_or_default().to_string(),
                    hosts,
                    paths,
                    target_group_arn: forward_target(r.actions()),
                },
            );
        }
        all.insert(*port, by_priority);
    }
    Ok(all)
}

fn tg_arns(observed: &Observed) -> BTreeMap<String, String> {
    observed
        .target_groups
        .iter()
        .map(|(n, t)| (n.clone(), t.arn.clone()))
        .collect()
}

/// The ordered steps from `observed` (and its `rules`) to `wanted`.
pub(crate) fn diff(wanted: &Wanted, observed: &Observed, rules: &Rules) -> Vec<Step> {
    let mut steps = Vec::new();
    if observed.balancer.is_none() {
        steps.push(Step::CreateBalancer);
    }
    let mut registers = Vec::new();
    let mut deregisters = Vec::new();
    for (name, tg) in &wanted.target_groups {
        let want: BTreeSet<(String, u16)> = wanted
            .instances
            .iter()
            .map(|i| (i.clone(), tg.node_port))
            .collect();
        match observed.target_groups.get(name) {
            None => {
                steps.push(Step::CreateTargetGroup(name.clone()));
                if !want.is_empty() {
                    registers.push(Step::Register(
                        name.clone(),
                        wanted.instances.iter().cloned().collect(),
                    ));
                }
            }
            Some(have) => {
                if have.health != tg.health {
                    steps.push(Step::ModifyHealth(name.clone()));
                }
                let add: Vec<String> = want
                    .difference(&have.targets)
                    .map(|(i, _)| i.clone())
                    .collect();
                let remove: Vec<(String, u16)> = have.targets.difference(&want).cloned().collect();
                if !add.is_empty() {
                    registers.push(Step::Register(name.clone(), add));
                }
                if !remove.is_empty() {
                    deregisters.push(Step::Deregister(name.clone(), remove));
                }
            }
        }
    }
    steps.extend(registers);
    steps.extend(deregisters);
    let arns = tg_arns(observed);
    let empty = BTreeMap::new();
    for (port, l) in &wanted.listeners {
        let have_rules = rules.get(port).unwrap_or(&empty);
        match observed.listeners.get(port) {
            None => steps.push(Step::CreateListener(*port)),
            Some(have) => {
                if have.protocol != l.protocol
                    || !alb::default_matches(&l.default, have, &arns)
                    || have.certificate != l.certificate
                {
                    steps.push(Step::ModifyListener(*port));
                }
            }
        }
        for (i, rule) in l.rules.iter().enumerate() {
            let priority = i + 1;
            match have_rules.get(&priority) {
                None => steps.push(Step::CreateRule(*port, priority)),
                Some(have) if !alb::rule_matches(rule, have, &arns) => {
                    steps.push(Step::ModifyRule(*port, priority))
                }
                Some(_) => {}
            }
        }
        for priority in have_rules.keys() {
            if *priority > l.rules.len() {
                steps.push(Step::DeleteRule(*port, *priority));
            }
        }
    }
    for port in observed.listeners.keys() {
        if !wanted.listeners.contains_key(port) {
            steps.push(Step::DeleteListener(*port));
        }
    }
    for name in observed.target_groups.keys() {
        if !wanted.target_groups.contains_key(name) {
            steps.push(Step::DeleteTargetGroup(name.clone()));
        }
    }
    steps
}

/// Describe a step for `plan`.
pub(crate) fn describe(step: &Step, wanted: &Wanted) -> Change {
    let (action, resource, name, detail) = match step {
        Step::CreateBalancer => (
            ChangeAction::Create,
            "load-balancer",
            wanted.name.clone(),
            "application".into(),
        ),
        Step::CreateTargetGroup(n) => (
            ChangeAction::Create,
            "target-group",
            n.clone(),
            String::new(),
        ),
        Step::ModifyHealth(n) => (
            ChangeAction::Update,
            "target-group",
            n.clone(),
            "health check".into(),
        ),
        Step::Register(n, ids) => (
            ChangeAction::Update,
            "target-group",
            n.clone(),
            format!("register {} target(s)", ids.len()),
        ),
        Step::Deregister(n, ids) => (
            ChangeAction::Update,
            "target-group",
            n.clone(),
            format!("deregister {} target(s)", ids.len()),
        ),
        Step::CreateListener(p) => (
            ChangeAction::Create,
            "listener",
            format!("{}:{p}", wanted.name),
            String::new(),
        ),
        Step::ModifyListener(p) => (
            ChangeAction::Update,
            "listener",
            format!("{}:{p}", wanted.name),
            "default action".into(),
        ),
        Step::CreateRule(p, i) => (
            ChangeAction::Create,
            "rule",
            format!("{}:{p}#{i}", wanted.name),
            String::new(),
        ),
        Step::ModifyRule(p, i) => (
            ChangeAction::Update,
            "rule",
            format!("{}:{p}#{i}", wanted.name),
            String::new(),
        ),
        Step::DeleteRule(p, i) => (
            ChangeAction::Delete,
            "rule",
            format!("{}:{p}#{i}", wanted.name),
            String::new(),
        ),
        Step::DeleteListener(p) => (
            ChangeAction::Delete,
            "listener",
            format!("{}:{p}", wanted.name),
            String::new(),
        ),
        Step::DeleteTargetGroup(n) => (
            ChangeAction::Delete,
            "target-group",
            n.clone(),
            String::new(),
        ),
    };
    Change {
        action,
        resource: resource.into(),
        name,
        detail,
    }
}

fn forward(arn: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(arn)
        .build()
}

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

fn missing(operation: &'static str, what: &str) -> ProviderError {
    ProviderError::Rejected {
        operation,
        message: format!("the response carries no {what}"),
    }
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
                let op = "CreateLoadBalancer";
                let out = api
                    .call(
                        op,
                        Budget::General,
                        api.elb
                            .create_load_balancer()
                            .name(&wanted.name)
                            .r#type(LoadBalancerTypeEnum::Application)
                            .scheme(match cx.scheme {
                                Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
                                Scheme::Internal => LoadBalancerSchemeEnum::Internal,
                            })
                            .set_subnets(Some(cx.subnets.clone()))
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
                vpc_id = lb.vpc_id().map(str::to_string).or(vpc_id);
                observed.balancer = Some((
                    arn.to_string(),
                    lb.dns_name().unwrap_or_default().to_string(),
                ));
            }
            Step::CreateTargetGroup(name) => {
                let op = "CreateTargetGroup";
                let Some(tg) = wanted.target_groups.get(name) else {
                    continue;
                };
                let vpc = vpc_id
                    .clone()
                    .or_else(|| cx.vpc_id.clone())
                    .ok_or_else(|| missing(op, "VPC id for the target group"))?;
                let out = api
                    .call(
                        op,
                        Budget::General,
                        api.elb
                            .create_target_group()
                            .name(name)
                            .protocol(ProtocolEnum::Http)
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
                        targets: BTreeSet::new(),
                    },
                );
            }
            Step::ModifyHealth(name) => {
                let (Some(tg), Some(have)) = (
                    wanted.target_groups.get(name),
                    observed.target_groups.get(name),
                ) else {
                    continue;
                };
                api.call(
                    "ModifyTargetGroup",
                    Budget::General,
                    api.elb
                        .modify_target_group()
                        .target_group_arn(&have.arn)
                        .health_check_protocol(ProtocolEnum::from(tg.health.protocol))
                        .health_check_port(&tg.health.port)
                        .set_health_check_path(tg.health.path.clone())
                        .send(),
                )
                .await?;
            }
            Step::Register(name, ids) => {
                let (Some(tg), Some(have)) = (
                    wanted.target_groups.get(name),
                    observed.target_groups.get(name),
                ) else {
                    continue;
                };
                for chunk in ids.chunks(TARGET_BATCH) {
                    let targets = chunk
                        .iter()
                        .map(|id| {
                            TargetDescription::builder()
                                .id(id)
                                .port(i32::from(tg.node_port))
                                .build()
                        })
                        .collect();
                    api.call(
                        "RegisterTargets",
                        Budget::Targets,
                        api.elb
                            .register_targets()
                            .target_group_arn(&have.arn)
                            .set_targets(Some(targets))
                            .send(),
                    )
                    .await?;
                }
            }
            Step::Deregister(name, targets) => {
                let Some(have) = observed.target_groups.get(name) else {
                    continue;
                };
                for chunk in targets.chunks(TARGET_BATCH) {
                    let targets = chunk
                        .iter()
                        .map(|(id, port)| {
                            TargetDescription::builder()
                                .id(id)
                                .port(i32::from(*port))
                                .build()
                        })
                        .collect();
                    api.call(
                        "DeregisterTargets",
                        Budget::Targets,
                        api.elb
                            .deregister_targets()
                            .target_group_arn(&have.arn)
                            .set_targets(Some(targets))
                            .send(),
                    )
                    .await?;
                }
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
