//! Which addresses this node competes for, derived from the objects and
//! this node's readiness (pure).
//!
//! An address of an `l2` object is a target when this instance serves the
//! object. This node is eligible when it is ready for the object (listeners
//! bound, a healthy backend node): only such a node could answer clients.
//! The other candidates are the nodes whose datapath reports ready in the
//! object's status; they only shift the turn of each node (see
//! [`rank`](super::election::rank)), the Lease decides.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use gantry_model::{class::LocalMode, local::LocalLoadBalancer};

use crate::config::Readiness;

/// One address to compete for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Target {
    /// Whether this node may hold it.
    pub eligible: bool,
    /// Nodes that report ready for an object with this address (this node
    /// included when eligible), sorted.
    pub candidates: Vec<String>,
    /// Interface named by the object's class (`spec.local.interface`);
    /// none = the one on a network containing the address.
    pub interface: Option<String>,
}

/// Per address while collecting: eligible so far (none = not seen yet),
/// the other ready nodes, the class's interface.
type Collected = (Option<bool>, BTreeSet<String>, Option<String>);

/// The targets of `node` given the served objects' `readiness` by name and
/// the interface each class names.
pub(crate) fn targets(
    node: &str,
    objects: &BTreeMap<String, LocalLoadBalancer>,
    readiness: &BTreeMap<String, Readiness>,
    interfaces: &BTreeMap<String, String>,
) -> BTreeMap<IpAddr, Target> {
    let mut out: BTreeMap<IpAddr, Collected> = BTreeMap::new();
    for (name, obj) in objects {
        if obj.spec.mode != LocalMode::L2 {
            continue;
        }
        // Objects this instance does not serve have no readiness entry.
        let Some(mine) = readiness.get(name) else {
            continue;
        };
        let others = obj
            .status
            .iter()
            .flat_map(|s| s.nodes.iter())
            .filter(|(n, st)| st.ready && n.as_str() != node)
            .map(|(n, _)| n.clone());
        for addr in &obj.spec.addresses {
            let entry = out.entry(*addr).or_default();
            // An address shared by several objects: eligible only when this
            // node serves all of them, or some clients would be refused.
            entry.0 = Some(entry.0.unwrap_or(true) && mine.ready);
            entry.1.extend(others.clone());
            if entry.2.is_none() {
                entry.2 = interfaces.get(&obj.spec.class).cloned();
            }
        }
    }
    out.into_iter()
        .map(|(addr, (eligible, mut others, interface))| {
            let eligible = eligible.unwrap_or(false);
            if eligible {
                others.insert(node.to_owned());
            }
            let candidates = others.into_iter().collect();
            (
                addr,
                Target {
                    eligible,
                    candidates,
                    interface,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use gantry_model::local::{LocalLoadBalancerStatus, LocalNodeStatus};

    use super::*;

    fn object(mode: LocalMode, addrs: &[&str], ready_nodes: &[(&str, bool)]) -> LocalLoadBalancer {
        let spec = serde_json::from_value(serde_json::json!({
            "class": "metal",
            "owner": {"kind": "Service", "namespace": "d", "name": "w", "uid": "u"},
            "mode": mode,
            "addresses": addrs,
            "nodes": [],
        }))
        .expect("spec");
        let mut obj = LocalLoadBalancer::new("x", spec);
        obj.status = Some(LocalLoadBalancerStatus {
            nodes: ready_nodes
                .iter()
                .map(|(n, ready)| {
                    let st = LocalNodeStatus {
                        ready: *ready,
                        ..LocalNodeStatus::default()
                    };
                    ((*n).to_owned(), st)
                })
                .collect(),
        });
        obj
    }

    fn ready(r: bool) -> Readiness {
        Readiness {
            generation: 1,
            ready: r,
            message: None,
        }
    }

    #[test]
    fn l2_addresses_of_served_objects_with_ready_candidates() {
        let objects: BTreeMap<String, LocalLoadBalancer> = [
            (
                "a".to_owned(),
                object(
                    LocalMode::L2,
                    &["192.0.2.1"],
                    &[("n1", true), ("n2", true), ("n3", false)],
                ),
            ),
            (
                "b".to_owned(),
                object(LocalMode::NodeAddresses, &["192.0.2.9"], &[]),
            ),
            ("c".to_owned(), object(LocalMode::L2, &["192.0.2.3"], &[])),
        ]
        .into();
        let readiness = [("a".to_owned(), ready(true)), ("b".to_owned(), ready(true))].into();
        let interfaces = [("metal".to_owned(), "eth1".to_owned())].into();
        let t = targets("n1", &objects, &readiness, &interfaces);
        assert_eq!(t.len(), 1, "{t:?}");
        let a = &t[&"192.0.2.1".parse::<IpAddr>().expect("ip")];
        assert!(a.eligible);
        assert_eq!(a.candidates, vec!["n1".to_owned(), "n2".to_owned()]);
        assert_eq!(a.interface.as_deref(), Some("eth1"));
    }

    #[test]
    fn a_node_not_ready_competes_for_nothing_and_is_no_candidate() {
        let objects: BTreeMap<String, LocalLoadBalancer> = [(
            "a".to_owned(),
            object(LocalMode::L2, &["192.0.2.1"], &[("n1", true), ("n2", true)]),
        )]
        .into();
        let t = targets(
            "n1",
            &objects,
            &[("a".to_owned(), ready(false))].into(),
            &BTreeMap::new(),
        );
        let a = &t[&"192.0.2.1".parse::<IpAddr>().expect("ip")];
        assert!(!a.eligible);
        assert_eq!(a.candidates, vec!["n2".to_owned()]);
    }

    #[test]
    fn a_shared_address_needs_every_object_ready() {
        let objects: BTreeMap<String, LocalLoadBalancer> = [
            ("a".to_owned(), object(LocalMode::L2, &["192.0.2.1"], &[])),
            ("b".to_owned(), object(LocalMode::L2, &["192.0.2.1"], &[])),
        ]
        .into();
        let both = targets(
            "n1",
            &objects,
            &[("a".into(), ready(true)), ("b".into(), ready(true))].into(),
            &BTreeMap::new(),
        );
        assert!(both.values().all(|t| t.eligible));
        let one = targets(
            "n1",
            &objects,
            &[("a".into(), ready(true)), ("b".into(), ready(false))].into(),
            &BTreeMap::new(),
        );
        assert!(one.values().all(|t| !t.eligible));
    }
}
