//! A connection's write side. Producers append encoded ops to a shared buffer under a
//! short per-connection lock; one writer task swaps the buffer out and writes it whole, so
//! many messages queued together leave in one syscall. The buffer is bounded by
//! max_pending and each write by write_deadline: a peer that cannot keep up is cut off as
//! a slow consumer. Between the two, as in the reference, a connection whose pending
//! bytes pass half of max_pending is "stalled": client producers feeding it wait (bounded)
//! for its writer to finish a write before they read more, so TCP backpressure reaches a
//! fast publisher instead of a healthy but slower subscriber being cut off.

use crate::client::{Client, ClosedState, Kind};
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// A write buffer up to this size is always kept for reuse.
const KEEP_CAPACITY: usize = 256 * 1024;

/// How much buffer a connection keeps between writes: twice its recent write sizes (a
/// maximum that decays by an eighth per write), at least `KEEP_CAPACITY`. A burst that
/// grew the buffers to many megabytes gives them back within a few dozen writes instead
/// of holding them for the connection's life.
struct Retain {
    recent: usize,
}

impl Retain {
    fn after_write(&mut self, buf: &mut Vec<u8>) {
        self.recent = buf.len().max(self.recent - self.recent / 8);
        let keep = (2 * self.recent).max(KEEP_CAPACITY);
        if buf.capacity() > keep {
            *buf = Vec::with_capacity(self.recent.clamp(4096, keep));
        } else {
            buf.clear();
        }
    }
}

pub struct OutState {
    pub buf: Vec<u8>,
    /// No more appends are accepted.
    pub closed: bool,
    /// Someone already arranged to wake the writer for what is in `buf`.
    pub flush_queued: bool,
    /// The transport has bytes of its own to send (see `Outbound::poke`).
    pub poke: bool,
    /// Bytes handed to the socket but not yet confirmed written.
    pub in_flight: usize,
    /// Pending bytes passed half of max_pending since the last completed write: client
    /// producers wait for `drained` before reading more.
    pub stalled: bool,
    /// When the writer last got bytes into the socket (or took a new buffer).
    pub progress_at: Instant,
    /// Messages and bytes delivered to this connection.
    pub msgs: u64,
    pub bytes: u64,
}

impl OutState {
    /// Bytes queued or being written: the reference's pending bytes.
    #[inline]
    pub fn pending(&self) -> usize {
        self.buf.len() + self.in_flight
    }

    /// The peer is reading, if slower than it is fed: no write is blocked on it, or the
    /// socket took bytes recently. One that stopped reading is not draining once a
    /// stall's minimum has passed with a write blocked.
    pub fn draining(&self) -> bool {
        self.in_flight == 0 || self.progress_at.elapsed() < STALL_MIN
    }
}

/// The reference's stall bounds: a producer waits at least this long for a stalled
/// consumer, and at most the maximum once the consumer's pending reaches max_pending.
const STALL_MIN: Duration = Duration::from_millis(100);
const STALL_MAX: Duration = Duration::from_secs(1);

/// How long a producer waits for a consumer with `pending` of `max_pending` bytes: 100 ms,
/// plus 100 ms for each tenth of the upper half it has filled, 1 s once it is full.
pub fn stall_duration(pending: usize, max_pending: usize) -> Duration {
    let half = max_pending / 2;
    if pending >= max_pending {
        STALL_MAX
    } else if pending > half && half >= 10 {
        let tenths = (pending - half) / (half / 10);
        STALL_MIN * (1 + tenths as u32)
    } else {
        STALL_MIN
    }
}

pub struct Outbound {
    state: Mutex<OutState>,
    wake: Notify,
    /// Wakes a writer blocked on a socket when the connection is torn down.
    abort: Notify,
    /// Releases producers waiting on a stalled connection.
    drained: Notify,
    pub max_pending: usize,
}

impl Outbound {
    pub fn new(max_pending: usize) -> Self {
        Outbound {
            state: Mutex::new(OutState {
                buf: Vec::with_capacity(4096),
                closed: false,
                flush_queued: false,
                poke: false,
                in_flight: 0,
                stalled: false,
                progress_at: Instant::now(),
                msgs: 0,
                bytes: 0,
            }),
            wake: Notify::new(),
            abort: Notify::new(),
            drained: Notify::new(),
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

    /// Wakes the writer to flush the transport even with nothing queued (a websocket
    /// connection's pong or close frame is waiting in its frame layer).
    pub fn poke(&self) {
        self.state.lock().poke = true;
        self.wake.notify_one();
    }

    /// Stops accepting data; `discard` drops what is queued (slow consumer, kill).
    pub fn close(&self, discard: bool) {
        {
            let mut st = self.state.lock();
            st.closed = true;
            st.stalled = false;
            if discard {
                st.buf = Vec::new();
            }
        }
        self.wake.notify_one();
        self.drained.notify_waiters();
        if discard {
            self.abort.notify_one();
        }
    }

    /// Bytes waiting to be written, for monitoring.
    pub fn pending(&self) -> usize {
        self.state.lock().pending()
    }

    /// Waits until this connection is no longer stalled, or `deadline`; true when it was
    /// released (drained or closed) rather than timed out.
    pub async fn wait_drained(&self, deadline: tokio::time::Instant) -> bool {
        let notified = self.drained.notified();
        tokio::pin!(notified);
        // Registered before the check, so a release between the two is not missed.
        notified.as_mut().enable();
        if !self.state.lock().stalled {
            return true;
        }
        tokio::time::timeout_at(deadline, notified).await.is_ok()
    }

    /// After a completed write: releases producers waiting on this connection.
    fn release_stalled(&self) {
        let was = std::mem::replace(&mut self.state.lock().stalled, false);
        if was {
            self.drained.notify_waiters();
        }
    }
}

enum Step {
    Done,
    Wait,
    Write,
}

/// How one write of everything queued ended.
enum Wrote {
    All,
    /// write_deadline passed after this many bytes.
    Deadline(usize),
    Failed,
    Aborted,
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
    let mut retain = Retain { recent: 0 };
    loop {
        // Decide under the lock, wait without it.
        let step = {
            let mut st = out.lock();
            if st.buf.is_empty() && !std::mem::take(&mut st.poke) {
                if st.closed {
                    Step::Done
                } else {
                    Step::Wait
                }
            } else {
                std::mem::swap(&mut st.buf, &mut spare);
                st.in_flight = spare.len();
                st.flush_queued = false;
                st.progress_at = Instant::now();
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
        match write_with_deadline(out, &mut w, &spare, write_deadline).await {
            Wrote::All => {}
            Wrote::Failed => {
                client.close(ClosedState::WriteError);
                break;
            }
            Wrote::Aborted => break,
            Wrote::Deadline(written) => {
                client.report_slow_consumer(ClosedState::SlowConsumerWriteDeadline, spare.len());
                // As the reference: clients are cut off, and any connection that could not
                // write at all; a route that made progress keeps the rest and goes on.
                if client.kind == Kind::Client || written == 0 {
                    client.close(ClosedState::SlowConsumerWriteDeadline);
                    break;
                }
                out.lock().buf.splice(0..0, spare.drain(written..));
            }
        }
        retain.after_write(&mut spare);
        out.lock().in_flight = 0;
        out.release_stalled();
    }
    let _ = tokio::time::timeout(write_deadline, w.shutdown()).await;
}

/// Writes all of `data` before `deadline` from now. Pending bytes shrink as the socket takes
/// them, and producers stalled on this connection are released as soon as they drop below
/// half of max_pending.
async fn write_with_deadline<W: AsyncWrite + Unpin>(
    out: &Outbound,
    w: &mut W,
    data: &[u8],
    deadline: Duration,
) -> Wrote {
    let deadline = tokio::time::Instant::now() + deadline;
    let mut written = 0;
    while written < data.len() {
        let r = tokio::select! {
            r = tokio::time::timeout_at(deadline, w.write(&data[written..])) => r,
            _ = out.abort.notified() => return Wrote::Aborted,
        };
        match r {
            Ok(Ok(0)) | Ok(Err(_)) => return Wrote::Failed,
            Ok(Ok(n)) => {
                written += n;
                let release = {
                    let mut st = out.lock();
                    st.in_flight = data.len() - written;
                    st.progress_at = Instant::now();
                    st.stalled && st.pending() < out.max_pending / 2
                };
                if release {
                    out.release_stalled();
                }
            }
            Err(_) => return Wrote::Deadline(written),
        }
    }
    match tokio::time::timeout_at(deadline, w.flush()).await {
        Ok(Ok(())) => Wrote::All,
        Ok(Err(_)) => Wrote::Failed,
        Err(_) => Wrote::Deadline(written),
    }
}
