//! Pipeline step "watch": one reflector per kind the controller reads, and
//! the mapping from a change of any of them to the Services and Ingresses
//! whose load balancer it may affect.
//!
//! Every trigger goes through an unbounded channel to the Service or Ingress
//! controller; the controller looks the object up in its store at reconcile
//! time, so a trigger for an object that is gone is simply dropped.
//!
//! Secrets are deliberately not among these cluster-wide watches: the
//! controller reads only the Secrets an Ingress references, by GET during its
//! translation, and follows each of them with a watch narrowed to its name
//! ([`crate::secrets`]). RBAC can then grant `get` and `watch` on Secrets
//! and no `list` at all, which is what the chart's rule for the controller
//! is meant to grant.

use std::{collections::BTreeSet, future::Future, sync::Arc};

use futures::{StreamExt, channel::mpsc::UnboundedSender, future::BoxFuture};
use gantry_model::{
    LoadBalancerClass,
    desired::BackendNode,
    select::{eligible_nodes, ingress_references},
};
use k8s_openapi::api::{
    core::v1::{Node, Secret, Service},
    networking::v1::{Ingress, IngressClass},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store, reflector, store::Writer},
        watcher::{self, Event, watcher},
    },
};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::{secrets::SecretWatches, translate::Source};

/// Read caches of every kind the controller uses.
#[derive(Clone)]
pub struct Stores {
    /// Services.
    pub services: Store<Service>,
    /// Ingresses.
    pub ingresses: Store<Ingress>,
    /// Nodes.
    pub nodes: Store<Node>,
    /// IngressClasses.
    pub ingress_classes: Store<IngressClass>,
    /// LoadBalancerClasses.
    pub lb_classes: Store<LoadBalancerClass>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

fn owned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.into_iter().map(|k| (*k).clone()).collect()
}

impl Source for Stores {
    fn nodes(&self) -> Vec<Node> {
        owned(self.nodes.state())
    }

    fn services_in(&self, namespace: &str) -> Vec<Service> {
        self.services
            .state()
            .into_iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace))
            .map(|s| (*s).clone())
            .collect()
    }

    /// Secrets are never cached (see the module docs): an Ingress's
    /// translation reads them on demand and passes them in through
    /// [`crate::translate::WithSecrets`].
    fn secret(&self, _namespace: &str, _name: &str) -> Option<Secret> {
        None
    }

    fn ingress_classes(&self) -> Vec<IngressClass> {
        owned(self.ingress_classes.state())
    }

    fn lb_classes(&self) -> Vec<LoadBalancerClass> {
        owned(self.lb_classes.state())
    }

    fn lb_class(&self, name: &str) -> Option<LoadBalancerClass> {
        self.lb_classes
            .get(&ObjectRef::new(name))
            .map(|c| (*c).clone())
    }
}

/// Where triggers go.
#[derive(Clone)]
pub struct Triggers {
    /// Service reconciles.
    pub services: UnboundedSender<ObjectRef<Service>>,
    /// Ingress reconciles.
    pub ingresses: UnboundedSender<ObjectRef<Ingress>>,
    /// A pass of the `LoadBalancerClass` status step.
    pub classes: UnboundedSender<()>,
}

impl Triggers {
    fn service(&self, svc: &Service) {
        // A closed channel means the controllers are shutting down.
        let _ = self.services.unbounded_send(ObjectRef::from_obj(svc));
    }

    fn ingress(&self, ing: &Ingress) {
        let _ = self.ingresses.unbounded_send(ObjectRef::from_obj(ing));
    }

    fn all_services(&self, stores: &Stores) {
        for svc in stores.services.state() {
            let is_lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
            // Non-LoadBalancer Services only matter while they still carry our
            // finalizer (a type change in flight); their own events cover that.
            if is_lb {
                self.service(&svc);
            }
        }
    }

    fn all_ingresses(&self, stores: &Stores) {
        for ing in stores.ingresses.state() {
            self.ingress(&ing);
        }
    }

    /// Ingresses in `namespace` that reference Service `name`.
    fn ingresses_referencing(&self, stores: &Stores, namespace: &str, name: &str) {
        for ing in stores.ingresses.state() {
            if ing.namespace().as_deref() != Some(namespace) {
                continue;
            }
            let (services, _) = ingress_references(&ing);
            if services.contains(name) {
                self.ingress(&ing);
            }
        }
    }
}

/// Create empty stores and their writers.
pub fn stores() -> (Stores, Writers) {
    let (services, w_services) = reflector::store();
    let (ingresses, w_ingresses) = reflector::store();
    let (nodes, w_nodes) = reflector::store();
    let (ingress_classes, w_ingress_classes) = reflector::store();
    let (lb_classes, w_lb_classes) = reflector::store();
    (
        Stores {
            services,
            ingresses,
            nodes,
            ingress_classes,
            lb_classes,
        },
        Writers {
            services: w_services,
            ingresses: w_ingresses,
            nodes: w_nodes,
            ingress_classes: w_ingress_classes,
            lb_classes: w_lb_classes,
        },
    )
}

/// The write halves of [`Stores`], consumed by [`watchers`].
pub struct Writers {
    services: Writer<Service>,
    ingresses: Writer<Ingress>,
    nodes: Writer<Node>,
    ingress_classes: Writer<IngressClass>,
    lb_classes: Writer<LoadBalancerClass>,
}

/// What a reflector saw, after its store was updated.
#[derive(Clone, Copy, Debug)]
pub enum Seen<'a, K> {
    /// An object was added or changed (or listed).
    Applied(&'a K),
    /// An object was deleted.
    Deleted(&'a K),
    /// A (re)list finished: objects deleted while the watch was down are
    /// gone from the store without a `Deleted`.
    Relisted,
}

/// Run one reflector, calling `on_change` for everything it sees.
fn reflect<K, F>(api: Api<K>, writer: Writer<K>, on_change: F) -> BoxFuture<'static, ()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    F: Fn(Seen<'_, K>) + Send + 'static,
{
    let kind = K::kind(&()).to_string();
    let stream = reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    Box::pin(stream.for_each(move |event| {
        match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => on_change(Seen::Applied(&obj)),
            Ok(Event::Delete(obj)) => on_change(Seen::Deleted(&obj)),
            Ok(Event::InitDone) => on_change(Seen::Relisted),
            Ok(Event::Init) => {}
            Err(error) => tracing::warn!(%error, kind, "Watch failed; retrying with backoff"),
        }
        futures::future::ready(())
    }))
}

/// Calls `f` for applied and deleted objects, not for relists.
fn each<K>(f: impl Fn(&K) + Send + 'static) -> impl Fn(Seen<'_, K>) + Send + 'static {
    move |seen| match seen {
        Seen::Applied(obj) | Seen::Deleted(obj) => f(obj),
        Seen::Relisted => {}
    }
}

/// Every watch of the controller as one future (runs until dropped).
/// `secrets` learns about deleted Ingresses so their Secret watches stop.
pub fn watchers(
    client: Client,
    writers: Writers,
    stores: Stores,
    triggers: Triggers,
    secrets: Arc<SecretWatches>,
) -> impl Future<Output = ()> + Send {
    let t = triggers.clone();
    let s = stores.clone();
    let services = reflect(
        Api::<Service>::all(client.clone()),
        writers.services,
        each(move |svc: &Service| {
            t.service(svc);
            let ns = svc.namespace().unwrap_or_default();
            t.ingresses_referencing(&s, &ns, &svc.name_any());
        }),
    );

    let t = triggers.clone();
    let s = stores.clone();
    let ingresses = reflect(
        Api::<Ingress>::all(client.clone()),
        writers.ingresses,
        move |seen| match seen {
            Seen::Applied(ing) => t.ingress(ing),
            // A deleted Ingress's reconcile finds nothing in the store and
            // does nothing, so its Secret references are released here.
            Seen::Deleted(ing) => {
                secrets.release(&ing.namespace().unwrap_or_default(), &ing.name_any());
                t.ingress(ing);
            }
            Seen::Relisted => secrets.retain_ingresses(|ns, name| {
                s.ingresses.get(&ObjectRef::new(name).within(ns)).is_some()
            }),
        },
    );

    // Nodes change often (heartbeats, labels); only a change of the eligible
    // backend set can change a load balancer, so only that triggers.
    let t = triggers.clone();
    let s = stores.clone();
    let last: Mutex<Option<Vec<BackendNode>>> = Mutex::new(None);
    let nodes = reflect(
        Api::<Node>::all(client.clone()),
        writers.nodes,
        each(move |_node: &Node| {
            let now = eligible_nodes(&s.nodes());
            let mut last = last.lock();
            if last.as_ref() != Some(&now) {
                let first = last.is_none();
                *last = Some(now);
                // The first computation happens during the initial list, before
                // the controllers run; their own initial list covers every object.
                if !first {
                    t.all_services(&s);
                    t.all_ingresses(&s);
                }
            }
        }),
    );

    let t = triggers.clone();
    let s = stores.clone();
    let ingress_classes = reflect(
        Api::<IngressClass>::all(client.clone()),
        writers.ingress_classes,
        each(move |_ic: &IngressClass| t.all_ingresses(&s)),
    );

    // A class change can change every object's balancer, the class's own
    // status, and (through `spec.default`) the other classes' status. The
    // relist also triggers a class pass, so a missed change is caught.
    let t = triggers;
    let s = stores;
    let lb_classes = reflect(
        Api::<LoadBalancerClass>::all(client),
        writers.lb_classes,
        move |seen| {
            let _ = t.classes.unbounded_send(());
            if !matches!(seen, Seen::Relisted) {
                t.all_services(&s);
                t.all_ingresses(&s);
            }
        },
    );

    async move {
        futures::future::join_all([services, ingresses, nodes, ingress_classes, lb_classes]).await;
    }
}

/// Wait until every store has its initial list.
pub async fn synced(stores: &Stores) {
    // `wait_until_ready` only fails when the writer is dropped, which means
    // the watchers stopped; returning lets the caller notice that instead.
    let _ = futures::join!(
        stores.services.wait_until_ready(),
        stores.ingresses.wait_until_ready(),
        stores.nodes.wait_until_ready(),
        stores.ingress_classes.wait_until_ready(),
        stores.lb_classes.wait_until_ready(),
    );
}

/// Names of the classes currently defined.
pub fn class_names(stores: &Stores) -> BTreeSet<String> {
    stores
        .lb_classes
        .state()
        .iter()
        .map(|c| c.name_any())
        .collect()
}
