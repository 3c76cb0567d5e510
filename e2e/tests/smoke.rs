//! Smoke suite: the real `kubectl` and `helm` binaries against the Kubernetes
//! API emulator running as its own process, over HTTPS as a real cluster
//! would serve them.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use gantry_e2e::{Cluster, ok, testdata, tools_dir, wait_for};
use serde_json::Value;

fn json(out: String) -> Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

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
fn helm_install_upgrade_uninstall_chart_with_crd() {
    let c = Cluster::start(true).expect("cluster");
    let chart = testdata().join("charts/smoke");
    let chart = chart.to_str().expect("utf-8 path");

    let out = ok(c
        .helm([
            "install",
            "demo",
            chart,
            "--namespace",
            "smoke",
            "--create-namespace",
            "--timeout",
            "60s",
        ])
        .expect("helm"));
    assert!(out.contains("STATUS: deployed"), "{out}");
    let crd = json(ok(c
        .kubectl(["get", "crd", "widgets.smoke.example.com", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(crd["spec"]["group"], "smoke.example.com");
    let widget = json(ok(c
        .kubectl(["-n", "smoke", "get", "widget", "demo-widget", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(
        widget["spec"]["size"], 3,
        "schema default applied: {widget}"
    );
    let svc = json(ok(c
        .kubectl(["-n", "smoke", "get", "svc", "demo-svc", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);

    let out = ok(c
        .helm([
            "upgrade",
            "demo",
            chart,
            "--namespace",
            "smoke",
            "--set",
            "port=8080",
        ])
        .expect("helm"));
    assert!(out.contains("REVISION: 2"), "{out}");
    let svc = json(ok(c
        .kubectl(["-n", "smoke", "get", "svc", "demo-svc", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    let cm = json(ok(c
        .kubectl(["-n", "smoke", "get", "cm", "demo-config", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(cm["data"]["port"], "8080");

    let list = ok(c
        .helm(["list", "--namespace", "smoke", "-o", "json"])
        .expect("helm"));
    assert!(list.contains("\"name\":\"demo\""), "{list}");

    let out = ok(c
        .helm(["uninstall", "demo", "--namespace", "smoke"])
        .expect("helm"));
    assert!(out.contains("uninstalled"), "{out}");
    for (kind, name) in [
        ("svc", "demo-svc"),
        ("cm", "demo-config"),
        ("deploy", "demo-web"),
        ("widget", "demo-widget"),
    ] {
        let got = c
            .kubectl(["-n", "smoke", "get", kind, name])
            .expect("kubectl");
        assert!(!got.status.success(), "{kind}/{name} left after uninstall");
    }
    // Helm keeps CRDs on uninstall, as documented.
    ok(c.kubectl(["get", "crd", "widgets.smoke.example.com"])
        .expect("kubectl"));
}

#[test]
fn kubectl_describe_lists_events_published_through_events_v1() {
    let c = Cluster::start(true).expect("cluster");
    ok(
        c.kubectl(["create", "service", "loadbalancer", "web", "--tcp=80:8080"])
            .expect("kubectl"),
    );
    let svc = json(ok(c
        .kubectl(["get", "svc", "web", "-o", "json"])
        .expect("kubectl")));
    let uid = svc["metadata"]["uid"].as_str().expect("uid");
    // MicroTime from the server's own clock, so the Event's age is sane.
    let created = svc["metadata"]["creationTimestamp"]
        .as_str()
        .expect("creationTimestamp");
    let event_time = created.replace('Z', ".000000Z");
    let manifest = c.scratch().join("event.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: web.provisioned\n\
             eventTime: \"{event_time}\"\nreportingController: gantry.io/controller\n\
             reportingInstance: gantry-0\naction: Provision\nreason: Provisioned\ntype: Normal\n\
             note: load balancer 192.0.2.10 is ready\n\
             regarding:\n  apiVersion: v1\n  kind: Service\n  name: web\n  namespace: default\n  uid: \"{uid}\"\n"
        ),
    )
    .expect("write");
    let out = ok(c
        .kubectl(
            ["create", "-f"]
                .iter()
                .map(std::ffi::OsStr::new)
                .chain([manifest.as_os_str()]),
        )
        .expect("kubectl"));
    assert!(
        out.contains("event.events.k8s.io/web.provisioned created"),
        "{out}"
    );

    // describe reads core v1 Events by involvedObject field selectors.
    let described = ok(c.kubectl(["describe", "svc", "web"]).expect("kubectl"));
    let events = described
        .split_once("Events:")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no Events section: {described}"));
    let row = events
        .lines()
        .find(|l| l.contains("Provisioned"))
        .unwrap_or_else(|| panic!("event not listed: {described}"));
    assert!(row.contains("Normal"), "{row}");
    assert!(row.contains("gantry.io/controller"), "{row}");
    assert!(row.contains("load balancer 192.0.2.10 is ready"), "{row}");

    // The same object through the core API, converted.
    let core = json(ok(c
        .kubectl(["get", "events.v1.", "web.provisioned", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "load balancer 192.0.2.10 is ready");
    assert_eq!(core["involvedObject"]["uid"], uid);
    assert_eq!(core["reportingComponent"], "gantry.io/controller");

    // A field the server cannot select on is refused with its message.
    let bad = c
        .kubectl(["get", "events", "--field-selector", "message=x"])
        .expect("kubectl");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("field label not supported: message"),
        "{bad:?}"
    );
}

#[test]
fn kubectl_typed_creates_and_scale_send_protobuf_the_server_decodes() {
    let c = Cluster::start(true).expect("cluster");
    // kubectl's typed clients send these bodies as protobuf.
    ok(c.kubectl([
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
        "--port=8080",
        "--",
        "/bin/sh",
        "-c",
        "echo hi",
    ])
    .expect("kubectl"));
    ok(c.kubectl([
        "create",
        "deployment",
        "idle",
        "--image=nginx:1",
        "--replicas=0",
    ])
    .expect("kubectl"));
    ok(c.kubectl([
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "echo",
        "hi",
    ])
    .expect("kubectl"));
    ok(c.kubectl([
        "create",
        "ingress",
        "front",
        "--rule=testhost.com/*=service-test:80",
    ])
    .expect("kubectl"));

    let d = json(ok(c
        .kubectl(["get", "deploy", "web", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(
        container["command"],
        serde_json::json!(["/bin/sh", "-c", "echo hi"])
    );
    // An unset template timestamp stays null, not the Unix epoch.
    assert!(
        d["spec"]["template"]["metadata"]["creationTimestamp"].is_null(),
        "{d}"
    );
    // An explicit zero survives (a pointer field in Go).
    let idle = json(ok(c
        .kubectl(["get", "deploy", "idle", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(idle["spec"]["replicas"], 0);

    let j = json(ok(c
        .kubectl(["get", "job", "once", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        j["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    let ing = json(ok(c
        .kubectl(["get", "ingress", "front", "-o", "json"])
        .expect("kubectl")));
    let path = &ing["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(ing["spec"]["rules"][0]["host"], "testhost.com");
    assert_eq!(path["backend"]["service"]["name"], "service-test");
    assert_eq!(path["backend"]["service"]["port"]["number"], 80);

    // kubectl scale goes through the autoscaling/v1 scale subresource.
    let out = ok(c
        .kubectl(["scale", "deployment", "web", "--replicas=3"])
        .expect("kubectl"));
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let d = json(ok(c
        .kubectl(["get", "deploy", "web", "-o", "json"])
        .expect("kubectl")));
    assert_eq!(d["spec"]["replicas"], 3);
    // A stale precondition is refused.
    let stale = c
        .kubectl([
            "scale",
            "deployment",
            "web",
            "--replicas=5",
            "--current-replicas=2",
        ])
        .expect("kubectl");
    assert!(!stale.status.success(), "{stale:?}");
    // With a matching precondition kubectl PUTs the Scale with its resourceVersion.
    ok(c.kubectl([
        "scale",
        "deployment",
        "web",
        "--replicas=4",
        "--current-replicas=3",
    ])
    .expect("kubectl"));
    let scale = json(ok(c
        .kubectl([
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
        ])
        .expect("kubectl")));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
}

#[test]
fn gantry_crds_apply_with_kubectl_and_print_their_columns() {
    let c = Cluster::start(true).expect("cluster");
    let gantry = gantry_e2e::bin_dir().expect("bins").join("gantry");
    let out = Command::new(&gantry)
        .arg("crd")
        .output()
        .expect("gantry crd");
    assert!(out.status.success(), "{out:?}");
    let crds = c.scratch().join("crds.yaml");
    std::fs::write(&crds, &out.stdout).expect("write");
    let applied = ok(c
        .kubectl(["apply", "-f", crds.to_str().expect("utf-8")])
        .expect("kubectl"));
    assert!(
        applied.contains("loadbalancerclasses.gantry.dev created"),
        "{applied}"
    );
    assert!(
        applied.contains("localloadbalancers.gantry.dev created"),
        "{applied}"
    );

    let class = c.scratch().join("class.yaml");
    std::fs::write(
        &class,
        "apiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: local\nspec:\n  provider: local\n  default: true\n  local:\n    pools: [\"127.0.100.0/24\"]\n",
    )
    .expect("write");
    ok(c.kubectl(["apply", "-f", class.to_str().expect("utf-8")])
        .expect("kubectl"));
    let table = ok(c.kubectl(["get", "lbclass"]).expect("kubectl"));
    let header = table.lines().next().unwrap_or_default();
    for col in ["NAME", "PROVIDER", "DEFAULT"] {
        assert!(header.contains(col), "missing column {col}: {table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("local") && l.contains("local") && l.contains("true")),
        "{table}"
    );
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
