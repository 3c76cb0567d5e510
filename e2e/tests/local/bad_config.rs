//! Bad configuration ends as a Warning Event and a condition on the object,
//! never a crash: an exhausted pool, an address outside every pool, and an
//! Ingress TLS Secret without its key, while the datapath keeps serving
//! what it served before.

use std::net::{IpAddr, SocketAddr};

use gantry_e2e::{
    local::LocalEnv,
    manifests::{echo, service},
    wait_for,
};

use crate::{
    ingress::{INGRESS_CLASS, backend, create_secret, ingress_ip, pki},
    support::{T, echo_text, https, service_condition, tls_connector, wait_warning},
};

/// An echo app and a LoadBalancer Service `name` on port 80; `spec_extra`
/// holds more `spec` fields, one `key: value` a line.
fn lb(name: &str, annotations: &str, spec_extra: &str) -> String {
    format!(
        "{}---\n{}",
        echo(name, 1, "{name: http, containerPort: 8080}").text(name),
        service(
            name,
            "LoadBalancer",
            "{name: http, port: 80, targetPort: http}"
        )
        .annotations(annotations)
        .spec(spec_extra),
    )
}

/// Whether the controller and the datapath are both still running.
fn both_alive(env: &mut LocalEnv) -> bool {
    env.controller.as_mut().is_some_and(|c| !c.exited()) && !env.datapath.exited()
}

/// Class `tiny` with a one-address pool, its first Service holding that
/// address and a second Service waiting; the address.
fn exhaust_tiny_pool(env: &mut LocalEnv, slot: u8) -> IpAddr {
    let single = format!("127.{}.12.7/32", 20 + slot);
    env.apply(
        "tiny",
        &format!(
            "apiVersion: gantry.dev/v1alpha1\nkind: LoadBalancerClass\nmetadata:\n  name: tiny\nspec:\n  provider: local\n  local:\n    mode: l2\n    pools: [\"{single}\"]\n"
        ),
    );
    env.apply("first", &lb("first", "gantry.dev/class: tiny", ""));
    let ip = env.wait_ip("first", T);
    assert_eq!(format!("{ip}/32"), single);
    env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"first-", T);

    env.apply("second", &lb("second", "gantry.dev/class: tiny", ""));
    let note = wait_warning(env, "second", &["address pool"]);
    assert!(note.contains("tiny"), "Event names the class: {note}");
    let ready = wait_for("Ready=False on the second Service", T, || {
        service_condition(env, "second", "Ready").filter(|c| c["status"] == "False")
    });
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains("address pool"), "{ready}");
    assert_eq!(env.service_ip("second"), None, "no address while exhausted");
    assert_eq!(
        env.service_ip("first"),
        Some(ip),
        "the first keeps its address"
    );
    assert!(both_alive(env), "a process died on an exhausted pool");
    ip
}

#[test]
fn exhausted_pool_is_reported_on_the_waiting_service() {
    let mut env = LocalEnv::start(12).expect("environment");
    let ip = exhaust_tiny_pool(&mut env, 12);
    // The holder keeps serving while the other waits.
    env.wait_http(SocketAddr::new(ip, 80), "\"pod\":\"first-", T);
}

#[test]
fn freed_address_goes_to_the_waiting_service() {
    let mut env = LocalEnv::start(15).expect("environment");
    let ip = exhaust_tiny_pool(&mut env, 15);
    env.kubectl(&["delete", "svc", "first", "--wait=true", "--timeout=30s"]);
    let got = env.wait_ip("second", T);
    assert_eq!(got, ip, "the freed address goes to the waiting Service");
    env.wait_http(SocketAddr::new(got, 80), "\"pod\":\"second-", T);
    wait_for("Ready=True on the second Service", T, || {
        service_condition(&env, "second", "Ready").filter(|c| c["status"] == "True")
    });
}

#[test]
fn address_outside_every_pool_is_reported() {
    let slot = 13;
    let mut env = LocalEnv::start(slot).expect("environment");
    env.apply("good", &lb("good", "", ""));
    let good = env.wait_ip("good", T);
    let outside = format!("127.{}.99.9", 20 + slot);
    env.apply(
        "wrong",
        &lb("wrong", "", &format!("loadBalancerIP: \"{outside}\"")),
    );
    let note = wait_warning(&env, "wrong", &["spec.loadBalancerIP", &outside]);
    eprintln!("Event: {note}");
    let ready = wait_for("Ready=False naming the field", T, || {
        service_condition(&env, "wrong", "Ready").filter(|c| c["status"] == "False")
    });
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.loadBalancerIP") && message.contains(&outside),
        "{ready}"
    );
    assert_eq!(
        env.service_ip("wrong"),
        None,
        "no address outside the pools"
    );
    // Nothing crashed and the other Service keeps answering.
    assert!(both_alive(&mut env), "a process died on a bad address");
    env.wait_http(SocketAddr::new(good, 80), "\"pod\":\"good-", T);
}

#[test]
fn tls_secret_without_key_keeps_the_last_good_configuration() {
    let mut env = LocalEnv::start(14).expect("environment");
    env.apply("keeper", &lb("keeper", "", ""));
    let keeper = env.wait_ip("keeper", T);
    env.apply("class", INGRESS_CLASS);
    env.apply("alpha", &backend("alpha"));
    let host = "a.example.test";
    let pki = pki(&[host]);
    let (cert, key, der) = &pki.leaves[host];
    create_secret(&env, "good-tls", &[("tls.crt", cert), ("tls.key", key)]);
    env.apply(
        "site",
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: site
spec:
  ingressClassName: gantry
  tls:
  - {hosts: [a.example.test], secretName: good-tls}
  rules:
  - host: a.example.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
"#,
    );
    let ip = ingress_ip(&env, "site");
    let (plain, secure) = (SocketAddr::new(ip, 80), SocketAddr::new(ip, 443));
    let connector = tls_connector(&pki.ca_der);
    let serving = |env: &LocalEnv| {
        let http_ok = echo_text(env, plain, host, "/").as_deref() == Some("alpha");
        let https_ok = env
            .rt
            .block_on(https(&connector, secure, host))
            .is_ok_and(|(leaf, body)| leaf == *der && body.contains("\"text\":\"alpha\""));
        http_ok && https_ok
    };
    wait_for("Ingress serving HTTP and HTTPS", T, || {
        serving(&env).then_some(())
    });

    // A Secret lacking tls.key replaces the good one in the TLS section.
    create_secret(&env, "keyless", &[("tls.crt", cert.as_str())]);
    env.kubectl(&[
        "patch",
        "ingress",
        "site",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"tls":[{"hosts":["a.example.test"],"secretName":"keyless"}]}}"#,
    ]);
    let note = wait_warning(&env, "site", &["keyless"]);
    assert!(note.contains("tls.key"), "Event says what is wrong: {note}");
    assert!(both_alive(&mut env), "a process died on a keyless Secret");
    // The last good configuration (the good certificate included) is still
    // served, and so is every other balancer.
    for _ in 0..10 {
        assert!(
            serving(&env),
            "the Ingress's previous configuration keeps answering"
        );
        env.http_get(SocketAddr::new(keeper, 80))
            .expect("another Service keeps answering");
    }
    assert_eq!(
        ingress_ip(&env, "site"),
        ip,
        "the Ingress keeps its address"
    );
}
