//! Reading back what moto holds, to check the provider's work.

use std::collections::{BTreeMap, BTreeSet};

use gantry_aws::AwsProvider;
use gantry_model::Owner;

use super::{CLASS, World};

/// Tags of one ELBv2 resource.
pub async fn tags_of(w: &World, arn: &str) -> BTreeMap<String, String> {
    let out = w
        .elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .expect("describe tags");
    out.tag_descriptions()
        .iter()
        .flat_map(|d| d.tags())
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// What moto holds for one balancer: listeners (port, protocol, target
/// group name) and, per target group, its targets (instance, port).
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    pub listeners: BTreeSet<(i32, String, String)>,
    pub targets: BTreeMap<String, BTreeSet<(String, i32)>>,
}

pub async fn shape(w: &World, owner: &Owner, lb_name: &str) -> Shape {
    let lbs = w
        .elb
        .describe_load_balancers()
        .names(lb_name)
        .send()
        .await
        .expect("balancer exists");
    let lb = &lbs.load_balancers()[0];
    let arn = lb.load_balancer_arn().expect("arn");
    assert!(owner.owns(CLASS, &tags_of(w, arn).await), "balancer tagged");
    assert_eq!(lb.r#type().map(|t| t.as_str()), Some("network"));
    // Target groups by the listeners' actions (moto does not track
    // attachments changed by ModifyListener).
    let listeners = w
        .elb
        .describe_listeners()
        .load_balancer_arn(arn)
        .send()
        .await
        .expect("listeners");
    let listeners: Vec<(i32, String, String)> = listeners
        .listeners()
        .iter()
        .map(|l| {
            (
                l.port().unwrap_or(0),
                l.protocol()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
                l.default_actions()[0]
                    .target_group_arn()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut targets = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (_, _, tg_arn) in &listeners {
        let tg = w
            .elb
            .describe_target_groups()
            .target_group_arns(tg_arn)
            .send()
            .await
            .expect("listener's target group exists");
        let tg = &tg.target_groups()[0];
        assert!(
            owner.owns(CLASS, &tags_of(w, tg_arn).await),
            "target group tagged"
        );
        let name = tg.target_group_name().expect("tg name").to_string();
        names.insert(tg_arn.clone(), name.clone());
        let health = w
            .elb
            .describe_target_health()
            .target_group_arn(tg_arn)
            .send()
            .await
            .expect("target health");
        targets.insert(
            name,
            health
                .target_health_descriptions()
                .iter()
                .filter_map(|d| d.target())
                .map(|t| {
                    (
                        t.id().unwrap_or_default().to_string(),
                        t.port().unwrap_or(0),
                    )
                })
                .collect(),
        );
    }
    // No other target group of ours survives a change.
    let tagged = tagged_leftovers(w, owner).await;
    assert_eq!(
        tagged.len(),
        targets.len() + 2,
        "balancer, its security group, and one target group per listener: {tagged:?}"
    );
    let listeners = listeners
        .into_iter()
        .map(|(port, proto, tg)| (port, proto, names[&tg].clone()))
        .collect();
    Shape { listeners, targets }
}

pub fn targets(w: &World, idx: &[usize], port: i32) -> BTreeSet<(String, i32)> {
    idx.iter()
        .map(|&i| (w.instances[i].1.clone(), port))
        .collect()
}

pub fn writes(p: &AwsProvider) -> u64 {
    p.calls().lock().writes()
}

/// Security groups in moto that carry `owner`'s tags: (id, inbound rules
/// as (protocol, port, cidr)).
pub async fn security_groups(
    w: &World,
    owner: &Owner,
) -> Vec<(String, BTreeSet<(String, i32, String)>)> {
    let out = w
        .ec2
        .describe_security_groups()
        .send()
        .await
        .expect("security groups");
    let mut found = Vec::new();
    for sg in out.security_groups() {
        let tags: BTreeMap<String, String> = sg
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        if !owner.owns(CLASS, &tags) {
            continue;
        }
        let mut rules = BTreeSet::new();
        for p in sg.ip_permissions() {
            let cidrs = p
                .ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip())
                .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()));
            for c in cidrs {
                rules.insert((
                    p.ip_protocol().unwrap_or_default().to_string(),
                    p.from_port().unwrap_or(-1),
                    c.to_string(),
                ));
            }
        }
        found.push((sg.group_id().unwrap_or_default().to_string(), rules));
    }
    found
}

/// Every ELBv2 resource and security group in moto that carries `owner`'s
/// tags.
pub async fn tagged_leftovers(w: &World, owner: &Owner) -> Vec<String> {
    let mut arns: Vec<String> = w
        .elb
        .describe_load_balancers()
        .send()
        .await
        .expect("lbs")
        .load_balancers()
        .iter()
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .collect();
    arns.extend(
        w.elb
            .describe_target_groups()
            .send()
            .await
            .expect("tgs")
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string)),
    );
    let mut left = Vec::new();
    for arn in arns {
        if owner.owns(CLASS, &tags_of(w, &arn).await) {
            left.push(arn);
        }
    }
    left.extend(
        security_groups(w, owner)
            .await
            .into_iter()
            .map(|(id, _)| id),
    );
    left
}
