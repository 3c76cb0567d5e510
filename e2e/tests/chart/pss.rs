//! A checker for the Pod Security Standards' "restricted" profile (which
//! includes "baseline"), applied to the pod templates the chart renders.
//! It covers every control of both profiles that a pod template can break.

use serde_json::Value;

/// Capabilities "restricted" allows adding back (after dropping ALL).
const ALLOWED_ADD: &[&str] = &["NET_BIND_SERVICE"];

/// Every violation of "restricted" in a pod spec, one line each (empty when
/// the pod is restricted).
pub fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut v = Vec::new();
    // Baseline: host namespaces, host paths and ports, privileged, sysctls,
    // AppArmor, SELinux, /proc mount.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[field] == true {
            v.push(format!("spec.{field} is true"));
        }
    }
    for vol in pod["volumes"].as_array().into_iter().flatten() {
        if vol.get("hostPath").is_some() {
            v.push(format!("volume {} is a hostPath", vol["name"]));
        }
        // Restricted: only these volume types.
        let allowed = [
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        let ty = vol
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .find(|k| *k != "name");
        if let Some(ty) = ty
            && !allowed.contains(&ty.as_str())
        {
            v.push(format!("volume {} has type {ty}", vol["name"]));
        }
    }
    let psc = &pod["securityContext"];
    if let Some(sysctls) = psc["sysctls"].as_array()
        && !sysctls.is_empty()
    {
        v.push("pod sets sysctls".into());
    }
    if psc["seLinuxOptions"]["type"].is_string() {
        v.push("pod sets an SELinux type".into());
    }
    if psc["runAsUser"] == 0 {
        v.push("pod runAsUser is 0".into());
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod[*k].as_array().cloned().unwrap_or_default());
    let mut any = false;
    for c in containers {
        any = true;
        let name = c["name"].as_str().unwrap_or("?").to_string();
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            v.push(format!("{name}: privileged"));
        }
        if sc["procMount"].as_str().is_some_and(|p| p != "Default") {
            v.push(format!("{name}: procMount"));
        }
        if sc["seLinuxOptions"]["type"].is_string() {
            v.push(format!("{name}: SELinux type"));
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p.get("hostPort").is_some_and(|h| h != 0) {
                v.push(format!("{name}: hostPort"));
            }
        }
        // Restricted controls.
        if sc["allowPrivilegeEscalation"] != false {
            v.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        let non_root = match sc["runAsNonRoot"].as_bool() {
            Some(b) => b,
            None => psc["runAsNonRoot"] == true,
        };
        if !non_root {
            v.push(format!("{name}: runAsNonRoot is not true"));
        }
        if sc["runAsUser"] == 0 {
            v.push(format!("{name}: runAsUser is 0"));
        }
        let seccomp = sc["seccompProfile"]["type"]
            .as_str()
            .or(psc["seccompProfile"]["type"].as_str());
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            v.push(format!("{name}: seccompProfile is {seccomp:?}"));
        }
        let drop = strings(&sc["capabilities"]["drop"]);
        if !drop.iter().any(|d| d == "ALL") {
            v.push(format!("{name}: capabilities do not drop ALL"));
        }
        for add in strings(&sc["capabilities"]["add"]) {
            if !ALLOWED_ADD.contains(&add.as_str()) {
                v.push(format!("{name}: adds capability {add}"));
            }
        }
    }
    if !any {
        v.push("no containers".into());
    }
    v
}

/// A JSON array of strings.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_checker_catches_each_violation() {
    let good = serde_json::json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}]
    });
    assert_eq!(restricted_violations(&good), Vec::<String>::new());
    let breaks: &[(&str, Value)] = &[
        ("/hostNetwork", true.into()),
        ("/securityContext/runAsNonRoot", false.into()),
        ("/securityContext/seccompProfile/type", "Unconfined".into()),
        (
            "/containers/0/securityContext/allowPrivilegeEscalation",
            true.into(),
        ),
        (
            "/containers/0/securityContext/capabilities/drop",
            serde_json::json!(["NET_RAW"]),
        ),
        (
            "/containers/0/securityContext/capabilities/add",
            serde_json::json!(["NET_ADMIN"]),
        ),
        ("/containers/0/securityContext/privileged", true.into()),
    ];
    for (path, value) in breaks {
        let mut bad = good.clone();
        let parent = path.rsplit_once('/').expect("path").0;
        let key = path.rsplit_once('/').expect("path").1;
        let slot = if parent.is_empty() {
            &mut bad
        } else {
            bad.pointer_mut(parent).expect("parent exists")
        };
        slot[key] = value.clone();
        assert!(
            !restricted_violations(&bad).is_empty(),
            "{path} = {value} passed the checker"
        );
    }
}
