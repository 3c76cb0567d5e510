//! Gantry's AWS provider.
//!
//! This is the "apply" step of the pipeline (watch -> translate -> plan ->
//! apply -> report) for classes of provider `aws`. A Service becomes a
//! Network Load Balancer: one target group per (port, protocol) with the
//! nodes' EC2 instances as targets at the node port, and one listener per
//! port. An Ingress becomes an Application Load Balancer: one target group
//! per backend Service port, listeners on 80 and (with a certificate) 443,
//! and one rule per host and path in Ingress order. Each balancer has its
//! own security group opening its listener ports to the source ranges
//! (`loadBalancerSourceRanges`, or everyone). HTTPS uses the ACM
//! certificate named by annotation or class, or else the Ingress's TLS
//! Secret imported into ACM and owned by Gantry. A scheme change, which
//! AWS cannot make in place, builds a replacement in the owner's other
//! name slot and retires the old balancer once the new one is active.
//!
//! Every resource carries the owner's ownership tags and the class tag, and
//! has a deterministic name of at most 32 characters, so a controller that
//! crashed after a create finds the resource again; anything with our name
//! but foreign tags is never adopted, changed or deleted. Calls go through
//! client-side rate limits and a deadline each, and the SDK's standard
//! retry mode (jittered exponential backoff) covers throttling and 5xx.
//! Settings and options are checked before the first call; calls are
//! counted by operation and outcome ([`CallMetrics`] exports them).

// Internal steps return the trait's `ProviderError` so that they compose
// with `?`; its size is the model's choice, not something to box here.
#![allow(clippy::result_large_err)]

pub mod alb;
mod alb_apply;
mod alb_diff;
mod api;
mod certificate;
mod discovery;
mod ensure;
mod error;
mod l4;
mod l7;
pub mod metrics;
pub mod nlb;
mod observe;
mod security_group;
pub mod slot;
mod teardown;
mod tg_apply;
mod tg_diff;
mod validate;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, ConfigLoader, Region};
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, OwnerKind, Plan, ProviderError,
    ProviderKind,
    class::AwsSettings,
    desired::{LoadBalancerSpec, Scheme},
    provider::{Change, DeleteOutcome},
};
use parking_lot::Mutex;

use crate::{api::Api, ensure::Context};
pub use crate::{
    api::{CallLog, Outcome, is_read},
    discovery::{ROLE_ELB, ROLE_INTERNAL_ELB, cluster_tag, instance_id},
    error::AwsError,
    metrics::CallMetrics,
    slot::Slot,
};

/// The role part of the balancer's name for `owner`'s kind.
fn role(owner: &Owner) -> &'static str {
    match owner.kind {
        OwnerKind::Service => "nlb",
        OwnerKind::Ingress => "alb",
    }
}

/// Default deadline of every AWS API call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The `aws` provider for one `LoadBalancerClass`.
pub struct AwsProvider {
    /// The class served (tagged on every resource).
    class: String,
    /// Tagged on every resource, and names the subnets' cluster tag.
    cluster_id: String,
    /// The class's settings.
    settings: AwsSettings,
    /// Clients, limits and call accounting.
    api: Api,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider")
            .field("class", &self.class)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

impl AwsProvider {
    /// A provider for `class`, with credentials from the standard AWS chain
    /// (environment, web identity, instance profile...) and region and
    /// endpoint from the class when it sets them.
    pub async fn new(
        class: &str,
        cluster_id: &str,
        settings: AwsSettings,
    ) -> Result<Self, AwsError> {
        Self::with_loader(
            class,
            cluster_id,
            settings,
            aws_config::defaults(BehaviorVersion::latest()),
            CALL_TIMEOUT,
        )
        .await
    }

    /// Like [`AwsProvider::new`], starting from `loader` (which may carry
    /// credentials or other overrides) and with `timeout` per call.
    pub async fn with_loader(
        class: &str,
        cluster_id: &str,
        settings: AwsSettings,
        loader: ConfigLoader,
        timeout: Duration,
    ) -> Result<Self, AwsError> {
        if class.is_empty() {
            return Err(AwsError::EmptyClass);
        }
        if cluster_id.is_empty() {
            return Err(AwsError::EmptyClusterId);
        }
        // ring, as the rest of the workspace uses, rather than the SDK's
        // default crypto library.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = loader.http_client(http);
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(AwsError::NoRegion {
                class: class.to_string(),
            });
        }
        Ok(Self {
            class: class.to_string(),
            cluster_id: cluster_id.to_string(),
            settings,
            api: Api::new(&config, timeout),
        })
    }

    /// Calls made so far by operation and outcome (the provider's metric).
    pub fn calls(&self) -> Arc<Mutex<CallLog>> {
        self.api.log.clone()
    }

    /// The name of `owner`'s balancer in this class (in its usual slot; a
    /// scheme change moves it to the alternate, see [`Self::balancer_name_in`]).
    pub fn balancer_name(&self, owner: &Owner) -> String {
        self.balancer_name_in(owner, Slot::A)
    }

    /// The name of `owner`'s balancer in `slot`.
    pub fn balancer_name_in(&self, owner: &Owner, slot: Slot) -> String {
        slot.name(owner, &self.class, role(owner))
    }

    /// Everything checked before the first call: the class, its settings
    /// and the object's AWS options.
    fn check(&self, desired: &DesiredLoadBalancer) -> Result<(), ProviderError> {
        self.check_class(desired)?;
        validate::settings(&self.settings)?;
        match &desired.spec {
            LoadBalancerSpec::L4(spec) => validate::l4(spec),
            LoadBalancerSpec::L7(spec) => validate::l7(spec),
        }
    }

    fn check_class(&self, desired: &DesiredLoadBalancer) -> Result<(), ProviderError> {
        if desired.class != self.class {
            return Err(ProviderError::Rejected {
                operation: "Ensure",
                message: format!(
                    "desired state of class {} handed to the provider of class {}",
                    desired.class, self.class
                ),
            });
        }
        Ok(())
    }

    /// Subnets for a new balancer (the object's own, the class's, or
    /// discovered) and their VPC. Named subnets are checked to exist.
    async fn placement(
        &self,
        own: &[String],
        scheme: Scheme,
    ) -> Result<(Vec<String>, String), ProviderError> {
        let class_vpc = self.settings.vpc_id.as_deref();
        for (field, ids) in [
            (gantry_model::annotations::SUBNETS, own),
            ("spec.aws.subnets", &self.settings.subnets[..]),
        ] {
            if !ids.is_empty() {
                let vpc = discovery::explicit_subnets(&self.api, field, ids, class_vpc).await?;
                return Ok((ids.to_vec(), vpc));
            }
        }
        discovery::discover_subnets(&self.api, &self.cluster_id, class_vpc, scheme).await
    }

    /// Where the balancer lives (an existing one's VPC, or new subnets),
    /// with its security group made to hold `rules`: the context to create
    /// and change resources with.
    async fn prepare<'a>(
        &'a self,
        owner: &'a Owner,
        scheme: Scheme,
        own_subnets: &[String],
        balancer: Option<&aws_sdk_elasticloadbalancingv2::types::LoadBalancer>,
        rules: &BTreeSet<security_group::Rule>,
    ) -> Result<(Context<'a>, String), ProviderError> {
        let (subnets, vpc) = match balancer.and_then(|lb| lb.vpc_id()) {
            Some(vpc) => (Vec::new(), vpc.to_string()),
            None => self.placement(own_subnets, scheme).await?,
        };
        let mut cx = self.context(owner, scheme, subnets);
        let name = security_group::name(owner, &self.class);
        let observed = security_group::find(&self.api, owner, &self.class, &name, &vpc).await?;
        let sg = security_group::ensure(&cx, &name, &vpc, rules, observed).await?;
        cx.security_groups = vec![sg];
        Ok((cx, vpc))
    }

    /// An existing balancer's security groups made to be exactly `cx`'s.
    async fn attach(
        &self,
        cx: &Context<'_>,
        balancer: Option<&aws_sdk_elasticloadbalancingv2::types::LoadBalancer>,
    ) -> Result<(), ProviderError> {
        if let Some(lb) = balancer
            && let Some(arn) = lb.load_balancer_arn()
        {
            security_group::attach(&self.api, arn, lb.security_groups(), &cx.security_groups)
                .await?;
        }
        Ok(())
    }

    /// What `plan` reports for the security group.
    async fn plan_security_group(
        &self,
        owner: &Owner,
        balancer: Option<&aws_sdk_elasticloadbalancingv2::types::LoadBalancer>,
        rules: &BTreeSet<security_group::Rule>,
    ) -> Result<Vec<Change>, ProviderError> {
        let name = security_group::name(owner, &self.class);
        let vpc = balancer
            .and_then(|lb| lb.vpc_id().map(str::to_string))
            .or_else(|| self.settings.vpc_id.clone());
        let observed = match vpc {
            Some(vpc) => security_group::find(&self.api, owner, &self.class, &name, &vpc).await?,
            None => None,
        };
        Ok(security_group::describe(&name, rules, observed.as_ref()))
    }

    fn context<'a>(
        &'a self,
        owner: &'a Owner,
        scheme: Scheme,
        subnets: Vec<String>,
    ) -> Context<'a> {
        Context {
            api: &self.api,
            owner,
            class: &self.class,
            extra_tags: &self.settings.tags,
            scheme,
            subnets,
            vpc_id: self.settings.vpc_id.clone(),
            security_groups: Vec::new(),
        }
    }

    fn scheme(&self, own: Option<Scheme>) -> Scheme {
        own.or(self.settings.scheme)
            .unwrap_or(Scheme::InternetFacing)
    }

    /// A `plan` change for a balancer being replaced (scheme change).
    fn replaced(old: &str, new: &str) -> Change {
        Change {
            action: gantry_model::provider::Action::Delete,
            resource: "load-balancer".into(),
            name: old.to_string(),
            detail: format!("replaced by {new} (scheme change), once that one is active"),
        }
    }

    /// Delete the balancer being replaced once its successor is `ready`
    /// (the status already names the successor by then).
    async fn retire(
        &self,
        owner: &Owner,
        place: &slot::Placement,
        ready: bool,
    ) -> Result<(), ProviderError> {
        if ready && let Some(old) = &place.old {
            teardown::delete_balancer(&self.api, owner, &self.class, old).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl LoadBalancer for AwsProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Aws
    }

    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        self.check(desired)?;
        match &desired.spec {
            LoadBalancerSpec::L4(spec) => self.plan_l4(&desired.owner, spec).await,
            LoadBalancerSpec::L7(spec) => self.plan_l7(&desired.owner, spec).await,
        }
    }

    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        self.check(desired)?;
        match &desired.spec {
            LoadBalancerSpec::L4(spec) => self.ensure_l4(&desired.owner, spec).await,
            LoadBalancerSpec::L7(spec) => self.ensure_l7(&desired.owner, spec).await,
        }
    }

    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError> {
        if teardown::delete(&self.api, owner, &self.class, role(owner)).await? {
            Ok(DeleteOutcome::Deleted)
        } else {
            Ok(DeleteOutcome::NotFound)
        }
    }

    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError> {
        teardown::list_owned(&self.api, cluster_id, &self.class).await
    }
}
