//! Identity of the cluster's shared instance groups: their names and the
//! description that marks them as Gantry's. Service and Ingress balancers
//! both put nodes in these groups, so both halves of the crate must agree
//! on this byte for byte; it lives here once.

use std::collections::BTreeMap;

use gantry_model::identity::{TAG_CLUSTER, TAG_ROLE, resource_name};

use crate::{labels, names::NAME_LEN};

/// The name of the cluster's instance group in `zone`.
///
/// Per cluster, not per class: Compute Engine refuses an instance in two
/// load-balanced groups, so two classes over the same nodes (and a Service
/// moving between them) must share one group per zone, as ingress-gce's
/// `k8s-ig--<cluster>` groups are shared.
pub(crate) fn group_name(cluster_id: &str, zone: &str) -> String {
    let role = format!("ig-{zone}");
    resource_name(cluster_id, "", &["nodes"], &role, &role, NAME_LEN)
}

/// The description of the cluster's group in `zone`.
pub(crate) fn description(cluster_id: &str, zone: &str) -> String {
    let tags = BTreeMap::from([
        (TAG_CLUSTER, cluster_id.to_string()),
        (TAG_ROLE, format!("ig-{zone}")),
    ]);
    // A map of strings always serialises.
    let json = serde_json::to_string(&tags).unwrap_or_default();
    format!("{}{json}", labels::DESCRIPTION_PREFIX)
}

/// Whether a group's description says it is the cluster's shared group.
pub(crate) fn is_ours(cluster_id: &str, description: Option<&str>) -> bool {
    labels::parse_description(description).is_some_and(|tags| {
        tags.get(TAG_CLUSTER).map(String::as_str) == Some(cluster_id)
            && tags.get(TAG_ROLE).is_some_and(|r| r.starts_with("ig-"))
            && tags.len() == 2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_per_cluster_and_zone_whatever_the_class() {
        let a = group_name("c", "us-central1-a");
        assert!(crate::names::is_valid(&a), "{a}");
        assert_ne!(a, group_name("c", "us-central1-b"));
        assert_ne!(a, group_name("c2", "us-central1-a"));
        let d = description("c", "us-central1-a");
        assert!(is_ours("c", Some(&d)));
        assert!(!is_ours("c2", Some(&d)));
        // A per-class group of an older description is not taken for ours.
        let old = format!(
            "{}{{\"gantry.dev/class\":\"gcp\",\"gantry.dev/cluster\":\"c\",\"gantry.dev/role\":\"ig-z\"}}",
            labels::DESCRIPTION_PREFIX
        );
        assert!(!is_ours("c", Some(&old)));
    }
}
