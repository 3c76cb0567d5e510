//! The newcomer's first command: `gantry dev` prints an external IP for
//! `service-test` and a reply fetched through it, and real `kubectl` with the
//! printed kubeconfig sees the same Service.

use std::{ffi::OsStr, net::SocketAddr, time::Duration};

use gantry_e2e::{Process, Scratch, bin_dir, local::http_get, ok, tools_dir};

#[test]
fn gantry_dev_serves_the_article_example_and_kubectl_sees_it() {
    let scratch = Scratch::new("dev").expect("scratch");
    let kubeconfig = scratch.path().join("dev.kubeconfig");
    let gantry = bin_dir().expect("bins").join("gantry");
    let (mut dev, _) = Process::start(
        "gantry dev",
        &gantry,
        &[
            OsStr::new("dev"),
            OsStr::new("--kubeconfig"),
            kubeconfig.as_os_str(),
        ],
        scratch.path().join("dev.log"),
        "export KUBECONFIG=",
        Duration::from_secs(60),
    )
    .expect("gantry dev printed its kubeconfig within 60 s");
    let out = dev.output();
    let row = out
        .lines()
        .find(|l| l.starts_with("service-test "))
        .unwrap_or_else(|| panic!("no service-test row:\n{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "LoadBalancer", "{row}");
    let external = cols[3];
    let ip: std::net::IpAddr = external
        .parse()
        .unwrap_or_else(|_| panic!("EXTERNAL-IP {external:?}"));
    assert!(out.contains("HTTP 200 OK"), "{out}");
    assert!(
        out.contains("\"pod\":\"service-test-"),
        "reply through the IP names a pod:\n{out}"
    );
    assert!(
        out.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{out}"
    );

    // Real kubectl with the printed kubeconfig shows the same address.
    let kubectl = tools_dir().expect("tools").join("kubectl");
    let table = ok(std::process::Command::new(&kubectl)
        .args(["get", "svc", "service-test"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl"));
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(3) == Some(external)),
        "{table}"
    );

    // It keeps serving: the address answers from another client too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = rt
        .block_on(http_get(SocketAddr::new(ip, 80)))
        .expect("GET through the external IP");
    assert!(body.contains("service-test-"), "{body}");

    // Ctrl-C stops it cleanly and removes what it wrote.
    let status = dev
        .interrupt(Duration::from_secs(30))
        .expect("gantry dev stopped on Ctrl-C");
    assert!(status.success(), "exit status {status}:\n{}", dev.output());
    assert!(!kubeconfig.exists(), "kubeconfig left behind");
    assert!(
        rt.block_on(http_get(SocketAddr::new(ip, 80))).is_err(),
        "still serving after stop"
    );
}
