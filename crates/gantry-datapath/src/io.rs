//! Client connections: byte counting, idleness, and the L4 byte relay.
//!
//! L7 streams (plain and TLS) go through [`MeteredIo`]: it feeds the
//! per-frontend byte counters as bytes move and stamps the last activity,
//! which [`idle_expired`] turns into the idle timeout without a timer per
//! read. L4 TCP streams are moved by [`relay`], which does the same
//! accounting itself.
//!
//! [`relay`] holds no buffer of its own while a connection is quiet: bytes
//! are read into a per-thread scratch buffer and written on at once; only
//! what the destination cannot take right away is copied into a buffer of
//! the connection, which is freed as soon as it has been written. Thousands
//! of idle connections then cost their sockets and task, not 16 KiB of
//! buffers each.

use std::{
    cell::RefCell,
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
    net::TcpStream,
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

/// Most bytes one read of [`relay`] moves: large enough that a bulk stream
/// needs few system calls, and the most a stalled direction buffers.
const RELAY_CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where [`relay`] reads; never held across an await, so one per
    /// runtime thread serves every connection of that thread.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; RELAY_CHUNK].into_boxed_slice());
}

/// Moves bytes both ways between `client` and `upstream` until both
/// directions have ended; the end of one direction is passed on as a
/// half-close (`shutdown(SHUT_WR)`) of the other side. Traffic is counted
/// into `activity`. Ends at the first error of either direction.
///
/// On Linux the bytes are spliced through pooled pipes and never enter the
/// process (see `splice`); elsewhere, or when no pipe can be had, they are
/// copied through a per-thread buffer.
pub(crate) async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    activity: &Activity,
) -> io::Result<()> {
    relay_as(client, upstream, activity, cfg!(target_os = "linux")).await
}

/// [`relay`], splicing or copying.
async fn relay_as(
    client: &TcpStream,
    upstream: &TcpStream,
    activity: &Activity,
    splice: bool,
) -> io::Result<()> {
    tokio::try_join!(
        pump(client, upstream, splice, |n| activity.add_in(n), |_| {}),
        pump(upstream, client, splice, |_| {}, |n| activity.add_out(n)),
    )?;
    Ok(())
}

/// What one read did.
enum Step {
    /// The source ended.
    Eof,
    /// Readiness was stale; wait again.
    Again,
    /// Bytes were moved, and those the destination did not take yet are
    /// returned.
    Moved(Vec<u8>),
}

/// One direction of [`relay`]: `on_read` and `on_write` see the byte counts
/// read from `from` and written to `to`.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    splice: bool,
    on_read: impl Fn(usize),
    on_write: impl Fn(usize),
) -> io::Result<()> {
    loop {
        from.readable().await?;
        #[cfg(target_os = "linux")]
        if splice {
            match crate::splice::pump(from, to, &on_write).await? {
                crate::splice::Spliced::Eof => break,
                crate::splice::Spliced::Again => continue,
                crate::splice::Spliced::Moved(n) => {
                    on_read(n);
                    continue;
                }
                crate::splice::Spliced::NoPipe => {}
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = splice;
        match copy_step(from, to, &on_read, &on_write)? {
            Step::Eof => break,
            Step::Again => {}
            // Stop reading until the destination took the rest: a slow
            // reader holds at most one chunk here.
            Step::Moved(rest) => {
                let mut sent = 0;
                while sent < rest.len() {
                    to.writable().await?;
                    match to.try_write(&rest[sent..]) {
                        Ok(m) => {
                            on_write(m);
                            sent += m;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    socket2::SockRef::from(to).shutdown(std::net::Shutdown::Write)
}

/// Reads what `from` has into the per-thread buffer and writes what `to`
/// takes at once; the rest is returned.
fn copy_step(
    from: &TcpStream,
    to: &TcpStream,
    on_read: &impl Fn(usize),
    on_write: &impl Fn(usize),
) -> io::Result<Step> {
    SCRATCH.with_borrow_mut(|buf| {
        let n = match from.try_read(buf) {
            Ok(0) => return Ok(Step::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Again),
            Err(e) => return Err(e),
        };
        on_read(n);
        let written = match to.try_write(&buf[..n]) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        on_write(written);
        Ok(Step::Moved(buf[written..n].to_vec()))
    })
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A connected pair: (the end we drive, the end the relay gets).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ours = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (theirs, _) = listener.accept().await.expect("accept");
        (ours, theirs)
    }

    #[tokio::test]
    async fn relay_moves_everything_through_a_slow_reader_and_passes_half_closes() {
        // Spliced on Linux; copied elsewhere, and where no pipe can be had.
        for splice in [cfg!(target_os = "linux"), false] {
            through_a_slow_reader(splice).await;
        }
    }

    async fn through_a_slow_reader(splice: bool) {
        let (mut client, client_side) = pair().await;
        let (mut node, node_side) = pair().await;
        let (bytes_in, bytes_out) = (Counter::default(), Counter::default());
        let activity = Activity::new(bytes_in.clone(), bytes_out.clone(), Gauge::default());
        let relay =
            tokio::spawn(
                async move { relay_as(&client_side, &node_side, &activity, splice).await },
            );
        // Far more than a chunk and than socket buffers, while the node
        // does not read yet: the relay has to hold back and resume.
        let sent: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                client.write_all(&sent).await.expect("write");
                client.shutdown().await.expect("half-close");
                client
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut got = Vec::new();
        node.read_to_end(&mut got)
            .await
            .expect("read until the half-close");
        assert!(
            got == sent,
            "bytes arrive whole and in order (splice: {splice})"
        );
        node.write_all(b"bye").await.expect("answer");
        node.shutdown().await.expect("node half-close");
        let mut client = writer.await.expect("writer");
        let mut answer = Vec::new();
        client
            .read_to_end(&mut answer)
            .await
            .expect("answer and close");
        assert_eq!(answer, b"bye");
        relay
            .await
            .expect("relay task")
            .expect("relay ends cleanly");
        assert_eq!(bytes_in.get(), sent.len() as u64);
        assert_eq!(bytes_out.get(), 3);
    }
}
