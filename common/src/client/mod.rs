//! An async NATS client (tokio).
//!
//! ```no_run
//! # async fn demo() -> Result<(), nats_common::client::Error> {
//! use nats_common::client::{Client, Options};
//! let client = Client::connect(Options::new("nats://127.0.0.1:4222")).await?;
//! let mut sub = client.subscribe("greet.*").await?;
//! client.publish("greet.joe", b"hello").await?;
//! client.flush().await?;
//! let msg = sub.next().await;
//! let reply = client.request("svc", b"ping").await;
//! # Ok(()) }
//! ```
//!
//! Publishing appends to one shared output buffer; a writer task per connection swaps it
//! out and writes it whole, so a burst of publishes costs one syscall per batch. While
//! disconnected the buffer keeps collecting (up to `reconnect_buf_size`) and is sent after
//! the subscriptions are re-established on the next server.

mod connection;
mod error;
pub mod jetstream;
mod options;
mod reconnect;
mod servers;
mod subscription;
mod tls;

pub use error::{Error, Result};
pub use options::{find_seed, parse_creds, Options};
pub use servers::{parse_server_list, ServerAddr};
pub use subscription::{Callback, Message, SubHandle, Subscriber};

use crate::headers::Headers;
use crate::info::ServerInfo;
use crate::proto;
use options::Auth;
use parking_lot::Mutex;
use servers::ServerPool;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscription::{Sink, SubEntry, SubTable};
use tokio::sync::{broadcast, mpsc, oneshot, watch, Notify};

/// Something that happened to the connection, for callers that log or react.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Disconnected {
        reason: String,
    },
    Reconnected {
        url: String,
    },
    /// An `-ERR` that did not close the connection (e.g. a permission violation).
    ServerError {
        url: String,
        text: String,
    },
    /// The server announced lame duck mode; the client moves to another server.
    LameDuck {
        url: String,
    },
    /// Publishes discarded because the reconnect buffer was full.
    Dropped {
        msgs: u64,
        bytes: u64,
    },
    /// Messages were discarded because a subscriber did not keep up.
    SlowConsumer {
        sid: u64,
        subject: String,
    },
    /// New servers were learned from INFO `connect_urls`.
    ServersDiscovered {
        urls: Vec<String>,
    },
    /// The client gave up reconnecting or was closed.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    Connected,
    Reconnecting,
    Closed,
}

/// Bytes waiting for the socket plus what must stay in step with them.
pub(crate) struct Outbound {
    pub buf: Vec<u8>,
    pub state: ConnState,
    /// Bumped on every (re)connect and disconnect so a stale writer task stops.
    pub gen: u64,
    /// One entry per PING queued or sent, answered in order by PONGs. `None` = keepalive.
    pub pongs: VecDeque<Option<oneshot::Sender<()>>>,
    /// PINGs still in `buf` (not yet taken by the writer); their waiters survive a reconnect.
    pub unsent_pings: usize,
    /// Keepalive PINGs without a PONG yet.
    pub pings_out: usize,
    pub dropped_msgs: u64,
    pub dropped_bytes: u64,
    /// Count of non-fatal server errors seen, and the last text (for `flush`).
    pub err_seq: u64,
    pub last_err: Option<String>,
    pub max_payload: usize,
}

pub(crate) struct Status {
    pub info: ServerInfo,
    pub addr: Option<ServerAddr>,
}

pub(crate) struct Shared {
    pub opts: Options,
    pub auth: Auth,
    pub tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
    pub out: Mutex<Outbound>,
    pub writer_wake: Notify,
    pub space: Notify,
    pub subs: Mutex<SubTable>,
    pub pool: Mutex<ServerPool>,
    pub status: Mutex<Status>,
    pub events: broadcast::Sender<Event>,
    pub closed: watch::Sender<bool>,
    pub next_sid: AtomicU64,
    pub next_token: AtomicU64,
    pub driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    pub fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Appends protocol bytes; wakes the writer when the buffer was empty.
    pub fn enqueue(&self, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let mut o = self.out.lock();
        match o.state {
            ConnState::Closed => Err(Error::Closed),
            ConnState::Reconnecting => Ok(()),
            ConnState::Connected => {
                let was_empty = o.buf.is_empty();
                f(&mut o.buf);
                drop(o);
                if was_empty {
                    self.writer_wake.notify_one();
                }
                Ok(())
            }
        }
    }

    /// Marks the client closed and ends every subscription and waiter.
    pub fn shut(&self) {
        {
            let mut o = self.out.lock();
            o.state = ConnState::Closed;
            o.gen += 1;
            o.pongs.clear();
            o.unsent_pings = 0;
        }
        self.closed.send_replace(true);
        let mut s = self.subs.lock();
        s.map.clear();
        s.responders.clear();
        drop(s);
        self.space.notify_waiters();
        self.writer_wake.notify_one();
    }
}

/// Closes the connection when the last handle (client, subscriber) is dropped.
struct DropGuard(Arc<Shared>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.0.is_closed() {
            self.0.shut();
            self.0.emit(Event::Closed);
        }
    }
}

/// A connection to a NATS system. Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
    _guard: Arc<DropGuard>,
}

fn check_subject(s: &str) -> Result<()> {
    if s.is_empty() || s.bytes().any(|b| b.is_ascii_whitespace()) {
        return Err(Error::InvalidSubject(s.to_string()));
    }
    Ok(())
}

impl Client {
    /// Connects to the first reachable server of `opts.servers` (shuffled unless
    /// `no_randomize`), then keeps the connection alive in a background task.
    pub async fn connect(opts: Options) -> Result<Client> {
        let addrs = opts.server_addrs()?;
        let auth = opts.load_auth()?;
        let tls_config = if tls::configured(&opts) {
            Some(tls::client_config(&opts)?)
        } else {
            None
        };
        let pool = ServerPool::new(addrs, !opts.no_randomize);
        let order: Vec<ServerAddr> = pool.entries.iter().map(|e| e.addr.clone()).collect();
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            auth,
            tls: Mutex::new(tls_config),
            out: Mutex::new(Outbound {
                buf: Vec::with_capacity(64 * 1024),
                state: ConnState::Reconnecting,
                gen: 0,
                pongs: VecDeque::new(),
                unsent_pings: 0,
                pings_out: 0,
                dropped_msgs: 0,
                dropped_bytes: 0,
                err_seq: 0,
                last_err: None,
                max_payload: 1024 * 1024,
            }),
            writer_wake: Notify::new(),
            space: Notify::new(),
            subs: Mutex::new(SubTable::default()),
            pool: Mutex::new(pool),
            status: Mutex::new(Status {
                info: ServerInfo::default(),
                addr: None,
            }),
            events,
            closed: watch::channel(false).0,
            next_sid: AtomicU64::new(1),
            next_token: AtomicU64::new(1),
            driver: Mutex::new(None),
            opts,
        });
        let mut tried = Vec::new();
        let mut auth_err = None;
        for addr in order {
            match connection::establish(&shared, &addr).await {
                Ok(conn) => {
                    shared.pool.lock().record(&addr, true);
                    reconnect::activate(&shared, &conn);
                    let handle = tokio::spawn(reconnect::run(shared.clone(), conn));
                    *shared.driver.lock() = Some(handle);
                    return Ok(Client {
                        _guard: Arc::new(DropGuard(shared.clone())),
                        inner: shared,
                    });
                }
                Err(e) => {
                    shared.pool.lock().record(&addr, false);
                    let why = match &e {
                        Error::Timeout => "timed out".to_string(),
                        other => other.to_string(),
                    };
                    if matches!(e, Error::Authorization(_)) {
                        auth_err = Some(e);
                    }
                    tried.push((addr.to_string(), why));
                }
            }
        }
        // A credentials problem says more than "could not connect".
        Err(auth_err.unwrap_or(Error::Connect(tried)))
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Observe connection events. Events sent before this call are not replayed.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The INFO of the server we are (or were last) connected to.
    pub fn server_info(&self) -> ServerInfo {
        self.inner.status.lock().info.clone()
    }

    /// `nats://host:port` of the current server.
    pub fn connected_url(&self) -> Option<String> {
        self.inner
            .status
            .lock()
            .addr
            .as_ref()
            .map(|a| a.to_string())
    }

    /// Every server the client currently knows, configured and learned.
    pub fn known_servers(&self) -> Vec<String> {
        self.inner.pool.lock().urls()
    }

    pub fn is_connected(&self) -> bool {
        self.inner.out.lock().state == ConnState::Connected
    }

    pub fn max_payload(&self) -> usize {
        self.inner.out.lock().max_payload
    }

    /// A unique subject for replies: `_INBOX.<nuid>`.
    pub fn new_inbox(&self) -> String {
        format!("{}.{}", self.inner.opts.inbox_prefix, crate::nuid::next())
    }

    pub async fn publish(&self, subject: &str, payload: impl AsRef<[u8]>) -> Result<()> {
        self.publish_full(subject, None, None, payload.as_ref())
            .await
    }

    pub async fn publish_with_reply(
        &self,
        subject: &str,
        reply: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<()> {
        self.publish_full(subject, Some(reply), None, payload.as_ref())
            .await
    }

    pub async fn publish_with_headers(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: &Headers,
        payload: impl AsRef<[u8]>,
    ) -> Result<()> {
        self.publish_full(subject, reply, Some(headers), payload.as_ref())
            .await
    }

    /// Queues a message for sending. Waits only when the output buffer is full
    /// (backpressure); it does not wait for the server.
    pub async fn publish_full(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: &[u8],
    ) -> Result<()> {
        let hdr = headers.map(Headers::to_bytes);
        loop {
            let space = self.inner.space.notified();
            match self.try_publish(subject, reply, hdr.as_deref(), payload, true)? {
                true => return Ok(()),
                false => space.await,
            }
        }
    }

    /// Like [`Client::publish_full`] but never waits: for use inside callbacks.
    pub fn publish_now(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&Headers>,
        payload: &[u8],
    ) -> Result<()> {
        let hdr = headers.map(Headers::to_bytes);
        self.try_publish(subject, reply, hdr.as_deref(), payload, false)
            .map(|_| ())
    }

    /// Returns false when the caller should wait for buffer space.
    fn try_publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        hdr: Option<&[u8]>,
        payload: &[u8],
        may_wait: bool,
    ) -> Result<bool> {
        check_subject(subject)?;
        if let Some(r) = reply {
            check_subject(r)?;
        }
        let size = hdr.map_or(0, <[u8]>::len) + payload.len();
        let sh = &self.inner;
        let mut o = sh.out.lock();
        if o.max_payload > 0 && size > o.max_payload {
            return Err(Error::MaxPayload {
                size,
                max: o.max_payload,
            });
        }
        match o.state {
            ConnState::Closed => return Err(Error::Closed),
            ConnState::Connected => {
                if may_wait && o.buf.len() >= sh.opts.max_pending_out {
                    return Ok(false);
                }
            }
            ConnState::Reconnecting => {
                if o.buf.len() + size > sh.opts.reconnect_buf_size {
                    o.dropped_msgs += 1;
                    o.dropped_bytes += size as u64;
                    return Ok(true);
                }
            }
        }
        let was_empty = o.buf.is_empty();
        proto::publish(
            &mut o.buf,
            subject.as_bytes(),
            reply.map(str::as_bytes),
            hdr,
            payload,
        );
        let connected = o.state == ConnState::Connected;
        drop(o);
        if was_empty && connected {
            sh.writer_wake.notify_one();
        }
        Ok(true)
    }

    /// Waits until the server has processed everything sent so far (a PING/PONG round
    /// trip), using the request timeout. Reports a permission violation the server
    /// announced meanwhile.
    pub async fn flush(&self) -> Result<()> {
        self.flush_timeout(self.inner.opts.request_timeout).await
    }

    pub async fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let start_seq = self.inner.out.lock().err_seq;
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let sh = &self.inner;
                let mut o = sh.out.lock();
                if o.state == ConnState::Closed {
                    return Err(Error::Closed);
                }
                let was_empty = o.buf.is_empty();
                o.buf.extend_from_slice(proto::PING);
                o.pongs.push_back(Some(tx));
                o.unsent_pings += 1;
                let connected = o.state == ConnState::Connected;
                drop(o);
                if was_empty && connected {
                    sh.writer_wake.notify_one();
                }
            }
            match tokio::time::timeout_at(deadline.into(), rx).await {
                Err(_) => return Err(Error::Timeout),
                Ok(Ok(())) => {
                    let o = self.inner.out.lock();
                    if o.err_seq != start_seq {
                        if let Some(t) = &o.last_err {
                            return Err(Error::Permission(t.clone()));
                        }
                    }
                    return Ok(());
                }
                // The connection was lost before the PONG: try again on the next one.
                Ok(Err(_)) => {
                    if self.inner.is_closed() {
                        return Err(Error::Closed);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }

    fn add_sub(&self, subject: &str, queue: Option<&str>, sink: Sink) -> Result<u64> {
        if !crate::subject::is_valid_subject(subject.as_bytes()) {
            return Err(Error::InvalidSubject(subject.to_string()));
        }
        if let Some(q) = queue {
            check_subject(q)?;
        }
        let sh = &self.inner;
        let sid = sh.next_sid.fetch_add(1, Ordering::Relaxed);
        let mut subs = sh.subs.lock();
        if sh.is_closed() {
            return Err(Error::Closed);
        }
        subs.map.insert(
            sid,
            SubEntry {
                subject: subject.to_string(),
                queue: queue.map(str::to_string),
                sink,
                max: None,
                delivered: 0,
                slow: false,
            },
        );
        let mut b = itoa::Buffer::new();
        let sid_s = b.format(sid);
        // While reconnecting nothing is written: the resubscription covers it.
        sh.enqueue(|buf| {
            proto::sub(
                buf,
                subject.as_bytes(),
                queue.map(str::as_bytes),
                sid_s.as_bytes(),
            )
        })?;
        Ok(sid)
    }

    pub async fn subscribe(&self, subject: &str) -> Result<Subscriber> {
        self.queue_subscribe_opt(subject, None).await
    }

    pub async fn queue_subscribe(&self, subject: &str, queue: &str) -> Result<Subscriber> {
        self.queue_subscribe_opt(subject, Some(queue)).await
    }

    pub async fn queue_subscribe_opt(
        &self,
        subject: &str,
        queue: Option<&str>,
    ) -> Result<Subscriber> {
        let (tx, rx) = mpsc::channel(self.inner.opts.sub_capacity.max(1));
        let sid = self.add_sub(subject, queue, Sink::Channel(tx))?;
        Ok(Subscriber {
            sid,
            rx,
            client: self.clone(),
            done: false,
        })
    }

    /// Subscribes with a callback run on the read task for each message (no copy, no
    /// allocation); see [`Callback`] for its limits.
    pub async fn subscribe_with<F>(
        &self,
        subject: &str,
        queue: Option<&str>,
        callback: F,
    ) -> Result<SubHandle>
    where
        F: FnMut(&proto::Message<'_>) + Send + 'static,
    {
        let sid = self.add_sub(subject, queue, Sink::Callback(Box::new(callback)))?;
        Ok(SubHandle {
            sid,
            client: self.clone(),
        })
    }

    pub(crate) fn unsubscribe_sid(&self, sid: u64, max: Option<u64>) -> Result<()> {
        let sh = &self.inner;
        let mut subs = sh.subs.lock();
        let send_max = match max {
            None => {
                if subs.map.remove(&sid).is_none() {
                    return Ok(());
                }
                None
            }
            Some(m) => {
                let Some(e) = subs.map.get_mut(&sid) else {
                    return Ok(());
                };
                e.max = Some(m);
                if e.delivered >= m {
                    subs.map.remove(&sid);
                    None
                } else {
                    Some(m - e.delivered)
                }
            }
        };
        drop(subs);
        let mut b = itoa::Buffer::new();
        let sid_s = b.format(sid);
        match sh.enqueue(|buf| proto::unsub(buf, sid_s.as_bytes(), send_max)) {
            Err(Error::Closed) => Ok(()),
            r => r,
        }
    }

    pub(crate) async fn drain_sid(&self, sid: u64) -> Result<()> {
        let mut b = itoa::Buffer::new();
        let sid_s = b.format(sid);
        self.inner
            .enqueue(|buf| proto::unsub(buf, sid_s.as_bytes(), None))?;
        let r = self.flush().await;
        self.inner.subs.lock().map.remove(&sid);
        r
    }

    fn ensure_resp_sub(&self) -> Result<String> {
        if let Some(p) = &self.inner.subs.lock().resp_prefix {
            return Ok(p.clone());
        }
        let base = self.new_inbox();
        let sid = self.add_sub(&format!("{base}.*"), None, Sink::Responses)?;
        let mut subs = self.inner.subs.lock();
        match &subs.resp_prefix {
            // Another request raced us; keep the first inbox and drop ours.
            Some(p) => {
                let p = p.clone();
                drop(subs);
                let _ = self.unsubscribe_sid(sid, None);
                Ok(p)
            }
            None => {
                let p = format!("{base}.");
                subs.resp_prefix = Some(p.clone());
                Ok(p)
            }
        }
    }

    /// Sends a request and waits for the first reply, using the options' request timeout.
    pub async fn request(&self, subject: &str, payload: impl AsRef<[u8]>) -> Result<Message> {
        self.request_full(
            subject,
            None,
            payload.as_ref(),
            self.inner.opts.request_timeout,
        )
        .await
    }

    /// A request through the connection's single wildcard inbox subscription.
    /// A 503 status without body becomes [`Error::NoResponders`].
    pub async fn request_full(
        &self,
        subject: &str,
        headers: Option<&Headers>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Message> {
        let prefix = self.ensure_resp_sub()?;
        let mut b = itoa::Buffer::new();
        let token = b
            .format(self.inner.next_token.fetch_add(1, Ordering::Relaxed))
            .to_string();
        let (tx, rx) = oneshot::channel();
        self.inner.subs.lock().responders.insert(token.clone(), tx);
        let reply = format!("{prefix}{token}");
        if let Err(e) = self
            .publish_full(subject, Some(&reply), headers, payload)
            .await
        {
            self.inner.subs.lock().responders.remove(&token);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(m)) if m.is_no_responders() => Err(Error::NoResponders),
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                self.inner.subs.lock().responders.remove(&token);
                Err(Error::Timeout)
            }
        }
    }

    /// Unsubscribes everything at the server, waits for messages in flight, ends every
    /// subscription (buffered messages stay readable) and closes the connection.
    pub async fn drain(&self) -> Result<()> {
        let sids: Vec<u64> = self.inner.subs.lock().map.keys().copied().collect();
        for sid in &sids {
            let mut b = itoa::Buffer::new();
            let s = b.format(*sid);
            self.inner
                .enqueue(|buf| proto::unsub(buf, s.as_bytes(), None))?;
        }
        let r = self.flush().await;
        self.close().await;
        r
    }

    /// Sends what is buffered (briefly waiting for it), then closes.
    pub async fn close(&self) {
        if self.inner.is_closed() {
            return;
        }
        if self.is_connected() {
            let _ = self.flush_timeout(Duration::from_secs(2)).await;
        }
        self.inner.shut();
        let handle = self.inner.driver.lock().take();
        if let Some(h) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
        self.inner.emit(Event::Closed);
    }
}

#[cfg(test)]
mod tests;
