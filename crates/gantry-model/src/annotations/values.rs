//! Value grammars: one strict allow-list parser per kind of annotation value.
//!
//! Every parser first rejects non-ASCII, control characters and over-long
//! input, then matches a grammar that admits only the characters the value
//! can need. Nothing that passes can carry `;`, `{`, `}`, `#`, `$`, quotes or
//! line breaks into anything downstream, whatever a provider later does with it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::AnnotationError;
use crate::desired::Scheme;

/// Longest accepted value for comma-separated lists.
const MAX_LIST: usize = 4096;
/// Longest accepted HTTP path.
pub const MAX_PATH: usize = 255;

fn err(key: &str, value: &str, reason: impl Into<String>) -> AnnotationError {
    AnnotationError::new(key, value, reason)
}

/// Reject what no grammar here admits: empty, too long, non-ASCII (so
/// Unicode look-alikes never pass for their ASCII twins) and control characters.
fn guard(key: &str, value: &str, max: usize) -> Result<(), AnnotationError> {
    if value.is_empty() {
        return Err(err(key, value, "must not be empty"));
    }
    if value.len() > max {
        return Err(err(key, value, format!("longer than {max} characters")));
    }
    if !value.is_ascii() {
        return Err(err(key, value, "only ASCII characters are allowed"));
    }
    if value.bytes().any(|b| b.is_ascii_control()) {
        return Err(err(key, value, "control characters are not allowed"));
    }
    Ok(())
}

/// Split a comma-separated list. Items are taken literally (no trimming), so
/// a stray space is an error rather than silently part of a value.
fn items<'v>(key: &str, value: &'v str) -> Result<Vec<&'v str>, AnnotationError> {
    guard(key, value, MAX_LIST)?;
    let items: Vec<&str> = value.split(',').collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(err(key, value, "empty item in comma-separated list"));
    }
    Ok(items)
}

/// An IPv4 or IPv6 address, nothing else (no brackets, zones or prefixes).
pub fn ip(key: &str, value: &str) -> Result<IpAddr, AnnotationError> {
    guard(key, value, 45)?;
    value
        .parse()
        .map_err(|_| err(key, value, "not an IPv4 or IPv6 address"))
}

/// `true` or `false`, lower case.
pub fn boolean(key: &str, value: &str) -> Result<bool, AnnotationError> {
    guard(key, value, 5)?;
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(err(key, value, "must be \"true\" or \"false\"")),
    }
}

/// `internet-facing` or `internal`.
pub fn scheme(key: &str, value: &str) -> Result<Scheme, AnnotationError> {
    guard(key, value, 16)?;
    match value {
        "internet-facing" => Ok(Scheme::InternetFacing),
        "internal" => Ok(Scheme::Internal),
        _ => Err(err(
            key,
            value,
            "must be \"internet-facing\" or \"internal\"",
        )),
    }
}

/// `v2` (true) or `none` (false).
pub fn proxy_protocol(key: &str, value: &str) -> Result<bool, AnnotationError> {
    guard(key, value, 4)?;
    match value {
        "v2" => Ok(true),
        "none" => Ok(false),
        _ => Err(err(key, value, "must be \"v2\" or \"none\"")),
    }
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A DNS-label-like key: 1-63 of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
pub fn shared_ip_key(key: &str, value: &str) -> Result<String, AnnotationError> {
    guard(key, value, 63)?;
    let b = value.as_bytes();
    let ok = b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        && b.first().copied().is_some_and(is_lower_alnum)
        && b.last().copied().is_some_and(is_lower_alnum);
    if !ok {
        return Err(err(
            key,
            value,
            "must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit",
        ));
    }
    Ok(value.to_string())
}

/// An RFC 1035 label: `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters
/// (the shape of a GCE resource name).
pub fn rfc1035_name(key: &str, value: &str) -> Result<String, AnnotationError> {
    guard(key, value, 63)?;
    let b = value.as_bytes();
    let ok = b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last().copied().is_some_and(is_lower_alnum);
    if !ok {
        return Err(err(
            key,
            value,
            "must be an RFC 1035 name: lower-case letters, digits and '-', starting with a letter, at most 63 characters",
        ));
    }
    Ok(value.to_string())
}

/// Comma-separated AWS subnet ids `subnet-[0-9a-f]{8,17}`; sorted, duplicates removed.
pub fn subnets(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    let mut out = Vec::new();
    for item in items(key, value)? {
        let hex = item.strip_prefix("subnet-").unwrap_or_default();
        let ok = (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if !ok {
            return Err(err(
                key,
                value,
                format!(
                    "{item:?} is not a subnet id (subnet- followed by 8 to 17 lower-case hex digits)"
                ),
            ));
        }
        out.push(item.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Characters allowed in an HTTP path: RFC 3986 unreserved and the sub-delims
/// that are harmless in every consumer, plus `/`, `:`, `@` and `%`-escapes.
/// Quotes, `;`, `$`, `#`, braces, backslash and spaces are left out on purpose.
pub(crate) fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'/'
                | b'%'
                | b':'
                | b'@'
                | b'!'
                | b'&'
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
        )
}

/// Check an absolute HTTP path: starts with `/`, allowed characters only,
/// `%` followed by two hex digits, no `.` or `..` segments. Used for
/// annotation values and for Ingress paths alike; the error is the reason.
pub fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with '/'".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("longer than {MAX_PATH} characters"));
    }
    let b = path.as_bytes();
    if let Some(bad) = b.iter().find(|&&c| !is_path_char(c)) {
        return Err(if bad.is_ascii_graphic() {
            format!("character {:?} is not allowed", char::from(*bad))
        } else {
            "only printable ASCII without spaces is allowed".into()
        });
    }
    for (i, &c) in b.iter().enumerate() {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3).unwrap_or_default();
            if hex.len() != 2 || !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err("'%' must be followed by two hex digits".into());
            }
        }
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("'.' and '..' segments are not allowed".into());
    }
    Ok(())
}

/// An absolute HTTP path for health checks (see [`check_path`]), optionally
/// with a query of the same characters plus `/` and `?`.
pub fn http_path(key: &str, value: &str) -> Result<String, AnnotationError> {
    guard(key, value, MAX_PATH)?;
    let (path, query) = value.split_once('?').unwrap_or((value, ""));
    check_path(path).map_err(|reason| err(key, value, reason))?;
    if let Some(bad) = query.bytes().find(|&c| !is_path_char(c) && c != b'?') {
        return Err(err(
            key,
            value,
            if bad.is_ascii_graphic() {
                format!("character {:?} is not allowed", char::from(bad))
            } else {
                "only printable ASCII without spaces is allowed".into()
            },
        ));
    }
    Ok(value.to_string())
}

/// One ACM certificate ARN:
/// `arn:<aws|aws-cn|aws-us-gov>:acm:<region>:<12 digits>:certificate/<uuid>`.
fn certificate_arn(item: &str) -> bool {
    let parts: Vec<&str> = item.split(':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let region_ok = {
        // e.g. us-east-1, ap-southeast-2, us-gov-west-1: letters-...-digits.
        let words: Vec<&str> = region.split('-').collect();
        words.len() >= 3
            && words[..words.len() - 1]
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|c| c.is_ascii_lowercase()))
            && words.last().is_some_and(|w| {
                !w.is_empty() && w.len() <= 2 && w.bytes().all(|c| c.is_ascii_digit())
            })
    };
    let id_ok = resource.strip_prefix("certificate/").is_some_and(|id| {
        let groups: Vec<&str> = id.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && id
                .bytes()
                .all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    });
    *arn == "arn"
        && matches!(*partition, "aws" | "aws-cn" | "aws-us-gov")
        && *service == "acm"
        && region_ok
        && account.len() == 12
        && account.bytes().all(|c| c.is_ascii_digit())
        && id_ok
}

/// Comma-separated ACM certificate ARNs, order kept, duplicates removed
/// (the first is the listener's default certificate).
pub fn certificate_arns(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    let mut out: Vec<String> = Vec::new();
    for item in items(key, value)? {
        if !certificate_arn(item) {
            return Err(err(
                key,
                value,
                format!(
                    "{item:?} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
                ),
            ));
        }
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    Ok(out)
}

/// Comma-separated CIDRs as in the legacy
/// `service.beta.kubernetes.io/load-balancer-source-ranges`: spaces around
/// items are trimmed as upstream does; host bits are cleared.
pub fn cidr_list(key: &str, value: &str) -> Result<Vec<IpNet>, AnnotationError> {
    guard(key, value, MAX_LIST)?;
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim_matches(' ');
        let net: IpNet = item
            .parse()
            .map_err(|_| err(key, value, format!("{item:?} is not a CIDR")))?;
        out.push(net.trunc());
    }
    Ok(out)
}
