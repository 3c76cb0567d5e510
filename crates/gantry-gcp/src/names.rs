//! Resource names: RFC 1035 (`[a-z]([-a-z0-9]*[a-z0-9])?`), at most 63
//! characters, deterministic (a controller that crashed after a create finds
//! the resource again) and unique by a hash of cluster, class, owner UID and
//! role, however the readable part is cut.

use gantry_model::Owner;

/// Longest name Compute Engine accepts.
pub const NAME_LEN: usize = 63;

/// Roles of the resources of one Service balancer (the role is part of the
/// name hash and of the ownership description).
pub mod role {
    /// The reserved regional address.
    pub const ADDRESS: &str = "addr";
    /// The regional backend service.
    pub const BACKEND_SERVICE: &str = "bs";
    /// The regional health check of the backend service.
    pub const HEALTH_CHECK: &str = "hc";
    /// The legacy HTTP health check of a target pool.
    pub const HTTP_HEALTH_CHECK: &str = "hhc";
    /// The target pool (legacy form).
    pub const TARGET_POOL: &str = "tp";
    /// The firewall rule opening the node ports.
    pub const FIREWALL: &str = "fw";

    /// The forwarding rule for one protocol (`tcp`, `udp`).
    pub fn forwarding_rule(protocol: &str) -> String {
        format!("fr-{}", protocol.to_ascii_lowercase())
    }

    /// The unmanaged instance group of one zone.
    pub fn instance_group(zone: &str) -> String {
        format!("ig-{zone}")
    }
}

/// The name of `owner`'s resource of `role` in `class`.
pub fn name(owner: &Owner, class: &str, role: &str) -> String {
    owner.resource_name(class, role, NAME_LEN)
}

/// Whether `name` is a valid Compute Engine resource name.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= NAME_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-')
}

#[cfg(test)]
mod tests {
    use gantry_model::OwnerKind;

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
    fn names_are_rfc1035_and_bounded() {
        let long = "Ab_c.".repeat(80);
        for o in [
            owner("default", "web", "u1"),
            owner(&long, &long, "u1"),
            owner("-", "-", "u1"),
        ] {
            for r in [
                role::ADDRESS.to_string(),
                role::forwarding_rule("TCP"),
                role::instance_group("us-central1-a"),
            ] {
                let n = name(&o, "gcp", &r);
                assert!(is_valid(&n), "{n}");
            }
        }
        assert!(!is_valid("1abc"));
        assert!(!is_valid("abc-"));
        assert!(!is_valid(&"a".repeat(64)));
    }

    #[test]
    fn names_differ_by_role_zone_and_class() {
        let o = owner("default", &"n".repeat(90), "u1");
        let a = name(&o, "gcp", &role::instance_group("us-central1-a"));
        let b = name(&o, "gcp", &role::instance_group("us-central1-b"));
        let c = name(&o, "gcp-internal", &role::instance_group("us-central1-a"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, name(&o, "gcp", &role::instance_group("us-central1-a")));
    }
}
