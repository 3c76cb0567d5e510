//! `meta.k8s.io/v1` Table output for `kubectl get`: the columns the real
//! server prints for the common kinds, `additionalPrinterColumns` for custom
//! resources, and NAME/AGE for the rest.

use serde_json::{Value, json};

use crate::{object, registry::ResourceType};

fn col(name: &str, ty: &str, format: &str, priority: u8) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn join(items: &[String], sep: &str) -> String {
    items.join(sep)
}

fn lb_addresses(obj: &Value) -> Vec<String> {
    obj.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn service_row(o: &Value) -> Vec<Value> {
    let spec = &o["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    let external = match ty {
        "LoadBalancer" => {
            let mut ips = lb_addresses(o);
            if let Some(extra) = spec["externalIPs"].as_array() {
                ips.extend(extra.iter().filter_map(Value::as_str).map(str::to_string));
            }
            if ips.is_empty() {
                "<pending>".into()
            } else {
                join(&ips, ",")
            }
        }
        "ExternalName" => s(&spec["externalName"]),
        _ => or_none(join(
            &spec["externalIPs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            ",",
        )),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_u64() {
                        Some(np) => format!("{}:{np}/{proto}", s(&p["port"])),
                        None => format!("{}/{proto}", s(&p["port"])),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let selector: Vec<String> = spec["selector"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    vec![
        json!(object::name(o)),
        json!(ty),
        json!(or_none(s(&spec["clusterIP"]))),
        json!(external),
        json!(or_none(join(&ports, ","))),
        json!(age(o)),
        json!(or_none(join(&selector, ","))),
    ]
}

fn age(o: &Value) -> String {
    o.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .map(object::age)
        .unwrap_or_else(|| "<unknown>".into())
}

fn condition(o: &Value, ty: &str) -> Option<String> {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == ty)
        .map(|c| s(&c["status"]))
}

/// Evaluates the simple JSONPath subset printer columns use (`.spec.x`, `.a[0].b`).
fn json_path(o: &Value, path: &str) -> Value {
    let mut cur = o;
    for seg in path.trim_start_matches('.').split('.') {
        if seg.is_empty() {
            continue;
        }
        let (field, index) = match seg.split_once('[') {
            Some((f, rest)) => (f, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        cur = match cur.get(field) {
            Some(v) => v,
            None => return Value::Null,
        };
        if let Some(i) = index {
            cur = match cur.get(i) {
                Some(v) => v,
                None => return Value::Null,
            };
        }
    }
    cur.clone()
}

/// Column definitions and a row builder for a type.
/// Builds the cells of one row.
type RowFn<'a> = Box<dyn Fn(&Value) -> Vec<Value> + 'a>;

fn columns(rt: &ResourceType) -> (Vec<Value>, RowFn<'_>) {
    let name = col("Name", "string", "name", 0);
    let age_col = col("Age", "string", "", 0);
    if let Some(info) = &rt.custom {
        let mut defs = vec![name];
        let mut has_age = false;
        for c in &info.printer_columns {
            let n = c["name"].as_str().unwrap_or("");
            has_age |= n == "Age";
            defs.push(col(
                n,
                c["type"].as_str().unwrap_or("string"),
                c["format"].as_str().unwrap_or(""),
                c["priority"].as_u64().unwrap_or(0) as u8,
            ));
        }
        if !has_age {
            defs.push(age_col);
        }
        let cols = info.printer_columns.clone();
        return (
            defs,
            Box::new(move |o| {
                let mut row = vec![json!(object::name(o))];
                for c in &cols {
                    let v = json_path(o, c["jsonPath"].as_str().unwrap_or(""));
                    if c["type"] == "date" {
                        row.push(json!(
                            v.as_str()
                                .map(object::age)
                                .unwrap_or_else(|| "<unknown>".into())
                        ));
                    } else {
                        row.push(v);
                    }
                }
                if !has_age {
                    row.push(json!(age(o)));
                }
                row
            }),
        );
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "services") => (
            vec![
                name,
                col("Type", "string", "", 0),
                col("Cluster-IP", "string", "", 0),
                col("External-IP", "string", "", 0),
                col("Port(s)", "string", "", 0),
                age_col,
                col("Selector", "string", "", 1),
            ],
            Box::new(service_row),
        ),
        ("", "namespaces") => (
            vec![name, col("Status", "string", "", 0), age_col],
            Box::new(|o| {
                vec![
                    json!(object::name(o)),
                    json!(s(&o["status"]["phase"])),
                    json!(age(o)),
                ]
            }),
        ),
        ("", "nodes") => (
            vec![
                name,
                col("Status", "string", "", 0),
                col("Roles", "string", "", 0),
                age_col,
                col("Version", "string", "", 0),
            ],
            Box::new(|o| {
                let ready = match condition(o, "Ready").as_deref() {
                    Some("True") => "Ready",
                    Some(_) => "NotReady",
                    None => "Unknown",
                };
                vec![
                    json!(object::name(o)),
                    json!(ready),
                    json!("<none>"),
                    json!(age(o)),
                    json!(s(&o["status"]["nodeInfo"]["kubeletVersion"])),
                ]
            }),
        ),
        ("", "pods") => (
            vec![
                name,
                col("Ready", "string", "", 0),
                col("Status", "string", "", 0),
                col("Restarts", "string", "", 0),
                age_col,
            ],
            Box::new(|o| {
                let total = o
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let ready = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .map_or(0, |a| a.iter().filter(|c| c["ready"] == true).count());
                vec![
                    json!(object::name(o)),
                    json!(format!("{ready}/{total}")),
                    json!(s(&o["status"]["phase"])),
                    json!("0"),
                    json!(age(o)),
                ]
            }),
        ),
        ("networking.k8s.io", "ingresses") => (
            vec![
                name,
                col("Class", "string", "", 0),
                col("Hosts", "string", "", 0),
                col("Address", "string", "", 0),
                col("Ports", "string", "", 0),
                age_col,
            ],
            Box::new(|o| {
                let hosts: Vec<String> = o
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .map(|rs| {
                        rs.iter()
                            .map(|r| r["host"].as_str().unwrap_or("*").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                let ports = if o
                    .pointer("/spec/tls")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty())
                {
                    "80, 443"
                } else {
                    "80"
                };
                vec![
                    json!(object::name(o)),
                    json!(or_none(s(&o["spec"]["ingressClassName"]))),
                    json!(if hosts.is_empty() {
                        "*".to_string()
                    } else {
                        join(&hosts, ",")
                    }),
                    json!(join(&lb_addresses(o), ",")),
                    json!(ports),
                    json!(age(o)),
                ]
            }),
        ),
        ("", "configmaps") => (
            vec![name, col("Data", "integer", "", 0), age_col],
            Box::new(|o| {
                let n = o["data"].as_object().map_or(0, |m| m.len())
                    + o["binaryData"].as_object().map_or(0, |m| m.len());
                vec![json!(object::name(o)), json!(n), json!(age(o))]
            }),
        ),
        ("", "secrets") => (
            vec![
                name,
                col("Type", "string", "", 0),
                col("Data", "integer", "", 0),
                age_col,
            ],
            Box::new(|o| {
                let n = o["data"].as_object().map_or(0, |m| m.len());
                vec![
                    json!(object::name(o)),
                    json!(s(&o["type"])),
                    json!(n),
                    json!(age(o)),
                ]
            }),
        ),
        ("apps", "deployments") => (
            vec![
                name,
                col("Ready", "string", "", 0),
                col("Up-to-date", "integer", "", 0),
                col("Available", "integer", "", 0),
                age_col,
            ],
            Box::new(|o| {
                let want = o["spec"]["replicas"].as_i64().unwrap_or(1);
                let ready = o["status"]["readyReplicas"].as_i64().unwrap_or(0);
                vec![
                    json!(object::name(o)),
                    json!(format!("{ready}/{want}")),
                    json!(o["status"]["updatedReplicas"].as_i64().unwrap_or(0)),
                    json!(o["status"]["availableReplicas"].as_i64().unwrap_or(0)),
                    json!(age(o)),
                ]
            }),
        ),
        ("discovery.k8s.io", "endpointslices") => (
            vec![
                name,
                col("AddressType", "string", "", 0),
                col("Ports", "string", "", 0),
                col("Endpoints", "string", "", 0),
                age_col,
            ],
            Box::new(|o| {
                let ports: Vec<String> = o["ports"]
                    .as_array()
                    .map(|a| a.iter().map(|p| s(&p["port"])).collect())
                    .unwrap_or_default();
                let eps: Vec<String> = o["endpoints"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                            .map(|v| s(&v))
                            .collect()
                    })
                    .unwrap_or_default();
                vec![
                    json!(object::name(o)),
                    json!(s(&o["addressType"])),
                    json!(or_none(join(&ports, ","))),
                    json!(or_none(join(&eps, ","))),
                    json!(age(o)),
                ]
            }),
        ),
        ("", "events") | ("events.k8s.io", "events") => (
            vec![
                col("Last Seen", "string", "", 0),
                col("Type", "string", "", 0),
                col("Reason", "string", "", 0),
                col("Object", "string", "", 0),
                col("Message", "string", "", 0),
            ],
            Box::new(|o| {
                let regarding = if o.get("regarding").is_some() {
                    &o["regarding"]
                } else {
                    &o["involvedObject"]
                };
                let last = [
                    &o["lastTimestamp"],
                    &o["eventTime"],
                    &o["metadata"]["creationTimestamp"],
                ]
                .iter()
                .find_map(|v| v.as_str())
                .map(object::age)
                .unwrap_or_else(|| "<unknown>".into());
                vec![
                    json!(last),
                    json!(s(&o["type"])),
                    json!(s(&o["reason"])),
                    json!(format!(
                        "{}/{}",
                        s(&regarding["kind"]).to_ascii_lowercase(),
                        s(&regarding["name"])
                    )),
                    json!(s(o.get("note").unwrap_or(&o["message"]))),
                ]
            }),
        ),
        _ => (
            vec![name, age_col],
            Box::new(|o| vec![json!(object::name(o)), json!(age(o))]),
        ),
    }
}

fn row_object(o: &Value, include: &str) -> Value {
    match include {
        "Object" => o.clone(),
        "None" => Value::Null,
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
        }
    }
}

/// Renders objects as a Table.
pub fn render(
    rt: &ResourceType,
    objects: &[Value],
    meta: Value,
    include: &str,
    with_columns: bool,
) -> Value {
    let (defs, row) = columns(rt);
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut r = json!({"cells": row(o)});
            let obj = row_object(o, include);
            if !obj.is_null() {
                r["object"] = obj;
            }
            r
        })
        .collect();
    let mut t =
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows});
    if with_columns {
        t["columnDefinitions"] = Value::Array(defs);
    }
    t
}
