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

/// Subnets tagged for `scheme` and this cluster, one per availability zone
/// (the lowest id in each, so the choice is stable across resyncs).
pub(crate) async fn discover_subnets(
    api: &Api,
    cluster_id: &str,
    vpc_id: Option<&str>,
    scheme: Scheme,
) -> Result<Vec<String>, ProviderError> {
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
    let mut by_zone: BTreeMap<String, String> = BTreeMap::new();
    for subnet in out.subnets() {
        let (Some(id), Some(zone)) = (subnet.subnet_id(), subnet.availability_zone()) else {
            continue;
        };
        by_zone
            .entry(zone.to_string())
            .and_modify(|cur| {
                if id < cur.as_str() {
                    *cur = id.to_string();
                }
            })
            .or_insert_with(|| id.to_string());
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
    Ok(by_zone.into_values().collect())
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
