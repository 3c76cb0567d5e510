//! The cluster's unmanaged instance groups, one per zone, holding the
//! eligible nodes, as Service backend services use them.
//!
//! Compute Engine lets an instance be in only one load-balanced instance
//! group, so the groups belong to the cluster, not to one Service or even
//! one class: their names and descriptions name the cluster and zone only
//! (the Ingress path of the crate names and describes them the same way, so
//! both share them). A group is deleted only when nothing links to it any
//! more, which Compute Engine itself checks (`resourceInUseByAnotherResource`).

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{ProviderError, provider::Action};
use google_cloud_compute_v1::model::{
    InstanceGroup, InstanceGroupAggregatedList, InstanceGroupsAddInstancesRequest,
    InstanceGroupsListInstances, InstanceGroupsListInstancesRequest,
    InstanceGroupsRemoveInstancesRequest, InstanceReference,
};

use super::{
    cx::{Cx, change, relative},
    wanted::Instance,
};
use crate::{
    api::{last_segment, request_id},
    group_id::{description, group_name, is_ours},
};

/// `projects/P/zones/Z/instanceGroups/N` of the class's group in `zone`.
pub fn group_link(cx: &Cx<'_>, zone: &str) -> String {
    format!(
        "projects/{}/zones/{zone}/instanceGroups/{}",
        cx.api.project,
        group_name(cx.cluster_id, zone)
    )
}

/// Make sure the class's group of each zone holds exactly the zone's
/// instances (additions before removals, so a node moving between groups
/// never leaves the balancer empty); the groups' links.
pub async fn ensure(
    cx: &Cx<'_>,
    zones: &BTreeMap<String, BTreeSet<Instance>>,
) -> Result<Vec<String>, ProviderError> {
    let mut links = Vec::new();
    for (zone, instances) in zones {
        let name = group_name(cx.cluster_id, zone);
        links.push(group_link(cx, zone));
        let exists = ensure_group(cx, zone, &name).await?;
        let wanted: BTreeSet<String> = instances.iter().map(Instance::link).collect();
        let current = if exists {
            members(cx, zone, &name).await?
        } else {
            BTreeSet::new()
        };
        let add: Vec<&String> = wanted.difference(&current).collect();
        let remove: Vec<&String> = current.difference(&wanted).collect();
        if !add.is_empty() {
            let body = InstanceGroupsAddInstancesRequest::new().set_instances(
                add.iter()
                    .map(|l| InstanceReference::new().set_instance(l.to_string())),
            );
            let id = request_id();
            let api = cx.api;
            cx.write(
                "instanceGroups.addInstances",
                change(
                    Action::Update,
                    "instance-group",
                    &name,
                    format!("add {}", short(&add)),
                ),
                || {
                    api.clients
                        .instance_groups
                        .add_instances()
                        .set_project(api.project.clone())
                        .set_zone(zone.clone())
                        .set_instance_group(name.clone())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?;
        }
        if !remove.is_empty() {
            let body = InstanceGroupsRemoveInstancesRequest::new().set_instances(
                remove
                    .iter()
                    .map(|l| InstanceReference::new().set_instance(l.to_string())),
            );
            let id = request_id();
            let api = cx.api;
            cx.write(
                "instanceGroups.removeInstances",
                change(
                    Action::Update,
                    "instance-group",
                    &name,
                    format!("remove {}", short(&remove)),
                ),
                || {
                    api.clients
                        .instance_groups
                        .remove_instances()
                        .set_project(api.project.clone())
                        .set_zone(zone.clone())
                        .set_instance_group(name.clone())
                        .set_request_id(id.clone())
                        .set_body(body.clone())
                        .send()
                },
            )
            .await?;
        }
    }
    Ok(links)
}

/// Instance names of `links`, for change details.
fn short(links: &[&String]) -> String {
    links
        .iter()
        .map(|l| last_segment(l))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the group exists (created now unless dry); a foreign group with
/// the class's name is refused.
async fn ensure_group(cx: &Cx<'_>, zone: &str, name: &str) -> Result<bool, ProviderError> {
    let api = cx.api;
    let get = || {
        api.clients
            .instance_groups
            .get()
            .set_project(api.project.clone())
            .set_zone(zone)
            .set_instance_group(name)
            .send()
    };
    match api.call("instanceGroups.get", get).await {
        Ok(g) => return check(cx, name, &g).map(|()| true),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let body = InstanceGroup::new()
        .set_name(name)
        .set_description(description(cx.cluster_id, zone))
        .set_network(format!("projects/{}/global/networks/default", api.project));
    let id = request_id();
    let created = cx
        .write(
            "instanceGroups.insert",
            change(
                Action::Create,
                "instance-group",
                name,
                format!("zone {zone}"),
            ),
            || {
                api.clients
                    .instance_groups
                    .insert()
                    .set_project(api.project.clone())
                    .set_zone(zone)
                    .set_request_id(id.clone())
                    .set_body(body.clone())
                    .send()
            },
        )
        .await;
    match created {
        Ok(()) => Ok(false),
        // Made by a racing reconcile (another Service of the class): use it
        // if it is the class's.
        Err(e) if e.is_already_exists() => {
            let g = api.call("instanceGroups.get", get).await?;
            check(cx, name, &g).map(|()| true)
        }
        Err(e) => Err(e.into()),
    }
}

fn check(cx: &Cx<'_>, name: &str, g: &InstanceGroup) -> Result<(), ProviderError> {
    if is_ours(cx.cluster_id, g.description.as_deref()) {
        Ok(())
    } else {
        Err(ProviderError::NotOwned {
            resource: "instance-group",
            name: name.to_string(),
            owner: cx.owner.clone(),
        })
    }
}

/// Instance links in the group, relative.
async fn members(cx: &Cx<'_>, zone: &str, name: &str) -> Result<BTreeSet<String>, ProviderError> {
    let api = cx.api;
    let items = api
        .list_all::<InstanceGroupsListInstances, _, _>("instanceGroups.listInstances", |token| {
            api.clients
                .instance_groups
                .list_instances()
                .set_project(api.project.clone())
                .set_zone(zone)
                .set_instance_group(name)
                .set_page_token(token)
                .set_body(InstanceGroupsListInstancesRequest::new())
                .send()
        })
        .await?;
    Ok(items
        .into_iter()
        .filter_map(|i| i.instance.map(|l| relative(&l).to_string()))
        .collect())
}

/// Every group of the class in the project, as `(zone, name)`.
pub async fn class_groups(cx: &Cx<'_>) -> Result<Vec<(String, String)>, ProviderError> {
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
    Ok(pages
        .into_iter()
        .flat_map(|(_, scoped)| scoped.instance_groups)
        .filter(|g| is_ours(cx.cluster_id, g.description.as_deref()))
        .filter_map(|g| Some((last_segment(g.zone.as_deref()?), g.name?)))
        .collect())
}

/// Delete the class's groups that nothing links to any more (the ones in
/// `zones`, or every group of the class when `None`); groups still used by
/// another balancer are left alone. How many were deleted.
pub async fn release_unused(
    cx: &Cx<'_>,
    zones: Option<&BTreeSet<String>>,
) -> Result<usize, ProviderError> {
    let groups: Vec<(String, String)> = match zones {
        Some(zones) => zones
            .iter()
            .map(|z| (z.clone(), group_name(cx.cluster_id, z)))
            .collect(),
        None => class_groups(cx).await?,
    };
    let api = cx.api;
    let mut deleted = 0;
    for (zone, name) in groups {
        let id = request_id();
        let result = cx
            .write(
                "instanceGroups.delete",
                change(
                    Action::Delete,
                    "instance-group",
                    &name,
                    format!("zone {zone}"),
                ),
                || {
                    api.clients
                        .instance_groups
                        .delete()
                        .set_project(api.project.clone())
                        .set_zone(zone.clone())
                        .set_instance_group(name.clone())
                        .set_request_id(id.clone())
                        .send()
                },
            )
            .await;
        match result {
            Ok(()) => deleted += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) if e.reason() == Some("resourceInUseByAnotherResource") => {
                tracing::debug!(group = %name, "Instance group still in use; kept");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}
