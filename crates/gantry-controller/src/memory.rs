//! What the controller remembers between reconciles, in memory only:
//! the last successfully ensured desired state per object and class (so a
//! no-op resync costs zero provider calls), where each object may have a
//! balancer (placements, for migration and cleanup), and which Events were
//! already published (so resyncs do not repeat them).
//!
//! Losing all of it on restart is safe: placements are rebuilt from the
//! providers' `list_owned` before the controllers start, and an empty
//! ensure cache only costs one idempotent `ensure` per object.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    time::Instant,
};

use gantry_model::ObservedStatus;
use parking_lot::Mutex;

/// A desired state the provider confirmed, and what it reported.
#[derive(Clone, Debug)]
pub struct Ensured {
    /// Fingerprint of the desired state passed to `ensure` (a hash, not a
    /// copy: with many nodes a desired state is kilobytes, times every
    /// balancer).
    pub fingerprint: u64,
    /// What `ensure` reported.
    pub observed: ObservedStatus,
    /// When the provider last confirmed it (ensure or an empty plan).
    pub confirmed_at: Instant,
}

/// A desired state the provider rejected permanently.
#[derive(Clone, Debug)]
pub struct Failed {
    /// Fingerprint of the rejected desired state.
    pub fingerprint: u64,
    /// When it was rejected.
    pub at: Instant,
    /// The error's text.
    pub message: String,
    /// The error's category.
    pub category: &'static str,
}

#[derive(Debug, Default)]
struct Inner {
    ensured: HashMap<(String, String), Ensured>,
    failed: HashMap<(String, String), Failed>,
    /// uid -> classes where a balancer may exist.
    placements: HashMap<String, BTreeSet<String>>,
    /// Classes whose inventory could not be listed at startup: any object
    /// may have a balancer there until a delete in that class succeeds.
    unknown_classes: BTreeSet<String>,
    /// uid -> unknown classes already cleaned for it.
    cleared_unknown: HashMap<String, BTreeSet<String>>,
    /// uid -> keys of Events already published.
    events: HashMap<String, HashSet<String>>,
}

/// The controller's in-memory state; see the module docs.
#[derive(Debug, Default)]
pub struct Memory {
    inner: Mutex<Inner>,
}

impl Memory {
    /// The last confirmed state of `uid` in `class`.
    pub fn ensured(&self, uid: &str, class: &str) -> Option<Ensured> {
        self.inner
            .lock()
            .ensured
            .get(&(uid.to_string(), class.to_string()))
            .cloned()
    }

    /// Remember a confirmed state.
    pub fn set_ensured(&self, uid: &str, class: &str, ensured: Ensured) {
        self.inner
            .lock()
            .ensured
            .insert((uid.to_string(), class.to_string()), ensured);
    }

    /// Forget the confirmed state of `uid` in `class` (after a delete, or
    /// when the provider's answer can no longer be trusted).
    pub fn forget_ensured(&self, uid: &str, class: &str) {
        self.inner
            .lock()
            .ensured
            .remove(&(uid.to_string(), class.to_string()));
    }

    /// The last permanent rejection of `uid` in `class`.
    pub fn failed(&self, uid: &str, class: &str) -> Option<Failed> {
        self.inner
            .lock()
            .failed
            .get(&(uid.to_string(), class.to_string()))
            .cloned()
    }

    /// Remember a permanent rejection (`None` clears it).
    pub fn set_failed(&self, uid: &str, class: &str, failed: Option<Failed>) {
        let key = (uid.to_string(), class.to_string());
        let mut inner = self.inner.lock();
        match failed {
            Some(f) => inner.failed.insert(key, f),
            None => inner.failed.remove(&key),
        };
    }

    /// Forget every permanent rejection in `class` and return the UIDs it
    /// held: capacity in the class was just freed (a balancer was deleted),
    /// so what failed for lack of it (an exhausted pool, a taken address)
    /// deserves another attempt now rather than after the retry interval.
    pub fn take_failed_in_class(&self, class: &str) -> Vec<String> {
        let mut inner = self.inner.lock();
        let uids: Vec<String> = inner
            .failed
            .keys()
            .filter(|(_, c)| c == class)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in &uids {
            inner.failed.remove(&(uid.clone(), class.to_string()));
        }
        uids
    }

    /// Record that `uid` may have a balancer in `class`.
    pub fn add_placement(&self, uid: &str, class: &str) {
        self.inner
            .lock()
            .placements
            .entry(uid.to_string())
            .or_default()
            .insert(class.to_string());
    }

    /// Record that `uid` has no balancer in `class` any more.
    pub fn remove_placement(&self, uid: &str, class: &str) {
        let mut inner = self.inner.lock();
        if let Some(set) = inner.placements.get_mut(uid) {
            set.remove(class);
            if set.is_empty() {
                inner.placements.remove(uid);
            }
        }
        if inner.unknown_classes.contains(class) {
            inner
                .cleared_unknown
                .entry(uid.to_string())
                .or_default()
                .insert(class.to_string());
        }
        inner.ensured.remove(&(uid.to_string(), class.to_string()));
    }

    /// Mark `class` as one whose inventory is unknown.
    pub fn add_unknown_class(&self, class: &str) {
        self.inner.lock().unknown_classes.insert(class.to_string());
    }

    /// Every class where `uid` may have a balancer: known placements plus
    /// unknown classes not yet cleaned for it.
    pub fn placements(&self, uid: &str) -> BTreeSet<String> {
        let inner = self.inner.lock();
        let mut out = inner.placements.get(uid).cloned().unwrap_or_default();
        let cleared = inner.cleared_unknown.get(uid);
        for class in &inner.unknown_classes {
            if !cleared.is_some_and(|c| c.contains(class)) {
                out.insert(class.clone());
            }
        }
        out
    }

    /// Number of objects with a known placement, per class.
    pub fn placement_counts(&self) -> BTreeMap<String, i64> {
        let inner = self.inner.lock();
        let mut counts = BTreeMap::new();
        for classes in inner.placements.values() {
            for class in classes {
                *counts.entry(class.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Whether the Event `key` is new for `uid` (and remember it).
    pub fn first_event(&self, uid: &str, key: &str) -> bool {
        self.inner
            .lock()
            .events
            .entry(uid.to_string())
            .or_default()
            .insert(key.to_string())
    }

    /// Forget published Events of `uid` whose key starts with `prefix`, so
    /// that a recurrence after a change is published again.
    pub fn forget_events(&self, uid: &str, prefix: &str) {
        if let Some(set) = self.inner.lock().events.get_mut(uid) {
            set.retain(|k| !k.starts_with(prefix));
        }
    }

    /// Forget everything about `uid` (its object is gone).
    pub fn forget(&self, uid: &str) {
        let mut inner = self.inner.lock();
        inner.ensured.retain(|(u, _), _| u != uid);
        inner.failed.retain(|(u, _), _| u != uid);
        inner.placements.remove(uid);
        inner.events.remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_classes_count_as_placements_until_cleaned() {
        let m = Memory::default();
        m.add_placement("u1", "a");
        m.add_unknown_class("b");
        assert_eq!(
            m.placements("u1"),
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
        assert_eq!(m.placements("u2"), BTreeSet::from(["b".to_string()]));
        m.remove_placement("u1", "b");
        m.remove_placement("u1", "a");
        assert!(m.placements("u1").is_empty());
        assert_eq!(m.placements("u2"), BTreeSet::from(["b".to_string()]));
    }

    #[test]
    fn events_are_published_once_until_forgotten() {
        let m = Memory::default();
        assert!(m.first_event("u", "err:boom"));
        assert!(!m.first_event("u", "err:boom"));
        m.forget_events("u", "err:");
        assert!(m.first_event("u", "err:boom"));
    }
}
