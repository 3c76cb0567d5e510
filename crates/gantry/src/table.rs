//! Services printed the way `kubectl get svc` prints them.

use k8s_openapi::api::core::v1::Service;

/// A `kubectl get svc` style table of `services`.
pub fn services(services: &[Service]) -> String {
    let mut rows = vec![
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ]
        .map(String::from),
    ];
    for svc in services {
        let spec = svc.spec.clone().unwrap_or_default();
        let external = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .map(|ingress| {
                ingress
                    .iter()
                    .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if spec.type_.as_deref() == Some("LoadBalancer") {
                    "<pending>"
                } else {
                    "<none>"
                }
                .into()
            });
        let ports = spec
            .ports
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let proto = p.protocol.as_deref().unwrap_or("TCP");
                match p.node_port {
                    Some(np) => format!("{}:{np}/{proto}", p.port),
                    None => format!("{}/{proto}", p.port),
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let age = svc
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| {
                let secs = k8s_openapi::jiff::Timestamp::now()
                    .duration_since(t.0)
                    .as_secs()
                    .max(0);
                human_age(secs)
            })
            .unwrap_or_else(|| "<unknown>".into());
        rows.push([
            svc.metadata.name.clone().unwrap_or_default(),
            spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            spec.cluster_ip.unwrap_or_else(|| "<none>".into()),
            external,
            ports,
            age,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// Age as kubectl abbreviates it.
fn human_age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_kubectl() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "service-test" },
            "spec": { "type": "LoadBalancer", "clusterIP": "10.96.0.10",
                      "ports": [{ "port": 80, "nodePort": 32213, "protocol": "TCP" }] },
            "status": { "loadBalancer": { "ingress": [{ "ip": "127.0.100.1" }] } },
        }))
        .expect("service");
        let pending: Service = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "b" },
            "spec": { "type": "LoadBalancer", "ports": [{ "port": 53, "protocol": "UDP" }] },
        }))
        .expect("service");
        let t = services(&[svc, pending]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "NAME           TYPE           CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE"
        );
        assert!(
            lines[1].starts_with(
                "service-test   LoadBalancer   10.96.0.10   127.0.100.1   80:32213/TCP   "
            ),
            "{t}"
        );
        assert!(
            lines[2].contains("<pending>") && lines[2].contains("53/UDP"),
            "{t}"
        );
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(600), "10m");
        assert_eq!(human_age(7200), "2h");
    }
}
