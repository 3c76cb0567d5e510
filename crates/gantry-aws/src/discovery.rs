//! Finding what a balancer is built on: its subnets (explicit, from the
//! class, or discovered by the usual Kubernetes role and cluster tags) and
//! the EC2 instances behind each backend node.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use gantry_model::{
    ProviderError,
    desired::{BackendNode, Scheme},
};

use crate::api::{Api, Budget};

/// Subnet tag marking subnets for internet-facing balancers.
pub const ROLE_ELB: &str = "kubernetes.io/role/elb";
/// Subnet tag marking subnets for internal balancers.
pub const ROLE_INTERNAL_ELB: &str = "kubernetes.io/role/internal-elb";

/// The cluster tag key subnets carry (`owned` or `shared`).
pub fn cluster_tag(cluster_id: &str) -> String {
    format!("kubernetes.io/cluster/{cluster_id}")
}

/// The EC2 instance id in a node's `spec.providerID`
/// (`aws:///us-east-1a/i-0abc`), if it names one.
pub fn instance_id(node: &BackendNode) -> Option<&str> {
    let id = node.provider_id.as_deref()?;
    let rest = id.strip_prefix("aws://")?;
    let last = rest.rsplit('/').next()?;
    (last.starts_with("i-") && last.len() > 2).then_some(last)
}

/// The one VPC of `subnets` (id, VPC), or a rejection naming `field`.
fn one_vpc(
    field: &str,
    subnets: &BTreeMap<String, String>,
    class_vpc: Option<&str>,
) -> Result<String, ProviderError> {
    let vpcs: std::collections::BTreeSet<&str> = subnets.values().map(String::as_str).collect();
    let mut it = vpcs.iter();
    match (it.next(), it.next()) {
        (Some(vpc), None) => match class_vpc {
            Some(want) if want != *vpc => Err(ProviderError::Rejected {
                operation: "Validate",
                message: format!("{field}: the subnets are in {vpc}, not in spec.aws.vpcId {want}"),
            }),
            _ => Ok((*vpc).to_string()),
        },
        (Some(_), Some(_)) => Err(ProviderError::Rejected {
            operation: "Validate",
            message: format!(
                "{field}: the subnets span several VPCs ({}); one balancer lives in one VPC",
                vpcs.into_iter().collect::<Vec<_>>().join(", ")
            ),
        }),
        (None, _) => Err(ProviderError::Rejected {
            operation: "Validate",
            message: format!("{field}: no subnet"),
        }),
    }
}

/// Check that the subnets `ids` (named by `field`) exist, and find their
/// one VPC. A subnet EC2 does not know is a permanent error naming it.
pub(crate) async fn explicit_subnets(
    api: &Api,
    field: &str,
    ids: &[String],
    class_vpc: Option<&str>,
) -> Result<String, ProviderError> {
    let op = "DescribeSubnets";
    let out = match api
        .raw(
            op,
            Budget::General,
            api.ec2
                .describe_subnets()
                .set_subnet_ids(Some(ids.to_vec()))
                .send(),
        )
        .await?
    {
        Ok(out) => out,
        Err(e) if crate::error::has_code(&e, "InvalidSubnetID.NotFound") => {
            return Err(ProviderError::Rejected {
                operation: "Validate",
                message: format!(
                    "{field}: {} names a subnet that does not exist",
                    ids.join(",")
                ),
            });
        }
        Err(e) => return Err(crate::error::classify(op, e)),
    };
    let found: BTreeMap<String, String> = out
        .subnets()
        .iter()
        .filter_map(|s| Some((s.subnet_id()?.to_string(), s.vpc_id()?.to_string())))
        .collect();
    if let Some(gone) = ids.iter().find(|id| !found.contains_key(*id)) {
        return Err(ProviderError::Rejected {
            operation: "Validate",
            message: format!("{field}: subnet {gone} does not exist"),
        });
    }
    one_vpc(field, &found, class_vpc)
}

/// Subnets tagged for `scheme` and this cluster, one per availability zone
/// (the lowest id in each, so the choice is stable across resyncs), and
/// their VPC.
pub(crate) async fn discover_subnets(
    api: &Api,
    cluster_id: &str,
    vpc_id: Option<&str>,
    scheme: Scheme,
) -> Result<(Vec<String>, String), ProviderError> {
    let role = match scheme {
        Scheme::InternetFacing => ROLE_ELB,
        Scheme::Internal => ROLE_INTERNAL_ELB,
    };
    let mut filters = vec![
        Filter::builder().name("tag-key").values(role).build(),
        Filter::builder()
            .name(format!("tag:{}", cluster_tag(cluster_id)))
            .values("owned")
            .values("shared")
            .build(),
    ];
    if let Some(vpc) = vpc_id {
        filters.push(Filter::builder().name("vpc-id").values(vpc).build());
    }
    let out = api
        .call(
            "DescribeSubnets",
            Budget::General,
            api.ec2.describe_subnets().set_filters(Some(filters)).send(),
        )
        .await?;
    let mut by_zone: BTreeMap<String, (String, String)> = BTreeMap::new();
    for subnet in out.subnets() {
        let (Some(id), Some(zone), Some(vpc)) = (
            subnet.subnet_id(),
            subnet.availability_zone(),
            subnet.vpc_id(),
        ) else {
            continue;
        };
        by_zone
            .entry(zone.to_string())
            .and_modify(|cur| {
                if id < cur.0.as_str() {
                    *cur = (id.to_string(), vpc.to_string());
                }
            })
            .or_insert_with(|| (id.to_string(), vpc.to_string()));
    }
    if by_zone.is_empty() {
        return Err(ProviderError::Rejected {
            operation: "DescribeSubnets",
            message: format!(
                "no subnet tagged {role} and {} (owned or shared); tag subnets or list them in spec.aws.subnets",
                cluster_tag(cluster_id)
            ),
        });
    }
    let chosen: BTreeMap<String, String> = by_zone.into_values().collect();
    let vpc = one_vpc("discovered subnets", &chosen, vpc_id)?;
    Ok((chosen.into_keys().collect(), vpc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(pid: Option<&str>) -> BackendNode {
        BackendNode {
            name: "n".into(),
            address: std::net::IpAddr::from([10, 0, 0, 1]),
            provider_id: pid.map(str::to_string),
            zone: None,
        }
    }

    #[test]
    fn instance_ids_come_from_aws_provider_ids_only() {
        assert_eq!(
            instance_id(&node(Some("aws:///us-east-1a/i-0abc"))),
            Some("i-0abc")
        );
        assert_eq!(instance_id(&node(Some("aws:///i-0abc"))), Some("i-0abc"));
        assert_eq!(instance_id(&node(Some("gce://p/z/i-0abc"))), None);
        assert_eq!(
            instance_id(&node(Some("aws:///us-east-1a/fargate-x"))),
            None
        );
        assert_eq!(instance_id(&node(Some("aws:///us-east-1a/i-"))), None);
        assert_eq!(instance_id(&node(None)), None);
    }
}
