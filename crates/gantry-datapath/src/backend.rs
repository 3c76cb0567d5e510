//! Backend nodes and how one is picked: round robin over healthy nodes.
//!
//! Health has two inputs. Active checks (see `health`) move a node to
//! unhealthy after [`FAILURES_TO_EJECT`] consecutive failures and back after
//! one success; the datapath's own connection failures mark a node *suspect*
//! at once (passive ejection), which only the next successful active check
//! clears. Picking skips unhealthy and suspect nodes; when no node is left it
//! tries them all rather than refusing, since a stale verdict costs one
//! failed connect while refusing costs the whole service.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering},
    },
};

use crate::l7::pool::IdleConns;

/// Consecutive failed active checks that make a node unhealthy.
pub const FAILURES_TO_EJECT: u32 = 2;

/// One node port on one node, with its health.
#[derive(Debug)]
pub(crate) struct Target {
    /// Node name, for metrics and logs.
    pub node: String,
    /// Where its node port answers.
    pub addr: SocketAddr,
    /// Idle HTTP keep-alive connections to it (L7 backends only).
    pub http_idle: IdleConns,
    healthy: AtomicBool,
    suspect: AtomicBool,
    failures: AtomicU32,
}

impl Target {
    /// A node not yet checked; counted healthy until its first check.
    pub fn new(node: String, addr: SocketAddr) -> Self {
        Self {
            node,
            addr,
            http_idle: IdleConns::default(),
            healthy: AtomicBool::new(true),
            suspect: AtomicBool::new(false),
            failures: AtomicU32::new(0),
        }
    }

    /// Whether picking should choose this node.
    pub fn usable(&self) -> bool {
        self.healthy.load(Ordering::Acquire) && !self.suspect.load(Ordering::Acquire)
    }

    /// Whether the active checks consider the node healthy.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Result of the first check of a new node: decides at once, since there
    /// is no earlier verdict to be sticky about.
    pub fn record_initial(&self, ok: bool) {
        self.failures
            .store(if ok { 0 } else { FAILURES_TO_EJECT }, Ordering::Release);
        self.healthy.store(ok, Ordering::Release);
        self.suspect.store(false, Ordering::Release);
    }

    /// Result of a periodic active check; returns whether `healthy` changed.
    pub fn record_check(&self, ok: bool) -> bool {
        if ok {
            self.failures.store(0, Ordering::Release);
            self.suspect.store(false, Ordering::Release);
            !self.healthy.swap(true, Ordering::AcqRel)
        } else {
            let failures = self
                .failures
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            failures >= FAILURES_TO_EJECT && self.healthy.swap(false, Ordering::AcqRel)
        }
    }

    /// A connection to the node failed: stop picking it until it answers an
    /// active check again.
    pub fn mark_suspect(&self) {
        if !self.suspect.swap(true, Ordering::AcqRel) {
            tracing::info!(node = %self.node, addr = %self.addr, "Backend marked suspect after a failed connection");
        }
    }
}

/// The nodes behind one frontend or L7 backend, picked in turn.
#[derive(Debug, Default)]
pub(crate) struct BackendSet {
    targets: Vec<Arc<Target>>,
    next: AtomicUsize,
}

impl BackendSet {
    /// A set over `targets`, in the given order.
    pub fn new(targets: Vec<Arc<Target>>) -> Self {
        Self {
            targets,
            next: AtomicUsize::new(0),
        }
    }

    /// Nodes to try for one connection, in order: usable nodes starting at
    /// the round-robin position, or every node when none is usable. Lazy
    /// and allocation-free: it runs once per request.
    pub fn candidates(&self) -> Candidates<'_> {
        let n = self.targets.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        Candidates {
            targets: &self.targets,
            start,
            tried: 0,
            all: !self.targets.iter().any(|t| t.usable()),
        }
    }

    /// How many nodes the active checks consider healthy.
    pub fn healthy_count(&self) -> usize {
        self.targets.iter().filter(|t| t.healthy()).count()
    }

    /// Whether the set has no node at all.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// The nodes [`BackendSet::candidates`] hands out, in order.
#[derive(Debug)]
pub(crate) struct Candidates<'a> {
    targets: &'a [Arc<Target>],
    start: usize,
    tried: usize,
    /// No node was usable when the walk began: hand out every one.
    all: bool,
}

impl<'a> Iterator for Candidates<'a> {
    type Item = &'a Arc<Target>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.targets.len();
        while self.tried < n {
            let t = &self.targets[(self.start + self.tried) % n];
            self.tried += 1;
            if self.all || t.usable() {
                return Some(t);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: u8) -> BackendSet {
        BackendSet::new(
            (0..n)
                .map(|i| {
                    Arc::new(Target::new(
                        format!("n{i}"),
                        SocketAddr::from(([127, 0, 0, i], 80)),
                    ))
                })
                .collect(),
        )
    }

    #[test]
    fn round_robin_skips_unusable_and_fails_open() {
        let s = set(3);
        let first = |s: &BackendSet| s.candidates().next().expect("a node").node.clone();
        let firsts: Vec<_> = (0..3).map(|_| first(&s)).collect();
        assert_eq!(firsts, ["n0", "n1", "n2"]);
        s.targets[1].mark_suspect();
        let firsts: Vec<_> = (0..3).map(|_| first(&s)).collect();
        assert_eq!(firsts, ["n0", "n2", "n2"]);
        let order: Vec<_> = s.candidates().map(|t| t.node.clone()).collect();
        assert_eq!(order, ["n0", "n2"], "suspect skipped");
        s.targets[0].record_initial(false);
        s.targets[2].record_initial(false);
        assert_eq!(s.candidates().count(), 3, "no usable node: try them all");
        assert_eq!(BackendSet::default().candidates().count(), 0);
        assert_eq!(s.healthy_count(), 1, "suspect is not unhealthy");
    }

    #[test]
    fn two_failures_eject_one_success_restores() {
        let t = Target::new("n".into(), SocketAddr::from(([127, 0, 0, 1], 80)));
        assert!(!t.record_check(false));
        assert!(t.healthy());
        assert!(t.record_check(false));
        assert!(!t.healthy());
        assert!(!t.record_check(false));
        assert!(t.record_check(true));
        assert!(t.usable());
        t.mark_suspect();
        assert!(!t.usable() && t.healthy());
        assert!(!t.record_check(true));
        assert!(t.usable());
    }
}
