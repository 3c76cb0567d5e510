//! Target group changes both balancer kinds make the same way: create
//! missing groups, fix health checks in place, register new targets and,
//! only after every registration, deregister old ones. Both describe them
//! for `plan` alike too; [`crate::tg_apply`] makes them.

use std::collections::BTreeSet;

use gantry_model::provider::{Action, Change};

use crate::nlb::{Health, Observed};

/// A target group change both balancer kinds make the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TgStep {
    /// Create a target group.
    Create(String),
    /// Change a target group's health check in place.
    ModifyHealth(String),
    /// Register instances (at the group's node port).
    Register(String, Vec<String>),
    /// Deregister targets.
    Deregister(String, Vec<(String, u16)>),
}

impl TgStep {
    /// Name of the target group the step changes.
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::Create(n)
            | Self::ModifyHealth(n)
            | Self::Register(n, _)
            | Self::Deregister(n, _) => n,
        }
    }

    /// Describe the step for `plan`. Only a creation's detail differs by
    /// balancer kind, so `created` gives it from the group's name.
    pub(crate) fn describe(&self, created: impl FnOnce(&str) -> String) -> Change {
        let (action, detail) = match self {
            Self::Create(n) => (Action::Create, created(n)),
            Self::ModifyHealth(_) => (Action::Update, "health check".into()),
            Self::Register(_, ids) => (Action::Update, format!("register {} target(s)", ids.len())),
            Self::Deregister(_, targets) => (
                Action::Update,
                format!("deregister {} target(s)", targets.len()),
            ),
        };
        Change {
            action,
            resource: "target-group".into(),
            name: self.name().to_string(),
            detail,
        }
    }
}

/// Target group changes in the order they are made: creations and health
/// checks first, then registrations, then (only after every registration)
/// deregistrations.
pub(crate) struct TgSteps {
    pub(crate) first: Vec<TgStep>,
    pub(crate) registers: Vec<TgStep>,
    pub(crate) deregisters: Vec<TgStep>,
}

/// The target group changes from `observed` to `groups` (name, node port,
/// health check), each group holding every one of `instances`.
pub(crate) fn target_group_steps<'a>(
    groups: impl Iterator<Item = (&'a String, u16, &'a Health)>,
    instances: &BTreeSet<String>,
    observed: &Observed,
) -> TgSteps {
    let mut out = TgSteps {
        first: Vec::new(),
        registers: Vec::new(),
        deregisters: Vec::new(),
    };
    for (name, node_port, health) in groups {
        let want: BTreeSet<(String, u16)> =
            instances.iter().map(|i| (i.clone(), node_port)).collect();
        match observed.target_groups.get(name) {
            None => {
                out.first.push(TgStep::Create(name.clone()));
                if !want.is_empty() {
                    out.registers.push(TgStep::Register(
                        name.clone(),
                        instances.iter().cloned().collect(),
                    ));
                }
            }
            Some(have) => {
                if have.health != *health {
                    out.first.push(TgStep::ModifyHealth(name.clone()));
                }
                let add: Vec<String> = want
                    .difference(&have.targets)
                    .map(|(i, _)| i.clone())
                    .collect();
                let remove: Vec<(String, u16)> = have.targets.difference(&want).cloned().collect();
                if !add.is_empty() {
                    out.registers.push(TgStep::Register(name.clone(), add));
                }
                if !remove.is_empty() {
                    out.deregisters
                        .push(TgStep::Deregister(name.clone(), remove));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlb::ObservedTg;

    #[test]
    fn target_groups_are_created_registered_then_deregistered() {
        let health = Health {
            protocol: "TCP",
            port: "traffic-port".into(),
            path: None,
        };
        let (old, new) = ("old".to_string(), "new".to_string());
        let mut observed = Observed::default();
        observed.target_groups.insert(
            old.clone(),
            ObservedTg {
                arn: "arn:old".into(),
                health: Health {
                    protocol: "HTTP",
                    port: "32100".into(),
                    path: Some("/healthz".into()),
                },
                targets: BTreeSet::from([("i-1".into(), 30080), ("i-2".into(), 30080)]),
            },
        );
        let instances = BTreeSet::from(["i-2".to_string(), "i-3".to_string()]);
        let steps = target_group_steps(
            [(&old, 30080, &health), (&new, 30081, &health)].into_iter(),
            &instances,
            &observed,
        );
        assert_eq!(
            steps.first,
            [
                TgStep::ModifyHealth(old.clone()),
                TgStep::Create(new.clone())
            ]
        );
        assert_eq!(
            steps.registers,
            [
                TgStep::Register(old.clone(), vec!["i-3".into()]),
                TgStep::Register(new, vec!["i-2".into(), "i-3".into()]),
            ]
        );
        assert_eq!(
            steps.deregisters,
            [TgStep::Deregister(old, vec![("i-1".into(), 30080)])]
        );
    }

    #[test]
    fn steps_describe_the_group_they_change() {
        let change = |action, detail: &str| Change {
            action,
            resource: "target-group".into(),
            name: "tg".into(),
            detail: detail.into(),
        };
        let created = TgStep::Create("tg".into()).describe(|n| format!("{n} detail"));
        assert_eq!(created, change(Action::Create, "tg detail"));
        let gone = TgStep::Deregister("tg".into(), vec![("i-1".into(), 30080)]);
        assert_eq!(
            gone.describe(|_| "unused".into()),
            change(Action::Update, "deregister 1 target(s)")
        );
    }
}
