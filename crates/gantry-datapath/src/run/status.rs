//! Reporting: each instance merge-patches only `status.nodes.<its node>` on
//! the `/status` subresource, so instances never overwrite each other, and
//! only when the entry would change, so status writes do not cause churn.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use gantry_model::{
    class::LocalMode,
    local::{LocalLoadBalancer, LocalNodeStatus},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};

use crate::{config::Readiness, error::DatapathError};

/// Field manager of status patches.
pub const FIELD_MANAGER: &str = "gantry-datapath";

/// Patches this node's entries.
pub(crate) struct StatusReporter {
    api: Api<LocalLoadBalancer>,
    node: String,
    /// What was last written successfully, by object name, with the UID it
    /// was written to (a re-created object starts blank).
    written: BTreeMap<String, (Option<String>, LocalNodeStatus)>,
}

impl StatusReporter {
    /// A reporter for `node`.
    pub fn new(api: Api<LocalLoadBalancer>, node: String) -> Self {
        Self {
            api,
            node,
            written: BTreeMap::new(),
        }
    }

    /// Writes the entries of `readiness` that differ from both what the
    /// objects show and what was last written. `held` are the `l2`
    /// addresses this node holds: only those are served of an `l2` object.
    pub async fn report(
        &mut self,
        objects: &BTreeMap<String, LocalLoadBalancer>,
        readiness: &BTreeMap<String, Readiness>,
        held: &BTreeSet<IpAddr>,
    ) {
        self.written.retain(|name, _| objects.contains_key(name));
        for (name, r) in readiness {
            let Some(obj) = objects.get(name) else {
                continue;
            };
            // The addresses served at the reported generation, so the
            // provider can tell a balancer keeps serving during a reload.
            let addresses = if r.ready && obj.metadata.generation == Some(r.generation) {
                served(obj, held)
            } else {
                Vec::new()
            };
            let want = LocalNodeStatus {
                observed_generation: r.generation,
                ready: r.ready,
                message: r.message.clone(),
                addresses,
            };
            let uid = obj.metadata.uid.clone();
            let shown = obj.status.as_ref().and_then(|s| s.nodes.get(&self.node));
            let written = self
                .written
                .get(name)
                .is_some_and(|(u, w)| *u == uid && *w == want);
            if shown == Some(&want) || written {
                continue;
            }
            match self.patch(name, &want).await {
                Ok(()) => {
                    self.written.insert(name.clone(), (uid, want));
                }
                Err(error) => tracing::warn!(%error, "Status not written; will retry"),
            }
        }
    }

    async fn patch(&self, name: &str, status: &LocalNodeStatus) -> Result<(), DatapathError> {
        // `message: null` removes a stale message under merge-patch rules.
        let patch = serde_json::json!({
            "status": { "nodes": { &self.node: {
                "observedGeneration": status.observed_generation,
                "ready": status.ready,
                "message": status.message,
                "addresses": (!status.addresses.is_empty()).then_some(&status.addresses),
            }}}
        });
        let params = PatchParams::apply(FIELD_MANAGER);
        match self
            .api
            .patch_status(name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(DatapathError::PatchStatus {
                name: name.to_owned(),
                source,
            }),
        }
    }
}

/// The spec addresses of `obj` this node serves: all of them, except in
/// `l2` mode where only the ones it holds reach it.
fn served(obj: &LocalLoadBalancer, held: &BTreeSet<IpAddr>) -> Vec<IpAddr> {
    let all = obj.spec.addresses.iter().copied();
    if obj.spec.mode == LocalMode::L2 {
        all.filter(|a| held.contains(a)).collect()
    } else {
        all.collect()
    }
}
