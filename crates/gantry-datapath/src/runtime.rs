//! The runtime a datapath process runs on.
//!
//! One worker thread per core the process may use (its CPU affinity and
//! cgroup quota, as the standard library counts them). With a single core
//! the runtime is a current-thread one: a work-stealing scheduler on one
//! core only adds its bookkeeping and cross-thread wake-ups to every task
//! switch, and a proxy switches tasks several times per request.

use std::{io, num::NonZeroUsize};

use tokio::runtime::{Builder, Runtime};

/// Builds the datapath's runtime with `threads` workers (default: the
/// cores this process may use).
pub fn runtime(threads: Option<NonZeroUsize>) -> io::Result<Runtime> {
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    if threads == 1 {
        Builder::new_current_thread().enable_all().build()
    } else {
        Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_is_a_current_thread_runtime_and_more_are_workers() {
        let one = runtime(NonZeroUsize::new(1)).expect("runtime");
        assert_eq!(
            one.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let two = runtime(NonZeroUsize::new(2)).expect("runtime");
        assert_eq!(
            two.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
        assert_eq!(two.metrics().num_workers(), 2);
    }
}
