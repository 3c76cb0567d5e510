//! [`RecordingProvider`]: an in-memory load balancer provider for one class.
//!
//! It behaves like a careful cloud adapter (diff, then write only what
//! changed; idempotent delete; ownership-filtered listing) and keeps a log of
//! every call with the writes it made, so tests can assert "zero writes" or
//! "exactly one backend update" rather than guess from timing.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use async_trait::async_trait;
use gantry_model::{
    DesiredLoadBalancer, LoadBalancer, ObservedStatus, Owner, Plan, ProviderError, ProviderKind,
    desired::{LoadBalancerSpec, Protocol},
    provider::{Change, DeleteOutcome, IngressPoint, PortStatus},
};
use parking_lot::Mutex;

use crate::diff::{delete_all, diff};

/// A provider operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// [`LoadBalancer::plan`].
    Plan,
    /// [`LoadBalancer::ensure`].
    Ensure,
    /// [`LoadBalancer::delete`].
    Delete,
    /// [`LoadBalancer::list_owned`].
    ListOwned,
}

impl Op {
    /// Lower-case name (`ensure`, `delete`, `plan`, `list_owned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Ensure => "ensure",
            Self::Delete => "delete",
            Self::ListOwned => "list_owned",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which error an injected fault returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// [`ProviderError::Transient`] (retry with backoff).
    Transient,
    /// [`ProviderError::Rejected`] (permanent).
    Permanent,
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Position in the log, from 0.
    pub seq: usize,
    /// Which operation.
    pub op: Op,
    /// The owner concerned (`None` for `list_owned`).
    pub owner: Option<Owner>,
    /// The writes this call made (empty for reads, no-ops and failures).
    pub writes: Vec<Change>,
    /// The error returned, if the call failed.
    pub error: Option<String>,
}

struct Stored {
    desired: DesiredLoadBalancer,
    address: IpAddr,
}

struct Fault {
    op: Option<Op>,
    remaining: usize,
    kind: FaultKind,
}

struct State {
    balancers: BTreeMap<Owner, Stored>,
    calls: Vec<Call>,
    faults: VecDeque<Fault>,
    ready: bool,
    latency: Option<Duration>,
    next_address: u32,
}

/// An in-memory provider for one `LoadBalancerClass`.
pub struct RecordingProvider {
    class: String,
    kind: ProviderKind,
    address_base: Ipv4Addr,
    state: Mutex<State>,
}

impl fmt::Debug for RecordingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingProvider")
            .field("class", &self.class)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl RecordingProvider {
    /// A provider for `class` that reports itself as `kind` and hands out
    /// addresses 192.0.2.1, 192.0.2.2, ... in creation order.
    pub fn new(class: impl Into<String>, kind: ProviderKind) -> Self {
        Self::with_addresses(class, kind, Ipv4Addr::new(192, 0, 2, 0))
    }

    /// Like [`RecordingProvider::new`], with addresses counted up from `base`
    /// (so two classes in one test report distinguishable addresses).
    pub fn with_addresses(class: impl Into<String>, kind: ProviderKind, base: Ipv4Addr) -> Self {
        Self {
            class: class.into(),
            kind,
            address_base: base,
            state: Mutex::new(State {
                balancers: BTreeMap::new(),
                calls: Vec::new(),
                faults: VecDeque::new(),
                ready: true,
                latency: None,
                next_address: 1,
            }),
        }
    }

    /// The class this provider serves.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// Make the next `n` calls (of any operation but `list_owned`) fail.
    pub fn fail_next(&self, n: usize, kind: FaultKind) {
        self.push_fault(None, n, kind);
    }

    /// Make the next `n` calls of `op` fail.
    pub fn fail_next_op(&self, op: Op, n: usize, kind: FaultKind) {
        self.push_fault(Some(op), n, kind);
    }

    fn push_fault(&self, op: Option<Op>, n: usize, kind: FaultKind) {
        if n > 0 {
            self.state.lock().faults.push_back(Fault {
                op,
                remaining: n,
                kind,
            });
        }
    }

    /// Drop every pending injected fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Whether `ensure` reports the balancer ready (true by default).
    pub fn set_ready(&self, ready: bool) {
        self.state.lock().ready = ready;
    }

    /// Delay every call by `latency` (`None` for no delay).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.state.lock().latency = latency;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// Calls of `op` so far.
    pub fn calls_of(&self, op: Op) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.op == op).collect()
    }

    /// Total number of writes (changes applied) so far.
    pub fn write_count(&self) -> usize {
        self.state.lock().calls.iter().map(|c| c.writes.len()).sum()
    }

    /// The balancers held now, by owner.
    pub fn inventory(&self) -> BTreeMap<Owner, DesiredLoadBalancer> {
        self.state
            .lock()
            .balancers
            .iter()
            .map(|(o, s)| (o.clone(), s.desired.clone()))
            .collect()
    }

    /// The address reported for `owner`, if it has a balancer.
    pub fn address_of(&self, owner: &Owner) -> Option<IpAddr> {
        self.state.lock().balancers.get(owner).map(|s| s.address)
    }

    /// Put a balancer in place without recording a call, as if it had been
    /// created by an earlier controller process (for restart and GC tests).
    pub fn seed(&self, desired: DesiredLoadBalancer) {
        let mut st = self.state.lock();
        let address = self.allocate(&mut st);
        st.balancers.insert(
            desired.owner.clone(),
            Stored {
                desired: desired.clone(),
                address,
            },
        );
    }

    fn allocate(&self, st: &mut State) -> IpAddr {
        let n = st.next_address;
        st.next_address += 1;
        IpAddr::V4(Ipv4Addr::from(u32::from(self.address_base).wrapping_add(n)))
    }

    /// Start a call: wait the artificial latency, then either take an
    /// injected fault or proceed.
    async fn begin(&self, op: Op, owner: Option<&Owner>) -> Result<(), ProviderError> {
        let latency = self.state.lock().latency;
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        let mut st = self.state.lock();
        let fault = if op == Op::ListOwned {
            take_fault(&mut st.faults, Some(Op::ListOwned), true)
        } else {
            take_fault(&mut st.faults, Some(op), false)
        };
        let Some(kind) = fault else {
            return Ok(());
        };
        let operation = match op {
            Op::Plan => "Describe",
            Op::Ensure => "Ensure",
            Op::Delete => "Delete",
            Op::ListOwned => "ListOwned",
        };
        let err = match kind {
            FaultKind::Transient => ProviderError::Transient {
                operation,
                source: "injected transient fault".into(),
            },
            FaultKind::Permanent => ProviderError::Rejected {
                operation,
                message: "injected permanent fault".into(),
            },
        };
        let seq = st.calls.len();
        st.calls.push(Call {
            seq,
            op,
            owner: owner.cloned(),
            writes: Vec::new(),
            error: Some(err.to_string()),
        });
        Err(err)
    }

    fn record(st: &mut State, op: Op, owner: Option<&Owner>, writes: Vec<Change>) {
        let seq = st.calls.len();
        st.calls.push(Call {
            seq,
            op,
            owner: owner.cloned(),
            writes,
            error: None,
        });
    }
}

/// Take one fault matching `op`. Untargeted faults never apply to
/// `list_owned` (`only_targeted`), so startup listing is not disturbed by a
/// fault meant for the next write.
fn take_fault(
    faults: &mut VecDeque<Fault>,
    op: Option<Op>,
    only_targeted: bool,
) -> Option<FaultKind> {
    let idx = faults.iter().position(|f| match f.op {
        Some(o) => Some(o) == op,
        None => !only_targeted,
    })?;
    let fault = faults.get_mut(idx)?;
    fault.remaining -= 1;
    let kind = fault.kind;
    if fault.remaining == 0 {
        faults.remove(idx);
    }
    Some(kind)
}

fn ports(desired: &DesiredLoadBalancer) -> Vec<PortStatus> {
    let mut ports: Vec<PortStatus> = match &desired.spec {
        LoadBalancerSpec::L4(s) => s
            .listeners
            .iter()
            .map(|l| PortStatus {
                port: l.port,
                protocol: l.protocol,
            })
            .collect(),
        LoadBalancerSpec::L7(s) => {
            let mut p = vec![PortStatus {
                port: 80,
                protocol: Protocol::Tcp,
            }];
            if !s.tls.is_empty() || !s.options.certificate_refs.is_empty() {
                p.push(PortStatus {
                    port: 443,
                    protocol: Protocol::Tcp,
                });
            }
            p
        }
    };
    ports.sort();
    ports.dedup();
    ports
}

#[async_trait]
impl LoadBalancer for RecordingProvider {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    async fn plan(&self, desired: &DesiredLoadBalancer) -> Result<Plan, ProviderError> {
        self.begin(Op::Plan, Some(&desired.owner)).await?;
        let mut st = self.state.lock();
        let changes = diff(
            st.balancers.get(&desired.owner).map(|s| &s.desired),
            desired,
        );
        Self::record(&mut st, Op::Plan, Some(&desired.owner), Vec::new());
        Ok(Plan { changes })
    }

    async fn ensure(&self, desired: &DesiredLoadBalancer) -> Result<ObservedStatus, ProviderError> {
        self.begin(Op::Ensure, Some(&desired.owner)).await?;
        let mut st = self.state.lock();
        let writes = diff(
            st.balancers.get(&desired.owner).map(|s| &s.desired),
            desired,
        );
        let address = match st.balancers.get(&desired.owner) {
            Some(s) => s.address,
            None => self.allocate(&mut st),
        };
        st.balancers.insert(
            desired.owner.clone(),
            Stored {
                desired: desired.clone(),
                address,
            },
        );
        Self::record(&mut st, Op::Ensure, Some(&desired.owner), writes);
        Ok(ObservedStatus {
            ingress: vec![IngressPoint {
                ip: Some(address),
                hostname: None,
                ports: ports(desired),
            }],
            ready: st.ready,
        })
    }

    async fn delete(&self, owner: &Owner) -> Result<DeleteOutcome, ProviderError> {
        self.begin(Op::Delete, Some(owner)).await?;
        let mut st = self.state.lock();
        let removed = st.balancers.remove(owner);
        let (writes, outcome) = match &removed {
            Some(s) => (delete_all(&s.desired), DeleteOutcome::Deleted),
            None => (Vec::new(), DeleteOutcome::NotFound),
        };
        Self::record(&mut st, Op::Delete, Some(owner), writes);
        Ok(outcome)
    }

    async fn list_owned(&self, cluster_id: &str) -> Result<Vec<Owner>, ProviderError> {
        self.begin(Op::ListOwned, None).await?;
        let mut st = self.state.lock();
        let owners = st
            .balancers
            .keys()
            .filter(|o| o.cluster_id == cluster_id)
            .cloned()
            .collect();
        Self::record(&mut st, Op::ListOwned, None, Vec::new());
        Ok(owners)
    }
}
