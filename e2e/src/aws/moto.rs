//! `moto_server` as a process, the AWS world a cluster runs in (a VPC,
//! subnets tagged with the load balancer roles and the cluster tag, EC2
//! instances in them), and reading back what moto holds with Gantry's tags.
//!
//! The harness talks to moto directly, never through the counting proxy, so
//! the proxy's counts are the controller's calls alone.

use std::{
    collections::BTreeMap,
    ffi::OsStr,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::Path,
    time::Duration,
};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::{
    config::Credentials,
    types::{Filter, ResourceType, Tag, TagSpecification},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::{HarnessError, Process, tools_dir};

/// Region of every class and client.
pub const REGION: &str = "us-east-1";

/// Key and secret the controller and harness sign with (moto accepts any).
pub const TEST_KEY: &str = "testing";

/// Tag Gantry puts on every resource, naming the cluster.
pub const TAG_CLUSTER: &str = "gantry.dev/cluster";

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct Moto {
    /// The process.
    pub process: Process,
    /// Its address.
    pub addr: SocketAddr,
}

impl Moto {
    /// Start moto on a free loopback port; its log goes to `dir`.
    pub fn start(dir: &Path) -> Result<Self, HarnessError> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let port_text = port.to_string();
        let (process, _) = Process::start(
            "moto_server",
            &tools_dir()?.join("moto_server"),
            &[
                OsStr::new("-H"),
                OsStr::new("127.0.0.1"),
                OsStr::new("-p"),
                OsStr::new(&port_text),
            ],
            dir.join("moto.log"),
            "Running on",
            Duration::from_secs(60),
        )?;
        Ok(Self {
            process,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        })
    }

    /// Its URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// One instance: zone and id (`i-...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Availability zone.
    pub zone: String,
    /// Instance id.
    pub id: String,
}

impl Instance {
    /// The `spec.providerID` of the Node running on it.
    pub fn provider_id(&self) -> String {
        format!("aws:///{}/{}", self.zone, self.id)
    }
}

/// The VPC, subnets and instances seeded into moto, and clients to read it.
#[derive(Debug)]
pub struct World {
    /// EC2, straight to moto.
    pub ec2: aws_sdk_ec2::Client,
    /// ELBv2, straight to moto.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// moto's URL.
    pub endpoint: String,
    /// The VPC.
    pub vpc: String,
    /// Subnets tagged for internet-facing balancers (one per zone).
    pub public_subnets: Vec<String>,
    /// Instances (one per Node the suites register), in the public subnets.
    pub instances: Vec<Instance>,
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn seed_err(what: &str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io(std::io::Error::other(format!("seeding moto: {what}: {e}")))
}

impl World {
    /// A VPC with one public subnet per zone in `zones` (tagged
    /// `kubernetes.io/role/elb` and with `cluster_id`'s cluster tag), an
    /// internal subnet, and `per_zone` instances in each public subnet.
    pub async fn seed(
        endpoint: &str,
        cluster_id: &str,
        zones: &[&str],
        per_zone: usize,
    ) -> Result<Self, HarnessError> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(TEST_KEY, TEST_KEY, None, None, "e2e"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .load()
            .await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .map_err(|e| seed_err("create VPC", e))?
            .vpc
            .and_then(|v| v.vpc_id)
            .ok_or_else(|| seed_err("create VPC", "no id"))?;
        let image = ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .map_err(|e| seed_err("describe images", e))?
            .images()
            .iter()
            .find_map(|i| i.image_id().map(str::to_string))
            .ok_or_else(|| seed_err("describe images", "moto ships none"))?;
        let cluster_key = format!("kubernetes.io/cluster/{cluster_id}");
        let mut world = Self {
            ec2,
            elb,
            endpoint: endpoint.to_string(),
            vpc,
            public_subnets: Vec::new(),
            instances: Vec::new(),
        };
        let mut subnets: Vec<(&str, &str)> = zones
            .iter()
            .map(|z| (*z, "kubernetes.io/role/elb"))
            .collect();
        subnets.push((zones[0], "kubernetes.io/role/internal-elb"));
        for (i, (zone, role)) in subnets.into_iter().enumerate() {
            let subnet = world
                .ec2
                .create_subnet()
                .vpc_id(&world.vpc)
                .availability_zone(zone)
                .cidr_block(format!("10.0.{}.0/24", i + 1))
                .send()
                .await
                .map_err(|e| seed_err("create subnet", e))?
                .subnet
                .and_then(|s| s.subnet_id)
                .ok_or_else(|| seed_err("create subnet", "no id"))?;
            world
                .ec2
                .create_tags()
                .resources(&subnet)
                .set_tags(Some(tags(&[(role, "1"), (&cluster_key, "owned")])))
                .send()
                .await
                .map_err(|e| seed_err("tag subnet", e))?;
            if role != "kubernetes.io/role/elb" {
                continue;
            }
            world.public_subnets.push(subnet.clone());
            let out = world
                .ec2
                .run_instances()
                .image_id(&image)
                .min_count(per_zone as i32)
                .max_count(per_zone as i32)
                .subnet_id(&subnet)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .set_tags(Some(tags(&[(&cluster_key, "owned")])))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| seed_err("run instances", e))?;
            for inst in out.instances() {
                world.instances.push(Instance {
                    zone: zone.to_string(),
                    id: inst.instance_id().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(world)
    }

    /// Tags of one ELBv2 resource.
    pub async fn tags_of(&self, arn: &str) -> BTreeMap<String, String> {
        let Ok(out) = self.elb.describe_tags().resource_arns(arn).send().await else {
            return BTreeMap::new();
        };
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

/// One call of ACM's JSON protocol straight to moto (the workspace has no
/// ACM client; moto routes by the credential scope and ignores signatures).
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
