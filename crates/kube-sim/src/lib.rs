//! `kube-sim`: an emulator of the Kubernetes API server that kube-rs,
//! `kubectl` and `helm` talk to unchanged. It runs in-process for tests
//! ([`KubeSim::start`]) or as the `kube-sim` binary for end-to-end runs.
//!
//! It serves discovery, CRUD, list/watch with resourceVersion semantics
//! (410 Gone, bookmarks, watch-list), label and field selectors, the four
//! patch kinds including server-side apply, status subresources, finalizers,
//! namespace termination, owner-reference garbage collection,
//! CustomResourceDefinitions, the Service ClusterIP/NodePort allocators and
//! fault injection. Objects are stored as JSON, so any kind is handled
//! uniformly; typed logic exists only where the real server has it.

pub mod api;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod events;
pub mod faults;
pub mod kubeconfig;
pub mod object;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod router;
pub mod scale;
pub mod seed;
pub mod selectors;
pub mod server;
pub mod services;
pub mod store;
pub mod table;
pub mod tls;
pub mod watch;

use std::{net::SocketAddr, ops::RangeInclusive, sync::Arc, time::Duration};

pub use error::SimError;
pub use faults::{FaultMatcher, Faults};
use tokio::{net::TcpListener, task::JoinHandle};

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Serve HTTPS with a self-signed CA (embedded in the client configs).
    pub tls: bool,
    /// Range ClusterIPs are allocated from.
    pub service_cidr: ipnet::IpNet,
    /// Range node ports are allocated from.
    pub node_port_range: RangeInclusive<u16>,
    /// Events kept for watch resumption; older resourceVersions get 410.
    pub watch_history: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            tls: false,
            service_cidr: ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 96, 0, 0), 16).unwrap_or_default(),
            ),
            node_port_range: 30000..=32767,
            watch_history: 10_000,
        }
    }
}

/// A running emulator on `127.0.0.1:<ephemeral>`.
pub struct KubeSim {
    url: String,
    ca_der: Option<Vec<u8>>,
    ca_pem: Option<String>,
    shared: Arc<server::Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for KubeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSim")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl KubeSim {
    /// Starts an emulator on an ephemeral loopback port.
    pub async fn start(opts: SimOptions) -> Result<KubeSim, SimError> {
        Self::start_on(opts, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts an emulator on a given address.
    pub async fn start_on(opts: SimOptions, addr: SocketAddr) -> Result<KubeSim, SimError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(SimError::LocalAddr)?;
        let tls = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{local}");
        let mut state = store::State::new(
            services::Allocators::new(opts.service_cidr, opts.node_port_range.clone()),
            opts.watch_history,
        );
        seed::seed(&mut state, local.port());
        let shared = server::shared(state, local.to_string());
        let task = tokio::spawn(server::serve(
            listener,
            shared.clone(),
            tls.as_ref().map(|t| t.config.clone()),
        ));
        Ok(KubeSim {
            url,
            ca_der: tls.as_ref().map(|t| t.ca_der.clone()),
            ca_pem: tls.map(|t| t.ca_pem),
            shared,
            task,
        })
    }

    /// `http(s)://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A client configuration trusting the emulator's CA.
    pub fn kube_config(&self) -> kube::Config {
        kubeconfig::config(&self.url, self.ca_der.as_deref())
    }

    /// A ready client.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config())
            .expect("a client from the emulator's own configuration always builds")
    }

    /// kubeconfig text for kubectl and helm.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig::yaml(&self.url, self.ca_pem.as_deref())
    }

    /// The CA certificate (PEM) when TLS is on.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// A handle for fault injection.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::downgrade(&self.shared),
            state: self.shared.faults.clone(),
        }
    }

    /// Sets the interval of periodic watch BOOKMARK events (default 1s) for watches started afterwards.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *self.shared.bookmark_interval.lock() = interval;
    }

    /// Sets how many events a watcher may fall behind before it is closed (default 8192).
    pub fn set_watch_queue(&self, capacity: usize) {
        self.shared.state.lock().watch_queue = capacity;
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().rv
    }

    /// Number of open watches.
    pub fn watcher_count(&self) -> usize {
        self.shared.state.lock().watcher_count()
    }

    /// Stops accepting, ends every connection and watch, and waits for the accept loop.
    pub async fn shutdown(self) {
        let _ = self.shared.shutdown.send(true);
        let _ = self.task.await;
    }
}
