//! Building one L7 listener's configuration from the objects sharing it:
//! their routes merged in name order, and their certificates in one SNI
//! resolver.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use super::{
    routes::{RouteTable, SiteRoutes},
    server::L7Config,
    tls::{SniResolver, certified_key, server_config},
};
use crate::{
    backend::BackendSet,
    plan::{Site, SourceRanges},
};

/// A built configuration and the problems found, by object name.
pub(crate) struct BuiltL7 {
    /// The configuration, unless TLS could not be set up at all.
    pub config: Result<L7Config, rustls::Error>,
    /// `(object, problem)`: unknown backends, unusable certificates.
    pub problems: Vec<(String, String)>,
}

/// Builds the configuration of a listener serving `sites`; `backend` gives
/// the node set of an object's backend key (none = unknown key).
pub(crate) fn build_l7(
    sites: &[Site],
    tls: bool,
    backend: &mut impl FnMut(&Site, &str) -> Option<Arc<BackendSet>>,
    provider: &Arc<CryptoProvider>,
) -> BuiltL7 {
    let mut routes = RouteTable::default();
    let mut resolver = SniResolver::default();
    let mut problems = Vec::new();
    for site in sites {
        let mut lookup = |name: &str, problems: &mut Vec<(String, String)>| {
            let set = backend(site, name);
            if set.is_none() {
                problems.push((site.owner.clone(), format!("unknown backend {name:?}")));
            }
            set
        };
        let default_backend = site
            .l7
            .default_backend
            .as_deref()
            .and_then(|name| lookup(name, &mut problems));
        let idx = routes.add_site(SiteRoutes {
            ssl_redirect: site.l7.ssl_redirect,
            ranges: site.ranges.clone(),
            default_backend,
        });
        for rule in &site.l7.rules {
            for p in &rule.paths {
                if let Some(set) = lookup(&p.backend, &mut problems) {
                    // Ingress `ImplementationSpecific` is served as `Prefix`.
                    let exact = p.path_type == "Exact";
                    routes.add_path(idx, rule.host.as_deref(), &p.path, exact, set);
                }
            }
        }
        if tls {
            for m in &site.tls {
                match certified_key(m, provider) {
                    Ok(k) => resolver.add(&m.hosts, Arc::new(k)),
                    Err(e) => problems.push((site.owner.clone(), e.to_string())),
                }
            }
        }
    }
    let ranges: Vec<&SourceRanges> = sites.iter().map(|s| &s.ranges).collect();
    let ranges = SourceRanges::union(&ranges);
    let config = if tls {
        server_config(resolver, provider.clone()).map(|c| L7Config {
            routes,
            tls: Some(c),
            ranges,
        })
    } else {
        Ok(L7Config {
            routes,
            tls: None,
            ranges,
        })
    };
    BuiltL7 { config, problems }
}
