//! Ownership: who a load balancer belongs to, how its cloud resources are
//! named, and the tags that prove Gantry made them.
//!
//! Names are deterministic (so a controller that crashed after creating a
//! resource finds it again) and include the owner's UID (so an object deleted
//! and re-created under the same name never shares cloud resources with its
//! predecessor whose cleanup may still be pending).

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Tag/label key holding the cluster id.
pub const TAG_CLUSTER: &str = "gantry.dev/cluster";
/// Tag/label key holding the owner kind (`Service` or `Ingress`).
pub const TAG_OWNER_KIND: &str = "gantry.dev/owner-kind";
/// Tag/label key holding `namespace/name` of the owner.
pub const TAG_OWNER: &str = "gantry.dev/owner";
/// Tag/label key holding the owner's UID.
pub const TAG_OWNER_UID: &str = "gantry.dev/owner-uid";
/// Tag/label key holding the `LoadBalancerClass` a resource was built for.
///
/// During a class migration the same owner has resources in two classes,
/// possibly in the same cloud account; the class tag keeps the old class's
/// cleanup from touching the new balancer.
pub const TAG_CLASS: &str = "gantry.dev/class";
/// Tag/label key holding the role of one resource within a load balancer.
pub const TAG_ROLE: &str = "gantry.dev/role";

/// The kind of Kubernetes object a load balancer serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OwnerKind {
    /// A Service of type LoadBalancer (L4).
    Service,
    /// An Ingress (L7).
    Ingress,
}

impl OwnerKind {
    /// The Kubernetes kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "Service",
            Self::Ingress => "Ingress",
        }
    }

    /// Parse a kind name as written in tags.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Service" => Some(Self::Service),
            "Ingress" => Some(Self::Ingress),
            _ => None,
        }
    }
}

/// The owner of one load balancer: cluster, kind, namespace/name and UID.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// Identifies the cluster, so two clusters sharing an account never touch
    /// each other's resources.
    pub cluster_id: String,
    /// Service or Ingress.
    pub kind: OwnerKind,
    /// Namespace of the owning object.
    pub namespace: String,
    /// Name of the owning object.
    pub name: String,
    /// UID of the owning object.
    pub uid: String,
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

impl Owner {
    /// `namespace/name` of the owner.
    pub fn object_key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The ownership tags every cloud resource of this owner carries in `class`.
    pub fn tags(&self, class: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_CLUSTER.to_string(), self.cluster_id.clone()),
            (TAG_CLASS.to_string(), class.to_string()),
            (TAG_OWNER_KIND.to_string(), self.kind.as_str().to_string()),
            (TAG_OWNER.to_string(), self.object_key()),
            (TAG_OWNER_UID.to_string(), self.uid.clone()),
        ])
    }

    /// Rebuild an owner from a resource's tags; `None` if any is missing.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        let (namespace, name) = tags.get(TAG_OWNER)?.split_once('/')?;
        Some(Self {
            cluster_id: tags.get(TAG_CLUSTER)?.clone(),
            kind: OwnerKind::parse(tags.get(TAG_OWNER_KIND)?)?,
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: tags.get(TAG_OWNER_UID)?.clone(),
        })
    }

    /// Whether `tags` prove the resource belongs to exactly this owner in `class`.
    pub fn owns(&self, class: &str, tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_CLASS).map(String::as_str) == Some(class)
            && Self::from_tags(tags).as_ref() == Some(self)
    }

    /// A provider-safe name for one resource of this owner in `class`.
    ///
    /// The result is lowercase `[a-z0-9-]`, starts with a letter, does not end
    /// with `-`, and is at most `max_len` characters (32 for AWS, 63 for GCE).
    /// Readable parts (namespace, name, role) are truncated first; a hash of
    /// the cluster id, class, UID and role keeps names unique however they are cut.
    pub fn resource_name(&self, class: &str, role: &str, max_len: usize) -> String {
        let hashed_role = format!("{class}\0{role}");
        resource_name(
            &self.cluster_id,
            &self.uid,
            &[&self.namespace, &self.name],
            role,
            &hashed_role,
            max_len,
        )
    }
}

/// Length of the hash suffix in [`Owner::resource_name`]. Base32 gives five
/// bits per character: 10 characters = 50 bits, ample against collisions.
const HASH_LEN: usize = 10;

/// Build a provider-safe name; see [`Owner::resource_name`].
pub fn resource_name(
    cluster_id: &str,
    uid: &str,
    readable: &[&str],
    role: &str,
    hashed_role: &str,
    max_len: usize,
) -> String {
    let mut hasher = Sha256::new();
    for part in [cluster_id, uid, hashed_role] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    for part in readable {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hash = base32::encode(base32::Alphabet::Rfc4648Lower { padding: false }, &digest);
    let hash = &hash[..HASH_LEN];

    // "g" + readable parts + role, each sanitised, then "-" + hash.
    let mut words: Vec<String> = vec!["g".to_string()];
    for part in readable.iter().chain(std::iter::once(&role)) {
        let clean = sanitize(part);
        if !clean.is_empty() {
            words.push(clean);
        }
    }
    let budget = max_len.saturating_sub(HASH_LEN + 1);
    let mut prefix = words.join("-");
    prefix.truncate(budget);
    let prefix = prefix.trim_end_matches('-');
    let mut name = format!("{prefix}-{hash}");
    name.truncate(max_len);
    name
}

fn sanitize(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    mapped
        .split('-')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(ns: &str, name: &str, uid: &str) -> Owner {
        Owner {
            cluster_id: "c1".into(),
            kind: OwnerKind::Service,
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    #[test]
    fn names_are_safe_and_bounded() {
        let long = "x".repeat(300);
        for (o, max) in [
            (owner("default", "service-test", "u1"), 32),
            (owner(&long, &long, "u1"), 32),
            (owner(&long, &long, "u1"), 63),
            (owner("NS_Upper", "a.b.c", "u1"), 63),
            (owner("-", "-", "u1"), 32),
        ] {
            let n = o.resource_name("c", "tg-80-tcp", max);
            assert!(n.len() <= max, "{n} longer than {max}");
            assert!(n.starts_with('g'), "{n}");
            assert!(!n.ends_with('-'), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
        }
    }

    #[test]
    fn names_differ_by_uid_role_and_full_name() {
        let long = "n".repeat(100);
        let a = owner("default", &format!("{long}a"), "u1").resource_name("c", "lb", 32);
        let b = owner("default", &format!("{long}b"), "u1").resource_name("c", "lb", 32);
        let c = owner("default", &format!("{long}a"), "u2").resource_name("c", "lb", 32);
        let d = owner("default", &format!("{long}a"), "u1").resource_name("c", "tg", 32);
        assert_eq!(
            4,
            [&a, &b, &c, &d]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
        let e = owner("default", &format!("{long}a"), "u1").resource_name("other", "lb", 32);
        assert_ne!(a, e, "classes must not share names during a migration");
        // Deterministic: the same owner and role give the same name.
        assert_eq!(
            a,
            owner("default", &format!("{long}a"), "u1").resource_name("c", "lb", 32)
        );
    }

    #[test]
    fn tags_round_trip_and_foreign_tags_are_not_owned() {
        let o = owner("default", "web", "u1");
        let tags = o.tags("aws-public");
        assert_eq!(Owner::from_tags(&tags), Some(o.clone()));
        assert!(o.owns("aws-public", &tags));
        assert!(!o.owns("aws-internal", &tags));
        let mut other = tags.clone();
        other.insert(TAG_OWNER_UID.into(), "u2".into());
        assert!(!o.owns("aws-public", &other));
        let mut missing = tags;
        missing.remove(TAG_CLUSTER);
        assert!(!o.owns("aws-public", &missing));
    }
}
