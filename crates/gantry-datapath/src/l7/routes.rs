//! Host and path routing of the Ingresses merged on one listener.
//!
//! Hosts match exactly first, then by `*.` wildcard (one label, as the
//! Ingress spec says), then rules without a host. The first level that
//! matches decides; within it the longest matching path wins, `Exact`
//! before `Prefix` at equal length. `Prefix` matches whole path elements:
//! `/foo` matches `/foo` and `/foo/bar`, not `/foobar`. Nothing matching
//! means the default backend of the object whose host matched (or of the
//! first object that has one), else 404.

use std::{collections::HashMap, sync::Arc};

use crate::{backend::BackendSet, plan::SourceRanges};

/// One object on the listener.
#[derive(Debug)]
pub(crate) struct SiteRoutes {
    /// Redirect plain HTTP to HTTPS.
    pub ssl_redirect: bool,
    /// Who may reach it.
    pub ranges: SourceRanges,
    /// Where unmatched requests go.
    pub default_backend: Option<Arc<BackendSet>>,
}

#[derive(Debug)]
struct PathRule {
    /// Normalised path (trailing `/` removed for prefixes, except `/`).
    path: String,
    exact: bool,
    site: usize,
    backend: Arc<BackendSet>,
}

impl PathRule {
    fn matches(&self, path: &str) -> bool {
        if self.exact {
            return path == self.path;
        }
        self.path == "/"
            || path == self.path
            || (path.starts_with(&self.path) && path.as_bytes().get(self.path.len()) == Some(&b'/'))
    }
}

#[derive(Debug, Default)]
struct HostRules {
    paths: Vec<PathRule>,
    /// The object that first claimed the host.
    site: usize,
}

/// Where a request goes.
#[derive(Debug)]
pub(crate) struct Routed<'a> {
    /// The object that handles it.
    pub site: &'a SiteRoutes,
    /// The nodes to send it to; none = 404.
    pub backend: Option<&'a Arc<BackendSet>>,
}

/// Routes of one listener.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    sites: Vec<SiteRoutes>,
    exact: HashMap<String, HostRules>,
    wildcard: HashMap<String, HostRules>,
    any: Option<HostRules>,
}

impl RouteTable {
    /// Adds an object; its rules come after those of objects added before.
    pub fn add_site(&mut self, site: SiteRoutes) -> usize {
        self.sites.push(site);
        self.sites.len() - 1
    }

    /// Adds a path rule of `site` under `host` (none = any host).
    pub fn add_path(
        &mut self,
        site: usize,
        host: Option<&str>,
        path: &str,
        exact: bool,
        backend: Arc<BackendSet>,
    ) {
        let rules = match host.map(str::to_ascii_lowercase) {
            None => self.any.get_or_insert_with(|| HostRules {
                paths: Vec::new(),
                site,
            }),
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => {
                    self.wildcard
                        .entry(suffix.to_owned())
                        .or_insert_with(|| HostRules {
                            paths: Vec::new(),
                            site,
                        })
                }
                None => self.exact.entry(h).or_insert_with(|| HostRules {
                    paths: Vec::new(),
                    site,
                }),
            },
        };
        let path = if path.is_empty() { "/" } else { path };
        let path = if exact || path == "/" {
            path
        } else {
            path.trim_end_matches('/')
        };
        let path = if path.is_empty() { "/" } else { path };
        rules.paths.push(PathRule {
            path: path.to_owned(),
            exact,
            site,
            backend,
        });
    }

    /// Routes a request for `host` (without port) and `path`; none when the
    /// listener serves no object at all.
    pub fn route(&self, host: &str, path: &str) -> Option<Routed<'_>> {
        // Hosts are nearly always sent in lower case: copy only when not.
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        let rules = self
            .exact
            .get(host)
            .or_else(|| {
                let (_, parent) = host.split_once('.')?;
                self.wildcard.get(parent)
            })
            .or(self.any.as_ref());
        if let Some(rules) = rules {
            let best = rules
                .paths
                .iter()
                .filter(|r| r.matches(path))
                .max_by_key(|r| (r.path.len(), r.exact))
                .map(|r| (r.site, &r.backend));
            if let Some((site, backend)) = best {
                return Some(Routed {
                    site: &self.sites[site],
                    backend: Some(backend),
                });
            }
            let site = &self.sites[rules.site];
            if let Some(default) = &site.default_backend {
                return Some(Routed {
                    site,
                    backend: Some(default),
                });
            }
        }
        let site = self
            .sites
            .iter()
            .find(|s| s.default_backend.is_some())
            .or_else(|| rules.map(|r| &self.sites[r.site]))
            .or(self.sites.first())?;
        Some(Routed {
            site,
            backend: site.default_backend.as_ref(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::backend::Target;

    fn backend(name: &str) -> Arc<BackendSet> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        Arc::new(BackendSet::new(vec![Arc::new(Target::new(
            name.to_owned(),
            addr,
        ))]))
    }

    fn name(r: Option<Routed<'_>>) -> String {
        match r {
            Some(Routed {
                backend: Some(b), ..
            }) => b.candidates().next().expect("a node").node.clone(),
            Some(Routed { backend: None, .. }) => "404".into(),
            None => "none".into(),
        }
    }

    fn table(default: bool) -> RouteTable {
        let mut t = RouteTable::default();
        let s = t.add_site(SiteRoutes {
            ssl_redirect: false,
            ranges: SourceRanges::open(),
            default_backend: default.then(|| backend("default")),
        });
        t.add_path(s, Some("Example.com"), "/", false, backend("root"));
        t.add_path(s, Some("example.com"), "/foo", false, backend("foo-prefix"));
        t.add_path(s, Some("example.com"), "/foo", true, backend("foo-exact"));
        t.add_path(
            s,
            Some("example.com"),
            "/foo/bar/",
            false,
            backend("foobar"),
        );
        t.add_path(s, Some("*.example.com"), "/api", false, backend("wild-api"));
        t.add_path(s, None, "/any", true, backend("any"));
        t
    }

    #[test]
    fn paths_longest_exact_first_element_wise() {
        let t = table(false);
        let cases = [
            ("example.com", "/", "root"),
            ("example.com", "/foo", "foo-exact"),
            ("example.com", "/foo/", "foo-prefix"),
            ("example.com", "/foo/x", "foo-prefix"),
            ("example.com", "/foobar", "root"),
            ("example.com", "/foo/bar", "foobar"),
            ("example.com", "/foo/bar/baz", "foobar"),
            ("example.com", "/foo/barbaz", "foo-prefix"),
            ("EXAMPLE.COM", "/x", "root"),
        ];
        for (host, path, want) in cases {
            assert_eq!(name(t.route(host, path)), want, "{host}{path}");
        }
    }

    #[test]
    fn hosts_exact_then_wildcard_then_any() {
        let t = table(false);
        assert_eq!(name(t.route("a.example.com", "/api/v1")), "wild-api");
        assert_eq!(name(t.route("a.example.com", "/other")), "404");
        assert_eq!(
            name(t.route("a.b.example.com", "/api")),
            "404",
            "wildcard is one label"
        );
        assert_eq!(name(t.route("other.org", "/any")), "any");
        assert_eq!(name(t.route("other.org", "/any/x")), "404");
    }

    #[test]
    fn default_backend_catches_unmatched() {
        let t = table(true);
        assert_eq!(name(t.route("a.example.com", "/other")), "default");
        assert_eq!(name(t.route("other.org", "/")), "default");
        assert_eq!(name(t.route("example.com", "/foo")), "foo-exact");
        assert_eq!(name(RouteTable::default().route("x", "/")), "none");
    }
}
