//! Ingress -> L7 [`DesiredLoadBalancer`]: host and path rules, Service
//! backends reached through their node ports, and TLS from Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{Secret, Service},
    networking::v1::{Ingress, IngressBackend, IngressTLS},
};

use super::{IngressInputs, TranslateError, Translated, owner, port};
use crate::{
    annotations::{self, HEALTH_CHECK_PATH, values},
    desired::{
        DesiredLoadBalancer, HealthCheck, L7Backend, L7Path, L7Rule, L7Spec, LoadBalancerSpec,
        PathMatch, TlsCertificate,
    },
    identity::OwnerKind,
    select::eligible_nodes,
};

/// A path as matched, how, and the key of its backend.
type KeyedPath = (String, PathMatch, String);

/// Secret type that carries a certificate and key.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Translate an Ingress.
pub fn translate_ingress(
    ingress: &Ingress,
    inputs: &IngressInputs<'_>,
) -> Result<Translated, TranslateError> {
    let owner = owner(&ingress.metadata, OwnerKind::Ingress, inputs.cluster_id)?;
    let spec = ingress
        .spec
        .as_ref()
        .ok_or_else(|| TranslateError::Missing {
            field: "spec".into(),
        })?;
    let empty = BTreeMap::new();
    let parsed =
        annotations::parse_ingress(ingress.metadata.annotations.as_ref().unwrap_or(&empty))?;
    let mut warnings = parsed.warnings;
    let mut resolver = Resolver {
        namespace: &owner.namespace,
        services: inputs.services,
        found: BTreeMap::new(),
    };

    // Rules refer to backends by key first; indices exist once all are known.
    let mut keyed_rules: Vec<(Option<String>, Vec<KeyedPath>)> = Vec::new();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let host = rule.host.as_deref().filter(|h| !h.is_empty());
        if let Some(host) = host {
            check_host(format!("spec.rules[{i}].host"), host)?;
        }
        let Some(http) = &rule.http else {
            warnings.push(format!(
                "spec.rules[{i}] has no http paths; requests for it use the default backend"
            ));
            continue;
        };
        let mut paths = Vec::with_capacity(http.paths.len());
        for (j, p) in http.paths.iter().enumerate() {
            let field = format!("spec.rules[{i}].http.paths[{j}]");
            let (path, path_match) = path_match(&field, p.path.as_deref(), &p.path_type)?;
            let key = resolver.resolve(&format!("{field}.backend"), &p.backend)?;
            paths.push((path, path_match, key));
        }
        keyed_rules.push((host.map(str::to_string), paths));
    }
    let default_key = spec
        .default_backend
        .as_ref()
        .map(|b| resolver.resolve("spec.defaultBackend", b))
        .transpose()?;

    // BTreeMap order: backends sorted by key, so indices are deterministic.
    let index: BTreeMap<String, usize> = resolver
        .found
        .keys()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    let at = |key: &str| index.get(key).copied().unwrap_or_default();
    let rules = keyed_rules
        .into_iter()
        .map(|(host, paths)| L7Rule {
            host,
            paths: paths
                .into_iter()
                .map(|(path, path_match, key)| L7Path {
                    path,
                    path_match,
                    backend: at(&key),
                })
                .collect(),
        })
        .collect();
    let default_backend = default_key.as_deref().map(at);
    let (backends, health_checks) = resolver.found.into_values().unzip();

    let mut tls = Vec::new();
    for (i, entry) in spec.tls.iter().flatten().enumerate() {
        if let Some(cert) = certificate(i, entry, &owner.namespace, inputs.secrets)? {
            tls.push(cert);
        } else {
            warnings.push(format!(
                "spec.tls[{i}] has no secretName; its hosts are served with annotation or class certificates"
            ));
        }
    }

    Ok(Translated {
        desired: DesiredLoadBalancer {
            owner,
            class: inputs.class_name.to_string(),
            provider: inputs.class.provider,
            spec: LoadBalancerSpec::L7(L7Spec {
                rules,
                default_backend,
                backends,
                health_checks,
                nodes: eligible_nodes(inputs.nodes),
                tls,
                options: parsed.options,
            }),
        },
        warnings,
    })
}

/// The path as matched and how, from `path` and `pathType`.
///
/// `ImplementationSpecific` (or no type) follows GCE: a trailing `/*` is a
/// prefix of what precedes the `*`, anything else is exact, and a missing
/// path matches everything.
fn path_match(
    field: &str,
    path: Option<&str>,
    path_type: &str,
) -> Result<(String, PathMatch), TranslateError> {
    let invalid = |value: &str, reason: String| TranslateError::Invalid {
        field: format!("{field}.path"),
        value: value.to_string(),
        reason,
    };
    let checked = |value: &str, shown: &str| {
        values::check_path(value)
            .map(|()| value.to_string())
            .map_err(|r| invalid(shown, r))
    };
    match path_type {
        "Exact" | "Prefix" => {
            let p = path.ok_or_else(|| TranslateError::Missing {
                field: format!("{field}.path"),
            })?;
            let m = if path_type == "Exact" {
                PathMatch::Exact
            } else {
                PathMatch::Prefix
            };
            Ok((checked(p, p)?, m))
        }
        "" | "ImplementationSpecific" => {
            let Some(p) = path.filter(|p| !p.is_empty()) else {
                return Ok(("/".into(), PathMatch::Prefix));
            };
            let (base, m) = match p.strip_suffix('*') {
                Some(base) if base.ends_with('/') => (base, PathMatch::Prefix),
                _ => (p, PathMatch::Exact),
            };
            if base.contains('*') {
                return Err(invalid(p, "'*' is only allowed as a trailing '/*'".into()));
            }
            Ok((checked(base, p)?, m))
        }
        other => Err(TranslateError::Invalid {
            field: format!("{field}.pathType"),
            value: other.into(),
            reason: "must be Exact, Prefix or ImplementationSpecific".into(),
        }),
    }
}

/// Check `spec.tls[index].secretName` before anything is read: only a plain
/// object name (a DNS subdomain) in the Ingress's own namespace is allowed, so
/// a cross-namespace or path-like reference can never reach an API request.
pub fn check_secret_name(index: usize, name: &str) -> Result<(), TranslateError> {
    let field = format!("spec.tls[{index}].secretName");
    if name.contains('/') || name.contains("..") {
        return Err(TranslateError::Invalid {
            field,
            value: name.into(),
            reason: "must name a Secret in the Ingress's own namespace; cross-namespace and \
                     path-like references are not allowed"
                .into(),
        });
    }
    if check_host(field.clone(), name).is_err() || name.starts_with("*.") {
        return Err(TranslateError::Invalid {
            field,
            value: name.into(),
            reason: "not a valid Secret name".into(),
        });
    }
    Ok(())
}

/// A host name: lower-case DNS labels, optionally `*.` first; at most 253.
fn check_host(field: String, host: &str) -> Result<(), TranslateError> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && b.first() != Some(&b'-')
            && b.last() != Some(&b'-')
    };
    if host.len() > 253 || !name.split('.').all(label_ok) {
        return Err(TranslateError::Invalid {
            field,
            value: host.into(),
            reason: "not a DNS name (lower-case letters, digits, '-' and '.', optionally starting with '*.')"
                .into(),
        });
    }
    Ok(())
}

/// Collects the distinct Service backends of one Ingress.
struct Resolver<'a> {
    namespace: &'a str,
    services: &'a [Service],
    /// By [`L7Backend::key`].
    found: BTreeMap<String, (L7Backend, HealthCheck)>,
}

impl Resolver<'_> {
    /// Resolve one backend to a Service port with a node port; return its key.
    fn resolve(&mut self, field: &str, b: &IngressBackend) -> Result<String, TranslateError> {
        if let Some(r) = &b.resource {
            return Err(TranslateError::Invalid {
                field: format!("{field}.resource"),
                value: format!("{}/{}", r.kind, r.name),
                reason: "resource backends are not supported; use a Service backend".into(),
            });
        }
        let svc_ref = b.service.as_ref().ok_or_else(|| TranslateError::Missing {
            field: format!("{field}.service"),
        })?;
        let port_ref = svc_ref
            .port
            .as_ref()
            .ok_or_else(|| TranslateError::Missing {
                field: format!("{field}.service.port"),
            })?;
        let backend_err = |reason: String| TranslateError::Backend {
            field: field.to_string(),
            service: format!("{}/{}", self.namespace, svc_ref.name),
            reason,
        };
        let svc = self
            .services
            .iter()
            .find(|s| {
                s.metadata.name.as_deref() == Some(svc_ref.name.as_str())
                    && s.metadata
                        .namespace
                        .as_deref()
                        .is_none_or(|ns| ns == self.namespace)
            })
            .ok_or_else(|| backend_err("not found".into()))?;
        let spec = svc
            .spec
            .as_ref()
            .ok_or_else(|| backend_err("has no spec".into()))?;
        let ports = spec.ports.as_deref().unwrap_or_default();
        let sp = match (port_ref.number, port_ref.name.as_deref()) {
            (Some(n), _) => ports
                .iter()
                .find(|p| p.port == n)
                .ok_or_else(|| backend_err(format!("has no port {n}")))?,
            (None, Some(name)) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .ok_or_else(|| backend_err(format!("has no port named {name:?}")))?,
            (None, None) => {
                return Err(TranslateError::Missing {
                    field: format!("{field}.service.port.number"),
                });
            }
        };
        let service_port = port(format!("{field}.service.port"), sp.port)?;
        let node_port = sp.node_port.ok_or_else(|| {
            backend_err(format!(
                "has no node port for port {service_port} (type {}); Gantry reaches backends \
                 through node ports, so use type NodePort or LoadBalancer",
                spec.type_.as_deref().unwrap_or("ClusterIP")
            ))
        })?;
        let node_port = port(format!("{field}.service.port"), node_port)?;

        let health_check = if spec.external_traffic_policy.as_deref() == Some("Local") {
            // Only nodes with a local endpoint answer; kube-proxy says which.
            let hc = spec.health_check_node_port.ok_or_else(|| {
                backend_err("has externalTrafficPolicy Local but no healthCheckNodePort".into())
            })?;
            HealthCheck::Http {
                port: port(format!("{field}.service"), hc)?,
                path: "/healthz".into(),
            }
        } else {
            let path = match svc
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(HEALTH_CHECK_PATH))
            {
                Some(v) => values::http_path(HEALTH_CHECK_PATH, v)
                    .map_err(|e| backend_err(format!("has a bad annotation: {e}")))?,
                None => "/".into(),
            };
            HealthCheck::Http {
                port: node_port,
                path,
            }
        };
        let backend = L7Backend {
            namespace: self.namespace.to_string(),
            service: svc_ref.name.clone(),
            port: service_port,
            node_port,
        };
        let key = backend.key();
        self.found.insert(key.clone(), (backend, health_check));
        Ok(key)
    }
}

/// The certificate of `spec.tls[i]`, or `None` when it names no Secret.
fn certificate(
    i: usize,
    entry: &IngressTLS,
    namespace: &str,
    secrets: &[Secret],
) -> Result<Option<TlsCertificate>, TranslateError> {
    let hosts = entry.hosts.clone().unwrap_or_default();
    for (k, host) in hosts.iter().enumerate() {
        check_host(format!("spec.tls[{i}].hosts[{k}]"), host)?;
    }
    let Some(name) = entry.secret_name.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    check_secret_name(i, name)?;
    let field = format!("spec.tls[{i}].secretName");
    let secret_err = |reason: &str| TranslateError::Secret {
        field: field.clone(),
        secret: name.to_string(),
        reason: reason.to_string(),
    };
    let secret = secrets
        .iter()
        .find(|s| {
            s.metadata.name.as_deref() == Some(name)
                && s.metadata
                    .namespace
                    .as_deref()
                    .is_none_or(|ns| ns == namespace)
        })
        .ok_or_else(|| secret_err("not found in the Ingress's namespace"))?;
    if secret.type_.as_deref() != Some(TLS_SECRET_TYPE) {
        return Err(secret_err("must have type kubernetes.io/tls"));
    }
    let text = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|b| std::str::from_utf8(&b.0).ok())
            .map(str::to_string)
    };
    let cert_pem = text("tls.crt")
        .filter(|t| t.contains("-----BEGIN CERTIFICATE-----"))
        .ok_or_else(|| secret_err("tls.crt is missing or is not a PEM certificate"))?;
    let key_pem = text("tls.key")
        .filter(|t| has_pem_private_key(t))
        .ok_or_else(|| secret_err("tls.key is missing or is not a PEM private key"))?;
    Ok(Some(TlsCertificate {
        secret_name: name.to_string(),
        hosts,
        cert_pem,
        key_pem,
    }))
}

/// Whether `text` has a `-----BEGIN <...>PRIVATE KEY-----` line.
fn has_pem_private_key(text: &str) -> bool {
    text.lines().any(|l| {
        l.trim_end()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|label| label.ends_with("PRIVATE KEY"))
    })
}
