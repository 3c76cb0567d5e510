//! The one door every Compute Engine call goes through: the client set
//! (built once per class, with the class's endpoint and credentials), a
//! client-side rate limit, a deadline per call, retries with jittered
//! backoff on `429 rateLimitExceeded`, 5xx and transport failures, waiting
//! for long-running Operations, and a count of calls by operation and
//! outcome (the provider's metric, and how tests prove a no-op resync
//! writes nothing).
//!
//! Other parts of the crate (the Service path, the Ingress path) call
//! [`Api::call`] with a closure that builds the request, [`Api::wait`] on
//! the Operation a mutation returns (or [`Api::mutate`] for both), and
//! [`Api::list_all`] for paged lists.

use std::{collections::BTreeMap, future::Future, num::NonZeroU32, sync::Arc, time::Duration};

use google_cloud_compute_v1::{client, model::Operation, model::operation::Status};
use google_cloud_gax::paginator::internal::PageableResponse;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use rand::Rng;

use crate::error::{CallError, GcpError};

/// `n` as a `NonZeroU32`; `n` must be at least 1.
const fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(n.saturating_sub(1))
}

/// Limits and deadlines of the calls one provider makes.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Deadline of one HTTP call.
    pub call_timeout: Duration,
    /// Deadline for a long-running Operation to reach DONE.
    pub operation_timeout: Duration,
    /// Attempts per call, the first included, for retryable failures.
    pub max_attempts: u32,
    /// First retry waits up to this long (full jitter), doubling each time.
    pub backoff_base: Duration,
    /// Longest wait between two attempts.
    pub backoff_cap: Duration,
    /// Calls per second allowed by the client-side limit.
    pub rate_per_second: u32,
    /// Burst the client-side limit allows.
    pub burst: u32,
}

impl Default for ApiOptions {
    fn default() -> Self {
        // Compute Engine's default read/write quotas are per project and
        // per minute (a few thousand); 10/s with bursts of 40 keeps one
        // controller far below them, as the AWS provider does.
        Self {
            call_timeout: Duration::from_secs(30),
            operation_timeout: Duration::from_secs(300),
            max_attempts: 6,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(8),
            rate_per_second: 10,
            burst: 40,
        }
    }
}

/// How a provider reaches Compute Engine.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// API root, e.g. an emulator's `http://127.0.0.1:PORT`; `None` for the
    /// public endpoint.
    pub endpoint: Option<String>,
    /// Send no credentials (emulators); otherwise Application Default
    /// Credentials (Workload Identity, the metadata server, a key file).
    pub anonymous: bool,
}

/// Outcome of one call, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// The service answered with an error.
    Error,
    /// No answer before the deadline.
    Timeout,
}

/// Calls made so far, by operation and outcome, plus the order of
/// operations (bounded). Every attempt counts, retries included.
#[derive(Debug, Default)]
pub struct CallLog {
    counts: BTreeMap<(&'static str, Outcome), u64>,
    order: Vec<&'static str>,
}

/// Most recent operations kept in [`CallLog::order`].
const ORDER_CAP: usize = 4096;

impl CallLog {
    /// Calls by operation and outcome.
    pub fn counts(&self) -> &BTreeMap<(&'static str, Outcome), u64> {
        &self.counts
    }

    /// Operations in call order (the most recent few thousand).
    pub fn order(&self) -> &[&'static str] {
        &self.order
    }

    /// Calls that change something (everything but reads and Operation waits).
    pub fn writes(&self) -> u64 {
        self.counts
            .iter()
            .filter(|((op, _), _)| !is_read(op))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every call.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Forget every count (to measure one step).
    pub fn clear(&mut self) {
        self.counts.clear();
        self.order.clear();
    }
}

/// Whether an operation (`collection.method`) only reads.
pub fn is_read(operation: &str) -> bool {
    let method = operation.rsplit('.').next().unwrap_or(operation);
    matches!(
        method,
        "get" | "list" | "aggregatedList" | "listInstances" | "wait" | "getOperation"
    )
}

/// Every Compute Engine client the provider uses, one per collection.
#[allow(missing_docs)]
pub struct Clients {
    pub addresses: client::Addresses,
    pub global_addresses: client::GlobalAddresses,
    pub forwarding_rules: client::ForwardingRules,
    pub global_forwarding_rules: client::GlobalForwardingRules,
    pub instance_groups: client::InstanceGroups,
    pub instances: client::Instances,
    pub region_backend_services: client::RegionBackendServices,
    pub backend_services: client::BackendServices,
    pub health_checks: client::HealthChecks,
    pub region_health_checks: client::RegionHealthChecks,
    pub http_health_checks: client::HttpHealthChecks,
    pub firewalls: client::Firewalls,
    pub target_pools: client::TargetPools,
    pub url_maps: client::UrlMaps,
    pub target_http_proxies: client::TargetHttpProxies,
    pub target_https_proxies: client::TargetHttpsProxies,
    pub ssl_certificates: client::SslCertificates,
    pub zone_operations: client::ZoneOperations,
    pub region_operations: client::RegionOperations,
    pub global_operations: client::GlobalOperations,
}

/// Build one client with the connection's endpoint and credentials, and
/// without the library's own retries (ours count every attempt).
macro_rules! build {
    ($ty:ident, $service:literal, $conn:expr, $class:expr) => {{
        let mut b =
            client::$ty::builder().with_retry_policy(google_cloud_gax::retry_policy::NeverRetry);
        if let Some(endpoint) = &$conn.endpoint {
            b = b.with_endpoint(endpoint.clone());
        }
        if $conn.anonymous {
            b = b.with_credentials(
                google_cloud_auth::credentials::anonymous::Builder::new().build(),
            );
        }
        b.build().await.map_err(|source| GcpError::Client {
            class: $class.to_string(),
            service: $service,
            source,
        })?
    }};
}

impl Clients {
    async fn new(conn: &Connection, class: &str) -> Result<Self, GcpError> {
        Ok(Self {
            addresses: build!(Addresses, "addresses", conn, class),
            global_addresses: build!(GlobalAddresses, "globalAddresses", conn, class),
            forwarding_rules: build!(ForwardingRules, "forwardingRules", conn, class),
            global_forwarding_rules: build!(
                GlobalForwardingRules,
                "globalForwardingRules",
                conn,
                class
            ),
            instance_groups: build!(InstanceGroups, "instanceGroups", conn, class),
            instances: build!(Instances, "instances", conn, class),
            region_backend_services: build!(
                RegionBackendServices,
                "regionBackendServices",
                conn,
                class
            ),
            backend_services: build!(BackendServices, "backendServices", conn, class),
            health_checks: build!(HealthChecks, "healthChecks", conn, class),
            region_health_checks: build!(RegionHealthChecks, "regionHealthChecks", conn, class),
            http_health_checks: build!(HttpHealthChecks, "httpHealthChecks", conn, class),
            firewalls: build!(Firewalls, "firewalls", conn, class),
            target_pools: build!(TargetPools, "targetPools", conn, class),
            url_maps: build!(UrlMaps, "urlMaps", conn, class),
            target_http_proxies: build!(TargetHttpProxies, "targetHttpProxies", conn, class),
            target_https_proxies: build!(TargetHttpsProxies, "targetHttpsProxies", conn, class),
            ssl_certificates: build!(SslCertificates, "sslCertificates", conn, class),
            zone_operations: build!(ZoneOperations, "zoneOperations", conn, class),
            region_operations: build!(RegionOperations, "regionOperations", conn, class),
            global_operations: build!(GlobalOperations, "globalOperations", conn, class),
        })
    }
}

/// Clients, project and region, limits and accounting shared by every
/// step of the provider.
pub struct Api {
    /// The clients.
    pub clients: Clients,
    /// Project every resource lives in.
    pub project: String,
    /// Region of regional resources (Service balancers).
    pub region: String,
    limiter: DefaultDirectRateLimiter,
    options: ApiOptions,
    pub(crate) log: Arc<Mutex<CallLog>>,
}

impl Api {
    /// Build the clients for `class`.
    pub(crate) async fn new(
        class: &str,
        project: String,
        region: String,
        conn: &Connection,
        options: ApiOptions,
    ) -> Result<Self, GcpError> {
        let clients = Clients::new(conn, class).await?;
        let limiter = RateLimiter::direct(
            Quota::per_second(nz(options.rate_per_second)).allow_burst(nz(options.burst)),
        );
        Ok(Self {
            clients,
            project,
            region,
            limiter,
            options,
            log: Arc::new(Mutex::new(CallLog::default())),
        })
    }

    fn record(&self, operation: &'static str, outcome: Outcome) {
        let mut log = self.log.lock();
        *log.counts.entry((operation, outcome)).or_default() += 1;
        if log.order.len() >= ORDER_CAP {
            log.order.remove(0);
        }
        log.order.push(operation);
    }

    /// Run one call under the rate limit and deadline, retrying throttling,
    /// 5xx and transport failures with jittered exponential backoff.
    /// `make` builds the request afresh for each attempt; a mutation should
    /// carry one `requestId` across attempts (see [`request_id`]) so that a
    /// retry of a call the service did apply is answered with the first
    /// Operation instead of being applied twice.
    pub async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        mut make: F,
    ) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.until_ready().await;
            let err = match tokio::time::timeout(self.options.call_timeout, make()).await {
                Ok(Ok(value)) => {
                    self.record(operation, Outcome::Ok);
                    return Ok(value);
                }
                Ok(Err(source)) => {
                    self.record(operation, Outcome::Error);
                    CallError::Api { operation, source }
                }
                Err(_) => {
                    self.record(operation, Outcome::Timeout);
                    CallError::Timeout {
                        operation,
                        seconds: self.options.call_timeout.as_secs(),
                    }
                }
            };
            if attempt >= self.options.max_attempts || !retryable(&err) {
                return Err(err);
            }
            tracing::debug!(operation, attempt, error = %err, "Retrying Compute Engine call");
            tokio::time::sleep(self.backoff(attempt)).await;
        }
    }

    /// Full-jitter exponential backoff before attempt `attempt + 1`.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .options
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.options.backoff_cap);
        let millis = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// Wait for `op` (returned by a mutation named `operation`) to be DONE,
    /// through the zonal, regional or global `operations.wait` its scope
    /// calls for, and turn an Operation error into a [`CallError`].
    pub async fn wait(&self, operation: &'static str, op: Operation) -> Result<(), CallError> {
        let deadline = tokio::time::Instant::now() + self.options.operation_timeout;
        let mut op = op;
        loop {
            if op.status == Some(Status::Done) {
                return operation_result(operation, &op);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CallError::Timeout {
                    operation,
                    seconds: self.options.operation_timeout.as_secs(),
                });
            }
            let name = op.name.clone().unwrap_or_default();
            let project = self.project.clone();
            op = if let Some(zone) = op.zone.as_deref().map(last_segment) {
                self.call("zoneOperations.wait", || {
                    self.clients
                        .zone_operations
                        .wait()
                        .set_project(project.clone())
                        .set_zone(zone.clone())
                        .set_operation(name.clone())
                        .send()
                })
                .await?
            } else if let Some(region) = op.region.as_deref().map(last_segment) {
                self.call("regionOperations.wait", || {
                    self.clients
                        .region_operations
                        .wait()
                        .set_project(project.clone())
                        .set_region(region.clone())
                        .set_operation(name.clone())
                        .send()
                })
                .await?
            } else {
                self.call("globalOperations.wait", || {
                    self.clients
                        .global_operations
                        .wait()
                        .set_project(project.clone())
                        .set_operation(name.clone())
                        .send()
                })
                .await?
            };
        }
    }

    /// [`Api::call`] a mutation and [`Api::wait`] for its Operation.
    pub async fn mutate<F, Fut>(&self, operation: &'static str, make: F) -> Result<(), CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<Operation>>,
    {
        let op = self.call(operation, make).await?;
        self.wait(operation, op).await
    }

    /// Every item of a paged list: `make` gets the page token (empty for
    /// the first page) and builds the request.
    pub async fn list_all<R, F, Fut>(
        &self,
        operation: &'static str,
        mut make: F,
    ) -> Result<Vec<R::PageItem>, CallError>
    where
        R: PageableResponse,
        F: FnMut(String) -> Fut,
        Fut: Future<Output = google_cloud_compute_v1::Result<R>>,
    {
        let mut items = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.call(operation, || make(token.clone())).await?;
            let next = page.next_page_token();
            items.extend(page.items());
            if next.is_empty() {
                return Ok(items);
            }
            token = next;
        }
    }

    /// Calls made so far.
    pub fn log(&self) -> Arc<Mutex<CallLog>> {
        self.log.clone()
    }

    /// `projects/P/regions/R` as links name the provider's region.
    pub fn region_path(&self) -> String {
        format!("projects/{}/regions/{}", self.project, self.region)
    }

    /// `projects/P/global` for global links.
    pub fn global_path(&self) -> String {
        format!("projects/{}/global", self.project)
    }
}

/// Whether the call itself (not the controller) should retry.
fn retryable(err: &CallError) -> bool {
    match err {
        CallError::Timeout { .. } => true,
        CallError::Operation { .. } => false,
        CallError::Api { source, .. } => match source.http_status_code() {
            Some(status) => status == 429 || status >= 500,
            None => {
                source.is_timeout()
                    || source.is_io()
                    || source.is_connect()
                    || source.is_transient_and_before_rpc()
            }
        },
    }
}

/// A fresh `requestId` for one mutation (a random, non-nil UUID).
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The last path segment of a link (`.../zones/us-central1-a` -> `us-central1-a`).
pub fn last_segment(link: &str) -> String {
    link.rsplit('/').next().unwrap_or(link).to_string()
}

fn operation_result(operation: &'static str, op: &Operation) -> Result<(), CallError> {
    let Some(first) = op.error.as_ref().and_then(|e| e.errors.first()) else {
        return Ok(());
    };
    Err(CallError::Operation {
        operation,
        code: first.code.clone().unwrap_or_default(),
        message: first.message.clone().unwrap_or_default(),
        http_status: op
            .http_error_status_code
            .and_then(|s| u16::try_from(s).ok()),
    })
}
