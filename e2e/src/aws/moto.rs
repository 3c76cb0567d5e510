//! `moto_server` as a process, the AWS world a cluster runs in (a VPC,
//! subnets tagged with the load balancer roles and the cluster tag, EC2
//! instances in them), and clients to read it back (see `inventory`).
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
    types::{ResourceType, Tag, TagSpecification},
};

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
}
