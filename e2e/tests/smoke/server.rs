//! Server behaviour clients rely on: Events shared by both Event APIs, and
//! protobuf request bodies that kubectl sends for typed writes.

use super::*;

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
