//! Zero-copy relaying for L4 TCP: bytes go from one socket into a pipe and
//! from the pipe into the other socket with `splice(2)`, so the kernel
//! moves page references instead of copying every byte into the process
//! and back out (HAProxy's `option splice-auto` does the same).
//!
//! A pipe is taken from a shared pool only once data is readable, and goes
//! back as soon as it is empty again: idle connections hold none, and a
//! busy datapath needs about one pipe per direction actually moving bytes.
//! A pipe left holding bytes (the destination failed) is closed, never
//! pooled. When no pipe can be had (out of descriptors), [`pump`] reports
//! it and the caller copies that chunk the ordinary way.

use std::{io, os::fd::OwnedFd, sync::LazyLock};

use parking_lot::Mutex;

use rustix::pipe::{
    PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice,
};
use tokio::{io::Interest, net::TcpStream};

/// Size asked for each pipe, and so the most bytes one splice moves: a
/// stream crosses the datapath in fewer, larger steps (each step wakes the
/// reader on the other side) than with the default 64 KiB. Where the
/// kernel refuses the size (an unprivileged process over its pipe quota),
/// the pipe keeps its default.
const PIPE_SIZE: usize = 256 * 1024;
/// A pipe's size when the kernel tells nothing else.
const DEFAULT_PIPE_SIZE: usize = 64 * 1024;
/// Empty pipes kept for reuse.
const MAX_POOLED: usize = 256;

/// A pipe: its read and write ends, both non-blocking.
#[derive(Debug)]
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Its capacity, bytes.
    size: usize,
}

static POOL: LazyLock<Mutex<Vec<Pipe>>> = LazyLock::new(Mutex::default);

impl Pipe {
    /// A pooled pipe or a new one.
    fn take() -> io::Result<Self> {
        if let Some(pipe) = POOL.lock().pop() {
            return Ok(pipe);
        }
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let size = fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| fcntl_getpipe_size(&write))
            .unwrap_or(DEFAULT_PIPE_SIZE);
        Ok(Self { read, write, size })
    }

    /// Gives an empty pipe back to the pool (or closes it when the pool is
    /// full).
    fn put(self) {
        let mut pool = POOL.lock();
        if pool.len() < MAX_POOLED {
            pool.push(self);
        }
    }
}

/// What one [`pump`] step did.
pub(crate) enum Spliced {
    /// `from` reached its end.
    Eof,
    /// The readiness was stale; nothing moved.
    Again,
    /// This many bytes went from `from` to `to`.
    Moved(usize),
    /// No pipe could be had; move this chunk some other way.
    NoPipe,
}

/// Moves what `from` has ready (up to a pipe's size) into `to` through a
/// pooled pipe, waiting for `to` to take all of it: a slow destination
/// holds one chunk in the pipe and stops this direction's reads. Call once
/// `from` is readable. `on_write` sees each count written to `to`.
pub(crate) async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    on_write: impl Fn(usize),
) -> io::Result<Spliced> {
    let pipe = match Pipe::take() {
        Ok(pipe) => pipe,
        Err(error) => {
            tracing::debug!(%error, "No pipe for splicing; copying instead");
            return Ok(Spliced::NoPipe);
        }
    };
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    let read = from.try_io(Interest::READABLE, || {
        Ok(splice(from, None, &pipe.write, None, pipe.size, flags)?)
    });
    let n = match read {
        Ok(0) => {
            pipe.put();
            return Ok(Spliced::Eof);
        }
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            pipe.put();
            return Ok(Spliced::Again);
        }
        Err(e) => {
            pipe.put();
            return Err(e);
        }
    };
    let mut left = n;
    while left > 0 {
        let wrote = to.try_io(Interest::WRITABLE, || {
            Ok(splice(&pipe.read, None, to, None, left, flags)?)
        });
        match wrote {
            Ok(m) => {
                on_write(m);
                left -= m;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => to.writable().await?,
            // The pipe still holds bytes: it is dropped, not pooled.
            Err(e) => return Err(e),
        }
    }
    pipe.put();
    Ok(Spliced::Moved(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_pipes_are_reused_and_the_pool_is_bounded() {
        let pipes: Vec<Pipe> = (0..MAX_POOLED + 3)
            .map(|_| Pipe::take().expect("pipe"))
            .collect();
        let before = POOL.lock().len();
        for p in pipes {
            p.put();
        }
        let after = POOL.lock().len();
        assert!(after <= MAX_POOLED, "bounded: {after}");
        assert!(after >= before, "kept for reuse");
        let again = Pipe::take().expect("pipe");
        assert_eq!(POOL.lock().len(), after - 1, "reused");
        again.put();
    }
}
