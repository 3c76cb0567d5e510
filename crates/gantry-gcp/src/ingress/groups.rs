//! The cluster's unmanaged instance groups, one per zone, holding the
//! eligible nodes, and the named ports backend services reach node ports
//! through.
//!
//! Compute Engine lets an instance be in only one load-balanced instance
//! group, so the groups belong to the cluster, not to one Ingress or even
//! one class: their names and descriptions name the cluster and zone only.
//! Named ports are only ever added (another balancer may use
//! one), and a group is removed only when nothing links to it any more,
//! which Compute Engine itself checks (`resourceInUseByAnotherResource`),
//! so a group still used by another Service or Ingress is
//! never deleted from under it.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{ProviderError, desired::BackendNode, provider::Action};
use google_cloud_compute_v1::model::{
    InstanceGroup, InstanceGroupAggregatedList, InstanceGroupsAddInstancesRequest,
    InstanceGroupsListInstancesRequest, InstanceGroupsRemoveInstancesRequest,
    InstanceGroupsSetNamedPortsRequest, InstanceReference, NamedPort,
};

use super::{cx::Cx, url_map::relative, wanted::NAME_LEN};
use crate::{
    api::request_id,
    group_id::{description, group_name, is_ours},
};

/// Attempts at `setNamedPorts` when another writer changes the group between
/// our read and our write (`412 conditionNotMet`).
const FINGERPRINT_ATTEMPTS: usize = 4;

/// `(project, zone, instance)` from `gce://project/zone/instance`.
pub(super) fn parse_provider_id(id: &str) -> Option<(&str, &str, &str)> {
    let mut parts = id.strip_prefix("gce://")?.split('/');
    let (project, zone, name) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = |s: &str| !s.is_empty() && s.len() <= NAME_LEN;
    (parts.next().is_none() && ok(project) && ok(zone) && ok(name)).then_some((project, zone, name))
}

/// Instance links of the nodes, by zone; nodes without a GCE provider ID
/// cannot be group members and are left out.
fn instances_by_zone(nodes: &[BackendNode]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in nodes {
        match node.provider_id.as_deref().and_then(parse_provider_id) {
            Some((project, zone, name)) => {
                out.entry(zone.to_string())
                    .or_default()
                    .insert(format!("projects/{project}/zones/{zone}/instances/{name}"));
            }
            None => tracing::warn!(
                node = %node.name,
                provider_id = ?node.provider_id,
                "Node has no gce:// provider ID; it cannot join an instance group"
            ),
        }
    }
    out
}

async fn get_group(
    cx: &Cx<'_>,
    zone: &str,
    name: &str,
) -> Result<Option<InstanceGroup>, ProviderError> {
    let api = cx.api;
    cx.get("instanceGroups.get", || {
        api.clients
            .instance_groups
            .get()
            .set_project(api.project.clone())
            .set_zone(zone)
            .set_instance_group(name)
            .send()
    })
    .await
}

/// Make sure the class's group exists in each zone of `nodes` with exactly
/// those nodes and at least `ports` as named ports; the groups' links.
pub async fn ensure(
    cx: &Cx<'_>,
    nodes: &[BackendNode],
    ports: &BTreeMap<String, u16>,
) -> Result<Vec<String>, ProviderError> {
    let mut links = Vec::new();
    for (zone, wanted) in instances_by_zone(nodes) {
        let name = group_name(cx.cluster_id, &zone);
        links.push(format!(
            "projects/{}/zones/{zone}/instanceGroups/{name}",
            cx.project()
        ));
        let group = ensure_group(cx, &zone, &name).await?;
        members(cx, &zone, &name, group.is_some(), &wanted).await?;
        named_ports(cx, &zone, &name, group, ports).await?;
    }
    Ok(links)
}

/// The group as it is, or `None` when it was just created (or, dry, would be).
async fn ensure_group(
    cx: &Cx<'_>,
    zone: &str,
    name: &str,
) -> Result<Option<InstanceGroup>, ProviderError> {
    let api = cx.api;
    if let Some(group) = get_group(cx, zone, name).await? {
        if !is_ours(cx.cluster_id, group.description.as_deref()) {
            return Err(ProviderError::NotOwned {
                resource: "instance-group",
                name: name.to_string(),
                owner: cx.owner.clone(),
            });
        }
        return Ok(Some(group));
    }
    let body = InstanceGroup::new()
        .set_name(name)
        .set_description(description(cx.cluster_id, zone));
    let rid = request_id();
    cx.record_create("instance-group", name, format!("zone {zone}"));
    if cx.dry {
        return Ok(None);
    }
    let made = cx
        .mutate("instanceGroups.insert", || {
            api.clients
                .instance_groups
                .insert()
                .set_project(api.project.clone())
                .set_zone(zone)
                .set_request_id(rid.clone())
                .set_body(body.clone())
                .send()
        })
        .await;
    match made {
        Ok(()) => Ok(None),
        // Another balancer of the class made it first: it is shared.
        Err(e) if e.is_already_exists() => {
            let group = get_group(cx, zone, name).await?;
            let desc = group.as_ref().and_then(|g| g.description.as_deref());
            if is_ours(cx.cluster_id, desc) {
                Ok(group)
            } else {
                Err(ProviderError::NotOwned {
                    resource: "instance-group",
                    name: name.to_string(),
                    owner: cx.owner.clone(),
                })
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Add missing nodes and remove departed ones.
async fn members(
    cx: &Cx<'_>,
    zone: &str,
    name: &str,
    existed: bool,
    wanted: &BTreeSet<String>,
) -> Result<(), ProviderError> {
    let api = cx.api;
    let current: BTreeSet<String> = if existed {
        api.call("instanceGroups.listInstances", || {
            api.clients
                .instance_groups
                .list_instances()
                .set_project(api.project.clone())
                .set_zone(zone)
                .set_instance_group(name)
                .set_body(InstanceGroupsListInstancesRequest::new())
                .send()
        })
        .await?
        .items
        .iter()
        .filter_map(|i| i.instance.as_deref().map(relative))
        .collect()
    } else {
        BTreeSet::new()
    };
    let add: Vec<&String> = wanted.difference(&current).collect();
    let remove: Vec<&String> = current.difference(wanted).collect();
    let refs = |links: &[&String]| -> Vec<InstanceReference> {
        links
            .iter()
            .map(|l| InstanceReference::new().set_instance((*l).clone()))
            .collect()
    };
    if !add.is_empty() {
        let body = InstanceGroupsAddInstancesRequest::new().set_instances(refs(&add));
        let rid = request_id();
        cx.write(
            Action::Update,
            ("instance-group", name),
            format!("add {} instance(s)", add.len()),
            "instanceGroups.addInstances",
            || {
                api.clients
                    .instance_groups
                    .add_instances()
                    .set_project(api.project.clone())
                    .set_zone(zone)
                    .set_instance_group(name)
                    .set_request_id(rid.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await?;
    }
    if !remove.is_empty() {
        let body = InstanceGroupsRemoveInstancesRequest::new().set_instances(refs(&remove));
        let rid = request_id();
        cx.write(
            Action::Update,
            ("instance-group", name),
            format!("remove {} instance(s)", remove.len()),
            "instanceGroups.removeInstances",
            || {
                api.clients
                    .instance_groups
                    .remove_instances()
                    .set_project(api.project.clone())
                    .set_zone(zone)
                    .set_instance_group(name)
                    .set_request_id(rid.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await?;
    }
    Ok(())
}

/// Add the named ports that are missing, keeping every other one; on a
/// stale fingerprint re-read and try again.
async fn named_ports(
    cx: &Cx<'_>,
    zone: &str,
    name: &str,
    mut group: Option<InstanceGroup>,
    ports: &BTreeMap<String, u16>,
) -> Result<(), ProviderError> {
    let api = cx.api;
    for attempt in 1..=FINGERPRINT_ATTEMPTS {
        let current = group
            .as_ref()
            .map(|g| g.named_ports.clone())
            .unwrap_or_default();
        let have: BTreeSet<(String, i32)> = current
            .iter()
            .filter_map(|p| Some((p.name.clone()?, p.port?)))
            .collect();
        let missing: Vec<(&String, &u16)> = ports
            .iter()
            .filter(|(n, p)| !have.contains(&((*n).clone(), i32::from(**p))))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut all = current;
        all.extend(missing.iter().map(|(n, p)| {
            NamedPort::new()
                .set_name((*n).clone())
                .set_port(i32::from(**p))
        }));
        let mut body = InstanceGroupsSetNamedPortsRequest::new().set_named_ports(all);
        if let Some(fp) = group.as_ref().and_then(|g| g.fingerprint.clone()) {
            body = body.set_fingerprint(fp);
        }
        let detail = missing
            .iter()
            .map(|(n, p)| format!("{n}={p}"))
            .collect::<Vec<_>>()
            .join(",");
        let rid = request_id();
        let result = cx
            .try_write(
                Action::Update,
                ("instance-group", name),
                format!("named ports +{detail}"),
                "instanceGroups.setNamedPorts",
                || {
                    api.clients
                        .instance_groups
                        .set_named_ports()
                        .set_project(api.project.clone())
                        .set_zone(zone)
                        .set_instance_group(name)
                        .set_request_id(rid.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await;
        match result {
            Err(e) if e.is_stale_fingerprint() && attempt < FINGERPRINT_ATTEMPTS => {
                // Another balancer of the class changed the ports; re-read.
                group = get_group(cx, zone, name).await?;
            }
            other => return Ok(other?),
        }
    }
    Ok(())
}

/// Delete the class's groups that nothing links to any more; a group still
/// used by another balancer is left (the API refuses, and that is the
/// answer). Returns how many were deleted.
pub async fn release_unused(cx: &Cx<'_>) -> Result<usize, ProviderError> {
    let api = cx.api;
    let pages = api
        .list_all::<InstanceGroupAggregatedList, _, _>("instanceGroups.aggregatedList", |token| {
            api.clients
                .instance_groups
                .aggregated_list()
                .set_project(api.project.clone())
                .set_page_token(token)
                .send()
        })
        .await?;
    let mut deleted = 0;
    for (_, scoped) in pages {
        for group in scoped.instance_groups {
            let (Some(name), Some(zone)) = (group.name.as_deref(), group.zone.as_deref()) else {
                continue;
            };
            if !is_ours(cx.cluster_id, group.description.as_deref()) {
                continue;
            }
            let zone = crate::api::last_segment(zone);
            let rid = request_id();
            let gone = cx
                .mutate("instanceGroups.delete", || {
                    api.clients
                        .instance_groups
                        .delete()
                        .set_project(api.project.clone())
                        .set_zone(zone.clone())
                        .set_instance_group(name)
                        .set_request_id(rid.clone())
                        .send()
                })
                .await;
            match gone {
                Ok(()) => deleted += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) if e.reason() == Some("resourceInUseByAnotherResource") => {
                    tracing::debug!(group = name, "Instance group still in use; kept");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        assert_eq!(
            parse_provider_id("gce://p/us-central1-a/n1"),
            Some(("p", "us-central1-a", "n1"))
        );
        for bad in [
            "aws:///us-east-1a/i-1",
            "gce://p/z",
            "gce://p/z/n/x",
            "gce:///z/n",
        ] {
            assert_eq!(parse_provider_id(bad), None, "{bad}");
        }
    }
}
