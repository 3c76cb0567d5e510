//! Status conditions of a Service (`Ready`, `Progressing`, `Degraded`) as
//! `meta/v1` Conditions: constructors, and the time-insensitive comparison
//! that decides whether status needs a patch at all.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

/// Condition types.
pub mod types {
    /// The balancer exists, matches the spec, and serves the status address.
    pub const READY: &str = "Ready";
    /// Gantry is working towards the desired state.
    pub const PROGRESSING: &str = "Progressing";
    /// Something prevents the desired state.
    pub const DEGRADED: &str = "Degraded";
    /// Every type Gantry owns.
    pub const ALL: [&str; 3] = [READY, PROGRESSING, DEGRADED];
}

/// Condition reasons (CamelCase, as the API requires).
pub mod reasons {
    /// The balancer is ready.
    pub const ENSURED: &str = "LoadBalancerEnsured";
    /// The provider is still provisioning.
    pub const PROVISIONING: &str = "Provisioning";
    /// The object moves to another class.
    pub const MIGRATING: &str = "Migrating";
    /// The spec cannot be translated.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Nothing is wrong / nothing in progress.
    pub const AS_EXPECTED: &str = "AsExpected";
}

/// The conditions Gantry wants on an object, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// `type`, `status` (`True`/`False`), `reason`, `message`.
    pub entries: Vec<(&'static str, bool, String, String)>,
}

impl Wanted {
    /// Ready, nothing in progress, nothing wrong.
    pub fn ready() -> Self {
        Self {
            entries: vec![
                (types::READY, true, reasons::ENSURED.into(), String::new()),
                (
                    types::PROGRESSING,
                    false,
                    reasons::AS_EXPECTED.into(),
                    String::new(),
                ),
                (
                    types::DEGRADED,
                    false,
                    reasons::AS_EXPECTED.into(),
                    String::new(),
                ),
            ],
        }
    }

    /// Not ready yet, but nothing wrong (`reason` says what is pending).
    pub fn progressing(reason: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            entries: vec![
                (types::READY, false, reason.into(), message.clone()),
                (types::PROGRESSING, true, reason.into(), message),
                (
                    types::DEGRADED,
                    false,
                    reasons::AS_EXPECTED.into(),
                    String::new(),
                ),
            ],
        }
    }

    /// Failed with `reason`; `retrying` says whether Gantry keeps trying on its own.
    pub fn failed(reason: &str, message: impl Into<String>, retrying: bool) -> Self {
        let message = message.into();
        Self {
            entries: vec![
                (types::READY, false, reason.into(), message.clone()),
                (
                    types::PROGRESSING,
                    retrying,
                    if retrying { "Retrying" } else { reason }.into(),
                    message.clone(),
                ),
                (types::DEGRADED, true, reason.into(), message),
            ],
        }
    }

    /// Build the conditions, keeping `lastTransitionTime` from `existing`
    /// where the status did not flip.
    pub fn build(
        &self,
        existing: &[Condition],
        generation: Option<i64>,
        now: Timestamp,
    ) -> Vec<Condition> {
        self.entries
            .iter()
            .map(|(type_, status, reason, message)| {
                let status = if *status { "True" } else { "False" }.to_string();
                let last_transition_time = existing
                    .iter()
                    .find(|c| c.type_ == *type_ && c.status == status)
                    .map(|c| c.last_transition_time.clone())
                    .unwrap_or(Time(now));
                Condition {
                    type_: (*type_).to_string(),
                    status,
                    reason: reason.clone(),
                    message: message.clone(),
                    observed_generation: generation,
                    last_transition_time,
                }
            })
            .collect()
    }
}

/// Whether `existing` already carries `wanted` for every type Gantry owns,
/// ignoring `lastTransitionTime`.
pub fn up_to_date(existing: &[Condition], wanted: &[Condition]) -> bool {
    wanted.iter().all(|w| {
        existing.iter().any(|e| {
            e.type_ == w.type_
                && e.status == w.status
                && e.reason == w.reason
                && e.message == w.message
                && e.observed_generation == w.observed_generation
        })
    })
}

/// `existing` without the types Gantry owns.
pub fn foreign(existing: &[Condition]) -> Vec<Condition> {
    existing
        .iter()
        .filter(|c| !types::ALL.contains(&c.type_.as_str()))
        .cloned()
        .collect()
}

/// `snake_case` error category -> `CamelCase` condition reason.
pub fn reason_from_category(category: &str) -> String {
    category
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).expect("valid")
    }

    #[test]
    fn transition_time_kept_unless_status_flips() {
        let first = Wanted::ready().build(&[], Some(1), at(100));
        assert!(
            first
                .iter()
                .all(|c| c.last_transition_time == Time(at(100)))
        );
        // Same statuses later, new generation: times kept.
        let again = Wanted::ready().build(&first, Some(2), at(200));
        assert!(
            again
                .iter()
                .all(|c| c.last_transition_time == Time(at(100)))
        );
        // Ready flips to False: only the flipped conditions get a new time.
        let failed = Wanted::failed("InvalidSpec", "bad", false).build(&again, Some(3), at(300));
        let time_of = |t: &str| {
            failed
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| c.last_transition_time.clone())
        };
        assert_eq!(time_of(types::READY), Some(Time(at(300))));
        assert_eq!(time_of(types::DEGRADED), Some(Time(at(300))));
        assert_eq!(time_of(types::PROGRESSING), Some(Time(at(100))));
    }

    #[test]
    fn comparison_ignores_time_but_not_content() {
        let a = Wanted::ready().build(&[], Some(1), at(100));
        let b = Wanted::ready().build(&[], Some(1), at(999));
        assert!(up_to_date(&a, &b));
        let c = Wanted::ready().build(&[], Some(2), at(100));
        assert!(!up_to_date(&a, &c), "observedGeneration differs");
        let d = Wanted::failed("Transient", "x", true).build(&[], Some(1), at(100));
        assert!(!up_to_date(&a, &d));
        assert!(!up_to_date(&[], &a));
        // Extra foreign conditions on the object do not force a patch.
        let mut with_foreign = a.clone();
        with_foreign.push(Condition {
            type_: "Other".into(),
            status: "True".into(),
            reason: "X".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(at(1)),
        });
        assert!(up_to_date(&with_foreign, &b));
        assert_eq!(foreign(&with_foreign).len(), 1);
    }

    #[test]
    fn reasons_are_camel_case() {
        assert_eq!(reason_from_category("not_owned"), "NotOwned");
        assert_eq!(reason_from_category("transient"), "Transient");
        assert_eq!(reason_from_category("class_not_found"), "ClassNotFound");
    }
}
