//! Client connections wrapped to count bytes and notice idleness.
//!
//! Every accepted stream (L4 and L7, plain and TLS) goes through
//! [`MeteredIo`]: it feeds the per-frontend byte counters as bytes move and
//! stamps the last activity, which [`idle_expired`] turns into the idle
//! timeout without a timer per read.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

/// Per-connection accounting shared by the stream and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    bytes_in: Counter,
    bytes_out: Counter,
    active: Gauge,
}

impl Activity {
    /// Accounting into the frontend's counters; counts the connection as
    /// active until dropped.
    pub fn new(bytes_in: Counter, bytes_out: Counter, active: Gauge) -> Arc<Self> {
        active.inc();
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            bytes_in,
            bytes_out,
            active,
        })
    }

    /// Counts `n` bytes received from the client.
    pub fn add_in(&self, n: usize) {
        self.bytes_in.inc_by(n as u64);
        self.touch();
    }

    /// Counts `n` bytes sent to the client.
    pub fn add_out(&self, n: usize) {
        self.bytes_out.inc_by(n as u64);
        self.touch();
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.active.dec();
    }
}

/// Completes once the connection has moved no byte for `idle`.
pub(crate) async fn idle_expired(activity: Arc<Activity>, idle: Duration) {
    loop {
        let quiet = activity.idle_for();
        if quiet >= idle {
            return;
        }
        tokio::time::sleep(idle - quiet).await;
    }
}

/// A stream that reports its traffic to an [`Activity`].
#[derive(Debug)]
pub(crate) struct MeteredIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> MeteredIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MeteredIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.activity.add_in(n);
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MeteredIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res
            && n > 0
        {
            self.activity.add_out(n);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res
            && n > 0
        {
            self.activity.add_out(n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
