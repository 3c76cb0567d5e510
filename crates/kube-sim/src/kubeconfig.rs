//! Client configuration for the emulator: a `kube::Config` for in-process
//! clients and a kubeconfig file text for kubectl and helm.

use base64::Engine as _;

/// Builds the kubeconfig YAML text (token auth; CA embedded when TLS is on).
pub fn yaml(url: &str, ca_pem: Option<&str>) -> String {
    let ca_line = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\n\
kind: Config\n\
clusters:\n\
- name: kube-sim\n  cluster:\n    server: {url}\n{ca_line}\
contexts:\n\
- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\n\
current-context: kube-sim\n\
users:\n\
- name: kube-sim\n  user:\n    token: kube-sim\n\
preferences: {{}}\n"
    )
}

/// Builds a `kube::Config` pointing at the emulator.
pub fn config(url: &str, ca_der: Option<&[u8]>) -> kube::Config {
    let uri = url
        .parse::<http::Uri>()
        .unwrap_or_else(|_| http::Uri::from_static("http://127.0.0.1"));
    let mut c = kube::Config::new(uri);
    c.default_namespace = "default".into();
    c.root_cert = ca_der.map(|der| vec![der.to_vec()]);
    c.accept_invalid_certs = false;
    c
}
