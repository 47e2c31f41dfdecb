//! Wakers: one eventfd per forwarding worker, so a control message posted by the main thread ends
//! the worker's idle `wait` at once instead of after its poll timeout.
//!
//! The main thread posts the message, then calls `wake(handle)` (one 8-byte write, ~1 µs); the
//! worker passes the handle to `wait`, which polls the eventfd with the port fds and, when it is
//! readable, reads it (resetting it) and counts a wake-up taken. A wake while the worker is busy
//! stays pending, so the next `wait` returns at once (one spare loop, no lost message).
//!
//! Like ports, wakers live in a handle table (handles.rs) whose handles are never reused: a wake
//! after the worker closed its waker reports ECLOSED instead of writing into whatever fd number
//! the kernel handed out next.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ffi::{self, NErr, NResult};
use crate::handles::Handles;

pub struct Waker {
    fd: OwnedFd,
    /// wake() calls (each may coalesce with others into one wake-up)
    pub posted: AtomicU64,
    /// times a wait found the eventfd readable and reset it
    pub taken: AtomicU64,
}

static WAKERS: Handles<Waker> = Handles::new("waker");

pub fn open() -> NResult<u32> {
    let fd = ffi::sys_eventfd().map_err(|e| NErr::errno(e, "eventfd"))?;
    Ok(WAKERS.insert(Waker { fd, posted: AtomicU64::new(0), taken: AtomicU64::new(0) }))
}

pub fn get(handle: i64) -> NResult<Arc<Waker>> {
    WAKERS.get(handle)
}

/// Drops the table's reference; the eventfd closes once a `wait` polling it (holding its own
/// Arc) returns.
pub fn close(handle: i64) -> NResult<()> {
    WAKERS.remove(handle).map(|_| ())
}

impl Waker {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn wake(&self) -> NResult<()> {
        self.posted.fetch_add(1, Ordering::Relaxed);
        ffi::eventfd_add(self.fd()).map_err(|e| NErr::errno(e, "waking a worker (eventfd write)"))
    }

    /// Resets the eventfd after poll reported it readable; counts the wake-up.
    pub fn take(&self) -> NResult<()> {
        if ffi::eventfd_take(self.fd()).map_err(|e| NErr::errno(e, "reading a waker (eventfd)"))? > 0 {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
