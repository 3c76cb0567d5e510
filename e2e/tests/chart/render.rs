//! `helm template` of the default values and of every example, with the
//! output checked: RBAC, Pod Security, classes, identities.

use serde_json::Value;

use super::{EXAMPLES, example, of_kind, pss, template};

/// What the datapath DaemonSet is documented (in values.yaml and its
/// template) to need beyond "restricted": the host network, because it binds
/// node and external addresses (a "baseline" violation, so no restricted
/// profile is possible for it), and root with only NET_BIND_SERVICE, because
/// runtimes do not give added capabilities to non-root processes; classes in
/// `l2` mode run an announcer container beside it (see `announces`).
const DATAPATH_DOCUMENTED: &[&str] = &[
    "spec.hostNetwork is true",
    "pod runAsUser is 0",
    "datapath: runAsNonRoot is not true",
];

/// Whether the values configure a `local` class in `l2` mode (the default
/// mode), whose datapath announces addresses.
fn announces(values: &Value) -> bool {
    values["classes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["provider"] == "local" && c["settings"]["mode"].as_str().unwrap_or("l2") == "l2")
}

/// Every example, plus the default values, rendered.
fn renders() -> Vec<(String, Vec<Value>, Value)> {
    let mut out = vec![("default".to_string(), template(&[]), Value::Null)];
    for name in EXAMPLES {
        let file = example(name);
        let values: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&file).expect("example")).expect("YAML");
        let objects = template(&["-f", file.to_str().expect("utf-8 path")]);
        out.push(((*name).to_string(), objects, values));
    }
    out
}

#[test]
fn rbac_has_no_wildcards_and_reads_secrets_only_by_get_and_watch() {
    for (name, objects, values) in renders() {
        let roles: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
            .collect();
        assert!(!roles.is_empty(), "{name}: no RBAC rendered");
        for role in roles {
            let role_name = role["metadata"]["name"].as_str().unwrap_or("?");
            for rule in role["rules"].as_array().expect("rules") {
                for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                    assert!(
                        !pss::strings(&rule[field]).iter().any(|s| s.contains('*')),
                        "{name}: {role_name} has a wildcard in {field}: {rule}"
                    );
                }
                assert!(
                    rule.get("nonResourceURLs").is_none(),
                    "{name}: {role_name}: {rule}"
                );
                let resources = pss::strings(&rule["resources"]);
                let verbs = pss::strings(&rule["verbs"]);
                if resources.iter().any(|r| r == "secrets") {
                    assert!(
                        verbs.iter().all(|v| v == "get" || v == "watch"),
                        "{name}: {role_name} reads Secrets with more than get/watch: {rule}"
                    );
                    let want: &[&str] = if role_name.ends_with("-datapath") {
                        &["get"]
                    } else {
                        &["get", "watch"]
                    };
                    assert_eq!(verbs, want, "{name}: {role_name}");
                }
                // Nothing escalates: no RBAC writes, impersonation or binds.
                for v in ["escalate", "bind", "impersonate"] {
                    assert!(!verbs.iter().any(|x| x == v), "{name}: {rule}");
                }
                assert!(
                    !pss::strings(&rule["apiGroups"])
                        .iter()
                        .any(|g| g == "rbac.authorization.k8s.io"),
                    "{name}: {rule}"
                );
            }
        }
        // Leases only in the release namespace, by a Role.
        for role in of_kind(&objects, "ClusterRole") {
            assert!(
                !role.to_string().contains("coordination.k8s.io"),
                "{name}: Leases granted cluster-wide: {role}"
            );
        }
        let roles = of_kind(&objects, "Role");
        for role in &roles {
            assert_eq!(role["metadata"]["namespace"], "gantry-system", "{name}");
        }
        let component = |c: &str| {
            roles
                .iter()
                .filter(|r| r["metadata"]["labels"]["app.kubernetes.io/component"] == c)
                .count()
        };
        assert_eq!(component("controller"), 1, "{name}: the leader Lease Role");
        // The datapath's address Leases only when some class announces.
        assert_eq!(
            component("datapath"),
            usize::from(announces(&values)),
            "{name}"
        );
        assert_eq!(roles.len(), 1 + usize::from(announces(&values)), "{name}");
    }
}

#[test]
fn every_rule_in_the_templates_has_a_comment() {
    let dir = super::chart_dir().join("templates");
    for file in ["rbac-controller.yaml", "rbac-datapath.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).expect("template");
        let lines: Vec<&str> = text.lines().collect();
        let mut rules = 0;
        for (i, line) in lines.iter().enumerate() {
            if line.trim_start().starts_with("- apiGroups:") {
                rules += 1;
                assert!(
                    i > 0 && lines[i - 1].trim_start().starts_with('#'),
                    "{file}:{}: rule without a comment above it",
                    i + 1
                );
            }
        }
        assert!(rules > 0, "{file}: no rules found");
    }
}

#[test]
fn controller_pods_are_restricted_and_the_datapath_adds_only_what_is_documented() {
    for (name, objects, values) in renders() {
        let deployments = of_kind(&objects, "Deployment");
        assert_eq!(deployments.len(), 1, "{name}");
        let pod = &deployments[0]["spec"]["template"]["spec"];
        assert_eq!(
            pss::restricted_violations(pod),
            Vec::<String>::new(),
            "{name}: controller pod is not restricted"
        );
        let c = &pod["containers"][0];
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{name}"
        );
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics", "{name}");
        assert_eq!(deployments[0]["spec"]["replicas"], 2, "{name}");
        assert_eq!(of_kind(&objects, "PodDisruptionBudget").len(), 1, "{name}");

        let has_local = values["classes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["provider"] == "local");
        let daemonsets = of_kind(&objects, "DaemonSet");
        assert_eq!(
            daemonsets.len(),
            usize::from(has_local),
            "{name}: the datapath runs exactly when a local class exists"
        );
        for ds in daemonsets {
            let pod = &ds["spec"]["template"]["spec"];
            let mut got = pss::restricted_violations(pod);
            got.sort();
            let mut want: Vec<String> = DATAPATH_DOCUMENTED.iter().map(|s| s.to_string()).collect();
            if announces(&values) {
                // The announcer is root holding these two and nothing else.
                want.extend(
                    [
                        "announcer: adds capability NET_ADMIN",
                        "announcer: adds capability NET_RAW",
                        "announcer: runAsNonRoot is not true",
                        "announcer: runAsUser is 0",
                    ]
                    .map(String::from),
                );
            }
            want.sort();
            assert_eq!(got, want, "{name}: datapath deviates beyond the documented");
            let sc = &pod["containers"][0]["securityContext"];
            // The proxy never holds NET_ADMIN or NET_RAW, l2 or not.
            assert_eq!(
                pss::strings(&sc["capabilities"]["add"]),
                ["NET_BIND_SERVICE"],
                "{name}"
            );
            assert_eq!(pss::strings(&sc["capabilities"]["drop"]), ["ALL"], "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            let containers = pod["containers"].as_array().expect("containers");
            let announcer = containers.iter().find(|c| c["name"] == "announcer");
            assert_eq!(announcer.is_some(), announces(&values), "{name}");
            let separate = pod["containers"][0]["env"]
                .as_array()
                .expect("env")
                .iter()
                .any(|e| e["name"] == "GANTRY_DATAPATH_ANNOUNCER" && e["value"] == "separate");
            assert_eq!(
                separate,
                announces(&values),
                "{name}: datapath told to leave announcing"
            );
            if let Some(a) = announcer {
                let asc = &a["securityContext"];
                assert_eq!(
                    pss::strings(&asc["capabilities"]["add"]),
                    ["NET_ADMIN", "NET_RAW"],
                    "{name}"
                );
                assert_eq!(
                    pss::strings(&asc["capabilities"]["drop"]),
                    ["ALL"],
                    "{name}"
                );
                assert_eq!(asc["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(a["args"], serde_json::json!(["announce"]), "{name}");
            }
            let env = &pod["containers"][0]["env"];
            assert!(
                env.as_array()
                    .expect("env")
                    .iter()
                    .any(|e| e["name"] == "NODE_NAME"
                        && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"),
                "{name}: NODE_NAME from the downward API: {env}"
            );
        }
    }
}

#[test]
fn one_loadbalancerclass_and_ingressclass_per_configured_class() {
    for (name, objects, values) in renders() {
        let classes = values["classes"].as_array().cloned().unwrap_or_default();
        let lbcs = of_kind(&objects, "LoadBalancerClass");
        let ics = of_kind(&objects, "IngressClass");
        assert_eq!(lbcs.len(), classes.len(), "{name}");
        assert_eq!(ics.len(), classes.len(), "{name}");
        for class in &classes {
            let cname = &class["name"];
            let provider = class["provider"].as_str().expect("provider");
            let lbc = lbcs
                .iter()
                .find(|o| &o["metadata"]["name"] == cname)
                .unwrap_or_else(|| panic!("{name}: no LoadBalancerClass {cname}"));
            assert_eq!(lbc["apiVersion"], "gantry.dev/v1alpha1");
            assert_eq!(lbc["spec"]["provider"], provider, "{name}");
            assert_eq!(lbc["spec"][provider], class["settings"], "{name}: settings");
            let default = class["default"] == true;
            assert_eq!(lbc["spec"]["default"], default, "{name}");
            if let Some(aliases) = class.get("aliases") {
                assert_eq!(&lbc["spec"]["aliases"], aliases, "{name}");
            }
            let ic = ics
                .iter()
                .find(|o| &o["metadata"]["name"] == cname)
                .unwrap_or_else(|| panic!("{name}: no IngressClass {cname}"));
            assert_eq!(ic["spec"]["controller"], "gantry.dev/ingress-controller");
            assert_eq!(ic["spec"]["parameters"]["apiGroup"], "gantry.dev");
            assert_eq!(ic["spec"]["parameters"]["kind"], "LoadBalancerClass");
            assert_eq!(&ic["spec"]["parameters"]["name"], cname);
            assert_eq!(ic["spec"]["parameters"]["scope"], "Cluster");
            let marked = ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"]
                == "true";
            assert_eq!(marked, default, "{name}: default IngressClass annotation");
        }
    }
}

#[test]
fn cloud_identities_reach_the_controller() {
    for (name, objects, values) in renders() {
        let sa = of_kind(&objects, "ServiceAccount")
            .into_iter()
            .find(|s| {
                s["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-controller"))
            })
            .unwrap_or_else(|| panic!("{name}: no controller ServiceAccount"));
        let want = &values["serviceAccount"]["annotations"];
        if want.is_object() {
            assert_eq!(&sa["metadata"]["annotations"], want, "{name}");
        }
        let deployment = of_kind(&objects, "Deployment")[0];
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"], "{name}");
        if let Some(secret) = values["credentials"]["existingSecret"].as_str() {
            assert_eq!(
                pod["containers"][0]["envFrom"][0]["secretRef"]["name"], secret,
                "{name}"
            );
        }
    }
    // IRSA and Workload Identity, as the aws and gcp examples set them.
    let aws = std::fs::read_to_string(example("aws")).expect("example");
    assert!(aws.contains("eks.amazonaws.com/role-arn"));
    let gcp = std::fs::read_to_string(example("gcp")).expect("example");
    assert!(gcp.contains("iam.gke.io/gcp-service-account"));
}

#[test]
fn optional_objects_render_when_enabled_and_stay_restricted() {
    let objects = template(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "credentials.existingSecret=cloud",
        "--set",
        "credentials.gcpKeyFile=key.json",
    ]);
    let monitors = of_kind(&objects, "ServiceMonitor");
    assert_eq!(monitors.len(), 1);
    let service = of_kind(&objects, "Service")[0];
    for (k, v) in monitors[0]["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "ServiceMonitor selects {k}"
        );
    }
    assert_eq!(monitors[0]["spec"]["endpoints"][0]["port"], "metrics");
    let policies = of_kind(&objects, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    assert_eq!(
        policies[0]["spec"]["ingress"][0]["ports"][0]["port"],
        "metrics"
    );

    // A Google key from a Secret: mounted read-only, pointed at, and the pod
    // is still restricted (secret volumes are allowed).
    let pod = &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"];
    assert_eq!(pss::restricted_violations(pod), Vec::<String>::new());
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "cloud");
    let c = &pod["containers"][0];
    assert_eq!(c["volumeMounts"][0]["readOnly"], true);
    assert!(
        c["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "GOOGLE_APPLICATION_CREDENTIALS"
                && e["value"] == "/var/run/secrets/gantry/gcp/key.json"),
        "{c}"
    );
}
