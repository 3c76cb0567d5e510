//! The load of each case: wrk for HTTP and HTTPS throughput, and small
//! Rust clients for fixed-rate latency, TCP bulk, TCP connection rate and
//! idle connections.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::Command,
};

use crate::error::BenchError;

/// Requests per second measured by `wrk -t 1 -c conns -d secs url`.
pub async fn wrk(url: &str, conns: usize, secs: u64) -> Result<f64, BenchError> {
    let out = Command::new("wrk")
        .args(["-t", "1", "-c", &conns.to_string(), "-d"])
        .arg(format!("{secs}s"))
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| BenchError::Spawn {
            what: "wrk".into(),
            source,
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok());
    // Socket errors or non-2xx answers mean the peer is not doing the job.
    let failed = text.contains("Non-2xx") || text.contains("Socket errors");
    match rps {
        Some(r) if !failed => Ok(r),
        _ => Err(BenchError::Wrk {
            target: url.into(),
            output: text,
        }),
    }
}

/// Latency percentiles of a fixed-rate run, microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

/// Sends `rate` requests/s over `conns` keep-alive connections for `secs`,
/// each connection on its own schedule, and measures each request from its
/// send to the end of its response. The schedule is kept with tokio's
/// millisecond timer, so requests leave in small bursts at each tick, the
/// same for every peer.
pub async fn paced(
    addr: SocketAddr,
    rate: f64,
    conns: usize,
    secs: f64,
) -> Result<Latency, BenchError> {
    let period = Duration::from_secs_f64(conns as f64 / rate.max(1.0));
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for i in 0..conns {
        let offset = period.mul_f64(i as f64 / conns as f64);
        tasks.push(tokio::spawn(paced_conn(addr, start + offset, period, end)));
    }
    let mut all = Vec::new();
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(Ok(mut v)) => all.append(&mut v),
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(e.to_string()),
        }
    }
    if let Some(reason) = failure {
        return Err(BenchError::Measure {
            case: "latency",
            peer: addr.to_string(),
            reason,
        });
    }
    if all.is_empty() {
        return Err(BenchError::Measure {
            case: "latency",
            peer: addr.to_string(),
            reason: "no request completed".into(),
        });
    }
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[i.min(all.len() - 1)] as f64
    };
    Ok(Latency {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

async fn paced_conn(
    addr: SocketAddr,
    mut next: Instant,
    period: Duration,
    end: Instant,
) -> Result<Vec<u32>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut out = Vec::new();
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let req = http::Request::get("/")
            .header("host", "bench.test")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        resp.into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        out.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        next += period;
    }
    Ok(out)
}

/// Gbit/s pushed by one TCP stream to `addr` (the sink) for `secs`.
pub async fn bulk(addr: SocketAddr, secs: f64) -> Result<f64, BenchError> {
    let fail = |reason: String| BenchError::Measure {
        case: "tcp bulk",
        peer: addr.to_string(),
        reason,
    };
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let buf = vec![0x5au8; 256 * 1024];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while Instant::now() < end {
        s.write_all(&buf).await.map_err(|e| fail(e.to_string()))?;
        sent += buf.len() as u64;
    }
    let gbps = sent as f64 * 8.0 / start.elapsed().as_secs_f64() / 1e9;
    let _ = s.shutdown().await;
    Ok(gbps)
}

/// TCP connections/s through `addr` (the greeter): `conns` loops of
/// connect, read the backend's byte, close, for `secs`. Returns the rate
/// and the number of failed attempts.
pub async fn conn_rate(addr: SocketAddr, conns: usize, secs: f64) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (done, failed) = (done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut b = [0u8; 1];
            while Instant::now() < end {
                let ok = match TcpStream::connect(addr).await {
                    Ok(mut s) => matches!(s.read(&mut b).await, Ok(1)),
                    Err(_) => false,
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (rate, failed.load(Ordering::Relaxed))
}

/// Opens `n` connections to `addr` and keeps them idle until dropped.
pub async fn open_idle(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>, BenchError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Measure {
                case: "idle connections",
                peer: addr.to_string(),
                reason: e.to_string(),
            })?;
        v.push(s);
    }
    Ok(v)
}
