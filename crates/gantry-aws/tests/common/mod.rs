//! Test harness: a moto server on a free loopback port, a VPC with tagged
//! subnets and EC2 instances in it, and providers pointed at it.

#![allow(dead_code, missing_docs)]

pub mod inspect;

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::{
    config::Credentials,
    types::{Tag, TagSpecification},
};
use gantry_aws::{AwsProvider, ROLE_ELB, ROLE_INTERNAL_ELB, cluster_tag};
use gantry_model::{
    DesiredLoadBalancer, Owner, OwnerKind, ProviderKind,
    class::AwsSettings,
    desired::{
        BackendNode, HealthCheck, L4Listener, L7Backend, L7Options, L7Spec, LoadBalancerSpec,
        Protocol, TlsCertificate,
    },
    fixtures::l4_spec,
};

pub const CLUSTER: &str = "test-cluster";
pub const CLASS: &str = "aws-public";
pub const REGION: &str = "us-east-1";

/// A running `moto_server`, stopped on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/moto_server")
}

impl Moto {
    /// Start moto on a free loopback port and wait until it accepts connections.
    pub fn start() -> Self {
        let bin = moto_binary();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run `scripts/install-tools.sh moto` (or set MOTO_SERVER)",
            bin.display()
        );
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start within 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        loader(&self.endpoint)
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .load()
            .await
    }
}

fn loader(endpoint: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
}

/// A VPC with two subnets tagged for internet-facing balancers of
/// [`CLUSTER`], one internal subnet, one untagged subnet, and instances.
pub struct World {
    pub moto: Moto,
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub vpc: String,
    pub public_subnets: Vec<String>,
    /// (zone, instance id)
    pub instances: Vec<(String, String)>,
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

impl World {
    pub async fn new(instances_per_zone: usize) -> Self {
        let moto = Moto::start();
        let config = moto.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("create vpc")
            .vpc
            .and_then(|v| v.vpc_id)
            .expect("vpc id");
        let cluster_key = cluster_tag(CLUSTER);
        let mut public_subnets = Vec::new();
        let mut instances = Vec::new();
        let image = ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .expect("describe images")
            .images()
            .iter()
            .find_map(|i| i.image_id().map(str::to_string))
            .expect("moto ships images");
        for (i, (zone, role)) in [
            ("us-east-1a", Some(ROLE_ELB)),
            ("us-east-1b", Some(ROLE_ELB)),
            ("us-east-1a", Some(ROLE_INTERNAL_ELB)),
            ("us-east-1c", None),
        ]
        .into_iter()
        .enumerate()
        {
            let subnet = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .availability_zone(zone)
                .cidr_block(format!("10.0.{}.0/24", i + 1))
                .send()
                .await
                .expect("create subnet")
                .subnet
                .and_then(|s| s.subnet_id)
                .expect("subnet id");
            if let Some(role) = role {
                ec2.create_tags()
                    .resources(&subnet)
                    .set_tags(Some(tags(&[(role, "1"), (&cluster_key, "owned")])))
                    .send()
                    .await
                    .expect("tag subnet");
            }
            if role == Some(ROLE_ELB) {
                public_subnets.push(subnet.clone());
                let out = ec2
                    .run_instances()
                    .image_id(&image)
                    .min_count(instances_per_zone as i32)
                    .max_count(instances_per_zone as i32)
                    .subnet_id(&subnet)
                    .tag_specifications(
                        TagSpecification::builder()
                            .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
                            .set_tags(Some(tags(&[(&cluster_key, "owned")])))
                            .build(),
                    )
                    .send()
                    .await
                    .expect("run instances");
                for inst in out.instances() {
                    instances.push((
                        zone.to_string(),
                        inst.instance_id().expect("instance id").to_string(),
                    ));
                }
            }
        }
        Self {
            moto,
            ec2,
            elb,
            vpc,
            public_subnets,
            instances,
        }
    }

    pub async fn provider(&self) -> AwsProvider {
        self.provider_with(AwsSettings {
            region: Some(REGION.into()),
            endpoint: Some(self.moto.endpoint.clone()),
            ..AwsSettings::default()
        })
        .await
    }

    pub async fn provider_with(&self, settings: AwsSettings) -> AwsProvider {
        AwsProvider::with_loader(
            CLASS,
            CLUSTER,
            settings,
            loader(&self.moto.endpoint),
            Duration::from_secs(20),
        )
        .await
        .expect("provider")
    }

    /// Backend nodes for the instances at `indexes`.
    pub fn nodes(&self, indexes: &[usize]) -> Vec<BackendNode> {
        let mut nodes: Vec<BackendNode> = indexes
            .iter()
            .map(|&i| {
                let (zone, id) = &self.instances[i];
                BackendNode {
                    name: format!("node-{i}"),
                    address: std::net::IpAddr::from([10, 0, 1, 10 + i as u8]),
                    provider_id: Some(format!("aws:///{zone}/{id}")),
                    zone: Some(zone.clone()),
                }
            })
            .collect();
        nodes.sort();
        nodes
    }
}

pub fn owner(name: &str, uid: &str) -> Owner {
    Owner {
        cluster_id: CLUSTER.into(),
        kind: OwnerKind::Service,
        namespace: "default".into(),
        name: name.into(),
        uid: uid.into(),
    }
}

/// A Service's desired NLB: `ports` are (port, protocol, node port).
pub fn service(
    owner: &Owner,
    ports: &[(u16, Protocol, u16)],
    backends: Vec<BackendNode>,
) -> DesiredLoadBalancer {
    let mut listeners: Vec<L4Listener> = ports
        .iter()
        .map(|&(port, protocol, node_port)| L4Listener {
            name: format!("p{port}"),
            protocol,
            port,
            node_port,
        })
        .collect();
    listeners.sort_by_key(|l| (l.port, l.protocol));
    DesiredLoadBalancer {
        owner: owner.clone(),
        class: CLASS.into(),
        provider: ProviderKind::Aws,
        spec: LoadBalancerSpec::L4(l4_spec(listeners, backends)),
    }
}

/// An Ingress owner.
pub fn ingress_owner(name: &str, uid: &str) -> Owner {
    Owner {
        kind: OwnerKind::Ingress,
        ..owner(name, uid)
    }
}

/// An Ingress's desired ALB: everything to one backend (node port 30100)
/// on `nodes`, with `tls` as its TLS section.
pub fn simple_ingress(
    owner: &Owner,
    nodes: Vec<BackendNode>,
    tls: Vec<TlsCertificate>,
) -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: owner.clone(),
        class: CLASS.into(),
        provider: ProviderKind::Aws,
        spec: LoadBalancerSpec::L7(L7Spec {
            rules: vec![],
            default_backend: Some(0),
            backends: vec![L7Backend {
                namespace: "default".into(),
                service: "web".into(),
                port: 80,
                node_port: 30100,
            }],
            health_checks: vec![HealthCheck::NodePortTcp],
            nodes,
            tls,
            options: L7Options::default(),
        }),
    }
}
