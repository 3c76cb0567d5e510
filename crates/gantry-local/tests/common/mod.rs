//! Shared fixtures: an emulated API server with the `LocalLoadBalancer`
//! CRD installed, providers for it, and desired states built fluently.

#![allow(dead_code, missing_docs)]

use std::{net::IpAddr, time::Duration};

use gantry_local::LocalProvider;
use gantry_model::{
    DesiredLoadBalancer, Owner, OwnerKind,
    class::{LocalMode, LocalSettings, ProviderKind},
    desired::{
        BackendNode, HealthCheck, L4Listener, L4Spec, L7Backend, L7Options, L7Path, L7Rule, L7Spec,
        LoadBalancerSpec, PathMatch, Protocol, TlsCertificate,
    },
    fixtures::l4_spec,
    local::{LocalLoadBalancer, LocalLoadBalancerStatus, LocalNodeStatus},
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, CustomResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};

pub const CLUSTER: &str = "test-cluster";
pub const CLASS: &str = "metal";

/// A running emulator with the CRD installed.
pub struct Env {
    pub sim: kube_sim::KubeSim,
    pub client: Client,
}

impl Env {
    pub async fn start() -> Self {
        let sim = kube_sim::KubeSim::start(kube_sim::SimOptions::default())
            .await
            .expect("start kube-sim");
        let client = sim.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &LocalLoadBalancer::crd())
            .await
            .expect("install CRD");
        // The API server serves a new CRD once it is established; wait for
        // that rather than assume it is immediate.
        let llbs: Api<LocalLoadBalancer> = Api::all(client.clone());
        tokio::time::timeout(Duration::from_secs(10), async {
            while llbs.list(&ListParams::default()).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("CRD established");
        Self { sim, client }
    }

    pub fn llbs(&self) -> Api<LocalLoadBalancer> {
        Api::all(self.client.clone())
    }

    /// A provider for `class` with `mode` and `pools`; a new one models a restart.
    pub fn provider_for(&self, class: &str, mode: LocalMode, pools: &[&str]) -> LocalProvider {
        LocalProvider::new(
            self.client.clone(),
            CLUSTER,
            class,
            LocalSettings {
                pools: pools.iter().map(|s| s.to_string()).collect(),
                mode,
                interface: None,
            },
        )
        .expect("provider")
    }

    pub fn provider(&self, pools: &[&str]) -> LocalProvider {
        self.provider_for(CLASS, LocalMode::L2, pools)
    }

    pub async fn objects(&self) -> Vec<LocalLoadBalancer> {
        self.llbs()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
    }

    /// Fail every write to `LocalLoadBalancer` objects until `allow_writes`:
    /// a call that succeeds meanwhile provably wrote nothing.
    pub fn forbid_writes(&self) {
        for verb in ["create", "update", "patch", "delete"] {
            self.sim.faults().fail_next(
                usize::MAX,
                500,
                kube_sim::FaultMatcher {
                    verb: Some(verb),
                    resource: Some("localloadbalancers"),
                },
            );
        }
    }

    /// Undo [`Env::forbid_writes`] and any other injected fault.
    pub fn allow_writes(&self) {
        self.sim.faults().clear();
    }

    /// Fail the next `n` requests of `verb` on `LocalLoadBalancer` objects with `status`.
    pub fn fail_next(&self, n: usize, verb: &str, status: u16) {
        self.sim.faults().fail_next(
            n,
            status,
            kube_sim::FaultMatcher {
                verb: Some(verb),
                resource: Some("localloadbalancers"),
            },
        );
    }

    /// Every address in every object, with duplicates kept.
    pub async fn all_addresses(&self) -> Vec<IpAddr> {
        let mut all: Vec<IpAddr> = self
            .objects()
            .await
            .into_iter()
            .flat_map(|o| o.spec.addresses)
            .collect();
        all.sort();
        all
    }

    /// What a datapath on `node` does once it serves `generation`.
    pub async fn report(&self, name: &str, node: &str, generation: i64, ready: bool) {
        let status = LocalLoadBalancerStatus {
            nodes: [(
                node.to_string(),
                LocalNodeStatus {
                    observed_generation: generation,
                    ready,
                    message: None,
                    addresses: Vec::new(),
                },
            )]
            .into(),
        };
        self.llbs()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": status })),
            )
            .await
            .expect("patch status");
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

pub fn owner(name: &str, kind: OwnerKind) -> Owner {
    Owner {
        cluster_id: CLUSTER.into(),
        kind,
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
    }
}

pub fn node(name: &str, address: &str) -> BackendNode {
    BackendNode {
        name: name.into(),
        address: ip(address),
        provider_id: None,
        zone: None,
    }
}

/// A Service-shaped desired state.
#[derive(Clone, Debug)]
pub struct Svc(pub DesiredLoadBalancer);

pub fn svc(name: &str) -> Svc {
    Svc(DesiredLoadBalancer {
        owner: owner(name, OwnerKind::Service),
        class: CLASS.into(),
        provider: ProviderKind::Local,
        spec: LoadBalancerSpec::L4(l4_spec([], [node("node-a", "10.0.0.1")])),
    })
    .tcp(&[80])
}

impl Svc {
    fn l4(&mut self) -> &mut L4Spec {
        match &mut self.0.spec {
            LoadBalancerSpec::L4(l4) => l4,
            LoadBalancerSpec::L7(_) => unreachable!("svc builds L4 states"),
        }
    }

    pub fn tcp(mut self, ports: &[u16]) -> Self {
        self.l4().listeners = ports
            .iter()
            .map(|p| L4Listener {
                name: format!("p{p}"),
                protocol: Protocol::Tcp,
                port: *p,
                node_port: 30000 + p,
            })
            .collect();
        self
    }

    pub fn requested(mut self, address: &str) -> Self {
        self.l4().requested_ip = Some(ip(address));
        self
    }

    pub fn shared(mut self, key: &str) -> Self {
        self.l4().options.shared_ip_key = Some(key.into());
        self
    }

    pub fn nodes(mut self, nodes: &[(&str, &str)]) -> Self {
        self.l4().backends = nodes.iter().map(|(n, a)| node(n, a)).collect();
        self
    }

    pub fn class(mut self, class: &str) -> Self {
        self.0.class = class.into();
        self
    }

    pub fn owner(&self) -> &Owner {
        &self.0.owner
    }

    /// The object name the provider uses for this owner in `CLASS`.
    pub fn object_name(&self) -> String {
        self.0.owner.resource_name(&self.0.class, "llb", 63)
    }
}

/// An Ingress-shaped desired state with TLS, modelled on the
/// `testhost.com` example: one host, `/` to `service-test:80`.
pub fn ingress(name: &str, key_pem: &str) -> DesiredLoadBalancer {
    DesiredLoadBalancer {
        owner: owner(name, OwnerKind::Ingress),
        class: CLASS.into(),
        provider: ProviderKind::Local,
        spec: LoadBalancerSpec::L7(L7Spec {
            rules: vec![L7Rule {
                host: Some("testhost.com".into()),
                paths: vec![L7Path {
                    path: "/".into(),
                    path_match: PathMatch::Prefix,
                    backend: 0,
                }],
            }],
            default_backend: None,
            backends: vec![L7Backend {
                namespace: "default".into(),
                service: "service-test".into(),
                port: 80,
                node_port: 32213,
            }],
            health_checks: vec![HealthCheck::Http {
                port: 32213,
                path: "/".into(),
            }],
            nodes: vec![node("node-a", "10.0.0.1")],
            tls: vec![TlsCertificate {
                secret_name: "my-ssl-secret".into(),
                hosts: vec!["testhost.com".into()],
                cert_pem: "-----BEGIN CERTIFICATE-----\nMIIBcertbody\n-----END CERTIFICATE-----\n"
                    .into(),
                key_pem: key_pem.into(),
            }],
            options: L7Options::default(),
        }),
    }
}
