//! A loopback relay between the client and the emulator that re-encodes
//! `fingerprint` and `labelFingerprint` values in answers from the standard
//! base64 alphabet to the URL-safe one (`+` -> `-`, `/` -> `_`; same
//! length, so `Content-Length` still holds).
//!
//! Compute Engine answers fingerprints URL-safe (`"--KE24GB4T0="`) and
//! `google-cloud-compute-v1` decodes them strictly so, while gce-sim answers
//! them in the standard alphabet: any fingerprint with `+` or `/` fails to
//! decode. Requests pass unchanged (the emulator accepts both alphabets).
//! Once gce-sim answers URL-safe this relay changes nothing.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Start relaying to `upstream` (`http://127.0.0.1:PORT`); the relay's URL.
pub async fn start(upstream: &str) -> String {
    let target = upstream.trim_start_matches("http://").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&target).await else {
                    return;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up = async {
                    let _ = tokio::io::copy(&mut client_rx, &mut server_tx).await;
                    let _ = server_tx.shutdown().await;
                };
                let down = async {
                    let mut rewriter = Rewriter::default();
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match server_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        rewriter.apply(&mut buf[..n]);
                        if client_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = client_tx.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    format!("http://{address}")
}

/// The end of both `"fingerprint":"` and `"labelFingerprint":"`.
const KEY: &[u8] = b"ingerprint\":\"";

/// Streaming state: how much of [`KEY`] was seen, or inside a value.
#[derive(Default)]
struct Rewriter {
    matched: usize,
    in_value: bool,
}

impl Rewriter {
    fn apply(&mut self, bytes: &mut [u8]) {
        for b in bytes {
            if self.in_value {
                match *b {
                    b'"' => self.in_value = false,
                    b'+' => *b = b'-',
                    b'/' => *b = b'_',
                    _ => {}
                }
            } else if *b == KEY[self.matched] {
                self.matched += 1;
                if self.matched == KEY.len() {
                    self.in_value = true;
                    self.matched = 0;
                }
            } else {
                self.matched = usize::from(*b == KEY[0]);
            }
        }
    }
}

#[test]
fn rewrites_only_fingerprint_values_across_chunks() {
    let text =
        br#"{"selfLink":"a/b+c","fingerprint":"ab+/cd==","labelFingerprint":"x/y","k":"+/"}"#;
    let mut bytes = text.to_vec();
    let mut r = Rewriter::default();
    let (first, second) = bytes.split_at_mut(30);
    r.apply(first);
    r.apply(second);
    assert_eq!(
        String::from_utf8(bytes).expect("utf8"),
        r#"{"selfLink":"a/b+c","fingerprint":"ab-_cd==","labelFingerprint":"x_y","k":"+/"}"#
    );
}
