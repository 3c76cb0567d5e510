//! Ingresses -> Application Load Balancers: the wanted shape (target group
//! per backend Service port, listeners on 80 and 443, one rule per host and
//! path in Ingress order) and the pure diff against what AWS holds.

use std::collections::{BTreeMap, BTreeSet};

use gantry_model::{
    Owner, ProviderError, ProviderKind,
    desired::{HealthCheck, L7Spec, PathMatch},
};

use crate::{
    discovery::instance_id,
    nlb::{Health, ObservedListener},
};

/// What a listener does with requests no rule matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Default {
    /// Forward to the target group of this name (the default backend).
    Forward(String),
    /// Answer 404.
    NotFound,
    /// Redirect to HTTPS (`ssl-redirect`).
    RedirectHttps,
}

/// One routing rule: host and path patterns to a target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedRule {
    /// Host header to match, if any.
    pub host: Option<String>,
    /// Path patterns (any of them matches).
    pub paths: Vec<String>,
    /// Target group name.
    pub target_group: String,
}

/// One ALB listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedListener {
    /// `HTTP` or `HTTPS`.
    pub protocol: &'static str,
    /// Default action.
    pub default: Default,
    /// Certificate ARN for HTTPS.
    pub certificate: Option<String>,
    /// Rules, in priority order (priority = index + 1).
    pub rules: Vec<WantedRule>,
}

/// One backend target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedTg {
    /// Node port of the backend Service port.
    pub node_port: u16,
    /// Health check.
    pub health: Health,
}

/// The whole ALB an Ingress asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Balancer name.
    pub name: String,
    /// Target groups by name.
    pub target_groups: BTreeMap<String, WantedTg>,
    /// Listeners by port (80 and/or 443).
    pub listeners: BTreeMap<u16, WantedListener>,
    /// Instance ids that should be targets of every group.
    pub instances: BTreeSet<String>,
}

/// Path patterns for one Ingress path. Prefix matching is element-wise:
/// `/foo` matches `/foo` and `/foo/...` but not `/foobar`.
pub fn patterns(path: &str, how: PathMatch) -> Vec<String> {
    match how {
        PathMatch::Exact => vec![path.to_string()],
        PathMatch::Prefix => {
            let trimmed = path.trim_end_matches('/');
            if trimmed.is_empty() {
                vec!["/*".to_string()]
            } else {
                vec![trimmed.to_string(), format!("{trimmed}/*")]
            }
        }
    }
}

/// Turn an Ingress's L7 spec into the ALB it needs. `certificate` serves
/// HTTPS when the Ingress names no ACM certificate by annotation: the
/// class's, or the one imported from the Ingress's TLS Secret. `slot`
/// picks the names (see [`crate::slot`]).
pub fn wanted(
    owner: &Owner,
    class: &str,
    spec: &L7Spec,
    certificate: Option<&str>,
    slot: crate::slot::Slot,
) -> Result<Wanted, ProviderError> {
    let tg_name = |i: usize| -> Result<String, ProviderError> {
        let b = spec
            .backends
            .get(i)
            .ok_or_else(|| ProviderError::Rejected {
                operation: "Translate",
                message: format!("backend index {i} out of range"),
            })?;
        Ok(slot.name(
            owner,
            class,
            &format!("{}-{}-{}-{}", b.namespace, b.service, b.port, b.node_port),
        ))
    };
    let mut target_groups = BTreeMap::new();
    for (i, b) in spec.backends.iter().enumerate() {
        let health = match spec.health_checks.get(i) {
            Some(HealthCheck::Http { port, path }) => Health {
                protocol: "HTTP",
                port: port.to_string(),
                path: Some(path.clone()),
            },
            // An ALB checks over HTTP only: ask the backend's node port for `/`.
            _ => Health {
                protocol: "HTTP",
                port: "traffic-port".into(),
                path: Some("/".into()),
            },
        };
        target_groups.insert(
            tg_name(i)?,
            WantedTg {
                node_port: b.node_port,
                health,
            },
        );
    }
    let mut rules = Vec::new();
    for rule in &spec.rules {
        for path in &rule.paths {
            rules.push(WantedRule {
                host: rule.host.clone(),
                paths: patterns(&path.path, path.path_match),
                target_group: tg_name(path.backend)?,
            });
        }
    }
    let default = match spec.default_backend {
        Some(i) => Default::Forward(tg_name(i)?),
        None => Default::NotFound,
    };
    let certificate = spec
        .options
        .certificate_refs
        .first()
        .map(String::as_str)
        .or(certificate)
        .map(str::to_string);
    if !spec.tls.is_empty() && certificate.is_none() {
        return Err(ProviderError::Rejected {
            operation: "Translate",
            message: "spec.tls is set but no certificate was found or imported for it".into(),
        });
    }
    let https = certificate.is_some()
        && (!spec.tls.is_empty() || !spec.options.certificate_refs.is_empty());
    let mut listeners = BTreeMap::new();
    if https {
        listeners.insert(
            443,
            WantedListener {
                protocol: "HTTPS",
                default: default.clone(),
                certificate: certificate.clone(),
                rules: rules.clone(),
            },
        );
    }
    if spec.options.allow_http {
        let redirect = https && spec.options.ssl_redirect;
        listeners.insert(
            80,
            WantedListener {
                protocol: "HTTP",
                default: if redirect {
                    Default::RedirectHttps
                } else {
                    default
                },
                certificate: None,
                rules: if redirect { Vec::new() } else { rules },
            },
        );
    }
    if listeners.is_empty() {
        return Err(ProviderError::Unsupported {
            provider: ProviderKind::Aws,
            message: "plain HTTP is turned off and no certificate is available, so the Ingress would have no listener".into(),
        });
    }
    Ok(Wanted {
        name: slot.name(owner, class, "alb"),
        target_groups,
        listeners,
        instances: spec
            .nodes
            .iter()
            .filter_map(instance_id)
            .map(str::to_string)
            .collect(),
    })
}

/// Put `arn` where `wanted` holds the placeholder `pending` (a certificate
/// not imported yet when the shape was built).
pub(crate) fn set_certificate(wanted: &mut Wanted, pending: &str, arn: &str) {
    for l in wanted.listeners.values_mut() {
        if l.certificate.as_deref() == Some(pending) {
            l.certificate = Some(arn.to_string());
        }
    }
}

/// The security group rules opening every listener of `wanted` to everyone
/// (an Ingress names no source ranges).
pub(crate) fn sg_rules(wanted: &Wanted) -> BTreeSet<crate::security_group::Rule> {
    crate::security_group::rules(wanted.listeners.keys().map(|p| (*p, &["tcp"][..])), &[])
}

/// A rule as AWS holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRule {
    /// ARN.
    pub arn: String,
    /// Host header values (empty = any host).
    pub hosts: Vec<String>,
    /// Path pattern values.
    pub paths: Vec<String>,
    /// Target group ARN it forwards to.
    pub target_group_arn: Option<String>,
}

/// Whether a listener's default action is what `want` says.
pub fn default_matches(
    want: &Default,
    have: &ObservedListener,
    tg_arns: &BTreeMap<String, String>,
) -> bool {
    match want {
        Default::Forward(tg) => {
            have.default_type == "forward"
                && tg_arns.get(tg).is_some()
                && have.target_group_arn.as_ref() == tg_arns.get(tg)
        }
        Default::NotFound => have.default_type == "fixed-response",
        Default::RedirectHttps => have.default_type == "redirect",
    }
}

/// Whether a rule is what `want` says.
pub fn rule_matches(
    want: &WantedRule,
    have: &ObservedRule,
    tg_arns: &BTreeMap<String, String>,
) -> bool {
    let hosts: Vec<String> = want.host.iter().cloned().collect();
    have.hosts == hosts
        && have.paths == want.paths
        && tg_arns.get(&want.target_group).is_some()
        && have.target_group_arn.as_ref() == tg_arns.get(&want.target_group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_paths_match_element_wise() {
        assert_eq!(patterns("/", PathMatch::Prefix), ["/*"]);
        assert_eq!(patterns("/foo", PathMatch::Prefix), ["/foo", "/foo/*"]);
        assert_eq!(patterns("/foo/", PathMatch::Prefix), ["/foo", "/foo/*"]);
        assert_eq!(patterns("/foo", PathMatch::Exact), ["/foo"]);
    }
}
