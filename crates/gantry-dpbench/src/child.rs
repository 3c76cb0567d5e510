//! `gantry-dpbench datapath`: Gantry's datapath [`Engine`] in a process of
//! its own (pinned by the driver like the other proxies), configured for
//! the benchmark's job: HTTP on port 80 and HTTPS on 443 of one address, TCP
//! bulk and TCP greet listeners on another, every one forwarding to the
//! backend on loopback.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use gantry_datapath::{DatapathOptions, Engine, ObjectConfig, TlsMaterial};
use gantry_model::{
    class::LocalMode,
    desired::Protocol,
    local::{
        LocalHealthCheck, LocalL4Listener, LocalL7, LocalL7Backend, LocalLoadBalancerSpec,
        LocalNode, LocalOwner, LocalTls,
    },
};

use crate::{error::BenchError, peers::ports};

/// Arguments of the datapath child.
#[derive(Debug, clap::Args)]
pub struct ChildArgs {
    /// Address of the HTTP (80) and HTTPS (443) listeners.
    #[arg(long)]
    pub l7_addr: IpAddr,
    /// Address of the TCP listeners.
    #[arg(long)]
    pub l4_addr: IpAddr,
    /// Backend ports start here: HTTP, sink, greet.
    #[arg(long)]
    pub backend_base: u16,
    /// PEM certificate for HTTPS.
    #[arg(long)]
    pub cert: PathBuf,
    /// PEM private key for HTTPS.
    #[arg(long)]
    pub key: PathBuf,
}

fn spec(addr: IpAddr) -> LocalLoadBalancerSpec {
    LocalLoadBalancerSpec {
        class: "local".into(),
        owner: LocalOwner {
            kind: "Service".into(),
            namespace: "bench".into(),
            name: "bench".into(),
            uid: "bench".into(),
        },
        mode: LocalMode::L2,
        addresses: vec![addr],
        nodes: vec![LocalNode {
            name: "backend".into(),
            address: IpAddr::from([127, 0, 0, 1]),
        }],
        l4: Vec::new(),
        l7: None,
        source_ranges: Vec::new(),
    }
}

fn tcp(port: u16, node_port: u16) -> LocalL4Listener {
    LocalL4Listener {
        protocol: Protocol::Tcp,
        port,
        node_port,
        health_check: LocalHealthCheck::Tcp,
        proxy_protocol: false,
    }
}

/// The two objects of the job.
fn objects(args: &ChildArgs, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Vec<ObjectConfig> {
    let mut l4 = spec(args.l4_addr);
    l4.l4 = vec![
        tcp(ports::SINK, args.backend_base + 1),
        tcp(ports::GREET, args.backend_base + 2),
    ];
    let mut l7 = spec(args.l7_addr);
    l7.owner.kind = "Ingress".into();
    l7.l7 = Some(LocalL7 {
        rules: Vec::new(),
        default_backend: Some("web".into()),
        backends: [(
            "web".to_owned(),
            LocalL7Backend {
                node_port: args.backend_base,
                health_check: LocalHealthCheck::Tcp,
            },
        )]
        .into(),
        tls: vec![LocalTls {
            secret_name: "bench-tls".into(),
            hosts: Vec::new(),
        }],
        ssl_redirect: false,
        allow_http: true,
    });
    let mut web = ObjectConfig::new("web", 1, l7);
    web.tls = vec![TlsMaterial {
        secret_name: "bench-tls".into(),
        hosts: Vec::new(),
        cert_pem,
        key_pem,
    }];
    vec![ObjectConfig::new("tcp", 1, l4), web]
}

/// Runs the datapath until the driver (the parent process) goes away.
pub async fn run(args: ChildArgs) -> Result<(), BenchError> {
    let cert = std::fs::read(&args.cert).map_err(BenchError::io("read the certificate"))?;
    let key = std::fs::read(&args.key).map_err(BenchError::io("read the key"))?;
    // Production-like settings; idle connections of the memory case must
    // outlive the measurement.
    let engine = Engine::new(&DatapathOptions::new("bench"));
    let ready = engine.apply(objects(&args, cert, key)).await;
    for (name, r) in &ready {
        if !r.ready {
            return Err(BenchError::Datapath(format!(
                "{name}: {}",
                r.message.clone().unwrap_or_default()
            )));
        }
    }
    println!("ready");
    let parent = std::os::unix::process::parent_id();
    // A benchmark interrupted hard must not leave a proxy behind.
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    engine.shutdown().await;
    Ok(())
}
