//! Label and field selectors with the real server's grammar: `=`, `==`,
//! `!=`, `in (...)`, `notin (...)`, `key`, `!key`, `>`/`<` for labels;
//! `=`, `==`, `!=` on an allow-listed set of fields.

use serde_json::Value;

use crate::{error::ApiError, registry::ResourceType};

#[derive(Debug, Clone, PartialEq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    reqs: Vec<(String, LabelOp)>,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    src: &'a str,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            self.chars.next();
        }
    }

    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let start = self.chars.peek().map_or(self.src.len(), |(i, _)| *i);
        let mut end = start;
        while let Some(&(i, c)) = self.chars.peek() {
            if is_key_char(c) {
                end = i + c.len_utf8();
                self.chars.next();
            } else {
                break;
            }
        }
        &self.src[start..end]
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.peek().map(|(_, c)| *c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.chars.next();
            true
        } else {
            false
        }
    }
}

impl LabelSelector {
    /// Parses the `labelSelector` query string.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad =
            |why: &str| ApiError::bad_request(format!("unable to parse requirement: {why}: {s:?}"));
        let mut lx = Lexer {
            chars: s.char_indices().peekable(),
            src: s,
        };
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { reqs });
        }
        loop {
            let negated = lx.eat('!');
            let key = lx.word();
            if key.is_empty() {
                return Err(bad("found '', expected: identifier"));
            }
            let op = if negated {
                LabelOp::NotExists
            } else {
                match lx.peek() {
                    None | Some(',') => LabelOp::Exists,
                    Some('=') => {
                        lx.chars.next();
                        lx.eat('=');
                        LabelOp::Eq(lx.word().to_string())
                    }
                    Some('!') => {
                        lx.chars.next();
                        if !lx.eat('=') {
                            return Err(bad("expected '=' after '!'"));
                        }
                        LabelOp::NotEq(lx.word().to_string())
                    }
                    Some('>') | Some('<') => {
                        let gt = lx.eat('>');
                        if !gt {
                            lx.eat('<');
                        }
                        let n: i64 = lx.word().parse().map_err(|_| {
                            bad("for 'Gt', 'Lt' operators, the value must be an integer")
                        })?;
                        if gt { LabelOp::Gt(n) } else { LabelOp::Lt(n) }
                    }
                    Some(_) => {
                        let w = lx.word();
                        let set_op = match w {
                            "in" => true,
                            "notin" => false,
                            other => {
                                return Err(bad(&format!(
                                    "found '{other}', expected: in, notin, =, ==, !=, gt, lt"
                                )));
                            }
                        };
                        if !lx.eat('(') {
                            return Err(bad("expected '('"));
                        }
                        let mut values = Vec::new();
                        loop {
                            if lx.eat(')') {
                                break;
                            }
                            let v = lx.word();
                            values.push(v.to_string());
                            if lx.eat(',') {
                                continue;
                            }
                            if lx.eat(')') {
                                break;
                            }
                            return Err(bad("expected ',' or ')'"));
                        }
                        if set_op {
                            LabelOp::In(values)
                        } else {
                            LabelOp::NotIn(values)
                        }
                    }
                }
            };
            reqs.push((key.to_string(), op));
            match lx.peek() {
                None => break,
                Some(',') => {
                    lx.chars.next();
                }
                Some(c) => {
                    return Err(bad(&format!(
                        "found '{c}', expected: ',' or 'end of string'"
                    )));
                }
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        if self.reqs.is_empty() {
            return true;
        }
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|(key, op)| match op {
            LabelOp::Eq(v) => get(key) == Some(v.as_str()),
            LabelOp::NotEq(v) => get(key) != Some(v.as_str()),
            LabelOp::In(vs) => get(key).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelOp::NotIn(vs) => get(key).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelOp::Exists => get(key).is_some(),
            LabelOp::NotExists => get(key).is_none(),
            LabelOp::Gt(n) => get(key)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelOp::Lt(n) => get(key)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

impl FieldSelector {
    /// Parses `fieldSelector` and checks every field is selectable on `rt`.
    pub fn parse(s: &str, rt: &ResourceType) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { reqs });
        }
        for part in split_unescaped(s, ',') {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = canonical_field(field.trim(), rt);
            let allowed = field == "metadata.name"
                || field == "metadata.namespace"
                || rt.field_selectors.iter().any(|f| f == field);
            if !allowed {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            reqs.push((field.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    /// Whether the object's selected fields satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(field, eq, want)| {
            let have = field_value(obj, field);
            (have == *want) == *eq
        })
    }

    /// The `metadata.name` an equality requirement pins, used to shortcut lookups.
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(f, eq, _)| *eq && f == "metadata.name")
            .map(|(_, _, v)| v.as_str())
    }
}

/// The field label a request names, as the real server converts it:
/// `spec.host` is the legacy name of a Pod's `spec.nodeName`, and the
/// `events.k8s.io` names map onto the stored core Event fields.
fn canonical_field<'a>(field: &'a str, rt: &ResourceType) -> &'a str {
    match (rt.group.as_str(), rt.plural.as_str(), field) {
        ("", "pods", "spec.host") => "spec.nodeName",
        ("events.k8s.io", "events", f) => crate::events::core_field_label(f),
        _ => field,
    }
}

/// What a missing field selects as: the Go zero value of its typed field.
fn zero_value(field: &str) -> &'static str {
    match field {
        "spec.hostNetwork" | "spec.unschedulable" => "false",
        "status.replicas" | "status.successful" => "0",
        _ => "",
    }
}

/// The string form of a selectable field (missing fields select as their zero value).
fn field_value(obj: &Value, field: &str) -> String {
    if let Some(v) = crate::events::selectable(obj, field) {
        return v;
    }
    let mut cur = obj;
    for seg in field.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return zero_value(field).to_string(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => zero_value(field).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Both selectors of a list or watch request.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    /// The label selector.
    pub labels: LabelSelector,
    /// The field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app in (db, web)", true),
            ("app notin (db,web)", false),
            ("app notin (db)", true),
            ("missing notin (db)", true),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("n>4", true),
            ("n<4", false),
            ("", true),
        ];
        for (sel, want) in cases {
            let parsed = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e:?}"));
            assert_eq!(parsed.matches(&o), want, "{sel}");
        }
    }

    #[test]
    fn label_parse_errors() {
        for bad in ["app in db", "app=web,", "=x", "app !x"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
