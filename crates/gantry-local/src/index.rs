//! The allocation record: which addresses published `LocalLoadBalancer`
//! objects hold, and the choice of an address for one balancer.
//!
//! The objects themselves are the record (a restarted provider rebuilds this
//! index by listing them), so nothing here is state that could be lost; the
//! index only saves a list per ensure.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use gantry_model::{
    ProviderError,
    class::LocalMode,
    desired::Protocol,
    local::{LocalLoadBalancer, LocalLoadBalancerSpec},
};

use crate::{build::spec_ports, error::op, labels::ANNOTATION_SHARED_IP_KEY, pool::Pools};

/// One object holding an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// Object name.
    pub(crate) object: String,
    /// `namespace/name` of its owner, for messages.
    pub(crate) owner: String,
    /// Its shared-IP key, if it agreed to share.
    pub(crate) shared_key: Option<String>,
    /// The ports it serves on the address.
    pub(crate) ports: BTreeSet<(u16, Protocol)>,
}

/// Addresses held by published objects.
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    by_address: BTreeMap<IpAddr, Vec<Holder>>,
}

impl Index {
    /// Index every object. Objects of every class and cluster count:
    /// addresses are global on the network, whatever wrote them.
    pub(crate) fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a LocalLoadBalancer>,
    ) -> Self {
        let mut index = Self::default();
        for obj in objects {
            index.insert(obj);
        }
        index
    }

    /// Record `obj`, replacing what was recorded under its name.
    pub(crate) fn insert(&mut self, obj: &LocalLoadBalancer) {
        let Some(name) = obj.metadata.name.clone() else {
            return;
        };
        self.remove(&name);
        let shared_key = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_SHARED_IP_KEY))
            .cloned();
        let holder = Holder {
            object: name,
            owner: format!("{}/{}", obj.spec.owner.namespace, obj.spec.owner.name),
            shared_key,
            ports: spec_ports(&obj.spec),
        };
        for address in &obj.spec.addresses {
            self.by_address
                .entry(*address)
                .or_default()
                .push(holder.clone());
        }
    }

    /// Forget the object called `name`.
    pub(crate) fn remove(&mut self, name: &str) {
        self.by_address.retain(|_, holders| {
            holders.retain(|h| h.object != name);
            !holders.is_empty()
        });
    }

    /// Whether any object holds `ip`.
    pub(crate) fn is_taken(&self, ip: IpAddr) -> bool {
        self.by_address.contains_key(&ip)
    }

    fn others(&self, ip: IpAddr, object: &str) -> impl Iterator<Item = &Holder> {
        self.by_address
            .get(&ip)
            .into_iter()
            .flatten()
            .filter(move |h| h.object != object)
    }
}

/// What allocation needs to know about the balancer asking.
#[derive(Clone, Debug)]
pub(crate) struct Request<'a> {
    /// Its object name (its own entries never conflict with it).
    pub(crate) object: &'a str,
    /// `namespace/name` of its owner.
    pub(crate) owner: &'a str,
    /// The class, for messages.
    pub(crate) class: &'a str,
    /// The address its object already has.
    pub(crate) current: Option<IpAddr>,
    /// The address it asks for.
    pub(crate) requested: Option<IpAddr>,
    /// Its shared-IP key.
    pub(crate) shared_key: Option<&'a str>,
    /// Its frontend ports.
    pub(crate) ports: &'a BTreeSet<(u16, Protocol)>,
}

/// The current `l2` address of an existing object, which must never move.
pub(crate) fn current_address(spec: &LocalLoadBalancerSpec) -> Option<IpAddr> {
    (spec.mode == LocalMode::L2)
        .then(|| spec.addresses.first().copied())
        .flatten()
}

/// Whether `req` needs an address it does not hold yet (so the caller must
/// look at a fresh record and serialise with other allocators).
pub(crate) fn needs_new_address(req: &Request<'_>) -> bool {
    match (req.current, req.requested) {
        (None, _) => true,
        (Some(current), Some(requested)) => current != requested,
        (Some(_), None) => false,
    }
}

/// Choose the address of `req`.
///
/// Order: an explicitly requested address (a changed request is the one way
/// an address moves, because the user asked for it); else the address the
/// object already has; else an address shared under the same key; else the
/// lowest free address, IPv4 first unless the pools are IPv6 only.
pub(crate) fn allocate(
    pools: &Pools,
    index: &Index,
    req: &Request<'_>,
) -> Result<IpAddr, ProviderError> {
    if let Some(ip) = req.requested {
        if req.current != Some(ip) && !pools.contains(ip) {
            return Err(rejected(format!(
                "spec.loadBalancerIP {ip} is not in an address pool of class {} ({pools})",
                req.class
            )));
        }
        check_sharing(index, req, ip, "spec.loadBalancerIP")?;
        return Ok(ip);
    }
    if let Some(ip) = req.current {
        check_sharing(index, req, ip, "address")?;
        return Ok(ip);
    }
    if let Some(key) = req.shared_key {
        // Addresses already shared under this key, in address order. The key
        // says the owners want one address, so a port clash is an error to
        // show the user rather than a reason to hand out a second address.
        let keyed: Vec<IpAddr> = index
            .by_address
            .keys()
            .copied()
            .filter(|ip| {
                let mut others = index.others(*ip, req.object).peekable();
                pools.contains(*ip)
                    && others.peek().is_some()
                    && others.all(|h| h.shared_key.as_deref() == Some(key))
            })
            .collect();
        let mut first_clash = None;
        for ip in keyed {
            match check_sharing(index, req, ip, "address") {
                Ok(()) => return Ok(ip),
                Err(e) => {
                    first_clash.get_or_insert(e);
                }
            }
        }
        if let Some(clash) = first_clash {
            return Err(clash);
        }
    }
    let v4 = pools.has_v4();
    pools
        .first_free(v4, |ip| index.is_taken(ip))
        .ok_or_else(|| ProviderError::Exhausted {
            resource: "address pool",
            message: format!(
                "class {}: no free {} address in {pools} for {}",
                req.class,
                if v4 { "IPv4" } else { "IPv6" },
                req.owner
            ),
        })
}

/// `ip` may go to `req` only if every other holder shares it under the same
/// key on other ports.
fn check_sharing(
    index: &Index,
    req: &Request<'_>,
    ip: IpAddr,
    what: &str,
) -> Result<(), ProviderError> {
    for holder in index.others(ip, req.object) {
        let same_key = req.shared_key.is_some() && holder.shared_key.as_deref() == req.shared_key;
        if !same_key {
            return Err(rejected(format!(
                "{what} {ip} is already allocated to {}",
                holder.owner
            )));
        }
        let clash: Vec<String> = holder
            .ports
            .intersection(req.ports)
            .map(|(port, protocol)| format!("{port}/{}", protocol.as_str()))
            .collect();
        if !clash.is_empty() {
            return Err(rejected(format!(
                "ports {} collide with {} on shared address {ip}",
                clash.join(", "),
                holder.owner
            )));
        }
    }
    Ok(())
}

fn rejected(message: String) -> ProviderError {
    ProviderError::Rejected {
        operation: op::ALLOCATE,
        message,
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
