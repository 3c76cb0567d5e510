//! Pipeline step "watch" for Secrets, narrowed to what Ingresses reference.
//!
//! The controller never lists or watches Secrets cluster-wide. During an
//! Ingress's translation it GETs exactly the Secrets its `spec.tls[i].secretName`
//! entries name, in the Ingress's own namespace, after checking each name (no
//! `/`, no `..`, a valid object name): a bad reference is rejected before any
//! API read. To follow certificate rotation, each referenced Secret gets its
//! own watch, `fieldSelector=metadata.name=<name>` in its namespace, started
//! when the first Ingress references it and stopped when the last one stops.
//!
//! Why: RBAC can then grant `get` and `watch` on Secrets without any `list`
//! (the per-name watch starts with a streaming list, a watch with
//! `sendInitialEvents`), and a compromised or confused controller cannot
//! read Secrets no Ingress of Gantry's names.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Weak},
};

use futures::{StreamExt, channel::mpsc::UnboundedSender};
use k8s_openapi::api::{core::v1::Secret, networking::v1::Ingress};
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::ObjectRef,
        watcher::{self, Event, watcher},
    },
};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// `(namespace, name)` of a Secret.
type SecretKey = (String, String);

/// One watched Secret.
struct Entry {
    /// The narrow watch; aborted when the entry goes.
    task: JoinHandle<()>,
    /// Names of the Ingresses (in the Secret's namespace) that reference it.
    referencing: BTreeSet<String>,
    /// `resourceVersion` last read or watched (`None`: absent). A watch event
    /// re-triggers the Ingresses only when it differs, so the watch's own
    /// initial list does not cause a second reconcile.
    seen: Option<String>,
}

type Entries = Mutex<HashMap<SecretKey, Entry>>;

/// The registry of referenced Secrets and their watches; see the module docs.
pub struct SecretWatches {
    client: Client,
    ingresses: UnboundedSender<ObjectRef<Ingress>>,
    entries: Arc<Entries>,
}

impl std::fmt::Debug for SecretWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWatches")
            .field("watched", &self.watched())
            .finish_non_exhaustive()
    }
}

impl Drop for SecretWatches {
    fn drop(&mut self) {
        // The watches are spawned tasks: they would outlive the controller.
        for (_, entry) in self.entries.lock().drain() {
            entry.task.abort();
        }
    }
}

/// The Secrets an Ingress names that were read for its translation.
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    /// The Secrets found (missing ones are simply absent; translation
    /// reports them).
    pub secrets: Vec<Secret>,
}

/// Check a `spec.tls[i].secretName` before anything is read (the rule lives
/// with translation, so both refuse exactly the same names).
pub use gantry_model::translate::check_secret_name;

/// The non-empty `spec.tls[i].secretName` entries of `ing`, with their index.
fn tls_references(ing: &Ingress) -> Vec<(usize, String)> {
    ing.spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .enumerate()
        .filter_map(|(i, t)| {
            t.secret_name
                .as_ref()
                .filter(|n| !n.is_empty())
                .map(|n| (i, n.clone()))
        })
        .collect()
}

// === impl SecretWatches ===

impl SecretWatches {
    /// An empty registry; watches use `client`, changes trigger `ingresses`.
    pub fn new(client: Client, ingresses: UnboundedSender<ObjectRef<Ingress>>) -> Self {
        Self {
            client,
            ingresses,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The Secrets currently watched, sorted.
    pub fn watched(&self) -> Vec<(String, String)> {
        let mut keys: Vec<_> = self.entries.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Read the Secrets `ing` references (checking every name first) and
    /// make sure each is watched on its behalf. References it dropped are
    /// released.
    pub async fn fetch(&self, ing: &Ingress) -> Result<Fetched> {
        let ns = ing
            .namespace()
            .ok_or(Error::MissingObjectKey(".metadata.namespace"))?;
        let name = ing.name_any();
        let refs = tls_references(ing);
        for (i, secret) in &refs {
            if let Err(e) = check_secret_name(*i, secret) {
                // Nothing is read for a bad reference, and nothing stays
                // watched on behalf of an Ingress that cannot be translated.
                self.release(&ns, &name);
                return Err(Error::Translate(Box::new(e)));
            }
        }
        let wanted: BTreeSet<String> = refs.into_iter().map(|(_, n)| n).collect();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let mut secrets = Vec::new();
        let mut read: BTreeMap<String, Option<String>> = BTreeMap::new();
        for secret in &wanted {
            let got = api.get_opt(secret).await.map_err(|source| Error::Get {
                what: format!("Secret {ns}/{secret}"),
                source,
            })?;
            read.insert(
                secret.clone(),
                got.as_ref().and_then(|s| s.resource_version()),
            );
            secrets.extend(got);
        }
        self.set_references(&ns, &name, read);
        Ok(Fetched { secrets })
    }

    /// Make `namespace/ingress` reference exactly the Secrets in `read`
    /// (name -> resourceVersion just read), starting and stopping watches.
    fn set_references(
        &self,
        namespace: &str,
        ingress: &str,
        read: BTreeMap<String, Option<String>>,
    ) {
        let mut entries = self.entries.lock();
        entries.retain(|(ns, secret), entry| {
            if ns == namespace && !read.contains_key(secret) {
                entry.referencing.remove(ingress);
            }
            keep(entry)
        });
        for (secret, rv) in read {
            let key = (namespace.to_string(), secret);
            let entry = entries.entry(key.clone()).or_insert_with(|| {
                tracing::debug!(namespace = key.0, secret = key.1, "Watching Secret");
                Entry {
                    task: tokio::spawn(watch_one(
                        self.client.clone(),
                        key.clone(),
                        Arc::downgrade(&self.entries),
                        self.ingresses.clone(),
                    )),
                    referencing: BTreeSet::new(),
                    seen: rv.clone(),
                }
            });
            entry.referencing.insert(ingress.to_string());
            entry.seen = rv;
        }
    }

    /// `namespace/ingress` references no Secret any more (deleted, or no
    /// longer Gantry's).
    pub fn release(&self, namespace: &str, ingress: &str) {
        self.entries.lock().retain(|(ns, _), entry| {
            if ns == namespace {
                entry.referencing.remove(ingress);
            }
            keep(entry)
        });
    }

    /// Forget every Ingress for which `exists` is false (after a relist,
    /// deletions missed while the watch was down are not delivered).
    pub fn retain_ingresses(&self, exists: impl Fn(&str, &str) -> bool) {
        self.entries.lock().retain(|(ns, _), entry| {
            entry.referencing.retain(|ing| exists(ns, ing));
            keep(entry)
        });
    }
}

/// Whether an entry is still referenced; stops its watch when not.
fn keep(entry: &Entry) -> bool {
    let referenced = !entry.referencing.is_empty();
    if !referenced {
        entry.task.abort();
    }
    referenced
}

/// Record the state a watch observed and re-trigger the referencing
/// Ingresses if it differs from what they last read.
fn observe(
    entries: &Weak<Entries>,
    key: &SecretKey,
    state: Option<String>,
    tx: &UnboundedSender<ObjectRef<Ingress>>,
) {
    let Some(entries) = entries.upgrade() else {
        return;
    };
    let mut entries = entries.lock();
    let Some(entry) = entries.get_mut(key) else {
        return;
    };
    if entry.seen == state {
        return;
    }
    entry.seen = state;
    for ing in &entry.referencing {
        // A closed channel means the controllers are shutting down.
        let _ = tx.unbounded_send(ObjectRef::new(ing).within(&key.0));
    }
}

/// The watch of one Secret, by name, in its namespace.
async fn watch_one(
    client: Client,
    key: SecretKey,
    entries: Weak<Entries>,
    tx: UnboundedSender<ObjectRef<Ingress>>,
) {
    let (ns, name) = &key;
    let api: Api<Secret> = Api::namespaced(client, ns);
    // A streaming list (a watch with `sendInitialEvents`) rather than a
    // list then a watch: the controller needs only the `watch` verb.
    let config = watcher::Config::default()
        .fields(&format!("metadata.name={name}"))
        .streaming_lists();
    let mut stream = watcher(api, config).default_backoff().boxed();
    // Whether the current (re)list delivered the Secret: a list without it
    // means it is gone, and no Delete event is sent for that.
    let mut listed = false;
    while let Some(event) = stream.next().await {
        let state = match event {
            Ok(Event::Apply(s) | Event::InitApply(s)) => {
                listed = true;
                Some(s.resource_version())
            }
            Ok(Event::Delete(_)) => Some(None),
            Ok(Event::Init) => {
                listed = false;
                None
            }
            Ok(Event::InitDone) => (!listed).then_some(None),
            Err(error) => {
                tracing::warn!(%error, namespace = ns, secret = name, "Secret watch failed; retrying with backoff");
                None
            }
        };
        if let Some(state) = state {
            observe(&entries, &key, state, &tx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_checked() {
        for ok in ["site-tls", "a", "tls.example.com", "x1"] {
            assert!(check_secret_name(0, ok).is_ok(), "{ok}");
        }
        for bad in [
            "other/site-tls",
            "../etc",
            "a..b",
            "Site",
            "-a",
            "a_b",
            "a;b",
            "",
            &"a".repeat(254),
        ] {
            let err = check_secret_name(2, bad).expect_err(bad).to_string();
            assert!(err.contains("spec.tls[2].secretName"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
