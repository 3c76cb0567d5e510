//! A connection beside its watchdogs (deadlines, idle timeout, drain and
//! close signals), each side polled only when it was woken.
//!
//! `select!` polls every branch whenever any of them wakes the task. A
//! connection's task wakes several times per request for its sockets, and
//! polling its timers and cancellation tokens each time costs as much as a
//! good part of the request. [`watched`] gives the watchdogs a waker of
//! their own, which marks them due before waking the task, so socket
//! wake-ups poll the connection alone.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures::task::AtomicWaker;

/// Which side finished first.
#[derive(Debug)]
pub(crate) enum Either<A, B> {
    /// The connection.
    Main(A),
    /// A watchdog.
    Watch(B),
}

/// Runs `main` and `watch` together until either finishes; `watch` is
/// polled first, and afterwards only when it woke itself.
///
/// Both are pinned by the caller: taking them by value would store a second
/// copy of a large connection future in this one's state.
pub(crate) async fn watched<M, W>(
    mut main: Pin<&mut M>,
    mut watch: Pin<&mut W>,
) -> Either<M::Output, W::Output>
where
    M: Future + ?Sized,
    W: Future + ?Sized,
{
    let due = Arc::new(Due {
        // Polled once at the start, to arm its timers.
        woken: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let watch_waker = Waker::from(due.clone());
    std::future::poll_fn(|cx| poll(&due, &watch_waker, main.as_mut(), watch.as_mut(), cx)).await
}

fn poll<M: Future + ?Sized, W: Future + ?Sized>(
    due: &Due,
    watch_waker: &Waker,
    main: Pin<&mut M>,
    watch: Pin<&mut W>,
    cx: &mut Context<'_>,
) -> Poll<Either<M::Output, W::Output>> {
    due.task.register(cx.waker());
    if due.woken.swap(false, Ordering::AcqRel)
        && let Poll::Ready(out) = watch.poll(&mut Context::from_waker(watch_waker))
    {
        return Poll::Ready(Either::Watch(out));
    }
    main.poll(cx).map(Either::Main)
}

/// The watchdogs' waker: marks them due, then wakes the task.
#[derive(Debug)]
struct Due {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Due {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::AtomicUsize, time::Duration};

    use super::*;

    /// Counts the polls of the future it wraps.
    struct Counted<'a, F> {
        polls: &'a AtomicUsize,
        inner: Pin<Box<F>>,
    }

    impl<F: Future> Future for Counted<'_, F> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            self.inner.as_mut().poll(cx)
        }
    }

    /// Pending for ever, waking its task for its first 100 polls: a busy
    /// socket, then a quiet one.
    struct Busy(usize);

    impl Future for Busy {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 < 100 {
                self.0 += 1;
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_does_not_poll_its_watchdogs() {
        let main_polls = AtomicUsize::new(0);
        let watch_polls = AtomicUsize::new(0);
        let main = Counted {
            polls: &main_polls,
            inner: Box::pin(Busy(0)),
        };
        let watch = Counted {
            polls: &watch_polls,
            inner: Box::pin(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "deadline"
            }),
        };
        let (main, watch) = (std::pin::pin!(main), std::pin::pin!(watch));
        let out = watched(main, watch).await;
        assert!(matches!(out, Either::Watch("deadline")));
        // The main side was polled on each of its wake-ups; the watchdog
        // twice: to arm its timer, and when the timer fired.
        assert!(main_polls.load(Ordering::SeqCst) > 100);
        assert_eq!(watch_polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_main_side_finishing_wins() {
        let (main, watch) = (
            std::pin::pin!(async { 7 }),
            std::pin::pin!(std::future::pending::<()>()),
        );
        let out = watched(main, watch).await;
        assert!(matches!(out, Either::Main(7)));
    }

    #[tokio::test]
    async fn a_cancellation_reaches_a_quiet_connection() {
        let token = tokio_util::sync::CancellationToken::new();
        let cancel = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cancel.cancel();
        });
        let (main, watch) = (
            std::pin::pin!(std::future::pending::<()>()),
            std::pin::pin!(token.cancelled()),
        );
        let out = watched(main, watch).await;
        assert!(matches!(out, Either::Watch(())));
    }
}
