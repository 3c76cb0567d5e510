//! An Ingress's ALB end to end: its certificate (named, or imported from
//! the TLS Secret), its security group, and the diff of balancer, target
//! groups, listeners and rules, for `plan` and for `ensure`.

use gantry_model::{
    ObservedStatus, Owner, Plan, ProviderError,
    desired::{L7Spec, Scheme},
    provider::{Action, Change},
};

use crate::{
    AwsProvider, alb, alb_apply, alb_diff,
    certificate::{self, Pem},
    observe, slot,
};

/// What `plan` and `ensure` share: the wanted shape, what AWS holds, the
/// listeners' rules, and the Secret to import (with the placeholder the
/// shape holds until its ARN is known).
struct State {
    place: slot::Placement,
    wanted: alb::Wanted,
    snap: observe::Snapshot,
    rules: alb_diff::Rules,
    import: Option<(Pem, String, certificate::Found)>,
}

impl AwsProvider {
    async fn l7_state(&self, owner: &Owner, spec: &L7Spec) -> Result<State, ProviderError> {
        // A certificate named by annotation or class wins; otherwise the
        // Ingress's own TLS Secret is imported.
        let pem = if spec.options.certificate_refs.is_empty()
            && self.settings.certificate_arn.is_none()
        {
            certificate::secret(&spec.tls)?
        } else {
            None
        };
        let pending = pem
            .as_ref()
            .map(|p| format!("(imported from Secret {})", p.secret));
        let certificate = self
            .settings
            .certificate_arn
            .as_deref()
            .or(pending.as_deref());
        // Check the spec before any call.
        alb::wanted(owner, &self.class, spec, certificate, slot::Slot::A)?;
        let scheme = self.scheme(spec.options.scheme);
        let place = slot::choose(&self.api, owner, &self.class, "alb", scheme).await?;
        let wanted = alb::wanted(owner, &self.class, spec, certificate, place.slot)?;
        let snap = observe::snapshot(
            &self.api,
            owner,
            &self.class,
            &wanted.name,
            wanted.target_groups.keys(),
        )
        .await?;
        let cx = self.context(owner, Scheme::InternetFacing, Vec::new());
        let rules = alb_diff::rules(&cx, &snap.observed).await?;
        let import = match (pem, pending) {
            (Some(pem), Some(pending)) => {
                let listener = snap
                    .observed
                    .listeners
                    .values()
                    .find_map(|l| l.certificate.as_deref());
                let found =
                    certificate::find(&self.api, owner, &self.class, &pem, listener).await?;
                Some((pem, pending, found))
            }
            _ => None,
        };
        Ok(State {
            place,
            wanted,
            snap,
            rules,
            import,
        })
    }

    pub(crate) async fn plan_l7(
        &self,
        owner: &Owner,
        spec: &L7Spec,
    ) -> Result<Plan, ProviderError> {
        let State {
            place,
            mut wanted,
            snap,
            rules,
            import,
        } = self.l7_state(owner, spec).await?;
        let mut changes = Vec::new();
        if let Some((pem, pending, found)) = &import {
            let change = |action, detail: &str| Change {
                action,
                resource: "certificate".into(),
                name: pem.secret.clone(),
                detail: detail.into(),
            };
            match &found.current {
                Some((arn, fresh)) => {
                    alb::set_certificate(&mut wanted, pending, arn);
                    if !fresh {
                        changes.push(change(Action::Update, "re-import the changed Secret"));
                    }
                }
                None => changes.push(change(Action::Create, "import the Secret into ACM")),
            }
        }
        let sg_rules = alb::sg_rules(&wanted);
        changes.extend(
            self.plan_security_group(owner, snap.balancer.as_ref(), &sg_rules)
                .await?,
        );
        changes.extend(
            alb_diff::diff(&wanted, &snap.observed, &rules)
                .iter()
                .map(|s| alb_diff::describe(s, &wanted)),
        );
        if let Some(old) = &place.old {
            changes.push(Self::replaced(old, &wanted.name));
        }
        Ok(Plan { changes })
    }

    pub(crate) async fn ensure_l7(
        &self,
        owner: &Owner,
        spec: &L7Spec,
    ) -> Result<ObservedStatus, ProviderError> {
        let State {
            place,
            mut wanted,
            snap,
            rules,
            import,
        } = self.l7_state(owner, spec).await?;
        let scheme = self.scheme(spec.options.scheme);
        let sg_rules = alb::sg_rules(&wanted);
        let (cx, vpc) = self
            .prepare(owner, scheme, &[], snap.balancer.as_ref(), &sg_rules)
            .await?;
        let mut stale = Vec::new();
        if let Some((pem, pending, found)) = &import {
            let arn = certificate::ensure(&cx, pem, found).await?;
            alb::set_certificate(&mut wanted, pending, &arn);
            stale.clone_from(&found.stale);
        }
        let steps = alb_diff::diff(&wanted, &snap.observed, &rules);
        let dns = alb_apply::apply(&cx, &wanted, snap.observed, &rules, &steps, Some(vpc)).await?;
        self.attach(&cx, snap.balancer.as_ref()).await?;
        // Certificates of an earlier Secret, now that no listener uses them.
        certificate::delete(&self.api, &stale).await?;
        let ready = snap.balancer.as_ref().is_some_and(observe::is_active);
        self.retire(owner, &place, ready).await?;
        Ok(alb_apply::status(&wanted, dns, ready))
    }
}
