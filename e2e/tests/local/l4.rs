//! L4 traffic through the datapath: raw TCP, UDP (alone and mixed with TCP
//! on one port number), a node's backend stopping, and a reload while
//! long-lived connections keep exchanging bytes.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use gantry_e2e::{
    local::LocalEnv,
    manifests::{echo, service},
    wait_for,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::support::{T, consecutive_successes, pod_of_greeting, read_until, tcp_echo, udp_echo};

#[test]
fn tcp_raw_bytes_reach_an_echo_pod() {
    let env = LocalEnv::start(6).expect("environment");
    env.apply(
        "raw",
        &format!(
            "{}---\n{}",
            echo("raw", 2, "{name: raw, containerPort: 9000}").text("raw"),
            service(
                "raw",
                "LoadBalancer",
                "{name: raw, port: 9000, targetPort: raw}"
            ),
        ),
    );
    let ip = env.wait_ip("raw", T);
    let addr = SocketAddr::new(ip, 9000);
    let pod = wait_for("raw TCP echo through the external address", T, || {
        env.rt.block_on(tcp_echo(addr, "hello gantry\n")).ok()
    });
    assert!(pod.starts_with("raw-"), "{pod}");
    // Several connections in a row all answer, each from a pod of the app.
    for i in 0..10 {
        let pod = env
            .rt
            .block_on(tcp_echo(addr, &format!("line {i}\n")))
            .expect("echo");
        assert!(pod.starts_with("raw-"), "{pod}");
    }
}

#[test]
fn udp_alone_and_mixed_with_tcp_on_one_port() {
    let env = LocalEnv::start(7).expect("environment");
    env.apply(
        "dns",
        &format!(
            "{}---\n{}---\n{}",
            echo(
                "dns",
                2,
                "{name: dns-udp, containerPort: 5353, protocol: UDP}, \
                 {name: dns-tcp, containerPort: 5353, protocol: TCP}"
            )
            .text("dns"),
            service(
                "udp-only",
                "LoadBalancer",
                "{name: u, port: 5300, targetPort: 5353, protocol: UDP}"
            )
            .selector("dns"),
            service(
                "mixed",
                "LoadBalancer",
                "{name: u, port: 53, targetPort: 5353, protocol: UDP}, \
                 {name: t, port: 53, targetPort: 5353, protocol: TCP}"
            )
            .selector("dns"),
        ),
    );
    let udp_ip = env.wait_ip("udp-only", T);
    let answer = wait_for("UDP answer through the external address", T, || {
        env.rt
            .block_on(udp_echo(SocketAddr::new(udp_ip, 5300), "query-1"))
            .ok()
    });
    assert!(answer.starts_with("pod=dns-"), "{answer:?}");
    assert!(answer.ends_with(" query-1"), "{answer:?}");

    let mixed_ip = env.wait_ip("mixed", T);
    let addr = SocketAddr::new(mixed_ip, 53);
    let answer = wait_for("UDP on the mixed Service", T, || {
        env.rt.block_on(udp_echo(addr, "query-2")).ok()
    });
    assert!(answer.starts_with("pod=dns-"), "{answer:?}");
    assert!(answer.ends_with(" query-2"), "{answer:?}");
    let pod = wait_for("TCP on the mixed Service", T, || {
        env.rt.block_on(tcp_echo(addr, "stream-bytes\n")).ok()
    });
    assert!(pod.starts_with("dns-"), "{pod}");
}

#[test]
fn a_stopped_node_leaves_traffic_to_the_others() {
    let env = LocalEnv::start(10).expect("environment");
    env.apply(
        "web",
        &format!(
            "{}---\n{}",
            echo("web", 2, "{name: http, containerPort: 8080}").text("web"),
            service(
                "web",
                "LoadBalancer",
                "{name: http, port: 80, targetPort: http}"
            ),
        ),
    );
    let ip = env.wait_ip("web", T);
    let addr = SocketAddr::new(ip, 80);
    env.wait_http(addr, "\"pod\":\"web-", T);
    // The node that holds one of the two pods.
    let victim = wait_for("both pods scheduled", T, || {
        let pods: serde_json::Value =
            serde_json::from_str(&env.kubectl(&["get", "pods", "-l", "app=web", "-o", "json"]))
                .ok()?;
        let nodes: BTreeSet<String> = pods["items"]
            .as_array()?
            .iter()
            .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
            .collect();
        (pods["items"].as_array()?.len() == 2 && !nodes.is_empty())
            .then(|| nodes.into_iter().next())
            .flatten()
    });
    let nodes = env.nodes.as_ref().expect("nodes");
    env.rt
        .block_on(nodes.stop_node(&victim))
        .expect("stop node");

    // Health checks need a few seconds to notice; after that every request
    // succeeds.
    let start = Instant::now();
    wait_for(
        "a success after the node stopped",
        Duration::from_secs(10),
        || env.http_get(addr).ok(),
    );
    eprintln!(
        "first success {:?} after stopping {victim}",
        start.elapsed()
    );
    // Every answer then comes from the pod that is not on the stopped node.
    consecutive_successes(&env, addr, 20, |body| {
        let v: serde_json::Value = serde_json::from_str(body).expect("echo JSON");
        assert_ne!(
            v["node"],
            victim.as_str(),
            "answer from the stopped node: {body}"
        );
    });
}

/// How many long-lived connections the reload scenario keeps.
const HELD: usize = 20;

#[test]
fn reload_under_load_drops_no_connection() {
    let env = LocalEnv::start(11).expect("environment");
    env.apply(
        "held",
        &format!(
            "{}---\n{}",
            echo("held", 2, "{name: raw, containerPort: 9000}").text("held"),
            service(
                "held",
                "LoadBalancer",
                "{name: raw, port: 9000, targetPort: raw}"
            ),
        ),
    );
    let ip = env.wait_ip("held", T);
    let addr = SocketAddr::new(ip, 9000);
    wait_for("echo through the external address", T, || {
        env.rt.block_on(tcp_echo(addr, "ready\n")).ok()
    });

    // Open every connection and see its greeting, then keep each one
    // exchanging a line every 50 ms until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let exchanged = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..HELD)
        .map(|i| {
            let (stop, exchanged) = (stop.clone(), exchanged.clone());
            env.rt.spawn(async move {
                let mut stream = TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("conn {i}: connect: {e}"))?;
                let first = format!("conn {i} line 0\n");
                stream
                    .write_all(first.as_bytes())
                    .await
                    .map_err(|e| format!("conn {i}: write: {e}"))?;
                let greeting = read_until(&mut stream, &first)
                    .await
                    .map_err(|e| format!("conn {i}: {e}"))?;
                pod_of_greeting(&greeting)
                    .ok_or_else(|| format!("conn {i}: no greeting in {greeting:?}"))?;
                let mut n = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    let line = format!("conn {i} line {n}\n");
                    stream
                        .write_all(line.as_bytes())
                        .await
                        .map_err(|e| format!("conn {i} after {n} lines: write: {e}"))?;
                    read_until(&mut stream, &line)
                        .await
                        .map_err(|e| format!("conn {i} after {n} lines: {e}"))?;
                    exchanged.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok::<u64, String>(n)
            })
        })
        .collect();
    wait_for("every connection exchanging", T, || {
        (exchanged.load(Ordering::Relaxed) >= HELD as u64 * 2).then_some(())
    });

    // Reload: a new port and a new node change the datapath's configuration.
    env.kubectl(&[
        "patch", "svc", "held", "--type", "json", "-p",
        r#"[{"op":"add","path":"/spec/ports/-","value":{"name":"alt","port":9001,"targetPort":"raw"}}]"#,
    ]);
    let nodes = env.nodes.as_ref().expect("nodes");
    let added = env.rt.block_on(nodes.add_node()).expect("add node");
    wait_for("new port and new node published", T, || {
        let llb = env
            .local_balancers()
            .into_iter()
            .find(|b| b["spec"]["owner"]["name"] == "held")?;
        let has_node = llb["spec"]["nodes"]
            .as_array()?
            .iter()
            .any(|n| n["name"] == added.name.as_str());
        let has_port = llb["spec"]["l4"]
            .as_array()?
            .iter()
            .any(|l| l["port"] == 9001);
        (has_node && has_port).then_some(())
    });
    // The new listener answers, so the datapath has reloaded.
    wait_for("new port answers", T, || {
        env.rt
            .block_on(tcp_echo(SocketAddr::new(ip, 9001), "new port\n"))
            .ok()
    });
    // Every held connection keeps exchanging past the reload.
    let after = exchanged.load(Ordering::Relaxed);
    wait_for("exchanges continue after the reload", T, || {
        (exchanged.load(Ordering::Relaxed) >= after + HELD as u64 * 3).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for (i, task) in tasks.into_iter().enumerate() {
        let lines = env
            .rt
            .block_on(task)
            .expect("task")
            .unwrap_or_else(|e| panic!("connection {i} broke: {e}"));
        assert!(lines > 3, "connection {i} exchanged only {lines} lines");
    }
}
