//! An Ingress's ALB, read and compared: the listeners' rules as AWS holds
//! them, and the ordered steps from there to the wanted shape (target
//! groups and targets first, registering before deregistering, then
//! listeners and rules, then removal of what nothing uses).

use std::collections::BTreeMap;

use gantry_model::{
    ProviderError,
    provider::{Action as ChangeAction, Change},
};

use crate::{
    alb::{self, ObservedRule, Wanted},
    api::Budget,
    ensure::Context,
    nlb::Observed,
    observe::forward_target,
    tg_diff::{TgStep, target_group_steps},
};

/// Rules of each listener, by priority.
pub(crate) type Rules = BTreeMap<u16, BTreeMap<usize, ObservedRule>>;

/// One write, in the order it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Create the balancer.
    CreateBalancer,
    /// Create a target group, fix its health check or move its targets.
    TargetGroup(TgStep),
    /// Create the listener on a port.
    CreateListener(u16),
    /// Change a listener's protocol, certificate or default action.
    ModifyListener(u16),
    /// Create the rule of a listener at a priority.
    CreateRule(u16, usize),
    /// Change a rule's conditions or target in place.
    ModifyRule(u16, usize),
    /// Delete a rule past the wanted ones.
    DeleteRule(u16, usize),
    /// Delete a listener no longer wanted.
    DeleteListener(u16),
    /// Delete a target group nothing uses.
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
    let groups = target_group_steps(
        wanted
            .target_groups
            .iter()
            .map(|(n, t)| (n, t.node_port, &t.health)),
        &wanted.instances,
        observed,
    );
    steps.extend(
        [groups.first, groups.registers, groups.deregisters]
            .into_iter()
            .flatten()
            .map(Step::TargetGroup),
    );
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
        Step::TargetGroup(step) => return step.describe(|_| String::new()),
        Step::CreateBalancer => (
            ChangeAction::Create,
            "load-balancer",
            wanted.name.clone(),
            "application".into(),
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
