//! `run` against the in-process API emulator: objects drive listeners and
//! each instance reports its own status entry.

mod common;

use std::time::Duration;

use common::*;
use gantry_datapath::{DatapathOptions, run};
use gantry_model::local::{LocalLoadBalancer, LocalNodeStatus, LocalTls};
use k8s_openapi::{
    ByteString, api::core::v1::Secret,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, CustomResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use kube_sim::{KubeSim, SimOptions};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};

async fn sim() -> (KubeSim, Client) {
    let sim = KubeSim::start(SimOptions::default())
        .await
        .expect("emulator");
    let client = sim.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &LocalLoadBalancer::crd())
        .await
        .expect("install CRD");
    let api: Api<LocalLoadBalancer> = Api::all(client.clone());
    let served = eventually(Duration::from_secs(5), || async {
        api.list(&Default::default()).await.is_ok()
    })
    .await;
    assert!(served, "CRD served");
    (sim, client)
}

fn start(
    client: Client,
    opts: DatapathOptions,
) -> (
    oneshot::Sender<()>,
    JoinHandle<Result<(), gantry_datapath::DatapathError>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(client, opts, async move {
        let _ = rx.await;
    }));
    (tx, task)
}

async fn my_status(api: &Api<LocalLoadBalancer>, name: &str) -> Option<LocalNodeStatus> {
    let obj = api.get_opt(name).await.ok().flatten()?;
    obj.status?.nodes.get("test-node").cloned()
}

async fn wait_status(
    api: &Api<LocalLoadBalancer>,
    name: &str,
    want: impl Fn(&LocalNodeStatus) -> bool,
) -> LocalNodeStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = my_status(api, name).await;
        if let Some(st) = got.as_ref().filter(|s| want(s)) {
            return st.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never matched; last {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn objects_drive_listeners_and_status() {
    let (_sim, client) = sim().await;
    let api: Api<LocalLoadBalancer> = Api::all(client.clone());
    let _a = NodeServer::start("a", "127.0.60.40:30040").await;
    let _b = NodeServer::start("b", "127.0.61.40:30040").await;
    let opts = DatapathOptions {
        metrics_addr: Some(sock("127.0.50.49:9100")),
        ..options()
    };

    let mut s = spec("127.0.50.40", vec![node("a", "127.0.60.40")]);
    s.l4 = vec![tcp(8040, 30040)];
    api.create(
        &PostParams::default(),
        &LocalLoadBalancer::new("web", s.clone()),
    )
    .await
    .expect("create");
    // Another datapath's entry, which our patches must leave alone.
    let other = serde_json::json!({"status": {"nodes": {"other-node": {
        "observedGeneration": 1, "ready": false, "message": "x"}}}});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(&other))
        .await
        .expect("patch other");
    // Started after the other entry exists, so our patch must merge into it.
    let (stop, task) = start(client.clone(), opts);
    let st = wait_status(&api, "web", |s| s.observed_generation == 1).await;
    assert!(st.ready, "{st:?}");
    assert_eq!(st.message, None);
    let nodes = api
        .get("web")
        .await
        .expect("get")
        .status
        .expect("status")
        .nodes;
    assert_eq!(
        nodes["other-node"].message.as_deref(),
        Some("x"),
        "{nodes:?}"
    );
    let (_, name) = greet(sock("127.0.50.40:8040")).await;
    assert_eq!(name, "a");

    // Update: new node and port -> reload at generation 2.
    let mut obj = api.get("web").await.expect("get");
    s.nodes = vec![node("b", "127.0.61.40")];
    s.l4 = vec![tcp(8140, 30040)];
    obj.spec = s;
    api.replace("web", &PostParams::default(), &obj)
        .await
        .expect("replace");
    let st = wait_status(&api, "web", |s| s.observed_generation == 2).await;
    assert!(st.ready, "{st:?}");
    let (_, name) = greet(sock("127.0.50.40:8140")).await;
    assert_eq!(name, "b");
    assert!(
        TcpStream::connect("127.0.50.40:8040").await.is_err(),
        "old port closed"
    );

    // A listener that cannot bind is reported, not fatal.
    let _squatter = tokio::net::TcpListener::bind("127.0.50.41:8041")
        .await
        .expect("bind");
    let mut bad = spec("127.0.50.41", vec![node("a", "127.0.60.40")]);
    bad.l4 = vec![tcp(8041, 30040)];
    api.create(
        &PostParams::default(),
        &LocalLoadBalancer::new("squatted", bad),
    )
    .await
    .expect("create");
    let st = wait_status(&api, "squatted", |s| s.observed_generation == 1).await;
    assert!(!st.ready);
    assert!(
        st.message
            .as_deref()
            .unwrap_or("")
            .contains("127.0.50.41:8041"),
        "{st:?}"
    );

    let metrics = reqwest_free_get("127.0.50.49:9100", "/metrics").await;
    assert!(
        metrics.contains(r#"gantry_datapath_connections_total{frontend="127.0.50.40:8140/tcp"}"#),
        "{metrics}"
    );

    // Delete -> listener closed.
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    let closed = eventually(Duration::from_secs(5), || async {
        TcpStream::connect("127.0.50.40:8140").await.is_err()
    })
    .await;
    assert!(closed, "listener closed after delete");

    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run returns after shutdown")
        .expect("join")
        .expect("run ok");
}

#[tokio::test]
async fn tls_secrets_are_read_from_the_owner_namespace() {
    let (_sim, client) = sim().await;
    let api: Api<LocalLoadBalancer> = Api::all(client.clone());
    let _n = HttpNode::start("site", "127.0.60.42:30042").await;
    let (stop, task) = start(client.clone(), options());

    let mut l = l7(&[("b", 30042)]);
    l.rules = vec![rule(Some("a.test"), &[("/", "Prefix", "b")])];
    l.tls = vec![LocalTls {
        secret_name: "a-tls".into(),
        hosts: vec!["a.test".into()],
    }];
    let mut s = spec("127.0.50.42", vec![node("n", "127.0.60.42")]);
    s.l7 = Some(l);
    api.create(
        &PostParams::default(),
        &LocalLoadBalancer::new("ing", s.clone()),
    )
    .await
    .expect("create");
    let st = wait_status(&api, "ing", |s| s.observed_generation == 1).await;
    assert!(!st.ready);
    assert!(
        st.message
            .as_deref()
            .unwrap_or("")
            .contains("Secret default/a-tls not found"),
        "{st:?}"
    );

    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["a.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("a-tls".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            [
                ("tls.crt".to_owned(), ByteString(cert.pem().into_bytes())),
                (
                    "tls.key".to_owned(),
                    ByteString(key.serialize_pem().into_bytes()),
                ),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");

    // A spec change makes the datapath read the Secret again.
    let mut obj = api.get("ing").await.expect("get");
    obj.spec.l7.as_mut().expect("l7").ssl_redirect = true;
    api.replace("ing", &PostParams::default(), &obj)
        .await
        .expect("replace");
    let st = wait_status(&api, "ing", |s| s.observed_generation == 2).await;
    assert!(st.ready, "{st:?}");

    // The certificate is served.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect("127.0.50.42:443")
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("a.test").expect("name");
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await;
    match tls {
        Ok(s) => {
            let peer = s.get_ref().1.peer_certificates().expect("certs")[0].clone();
            assert_eq!(peer, *cert.der());
        }
        Err(e) => panic!("TLS to the datapath failed: {e}"),
    }

    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("returns")
        .expect("join")
        .expect("ok");
}

/// GET over a plain hyper HTTP/1 connection, body as text.
async fn reqwest_free_get(addr: &str, path: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", addr)
        .body(Empty::<bytes::Bytes>::new())
        .expect("req");
    let resp = sender.send_request(req).await.expect("response");
    String::from_utf8_lossy(&resp.into_body().collect().await.expect("body").to_bytes())
        .into_owned()
}
