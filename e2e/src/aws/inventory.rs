//! Reading back what moto holds with Gantry's cluster tag: load balancers,
//! listeners and rules, target groups and their targets, security groups
//! and ACM certificates.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::moto::{REGION, TAG_CLUSTER, TEST_KEY, World};

impl World {
    /// Everything in moto tagged with `cluster_id` by Gantry.
    pub async fn inventory(&self, cluster_id: &str) -> Inventory {
        let mut inv = Inventory::default();
        let lbs = self
            .elb
            .describe_load_balancers()
            .send()
            .await
            .expect("describe load balancers");
        for lb in lbs.load_balancers() {
            let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
            let tags = self.tags_of(&arn).await;
            if tags.get(TAG_CLUSTER).map(String::as_str) != Some(cluster_id) {
                continue;
            }
            // Resources may go while they are listed (the controller is
            // running): what is gone is simply not in the inventory.
            let Ok(listeners) = self
                .elb
                .describe_listeners()
                .load_balancer_arn(&arn)
                .send()
                .await
            else {
                continue;
            };
            for l in listeners.listeners() {
                let l_arn = l.listener_arn().unwrap_or_default().to_string();
                inv.listeners.push(Listener {
                    balancer: lb.load_balancer_name().unwrap_or_default().to_string(),
                    port: l.port().unwrap_or_default(),
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default(),
                    arn: l_arn.clone(),
                });
                if lb.r#type().map(|t| t.as_str()) == Some("application") {
                    let Ok(rules) = self.elb.describe_rules().listener_arn(&l_arn).send().await
                    else {
                        continue;
                    };
                    for r in rules.rules() {
                        inv.rules.push(Rule {
                            listener_port: l.port().unwrap_or_default(),
                            priority: r.priority().unwrap_or_default().to_string(),
                            conditions: r
                                .conditions()
                                .iter()
                                .map(|c| {
                                    let values = c
                                        .host_header_config()
                                        .map(|h| h.values().to_vec())
                                        .or_else(|| {
                                            c.path_pattern_config().map(|p| p.values().to_vec())
                                        })
                                        .unwrap_or_else(|| c.values().to_vec());
                                    format!(
                                        "{}={}",
                                        c.field().unwrap_or_default(),
                                        values.join("|")
                                    )
                                })
                                .collect(),
                            target_group: r
                                .actions()
                                .iter()
                                .find_map(|a| a.target_group_arn().map(str::to_string))
                                .unwrap_or_default(),
                        });
                    }
                }
            }
            inv.balancers.push(Balancer {
                name: lb.load_balancer_name().unwrap_or_default().to_string(),
                arn,
                dns: lb.dns_name().unwrap_or_default().to_string(),
                kind: lb
                    .r#type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                scheme: lb
                    .scheme()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                tags,
            });
        }
        let tgs = self
            .elb
            .describe_target_groups()
            .send()
            .await
            .expect("describe target groups");
        for tg in tgs.target_groups() {
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            let tags = self.tags_of(&arn).await;
            if tags.get(TAG_CLUSTER).map(String::as_str) != Some(cluster_id) {
                continue;
            }
            let Ok(health) = self
                .elb
                .describe_target_health()
                .target_group_arn(&arn)
                .send()
                .await
            else {
                continue;
            };
            inv.target_groups.push(TargetGroup {
                name: tg.target_group_name().unwrap_or_default().to_string(),
                arn,
                port: tg.port().unwrap_or_default(),
                targets: health
                    .target_health_descriptions()
                    .iter()
                    .map(|d| {
                        let t = d.target();
                        (
                            t.and_then(|t| t.id()).unwrap_or_default().to_string(),
                            t.and_then(|t| t.port()).unwrap_or_default(),
                            d.target_health()
                                .and_then(|h| h.state())
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect(),
            });
        }
        let sgs = self
            .ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name(format!("tag:{TAG_CLUSTER}"))
                    .values(cluster_id)
                    .build(),
            )
            .send()
            .await
            .expect("describe security groups");
        inv.security_groups = sgs
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect();
        inv.certificates = acm_tagged(&self.endpoint, cluster_id).await;
        inv
    }
}

/// Gantry's resources in moto for one cluster.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Load balancers.
    pub balancers: Vec<Balancer>,
    /// Target groups.
    pub target_groups: Vec<TargetGroup>,
    /// Listeners of those balancers.
    pub listeners: Vec<Listener>,
    /// Rules of the application balancers' listeners (default rules too).
    pub rules: Vec<Rule>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// ACM certificate ARNs.
    pub certificates: Vec<String>,
}

impl Inventory {
    /// Whether nothing of Gantry's is left.
    pub fn is_empty(&self) -> bool {
        self.balancers.is_empty()
            && self.target_groups.is_empty()
            && self.listeners.is_empty()
            && self.rules.is_empty()
            && self.security_groups.is_empty()
            && self.certificates.is_empty()
    }
}

/// A load balancer.
#[derive(Debug, Clone)]
pub struct Balancer {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// DNS name.
    pub dns: String,
    /// `network` or `application`.
    pub kind: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A target group and its targets (instance, port, health state).
#[derive(Debug, Clone)]
pub struct TargetGroup {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Port.
    pub port: i32,
    /// Registered targets.
    pub targets: Vec<(String, i32, String)>,
}

/// A listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Name of its balancer.
    pub balancer: String,
    /// Port.
    pub port: i32,
    /// Protocol.
    pub protocol: String,
    /// ARN.
    pub arn: String,
}

/// A listener rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Port of its listener.
    pub listener_port: i32,
    /// Priority (`default` for the default rule).
    pub priority: String,
    /// Conditions as `field=value|value`.
    pub conditions: Vec<String>,
    /// ARN of the target group it forwards to (empty for fixed responses).
    pub target_group: String,
}

/// One call of ACM's JSON protocol straight to moto, unsigned (moto routes
/// by the credential scope and ignores signatures): enough to list and read
/// certificates without one more SDK client in the harness.
pub async fn acm(endpoint: &str, operation: &str, body: Value) -> Result<Value, String> {
    let addr = endpoint.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::post("/")
        .header(hyper::header::HOST, addr)
        .header("x-amz-target", format!("CertificateManager.{operation}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            hyper::header::AUTHORIZATION,
            format!(
                "AWS4-HMAC-SHA256 Credential={TEST_KEY}/20260101/{REGION}/acm/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "ACM {operation}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("ACM {operation}: {e}"))
}

/// ARNs of the ACM certificates tagged with `cluster_id` by Gantry.
async fn acm_tagged(endpoint: &str, cluster_id: &str) -> Vec<String> {
    let list = acm(endpoint, "ListCertificates", serde_json::json!({}))
        .await
        .expect("list certificates");
    let mut out = Vec::new();
    for c in list["CertificateSummaryList"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(arn) = c["CertificateArn"].as_str() else {
            continue;
        };
        let tags = acm(
            endpoint,
            "ListTagsForCertificate",
            serde_json::json!({ "CertificateArn": arn }),
        )
        .await
        .expect("list certificate tags");
        let ours = tags["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["Key"] == TAG_CLUSTER && t["Value"] == cluster_id);
        if ours {
            out.push(arn.to_string());
        }
    }
    out
}
