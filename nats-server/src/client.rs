//! One client connection: the shared `Client` handle that other connections deliver to,
//! and the read loop that parses and acts on what the client sends.

use crate::accounts::imports::{ServiceImport, StreamImport};
use crate::accounts::{Account, Mapped};
use crate::auth;
use crate::deliver::{self, Delivery, FlushSet};
use crate::logging;
use crate::outbound::{self, Outbound};
use crate::server::Server;
use bytes::{Buf, BytesMut};
use nats_common::info::ConnectInfo;
use nats_common::proto::{self, Message, Op, ParseError, Parser, Side};
use nats_common::subject;
use nats_common::sublist::MatchResult;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tracing::{debug, error, info, trace};

/// What kind of peer a connection serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Client,
    Router,
    /// A leaf node connection, accepted (we are its hub) or solicited (we are the leaf).
    Leaf,
    /// The server itself: owner of internal subscriptions (service imports, replies
    /// owed across accounts, the system account's requests).
    System,
    /// A gateway connection (to or from another cluster).
    Gateway,
}

/// Why a connection closed, with the reference's wording (shown in logs and /connz).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedState {
    ClientClosed,
    AuthenticationTimeout,
    AuthenticationViolation,
    TlsHandshakeError,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ParseError,
    StaleConnection,
    ProtocolViolation,
    BadClientProtocolVersion,
    WrongPort,
    MaxConnectionsExceeded,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    DuplicateRoute,
    ServerShutdown,
    MsgHeaderViolation,
    NoRespondersRequiresHeaders,
    ClusterNameConflict,
    DuplicateServerName,
    MaxAccountConnectionsExceeded,
    MaxSubscriptionsExceeded,
    AuthenticationExpired,
    DuplicateRemoteLeafnodeConnection,
    ClusterNamesIdentical,
    WrongGateway,
    MinimumVersionRequired,
}

impl ClosedState {
    pub fn as_str(self) -> &'static str {
        use ClosedState::*;
        match self {
            ClientClosed => "Client Closed",
            AuthenticationTimeout => "Authentication Timeout",
            AuthenticationViolation => "Authentication Failure",
            TlsHandshakeError => "TLS Handshake Failure",
            SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            WriteError => "Write Error",
            ReadError => "Read Error",
            ParseError => "Parse Error",
            StaleConnection => "Stale Connection",
            ProtocolViolation => "Protocol Violation",
            BadClientProtocolVersion => "Bad Client Protocol Version",
            WrongPort => "Incorrect Port",
            MaxConnectionsExceeded => "Maximum Connections Exceeded",
            MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            MaxControlLineExceeded => "Maximum Control Line Exceeded",
            DuplicateRoute => "Duplicate Route",
            ServerShutdown => "Server Shutdown",
            MsgHeaderViolation => "Message Header Violation",
            NoRespondersRequiresHeaders => "No Responders Requires Headers",
            ClusterNameConflict => "Cluster Name Conflict",
            DuplicateServerName => "Duplicate Server Name",
            MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            MaxSubscriptionsExceeded => "Maximum Subscriptions Exceeded",
            AuthenticationExpired => "Authentication Expired",
            DuplicateRemoteLeafnodeConnection => "Duplicate Remote LeafNode Connection",
            ClusterNamesIdentical => "Cluster Names Identical",
            WrongGateway => "Wrong Gateway",
            MinimumVersionRequired => "Minimum Version Required",
        }
    }

    /// Whether queued output is dropped rather than flushed on close.
    fn discards_output(self) -> bool {
        matches!(
            self,
            ClosedState::SlowConsumerPendingBytes
                | ClosedState::SlowConsumerWriteDeadline
                | ClosedState::WriteError
        )
    }
}

/// A subscription. Shared by the owner's sid table and its account's index.
pub struct Subscription {
    pub client: Arc<Client>,
    /// The account whose index holds it.
    pub account: Arc<Account>,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    pub sid: Box<[u8]>,
    /// Auto-unsubscribe after this many messages; 0 = never.
    pub max: AtomicU64,
    pub delivered: AtomicU64,
    /// Set once removed; cached match results may still hold it for a moment.
    pub closed: AtomicBool,
    /// For route interest: how many members a remote queue group has.
    pub weight: std::sync::atomic::AtomicU32,
    /// A stream import's copy of a client's subscription, in the exporting account:
    /// delivers with the subject rewritten.
    pub import: Option<Arc<StreamImport>>,
    /// Handled inside the server instead of written to a connection.
    pub internal: Option<Internal>,
    /// The stream-import copies made for this subscription, removed with it.
    pub shadows: Mutex<Vec<Arc<Subscription>>>,
    /// Not announced to routes (the reference keeps service import subscriptions local).
    pub local_only: bool,
    /// For a route's interest: the leaf node cluster it comes from (`LS+ origin ...`).
    pub origin: Option<Box<[u8]>>,
}

/// What an internal subscription does with a message.
pub enum Internal {
    /// Forwards requests into the exporting account.
    ServiceImport(Arc<ServiceImport>),
    /// Forwards replies on the account's `_R_` subjects back to the requesters.
    Responses,
    /// The system account's requests and the cluster's events.
    System(crate::system::Handler),
    /// JetStream's API requests, stream subjects and direct gets.
    JetStream(crate::jetstream::Handler),
}

impl Subscription {
    pub fn new(
        client: &Arc<Client>,
        account: &Arc<Account>,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Subscription {
        Subscription {
            client: client.clone(),
            account: account.clone(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            sid: sid.into(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            weight: std::sync::atomic::AtomicU32::new(1),
            import: None,
            internal: None,
            shadows: Mutex::new(Vec::new()),
            local_only: false,
            origin: None,
        }
    }
}

/// The handle the sublist stores; equal only to itself.
#[derive(Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for SubRef {
    type Target = Subscription;
    fn deref(&self) -> &Subscription {
        &self.0
    }
}

/// Details shown by monitoring, set at CONNECT.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    pub user: String,
    pub rtt: Option<Duration>,
    pub tls_version: String,
    pub tls_cipher: String,
    /// The remote server's id, for routes.
    pub remote_id: String,
    /// CONNECT `protocol`: 1 means the client accepts async INFO.
    pub protocol: i32,
    /// Nonce, certificate names and accepted CONNECT (see auth.rs).
    pub auth: auth::AuthState,
}

/// A connection as the rest of the server sees it.
pub struct Client {
    pub cid: u64,
    pub kind: Kind,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub out: Outbound,
    /// The peer understands HMSG; otherwise headers are stripped on delivery.
    pub headers: AtomicBool,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    /// Unix nanoseconds of the last message in or out.
    pub last_activity: AtomicU64,
    pub meta: Mutex<ClientMeta>,
    pub subs: Mutex<HashMap<Box<[u8]>, Arc<Subscription>>>,
    /// Async INFO may be sent (protocol 1 and first PONG given).
    pub info_ready: AtomicBool,
    /// Permissions with subscribe deny rules, checked when delivering; the flag keeps the
    /// common case (no such rules) to one relaxed load.
    pub deliver_deny: parking_lot::RwLock<Option<Arc<auth::Permissions>>>,
    pub has_deliver_deny: AtomicBool,
    /// Reply subjects this client may answer under `allow_responses`.
    pub replies: auth::Replies,
    /// The account the connection is bound to (the global one until CONNECT says else).
    pub account: parking_lot::RwLock<Arc<Account>>,
    /// The payload limit of a JWT user (from its JWT, its account and the server), shown
    /// in the INFO it is sent; -1 when the server's applies.
    pub max_payload: std::sync::atomic::AtomicI64,
    /// Leaf node state, for leaf connections.
    pub leaf: std::sync::OnceLock<Arc<crate::leaf::Link>>,
    /// Set for a websocket client (before anything is logged about it).
    pub ws: std::sync::OnceLock<crate::websocket::WsMeta>,
    /// Mapped (`_GR_.`) replies this client was handed, for its answers.
    pub gw_replies: crate::gateway::ReplyMap,
    closed: AtomicBool,
    reason: Mutex<Option<ClosedState>>,
    kill: tokio::sync::Notify,
    server: std::sync::Weak<Server>,
}

pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Client {
    pub fn new(server: &Arc<Server>, cid: u64, kind: Kind, addr: SocketAddr) -> Arc<Client> {
        let max_pending = server.opts().max_pending;
        Arc::new(Client {
            cid,
            kind,
            addr,
            start: SystemTime::now(),
            out: Outbound::new(max_pending),
            headers: AtomicBool::new(kind == Kind::Router),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(unix_nanos()),
            meta: Mutex::new(ClientMeta::default()),
            subs: Mutex::new(HashMap::new()),
            info_ready: AtomicBool::new(false),
            deliver_deny: parking_lot::RwLock::new(None),
            has_deliver_deny: AtomicBool::new(false),
            replies: auth::Replies::default(),
            account: parking_lot::RwLock::new(server.accounts.global.clone()),
            max_payload: std::sync::atomic::AtomicI64::new(-1),
            leaf: std::sync::OnceLock::new(),
            ws: std::sync::OnceLock::new(),
            gw_replies: Default::default(),
            closed: AtomicBool::new(false),
            reason: Mutex::new(None),
            kill: tokio::sync::Notify::new(),
            server: Arc::downgrade(server),
        })
    }

    /// Log prefix: `127.0.0.1:43512 - cid:4 - "v1.22.1:go:name"`.
    pub fn prefix(&self) -> String {
        let ws = self.ws.get();
        let tag = match self.kind {
            Kind::Router => "rid",
            Kind::Gateway => "gid",
            Kind::Leaf => "lid",
            _ if ws.is_some() => "wid",
            _ => "cid",
        };
        // A websocket client behind a proxy: `forwarded/address`.
        let addr = match ws {
            Some(m) if !m.forwarded_ip.is_empty() => {
                if m.forwarded_ip.contains(':') {
                    format!("[{}]/{}", m.forwarded_ip, self.addr)
                } else {
                    format!("{}/{}", m.forwarded_ip, self.addr)
                }
            }
            _ => self.addr.to_string(),
        };
        let meta = self.meta.lock();
        // The reference's client tag: `v<version>`, `<lang>` and `<name>`, each only when
        // given, joined by `:` (`"v1.2:go:svc"`, `"svc"`, `"go:svc"`).
        let mut ncs = String::new();
        if self.kind == Kind::Client {
            if !meta.version.is_empty() {
                ncs.push('v');
                ncs.push_str(&meta.version);
            }
            for part in [&meta.lang, &meta.name] {
                if !part.is_empty() {
                    if !ncs.is_empty() {
                        ncs.push(':');
                    }
                    ncs.push_str(part);
                }
            }
        }
        if ncs.is_empty() {
            format!("{addr} - {tag}:{}", self.cid)
        } else {
            format!("{addr} - {tag}:{} - {ncs:?}", self.cid)
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn close_reason(&self) -> Option<ClosedState> {
        *self.reason.lock()
    }

    /// Closes the connection for `reason`; the first reason given is kept.
    pub fn close(&self, reason: ClosedState) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.reason.lock() = Some(reason);
        self.out.close(reason.discards_output());
        self.kill.notify_one();
    }

    /// Closes a peer that cannot keep up, counting it as the reference does.
    pub fn slow_consumer(&self, reason: ClosedState, pending: usize) {
        if self.is_closed() {
            return;
        }
        self.report_slow_consumer(reason, pending);
        self.close(reason);
    }

    /// Counts and logs a slow consumer; `bytes` is what was pending (max_pending) or what
    /// one write attempted (write_deadline).
    pub fn report_slow_consumer(&self, reason: ClosedState, bytes: usize) {
        self.account
            .read()
            .stats
            .slow_consumers
            .fetch_add(1, Ordering::Relaxed);
        if let Some(s) = self.server.upgrade() {
            s.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
            if reason == ClosedState::SlowConsumerWriteDeadline {
                // The reference writes its buffers (64 KB at most each) in one writev.
                info!(
                    "{} - Slow Consumer Detected: WriteDeadline of {} exceeded with {} chunks of {} total bytes.",
                    self.prefix(),
                    nats_common::monitor::go_duration_string(s.opts().write_deadline),
                    bytes.div_ceil(64 * 1024),
                    bytes
                );
                return;
            }
        }
        info!(
            "{} - Slow Consumer Detected: MaxPending of {} Exceeded",
            self.prefix(),
            self.out.max_pending
        );
    }

    /// Queues `-ERR 'text'`.
    pub fn send_err(&self, text: &str) {
        let mut b = Vec::with_capacity(text.len() + 10);
        proto::err(&mut b, text);
        if logging::trace_enabled() {
            trace!("{} - ->> [-ERR {}]", self.prefix(), text);
        }
        self.out.send(&b);
    }

    /// Resolves when someone closes this connection.
    pub async fn killed(&self) {
        self.kill.notified().await
    }
}

/// Connection-local state of a client's read loop.
struct Reader {
    server: Arc<Server>,
    client: Arc<Client>,
    parser: Parser,
    opts: ConnectInfo,
    connected: bool,
    auth_required: bool,
    perms: Option<Arc<auth::Permissions>>,
    /// auth::generation() when `perms` was computed; a reload bumps it.
    auth_gen: u64,
    /// reload::limits_generation() when the parser limits were set.
    limits_gen: u64,
    /// The account the connection is bound to (set at CONNECT).
    account: Arc<Account>,
    /// Match results by subject, each valid while the account's index is unchanged.
    cache: crate::accounts::MatchCache,
    /// The most recent subject published to and its match (most publishers repeat one).
    last_subject: Vec<u8>,
    last_result: Option<Arc<MatchResult<SubRef>>>,
    /// The account index's generation `last_result` was matched at.
    last_gen: u64,
    flush: FlushSet,
    pings_out: u32,
    ping_sent: Option<Instant>,
    rtt_measured: bool,
    last_in: Instant,
    /// When the peer last sent us a PING (our own PING is then put off).
    last_remote_ping: Option<Instant>,
    /// A JWT user's limits: subscriptions (-1: none) and payload.
    jwt_max_subs: Option<i64>,
    jwt_max_payload: Option<i64>,
    /// When a JWT login expires, and whether the account's expiry is the one that comes
    /// first; set at CONNECT, armed by the read loop.
    expiry: Option<(Duration, bool)>,
    /// Answered the first PING after CONNECT; async INFO may be sent from then on.
    pong_sent: bool,
}

/// Handles one accepted client connection until it closes.
pub async fn run<R, W>(server: Arc<Server>, client: Arc<Client>, rd: R, wr: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let opts = server.opts();
    let writer = tokio::spawn(outbound::run_writer(
        client.clone(),
        wr,
        opts.write_deadline,
    ));
    let mut parser = Parser::new(Side::Client, opts.max_control_line, opts.max_payload);
    parser.headers = false;
    // A websocket client may have its own authorization and auth timeout.
    let auth_required =
        server.auth_required() || (client.ws.get().is_some() && auth::ws_override(&opts.websocket));
    let auth_timeout = auth::client_opts(opts.clone(), &client).effective_auth_timeout();
    let mut reader = Reader {
        server: server.clone(),
        client: client.clone(),
        parser,
        opts: ConnectInfo::default(),
        connected: false,
        auth_required,
        perms: None,
        auth_gen: auth::generation(),
        limits_gen: crate::reload::limits_generation(),
        account: server.accounts.global.clone(),
        cache: Default::default(),
        last_subject: Vec::new(),
        last_result: None,
        last_gen: 0,
        flush: FlushSet::default(),
        pings_out: 0,
        ping_sent: None,
        rtt_measured: false,
        last_remote_ping: None,
        last_in: Instant::now(),
        pong_sent: false,
        jwt_max_subs: None,
        jwt_max_payload: None,
        expiry: None,
    };
    reader.read_loop(rd, opts.ping_interval, auth_timeout).await;
    reader.cleanup();
    let _ = writer.await;
}

impl proto::OpHandler for Reader {
    fn parser(&self) -> &Parser {
        &self.parser
    }

    fn handle(&mut self, op: Op<'_>) -> bool {
        Reader::handle(self, op)
    }
}

impl Reader {
    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        mut rd: R,
        ping_interval: Duration,
        auth_timeout: Duration,
    ) {
        let mut buf = BytesMut::with_capacity(MIN_READ);
        let mut read_size = MIN_READ;
        let ping = tokio::time::sleep(ping_interval);
        tokio::pin!(ping);
        let auth = tokio::time::sleep(auth_timeout);
        tokio::pin!(auth);
        // A JWT login's expiry; armed once CONNECT sets it.
        let expiry = tokio::time::sleep(Duration::from_secs(86400 * 365));
        tokio::pin!(expiry);
        let mut account_expiry = None;
        let client = self.client.clone();
        loop {
            if client.is_closed() {
                break;
            }
            if buf.capacity() - buf.len() < read_size {
                buf.reserve(read_size);
            }
            tokio::select! {
                _ = client.killed() => break,
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => {
                        client.close(ClosedState::ClientClosed);
                        break;
                    }
                    Ok(n) => {
                        read_size = next_read_size(read_size, n);
                        self.last_in = Instant::now();
                        self.refresh_limits();
                        let used = self.process(&buf);
                        buf.advance(used);
                        if let Some((d, acc)) = self.expiry.take() {
                            expiry.as_mut().reset(tokio::time::Instant::now() + d);
                            account_expiry = Some(acc);
                        }
                        self.flush.end_batch(&self.server, &self.client);
                        self.flush.wait_stalled(&client).await;
                    }
                    Err(e) => {
                        // A broken websocket frame is logged as the reference does.
                        if let Some(pe) = e
                            .get_ref()
                            .and_then(|e| e.downcast_ref::<nats_common::ws::ProtocolError>())
                        {
                            error!("{} - read error: {pe}", client.prefix());
                        }
                        client.close(ClosedState::ReadError);
                        break;
                    }
                },
                _ = &mut ping => {
                    self.ping_timer();
                    let next = self.server.opts().ping_interval;
                    ping.as_mut().reset(tokio::time::Instant::now() + next);
                }
                _ = &mut expiry, if account_expiry.is_some() => {
                    let text = if account_expiry == Some(true) {
                        "Account Authentication Expired"
                    } else {
                        "User Authentication Expired"
                    };
                    client.send_err(text);
                    debug!("{} - {text}", client.prefix());
                    client.close(ClosedState::AuthenticationExpired);
                    break;
                }
                _ = &mut auth, if self.auth_required && !self.connected => {
                    debug!("{} - Authentication Timeout", client.prefix());
                    client.send_err("Authentication Timeout");
                    client.close(ClosedState::AuthenticationTimeout);
                    break;
                }
            }
            if self.connected && !self.rtt_measured && self.ping_sent.is_none() {
                // The first PING goes out about 2 s after CONNECT to measure RTT.
                let first = first_ping_delay(self.server.opts().ping_interval);
                let target = tokio::time::Instant::now() + first;
                if ping.deadline() > target {
                    ping.as_mut().reset(target);
                }
            }
        }
    }

    /// Parses and handles every complete op in `buf`; returns the bytes used.
    fn process(&mut self, buf: &[u8]) -> usize {
        match proto::drive(self, buf) {
            proto::Driven::Used(n) => n,
            proto::Driven::Stopped => buf.len(),
            proto::Driven::Failed(e, at) => {
                self.parse_error(e, &buf[at..]);
                buf.len()
            }
        }
    }

    fn parse_error(&mut self, e: ParseError, rest: &[u8]) {
        let c = &self.client;
        match e {
            ParseError::UnknownOp => {
                error!(
                    "{} - Client parser ERROR, state=0, i=0: proto='{}...'",
                    c.prefix(),
                    logging::proto_snippet(rest)
                );
                c.send_err("Unknown Protocol Operation");
                // The reference records an unknown op as a protocol violation.
                c.close(ClosedState::ProtocolViolation);
            }
            ParseError::MaxControlLine { len, max } => {
                error!(
                    "{} - maximum control line exceeded: max_control_line {max}, line len {len}",
                    c.prefix()
                );
                c.send_err("maximum control line exceeded");
                c.close(ClosedState::MaxControlLineExceeded);
            }
            ParseError::MaxPayload { size, max } => {
                error!("{} - maximum payload exceeded: {size} vs {max}", c.prefix());
                c.send_err("Maximum Payload Violation");
                c.close(ClosedState::MaxPayloadExceeded);
            }
            ParseError::HeadersNotSupported => {
                error!("{} - message headers not supported", c.prefix());
                c.close(ClosedState::MsgHeaderViolation);
            }
            ParseError::Protocol(msg) => {
                error!("{} - {msg}", c.prefix());
                c.close(ClosedState::ProtocolViolation);
            }
        }
    }

    fn reply(&mut self, bytes: &[u8]) {
        self.flush.queue(&self.client, bytes);
    }

    /// Picks up max_payload / max_control_line changed by a reload.
    fn refresh_limits(&mut self) {
        let gen = crate::reload::limits_generation();
        if gen != self.limits_gen {
            self.limits_gen = gen;
            let opts = self.server.opts();
            self.parser.max_payload = opts.max_payload;
            if let Some(p) = self.jwt_max_payload {
                if p >= 0 && (p as usize) < opts.max_payload {
                    self.parser.max_payload = p as usize;
                }
            }
            self.parser.max_control_line = opts.max_control_line;
        }
    }

    /// Installs a client's permissions, sharing the subscribe-deny part with deliverers.
    fn set_perms(&mut self, p: Option<Arc<auth::Permissions>>) {
        let deny = p.clone().filter(|p| p.has_sub_deny());
        self.client
            .has_deliver_deny
            .store(deny.is_some(), Ordering::Release);
        *self.client.deliver_deny.write() = deny;
        self.perms = p;
    }

    fn ok(&mut self) {
        if self.opts.verbose {
            if logging::trace_enabled() {
                trace!("{} - ->> [OK]", self.client.prefix());
            }
            self.reply(proto::OK);
        }
    }

    /// Acts on one op; false when the connection must stop reading.
    fn handle(&mut self, op: Op<'_>) -> bool {
        if logging::trace_enabled() {
            self.trace_in(&op);
        }
        if self.auth_required && !self.connected && !matches!(op, Op::Connect(_)) {
            self.client.send_err("Authorization Violation");
            if crate::accounts::jwt::trusted_mode(&self.server.opts()) {
                debug!(
                    "{} - Authentication requires a user JWT",
                    self.client.prefix()
                );
            }
            error!(
                "{} - {}",
                self.client.prefix(),
                auth::violation(&self.server.opts(), "", "")
            );
            self.client.close(ClosedState::AuthenticationViolation);
            return false;
        }
        if self.connected && self.auth_gen != auth::generation() && self.jwt_max_payload.is_none() {
            // A reload changed authorization: pick up this user's new permissions.
            self.auth_gen = auth::generation();
            if let Some(p) = auth::recheck(&self.server, &self.client) {
                self.set_perms(p);
            }
        }
        match op {
            Op::Ping => {
                self.last_remote_ping = Some(Instant::now());
                if logging::trace_enabled() {
                    trace!("{} - ->> [PONG]", self.client.prefix());
                }
                self.reply(proto::PONG);
                if self.connected && !self.pong_sent {
                    self.pong_sent = true;
                    self.server.client_ready(&self.client);
                    // A JWT user with a payload limit of its own learns it now.
                    let mpay = self.client.max_payload.load(Ordering::Relaxed);
                    if self.opts.protocol >= 1
                        && mpay >= 0
                        && mpay != self.server.opts().max_payload as i64
                    {
                        let info = self.server.async_info(&self.client);
                        self.reply(&info);
                    }
                }
                true
            }
            Op::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    self.client.meta.lock().rtt = Some(sent.elapsed());
                    self.rtt_measured = true;
                }
                true
            }
            Op::Connect(json) => self.connect(json),
            Op::Pub(msg) => {
                self.publish(msg);
                true
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => {
                self.subscribe(subject, queue, sid);
                true
            }
            Op::Unsub { sid, max } => {
                self.unsubscribe(sid, max);
                self.ok();
                true
            }
            Op::Ok => true,
            // Clients may send INFO; it is ignored, but it must be valid JSON.
            Op::Info(json) => {
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(json) {
                    error!("{} - {}", self.client.prefix(), e);
                    self.client.close(ClosedState::ProtocolViolation);
                    return false;
                }
                true
            }
            Op::Err(text) => {
                error!(
                    "{} - Client Error '{}'",
                    self.client.prefix(),
                    String::from_utf8_lossy(text)
                );
                self.client.close(ClosedState::ClientClosed);
                false
            }
            // The client-side parser never yields these.
            Op::Msg { .. }
            | Op::RouteSub { .. }
            | Op::RouteUnsub { .. }
            | Op::RouteMsg { .. }
            | Op::AccountSub(_)
            | Op::AccountUnsub(_)
            | Op::Ignored => {
                self.client.send_err("Unknown Protocol Operation");
                self.client.close(ClosedState::ParseError);
                false
            }
        }
    }

    fn trace_in(&self, op: &Op<'_>) {
        let p = self.client.prefix();
        if let Op::Pub(m) = op {
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let mut l = if m.headers.is_some() {
                "HPUB ".to_string()
            } else {
                "PUB ".to_string()
            };
            l.push_str(&s(m.subject));
            if let Some(r) = m.reply {
                l.push(' ');
                l.push_str(&s(r));
            }
            if let Some(h) = m.headers {
                l.push_str(&format!(" {}", h.len()));
            }
            l.push_str(&format!(" {}", m.size()));
            trace!("{p} - <<- [{l}]");
            let max = self.server.opts().max_traced_msg_len;
            let mut body = m.headers.unwrap_or_default().to_vec();
            body.extend_from_slice(m.payload);
            trace!(
                "{p} - <<- MSG_PAYLOAD: [{}]",
                logging::quote_bytes(&body, max)
            );
            return;
        }
        if let Some(line) = logging::inbound_op_line(op, logging::OpDialect::Client) {
            trace!("{p} - <<- [{line}]");
        }
    }

    fn connect(&mut self, json: &[u8]) -> bool {
        let c = self.client.clone();
        let mut info: ConnectInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {}", c.prefix(), e);
                c.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        // A websocket client's JWT may come in the `jwt_cookie` cookie of its upgrade.
        if info.jwt.as_deref().unwrap_or_default().is_empty() {
            if let Some(m) = c.ws.get().filter(|m| !m.cookie_jwt.is_empty()) {
                info.jwt = Some(m.cookie_jwt.clone());
            }
        }
        {
            // Known before authentication, so its log lines carry the client's tag.
            let mut meta = c.meta.lock();
            meta.name = info.name.clone();
            meta.lang = info.lang.clone();
            meta.version = info.version.clone();
            // The reference's first RTT estimate: accept to CONNECT (a PING refines it).
            if meta.rtt.is_none() {
                let since = SystemTime::now()
                    .duration_since(c.start)
                    .unwrap_or_default();
                meta.rtt = Some(since.max(Duration::from_nanos(1)));
            }
        }
        if info.protocol < 0 || info.protocol > 1 {
            c.send_err("invalid client protocol");
            error!("{} - invalid client protocol", c.prefix());
            c.close(ClosedState::BadClientProtocolVersion);
            return false;
        }
        if info.no_responders && !info.headers {
            c.send_err("no responders requires headers support");
            error!("{} - no responders requires headers support", c.prefix());
            c.close(ClosedState::NoRespondersRequiresHeaders);
            return false;
        }
        if crate::accounts::jwt::trusted_mode(&self.server.opts()) {
            if !self.login_jwt(&info) {
                return false;
            }
        } else if self.auth_required || !self.connected {
            match auth::authenticate(&self.server, &c, &info) {
                auth::Outcome::Allowed {
                    user,
                    account,
                    permissions,
                } => {
                    c.meta.lock().user = user;
                    self.set_perms(permissions);
                    self.bind_account(&account);
                }
                auth::Outcome::Denied => {
                    error!(
                        "{} - {}",
                        c.prefix(),
                        auth::violation(
                            &self.server.opts(),
                            info.user.as_deref().unwrap_or_default(),
                            info.nkey.as_deref().unwrap_or_default()
                        )
                    );
                    c.send_err("Authorization Violation");
                    c.close(ClosedState::AuthenticationViolation);
                    c.meta.lock().user = info.user.clone().unwrap_or_default();
                    crate::system::auth_error(&self.server, &c);
                    return false;
                }
            }
        }
        let headers = info.headers && !self.server.opts().no_header_support;
        c.headers.store(headers, Ordering::Relaxed);
        self.parser.headers = headers;
        self.opts = info;
        self.opts.headers = headers;
        self.connected = true;
        self.server.client_connected(&c, self.opts.protocol);
        self.ok();
        true
    }

    /// The reference's `getAuthUser`, for violation log lines.
    fn auth_user(&self) -> String {
        let meta = self.client.meta.lock();
        let connect = meta.auth.connect.clone();
        let nkey = connect
            .as_ref()
            .and_then(|i| i.nkey.clone())
            .unwrap_or_default();
        let jwt = connect
            .as_ref()
            .and_then(|i| i.jwt.clone())
            .unwrap_or_default();
        if !nkey.is_empty() {
            format!("Nkey {nkey:?}")
        } else if !meta.user.is_empty() && jwt.is_empty() {
            format!("User {:?}", meta.user)
        } else if !jwt.is_empty() {
            format!("JWT User {:?}", meta.user)
        } else {
            "User \"N/A\"".to_string()
        }
    }

    /// Operator mode: the CONNECT must carry a user JWT of a trusted account, signed
    /// nonce and all (see accounts/jwt.rs). Binds the connection to the JWT's account with
    /// its permissions and limits, or refuses it as the reference does.
    fn login_jwt(&mut self, info: &ConnectInfo) -> bool {
        use crate::accounts::jwt;
        let c = self.client.clone();
        let prefix = c.prefix();
        let nonce = c.meta.lock().auth.nonce.clone();
        let got = jwt::authenticate(
            &self.server.accounts,
            &prefix,
            info.jwt.as_deref().unwrap_or_default(),
            info.sig.as_deref().unwrap_or_default(),
            &nonce,
            Some(c.addr.ip()),
        );
        let Some(u) = got else {
            error!("{prefix} - authentication error");
            c.send_err("Authorization Violation");
            c.close(ClosedState::AuthenticationViolation);
            c.meta.lock().user = info.user.clone().unwrap_or_default();
            crate::system::auth_error(&self.server, &c);
            return false;
        };
        self.server.finish_accounts(&u.built);
        let aj = u.account.jwt.read().clone();
        // The server's limits apply too (the reference's applyAccountLimits).
        let opts = self.server.opts();
        let mut mpay = u.max_payload;
        let mut msubs = u.max_subs;
        let server_pay = if opts.max_payload == 0 {
            jwt::NO_LIMIT
        } else {
            opts.max_payload as i64
        };
        let was_unlimited = mpay == jwt::NO_LIMIT;
        if jwt::min_limit(&mut mpay, server_pay) && !was_unlimited {
            error!(
                "{prefix} - Max Payload set to {} from server overrides account or user config",
                opts.max_payload
            );
        }
        let server_subs = if opts.max_subscriptions == 0 {
            jwt::NO_LIMIT
        } else {
            opts.max_subscriptions as i64
        };
        let was_unlimited = msubs == jwt::NO_LIMIT;
        if jwt::min_limit(&mut msubs, server_subs) && !was_unlimited {
            error!(
                "{prefix} - Max Subscriptions set to {} from server overrides account or user config",
                opts.max_subscriptions
            );
        }
        let max_conns = aj.as_ref().map_or(jwt::NO_LIMIT, |a| a.max_conns);
        if max_conns != jwt::NO_LIMIT
            && u.account.num_clients.load(Ordering::Relaxed) as i64 >= max_conns
        {
            const TEXT: &str = "maximum account active connections exceeded";
            c.send_err(TEXT);
            error!("{prefix} - {TEXT}");
            c.close(ClosedState::MaxAccountConnectionsExceeded);
            error!("{prefix} - {TEXT}");
            return false;
        }
        if msubs == 0 {
            // At the limit already: refused shortly after the login.
            let c2 = c.clone();
            tokio::spawn(async move {
                error!("{} - maximum subscriptions exceeded", c2.prefix());
                c2.send_err("maximum subscriptions exceeded");
                tokio::time::sleep(Duration::from_millis(20)).await;
                c2.close(ClosedState::MaxSubscriptionsExceeded);
            });
        }
        debug!("{prefix} - {}", u.authenticated);
        c.meta.lock().auth.connect = Some(Arc::new(info.clone()));
        c.meta.lock().user = u.user.clone();
        let perms = u
            .permissions
            .as_ref()
            .map(|p| Arc::new(auth::Permissions::from_options(p)));
        match perms.as_ref().and_then(|p| p.response) {
            Some((max, ttl)) => c.replies.enable(max, ttl),
            None => c.replies.disable(),
        }
        self.set_perms(perms);
        c.max_payload.store(mpay, Ordering::Relaxed);
        self.jwt_max_payload = Some(mpay);
        self.jwt_max_subs = Some(msubs);
        if mpay >= 0 && (mpay as usize) < self.parser.max_payload {
            self.parser.max_payload = mpay as usize;
        }
        // The login expires with the user JWT (or its connect window), or with the
        // account JWT when that comes first.
        let account_in = aj.as_ref().and_then(|a| {
            let exp = a.claims.data.exp;
            (exp != 0).then(|| {
                Duration::from_secs((exp - crate::accounts::claims::now_unix()).max(0) as u64)
            })
        });
        self.expiry = match (u.expires_in, account_in) {
            (Some(user), Some(acc)) if acc < user => Some((acc, true)),
            (Some(user), _) => Some((user, false)),
            (None, Some(acc)) => Some((acc, true)),
            (None, None) => None,
        };
        let name = u.account.name.clone();
        self.bind_account(&name);
        true
    }

    fn publish(&mut self, msg: Message<'_>) {
        self.flush.count_in(msg.size());
        if self.opts.pedantic && !subject::is_valid_literal_subject(msg.subject) {
            self.client.send_err("Invalid Publish Subject");
        }
        if let Some(p) = &self.perms {
            if !p.can_publish(msg.subject) && !p.response_allowed(&self.client, msg.subject) {
                let subj = String::from_utf8_lossy(msg.subject);
                self.client
                    .send_err(&format!("Permissions Violation for Publish to \"{subj}\""));
                error!(
                    "{} - Publish Violation - {}, Subject {:?}",
                    self.client.prefix(),
                    self.auth_user(),
                    subj
                );
                return;
            }
        }
        // The reference acknowledges before delivering.
        self.ok();
        if let Some(mapped) = self.client.gw_replies.get(msg.subject) {
            // An answer to a request from another cluster: straight back to it.
            let mut d = Delivery::new(
                &self.server,
                &self.account,
                &self.client,
                self.opts.echo,
                &mut self.flush,
            );
            crate::gateway::send_mapped_reply(&mut d, &msg, &mapped);
            return;
        }
        let mapped;
        let msg = match self
            .account
            .map_subject(msg.subject, &self.server.cluster.name())
        {
            Mapped::Unchanged => msg,
            Mapped::To(s) => {
                mapped = s;
                Message {
                    subject: &mapped,
                    ..msg
                }
            }
            Mapped::Dropped => return,
        };
        self.load_match(msg.subject);
        // Borrow the cached result and the flush set as separate fields: no Arc clone and
        // no hashing per message while a publisher keeps to one subject.
        let Some(result) = self.last_result.as_deref() else {
            return;
        };
        let mut d = Delivery::new(
            &self.server,
            &self.account,
            &self.client,
            self.opts.echo,
            &mut self.flush,
        );
        let delivered = deliver::deliver(&mut d, &msg, result, None);
        if delivered == 0 && self.opts.no_responders {
            if let Some(reply) = msg.reply {
                self.no_responders(reply);
            }
        }
    }

    /// Tells a requester nobody received its request: an HMSG with status 503 on each of
    /// its own subscriptions matching the reply subject.
    fn no_responders(&mut self, reply: &[u8]) {
        let subs: Vec<Arc<Subscription>> = self
            .client
            .subs
            .lock()
            .values()
            .filter(|s| s.queue.is_none() && subject::matches(&s.subject, reply))
            .cloned()
            .collect();
        for s in subs {
            let mut d = Delivery::new(
                &self.server,
                &self.account,
                &self.client,
                true,
                &mut self.flush,
            );
            let m = Message {
                subject: reply,
                reply: None,
                headers: Some(nats_common::headers::NO_RESPONDERS),
                payload: b"",
            };
            deliver::deliver_to(&mut d, &SubRef(s), &m);
        }
    }

    /// Makes `last_result` the subscribers of `subject`: from the last-subject slot while
    /// the account's index is unchanged, else this connection's cache or the index.
    fn load_match(&mut self, subject: &[u8]) {
        let gen = self.account.genid.load(Ordering::Acquire);
        if gen == self.last_gen && self.last_result.is_some() && self.last_subject == subject {
            return;
        }
        let r = self.cache.get(&self.account, subject);
        self.last_gen = gen;
        self.last_subject.clear();
        self.last_subject.extend_from_slice(subject);
        self.last_result = Some(r);
    }

    /// Binds the connection to `name`'s account (the global one for an empty name).
    fn bind_account(&mut self, name: &str) {
        let acc = if name.is_empty() {
            self.server.accounts.global.clone()
        } else {
            self.server.accounts.get_or_create(name)
        };
        if Arc::ptr_eq(&acc, &self.account) && self.connected {
            return;
        }
        if self.connected {
            self.account.num_clients.fetch_sub(1, Ordering::Relaxed);
        }
        acc.num_clients.fetch_add(1, Ordering::Relaxed);
        *self.client.account.write() = acc.clone();
        self.account = acc;
        self.last_result = None;
        crate::system::client_connected(&self.server, &self.client, &self.account);
    }

    fn subscribe(&mut self, subj: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        let c = self.client.clone();
        // The reference checks only what its subscription index needs; the queue name is
        // whatever the argument splitting left.
        if !subject::is_valid_sub_subject(subj) {
            c.send_err("Invalid Subject");
            return;
        }
        if let Some(p) = &self.perms {
            if !p.can_subscribe(subj, queue) {
                let s = String::from_utf8_lossy(subj);
                let user = self.auth_user();
                match queue {
                    Some(q) => {
                        let q = String::from_utf8_lossy(q);
                        c.send_err(&format!(
                            "Permissions Violation for Subscription to \"{s}\" using queue \"{q}\""
                        ));
                        error!(
                            "{} - Subscription Violation - {user}, Subject {s:?}, Queue: {q:?}, SID {}",
                            c.prefix(),
                            String::from_utf8_lossy(sid)
                        );
                    }
                    None => {
                        c.send_err(&format!(
                            "Permissions Violation for Subscription to \"{s}\""
                        ));
                        error!(
                            "{} - Subscription Violation - {user}, Subject {s:?}, SID {}",
                            c.prefix(),
                            String::from_utf8_lossy(sid)
                        );
                    }
                }
                return;
            }
        }
        // A JWT user's limit (-1: none; 0 refuses every subscription), else the server's
        // (0: none).
        let max_subs: Option<usize> = match self.jwt_max_subs {
            Some(n) => (n >= 0).then_some(n as usize),
            None => {
                let n = self.server.opts().max_subscriptions;
                (n > 0).then_some(n)
            }
        };
        {
            let subs = c.subs.lock();
            if let Some(existing) = subs.get(sid) {
                if !existing.closed.load(Ordering::Acquire) {
                    // The reference ignores a SUB that reuses a live sid.
                    drop(subs);
                    self.ok();
                    return;
                }
            }
            if max_subs.is_some_and(|m| subs.len() >= m) {
                drop(subs);
                error!("{} - maximum subscriptions exceeded", c.prefix());
                c.send_err("maximum subscriptions exceeded");
                return;
            }
        }
        let sub = Arc::new(Subscription::new(&c, &self.account, subj, queue, sid));
        c.subs.lock().insert(sid.into(), sub.clone());
        self.server.add_sub(&sub);
        self.server.add_shadows(&sub);
        self.ok();
    }

    fn unsubscribe(&mut self, sid: &[u8], max: Option<u64>) {
        let c = &self.client;
        let sub = match c.subs.lock().get(sid) {
            Some(s) => s.clone(),
            None => return,
        };
        match max {
            Some(m) if m > 0 && sub.delivered.load(Ordering::Acquire) < m => {
                sub.max.store(m, Ordering::Release);
            }
            _ => self.server.remove_sub(&sub),
        }
    }

    fn ping_timer(&mut self) {
        let c = self.client.clone();
        debug!("{} - Client Ping Timer", c.prefix());
        let opts = self.server.opts();
        if let Some(why) = delay_ping(
            &c,
            self.last_remote_ping,
            opts.ping_interval,
            !self.rtt_measured,
        ) {
            debug!("{} - {why}", c.prefix());
            return;
        }
        if self.pings_out + 1 > opts.ping_max {
            debug!("{} - Stale Client Connection - Closing", c.prefix());
            c.send_err("Stale Connection");
            c.close(ClosedState::StaleConnection);
            return;
        }
        if logging::trace_enabled() {
            trace!("{} - ->> [PING]", c.prefix());
        }
        self.pings_out += 1;
        self.ping_sent = Some(Instant::now());
        self.client.out.send(proto::PING);
    }

    fn cleanup(&mut self) {
        self.flush.flush(&self.server);
        if self.connected {
            self.account.num_clients.fetch_sub(1, Ordering::Relaxed);
            crate::system::client_disconnected(&self.server, &self.client, &self.account);
        }
        let c = &self.client;
        let subs: Vec<Arc<Subscription>> = c.subs.lock().drain().map(|(_, s)| s).collect();
        self.server.remove_subs(&subs);
        let sids: Vec<Box<[u8]>> = if logging::trace_enabled() {
            subs.iter().map(|s| s.sid.clone()).collect()
        } else {
            Vec::new()
        };
        self.server.client_closed_with_subs(c, subs);
        // After the close line, each subscription's removal, as the reference traces it.
        for sid in sids {
            trace!(
                "{} - <-> [DELSUB {}]",
                c.prefix(),
                String::from_utf8_lossy(&sid)
            );
        }
    }
}

/// Reads start small (idle connections stay cheap) and double while they fill the buffer,
/// so a busy publisher is read in large chunks with few syscalls.
const MIN_READ: usize = 512;
pub const MAX_READ: usize = 64 * 1024;

pub fn next_read_size(current: usize, got: usize) -> usize {
    if got >= current {
        (current * 2).min(MAX_READ)
    } else if got < current / 4 {
        (current / 2).max(MIN_READ)
    } else {
        current
    }
}

/// 2 s plus up to 20% jitter, or the ping interval when that is shorter.
fn first_ping_delay(interval: Duration) -> Duration {
    let base = Duration::from_secs(2);
    let jitter = Duration::from_millis(rand::random::<u64>() % 400);
    (base + jitter).min(interval)
}

/// Why the ping timer sends no PING now, as the reference decides (and words it): the
/// connection had messages or interest changes (`last_activity`), or the peer pinged us,
/// within the ping interval, and the round trip is already known.
pub fn delay_ping(
    c: &Client,
    last_remote_ping: Option<Instant>,
    interval: Duration,
    need_rtt: bool,
) -> Option<String> {
    if need_rtt {
        return None;
    }
    let now = unix_nanos();
    let active = Duration::from_nanos(now.saturating_sub(c.last_activity.load(Ordering::Relaxed)));
    if active < interval {
        return Some(format!(
            "Delaying PING due to client activity {} ago",
            go_round_secs(active)
        ));
    }
    if let Some(t) = last_remote_ping {
        let since = t.elapsed();
        if since < interval {
            return Some(format!(
                "Delaying PING due to remote ping {} ago",
                go_round_secs(since)
            ));
        }
    }
    None
}

/// Go's `d.Round(time.Second).String()`: `0s`, `45s`, `1m30s`, `1h0m5s`.
pub fn go_round_secs(d: Duration) -> String {
    let s = (d.as_millis() + 500) / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_like_go() {
        assert_eq!(go_round_secs(Duration::from_millis(400)), "0s");
        assert_eq!(go_round_secs(Duration::from_millis(1500)), "2s");
        assert_eq!(go_round_secs(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_round_secs(Duration::from_secs(3605)), "1h0m5s");
    }
}
