//! The `gce-sim` binary prints its URL and serves the API there.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[tokio::test]
async fn binary_prints_its_url_and_serves() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gce-sim"))
        .args(["--listen", "127.0.0.1:0", "--operation-delay-ms", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn gce-sim");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("first line");
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&url).await.expect("connect");
    let request = format!(
        "GET /compute/v1/projects/p/regions/us-east1 HTTP/1.1\r\nHost: {url}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"kind\":\"compute#region\""),
        "{response}"
    );
    assert!(
        response.contains(&format!(
            "\"selfLink\":\"http://{url}/compute/v1/projects/p/regions/us-east1\""
        )),
        "{response}"
    );
    child.kill().await.expect("kill");
}
