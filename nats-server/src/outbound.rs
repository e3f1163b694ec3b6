//! A connection's write side. Producers append encoded ops to a shared buffer under a
//! short per-connection lock; one writer task swaps the buffer out and writes it whole, so
//! many messages queued together leave in one syscall. The buffer is bounded by
//! max_pending and each write by write_deadline: a peer that cannot keep up is cut off as
//! a slow consumer instead of stalling the publishers feeding it.

use crate::client::{Client, ClosedState};
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Writes bigger than this keep their buffer; smaller ones return it to a modest size so an
/// idle connection after a burst does not hold megabytes.
const KEEP_CAPACITY: usize = 256 * 1024;

pub struct OutState {
    pub buf: Vec<u8>,
    /// No more appends are accepted.
    pub closed: bool,
    /// Someone already arranged to wake the writer for what is in `buf`.
    pub flush_queued: bool,
    /// Bytes handed to the socket but not yet confirmed written.
    pub in_flight: usize,
    /// Messages and bytes delivered to this connection.
    pub msgs: u64,
    pub bytes: u64,
}

pub struct Outbound {
    state: Mutex<OutState>,
    wake: Notify,
    /// Wakes a writer blocked on a socket when the connection is torn down.
    abort: Notify,
    pub max_pending: usize,
}

impl Outbound {
    pub fn new(max_pending: usize) -> Self {
        Outbound {
            state: Mutex::new(OutState {
                buf: Vec::with_capacity(4096),
                closed: false,
                flush_queued: false,
                in_flight: 0,
                msgs: 0,
                bytes: 0,
            }),
            wake: Notify::new(),
            abort: Notify::new(),
            max_pending,
        }
    }

    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock()
    }

    /// Wakes the writer.
    #[inline]
    pub fn flush(&self) {
        self.wake.notify_one();
    }

    /// Appends a protocol line and wakes the writer at once.
    pub fn send(&self, bytes: &[u8]) {
        {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            st.buf.extend_from_slice(bytes);
        }
        self.wake.notify_one();
    }

    /// Stops accepting data; `discard` drops what is queued (slow consumer, kill).
    pub fn close(&self, discard: bool) {
        {
            let mut st = self.state.lock();
            st.closed = true;
            if discard {
                st.buf = Vec::new();
            }
        }
        self.wake.notify_one();
        if discard {
            self.abort.notify_one();
        }
    }

    /// Bytes waiting to be written, for monitoring.
    pub fn pending(&self) -> usize {
        let st = self.state.lock();
        st.buf.len() + st.in_flight
    }
}

enum Step {
    Done,
    Wait,
    Write,
}

/// The writer task of one connection. Ends when the connection is closed and everything
/// queued was written, or on a write error or deadline.
pub async fn run_writer<W: AsyncWrite + Unpin>(
    client: Arc<Client>,
    mut w: W,
    write_deadline: Duration,
) {
    let out = &client.out;
    let mut spare: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // Decide under the lock, wait without it.
        let step = {
            let mut st = out.lock();
            if st.buf.is_empty() {
                if st.closed {
                    Step::Done
                } else {
                    Step::Wait
                }
            } else {
                std::mem::swap(&mut st.buf, &mut spare);
                st.in_flight = spare.len();
                st.flush_queued = false;
                Step::Write
            }
        };
        match step {
            Step::Done => break,
            Step::Wait => {
                out.wake.notified().await;
                continue;
            }
            Step::Write => {}
        }
        let result = tokio::select! {
            r = tokio::time::timeout(write_deadline, w.write_all(&spare)) => r,
            _ = out.abort.notified() => break,
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                client.close(ClosedState::WriteError);
                break;
            }
            Err(_) => {
                client.slow_consumer(ClosedState::SlowConsumerWriteDeadline, spare.len());
                break;
            }
        }
        if spare.capacity() > KEEP_CAPACITY && spare.len() < KEEP_CAPACITY / 4 {
            spare = Vec::with_capacity(4096);
        } else {
            spare.clear();
        }
        out.lock().in_flight = 0;
    }
    let _ = tokio::time::timeout(write_deadline, w.shutdown()).await;
}
