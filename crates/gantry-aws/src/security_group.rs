//! The balancer's own security group: who may reach its listeners.
//!
//! Every balancer gets one Gantry-owned security group (tagged like every
//! other resource, named deterministically within its VPC) whose inbound
//! rules open each listener port to the source ranges: the Service's
//! `loadBalancerSourceRanges`, or everyone (`0.0.0.0/0` and `::/0`). This is
//! how the AWS Load Balancer Controller guards both ALBs and (since NLBs
//! accept security groups) NLBs, so source ranges are enforced at the
//! balancer rather than by editing the nodes' groups. Rules are diffed:
//! missing ones are authorized before extra ones are revoked, so narrowing
//! the ranges never closes a port that stays open.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification,
};
use gantry_model::{
    Owner, ProviderError,
    identity::{TAG_CLASS, TAG_CLUSTER, TAG_OWNER_UID},
    provider::{Action, Change},
};
use ipnet::IpNet;

use crate::{
    api::{Api, Budget},
    ensure::{Context, missing},
    error::has_code,
};

/// Longest name Gantry gives a security group (AWS allows 255; the balancer
/// names' limit keeps every Gantry name of one owner alike).
const NAME_LEN: usize = 32;

/// One inbound rule: a protocol (`tcp` or `udp`), a port and a source CIDR.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Rule {
    /// `tcp` or `udp` (AWS's lower-case names).
    pub(crate) protocol: String,
    /// First port.
    pub(crate) from: i32,
    /// Last port.
    pub(crate) to: i32,
    /// Source range, canonical (host bits cleared).
    pub(crate) cidr: String,
}

/// Everyone: the ranges used when the object names none.
pub(crate) fn everyone() -> Vec<IpNet> {
    vec![
        IpNet::V4(ipnet::Ipv4Net::default()),
        IpNet::V6(ipnet::Ipv6Net::default()),
    ]
}

/// The inbound rules opening `ports` (port, protocols) to `ranges` (or to
/// everyone when `ranges` is empty).
pub(crate) fn rules<'a>(
    ports: impl IntoIterator<Item = (u16, &'a [&'static str])>,
    ranges: &[IpNet],
) -> BTreeSet<Rule> {
    let ranges = if ranges.is_empty() {
        everyone()
    } else {
        ranges.to_vec()
    };
    let mut out = BTreeSet::new();
    for (port, protocols) in ports {
        for protocol in protocols {
            for cidr in &ranges {
                out.insert(Rule {
                    protocol: (*protocol).to_string(),
                    from: i32::from(port),
                    to: i32::from(port),
                    cidr: cidr.trunc().to_string(),
                });
            }
        }
    }
    out
}

/// The security group as EC2 holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observed {
    /// Group id (`sg-...`).
    pub(crate) id: String,
    /// Inbound rules, flattened to one CIDR each.
    pub(crate) rules: BTreeSet<Rule>,
}

/// The name of `owner`'s security group in `class`.
pub(crate) fn name(owner: &Owner, class: &str) -> String {
    owner.resource_name(class, "sg", NAME_LEN)
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn flatten(perms: &[IpPermission]) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or_default().to_string();
        let (from, to) = (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1));
        let cidrs = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()));
        for cidr in cidrs {
            out.insert(Rule {
                protocol: protocol.clone(),
                from,
                to,
                cidr: cidr.to_string(),
            });
        }
    }
    out
}

/// The group `name` in `vpc`, if it exists; one that is not `owner`'s is
/// [`ProviderError::NotOwned`].
pub(crate) async fn find(
    api: &Api,
    owner: &Owner,
    class: &str,
    name: &str,
    vpc: &str,
) -> Result<Option<Observed>, ProviderError> {
    let out = api
        .call(
            "DescribeSecurityGroups",
            Budget::General,
            api.ec2
                .describe_security_groups()
                .filters(Filter::builder().name("vpc-id").values(vpc).build())
                .filters(Filter::builder().name("group-name").values(name).build())
                .send(),
        )
        .await?;
    let Some(sg) = out.security_groups().first() else {
        return Ok(None);
    };
    if !owner.owns(class, &tag_map(sg.tags())) {
        return Err(ProviderError::NotOwned {
            resource: "security-group",
            name: name.to_string(),
            owner: owner.clone(),
        });
    }
    Ok(Some(Observed {
        id: sg.group_id().unwrap_or_default().to_string(),
        rules: flatten(sg.ip_permissions()),
    }))
}

/// Rules to add and to remove to go from `observed` to `wanted`.
pub(crate) fn diff(wanted: &BTreeSet<Rule>, observed: Option<&Observed>) -> (Vec<Rule>, Vec<Rule>) {
    let empty = BTreeSet::new();
    let have = observed.map_or(&empty, |o| &o.rules);
    (
        wanted.difference(have).cloned().collect(),
        have.difference(wanted).cloned().collect(),
    )
}

/// Describe the group's changes for `plan`.
pub(crate) fn describe(
    name: &str,
    wanted: &BTreeSet<Rule>,
    observed: Option<&Observed>,
) -> Vec<Change> {
    let (add, remove) = diff(wanted, observed);
    let mut out = Vec::new();
    if observed.is_none() {
        out.push(Change {
            action: Action::Create,
            resource: "security-group".into(),
            name: name.to_string(),
            detail: format!("{} inbound rule(s)", add.len()),
        });
        return out;
    }
    let fmt = |r: &Rule| format!("{} {} from {}", r.protocol, r.from, r.cidr);
    if !add.is_empty() || !remove.is_empty() {
        let mut detail: Vec<String> = add.iter().map(|r| format!("+{}", fmt(r))).collect();
        detail.extend(remove.iter().map(|r| format!("-{}", fmt(r))));
        out.push(Change {
            action: Action::Update,
            resource: "security-group".into(),
            name: name.to_string(),
            detail: detail.join(", "),
        });
    }
    out
}

fn permissions(rules: &[Rule]) -> Vec<IpPermission> {
    rules
        .iter()
        .map(|r| {
            let b = IpPermission::builder()
                .ip_protocol(&r.protocol)
                .from_port(r.from)
                .to_port(r.to);
            if r.cidr.contains(':') {
                b.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(&r.cidr).build())
            } else {
                b.ip_ranges(IpRange::builder().cidr_ip(&r.cidr).build())
            }
            .build()
        })
        .collect()
}

/// Create the group `name` in `vpc`, tagged as ours; its id, or `None`
/// when a group of that name already exists (an earlier attempt whose
/// answer was lost).
async fn create(cx: &Context<'_>, name: &str, vpc: &str) -> Result<Option<String>, ProviderError> {
    let api = cx.api;
    let op = "CreateSecurityGroup";
    let tags: Vec<Tag> = cx
        .tags("security-group")
        .into_iter()
        .map(|t| {
            Tag::builder()
                .key(t.key().unwrap_or_default())
                .value(t.value().unwrap_or_default())
                .build()
        })
        .collect();
    match api
        .raw(
            op,
            Budget::General,
            api.ec2
                .create_security_group()
                .group_name(name)
                .description("Gantry load balancer frontend")
                .vpc_id(vpc)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send(),
        )
        .await?
    {
        Ok(out) => Ok(Some(
            out.group_id()
                .ok_or_else(|| missing(op, "security group id"))?
                .to_string(),
        )),
        Err(e) if has_code(&e, "InvalidGroup.Duplicate") => Ok(None),
        Err(e) => Err(crate::error::classify(op, e)),
    }
}

/// Make the group `name` in `vpc` hold exactly `wanted`; its id.
pub(crate) async fn ensure(
    cx: &Context<'_>,
    name: &str,
    vpc: &str,
    wanted: &BTreeSet<Rule>,
    mut observed: Option<Observed>,
) -> Result<String, ProviderError> {
    let api = cx.api;
    let id = match observed.as_ref().map(|o| o.id.clone()) {
        Some(id) => id,
        None => match create(cx, name, vpc).await? {
            Some(id) => id,
            None => {
                // Read it back, proving it ours, and diff from there.
                let found = find(api, cx.owner, cx.class, name, vpc)
                    .await?
                    .ok_or_else(|| missing("CreateSecurityGroup", "security group"))?;
                let id = found.id.clone();
                observed = Some(found);
                id
            }
        },
    };
    let (add, remove) = diff(wanted, observed.as_ref());
    // Open before closing, so a port that stays open never blinks shut.
    if !add.is_empty() {
        api.call(
            "AuthorizeSecurityGroupIngress",
            Budget::General,
            api.ec2
                .authorize_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(permissions(&add)))
                .send(),
        )
        .await?;
    }
    if !remove.is_empty() {
        api.call(
            "RevokeSecurityGroupIngress",
            Budget::General,
            api.ec2
                .revoke_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(permissions(&remove)))
                .send(),
        )
        .await?;
    }
    Ok(id)
}

/// Point an existing balancer at exactly `groups`, when it is not already.
pub(crate) async fn attach(
    api: &Api,
    balancer_arn: &str,
    have: &[String],
    groups: &[String],
) -> Result<(), ProviderError> {
    let have: BTreeSet<&String> = have.iter().collect();
    let want: BTreeSet<&String> = groups.iter().collect();
    if have == want {
        return Ok(());
    }
    api.call(
        "SetSecurityGroups",
        Budget::General,
        api.elb
            .set_security_groups()
            .load_balancer_arn(balancer_arn)
            .set_security_groups(Some(groups.to_vec()))
            .send(),
    )
    .await?;
    Ok(())
}

/// Ids of every security group tagged for `owner` in `class`.
async fn owned(api: &Api, owner: &Owner, class: &str) -> Result<Vec<String>, ProviderError> {
    let out = api
        .call(
            "DescribeSecurityGroups",
            Budget::General,
            api.ec2
                .describe_security_groups()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{TAG_OWNER_UID}"))
                        .values(&owner.uid)
                        .build(),
                )
                .send(),
        )
        .await?;
    Ok(out
        .security_groups()
        .iter()
        .filter(|sg| owner.owns(class, &tag_map(sg.tags())))
        .filter_map(|sg| sg.group_id().map(str::to_string))
        .collect())
}

/// Delete every security group of `owner` in `class`; whether any existed.
/// Run after the balancer is gone: while its network interfaces linger EC2
/// answers `DependencyViolation`, which is transient, so a replay finishes.
pub(crate) async fn delete_owned(
    api: &Api,
    owner: &Owner,
    class: &str,
) -> Result<bool, ProviderError> {
    let ids = owned(api, owner, class).await?;
    for id in &ids {
        let op = "DeleteSecurityGroup";
        match api
            .raw(
                op,
                Budget::General,
                api.ec2.delete_security_group().group_id(id).send(),
            )
            .await?
        {
            Ok(_) => {}
            Err(e) if has_code(&e, "InvalidGroup.NotFound") => {}
            Err(e) => return Err(crate::error::classify(op, e)),
        }
    }
    Ok(!ids.is_empty())
}

/// Tags of every security group tagged for `cluster_id` and `class`.
pub(crate) async fn tagged(
    api: &Api,
    cluster_id: &str,
    class: &str,
) -> Result<Vec<BTreeMap<String, String>>, ProviderError> {
    let out = api
        .call(
            "DescribeSecurityGroups",
            Budget::General,
            api.ec2
                .describe_security_groups()
                .filters(
                    Filter::builder()
                        .name(format!("tag:{TAG_CLUSTER}"))
                        .values(cluster_id)
                        .build(),
                )
                .filters(
                    Filter::builder()
                        .name(format!("tag:{TAG_CLASS}"))
                        .values(class)
                        .build(),
                )
                .send(),
        )
        .await?;
    Ok(out
        .security_groups()
        .iter()
        .map(|sg| tag_map(sg.tags()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_default_to_everyone_and_clear_host_bits() {
        let open = rules([(80, &["tcp"][..])], &[]);
        let cidrs: Vec<&str> = open.iter().map(|r| r.cidr.as_str()).collect();
        assert_eq!(cidrs, ["0.0.0.0/0", "::/0"]);
        let narrow = rules(
            [(53, &["tcp", "udp"][..])],
            &["10.1.2.3/16".parse().expect("cidr")],
        );
        let got: Vec<(&str, &str)> = narrow
            .iter()
            .map(|r| (r.protocol.as_str(), r.cidr.as_str()))
            .collect();
        assert_eq!(got, [("tcp", "10.1.0.0/16"), ("udp", "10.1.0.0/16")]);
    }

    #[test]
    fn diff_adds_missing_and_removes_extra_rules() {
        let wanted = rules([(80, &["tcp"][..])], &["10.0.0.0/8".parse().expect("cidr")]);
        let observed = Observed {
            id: "sg-1".into(),
            rules: rules([(80, &["tcp"][..])], &[]),
        };
        let (add, remove) = diff(&wanted, Some(&observed));
        assert_eq!(add.len(), 1);
        assert_eq!(remove.len(), 2);
        let (add, remove) = diff(&wanted, None);
        assert_eq!((add.len(), remove.len()), (1, 0));
    }
}
