//! The static catalogue: which regions and zones exist, and which
//! collections the emulator serves in which scope with which methods.

/// Regions and their zones, as a small but realistic subset of the real list.
pub const REGIONS: &[(&str, &[&str])] = &[
    (
        "us-central1",
        &[
            "us-central1-a",
            "us-central1-b",
            "us-central1-c",
            "us-central1-f",
        ],
    ),
    ("us-east1", &["us-east1-b", "us-east1-c", "us-east1-d"]),
    (
        "europe-west1",
        &["europe-west1-b", "europe-west1-c", "europe-west1-d"],
    ),
];

/// The region a zone belongs to, if the zone exists.
pub fn region_of_zone(zone: &str) -> Option<&'static str> {
    REGIONS
        .iter()
        .find(|(_, zones)| zones.contains(&zone))
        .map(|(region, _)| *region)
}

/// Whether a region exists.
pub fn region_exists(region: &str) -> bool {
    REGIONS.iter().any(|(r, _)| *r == region)
}

/// Where a collection lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// `projects/p/global/...`
    Global,
    /// `projects/p/regions/r/...`
    Region,
    /// `projects/p/zones/z/...`
    Zone,
}

/// What the emulator knows about one collection.
#[derive(Debug)]
pub struct Collection {
    /// Path segment, e.g. `forwardingRules`.
    pub name: &'static str,
    /// `kind` of one item, e.g. `compute#forwardingRule`.
    pub kind: &'static str,
    /// Type name in `resourceInUseByAnotherResource` messages, e.g. `forwarding_rule`.
    pub type_name: &'static str,
    /// Scopes it is served in.
    pub scopes: &'static [ScopeKind],
    /// Has an optimistic-locking `fingerprint`.
    pub fingerprint: bool,
    /// Has `labels` + `labelFingerprint` and `setLabels`.
    pub labels: bool,
    /// Has `PATCH`.
    pub patch: bool,
    /// Has `PUT` (update).
    pub update: bool,
}

use ScopeKind::{Global as G, Region as R, Zone as Z};

/// Every collection the emulator stores.
pub const COLLECTIONS: &[Collection] = &[
    Collection {
        name: "instances",
        kind: "compute#instance",
        type_name: "instance",
        scopes: &[Z],
        fingerprint: true,
        labels: true,
        patch: false,
        update: false,
    },
    Collection {
        name: "instanceGroups",
        kind: "compute#instanceGroup",
        type_name: "instance_group",
        scopes: &[Z],
        fingerprint: true,
        labels: false,
        patch: false,
        update: false,
    },
    Collection {
        name: "addresses",
        kind: "compute#address",
        type_name: "address",
        scopes: &[G, R],
        fingerprint: false,
        labels: true,
        patch: false,
        update: false,
    },
    Collection {
        name: "forwardingRules",
        kind: "compute#forwardingRule",
        type_name: "forwarding_rule",
        scopes: &[G, R],
        fingerprint: true,
        labels: true,
        patch: true,
        update: false,
    },
    Collection {
        name: "targetPools",
        kind: "compute#targetPool",
        type_name: "target_pool",
        scopes: &[R],
        fingerprint: false,
        labels: false,
        patch: false,
        update: false,
    },
    Collection {
        name: "backendServices",
        kind: "compute#backendService",
        type_name: "backend_service",
        scopes: &[G, R],
        fingerprint: true,
        labels: false,
        patch: true,
        update: true,
    },
    Collection {
        name: "healthChecks",
        kind: "compute#healthCheck",
        type_name: "health_check",
        scopes: &[G, R],
        fingerprint: false,
        labels: false,
        patch: true,
        update: true,
    },
    Collection {
        name: "httpHealthChecks",
        kind: "compute#httpHealthCheck",
        type_name: "http_health_check",
        scopes: &[G],
        fingerprint: false,
        labels: false,
        patch: true,
        update: true,
    },
    Collection {
        name: "firewalls",
        kind: "compute#firewall",
        type_name: "firewall",
        scopes: &[G],
        fingerprint: false,
        labels: false,
        patch: true,
        update: true,
    },
    Collection {
        name: "urlMaps",
        kind: "compute#urlMap",
        type_name: "url_map",
        scopes: &[G, R],
        fingerprint: true,
        labels: false,
        patch: true,
        update: true,
    },
    Collection {
        name: "targetHttpProxies",
        kind: "compute#targetHttpProxy",
        type_name: "target_http_proxy",
        scopes: &[G, R],
        fingerprint: true,
        labels: false,
        patch: true,
        update: false,
    },
    Collection {
        name: "targetHttpsProxies",
        kind: "compute#targetHttpsProxy",
        type_name: "target_https_proxy",
        scopes: &[G, R],
        fingerprint: true,
        labels: false,
        patch: true,
        update: false,
    },
    Collection {
        name: "sslCertificates",
        kind: "compute#sslCertificate",
        type_name: "ssl_certificate",
        scopes: &[G, R],
        fingerprint: false,
        labels: false,
        patch: false,
        update: false,
    },
];

/// Looks a collection up by its path segment.
pub fn collection(name: &str) -> Option<&'static Collection> {
    COLLECTIONS.iter().find(|c| c.name == name)
}
