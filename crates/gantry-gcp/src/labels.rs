//! Ownership marks on Compute Engine resources.
//!
//! Only some collections have `labels` (addresses, forwarding rules), and
//! label values cannot hold `/`, `.` or upper case, so the proof of
//! ownership is the `description`: a fixed prefix naming Gantry followed by
//! the owner's tags (cluster, class, owner kind, `namespace/name`, UID and
//! the resource's role) as JSON. Labels, where a resource has them, carry a
//! sanitised copy for filtering and for people reading the console.

use std::collections::{BTreeMap, HashMap};

use gantry_model::{
    Owner,
    identity::{TAG_CLASS, TAG_CLUSTER, TAG_ROLE},
};

/// Start of every description Gantry writes.
pub const DESCRIPTION_PREFIX: &str = "Managed by Gantry; do not edit. ";

/// Label present on every labelled resource Gantry made.
pub const LABEL_MANAGED: &str = "gantry-managed";
/// Label holding the (sanitised) cluster id.
pub const LABEL_CLUSTER: &str = "gantry-cluster";
/// Label holding the (sanitised) class.
pub const LABEL_CLASS: &str = "gantry-class";
/// Label holding the owner's UID.
pub const LABEL_OWNER_UID: &str = "gantry-owner-uid";
/// Label holding the owner kind, lower case.
pub const LABEL_OWNER_KIND: &str = "gantry-owner-kind";

/// The description of `owner`'s resource of `role` in `class`.
pub fn description(owner: &Owner, class: &str, role: &str) -> String {
    let mut tags = owner.tags(class);
    tags.insert(TAG_ROLE.to_string(), role.to_string());
    // A map of strings always serialises.
    let json = serde_json::to_string(&tags).unwrap_or_default();
    format!("{DESCRIPTION_PREFIX}{json}")
}

/// The tags written in a description of Gantry's, or `None` when the
/// description is not one (missing, foreign, edited).
pub fn parse_description(description: Option<&str>) -> Option<BTreeMap<String, String>> {
    let json = description?.strip_prefix(DESCRIPTION_PREFIX)?;
    serde_json::from_str(json).ok()
}

/// Whether a resource's description proves it is `owner`'s in `class`.
pub fn owned(owner: &Owner, class: &str, description: Option<&str>) -> bool {
    parse_description(description).is_some_and(|tags| owner.owns(class, &tags))
}

/// Owner of a resource made by Gantry for `cluster_id` in `class`, from
/// its description.
pub fn owner_of(description: Option<&str>, cluster_id: &str, class: &str) -> Option<Owner> {
    let tags = parse_description(description)?;
    if tags.get(TAG_CLUSTER).map(String::as_str) != Some(cluster_id)
        || tags.get(TAG_CLASS).map(String::as_str) != Some(class)
    {
        return None;
    }
    Owner::from_tags(&tags)
}

/// Labels for a labelled resource of `owner` in `class`.
pub fn labels(owner: &Owner, class: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_CLUSTER.to_string(), label_value(&owner.cluster_id)),
        (LABEL_CLASS.to_string(), label_value(class)),
        (
            LABEL_OWNER_KIND.to_string(),
            label_value(owner.kind.as_str()),
        ),
        (LABEL_OWNER_UID.to_string(), label_value(&owner.uid)),
    ])
}

/// A label value: lower-case letters, digits, `-` and `_`, at most 63
/// characters.
pub fn label_value(s: &str) -> String {
    let mut v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    v.truncate(63);
    v
}

#[cfg(test)]
mod tests {
    use gantry_model::OwnerKind;

    use super::*;

    fn owner(uid: &str) -> Owner {
        Owner {
            cluster_id: "Cluster.1".into(),
            kind: OwnerKind::Service,
            namespace: "default".into(),
            name: "web".into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn description_proves_ownership() {
        let o = owner("u1");
        let d = description(&o, "gcp", "fr-tcp");
        assert!(owned(&o, "gcp", Some(&d)));
        assert!(!owned(&o, "other", Some(&d)));
        assert!(!owned(&owner("u2"), "gcp", Some(&d)));
        assert!(!owned(&o, "gcp", Some("made by hand")));
        assert!(!owned(&o, "gcp", None));
        assert_eq!(owner_of(Some(&d), "Cluster.1", "gcp"), Some(o.clone()));
        assert_eq!(owner_of(Some(&d), "other", "gcp"), None);
        assert!(d.len() < 2048);
    }

    #[test]
    fn labels_fit_the_label_format() {
        for (k, v) in labels(&owner(&"U".repeat(80)), "Gcp/Public") {
            assert!(k.len() <= 63 && v.len() <= 63, "{k}={v}");
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
                "{k}={v}"
            );
        }
    }
}
