//! The diff a provider computes between what it holds and what is desired,
//! at the granularity of real cloud resources (listener, backend set, health
//! check, certificate...), so tests can count writes the way a cloud bills them.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{
    DesiredLoadBalancer,
    desired::{BackendNode, L4Listener, L4Spec, L7Spec, LoadBalancerSpec},
    provider::{Action, Change},
};

/// Maximum resource-name length used for recorded changes (GCE's limit).
const NAME_LEN: usize = 63;

/// The changes turning `old` (what the provider holds, if anything) into `new`.
/// Equal inputs give no changes.
pub fn diff(old: Option<&DesiredLoadBalancer>, new: &DesiredLoadBalancer) -> Vec<Change> {
    let mut out = Vec::new();
    let Some(old) = old else {
        create_all(new, &mut out);
        return out;
    };
    let d = Differ { lb: new };
    match (&old.spec, &new.spec) {
        (LoadBalancerSpec::L4(a), LoadBalancerSpec::L4(b)) => d.l4(a, b, &mut out),
        (LoadBalancerSpec::L7(a), LoadBalancerSpec::L7(b)) => d.l7(a, b, &mut out),
        // A Service cannot turn into an Ingress, but be total anyway.
        _ => {
            out.extend(delete_all(old));
            create_all(new, &mut out);
        }
    }
    out
}

/// The changes removing everything of `old`.
pub fn delete_all(old: &DesiredLoadBalancer) -> Vec<Change> {
    let d = Differ { lb: old };
    let mut out = Vec::new();
    match &old.spec {
        LoadBalancerSpec::L4(s) => {
            for l in &s.listeners {
                out.push(d.change(
                    Action::Delete,
                    "listener",
                    &format!("{}-{}", l.protocol.as_str(), l.port),
                    "",
                ));
            }
        }
        LoadBalancerSpec::L7(s) => {
            for b in &s.backends {
                out.push(d.change(Action::Delete, "backend-service", &b.key(), ""));
            }
        }
    }
    out.push(d.change(Action::Delete, "backend-set", "nodes", ""));
    out.push(d.change(Action::Delete, "load-balancer", "lb", ""));
    out
}

fn create_all(new: &DesiredLoadBalancer, out: &mut Vec<Change>) {
    let d = Differ { lb: new };
    out.push(d.change(Action::Create, "load-balancer", "lb", new.provider.as_str()));
    match &new.spec {
        LoadBalancerSpec::L4(s) => {
            for l in &s.listeners {
                out.push(d.change(
                    Action::Create,
                    "listener",
                    &format!("{}-{}", l.protocol.as_str(), l.port),
                    &format!("-> node port {}", l.node_port),
                ));
            }
            out.push(d.change(
                Action::Create,
                "backend-set",
                "nodes",
                &format!("register {} targets", s.backends.len()),
            ));
        }
        LoadBalancerSpec::L7(s) => {
            for b in &s.backends {
                out.push(d.change(
                    Action::Create,
                    "backend-service",
                    &b.key(),
                    &format!("-> node port {}", b.node_port),
                ));
            }
            out.push(d.change(Action::Create, "url-map", "routes", ""));
            for t in &s.tls {
                out.push(d.change(Action::Create, "certificate", &t.secret_name, ""));
            }
            out.push(d.change(
                Action::Create,
                "backend-set",
                "nodes",
                &format!("register {} targets", s.nodes.len()),
            ));
        }
    }
}

struct Differ<'a> {
    lb: &'a DesiredLoadBalancer,
}

impl Differ<'_> {
    fn change(&self, action: Action, resource: &str, role: &str, detail: &str) -> Change {
        Change {
            action,
            resource: resource.to_string(),
            name: self.lb.owner.resource_name(
                &self.lb.class,
                &format!("{resource}-{role}"),
                NAME_LEN,
            ),
            detail: detail.to_string(),
        }
    }

    fn backends(&self, a: &[BackendNode], b: &[BackendNode], out: &mut Vec<Change>) {
        let a: BTreeSet<&BackendNode> = a.iter().collect();
        let b: BTreeSet<&BackendNode> = b.iter().collect();
        if a == b {
            return;
        }
        let added: Vec<String> = b.difference(&a).map(|n| n.name.clone()).collect();
        let removed: Vec<String> = a.difference(&b).map(|n| n.name.clone()).collect();
        out.push(self.change(
            Action::Update,
            "backend-set",
            "nodes",
            &format!("register {added:?}, deregister {removed:?}"),
        ));
    }

    fn l4(&self, a: &L4Spec, b: &L4Spec, out: &mut Vec<Change>) {
        let key = |l: &L4Listener| (l.port, l.protocol);
        let old: BTreeMap<_, _> = a.listeners.iter().map(|l| (key(l), l)).collect();
        let new: BTreeMap<_, _> = b.listeners.iter().map(|l| (key(l), l)).collect();
        for (k, l) in &old {
            let role = format!("{}-{}", k.1.as_str(), k.0);
            match new.get(k) {
                None => out.push(self.change(Action::Delete, "listener", &role, "")),
                Some(n) if n != l => out.push(self.change(
                    Action::Update,
                    "listener",
                    &role,
                    &format!("node port {} -> {}", l.node_port, n.node_port),
                )),
                Some(_) => {}
            }
        }
        for (k, l) in &new {
            if !old.contains_key(k) {
                out.push(self.change(
                    Action::Create,
                    "listener",
                    &format!("{}-{}", k.1.as_str(), k.0),
                    &format!("-> node port {}", l.node_port),
                ));
            }
        }
        self.backends(&a.backends, &b.backends, out);
        if a.health_check != b.health_check {
            out.push(self.change(Action::Update, "health-check", "hc", ""));
        }
        if a.source_ranges != b.source_ranges {
            out.push(self.change(Action::Update, "firewall", "sources", ""));
        }
        if a.requested_ip != b.requested_ip || a.options != b.options {
            out.push(self.change(Action::Update, "load-balancer", "lb", "attributes"));
        }
    }

    fn l7(&self, a: &L7Spec, b: &L7Spec, out: &mut Vec<Change>) {
        let old: BTreeMap<_, _> = a.backends.iter().map(|x| (x.key(), x)).collect();
        let new: BTreeMap<_, _> = b.backends.iter().map(|x| (x.key(), x)).collect();
        for (k, x) in &old {
            match new.get(k) {
                None => out.push(self.change(Action::Delete, "backend-service", k, "")),
                Some(n) if n != x => out.push(self.change(
                    Action::Update,
                    "backend-service",
                    k,
                    &format!("node port {} -> {}", x.node_port, n.node_port),
                )),
                Some(_) => {}
            }
        }
        for (k, x) in &new {
            if !old.contains_key(k) {
                out.push(self.change(
                    Action::Create,
                    "backend-service",
                    k,
                    &format!("-> node port {}", x.node_port),
                ));
            }
        }
        if a.rules != b.rules || a.default_backend != b.default_backend {
            out.push(self.change(Action::Update, "url-map", "routes", ""));
        }
        if a.health_checks != b.health_checks {
            out.push(self.change(Action::Update, "health-check", "hc", ""));
        }
        let old_tls: BTreeMap<_, _> = a.tls.iter().map(|t| (&t.secret_name, t)).collect();
        let new_tls: BTreeMap<_, _> = b.tls.iter().map(|t| (&t.secret_name, t)).collect();
        for (k, t) in &old_tls {
            match new_tls.get(k) {
                None => out.push(self.change(Action::Delete, "certificate", k, "")),
                Some(n) if n != t => out.push(self.change(Action::Update, "certificate", k, "")),
                Some(_) => {}
            }
        }
        for k in new_tls.keys() {
            if !old_tls.contains_key(k) {
                out.push(self.change(Action::Create, "certificate", k, ""));
            }
        }
        self.backends(&a.nodes, &b.nodes, out);
        if a.options != b.options {
            out.push(self.change(Action::Update, "load-balancer", "lb", "attributes"));
        }
    }
}
