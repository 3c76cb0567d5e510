//! Self-signed TLS material: a CA and a server certificate for
//! `127.0.0.1`, `::1` and `localhost`, served with rustls (HTTP/2 and
//! HTTP/1.1 offered over ALPN).

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::SimError;

/// The CA clients must trust and the server configuration using it.
pub struct TlsMaterial {
    /// CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// CA certificate, PEM.
    pub ca_pem: String,
    /// rustls server configuration.
    pub config: Arc<rustls::ServerConfig>,
}

/// Generates a fresh CA and server certificate.
pub fn generate() -> Result<TlsMaterial, SimError> {
    let ca_key = KeyPair::generate().map_err(SimError::Certificate)?;
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(SimError::Certificate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-sim-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(SimError::Certificate)?;

    let server_key = KeyPair::generate().map_err(SimError::Certificate)?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(SimError::Certificate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let server = params
        .signed_by(&server_key, &ca, &ca_key)
        .map_err(SimError::Certificate)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SimError::Tls)?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(server.der().to_vec()),
                CertificateDer::from(ca.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .map_err(SimError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_der: ca.der().to_vec(),
        ca_pem: ca.pem(),
        config: Arc::new(config),
    })
}
