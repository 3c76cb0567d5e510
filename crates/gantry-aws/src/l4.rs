//! A Service's NLB end to end: its name slot (a scheme change builds a
//! replacement), its security group, and the diff of balancer, target
//! groups, listeners and attributes, for `plan` and for `ensure`.

use gantry_model::{ObservedStatus, Owner, Plan, ProviderError, desired::L4Spec};

use crate::{AwsProvider, ensure, nlb, observe, slot};

/// What `plan` and `ensure` share.
struct State {
    place: slot::Placement,
    wanted: nlb::Wanted,
    snap: observe::Snapshot,
}

impl AwsProvider {
    async fn l4_state(&self, owner: &Owner, spec: &L4Spec) -> Result<State, ProviderError> {
        let scheme = self.scheme(spec.options.scheme);
        // Check the spec before any call.
        nlb::wanted(owner, &self.class, spec, slot::Slot::A)?;
        let place = slot::choose(&self.api, owner, &self.class, "nlb", scheme).await?;
        let wanted = nlb::wanted(owner, &self.class, spec, place.slot)?;
        let mut snap = observe::snapshot(
            &self.api,
            owner,
            &self.class,
            &wanted.name,
            wanted.target_groups.keys(),
        )
        .await?;
        observe::nlb_attributes(&self.api, &mut snap.observed, wanted.cross_zone.is_some()).await?;
        Ok(State {
            place,
            wanted,
            snap,
        })
    }

    pub(crate) async fn plan_l4(
        &self,
        owner: &Owner,
        spec: &L4Spec,
    ) -> Result<Plan, ProviderError> {
        let State {
            place,
            wanted,
            snap,
        } = self.l4_state(owner, spec).await?;
        let steps = nlb::diff(&wanted, &snap.observed);
        let rules = nlb::sg_rules(&wanted, &spec.source_ranges);
        let mut changes = self
            .plan_security_group(owner, snap.balancer.as_ref(), &rules)
            .await?;
        changes.extend(
            steps
                .iter()
                .map(|s| nlb::describe(s, &wanted, &snap.observed)),
        );
        if let Some(old) = &place.old {
            changes.push(Self::replaced(old, &wanted.name));
        }
        Ok(Plan { changes })
    }

    pub(crate) async fn ensure_l4(
        &self,
        owner: &Owner,
        spec: &L4Spec,
    ) -> Result<ObservedStatus, ProviderError> {
        let State {
            place,
            wanted,
            snap,
        } = self.l4_state(owner, spec).await?;
        let steps = nlb::diff(&wanted, &snap.observed);
        let scheme = self.scheme(spec.options.scheme);
        let rules = nlb::sg_rules(&wanted, &spec.source_ranges);
        let (cx, vpc) = self
            .prepare(
                owner,
                scheme,
                &spec.options.subnets,
                snap.balancer.as_ref(),
                &rules,
            )
            .await?;
        let (_, dns) = ensure::apply(&cx, &wanted, snap.observed, &steps, Some(vpc)).await?;
        self.attach(&cx, snap.balancer.as_ref()).await?;
        // A balancer just created is still provisioning; a later resync
        // sees it active (and only then retires the one it replaces).
        let ready = snap.balancer.as_ref().is_some_and(observe::is_active);
        self.retire(owner, &place, ready).await?;
        Ok(ensure::status(&wanted, dns, ready))
    }
}
