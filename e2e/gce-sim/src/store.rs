//! The in-memory store: resources by relative path, operations, and the
//! counters that hand out ids and IP addresses.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::operations::OperationRecord;

/// One stored resource: its JSON with links kept relative (see `links`).
pub type Resource = Map<String, Value>;

/// Everything the emulator holds.
#[derive(Debug)]
pub struct State {
    /// Resources keyed by relative path (`projects/p/global/urlMaps/m`);
    /// the ordering makes a collection a contiguous, name-sorted range.
    pub resources: BTreeMap<String, Resource>,
    /// Operations keyed by relative path (`projects/p/global/operations/op`).
    pub operations: BTreeMap<String, OperationRecord>,
    /// How long an operation takes from PENDING to DONE.
    pub operation_delay: Duration,
    /// `requestId` of each accepted mutation -> path of its Operation.
    pub request_ids: HashMap<String, String>,
    /// Resources whose last mutation's Operation is not DONE yet -> when it will be.
    pub busy: HashMap<String, Instant>,
    next_id: u64,
    next_external: u32,
    next_internal: u32,
    generation: u64,
}

impl State {
    /// An empty store.
    pub fn new(operation_delay: Duration) -> Self {
        Self {
            resources: BTreeMap::new(),
            operations: BTreeMap::new(),
            operation_delay,
            request_ids: HashMap::new(),
            busy: HashMap::new(),
            // Real ids are large unsigned 64-bit numbers sent as decimal strings.
            next_id: 5_100_000_000_000_000_000,
            next_external: 0,
            next_internal: 0,
            generation: 0,
        }
    }

    /// Marks a resource as being changed until the current Operation delay passes.
    pub fn mark_busy(&mut self, rel: &str) {
        if self.operation_delay.is_zero() {
            return;
        }
        self.busy
            .insert(rel.to_owned(), Instant::now() + self.operation_delay);
    }

    /// `400 resourceNotReady` while an Operation on `rel` is still running:
    /// the real API refuses to link to, change or delete such a resource.
    pub fn check_ready(&self, rel: &str) -> Result<(), crate::error::ApiError> {
        match self.busy.get(rel) {
            Some(until) if *until > Instant::now() => Err(crate::error::ApiError::not_ready(rel)),
            _ => Ok(()),
        }
    }

    /// A fresh resource or operation id.
    pub fn id(&mut self) -> u64 {
        self.next_id += 7919;
        self.next_id
    }

    /// A fresh external IPv4 address from 100.64.0.0/10, never a routable one.
    pub fn external_ip(&mut self) -> String {
        self.next_external += 1;
        let n = self.next_external;
        format!(
            "{}.{}.{}.{}",
            100,
            64 + ((n >> 16) & 0x3f),
            (n >> 8) & 0xff,
            n & 0xff
        )
    }

    /// A fresh internal IPv4 address from 10.128.0.0/9.
    pub fn internal_ip(&mut self) -> String {
        self.next_internal += 1;
        let n = self.next_internal + 1;
        format!(
            "10.{}.{}.{}",
            128 + ((n >> 16) & 0x7f),
            (n >> 8) & 0xff,
            n & 0xff
        )
    }

    /// A new opaque fingerprint; every write gets a different one. Written
    /// in the URL-safe alphabet, which the Rust client's `bytes` fields
    /// require (it refuses `+` and `/`) and every other client echoes as is.
    pub fn fingerprint(&mut self, rel: &str) -> String {
        self.generation += 1;
        let digest = Sha256::digest(format!("{rel}#{}", self.generation));
        base64::engine::general_purpose::URL_SAFE.encode(&digest[..8])
    }

    /// Resources of one collection in one scope, name-sorted.
    pub fn collection<'a>(
        &'a self,
        scope: &str,
        collection: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Resource)> + 'a {
        let prefix = format!("{scope}/{collection}/");
        self.resources
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }
}

/// The label fingerprint: a digest of the sorted labels; the real API
/// answers `42WmSpB8rSM=` for an empty set, which the emulator keeps.
pub fn label_fingerprint(labels: Option<&Value>) -> String {
    let empty = labels
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    if empty {
        return "42WmSpB8rSM=".to_owned();
    }
    let text = labels.map(Value::to_string).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    base64::engine::general_purpose::URL_SAFE.encode(&digest[..8])
}

/// The current time in the real API's timestamp format
/// (`2026-01-02T03:04:05.678-08:00`, Pacific offset as the real API answers).
pub fn timestamp(at: jiff::Timestamp) -> String {
    let offset = jiff::tz::offset(-8).to_time_zone();
    at.to_zoned(offset)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// A monotonic instant paired with the wall-clock time it was taken.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// For elapsed-time arithmetic.
    pub instant: Instant,
    /// For timestamps.
    pub wall: jiff::Timestamp,
}

impl Moment {
    /// Now.
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            wall: jiff::Timestamp::now(),
        }
    }
}
