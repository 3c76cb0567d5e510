//! Ingress -> global external Application Load Balancer.
//!
//! [`wanted`] computes the chain without I/O; [`ensure`] reads what Compute
//! Engine holds and walks the chain from the backends up to the frontend
//! (health checks, backend services, certificates, URL maps, address,
//! proxies, forwarding rules), so that nothing is ever linked before it
//! exists, then removes what is no longer wanted from the frontend down.
//! [`plan`] runs the same walk without writing and reports the changes.
//! [`delete`] tears down in dependency order and is safe to replay.

mod apply;
mod backends;
mod cx;
mod firewall;
mod frontend;
mod groups;
mod proxies;
mod teardown;
mod url_map;
mod wanted;

use gantry_model::{
    ObservedStatus, Owner, Plan, ProviderError,
    desired::{L7Spec, Protocol},
    provider::{IngressPoint, PortStatus},
};

use self::cx::Cx;
use crate::api::Api;

/// The changes [`ensure`] would make, reading only.
pub async fn plan(
    api: &Api,
    owner: &Owner,
    class: &str,
    cluster_id: &str,
    spec: &L7Spec,
) -> Result<Plan, ProviderError> {
    let wanted = wanted::wanted(owner, class, &api.project, spec)?;
    let cx = Cx::new(api, owner, class, cluster_id, true);
    apply::apply(&cx, &wanted, spec).await?;
    Ok(Plan {
        changes: cx.into_changes(),
    })
}

/// Create or update `owner`'s balancer to match `spec`; report its address.
pub async fn ensure(
    api: &Api,
    owner: &Owner,
    class: &str,
    cluster_id: &str,
    spec: &L7Spec,
) -> Result<ObservedStatus, ProviderError> {
    let wanted = wanted::wanted(owner, class, &api.project, spec)?;
    let cx = Cx::new(api, owner, class, cluster_id, false);
    let ip = apply::apply(&cx, &wanted, spec).await?;
    let ports = [wanted.http.as_ref(), wanted.https.as_ref()]
        .into_iter()
        .flatten()
        .map(|f| PortStatus {
            port: f.port,
            protocol: Protocol::Tcp,
        })
        .collect();
    // Every Operation was awaited to DONE, so the chain is complete.
    Ok(ObservedStatus {
        ingress: vec![IngressPoint {
            ip: ip.and_then(|ip| ip.parse().ok()),
            hostname: None,
            ports,
        }],
        ready: true,
    })
}

/// Remove every resource of `owner`'s balancer in `class`; whether anything
/// was there.
pub async fn delete(
    api: &Api,
    owner: &Owner,
    class: &str,
    cluster_id: &str,
) -> Result<bool, ProviderError> {
    let cx = Cx::new(api, owner, class, cluster_id, false);
    teardown::delete(&cx).await
}

/// Owners of the Ingress balancers of `cluster_id` in `class`, from the
/// descriptions of their global forwarding rules, URL maps and backend
/// services (any one left over from a half-done create counts).
pub async fn list_owned(
    api: &Api,
    cluster_id: &str,
    class: &str,
) -> Result<Vec<Owner>, ProviderError> {
    teardown::list_owned(api, cluster_id, class).await
}
