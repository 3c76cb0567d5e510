//! Zones and regions: the static, read-only `compute#zone` and
//! `compute#region` resources.

use serde_json::{Value, json};

use crate::{catalog::REGIONS, links};

/// A stable numeric id derived from a name (zones and regions never change).
fn stable_id(name: &str) -> String {
    let hash = name.bytes().fold(1_469_598_103_934_665_603_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211)
    });
    (hash % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000).to_string()
}

/// All zones of a project, name-sorted, links under `base`.
pub fn zones(project: &str, base: &str) -> Vec<Value> {
    let mut out: Vec<Value> = REGIONS
        .iter()
        .flat_map(|(region, zones)| zones.iter().map(move |z| (*region, *z)))
        .map(|(region, zone)| {
            let mut v = json!({
                "kind": "compute#zone",
                "id": stable_id(zone),
                "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
                "name": zone,
                "description": zone,
                "status": "UP",
                "region": links::stored(&format!("projects/{project}/regions/{region}")),
                "selfLink": links::stored(&format!("projects/{project}/zones/{zone}")),
                "availableCpuPlatforms": ["Intel Cascade Lake", "AMD Milan"],
                "supportsPzs": false,
            });
            links::render(&mut v, base);
            v
        })
        .collect();
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// All regions of a project, name-sorted, links under `base`.
pub fn regions(project: &str, base: &str) -> Vec<Value> {
    let mut out: Vec<Value> = REGIONS
        .iter()
        .map(|(region, zones)| {
            let zone_links: Vec<Value> = zones
                .iter()
                .map(|z| links::stored(&format!("projects/{project}/zones/{z}")))
                .collect();
            let mut v = json!({
                "kind": "compute#region",
                "id": stable_id(region),
                "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
                "name": region,
                "description": region,
                "status": "UP",
                "zones": zone_links,
                "quotas": [],
                "selfLink": links::stored(&format!("projects/{project}/regions/{region}")),
                "supportsPzs": false,
            });
            links::render(&mut v, base);
            v
        })
        .collect();
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}
