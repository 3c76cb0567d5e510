//! Resource links: parsing the full, project-relative and scope-relative
//! URLs clients send, and rendering stored links against the base URL of
//! the request being answered.
//!
//! Stored resources keep links as a marker plus the relative path
//! (`projects/p/global/urlMaps/m`), so the same store answers clients that
//! reach the emulator under different host names.

use serde_json::Value;

/// Prefix of a stored link; never valid in client input text.
pub const MARK: &str = "\u{1}";

/// A stored link for a relative path.
pub fn stored(rel: &str) -> Value {
    Value::String(format!("{MARK}{rel}"))
}

/// The relative path of a stored link value, if it is one.
pub fn as_rel(value: &Value) -> Option<&str> {
    value.as_str().and_then(|s| s.strip_prefix(MARK))
}

/// Parses a link in any form the real API accepts into a relative path:
/// `https://host/compute/v1/projects/p/...`, `projects/p/...`, or
/// `global/...`, `regions/r/...`, `zones/z/...` (relative to `project`).
pub fn parse(link: &str, project: &str) -> Option<String> {
    let rest = if link.starts_with("http://") || link.starts_with("https://") {
        let at = link.find("/compute/v1/")?;
        link[at + "/compute/v1/".len()..].to_owned()
    } else if link.starts_with("projects/") {
        link.to_owned()
    } else if ["global/", "regions/", "zones/"]
        .iter()
        .any(|p| link.starts_with(p))
    {
        format!("projects/{project}/{link}")
    } else {
        return None;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) || segs.first() != Some(&"projects") {
        return None;
    }
    let ok = match segs.len() {
        4 => matches!(segs[2], "regions" | "zones"),
        5 => segs[2] == "global",
        6 => matches!(segs[2], "regions" | "zones"),
        _ => false,
    };
    ok.then_some(rest)
}

/// A relative path split into (scope path, collection, name):
/// `projects/p/regions/r/forwardingRules/x` -> (`projects/p/regions/r`, `forwardingRules`, `x`).
pub fn split(rel: &str) -> Option<(&str, &str, &str)> {
    let (head, name) = rel.rsplit_once('/')?;
    let (scope, collection) = head.rsplit_once('/')?;
    Some((scope, collection, name))
}

/// Replaces every stored link in `value` by a full URL under `base`
/// (`http://host:port/compute/v1/`) and drops hidden `_` keys.
pub fn render(value: &mut Value, base: &str) {
    match value {
        Value::String(s) => {
            if let Some(rel) = s.strip_prefix(MARK) {
                *s = format!("{base}{rel}");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| render(v, base)),
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('_'));
            map.values_mut().for_each(|v| render(v, base));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_link_form() {
        let want = Some("projects/p/global/healthChecks/hc".to_owned());
        assert_eq!(
            parse(
                "https://compute.googleapis.com/compute/v1/projects/p/global/healthChecks/hc",
                "x"
            ),
            want
        );
        assert_eq!(parse("projects/p/global/healthChecks/hc", "x"), want);
        assert_eq!(parse("global/healthChecks/hc", "p"), want);
        assert_eq!(
            parse("zones/us-east1-b", "p"),
            Some("projects/p/zones/us-east1-b".to_owned())
        );
        assert_eq!(parse("10.0.0.1", "p"), None);
        assert_eq!(parse("global/healthChecks/", "p"), None);
        assert_eq!(parse("regions/r/a/b/c", "p"), None);
    }

    #[test]
    fn render_builds_urls_and_hides_internal_keys() {
        let mut v =
            serde_json::json!({"a": stored("projects/p/global/x/y"), "_h": 1, "n": "plain"});
        render(&mut v, "http://h/compute/v1/");
        assert_eq!(
            v,
            serde_json::json!({"a": "http://h/compute/v1/projects/p/global/x/y", "n": "plain"})
        );
    }
}
