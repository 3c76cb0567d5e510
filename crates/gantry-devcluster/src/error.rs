//! The one error type of the dev cluster: one variant per failed operation,
//! each carrying the object or address it was about.

use std::{io, net::SocketAddr};

/// Why a dev cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// Creating or replacing a Node object failed.
    #[error("registering node {name}")]
    RegisterNode {
        /// The node's name.
        name: String,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// Writing a Node's status (heartbeat or readiness) failed.
    #[error("writing the status of node {name}")]
    NodeStatus {
        /// The node's name.
        name: String,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// Deleting a Node object failed.
    #[error("removing node {name}")]
    RemoveNode {
        /// The node's name.
        name: String,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// The named node is not part of this dev cluster.
    #[error("node {0} is not part of this dev cluster")]
    UnknownNode(String),
    /// No more addresses are left after the configured base address.
    #[error("the address range starting at {0} is exhausted")]
    AddressesExhausted(std::net::Ipv4Addr),
    /// Listing objects failed.
    #[error("listing {kind}")]
    List {
        /// The kind listed.
        kind: &'static str,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// Creating an object failed.
    #[error("creating {kind} {namespace}/{name}")]
    Create {
        /// The kind created.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name (or generateName prefix).
        name: String,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// Replacing or patching an object (or its status) failed.
    #[error("updating {kind} {namespace}/{name}")]
    Update {
        /// The kind updated.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// Deleting an object failed.
    #[error("deleting {kind} {namespace}/{name}")]
    Delete {
        /// The kind deleted.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the API answered.
        #[source]
        source: Box<kube::Error>,
    },
    /// Binding a socket failed (the caller retries later).
    #[error("binding {protocol} {addr}")]
    Bind {
        /// `TCP` or `UDP`.
        protocol: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What the kernel answered.
        #[source]
        source: io::Error,
    },
    /// An object lacked a field the dev cluster needs.
    #[error("{kind} lacks {field}")]
    MissingField {
        /// The kind of object.
        kind: &'static str,
        /// The missing field's path.
        field: &'static str,
    },
    /// An object could not be serialised for a write.
    #[error("encoding {kind}")]
    Encode {
        /// The kind encoded.
        kind: &'static str,
        /// The serialiser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A watch did not deliver its first list in time.
    #[error("waiting for the first list of {kind}")]
    InformerSync {
        /// The kind that did not sync.
        kind: &'static str,
    },
}
