//! Real helm against the emulator (a chart with a CRD), and Gantry's own CRDs
//! applied with kubectl.

use super::*;

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
