//! TLS termination: certificates from Secrets, chosen by SNI.
//!
//! The resolver looks up the exact server name, then its `*.` wildcard (one
//! label), then falls back to the default certificate: the first entry
//! without hosts, else the first certificate. Clients without SNI get the
//! default too. ALPN offers `h2` then `http/1.1`.

use std::{collections::HashMap, sync::Arc};

use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use crate::{config::TlsMaterial, error::TlsError};

/// Parses one Secret's PEM into a signing key and chain.
pub(crate) fn certified_key(
    material: &TlsMaterial,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let secret = || material.secret_name.clone();
    let chain = CertificateDer::pem_slice_iter(&material.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::CertificatePem {
            secret: secret(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { secret: secret() });
    }
    let key =
        PrivateKeyDer::from_pem_slice(&material.key_pem).map_err(|source| TlsError::KeyPem {
            secret: secret(),
            source,
        })?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key {
        secret: secret(),
        source,
    })?;
    Ok(key)
}

/// Picks a certificate by SNI.
#[derive(Debug, Default)]
pub(crate) struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    first: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// Registers `key` for `hosts`; earlier registrations win on duplicates.
    pub fn add(&mut self, hosts: &[String], key: Arc<CertifiedKey>) {
        if self.first.is_none() {
            self.first = Some(key.clone());
        }
        if hosts.is_empty() && self.default.is_none() {
            self.default = Some(key.clone());
        }
        for host in hosts {
            let host = host.to_ascii_lowercase();
            match host.strip_prefix("*.") {
                Some(suffix) => {
                    self.wildcard
                        .entry(suffix.to_owned())
                        .or_insert_with(|| key.clone());
                }
                None => {
                    self.exact.entry(host).or_insert_with(|| key.clone());
                }
            }
        }
    }

    /// The certificate for `server_name` (none = no SNI).
    pub fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let name = name.to_ascii_lowercase();
            if let Some(k) = self.exact.get(&name) {
                return Some(k.clone());
            }
            if let Some(k) = name
                .split_once('.')
                .and_then(|(_, parent)| self.wildcard.get(parent))
            {
                return Some(k.clone());
            }
        }
        self.default.clone().or_else(|| self.first.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// A server configuration around `resolver`.
pub(crate) fn server_config(
    resolver: SniResolver,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(host: &str, hosts: &[&str]) -> TlsMaterial {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![host.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        TlsMaterial {
            secret_name: host.to_owned(),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            cert_pem: cert.pem().into_bytes(),
            key_pem: key.serialize_pem().into_bytes(),
        }
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let provider = rustls::crypto::ring::default_provider();
        let keys: Vec<Arc<CertifiedKey>> = [
            material("a.test", &["a.test"]),
            material("w", &["*.w.test"]),
            material("d", &[]),
        ]
        .iter()
        .map(|m| Arc::new(certified_key(m, &provider).expect("key")))
        .collect();
        let mut r = SniResolver::default();
        r.add(&["a.test".into()], keys[0].clone());
        r.add(&["*.w.test".into()], keys[1].clone());
        let pick = |r: &SniResolver, n: Option<&str>| r.pick(n).expect("a certificate");
        assert!(Arc::ptr_eq(&pick(&r, Some("A.test")), &keys[0]));
        assert!(Arc::ptr_eq(&pick(&r, Some("x.w.test")), &keys[1]));
        assert!(
            Arc::ptr_eq(&pick(&r, Some("x.y.w.test")), &keys[0]),
            "no default: first"
        );
        r.add(&[], keys[2].clone());
        assert!(Arc::ptr_eq(&pick(&r, Some("other.test")), &keys[2]));
        assert!(Arc::ptr_eq(&pick(&r, None), &keys[2]));
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let provider = rustls::crypto::ring::default_provider();
        let mut m = material("a.test", &[]);
        m.cert_pem = b"not pem".to_vec();
        let e = certified_key(&m, &provider).expect_err("no certificate");
        assert!(e.to_string().contains("tls.crt"), "{e}");
        let mut m = material("a.test", &[]);
        m.key_pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec();
        assert!(certified_key(&m, &provider).is_err());
    }
}
