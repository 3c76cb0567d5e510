//! The Kubernetes manifests the suites apply: echo Deployments and the
//! Services in front of them, as YAML text for `kubectl apply`. A scenario
//! names only what it cares about (name, type, ports, annotations); the
//! rest is the same everywhere.
//!
//! Ports and annotations are given as the bodies of YAML flow collections,
//! as a manifest would write them inline:
//!
//! ```
//! use gantry_e2e::manifests::{echo, service};
//!
//! let yaml = format!(
//!     "{}---\n{}",
//!     echo("web", 2, "{name: http, containerPort: 8080}"),
//!     service("web", "LoadBalancer", "{name: http, port: 80, targetPort: http}")
//!         .annotations("gantry.dev/class: pool-b"),
//! );
//! assert!(yaml.contains("annotations: {gantry.dev/class: pool-b}"));
//! ```

use std::fmt;

/// An echo Deployment `name` of `replicas` pods labelled `app: <name>`;
/// `ports` is the body of the flow sequence of container ports.
pub fn echo<'a>(name: &'a str, replicas: u32, ports: &'a str) -> Echo<'a> {
    Echo {
        name,
        replicas,
        ports,
        text: None,
    }
}

/// A Service `name` of `type_` selecting `app: <name>`; `ports` is the body
/// of the flow sequence of Service ports.
pub fn service<'a>(name: &'a str, type_: &'a str, ports: &'a str) -> Service<'a> {
    Service {
        name,
        type_,
        ports,
        selector: name,
        annotations: None,
        spec: "",
    }
}

/// An echo Deployment manifest; see [`echo`]. Its `Display` is the YAML.
#[derive(Clone, Copy, Debug)]
pub struct Echo<'a> {
    name: &'a str,
    replicas: u32,
    ports: &'a str,
    text: Option<&'a str>,
}

impl<'a> Echo<'a> {
    /// Set the pods' `ECHO_TEXT`, which the echo server puts in every
    /// answer so a scenario can tell which backend served a request.
    pub fn text(self, text: &'a str) -> Self {
        Self {
            text: Some(text),
            ..self
        }
    }
}

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            replicas,
            ports,
            text,
        } = self;
        write!(
            f,
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: echo
        image: gantry.dev/echo
"
        )?;
        if let Some(text) = text {
            writeln!(f, "        env: [{{name: ECHO_TEXT, value: \"{text}\"}}]")?;
        }
        writeln!(f, "        ports: [{ports}]")
    }
}

/// A Service manifest; see [`service`]. Its `Display` is the YAML.
#[derive(Clone, Copy, Debug)]
pub struct Service<'a> {
    name: &'a str,
    type_: &'a str,
    ports: &'a str,
    selector: &'a str,
    annotations: Option<&'a str>,
    spec: &'a str,
}

impl<'a> Service<'a> {
    /// Select `app: <app>` instead of `app: <name>`, for several Services
    /// in front of one Deployment.
    pub fn selector(self, app: &'a str) -> Self {
        Self {
            selector: app,
            ..self
        }
    }

    /// Set `metadata.annotations` to the flow-map body `body`; written even
    /// when empty (`annotations: {}`).
    pub fn annotations(self, body: &'a str) -> Self {
        Self {
            annotations: Some(body),
            ..self
        }
    }

    /// More fields under `spec`, one `key: value` a line, unindented
    /// (`externalTrafficPolicy: Local`).
    pub fn spec(self, yaml: &'a str) -> Self {
        Self { spec: yaml, ..self }
    }
}

impl fmt::Display for Service<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            name,
            type_,
            ports,
            selector,
            annotations,
            spec,
        } = self;
        writeln!(
            f,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}"
        )?;
        if let Some(body) = annotations {
            writeln!(f, "  annotations: {{{body}}}")?;
        }
        writeln!(
            f,
            "spec:\n  type: {type_}\n  selector: {{app: {selector}}}\n  ports: [{ports}]"
        )?;
        for line in spec.lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parse(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("valid YAML")
    }

    #[test]
    fn service_carries_every_optional_part() {
        let yaml = service("b", "LoadBalancer", "{port: 80}, {port: 81}")
            .selector("a")
            .annotations("x: y")
            .spec("externalTrafficPolicy: Local\nloadBalancerIP: \"10.0.0.1\"")
            .to_string();
        assert_eq!(
            parse(&yaml),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "b", "annotations": {"x": "y"}},
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"app": "a"},
                    "ports": [{"port": 80}, {"port": 81}],
                    "externalTrafficPolicy": "Local",
                    "loadBalancerIP": "10.0.0.1",
                },
            })
        );
    }

    #[test]
    fn annotations_are_absent_unless_set() {
        let bare = parse(&service("a", "NodePort", "{port: 80}").to_string());
        assert_eq!(bare["metadata"], json!({"name": "a"}));
        let empty = parse(
            &service("a", "NodePort", "{port: 80}")
                .annotations("")
                .to_string(),
        );
        assert_eq!(empty["metadata"]["annotations"], json!({}));
    }

    #[test]
    fn echo_sets_text_only_when_asked() {
        let container =
            |yaml: String| parse(&yaml)["spec"]["template"]["spec"]["containers"][0].clone();
        let plain = container(echo("a", 1, "{containerPort: 8080}").to_string());
        assert_eq!(plain.get("env"), None);
        let texted = container(echo("a", 1, "{containerPort: 8080}").text("hi").to_string());
        assert_eq!(texted["env"], json!([{"name": "ECHO_TEXT", "value": "hi"}]));
        assert_eq!(texted["ports"], json!([{"containerPort": 8080}]));
    }
}
