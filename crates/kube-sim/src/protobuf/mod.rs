//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`) into JSON. client-go's typed
//! clients send built-in kinds this way unconditionally (they ask for
//! protobuf first whatever the server advertises), so Helm's release
//! Secrets and `kubectl create <kind>` arrive as protobuf. The schemas in
//! [`schemas`] name the fields of the kinds those clients write; field
//! numbers follow the published `generated.proto` files. Responses are
//! always JSON, which those clients accept (`Accept` lists JSON second).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

pub mod schemas;

use schemas::{Field, Ty, schema_for};

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

/// How a map entry's value is encoded.
#[derive(Clone, Copy)]
enum MapValue {
    Str,
    Bytes,
    Quantity,
}

fn map_entry(b: &[u8], kind: MapValue) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b };
    let (mut k, mut v) = (String::new(), json!(""));
    while let Some((num, wire)) = r.next()? {
        if let Wire::Bytes(data) = wire {
            match (num, kind) {
                (1, _) => k = text(data)?,
                (2, MapValue::Bytes) => {
                    v = json!(base64::engine::general_purpose::STANDARD.encode(data))
                }
                (2, MapValue::Str) => v = json!(text(data)?),
                (2, MapValue::Quantity) => v = quantity(data)?,
                _ => {}
            }
        }
    }
    Ok((k, v))
}

/// `resource.Quantity`: its canonical string in field 1.
fn quantity(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let mut s = String::new();
    while let Some((num, wire)) = r.next()? {
        if let (1, Wire::Bytes(d)) = (num, wire) {
            s = text(d)?;
        }
    }
    Ok(json!(s))
}

/// `meta.v1.Time` (seconds in field 1, nanos in field 2). The zero time is
/// what Go writes for an unset non-pointer Time; its JSON is `null`.
fn time(b: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader { buf: b };
    let (mut secs, mut nanos) = (0i64, 0i64);
    while let Some((num, wire)) = r.next()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => secs = v as i64,
            (2, Wire::Varint(v)) => nanos = v as i64,
            _ => {}
        }
    }
    if secs == 0 && nanos == 0 {
        return Ok(Value::Null);
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
            // A field this table does not name: dropped, as JSON decoding
            // drops unknown fields; say so, since the writer meant it.
            tracing::warn!(field = num, "protobuf body field not decoded");
            continue;
        };
        let map = match field.ty {
            Ty::MapStr => Some(MapValue::Str),
            Ty::MapBytes => Some(MapValue::Bytes),
            Ty::MapQuantity => Some(MapValue::Quantity),
            _ => None,
        };
        let value = match (field.ty, wire) {
            (Ty::Int, Wire::Varint(v)) => json!(v as i64),
            (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
            (Ty::Str, Wire::Bytes(d)) => json!(text(d)?),
            (Ty::Time, Wire::Bytes(d)) => time(d)?,
            (Ty::IntOrString, Wire::Bytes(d)) => int_or_string(d)?,
            (Ty::Quantity, Wire::Bytes(d)) => quantity(d)?,
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
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, Wire::Bytes(d)) => {
                let (k, v) = map_entry(d, map.unwrap_or(MapValue::Str))?;
                let slot = out.entry(field.name).or_insert_with(|| json!({}));
                if let Some(m) = slot.as_object_mut() {
                    m.insert(k, v);
                }
                continue;
            }
            (Ty::Msg(inner), Wire::Bytes(d)) => message(d, inner)?,
            (Ty::Opaque, Wire::Bytes(_)) => json!({}),
            _ => return Err(bad(&format!("unexpected encoding of field {}", field.name))),
        };
        if value.is_null() {
            continue;
        }
        if field.name.is_empty() {
            // An embedded struct Go's JSON inlines into its parent.
            if let Value::Object(inner) = value {
                out.extend(inner);
            }
            continue;
        }
        // Go's protobuf writes zero values of plain fields that its JSON
        // encoding omits (`omitempty`); dropping them keeps server
        // defaulting identical. Pointer fields are written only when set,
        // so their zero values mean what they say.
        let zero = matches!(&value, Value::String(s) if s.is_empty())
            || value == json!(0)
            || value == json!(false);
        if zero && !field.repeated && !field.keep_zero {
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
            "the body of the request was in an unknown format - protobuf is supported for {} only (got {api_version} {kind}); accepted media types include: application/json, application/yaml",
            schemas::KNOWN
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

    fn envelope(api_version: &[u8], kind: &[u8], raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        bytes_field(1, api_version, &mut tm);
        bytes_field(2, kind, &mut tm);
        let mut body = b"k8s\x00".to_vec();
        bytes_field(1, &tm, &mut body);
        bytes_field(2, raw, &mut body);
        body
    }

    fn varint_field(num: u64, v: u64, out: &mut Vec<u8>) {
        varint(num << 3, out);
        varint(v, out);
    }

    #[test]
    fn deployment_keeps_pointer_zeros_and_nulls_zero_times() {
        // metadata{name, creationTimestamp: zero Time}
        let mut meta = Vec::new();
        bytes_field(1, b"web", &mut meta);
        bytes_field(8, b"", &mut meta);
        let mut container = Vec::new();
        bytes_field(1, b"c", &mut container);
        bytes_field(2, b"nginx", &mut container);
        bytes_field(8, b"", &mut container);
        let mut limits = Vec::new();
        bytes_field(1, b"cpu", &mut limits);
        let mut qty = Vec::new();
        bytes_field(1, b"500m", &mut qty);
        bytes_field(2, &qty, &mut limits);
        let mut resources = Vec::new();
        bytes_field(1, &limits, &mut resources);
        bytes_field(8, &resources, &mut container);
        let mut pod_spec = Vec::new();
        bytes_field(2, &container, &mut pod_spec);
        let mut template = Vec::new();
        bytes_field(1, &meta, &mut template);
        bytes_field(2, &pod_spec, &mut template);
        let mut spec = Vec::new();
        varint_field(1, 0, &mut spec);
        bytes_field(3, &template, &mut spec);
        varint_field(5, 0, &mut spec);
        let mut dep = Vec::new();
        bytes_field(1, &meta, &mut dep);
        bytes_field(2, &spec, &mut dep);
        bytes_field(3, b"\x08\x00", &mut dep);
        let v = decode(&envelope(b"apps/v1", b"Deployment", &dep)).expect("decode");
        assert_eq!(v["spec"]["replicas"], 0, "a set pointer zero is kept");
        assert!(v["spec"].get("minReadySeconds").is_none(), "{v}");
        assert!(v["metadata"].get("creationTimestamp").is_none(), "{v}");
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "nginx");
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
        assert_eq!(v["status"], json!({}));
    }

    #[test]
    fn decodes_a_scale() {
        let mut meta = Vec::new();
        bytes_field(1, b"web", &mut meta);
        bytes_field(6, b"42", &mut meta);
        let mut spec = Vec::new();
        varint_field(1, 3, &mut spec);
        let mut scale = Vec::new();
        bytes_field(1, &meta, &mut scale);
        bytes_field(2, &spec, &mut scale);
        let v = decode(&envelope(b"autoscaling/v1", b"Scale", &scale)).expect("decode");
        assert_eq!(v["kind"], "Scale");
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["spec"]["replicas"], 3);
    }

    #[test]
    fn unknown_kinds_are_unsupported_media_type() {
        let err = decode(&envelope(b"apps/v1", b"DaemonSet", b"")).expect_err("415");
        assert_eq!(err.code, 415);
    }
}
