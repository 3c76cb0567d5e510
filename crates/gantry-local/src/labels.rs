//! Ownership labels of `LocalLoadBalancer` objects, and the proof that an
//! object found under our computed name really is ours.
//!
//! Label values are limited to 63 characters of `[A-Za-z0-9._-]` starting
//! and ending alphanumeric, while cluster ids and class names are not. A value
//! that does not fit is mapped, deterministically, to a readable prefix plus
//! a hash of the whole, so selectors computed later find the same objects.

use std::collections::BTreeMap;

use gantry_model::{
    Owner,
    identity::{TAG_CLASS, TAG_CLUSTER, TAG_OWNER_KIND, TAG_OWNER_UID},
    local::LocalLoadBalancer,
};
use sha2::{Digest, Sha256};

/// Annotation holding the owner's shared-IP key, so that a restarted
/// provider knows which balancers may share an address.
pub const ANNOTATION_SHARED_IP_KEY: &str = "gantry.dev/shared-ip-key";

const MAX_LABEL: usize = 63;
const HASH_HEX: usize = 10;

/// `value` itself when it is a valid label value, else a valid stand-in.
pub fn label_value(value: &str) -> String {
    if is_label_value(value) {
        return value.to_string();
    }
    let digest = Sha256::digest(value.as_bytes());
    let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut readable: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    readable.truncate(MAX_LABEL - HASH_HEX - 1);
    let readable = readable.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if readable.is_empty() {
        hash[..HASH_HEX].to_string()
    } else {
        format!("{readable}-{}", &hash[..HASH_HEX])
    }
}

fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    if value.is_empty() {
        return true;
    }
    value.len() <= MAX_LABEL
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The labels every object of `owner` in `class` carries.
pub(crate) fn owner_labels(owner: &Owner, class: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_CLUSTER.to_string(), label_value(&owner.cluster_id)),
        (TAG_CLASS.to_string(), label_value(class)),
        (TAG_OWNER_UID.to_string(), label_value(&owner.uid)),
        (TAG_OWNER_KIND.to_string(), owner.kind.as_str().to_string()),
    ])
}

/// A label selector for the objects of `cluster_id` in `class`, optionally
/// narrowed to one owner UID.
pub(crate) fn selector(cluster_id: &str, class: &str, owner_uid: Option<&str>) -> String {
    let mut s = format!(
        "{TAG_CLUSTER}={},{TAG_CLASS}={}",
        label_value(cluster_id),
        label_value(class)
    );
    if let Some(uid) = owner_uid {
        s.push_str(&format!(",{TAG_OWNER_UID}={}", label_value(uid)));
    }
    s
}

/// Whether `obj` was written by this cluster's provider of `class` for
/// exactly `owner`: every ownership label and `spec.owner`/`spec.class` agree.
pub(crate) fn is_owned_by(obj: &LocalLoadBalancer, owner: &Owner, class: &str) -> bool {
    let labels = obj.metadata.labels.clone().unwrap_or_default();
    let labels_match = owner_labels(owner, class)
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let spec_owner = &obj.spec.owner;
    labels_match
        && obj.spec.class == class
        && spec_owner.uid == owner.uid
        && spec_owner.kind == owner.kind.as_str()
        && spec_owner.namespace == owner.namespace
        && spec_owner.name == owner.name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_pass_through_and_others_are_mapped_stably() {
        for ok in ["", "prod", "us-east-1.a_b", &"x".repeat(63)] {
            assert_eq!(label_value(ok), ok);
        }
        for bad in ["a/b", "-lead", "trail.", &"y".repeat(64), "läb", "///"] {
            let v = label_value(bad);
            assert!(is_label_value(&v) && !v.is_empty(), "{bad:?} -> {v:?}");
            assert_eq!(v, label_value(bad), "deterministic");
        }
        assert_ne!(label_value(&"y".repeat(64)), label_value(&"y".repeat(65)));
    }
}
