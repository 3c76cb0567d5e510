//! The URL map of an Ingress: host rules and path matchers built from the
//! desired routes, in a form that compares equal to what Compute Engine
//! returns, so a resync that changes nothing writes nothing.
//!
//! Path rules follow Compute Engine's matching, which is longest-match as
//! the Ingress API asks: a Prefix path `/foo` becomes the two rules `/foo`
//! and `/foo/*` (element-wise, so `/foobar` does not match), a prefix that
//! already ends in `/` (the GCE-style `/foo/*`, and the seed's `/*`) keeps
//! its single `/*` rule, and an Exact path is a rule without `*`, which
//! Compute Engine matches exactly.

use std::collections::BTreeSet;

use gantry_model::desired::{L7Path, L7Spec, PathMatch};
use google_cloud_compute_v1::model::{
    HostRule, HttpFaultAbort, HttpFaultInjection, HttpRedirectAction, HttpRouteAction, PathMatcher,
    PathRule, UrlMap, WeightedBackendService,
};

/// The host that matches every request, for rules without a host.
pub const ANY_HOST: &str = "*";

/// What requests that match nothing more specific get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The backend service at this (relative) link.
    Service(String),
    /// A fixed `404` answered by the load balancer itself: a route action
    /// that aborts every request with 404 before it reaches the (relative)
    /// backend service link it names, which the API requires to be set.
    NotFound(String),
    /// A redirect to the same URL over HTTPS (`ssl-redirect`).
    RedirectHttps,
}

/// One path rule: paths as Compute Engine matches them, to a service link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Path patterns (`/foo`, `/foo/*`).
    pub paths: Vec<String>,
    /// Relative link of the backend service.
    pub service: String,
}

/// One path matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// Its name, referenced from the host rule.
    pub name: String,
    /// Requests of its hosts that no path rule matches.
    pub fallback: Fallback,
    /// Path rules.
    pub rules: Vec<Rule>,
}

/// The routing content of a URL map (everything Gantry sets but the name
/// and description).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    /// Requests whose host no host rule names.
    pub fallback: Fallback,
    /// `(hosts, path matcher name)`.
    pub host_rules: Vec<(Vec<String>, String)>,
    /// Path matchers, in host-rule order.
    pub matchers: Vec<Matcher>,
}

/// The Compute Engine patterns of one Ingress path.
pub fn patterns(path: &L7Path) -> Vec<String> {
    match path.path_match {
        PathMatch::Exact => vec![path.path.clone()],
        PathMatch::Prefix if path.path.ends_with('/') => vec![format!("{}*", path.path)],
        PathMatch::Prefix => vec![path.path.clone(), format!("{}/*", path.path)],
    }
}

/// Routes for `spec`; `service(i)` is the relative link of backend `i`'s
/// backend service and `fallback` what unmatched requests get.
pub fn routes(spec: &L7Spec, service: impl Fn(usize) -> String, fallback: &Fallback) -> Routes {
    // Rules for the same host merge; a rule without a host applies to every
    // host, so its paths are also added (after the host's own) to each
    // named host's matcher, since Compute Engine stops at the first host
    // rule that matches.
    let mut hosts: Vec<(String, Vec<&L7Path>)> = Vec::new();
    for rule in &spec.rules {
        let host = rule.host.clone().unwrap_or_else(|| ANY_HOST.to_string());
        match hosts.iter_mut().find(|(h, _)| *h == host) {
            Some((_, paths)) => paths.extend(rule.paths.iter()),
            None => hosts.push((host, rule.paths.iter().collect())),
        }
    }
    let any: Vec<&L7Path> = hosts
        .iter()
        .find(|(h, _)| h == ANY_HOST)
        .map(|(_, p)| p.clone())
        .unwrap_or_default();
    let mut host_rules = Vec::new();
    let mut matchers = Vec::new();
    for (i, (host, own)) in hosts.iter().enumerate() {
        let name = format!("host{i}");
        let extra = if host == ANY_HOST { &[][..] } else { &any[..] };
        let mut seen = BTreeSet::new();
        let mut rules = Vec::new();
        for path in own.iter().chain(extra.iter()) {
            // Compute Engine refuses a pattern twice in one matcher; the
            // first (Ingress order, own host first) wins.
            let paths: Vec<String> = patterns(path)
                .into_iter()
                .filter(|p| seen.insert(p.clone()))
                .collect();
            if !paths.is_empty() {
                rules.push(Rule {
                    paths,
                    service: service(path.backend),
                });
            }
        }
        host_rules.push((vec![host.clone()], name.clone()));
        matchers.push(Matcher {
            name,
            fallback: fallback.clone(),
            rules,
        });
    }
    Routes {
        fallback: fallback.clone(),
        host_rules,
        matchers,
    }
}

/// The part of a link from `projects/` on, so links compare equal whatever
/// endpoint answered them.
pub fn relative(link: &str) -> String {
    match link.find("projects/") {
        Some(at) => link[at..].to_string(),
        None => link.to_string(),
    }
}

fn not_found_action(service: &str) -> HttpRouteAction {
    HttpRouteAction::new()
        .set_weighted_backend_services([WeightedBackendService::new()
            .set_backend_service(service.to_string())
            .set_weight(100_u32)])
        .set_fault_injection_policy(
            HttpFaultInjection::new().set_abort(
                HttpFaultAbort::new()
                    .set_http_status(404_u32)
                    .set_percentage(100.0),
            ),
        )
}

fn redirect_https() -> HttpRedirectAction {
    HttpRedirectAction::new().set_https_redirect(true)
}

/// Sets a URL map's or a path matcher's default fields; the closures are the
/// setters of `defaultService`, `defaultRouteAction` and `defaultUrlRedirect`.
fn write_fallback<T>(
    target: T,
    fallback: &Fallback,
    service: impl FnOnce(T, String) -> T,
    action: impl FnOnce(T, HttpRouteAction) -> T,
    redirect: impl FnOnce(T, HttpRedirectAction) -> T,
) -> T {
    match fallback {
        Fallback::Service(link) => service(target, link.clone()),
        Fallback::NotFound(link) => action(target, not_found_action(link)),
        Fallback::RedirectHttps => redirect(target, redirect_https()),
    }
}

/// Writes `routes` into `map`, replacing whatever routing it had.
pub fn write(map: UrlMap, routes: &Routes) -> UrlMap {
    let map = map
        .set_or_clear_default_service(None::<String>)
        .set_or_clear_default_route_action(None::<HttpRouteAction>)
        .set_or_clear_default_url_redirect(None::<HttpRedirectAction>);
    let map = write_fallback(
        map,
        &routes.fallback,
        UrlMap::set_default_service,
        UrlMap::set_default_route_action,
        UrlMap::set_default_url_redirect,
    );
    let host_rules = routes.host_rules.iter().map(|(hosts, matcher)| {
        HostRule::new()
            .set_hosts(hosts.clone())
            .set_path_matcher(matcher.clone())
    });
    let matchers = routes.matchers.iter().map(|m| {
        let matcher =
            PathMatcher::new()
                .set_name(m.name.clone())
                .set_path_rules(m.rules.iter().map(|r| {
                    PathRule::new()
                        .set_paths(r.paths.clone())
                        .set_service(r.service.clone())
                }));
        write_fallback(
            matcher,
            &m.fallback,
            PathMatcher::set_default_service,
            PathMatcher::set_default_route_action,
            PathMatcher::set_default_url_redirect,
        )
    });
    map.set_host_rules(host_rules).set_path_matchers(matchers)
}

/// The fallback as Compute Engine holds it, if it is one Gantry writes.
fn read_fallback(
    service: Option<&String>,
    action: Option<&HttpRouteAction>,
    redirect: Option<&HttpRedirectAction>,
) -> Option<Fallback> {
    match (service, action, redirect) {
        (Some(link), None, None) => Some(Fallback::Service(relative(link))),
        (None, Some(action), None) => {
            let [weighted] = action.weighted_backend_services.as_slice() else {
                return None;
            };
            let abort = action
                .fault_injection_policy
                .as_ref()
                .and_then(|f| f.abort.as_ref())?;
            let fixed = abort.http_status == Some(404) && abort.percentage == Some(100.0);
            let link = weighted.backend_service.as_ref()?;
            fixed.then(|| Fallback::NotFound(relative(link)))
        }
        (None, None, Some(redirect)) => {
            (redirect.https_redirect == Some(true)).then_some(Fallback::RedirectHttps)
        }
        _ => None,
    }
}

/// The routes an existing URL map holds, or `None` when it holds something
/// Gantry never writes (so it differs from any wanted state).
pub fn read(map: &UrlMap) -> Option<Routes> {
    let fallback = read_fallback(
        map.default_service.as_ref(),
        map.default_route_action.as_ref(),
        map.default_url_redirect.as_ref(),
    )?;
    let host_rules = map
        .host_rules
        .iter()
        .map(|h| Some((h.hosts.clone(), h.path_matcher.clone()?)))
        .collect::<Option<Vec<_>>>()?;
    let matchers = map
        .path_matchers
        .iter()
        .map(|m| {
            Some(Matcher {
                name: m.name.clone()?,
                fallback: read_fallback(
                    m.default_service.as_ref(),
                    m.default_route_action.as_ref(),
                    m.default_url_redirect.as_ref(),
                )?,
                rules: m
                    .path_rules
                    .iter()
                    .map(|r| {
                        Some(Rule {
                            paths: r.paths.clone(),
                            service: relative(r.service.as_ref()?),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Routes {
        fallback,
        host_rules,
        matchers,
    })
}

#[cfg(test)]
mod tests {
    use gantry_model::desired::{L7Backend, L7Options, L7Rule};

    use super::*;

    fn path(p: &str, how: PathMatch, backend: usize) -> L7Path {
        L7Path {
            path: p.into(),
            path_match: how,
            backend,
        }
    }

    fn spec(rules: Vec<L7Rule>) -> L7Spec {
        let backend = |s: &str| L7Backend {
            namespace: "default".into(),
            service: s.into(),
            port: 80,
            node_port: 30080,
        };
        L7Spec {
            rules,
            default_backend: None,
            backends: vec![backend("a"), backend("b")],
            health_checks: vec![],
            nodes: vec![],
            tls: vec![],
            options: L7Options::default(),
        }
    }

    fn link(i: usize) -> String {
        format!("projects/p/global/backendServices/be{i}")
    }

    #[test]
    fn patterns_per_match() {
        let cases = [
            ("/", PathMatch::Prefix, vec!["/*"]),
            ("/foo/", PathMatch::Prefix, vec!["/foo/*"]),
            ("/foo", PathMatch::Prefix, vec!["/foo", "/foo/*"]),
            ("/foo", PathMatch::Exact, vec!["/foo"]),
            ("/", PathMatch::Exact, vec!["/"]),
        ];
        for (p, how, want) in cases {
            assert_eq!(patterns(&path(p, how, 0)), want, "{p} {how:?}");
        }
    }

    #[test]
    fn hosts_merge_and_wildcard_paths_reach_every_host() {
        let spec = spec(vec![
            L7Rule {
                host: Some("a.example.com".into()),
                paths: vec![path("/api", PathMatch::Prefix, 1)],
            },
            L7Rule {
                host: None,
                paths: vec![
                    path("/", PathMatch::Prefix, 0),
                    path("/api", PathMatch::Exact, 0),
                ],
            },
            L7Rule {
                host: Some("a.example.com".into()),
                paths: vec![path("/login", PathMatch::Exact, 0)],
            },
        ]);
        let fallback = Fallback::NotFound(link(0));
        let r = routes(&spec, link, &fallback);
        assert_eq!(
            r.host_rules,
            vec![
                (vec!["a.example.com".to_string()], "host0".to_string()),
                (vec!["*".to_string()], "host1".to_string()),
            ]
        );
        let a = &r.matchers[0];
        assert_eq!(
            a.rules,
            vec![
                Rule {
                    paths: vec!["/api".into(), "/api/*".into()],
                    service: link(1)
                },
                Rule {
                    paths: vec!["/login".into()],
                    service: link(0)
                },
                // `/api` (Exact, from the any-host rule) is already the host's own.
                Rule {
                    paths: vec!["/*".into()],
                    service: link(0)
                },
            ]
        );
        assert_eq!(r.matchers[1].rules.len(), 2);
    }

    #[test]
    fn round_trips_through_the_api_shape() {
        let spec = spec(vec![L7Rule {
            host: Some("testhost.com".into()),
            paths: vec![path("/", PathMatch::Prefix, 0)],
        }]);
        for fallback in [
            Fallback::Service(link(1)),
            Fallback::NotFound(link(0)),
            Fallback::RedirectHttps,
        ] {
            let r = routes(&spec, link, &fallback);
            let map = write(UrlMap::new().set_name("m"), &r);
            assert_eq!(read(&map), Some(r), "{fallback:?}");
        }
    }

    #[test]
    fn full_links_compare_as_relative() {
        let map = UrlMap::new().set_default_service(
            "https://compute.example/compute/v1/projects/p/global/backendServices/be0",
        );
        assert_eq!(
            read(&map).map(|r| r.fallback),
            Some(Fallback::Service(link(0)))
        );
        assert_eq!(read(&UrlMap::new()), None);
    }
}
