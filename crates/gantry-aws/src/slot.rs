//! Replacing a balancer whose scheme changes.
//!
//! AWS cannot change a balancer's scheme (internet-facing or internal) in
//! place, so each owner has two name slots. The balancer normally lives in
//! slot A; when the wanted scheme differs from the live balancer's, a new
//! one (with its own target groups) is built in the other slot and
//! reported in status, and the old one is deleted on a later resync, once
//! the new one is active: traffic keeps an address throughout, and the
//! status moves before the old address goes away.

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer, LoadBalancerSchemeEnum};
use gantry_model::{Owner, ProviderError, desired::Scheme};

use crate::{api::Api, nlb::NAME_LEN, observe};

/// One of an owner's two balancer name slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The usual one (names without prefix, as before slots existed).
    A,
    /// The alternate, used while replacing a balancer.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// Prefix of the role part of every name in this slot.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::A => "",
            Self::B => "b-",
        }
    }

    /// The name of a resource of `role` in this slot.
    pub fn name(self, owner: &Owner, class: &str, role: &str) -> String {
        owner.resource_name(class, &format!("{}{role}", self.prefix()), NAME_LEN)
    }
}

/// Where the wanted balancer lives, and the balancer it replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Slot of the wanted balancer.
    pub(crate) slot: Slot,
    /// Name of a balancer in the other slot, to delete once the wanted one
    /// is active.
    pub(crate) old: Option<String>,
}

fn has_scheme(lb: &LoadBalancer, scheme: Scheme) -> bool {
    let want = match scheme {
        Scheme::InternetFacing => LoadBalancerSchemeEnum::InternetFacing,
        Scheme::Internal => LoadBalancerSchemeEnum::Internal,
    };
    lb.scheme() == Some(&want)
}

/// Pick the slot for a balancer of `role` (`nlb` or `alb`) with `scheme`:
/// the one whose balancer (of ours) already has that scheme, else the
/// other one of ours. A foreign balancer in slot A is picked anyway, so
/// that the read that follows refuses it as before slots existed; one in
/// slot B is never retired.
pub(crate) async fn choose(
    api: &Api,
    owner: &Owner,
    class: &str,
    role: &str,
    scheme: Scheme,
) -> Result<Placement, ProviderError> {
    let name = |slot: Slot| slot.name(owner, class, role);
    let a = observe::balancer(api, &name(Slot::A)).await?;
    let b = observe::balancer(api, &name(Slot::B)).await?;
    let arns: Vec<String> = [&a, &b]
        .into_iter()
        .flatten()
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .collect();
    let tags = if arns.is_empty() {
        Default::default()
    } else {
        observe::tags(api, &arns).await?
    };
    let ours = |lb: &LoadBalancer| {
        lb.load_balancer_arn()
            .and_then(|arn| tags.get(arn))
            .is_some_and(|t| owner.owns(class, t))
    };
    let (a, b) = (
        a.as_ref().filter(|lb| ours(lb)),
        b.as_ref().filter(|lb| ours(lb)),
    );
    let fits = |lb: Option<&LoadBalancer>| lb.is_some_and(|lb| has_scheme(lb, scheme));
    let slot = if fits(a) {
        Slot::A
    } else if fits(b) || a.is_some() {
        Slot::B
    } else {
        Slot::A
    };
    let old = match slot {
        Slot::A => b.is_some(),
        Slot::B => a.is_some(),
    }
    .then(|| name(slot.other()));
    Ok(Placement { slot, old })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_name_every_resource_apart() {
        let o = Owner {
            cluster_id: "c".into(),
            kind: gantry_model::OwnerKind::Service,
            namespace: "default".into(),
            name: "web".into(),
            uid: "u1".into(),
        };
        let a = Slot::A.name(&o, "k", "nlb");
        let b = Slot::B.name(&o, "k", "nlb");
        assert_ne!(a, b);
        assert_eq!(a, o.resource_name("k", "nlb", NAME_LEN), "slot A as before");
        assert!(b.len() <= NAME_LEN);
        assert_eq!(Slot::A.other(), Slot::B);
    }
}
