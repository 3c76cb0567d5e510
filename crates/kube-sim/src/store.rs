//! The one in-memory store: objects as `serde_json::Value` keyed by
//! resource/namespace/name, the global monotonic resourceVersion, the bounded
//! event history watches resume from, and the fan-out to live watchers.
//!
//! Everything sits behind one lock: writes are short (no I/O under the
//! lock), and one lock makes "read, check preconditions, write, publish" atomic
//! the way etcd transactions are for the real server.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, OnceLock},
};

use bytes::Bytes;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{registry::Registry, services::Allocators};

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept in history and fanned out to watchers.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion this change produced.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for deletes: the final state).
    pub object: Arc<Value>,
    /// The object before the change, so selector watches can see objects leave.
    pub old: Option<Arc<Value>>,
    /// `object` serialized once, on first use, and shared by every watcher.
    encoded: OnceLock<Bytes>,
}

impl Event {
    /// A change to publish.
    pub fn new(rv: u64, kind: EventType, object: Arc<Value>, old: Option<Arc<Value>>) -> Self {
        Event {
            rv,
            kind,
            object,
            old,
            encoded: OnceLock::new(),
        }
    }

    /// The JSON of `object`, serialized at most once however many watchers
    /// deliver it.
    pub fn object_json(&self) -> &Bytes {
        self.encoded
            .get_or_init(|| Bytes::from(serde_json::to_vec(&*self.object).unwrap_or_default()))
    }
}

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String);

/// Where an object lives: storage key plus namespace and name.
pub type Location = (String, String, String);

/// Messages a watcher receives.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    /// A change to the watched resource.
    Event(Arc<Event>),
    /// The server asks this watch to end (fault injection).
    Close,
}

struct WatcherTx {
    id: u64,
    tx: mpsc::Sender<WatchMsg>,
}

/// The whole server state.
pub struct State {
    /// The last resourceVersion handed out.
    pub rv: u64,
    /// Served types.
    pub registry: Registry,
    objects: HashMap<String, BTreeMap<ObjKey, Arc<Value>>>,
    history: HashMap<String, VecDeque<Arc<Event>>>,
    history_len: usize,
    history_cap: usize,
    order: VecDeque<String>,
    /// Events with rv greater than this are still in history; older resumes get 410.
    pub floor: u64,
    watchers: HashMap<String, Vec<WatcherTx>>,
    next_watcher: u64,
    /// Capacity of each watcher's queue; a watcher that falls this far behind is closed.
    pub watch_queue: usize,
    dependents: HashMap<String, BTreeSet<Location>>,
    uids: HashMap<String, Location>,
    /// ClusterIP and NodePort allocators.
    pub alloc: Allocators,
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl State {
    /// A fresh state.
    pub fn new(alloc: Allocators, history_cap: usize) -> Self {
        State {
            rv: 1,
            registry: Registry::default(),
            objects: HashMap::new(),
            history: HashMap::new(),
            history_len: 0,
            history_cap: history_cap.max(1),
            order: VecDeque::new(),
            floor: 1,
            watchers: HashMap::new(),
            next_watcher: 0,
            watch_queue: 8192,
            dependents: HashMap::new(),
            uids: HashMap::new(),
            alloc,
        }
    }

    /// Reads one object.
    pub fn get(&self, key: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(key)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    /// All objects of a resource, optionally in one namespace, in key order.
    pub fn iter<'a>(
        &'a self,
        key: &str,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a> {
        match self.objects.get(key) {
            None => Box::new(std::iter::empty()),
            Some(m) => match ns {
                None => Box::new(m.iter()),
                Some(ns) => Box::new(
                    m.range((ns.to_string(), String::new())..)
                        .take_while(move |((n, _), _)| n == ns),
                ),
            },
        }
    }

    /// Objects of a resource after `start` (exclusive), for `continue`.
    pub fn iter_after<'a>(
        &'a self,
        key: &str,
        ns: Option<&'a str>,
        start: ObjKey,
    ) -> Box<dyn Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a> {
        use std::ops::Bound;
        match self.objects.get(key) {
            None => Box::new(std::iter::empty()),
            Some(m) => Box::new(
                m.range((Bound::Excluded(start), Bound::Unbounded))
                    .take_while(move |((n, _), _)| ns.is_none_or(|ns| n == ns)),
            ),
        }
    }

    /// Number of objects of a resource, optionally in one namespace.
    pub fn count(&self, key: &str, ns: Option<&str>) -> usize {
        self.iter(key, ns).count()
    }

    /// Whether a namespace has any namespaced object left.
    pub fn namespace_is_empty(&self, ns: &str) -> bool {
        self.objects
            .iter()
            .filter(|(k, _)| k.as_str() != "/namespaces")
            .all(|(_, m)| {
                m.range((ns.to_string(), String::new())..)
                    .next()
                    .is_none_or(|((n, _), _)| n != ns)
            })
    }

    /// Every stored location in a namespace.
    pub fn locations_in_namespace(&self, ns: &str) -> Vec<Location> {
        let mut out = Vec::new();
        for (key, m) in &self.objects {
            if key == "/namespaces" {
                continue;
            }
            for ((n, name), _) in m.range((ns.to_string(), String::new())..) {
                if n != ns {
                    break;
                }
                out.push((key.clone(), n.clone(), name.clone()));
            }
        }
        out
    }

    /// Whether an object with this uid exists.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Owner uids of an object.
    pub fn owner_uids(obj: &Value) -> Vec<String> {
        owner_uids(obj)
    }

    /// Dependents recorded for an owner uid.
    pub fn dependents_of(&self, uid: &str) -> Vec<Location> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn set_rv(obj: &mut Value, rv: u64) {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
        }
    }

    fn index(&mut self, key: &str, ns: &str, name: &str, old: Option<&Value>, new: Option<&Value>) {
        let loc: Location = (key.to_string(), ns.to_string(), name.to_string());
        if let Some(old) = old {
            self.uids.remove(crate::object::uid(old));
            for uid in owner_uids(old) {
                if let Some(set) = self.dependents.get_mut(&uid) {
                    set.remove(&loc);
                    if set.is_empty() {
                        self.dependents.remove(&uid);
                    }
                }
            }
        }
        if let Some(new) = new {
            let uid = crate::object::uid(new);
            if !uid.is_empty() {
                self.uids.insert(uid.to_string(), loc.clone());
            }
            for uid in owner_uids(new) {
                self.dependents.entry(uid).or_default().insert(loc.clone());
            }
        }
    }

    /// Stores a new object, stamping a fresh resourceVersion, and publishes ADDED.
    pub fn insert(&mut self, key: &str, ns: &str, name: &str, mut obj: Value) -> Arc<Value> {
        let rv = self.bump();
        Self::set_rv(&mut obj, rv);
        self.index(key, ns, name, None, Some(&obj));
        let obj = Arc::new(obj);
        self.objects
            .entry(key.to_string())
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        self.publish(key, Event::new(rv, EventType::Added, obj.clone(), None));
        obj
    }

    /// Replaces an existing object, stamping a fresh resourceVersion, and publishes MODIFIED.
    pub fn replace(&mut self, key: &str, ns: &str, name: &str, mut obj: Value) -> Arc<Value> {
        let rv = self.bump();
        Self::set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        let old = self
            .objects
            .entry(key.to_string())
            .or_default()
            .insert((ns.to_string(), name.to_string()), obj.clone());
        self.index(key, ns, name, old.as_deref(), Some(&obj));
        self.publish(key, Event::new(rv, EventType::Modified, obj.clone(), old));
        obj
    }

    /// Removes an object and publishes DELETED with the final state (`last`,
    /// or the stored object) at a fresh resourceVersion.
    pub fn remove(
        &mut self,
        key: &str,
        ns: &str,
        name: &str,
        last: Option<Value>,
    ) -> Option<Arc<Value>> {
        let old = self
            .objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.index(key, ns, name, Some(&old), None);
        let rv = self.bump();
        let mut last = last.unwrap_or_else(|| (*old).clone());
        Self::set_rv(&mut last, rv);
        let last = Arc::new(last);
        self.publish(
            key,
            Event::new(rv, EventType::Deleted, last.clone(), Some(old)),
        );
        Some(last)
    }

    fn publish(&mut self, key: &str, event: Event) {
        let event = Arc::new(event);
        self.history
            .entry(key.to_string())
            .or_default()
            .push_back(event.clone());
        self.order.push_back(key.to_string());
        self.history_len += 1;
        while self.history_len > self.history_cap {
            let Some(k) = self.order.pop_front() else {
                break;
            };
            if let Some(q) = self.history.get_mut(&k)
                && let Some(e) = q.pop_front()
            {
                self.floor = self.floor.max(e.rv);
            }
            self.history_len -= 1;
        }
        if let Some(ws) = self.watchers.get_mut(key) {
            // A watcher that cannot keep up is dropped (its stream ends) rather than
            // letting its queue grow: the real server does the same to slow watchers.
            ws.retain(|w| w.tx.try_send(WatchMsg::Event(event.clone())).is_ok());
        }
    }

    /// Events of one resource after `rv`, or `Err(floor)` when `rv` is older than the history.
    pub fn events_since(&self, key: &str, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < self.floor {
            return Err(self.floor);
        }
        Ok(self
            .history
            .get(key)
            .map(|q| {
                let start = q.partition_point(|e| e.rv <= rv);
                q.range(start..).cloned().collect()
            })
            .unwrap_or_default())
    }

    /// Registers a watcher on a resource; returns its id and receiving end.
    pub fn subscribe(&mut self, key: &str) -> (u64, mpsc::Receiver<WatchMsg>) {
        let (tx, rx) = mpsc::channel(self.watch_queue.max(16));
        self.next_watcher += 1;
        let id = self.next_watcher;
        self.watchers
            .entry(key.to_string())
            .or_default()
            .push(WatcherTx { id, tx });
        (id, rx)
    }

    /// Unregisters a watcher.
    pub fn unsubscribe(&mut self, key: &str, id: u64) {
        if let Some(ws) = self.watchers.get_mut(key) {
            ws.retain(|w| w.id != id);
        }
    }

    /// Ends every open watch.
    pub fn close_watches(&mut self) {
        for (_, ws) in self.watchers.drain() {
            for w in ws {
                // A full queue still ends: dropping the sender closes the stream.
                let _ = w.tx.try_send(WatchMsg::Close);
            }
        }
    }

    /// Forgets all history so any resume from an older resourceVersion gets 410.
    pub fn expire_history(&mut self) {
        self.history.clear();
        self.order.clear();
        self.history_len = 0;
        // Like a compaction followed by a write: the current revision moves
        // on, so every version handed out so far is now too old, while a
        // fresh list gets a usable one.
        self.rv += 1;
        self.floor = self.rv;
    }

    /// Number of open watchers (for tests and metrics).
    pub fn watcher_count(&self) -> usize {
        self.watchers.values().map(Vec::len).sum()
    }
}
