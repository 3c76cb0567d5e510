//! Chart suite: the real `helm` binary on `charts/gantry` — lint, rendering
//! of every example checked against RBAC and Pod Security rules, values the
//! schema must reject, and an install into the API emulator whose rendered
//! controller settings provision a Service's address.

mod install;
mod pss;
mod render;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use gantry_e2e::{Scratch, tools_dir};
use serde_json::Value;

/// The chart under test.
fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/gantry")
}

/// The example values files shipped with the chart.
const EXAMPLES: &[&str] = &["aws", "gcp", "local", "multi"];

fn example(name: &str) -> PathBuf {
    chart_dir().join("examples").join(format!("{name}.yaml"))
}

/// helm without a cluster (lint, template), with its caches in a scratch
/// directory so runs never share state.
fn helm(args: &[&str]) -> Output {
    let scratch = Scratch::new("chart-helm").expect("scratch");
    let home = scratch.path();
    Command::new(tools_dir().expect("tools").join("helm"))
        .args(args)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run helm")
}

/// `helm template` of the chart with extra arguments; the objects rendered.
fn template(extra: &[&str]) -> Vec<Value> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        "gantry",
        chart.to_str().expect("utf-8 path"),
        "--namespace",
        "gantry-system",
    ];
    args.extend_from_slice(extra);
    let out = gantry_e2e::ok(helm(&args));
    docs(&out)
}

/// The non-empty documents of a multi-document YAML stream (as helm prints
/// it, separated by `---` lines), as JSON.
fn docs(yaml: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in yaml.lines().chain(std::iter::once("---")) {
        if line.trim_end() == "---" {
            let v: Value = serde_yaml::from_str(&current)
                .unwrap_or_else(|e| panic!("rendered YAML ({e}):\n{current}"));
            if !v.is_null() {
                out.push(v);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    out
}

/// The objects of one kind.
fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn lint_strict_default_and_every_example() {
    let chart = chart_dir();
    let chart = chart.to_str().expect("utf-8 path");
    let out = helm(&["lint", "--strict", chart]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "default values: {text}");
    assert!(text.contains("0 chart(s) failed"), "{text}");
    for name in EXAMPLES {
        let file = example(name);
        let out = helm(&[
            "lint",
            "--strict",
            chart,
            "-f",
            file.to_str().expect("utf-8 path"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "example {name}: {text}");
        assert!(!text.contains("[WARNING]"), "example {name}: {text}");
    }
}

/// Values the schema (or the chart's own checks) must refuse, and the text
/// the error must contain: the field's path and what is wrong with it.
const BAD_VALUES: &[(&[&str], &str)] = &[
    (
        &["classes[0].name=a", "classes[0].provider=azure"],
        "/classes/0/provider': value must be one of 'aws', 'gcp', 'local'",
    ),
    (
        &["classes[0].name=Not_DNS", "classes[0].provider=aws"],
        "/classes/0/name': 'Not_DNS' does not match pattern",
    ),
    (
        &["controller.replicas=0"],
        "/controller/replicas': minimum: got 0, want 1",
    ),
    (&["controller.logFormat=xml"], "/controller/logFormat'"),
    (
        &["datapath.capabilities={NET_ADMIN}"],
        "/datapath/capabilities/0': value must be 'NET_BIND_SERVICE'",
    ),
    (
        &["securityContext.allowPrivilegeEscalation=true"],
        "/securityContext/allowPrivilegeEscalation'",
    ),
    (
        &["podSecurityContext.runAsNonRoot=false"],
        "/podSecurityContext/runAsNonRoot'",
    ),
    (
        &[
            "classes[0].name=lab",
            "classes[0].provider=local",
            "classes[0].settings.mode=bgp",
            "classes[0].settings.pools={192.0.2.0/28}",
        ],
        "/classes/0/settings/mode': value must be one of 'l2', 'nodeAddresses'",
    ),
    (
        &["classes[0].name=lab", "classes[0].provider=local"],
        "missing property 'settings'",
    ),
    (
        &[
            "classes[0].name=edge",
            "classes[0].provider=aws",
            "classes[0].settings.scheme=public",
        ],
        "/classes/0/settings/scheme'",
    ),
    (&["controller.resync=often"], "/controller/resync'"),
    (
        &["controler.replicas=2"],
        "additional properties 'controler' not allowed",
    ),
    (
        &[
            "classes[0].name=a",
            "classes[0].provider=aws",
            "classes[1].name=a",
            "classes[1].provider=gcp",
        ],
        "classes: the name \"a\" is used twice",
    ),
    (
        &["controller.leaderElect=false"],
        "controller.leaderElect: false needs controller.replicas: 1",
    ),
];

#[test]
fn schema_rejects_bad_values_naming_the_field() {
    let chart = chart_dir();
    let chart = chart.to_str().expect("utf-8 path");
    for (sets, want) in BAD_VALUES {
        let mut args = vec!["template", "gantry", chart];
        for s in *sets {
            args.extend(["--set", s]);
        }
        let out = helm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{sets:?} was accepted:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains(want),
            "{sets:?}: error does not say {want:?}:\n{stderr}"
        );
    }
    // The same values with the mistake fixed render: the failures above are
    // the mistakes', not the chart's.
    ok_template(&[
        "--set",
        "controller.replicas=1",
        "--set",
        "controller.leaderElect=false",
    ]);
}

fn ok_template(extra: &[&str]) {
    assert!(!template(extra).is_empty());
}

#[test]
fn every_value_has_a_comment() {
    let text = std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values.yaml");
    let lines: Vec<&str> = text.lines().collect();
    let mut keys = 0;
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let is_key = t
            .split_once(':')
            .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()));
        if t.starts_with('#') || !is_key {
            continue;
        }
        keys += 1;
        assert!(
            i > 0 && lines[i - 1].trim_start().starts_with('#'),
            "values.yaml:{}: `{t}` has no comment above it",
            i + 1
        );
    }
    assert!(keys > 40, "only {keys} keys found");
}
