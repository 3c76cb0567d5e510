//! What differs between the two kinds Gantry reconciles: how a Service or an
//! Ingress selects its class, translates, and carries status. Everything
//! else in the pipeline is written once, generic over [`Target`].

use std::future::Future;

use gantry_model::{
    LoadBalancerClassSpec, OwnerKind,
    translate::{TranslateError, Translated},
};
use k8s_openapi::{
    NamespaceResourceScope,
    api::{core::v1::Service, networking::v1::Ingress},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Resource, ResourceExt,
    runtime::reflector::{ObjectRef, Store},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    context::Context,
    error::Result as CtlResult,
    secrets::Fetched,
    status::Address,
    translate::{self, WithSecrets},
};

/// A kind of object that gets a load balancer.
pub trait Target:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Owner kind in ownership tags.
    const OWNER_KIND: OwnerKind;
    /// Whether status carries `conditions` (Services do, Ingresses do not).
    const HAS_CONDITIONS: bool;

    /// The class this object is Gantry's in, or `None`.
    fn select(&self, ctx: &Context) -> Option<String>;

    /// Read what translation needs from the API rather than from the
    /// caches (the Secrets an Ingress names), and keep watching it.
    fn fetch(&self, ctx: &Context) -> impl Future<Output = CtlResult<Fetched>> + Send;

    /// The object no longer needs what [`Target::fetch`] read (it is being
    /// cleaned up or is not Gantry's).
    fn release(&self, ctx: &Context);

    /// Translate into a desired load balancer.
    fn translate(
        &self,
        ctx: &Context,
        class_name: &str,
        class: &LoadBalancerClassSpec,
        fetched: &Fetched,
    ) -> Result<Translated, TranslateError>;

    /// `status.loadBalancer.ingress` as it is on the object.
    fn addresses(&self) -> Vec<Address>;

    /// `status.conditions` as they are on the object.
    fn conditions(&self) -> Vec<Condition>;

    /// The store holding objects of this kind.
    fn store(ctx: &Context) -> &Store<Self>;
}

fn port_pairs<'a>(ports: impl Iterator<Item = (i32, &'a str)>) -> Vec<(i32, String)> {
    ports.map(|(p, proto)| (p, proto.to_string())).collect()
}

impl Target for Service {
    const OWNER_KIND: OwnerKind = OwnerKind::Service;
    const HAS_CONDITIONS: bool = true;

    fn select(&self, ctx: &Context) -> Option<String> {
        translate::service_class(self, ctx.config.default_class.as_deref(), &ctx.stores)
    }

    async fn fetch(&self, _ctx: &Context) -> CtlResult<Fetched> {
        Ok(Fetched::default())
    }

    fn release(&self, _ctx: &Context) {}

    fn translate(
        &self,
        ctx: &Context,
        class_name: &str,
        class: &LoadBalancerClassSpec,
        _fetched: &Fetched,
    ) -> Result<Translated, TranslateError> {
        translate::service(self, &ctx.stores, &ctx.config.cluster_id, class_name, class)
    }

    fn addresses(&self) -> Vec<Address> {
        let ingress = self
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        ingress
            .map(|list| {
                list.iter()
                    .map(|i| Address {
                        ip: i.ip.clone(),
                        hostname: i.hostname.clone(),
                        ip_mode: i.ip_mode.clone(),
                        ports: port_pairs(
                            i.ports
                                .iter()
                                .flatten()
                                .map(|p| (p.port, p.protocol.as_str())),
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn conditions(&self) -> Vec<Condition> {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
    }

    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.stores.services
    }
}

impl Target for Ingress {
    const OWNER_KIND: OwnerKind = OwnerKind::Ingress;
    const HAS_CONDITIONS: bool = false;

    fn select(&self, ctx: &Context) -> Option<String> {
        translate::ingress_class(self, &ctx.stores)
    }

    async fn fetch(&self, ctx: &Context) -> CtlResult<Fetched> {
        let fetched = ctx.secrets.fetch(self).await?;
        // Deleted while its Secrets were read: the watch's delete event may
        // have released them already, and nothing would release them again.
        if Self::store(ctx).get(&ObjectRef::from_obj(self)).is_none() {
            self.release(ctx);
        }
        Ok(fetched)
    }

    fn release(&self, ctx: &Context) {
        if let Some(ns) = self.namespace() {
            ctx.secrets.release(&ns, &self.name_any());
        }
    }

    fn translate(
        &self,
        ctx: &Context,
        class_name: &str,
        class: &LoadBalancerClassSpec,
        fetched: &Fetched,
    ) -> Result<Translated, TranslateError> {
        let source = WithSecrets {
            inner: &ctx.stores,
            secrets: &fetched.secrets,
        };
        translate::ingress(self, &source, &ctx.config.cluster_id, class_name, class)
    }

    fn addresses(&self) -> Vec<Address> {
        let ingress = self
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        ingress
            .map(|list| {
                list.iter()
                    .map(|i| Address {
                        ip: i.ip.clone(),
                        hostname: i.hostname.clone(),
                        ip_mode: None,
                        ports: port_pairs(
                            i.ports
                                .iter()
                                .flatten()
                                .map(|p| (p.port, p.protocol.as_str())),
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn conditions(&self) -> Vec<Condition> {
        Vec::new()
    }

    fn store(ctx: &Context) -> &Store<Self> {
        &ctx.stores.ingresses
    }
}
