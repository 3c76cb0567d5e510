//! Who holds an address: pure decisions over what one Lease says.
//!
//! One `coordination.k8s.io/v1` Lease per address, holder = node name. The
//! API server's optimistic concurrency (a replace carries the
//! `resourceVersion` read) guarantees a single winner when candidates race;
//! the rules here only decide when a node *tries*, so that the preferred
//! node usually wins without a race and addresses spread over the nodes.

use std::{net::IpAddr, time::Duration};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Prefix of every address Lease's name.
pub(crate) const LEASE_PREFIX: &str = "gantry-l2-";

/// Name of the Lease of `addr`: `gantry-l2-192-0-2-1`,
/// `gantry-l2-2001-db8-0-0-0-0-0-1` (IPv6 written in full so that the name
/// never ends with a dash, which object names may not).
pub(crate) fn lease_name(addr: IpAddr) -> String {
    let body = match addr {
        IpAddr::V4(v4) => v4
            .octets()
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join("-"),
    };
    format!("{LEASE_PREFIX}{body}")
}

/// How strongly `node` is preferred for `addr`: FNV-1a over both, so every
/// instance (whatever its build) ranks the same way and different addresses
/// prefer different nodes.
pub(crate) fn preference(addr: IpAddr, node: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = addr.to_string().into_bytes();
    for b in bytes.iter().chain(b"/").chain(node.as_bytes()) {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Position of `me` among `candidates` (which may or may not list `me`) by
/// descending preference for `addr`; 0 = most preferred. Ties (equal hashes)
/// are broken by name so that ranks are total.
pub(crate) fn rank(addr: IpAddr, me: &str, candidates: &[String]) -> usize {
    let mine = (preference(addr, me), me);
    candidates
        .iter()
        .filter(|c| c.as_str() != me)
        .filter(|c| (preference(addr, c), c.as_str()) > mine)
        .count()
}

/// What one Lease says, reduced to what the decisions need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LeaseState {
    /// Current holder; `None` when released.
    pub holder: Option<String>,
    /// When the holder's claim ends: last renewal + duration. A released
    /// Lease ends at its last renewal (the release time).
    pub expires: Timestamp,
}

impl LeaseState {
    /// The state of a Lease with these fields.
    pub fn new(
        holder: Option<&str>,
        renewed: Option<Timestamp>,
        duration_seconds: Option<i32>,
    ) -> Self {
        let holder = holder.filter(|h| !h.is_empty()).map(str::to_owned);
        let renewed = renewed.unwrap_or(Timestamp::UNIX_EPOCH);
        let expires = if holder.is_some() {
            let secs = i64::from(duration_seconds.unwrap_or(0).max(0));
            renewed
                .checked_add(SignedDuration::from_secs(secs))
                .unwrap_or(Timestamp::MAX)
        } else {
            renewed
        };
        Self { holder, expires }
    }
}

/// What this node should do about one address now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// This node holds the Lease and stays a candidate: keep it.
    Keep,
    /// This node holds the Lease but is no longer a candidate: give it up.
    Release,
    /// The Lease is free (or absent) and it is this node's turn: take it.
    Acquire,
    /// Someone else holds it, or it is another node's turn: do nothing (and
    /// hold nothing).
    Wait,
}

/// Inputs of [`decide`] besides the Lease.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Turn {
    /// Whether this node may serve the address (datapath ready for it).
    pub eligible: bool,
    /// This node's [`rank`] among the candidates.
    pub rank: usize,
    /// How long after the Lease became free each rank waits for the ones
    /// before it (rank 0 at once).
    pub step: Duration,
    /// Since when this node has seen no Lease for the address (used as the
    /// moment it became free when there is none).
    pub absent_since: Timestamp,
}

/// Decides for `me` given the Lease (`None` = it does not exist) at `now`.
pub(crate) fn decide(me: &str, lease: Option<&LeaseState>, turn: Turn, now: Timestamp) -> Decision {
    let mine = lease.is_some_and(|l| l.holder.as_deref() == Some(me));
    if mine {
        return if turn.eligible {
            Decision::Keep
        } else {
            Decision::Release
        };
    }
    if !turn.eligible {
        return Decision::Wait;
    }
    let free_since = match lease {
        None => turn.absent_since,
        Some(l) if l.expires <= now => l.expires,
        Some(_) => return Decision::Wait,
    };
    let wait = turn
        .step
        .checked_mul(u32::try_from(turn.rank).unwrap_or(u32::MAX))
        .unwrap_or(Duration::MAX);
    let wait = SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX);
    let turn_at = free_since.checked_add(wait).unwrap_or(Timestamp::MAX);
    if now >= turn_at {
        Decision::Acquire
    } else {
        Decision::Wait
    }
}

/// Whether a holder whose last successful renewal was `since_renewal` ago
/// must stop announcing: its claim may have ended, so another node may
/// already hold the address. `margin` covers clock and request latency.
pub(crate) fn claim_lapsed(since_renewal: Duration, lease: Duration, margin: Duration) -> bool {
    since_renewal + margin >= lease
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
