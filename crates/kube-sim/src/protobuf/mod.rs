//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`) into JSON, for the kinds that
//! client-go's typed clients write that way in practice: Helm's release
//! Secrets, and `kubectl create` of Secrets, ConfigMaps, Namespaces and
//! Services. Field numbers follow the published `generated.proto` files.
//! Responses are always JSON, which those clients accept.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Time,
    IntOrString,
    RawJson,
    MapStr,
    MapBytes,
    Msg(&'static [Field]),
}

#[derive(Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn rep(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const MANAGED_FIELDS: &[Field] = &[
    f(1, "manager", Ty::Str),
    f(2, "operation", Ty::Str),
    f(3, "apiVersion", Ty::Str),
    f(4, "time", Ty::Time),
    f(6, "fieldsType", Ty::Str),
    f(7, "fieldsV1", Ty::RawJson),
    f(8, "subresource", Ty::Str),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::Int),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    rep(14, "finalizers", Ty::Str),
    rep(17, "managedFields", Ty::Msg(MANAGED_FIELDS)),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

const NAMESPACE_SPEC: &[Field] = &[rep(1, "finalizers", Ty::Str)];
const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::Int),
    f(6, "appProtocol", Ty::Str),
];

const SERVICE_SPEC: &[Field] = &[
    rep(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    rep(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(8, "loadBalancerIP", Ty::Str),
    rep(9, "loadBalancerSourceRanges", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    f(12, "healthCheckNodePort", Ty::Int),
    f(13, "publishNotReadyAddresses", Ty::Bool),
    f(17, "ipFamilyPolicy", Ty::Str),
    rep(18, "clusterIPs", Ty::Str),
    rep(19, "ipFamilies", Ty::Str),
    f(20, "allocateLoadBalancerNodePorts", Ty::Bool),
    f(21, "loadBalancerClass", Ty::Str),
    f(22, "internalTrafficPolicy", Ty::Str),
    f(23, "trafficDistribution", Ty::Str),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
];

fn schema_for(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    match (api_version, kind) {
        ("v1", "Secret") => Some(SECRET),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "Service") => Some(SERVICE),
        _ => None,
    }
}

fn bad(what: &str) -> ApiError {
    ApiError::bad_request(format!("unable to decode protobuf body: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skip,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| bad("truncated varint"))?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(bad("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ApiError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.buf = self.buf.get(8..).ok_or_else(|| bad("truncated fixed64"))?;
                Wire::Skip
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length overflow"))?;
                if len > self.buf.len() {
                    return Err(bad("truncated field"));
                }
                let (data, rest) = self.buf.split_at(len);
                self.buf = rest;
                Wire::Bytes(data)
            }
            5 => {
                self.buf = self.buf.get(4..).ok_or_else(|| bad("truncated fixed32"))?;
                Wire::Skip
            }
            _ => return Err(bad("unsupported wire type")),
        };
        Ok(Some((key >> 3, wire)))
    }
}

fn text(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("invalid UTF-8"))
}

fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b };
    let (mut k, mut v) = (String::new(), json!(""));
    while let Some((num, wire)) = r.next()? {
        if let Wire::Bytes(data) = wire {
            match num {
                1 => k = text(data)?,
                2 if bytes_value => {
                    v = json!(base64::engine::general_purpose::STANDARD.encode(data))
                }
                2 => v = json!(text(data)?),
                _ => {}
            }
        }
    }
    Ok((k, v))
}

fn time(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let mut secs = 0i64;
    while let Some((num, wire)) = r.next()? {
        if let (1, Wire::Varint(v)) = (num, wire) {
            secs = v as i64;
        }
    }
    let ts = jiff::Timestamp::from_second(secs).map_err(|_| bad("time out of range"))?;
    Ok(json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn int_or_string(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let (mut ty, mut int, mut s) = (0u64, 0i64, String::new());
    while let Some((num, wire)) = r.next()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => ty = v,
            (2, Wire::Varint(v)) => int = v as i64 as i32 as i64,
            (3, Wire::Bytes(d)) => s = text(d)?,
            _ => {}
        }
    }
    Ok(if ty == 1 { json!(s) } else { json!(int) })
}

fn message(b: &[u8], schema: &[Field]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut r = Reader { buf: b };
    while let Some((num, wire)) = r.next()? {
        let Some(field) = schema.iter().find(|f| f.num == num) else {
            continue;
        };
        let value = match (field.ty, wire) {
            (Ty::Int, Wire::Varint(v)) => json!(v as i64),
            (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
            (Ty::Str, Wire::Bytes(d)) => json!(text(d)?),
            (Ty::Time, Wire::Bytes(d)) => time(d)?,
            (Ty::IntOrString, Wire::Bytes(d)) => int_or_string(d)?,
            (Ty::RawJson, Wire::Bytes(d)) => {
                let mut inner = Reader { buf: d };
                let mut raw = json!({});
                while let Some((n, w)) = inner.next()? {
                    if let (1, Wire::Bytes(j)) = (n, w) {
                        raw =
                            serde_json::from_slice(j).map_err(|_| bad("invalid embedded JSON"))?;
                    }
                }
                raw
            }
            (Ty::MapStr | Ty::MapBytes, Wire::Bytes(d)) => {
                let (k, v) = map_entry(d, matches!(field.ty, Ty::MapBytes))?;
                let slot = out.entry(field.name).or_insert_with(|| json!({}));
                if let Some(m) = slot.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            (Ty::Msg(inner), Wire::Bytes(d)) => message(d, inner)?,
            _ => return Err(bad(&format!("unexpected encoding of field {}", field.name))),
        };
        // Go's protobuf writes zero values that its JSON encoding omits
        // (`omitempty`); dropping them keeps server defaulting identical.
        let zero = matches!(&value, Value::String(s) if s.is_empty())
            || value == json!(0)
            || value == json!(false);
        if zero && !field.repeated {
            continue;
        }
        if field.repeated {
            let slot = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(a) = slot.as_array_mut() {
                a.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-prefixed `runtime.Unknown` envelope into a JSON object.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body
        .strip_prefix(b"k8s\x00")
        .ok_or_else(|| bad("missing k8s envelope"))?;
    let mut r = Reader { buf: envelope };
    let (mut api_version, mut kind, mut raw): (String, String, &[u8]) =
        (String::new(), String::new(), &[]);
    while let Some((num, wire)) = r.next()? {
        match (num, wire) {
            (1, Wire::Bytes(tm)) => {
                let mut t = Reader { buf: tm };
                while let Some((n, w)) = t.next()? {
                    match (n, w) {
                        (1, Wire::Bytes(v)) => api_version = text(v)?,
                        (2, Wire::Bytes(v)) => kind = text(v)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(data)) => raw = data,
            _ => {}
        }
    }
    let schema = schema_for(&api_version, &kind).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - protobuf is supported for v1 Secret, ConfigMap, Namespace and Service only (got {api_version} {kind}); accepted media types include: application/json, application/yaml"
        ))
    })?;
    let mut obj = message(raw, schema)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, data: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let mut meta = Vec::new();
        bytes_field(1, b"sh.helm.release.v1.r1.v1", &mut meta);
        let mut label = Vec::new();
        bytes_field(1, b"owner", &mut label);
        bytes_field(2, b"helm", &mut label);
        bytes_field(11, &label, &mut meta);
        let mut data = Vec::new();
        bytes_field(1, b"release", &mut data);
        bytes_field(2, b"\x01\x02", &mut data);
        let mut secret = Vec::new();
        bytes_field(1, &meta, &mut secret);
        bytes_field(2, &data, &mut secret);
        bytes_field(3, b"helm.sh/release.v1", &mut secret);
        let mut tm = Vec::new();
        bytes_field(1, b"v1", &mut tm);
        bytes_field(2, b"Secret", &mut tm);
        let mut body = b"k8s\x00".to_vec();
        bytes_field(1, &tm, &mut body);
        bytes_field(2, &secret, &mut body);

        let v = decode(&body).expect("decode");
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "sh.helm.release.v1.r1.v1");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], "AQI=");
        assert_eq!(v["type"], "helm.sh/release.v1");
    }
}
