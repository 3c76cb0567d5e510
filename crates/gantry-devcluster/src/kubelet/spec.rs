//! What a Pod asks for, read the way the dev cluster can honour it: whether
//! every image is the echo image, and which ports to listen on.

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::proxy::Protocol;

/// The only image the dev cluster runs.
pub const ECHO_IMAGE: &str = "gantry.dev/echo";

/// The port a container without declared ports listens on.
pub const DEFAULT_PORT: u16 = 8080;

/// Whether `image` is the echo image, with any tag or digest or none.
pub fn is_echo_image(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A tag is a ':' after the last '/'; a ':' before it belongs to a registry port.
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    repo == ECHO_IMAGE
}

/// The first container image that is not the echo image, if any.
pub fn foreign_image(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    all.map(|c| c.image.clone().unwrap_or_default())
        .find(|image| !is_echo_image(image))
}

/// One socket a pod listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Port number.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The container's `ECHO_TEXT`.
    pub text: Option<String>,
}

/// The sockets a pod's containers listen on: each declared TCP/UDP
/// `containerPort`, or 8080/TCP for a container that declares none. A
/// (port, protocol) pair appears once: the first container to claim it wins.
pub fn listens(pod: &Pod) -> Vec<Listen> {
    let mut out: Vec<Listen> = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return out;
    };
    for container in &spec.containers {
        let text = echo_text(container);
        let mut wanted = Vec::new();
        match container.ports.as_deref() {
            Some(ports) if !ports.is_empty() => {
                for p in ports {
                    let Ok(port) = u16::try_from(p.container_port) else {
                        continue;
                    };
                    if let Some(protocol) = Protocol::parse(p.protocol.as_deref()) {
                        wanted.push((port, protocol));
                    }
                }
            }
            _ => wanted.push((DEFAULT_PORT, Protocol::Tcp)),
        }
        for (port, protocol) in wanted {
            if port != 0 && !out.iter().any(|l| l.port == port && l.protocol == protocol) {
                out.push(Listen {
                    port,
                    protocol,
                    text: text.clone(),
                });
            }
        }
    }
    out
}

fn echo_text(container: &Container) -> Option<String> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "ECHO_TEXT")
        .and_then(|e| e.value.clone())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, PodSpec};

    use super::*;

    #[test]
    fn echo_image_with_any_tag_or_digest() {
        for image in [
            "gantry.dev/echo",
            "gantry.dev/echo:latest",
            "gantry.dev/echo:v1.2",
            "gantry.dev/echo@sha256:abcd",
            "gantry.dev/echo:v1@sha256:abcd",
        ] {
            assert!(is_echo_image(image), "{image}");
        }
        for image in [
            "nginx",
            "gantry.dev/echo2",
            "gantry.dev/echo/x",
            "other.dev/gantry.dev/echo",
            "gantry.dev:5000/echo",
            "",
        ] {
            assert!(!is_echo_image(image), "{image}");
        }
    }

    fn container(name: &str, image: &str, ports: Vec<ContainerPort>) -> Container {
        Container {
            name: name.into(),
            image: Some(image.into()),
            ports: Some(ports),
            ..Container::default()
        }
    }

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn foreign_image_names_the_first_non_echo_image() {
        let p = pod(vec![
            container("a", "gantry.dev/echo", vec![]),
            container("b", "nginx:1.27", vec![]),
        ]);
        assert_eq!(foreign_image(&p).as_deref(), Some("nginx:1.27"));
        let ok = pod(vec![container("a", "gantry.dev/echo:1", vec![])]);
        assert_eq!(foreign_image(&ok), None);
    }

    #[test]
    fn listens_on_declared_ports_or_8080() {
        let port = |n, proto: &str| ContainerPort {
            container_port: n,
            protocol: Some(proto.into()),
            ..ContainerPort::default()
        };
        let mut with_text = container(
            "a",
            "gantry.dev/echo",
            vec![port(80, "TCP"), port(53, "UDP"), port(9, "SCTP")],
        );
        with_text.env = Some(vec![EnvVar {
            name: "ECHO_TEXT".into(),
            value: Some("hi".into()),
            ..EnvVar::default()
        }]);
        let p = pod(vec![
            with_text,
            container("b", "gantry.dev/echo", vec![port(80, "TCP")]),
        ]);
        let got = listens(&p);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].port, got[0].protocol), (80, Protocol::Tcp));
        assert_eq!(got[0].text.as_deref(), Some("hi"));
        assert_eq!((got[1].port, got[1].protocol), (53, Protocol::Udp));
        let bare = listens(&pod(vec![container("a", "gantry.dev/echo", vec![])]));
        assert_eq!(
            bare,
            vec![Listen {
                port: 8080,
                protocol: Protocol::Tcp,
                text: None
            }]
        );
    }
}
