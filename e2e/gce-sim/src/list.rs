//! List calls: `filter` (the AIP-160 subset Compute Engine accepts, plus
//! the older `field eq regex` form), `orderBy=name`, and `maxResults` /
//! `pageToken` paging.

use base64::Engine as _;
use serde_json::Value;

use crate::error::ApiError;

/// The list query parameters.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// `filter`.
    pub filter: Option<String>,
    /// `maxResults` (0..=500, default 500).
    pub max_results: Option<String>,
    /// `pageToken`.
    pub page_token: Option<String>,
    /// `orderBy`.
    pub order_by: Option<String>,
}

impl ListQuery {
    /// Reads the list parameters from a query string.
    pub fn parse(query: Option<&str>) -> Self {
        let mut out = Self::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let v = Some(v.into_owned());
            match &*k {
                "filter" => out.filter = v,
                "maxResults" => out.max_results = v,
                "pageToken" => out.page_token = v,
                "orderBy" => out.order_by = v,
                _ => {}
            }
        }
        out
    }
}

/// One page of a sorted list.
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Token for the next page, if there is one.
    pub next: Option<String>,
}

/// Filters and pages name-sorted rendered items.
pub fn page(items: Vec<Value>, query: &ListQuery) -> Result<Page<Value>, ApiError> {
    let keyed = items
        .into_iter()
        .map(|item| {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("");
            (name.to_owned(), item)
        })
        .collect();
    let page = page_by(keyed, query)?;
    Ok(Page {
        items: page.items.into_iter().map(|(_, v)| v).collect(),
        next: page.next,
    })
}

/// Filters and pages rendered items sorted by a key (the name, or
/// `scope/name` for aggregated lists); the page token names the last key.
pub fn page_by(
    items: Vec<(String, Value)>,
    query: &ListQuery,
) -> Result<Page<(String, Value)>, ApiError> {
    let max = match query.max_results.as_deref() {
        None | Some("") | Some("0") => 500,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n <= 500 => n,
            _ => {
                return Err(ApiError::invalid_field(
                    "maxResults",
                    text,
                    "Must be less than or equal to 500",
                ));
            }
        },
    };
    match query.order_by.as_deref() {
        None | Some("") | Some("name") => {}
        Some(other) => {
            return Err(ApiError::invalid_field(
                "orderBy",
                other,
                "Sorting is only supported by name.",
            ));
        }
    }
    let filter = match query.filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(Filter::parse(text)?),
    };
    let after = match query.page_token.as_deref() {
        None | Some("") => None,
        Some(token) => Some(decode_token(token)?),
    };
    let mut matching = items.into_iter().filter(|(key, item)| {
        after.as_deref().is_none_or(|a| key.as_str() > a)
            && filter.as_ref().is_none_or(|f| f.matches(item))
    });
    let page: Vec<(String, Value)> = matching.by_ref().take(max).collect();
    let more = matching.next().is_some();
    let next = match page.last() {
        Some((key, _)) if more => {
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("n:{key}")))
        }
        _ => None,
    };
    Ok(Page { items: page, next })
}

fn decode_token(token: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("n:").map(str::to_owned))
        .ok_or_else(|| ApiError::invalid_field("pageToken", token, "Invalid page token."))
}

/// A parsed filter: a disjunction of conjunctions of comparisons.
#[derive(Debug)]
pub struct Filter {
    any_of: Vec<Vec<Comparison>>,
}

#[derive(Debug)]
enum Op {
    Eq,
    Ne,
    Has,
    Regex(bool),
}

#[derive(Debug)]
struct Comparison {
    field: String,
    op: Op,
    value: String,
    regex: Option<regex::Regex>,
}

impl Filter {
    /// Parses `name = x`, `labels.k = "v"`, `labels.k:*`, `a != b`,
    /// `name eq 'regex'`, expressions in parentheses joined by spaces,
    /// `AND` or `OR`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid_field("filter", text, "Invalid list filter expression.");
        let tokens = tokenize(text).ok_or_else(bad)?;
        let mut any_of = vec![Vec::new()];
        let mut i = 0;
        while i < tokens.len() {
            match tokens[i].as_str() {
                "AND" | "(" | ")" => i += 1,
                "OR" => {
                    any_of.push(Vec::new());
                    i += 1;
                }
                _ => {
                    let (cmp, used) = comparison(&tokens[i..]).ok_or_else(bad)?;
                    if let Some(last) = any_of.last_mut() {
                        last.push(cmp);
                    }
                    i += used;
                }
            }
        }
        if any_of.iter().any(Vec::is_empty) {
            return Err(bad());
        }
        Ok(Self { any_of })
    }

    /// Whether a rendered item matches.
    pub fn matches(&self, item: &Value) -> bool {
        self.any_of
            .iter()
            .any(|all| all.iter().all(|c| c.matches(item)))
    }
}

/// Splits into words, quoted strings, parentheses and operators.
fn tokenize(text: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | '\n' => {
                chars.next();
            }
            '(' | ')' | ':' => {
                out.push(c.to_string());
                chars.next();
            }
            '=' => {
                out.push("=".into());
                chars.next();
            }
            '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return None;
                }
                out.push("!=".into());
            }
            '"' | '\'' => {
                chars.next();
                let mut s = String::from("\"");
                loop {
                    match chars.next()? {
                        q if q == c => break,
                        '\\' => s.push(chars.next()?),
                        other => s.push(other),
                    }
                }
                out.push(s);
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if matches!(c, ' ' | '\t' | '\n' | '(' | ')' | '=' | '!' | ':') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Some(out)
}

fn unquote(token: &str) -> &str {
    token.strip_prefix('"').unwrap_or(token)
}

fn comparison(tokens: &[String]) -> Option<(Comparison, usize)> {
    let field = tokens.first()?.clone();
    let op = match tokens.get(1)?.as_str() {
        "=" => Op::Eq,
        "!=" => Op::Ne,
        ":" => Op::Has,
        "eq" => Op::Regex(true),
        "ne" => Op::Regex(false),
        _ => return None,
    };
    let value = unquote(tokens.get(2)?).to_owned();
    if matches!(value.as_str(), "(" | ")") {
        return None;
    }
    let regex = match op {
        Op::Regex(_) => Some(regex::Regex::new(&format!("^(?:{value})$")).ok()?),
        _ => None,
    };
    Some((
        Comparison {
            field,
            op,
            value,
            regex,
        },
        3,
    ))
}

impl Comparison {
    fn matches(&self, item: &Value) -> bool {
        let mut current = Some(item);
        for part in self.field.split('.') {
            current = current.and_then(|v| v.get(part));
        }
        let text = current.map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        match (&self.op, text) {
            (Op::Has, t) if self.value == "*" => t.is_some(),
            (Op::Eq | Op::Has, Some(t)) => glob(&self.value, &t),
            (Op::Ne, Some(t)) => !glob(&self.value, &t),
            (Op::Ne, None) => true,
            (Op::Regex(want), Some(t)) => {
                self.regex.as_ref().is_some_and(|r| r.is_match(&t)) == *want
            }
            (Op::Regex(want), None) => !*want,
            _ => false,
        }
    }
}

/// Equality with `*` as a wildcard at either end (AIP-160 string matching).
fn glob(pattern: &str, text: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(rest), _) if rest.ends_with('*') => text.contains(&rest[..rest.len() - 1]),
        (Some(rest), _) => text.ends_with(rest),
        (None, Some(rest)) => text.starts_with(rest),
        (None, None) => text == pattern,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn filters_by_name_labels_and_presence() {
        let item = json!({"name": "web-1", "labels": {"owner": "gantry"}, "port": 80});
        let check = |f: &str| Filter::parse(f).map(|f| f.matches(&item));
        assert_eq!(check("name = web-1"), Ok(true));
        assert_eq!(check("name = \"web-2\""), Ok(false));
        assert_eq!(check("labels.owner = gantry"), Ok(true));
        assert_eq!(check("labels.owner:*"), Ok(true));
        assert_eq!(check("labels.other:*"), Ok(false));
        assert_eq!(check("name != web-1"), Ok(false));
        assert_eq!(check("(name = web-1) (port = 80)"), Ok(true));
        assert_eq!(check("(name = x) OR (port = 80)"), Ok(true));
        assert_eq!(check("name = web-*"), Ok(true));
        assert_eq!(check("name eq 'web-.*'"), Ok(true));
        assert_eq!(check("name ne 'web-.*'"), Ok(false));
        assert!(check("name =").is_err());
        assert!(check("= x").is_err());
    }
}
