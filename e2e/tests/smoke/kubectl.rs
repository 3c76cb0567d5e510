//! Real kubectl against the emulator: apply, get (tables and watches),
//! describe, the three client patch types, server-side apply, delete, and the
//! Service update rules of the real API server.

use super::*;

#[test]
fn kubectl_apply_get_describe_patch_delete() {
    let c = Cluster::start(true).expect("cluster");
    let svc = testdata().join("smoke/service.yaml");

    let out = ok(c
        .kubectl(
            ["apply", "-f"]
                .iter()
                .map(std::ffi::OsStr::new)
                .chain([svc.as_os_str()]),
        )
        .expect("kubectl"));
    assert!(out.contains("service/service-test created"), "{out}");

    // The server allocated a ClusterIP and a node port, as the article's
    // NodePort Service shows.
    let v = json(ok(c
        .kubectl(["get", "svc", "service-test", "-o", "json"])
        .expect("kubectl")));
    let ip = v["spec"]["clusterIP"].as_str().expect("clusterIP");
    assert!(ip.starts_with("10.96."), "{ip}");
    let node_port = v["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("nodePort");
    assert!((30000..=32767).contains(&node_port), "{node_port}");

    // Table output like a real cluster's.
    let table = ok(c.kubectl(["get", "svc"]).expect("kubectl"));
    let header = table.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ] {
        assert!(header.contains(col), "missing column {col}: {table}");
    }
    assert!(table.contains(&format!("80:{node_port}/TCP")), "{table}");

    let described = ok(c
        .kubectl(["describe", "svc", "service-test"])
        .expect("kubectl"));
    assert!(described.contains("NodePort:"), "{described}");
    assert!(described.contains(&node_port.to_string()), "{described}");

    // Re-applying an unchanged manifest changes nothing.
    let out = ok(c
        .kubectl(
            ["apply", "-f"]
                .iter()
                .map(std::ffi::OsStr::new)
                .chain([svc.as_os_str()]),
        )
        .expect("kubectl"));
    assert!(out.contains("unchanged"), "{out}");

    // The three client patch types.
    ok(c.kubectl([
        "patch",
        "svc",
        "service-test",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"web"}}}"#,
    ])
    .expect("kubectl"));
    ok(c.kubectl([
        "patch",
        "svc",
        "service-test",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/annotations","value":{"a":"b"}}]"#,
    ])
    .expect("kubectl"));
    ok(c.kubectl([
        "patch",
        "svc",
        "service-test",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"ports":[{"name":"https","port":443,"targetPort":8443}]}}"#,
    ])
    .expect("kubectl"));
    let v = json(ok(c
        .kubectl(["get", "svc", "service-test", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(v["metadata"]["labels"]["tier"], "web");
    assert_eq!(v["metadata"]["annotations"]["a"], "b");
    let ports: Vec<u64> = v["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .filter_map(|p| p["port"].as_u64())
        .collect();
    assert_eq!(
        ports.len(),
        2,
        "strategic merge keeps port 80 and adds 443: {ports:?}"
    );
    assert!(ports.contains(&80) && ports.contains(&443), "{ports:?}");
    // The node port of the kept port did not move.
    let kept = v["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["port"] == 80)
        .expect("port 80");
    assert_eq!(kept["nodePort"].as_u64(), Some(node_port));

    // Server-side apply with a field manager of its own.
    let ssa = c.scratch().join("ssa.yaml");
    std::fs::write(
        &ssa,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  k: v1\n",
    )
    .expect("write");
    let out = ok(c
        .kubectl(
            ["apply", "--server-side", "--field-manager", "smoke", "-f"]
                .iter()
                .map(std::ffi::OsStr::new)
                .chain([ssa.as_os_str()]),
        )
        .expect("kubectl"));
    assert!(out.contains("configmap/ssa serverside-applied"), "{out}");
    let v = json(ok(c
        .kubectl(["get", "cm", "ssa", "-o", "json", "--show-managed-fields"])
        .expect("kubectl")));
    assert_eq!(v["data"]["k"], "v1");
    let managers: Vec<&str> = v["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"smoke"), "{managers:?}");

    let out = ok(c
        .kubectl(["delete", "svc", "service-test"])
        .expect("kubectl"));
    assert!(out.contains("deleted"), "{out}");
    let gone = c.kubectl(["get", "svc", "service-test"]).expect("kubectl");
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "{gone:?}"
    );
}

#[test]
fn kubectl_get_watch_sees_changes() {
    let c = Cluster::start(true).expect("cluster");
    let kubectl = tools_dir().expect("tools").join("kubectl");
    let mut watch = Command::new(kubectl)
        .args(["get", "cm", "-w", "--output-watch-events"])
        .env("KUBECONFIG", &c.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Give the watch a moment to be established, then change things.
    std::thread::sleep(Duration::from_millis(500));
    ok(
        c.kubectl(["create", "configmap", "w1", "--from-literal=a=1"])
            .expect("kubectl"),
    );
    ok(c.kubectl(["delete", "configmap", "w1"]).expect("kubectl"));
    let mut seen = Vec::new();
    wait_for(
        "ADDED and DELETED from kubectl get -w",
        Duration::from_secs(15),
        || {
            while let Ok(l) = rx.try_recv() {
                seen.push(l);
            }
            let added = seen
                .iter()
                .any(|l| l.starts_with("ADDED") && l.contains(" w1 "));
            let deleted = seen
                .iter()
                .any(|l| l.starts_with("DELETED") && l.contains(" w1 "));
            (added && deleted).then_some(())
        },
    );
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn kubectl_service_update_rules_match_the_real_server() {
    let c = Cluster::start(true).expect("cluster");
    ok(
        c.kubectl(["create", "service", "loadbalancer", "lb", "--tcp=80:8080"])
            .expect("kubectl"),
    );

    // Setting a class on an existing LoadBalancer is a change, and the class
    // may not change once the Service is a LoadBalancer.
    let out = c
        .kubectl([
            "patch",
            "svc",
            "lb",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"loadBalancerClass":"gantry.dev/x"}}"#,
        ])
        .expect("kubectl");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"The Service "lb" is invalid: spec.loadBalancerClass: Invalid value: "gantry.dev/x": may not change once set"#
        ),
        "{err}"
    );

    // A strategic patch of the type alone releases the node ports and drops
    // the fields ClusterIP does not use.
    let v = json(ok(c
        .kubectl([
            "patch",
            "svc",
            "lb",
            "-p",
            r#"{"spec":{"type":"ClusterIP"}}"#,
            "-o",
            "json",
        ])
        .expect("kubectl")));
    assert!(v["spec"]["ports"][0].get("nodePort").is_none(), "{v}");
    assert!(v["spec"].get("externalTrafficPolicy").is_none(), "{v}");
    assert!(
        v["spec"].get("allocateLoadBalancerNodePorts").is_none(),
        "{v}"
    );
}
