//! TLS Secrets named by L7 objects, read one by one with GET.
//!
//! The datapath never lists or watches Secrets cluster-wide: it GETs the
//! Secrets the specs name, in the owner's namespace, and keeps them until
//! the next refresh. `run` refreshes every [`REFRESH`], so a renewed
//! certificate is served within that period without a watch on Secrets.

use std::{collections::BTreeMap, time::Duration};

use gantry_model::local::LocalLoadBalancerSpec;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::{config::TlsMaterial, error::DatapathError};

/// How often cached Secrets are read again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// `tls.crt` and `tls.key` of one Secret.
type Pem = (Vec<u8>, Vec<u8>);

/// Result of reading one Secret: its PEM, or the problem to report.
type Read = Result<Pem, String>;

/// Secrets read since the last refresh. Only successful reads are kept: a
/// missing Secret is asked for again on the next apply.
pub(crate) struct SecretCache {
    client: Client,
    cache: BTreeMap<(String, String), Pem>,
}

impl SecretCache {
    /// An empty cache.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: BTreeMap::new(),
        }
    }

    /// Forgets everything, so the next resolve reads again.
    pub fn clear(&mut self) {
        self.cache.clear();
    }

    /// The TLS material `spec` names, and the problems met reading it.
    pub async fn resolve(
        &mut self,
        spec: &LocalLoadBalancerSpec,
    ) -> (Vec<TlsMaterial>, Vec<String>) {
        let mut materials = Vec::new();
        let mut problems = Vec::new();
        let Some(l7) = &spec.l7 else {
            return (materials, problems);
        };
        let namespace = &spec.owner.namespace;
        for tls in &l7.tls {
            let key = (namespace.clone(), tls.secret_name.clone());
            if !self.cache.contains_key(&key) {
                match self.read(namespace, &tls.secret_name).await {
                    Ok(read) => {
                        self.cache.insert(key.clone(), read);
                    }
                    Err(problem) => {
                        problems.push(problem);
                        continue;
                    }
                }
            }
            if let Some((cert, private)) = self.cache.get(&key) {
                materials.push(TlsMaterial {
                    secret_name: tls.secret_name.clone(),
                    hosts: tls.hosts.clone(),
                    cert_pem: cert.clone(),
                    key_pem: private.clone(),
                });
            }
        }
        (materials, problems)
    }

    async fn read(&self, namespace: &str, name: &str) -> Read {
        let full = format!("{namespace}/{name}");
        if !valid_name(namespace) || !valid_name(name) {
            return Err(format!("Secret {full:?}: not a valid object name"));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = match api.get_opt(name).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(format!("Secret {full} not found")),
            Err(source) => {
                let error = DatapathError::GetSecret {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    source,
                };
                tracing::warn!(%error, "Cannot read TLS Secret");
                return Err(format!("Secret {full} could not be read"));
            }
        };
        if secret.type_.as_deref() != Some("kubernetes.io/tls") {
            return Err(format!("Secret {full} is not of type kubernetes.io/tls"));
        }
        let data = secret.data.unwrap_or_default();
        match (data.get("tls.crt"), data.get("tls.key")) {
            (Some(c), Some(k)) => Ok((c.0.clone(), k.0.clone())),
            _ => Err(format!("Secret {full} lacks tls.crt or tls.key")),
        }
    }
}

/// A DNS-1123 subdomain: what namespaces and Secret names must be. Anything
/// else (slashes, `..`) never reaches the API path.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        assert!(valid_name("my-ssl-secret"));
        assert!(valid_name("a.b"));
        for bad in ["", "../x", "a/b", "A", "-a", "a.", "a..b", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
