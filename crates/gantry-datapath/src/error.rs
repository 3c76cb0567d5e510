//! Errors of the datapath: one variant per operation that can fail.
//!
//! Bind failures and bad Secrets are not errors of the datapath as a whole:
//! they make one object not ready and are reported in its status. Only what
//! stops the datapath itself (metrics endpoint, API access) ends `run`.

use std::{io, net::SocketAddr};

/// What can stop the datapath.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The metrics endpoint could not listen.
    #[error("binding the metrics endpoint {addr}")]
    BindMetrics {
        /// Address asked for.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Patching an object's status failed.
    #[error("patching status of LocalLoadBalancer {name}")]
    PatchStatus {
        /// Object name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// Reading a TLS Secret failed for another reason than absence.
    #[error("reading Secret {namespace}/{name}")]
    GetSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        #[source]
        source: kube::Error,
    },
    /// The watch on LocalLoadBalancer objects ended.
    #[error("watch on LocalLoadBalancer objects ended")]
    WatchEnded,
}

/// Why a listener could not be set up; reported in the owning objects' status.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The socket could not be bound.
    #[error("binding {addr}/{proto}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// Why a TLS certificate from a Secret is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `tls.crt` holds no PEM certificate.
    #[error("Secret {secret}: tls.crt holds no certificate")]
    NoCertificate {
        /// Secret name.
        secret: String,
    },
    /// `tls.crt` could not be read as PEM.
    #[error("Secret {secret}: tls.crt is not valid PEM: {source}")]
    CertificatePem {
        /// Secret name.
        secret: String,
        /// Cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// `tls.key` could not be read as a PEM private key.
    #[error("Secret {secret}: tls.key is not a PEM private key: {source}")]
    KeyPem {
        /// Secret name.
        secret: String,
        /// Cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The key type is not supported or does not match.
    #[error("Secret {secret}: unusable private key: {source}")]
    Key {
        /// Secret name.
        secret: String,
        /// Cause.
        #[source]
        source: rustls::Error,
    },
}
