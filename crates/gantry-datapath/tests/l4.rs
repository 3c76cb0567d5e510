//! L4 through the engine, on loopback: TCP, UDP, health, PROXY v2, source
//! ranges, reloads and draining.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::*;
use gantry_datapath::ObjectConfig;
use ppp::v2::{Addresses, Header};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream, UdpSocket},
};

#[tokio::test]
async fn tcp_round_robin_across_two_nodes() {
    let a = NodeServer::start("a", "127.0.60.1:30001").await;
    let b = NodeServer::start("b", "127.0.61.1:30001").await;
    let mut s = spec(
        "127.0.50.1",
        vec![node("a", "127.0.60.1"), node("b", "127.0.61.1")],
    );
    s.l4 = vec![tcp(8001, 30001)];
    let engine = engine();
    let ready = engine.apply(vec![ObjectConfig::new("web", 3, s)]).await;
    assert_eq!(ready["web"].generation, 3);
    assert!(ready["web"].ready, "{:?}", ready["web"]);

    let mut seen = BTreeMap::<String, usize>::new();
    for _ in 0..10 {
        let (mut conn, name) = greet(sock("127.0.50.1:8001")).await;
        echo(&mut conn, b"ping").await;
        *seen.entry(name).or_default() += 1;
    }
    assert_eq!(
        seen,
        BTreeMap::from([("a".to_owned(), 5), ("b".to_owned(), 5)])
    );
    drop((a, b));
}

#[tokio::test]
async fn traffic_moves_off_a_node_that_stops_answering() {
    let a = NodeServer::start("a", "127.0.60.2:30002").await;
    let b = NodeServer::start("b", "127.0.61.2:30002").await;
    let mut s = spec(
        "127.0.50.2",
        vec![node("a", "127.0.60.2"), node("b", "127.0.61.2")],
    );
    s.l4 = vec![tcp(8002, 30002)];
    let engine = engine();
    assert!(engine.apply(vec![ObjectConfig::new("web", 1, s)]).await["web"].ready);

    b.stop();
    // Active checks notice within a few intervals (2 failures x 200 ms).
    let ejected = eventually(Duration::from_secs(3), || async {
        engine
            .render_metrics()
            .contains(r#"gantry_datapath_backend_healthy{node="b",target="127.0.61.2:30002"} 0"#)
    })
    .await;
    assert!(ejected, "{}", engine.render_metrics());
    for _ in 0..6 {
        let (_, name) = greet(sock("127.0.50.2:8002")).await;
        assert_eq!(name, "a");
    }
    assert!(
        engine.readiness().await["web"].ready,
        "one healthy node is enough"
    );

    a.stop();
    let down = eventually(Duration::from_secs(3), || async {
        !engine.readiness().await["web"].ready
    })
    .await;
    assert!(down);
    let r = &engine.readiness().await["web"];
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("no healthy backend"),
        "{r:?}"
    );
}

#[tokio::test]
async fn udp_echo_through_the_datapath() {
    let (_, _srv) = udp_server("u", "127.0.60.3:30003").await;
    let mut s = spec("127.0.50.3", vec![node("u", "127.0.60.3")]);
    s.l4 = vec![udp(5353, 30003)];
    let engine = engine();
    let ready = engine.apply(vec![ObjectConfig::new("dns", 1, s)]).await;
    assert!(ready["dns"].ready, "{:?}", ready["dns"]);

    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    client.connect("127.0.50.3:5353").await.expect("connect");
    for msg in ["one", "two"] {
        client.send(msg.as_bytes()).await.expect("send");
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("reply in time")
            .expect("recv");
        assert_eq!(&buf[..n], format!("u:{msg}").as_bytes());
    }
    assert!(
        engine
            .render_metrics()
            .contains(r#"gantry_datapath_connections_total{frontend="127.0.50.3:5353/udp"} 1"#)
    );
}

#[tokio::test]
async fn proxy_v2_header_carries_the_client_address() {
    let listener = tokio::net::TcpListener::bind("127.0.60.4:30004")
        .await
        .expect("bind");
    let mut s = spec("127.0.50.4", vec![node("n", "127.0.60.4")]);
    let mut l = tcp(8004, 30004);
    l.proxy_protocol = true;
    s.l4 = vec![l];
    let engine = engine();
    engine.apply(vec![ObjectConfig::new("pp", 1, s)]).await;

    let client = TcpSocket::new_v4().expect("socket");
    client.bind(sock("127.0.0.44:0")).expect("bind client");
    let mut client = client
        .connect(sock("127.0.50.4:8004"))
        .await
        .expect("connect");
    let client_addr = client.local_addr().expect("addr");
    client.write_all(b"hello").await.expect("write");

    // The health check connects too; the proxied connection is the one that
    // sends data.
    let header = loop {
        let (mut upstream, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 16];
        if upstream.read_exact(&mut buf).await.is_err() {
            continue;
        }
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        buf.resize(16 + len, 0);
        upstream
            .read_exact(&mut buf[16..])
            .await
            .expect("header body");
        let header = Header::try_from(buf.as_slice())
            .expect("valid PROXY v2")
            .addresses;
        let mut payload = [0u8; 5];
        upstream.read_exact(&mut payload).await.expect("payload");
        assert_eq!(&payload, b"hello");
        break header;
    };
    match header {
        Addresses::IPv4(a) => {
            assert_eq!(std::net::IpAddr::from(a.source_address), client_addr.ip());
            assert_eq!(a.source_port, client_addr.port());
            assert_eq!(
                std::net::IpAddr::from(a.destination_address),
                ip("127.0.50.4")
            );
            assert_eq!(a.destination_port, 8004);
        }
        other => panic!("unexpected addresses {other:?}"),
    }
}

#[tokio::test]
async fn source_ranges_reject_other_clients() {
    let _n = NodeServer::start("n", "127.0.60.5:30005").await;
    let mut s = spec("127.0.50.5", vec![node("n", "127.0.60.5")]);
    s.l4 = vec![tcp(8005, 30005)];
    s.source_ranges = vec!["127.0.0.55/32".into()];
    let engine = engine();
    assert!(engine.apply(vec![ObjectConfig::new("r", 1, s)]).await["r"].ready);

    let from = |src: &'static str| async move {
        let c = TcpSocket::new_v4().expect("socket");
        c.bind(sock(src)).expect("bind");
        let mut c = c
            .connect(sock("127.0.50.5:8005"))
            .await
            .expect("tcp connect");
        let mut buf = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("answer or close in time")
            .map(|n| buf[..n].to_vec())
            .unwrap_or_default()
    };
    assert_eq!(from("127.0.0.55:0").await, b"n\n");
    assert_eq!(from("127.0.0.56:0").await, b"", "closed without a byte");
    assert!(engine.render_metrics().contains(
        r#"gantry_datapath_rejected_connections_total{frontend="127.0.50.5:8005/tcp"} 1"#
    ));
}

#[tokio::test]
async fn reload_keeps_twenty_open_connections() {
    let _a = NodeServer::start("a", "127.0.60.6:30006").await;
    let _b = NodeServer::start("b", "127.0.61.6:30006").await;
    let mut s = spec("127.0.50.6", vec![node("a", "127.0.60.6")]);
    s.l4 = vec![tcp(8006, 30006)];
    let engine = engine();
    engine
        .apply(vec![ObjectConfig::new("web", 1, s.clone())])
        .await;

    let mut conns = Vec::new();
    for _ in 0..20 {
        let (mut c, name) = greet(sock("127.0.50.6:8006")).await;
        assert_eq!(name, "a");
        echo(&mut c, b"before").await;
        conns.push(c);
    }

    // New backends, a second listener and a new generation.
    s.nodes = vec![node("b", "127.0.61.6")];
    s.l4.push(tcp(8106, 30006));
    let ready = engine.apply(vec![ObjectConfig::new("web", 2, s)]).await;
    assert_eq!(ready["web"].generation, 2);
    assert!(ready["web"].ready, "{:?}", ready["web"]);

    for c in &mut conns {
        echo(c, b"after reload").await;
    }
    let (_, name) = greet(sock("127.0.50.6:8006")).await;
    assert_eq!(name, "b", "new connections use the new backends");
    let (_, name) = greet(sock("127.0.50.6:8106")).await;
    assert_eq!(name, "b");
}

#[tokio::test]
async fn removed_listener_stops_accepting_and_drains() {
    let _n = NodeServer::start("n", "127.0.60.7:30007").await;
    let mut s = spec("127.0.50.7", vec![node("n", "127.0.60.7")]);
    s.l4 = vec![tcp(8007, 30007)];
    let engine = engine();
    engine.apply(vec![ObjectConfig::new("web", 1, s)]).await;
    let (mut c, _) = greet(sock("127.0.50.7:8007")).await;

    let ready = engine.apply(Vec::new()).await;
    assert!(ready.is_empty());
    assert!(
        TcpStream::connect("127.0.50.7:8007").await.is_err(),
        "socket closed at once"
    );
    // Established connection still works during the drain (2 s in tests)...
    echo(&mut c, b"draining").await;
    // ...and is closed when it ends.
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("closed by the drain timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn bind_failure_is_reported_not_fatal() {
    let _n = NodeServer::start("n", "127.0.60.8:30008").await;
    let _squatter = tokio::net::TcpListener::bind("127.0.50.8:8008")
        .await
        .expect("bind");
    let mut s = spec("127.0.50.8", vec![node("n", "127.0.60.8")]);
    s.l4 = vec![tcp(8008, 30008), tcp(8108, 30008)];
    let engine = engine();
    let r = &engine.apply(vec![ObjectConfig::new("web", 1, s)]).await["web"];
    assert!(!r.ready);
    let msg = r.message.as_deref().expect("message");
    assert!(
        msg.contains("127.0.50.8:8008") && msg.contains("in use"),
        "{msg}"
    );
    let (_, name) = greet(sock("127.0.50.8:8108")).await;
    assert_eq!(name, "n", "the other listener serves");
}

#[tokio::test]
async fn idle_connections_are_closed_and_bytes_counted() {
    let _n = NodeServer::start("n", "127.0.60.9:30009").await;
    let mut s = spec("127.0.50.9", vec![node("n", "127.0.60.9")]);
    s.l4 = vec![tcp(8009, 30009)];
    let engine = gantry_datapath::Engine::new(&gantry_datapath::DatapathOptions {
        idle_timeout: Duration::from_millis(500),
        ..options()
    });
    engine.apply(vec![ObjectConfig::new("web", 1, s)]).await;
    let (mut c, _) = greet(sock("127.0.50.9:8009")).await;
    echo(&mut c, b"12345").await;
    let start = tokio::time::Instant::now();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .expect("closed by the idle timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    let metrics = engine.render_metrics();
    // Client sent 5 bytes; it received the greeting (2) and the echo (5).
    assert!(
        metrics
            .contains(r#"gantry_datapath_received_bytes_total{frontend="127.0.50.9:8009/tcp"} 5"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gantry_datapath_sent_bytes_total{frontend="127.0.50.9:8009/tcp"} 7"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn http_health_checks_decide_which_nodes_get_traffic() {
    use std::sync::{Arc, atomic::AtomicU16};
    let _a = NodeServer::start("a", "127.0.60.10:30010").await;
    let _b = NodeServer::start("b", "127.0.61.10:30010").await;
    let a_status = Arc::new(AtomicU16::new(200));
    let b_status = Arc::new(AtomicU16::new(503));
    let _ha = health_server("127.0.60.10:10256", a_status).await;
    let _hb = health_server("127.0.61.10:10256", b_status.clone()).await;
    let mut s = spec(
        "127.0.50.10",
        vec![node("a", "127.0.60.10"), node("b", "127.0.61.10")],
    );
    let mut l = tcp(8010, 30010);
    l.health_check = gantry_model::local::LocalHealthCheck::Http {
        port: 10256,
        path: "/healthz".into(),
    };
    s.l4 = vec![l];
    let engine = engine();
    // The first HTTP check gets one interval (200 ms here) to answer; on a
    // loaded machine it may miss it, and the next round decides.
    if !engine.apply(vec![ObjectConfig::new("web", 1, s)]).await["web"].ready {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !engine.readiness().await["web"].ready {
            assert!(tokio::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for _ in 0..4 {
        assert_eq!(
            greet(sock("127.0.50.10:8010")).await.1,
            "a",
            "503 is unhealthy"
        );
    }
    b_status.store(204, std::sync::atomic::Ordering::SeqCst);
    let back = eventually(Duration::from_secs(3), || async {
        greet(sock("127.0.50.10:8010")).await.1 == "b"
    })
    .await;
    assert!(back, "one 2xx answer brings the node back");
}
