//! One leaf node connection: the INFO/CONNECT handshake of either side, the read loop
//! (LS+/LS-/LMSG, PING/PONG, -ERR), loop detection and the close.

use super::{add_js_denies, exempt, smap_key, Link, LOOP_DELAY};
use crate::auth;
use crate::client::{Client, ClosedState, Kind, Subscription};
use crate::deliver::{self, Delivery, FlushSet};
use crate::logging;
use crate::outbound;
use crate::server::Server;
use bytes::{Buf, BytesMut};
use nats_common::info::{LeafConnectInfo, ServerInfo};
use nats_common::proto::{self, Message, Op, ParseError, Parser, Queues, Side};
use nats_common::subject;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tracing::{debug, error, info, trace, warn};

pub type Rd = Pin<Box<dyn AsyncRead + Send>>;
pub type Wr = Pin<Box<dyn AsyncWrite + Send>>;

/// How long a soliciting leaf waits for the hub's answer to its CONNECT.
const CONNECT_PROCESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Host and port leafs are told to dial: `leafnodes.advertise`, else the listener (a
/// wildcard host resolved to the first non-loopback address, as the reference does).
pub fn advertised(server: &Server) -> (String, u16) {
    let opts = server.opts();
    let port = server.leafs.listen_addr().map_or(0, |a| a.port());
    if !opts.leaf.advertise.is_empty() {
        if let Some((h, p)) = crate::cli::split_host_port(&opts.leaf.advertise) {
            if let Ok(p) = p.parse() {
                return (h.to_string(), p);
            }
        }
        return (opts.leaf.advertise.clone(), port);
    }
    let host = if opts.leaf.host.is_empty() {
        crate::options::DEFAULT_HOST.to_string()
    } else {
        opts.leaf.host.clone()
    };
    if host == "0.0.0.0" || host == "::" {
        if let Some(ip) = crate::netutil::non_loopback_ips().into_iter().next() {
            return (ip, port);
        }
    }
    (host, port)
}

/// The INFO a hub sends a leaf: the first one (with the nonce), the answer to its CONNECT
/// (`connect_info`, naming the account it is bound to), or an update of `leafnode_urls`.
pub fn hub_info(server: &Server, c: &Client, first: bool, account: Option<&str>) -> Vec<u8> {
    let opts = server.opts();
    let (host, port) = advertised(server);
    let tls = opts.leaf.tls.is_some();
    let info = ServerInfo {
        server_id: server.id.clone(),
        server_name: server.name.clone(),
        version: crate::server::VERSION.to_string(),
        proto: 1,
        go: crate::server::RUNTIME.to_string(),
        ip: crate::server::host_port(&host, port),
        host,
        port,
        headers: !opts.no_header_support,
        auth_required: true,
        tls_required: tls,
        tls_verify: opts.leaf.tls.as_ref().is_some_and(|t| t.verify),
        max_payload: opts.max_payload as i64,
        client_id: c.cid,
        nonce: if first {
            c.meta.lock().auth.nonce.clone()
        } else {
            String::new()
        },
        cluster: server.cluster.name(),
        info_on_connect: true,
        connect_info: account.is_some(),
        leafnode_urls: Some(server.leafs.urls()),
        remote_account: account.unwrap_or_default().to_string(),
        ..Default::default()
    };
    let json = serde_json::to_vec(&info).unwrap_or_default();
    let mut out = Vec::with_capacity(json.len() + 8);
    proto::info(&mut out, &json);
    out
}

/// Whether `version` (`major.minor.patch`) is below `min`.
fn version_below(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> (u64, u64, u64) {
        let core = v.split(['-', '+']).next().unwrap_or("");
        let mut it = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
        (
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
            it.next().unwrap_or(0),
        )
    };
    parse(version) < parse(min)
}

/// Where a connection is in its handshake.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Hub side: waiting for the leaf's CONNECT.
    AwaitConnect,
    /// Leaf side: CONNECT sent, waiting for the hub's INFO that answers it.
    AwaitConnectInfo,
    /// Bound to its account and registered.
    Bound,
    /// Refused (below `min_version`), closing after a delay.
    Rejected,
}

struct Reader {
    server: Arc<Server>,
    client: Arc<Client>,
    link: Arc<Link>,
    parser: Parser,
    stage: Stage,
    account: Option<Arc<crate::accounts::Account>>,
    cache: crate::accounts::MatchCache,
    flush: FlushSet,
    pings_out: u32,
    ping_sent: Option<Instant>,
    last_remote_ping: Option<Instant>,
}

/// Creates the handle of a new leaf connection.
pub fn new_conn(
    server: &Arc<Server>,
    addr: SocketAddr,
    solicited: bool,
    remote: Option<usize>,
    spoke: bool,
) -> (Arc<Client>, Arc<Link>) {
    let c = Client::new(server, server.next_cid(), Kind::Leaf, addr);
    c.headers.store(false, Ordering::Relaxed);
    let link = Link::new(solicited, remote, spoke);
    let _ = c.leaf.set(link.clone());
    server.leafs.all.lock().insert(c.cid, c.clone());
    (c, link)
}

/// Runs a connection until it closes. `pending` holds bytes already read (after the
/// hub's first INFO on a soliciting connection); `connect` is the CONNECT to send first;
/// `bind_now`: the hub does not answer CONNECT with an INFO (before 2.8), so the leaf
/// binds at once.
pub async fn run(
    server: Arc<Server>,
    client: Arc<Client>,
    rd: Rd,
    wr: Wr,
    pending: BytesMut,
    connect: Option<Vec<u8>>,
    bind_now: bool,
) {
    let link = client.leaf.get().cloned().expect("leaf link");
    let opts = server.opts();
    let writer = tokio::spawn(outbound::run_writer(
        client.clone(),
        wr,
        opts.write_deadline,
    ));
    let stage = if link.solicited {
        Stage::AwaitConnectInfo
    } else {
        Stage::AwaitConnect
    };
    let mut reader = Reader {
        server: server.clone(),
        client: client.clone(),
        link: link.clone(),
        parser: Parser::new(
            Side::Leaf,
            opts.max_control_line.max(4096),
            opts.max_payload,
        ),
        stage,
        account: None,
        cache: Default::default(),
        flush: FlushSet::default(),
        pings_out: 0,
        ping_sent: None,
        last_remote_ping: None,
    };
    if let Some(b) = connect {
        client.out.send(&b);
        debug!("{} - Remote leafnode connect msg sent", client.prefix());
        if bind_now {
            let acc = client.account.read().clone();
            add_js_denies(&server, &client, &link);
            reader.bind(acc);
            reader.flush.flush(&server);
        }
    }
    let timeout = if link.solicited {
        CONNECT_PROCESS_TIMEOUT
    } else if opts.leaf.auth_timeout.is_zero() {
        crate::options::AUTH_TIMEOUT
    } else {
        opts.leaf.auth_timeout
    };
    reader.read_loop(rd, pending, timeout).await;
    reader.flush.flush(&server);
    let subs: Vec<Arc<Subscription>> = client.subs.lock().drain().map(|(_, s)| s).collect();
    server.remove_subs(&subs);
    server.leafs.unbind(&server, &client);
    let reason = client.close_reason().unwrap_or(ClosedState::ClientClosed);
    let acc = reader
        .account
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    info!(
        "{} - Leafnode connection closed: {} account: {acc}",
        client.prefix(),
        reason.as_str()
    );
    let _ = writer.await;
    if let Some(idx) = link.remote {
        super::solicit::reconnect(server, idx);
    }
}

/// First PING about 1 s in (plus up to 20% jitter), as the reference does.
fn first_ping_delay(interval: Duration) -> Duration {
    let jitter = Duration::from_millis(rand::random::<u64>() % 200);
    (Duration::from_secs(1) + jitter).min(interval)
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
    async fn read_loop(&mut self, mut rd: Rd, mut buf: BytesMut, timeout: Duration) {
        let mut read_size = crate::client::MAX_READ / 2;
        let ping = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(ping);
        let mut ping_armed = false;
        let handshake = tokio::time::sleep(timeout);
        tokio::pin!(handshake);
        let client = self.client.clone();
        if !buf.is_empty() {
            let used = self.process(&buf);
            buf.advance(used);
            self.flush.end_batch(&self.server, &self.client);
        }
        loop {
            if client.is_closed() {
                break;
            }
            if self.stage == Stage::Bound && !ping_armed {
                ping_armed = true;
                let d = first_ping_delay(self.server.opts().ping_interval);
                ping.as_mut().reset(tokio::time::Instant::now() + d);
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
                        read_size = crate::client::next_read_size(read_size, n);
                        let used = self.process(&buf);
                        buf.advance(used);
                        self.flush.end_batch(&self.server, &self.client);
                        self.flush.wait_stalled(&client).await;
                    }
                    Err(_) => {
                        client.close(ClosedState::ReadError);
                        break;
                    }
                },
                _ = &mut ping, if ping_armed => {
                    self.ping_timer();
                    let next = self.server.opts().ping_interval;
                    ping.as_mut().reset(tokio::time::Instant::now() + next);
                }
                _ = &mut handshake, if !matches!(self.stage, Stage::Bound | Stage::Rejected) => {
                    if self.link.solicited {
                        debug!("{} - Stale Leaf Node Connection - Closing", client.prefix());
                        client.send_err("Stale Leaf Node Connection - Closing");
                        client.close(ClosedState::StaleConnection);
                    } else {
                        debug!("{} - Authentication Timeout", client.prefix());
                        client.send_err("Authentication Timeout");
                        client.close(ClosedState::AuthenticationTimeout);
                    }
                    break;
                }
            }
        }
    }

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
        if self.stage == Stage::AwaitConnect {
            // Anything but CONNECT first is an authorization violation on the hub side.
            self.auth_violation("");
            return;
        }
        match e {
            ParseError::UnknownOp => {
                c.send_err("Unknown Protocol Operation");
                error!(
                    "{} - Leafnode parser ERROR, state=0, i=0: proto='{}...'",
                    c.prefix(),
                    logging::proto_snippet(rest)
                );
            }
            ParseError::MaxControlLine { len, max } => {
                error!(
                    "{} - maximum control line exceeded: max_control_line {max}, line len {len}",
                    c.prefix()
                );
                c.send_err("maximum control line exceeded");
            }
            ParseError::MaxPayload { .. } => {
                c.send_err("Maximum Payload Violation");
                error!("{} - {e}", c.prefix());
                c.close(ClosedState::MaxPayloadExceeded);
                return;
            }
            other => error!("{} - {other}", c.prefix()),
        }
        c.close(ClosedState::ProtocolViolation);
    }

    fn auth_violation(&mut self, user: &str) {
        let c = &self.client;
        error!(
            "{} - {}",
            c.prefix(),
            auth::violation(&self.server.opts(), user, "")
        );
        c.send_err("Authorization Violation");
        c.close(ClosedState::AuthenticationViolation);
    }

    fn handle(&mut self, op: Op<'_>) -> bool {
        if logging::trace_enabled() {
            self.trace_in(&op);
        }
        if self.stage == Stage::AwaitConnect && !matches!(op, Op::Connect(_)) {
            self.auth_violation("");
            return false;
        }
        match op {
            Op::Ping => {
                self.last_remote_ping = Some(Instant::now());
                crate::route::trace_out(&self.client, b"PONG");
                self.flush.queue(&self.client, proto::PONG);
                true
            }
            Op::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    self.client.meta.lock().rtt = Some(sent.elapsed());
                }
                true
            }
            Op::Ok | Op::Ignored => true,
            Op::Err(text) => self.remote_error(&String::from_utf8_lossy(text)),
            Op::Connect(json) => {
                if self.stage == Stage::AwaitConnect {
                    self.connect(json)
                } else {
                    true
                }
            }
            Op::Info(json) => self.info(json),
            Op::RouteSub {
                subject,
                queue,
                weight,
                ..
            } => {
                self.leaf_sub(subject, queue, weight);
                !self.client.is_closed()
            }
            Op::RouteUnsub { subject, queue, .. } => {
                self.leaf_unsub(subject, queue);
                true
            }
            Op::RouteMsg { msg, queues, .. } => {
                self.leaf_msg(msg, queues);
                true
            }
            Op::Pub(msg) => {
                self.leaf_msg(msg, Queues::default());
                true
            }
            Op::Sub { .. }
            | Op::Unsub { .. }
            | Op::Msg { .. }
            | Op::AccountSub(_)
            | Op::AccountUnsub(_) => true,
        }
    }

    fn trace_in(&self, op: &Op<'_>) {
        if let Some(line) = logging::inbound_op_line(op, logging::OpDialect::Leaf) {
            trace!("{} - <<- [{line}]", self.client.prefix());
        }
    }

    /// `-ERR` from the other side: logged; a loop or a cluster name clash delays the next
    /// dial, and a loop closes the connection.
    fn remote_error(&mut self, text: &str) -> bool {
        let c = self.client.clone();
        error!("{} - Leafnode Error '{text}'", c.prefix());
        if text.contains("remote leafnode has same cluster name") {
            if let Some(idx) = self.link.remote {
                super::solicit::set_delay(&self.server, idx, LOOP_DELAY);
            }
            error!(
                "{} - Leafnode connection dropped with same cluster name error. Delaying attempt to reconnect for {}",
                c.prefix(),
                nats_common::monitor::go_duration_string(LOOP_DELAY)
            );
            return true;
        }
        if text.contains("Loop detected") {
            self.handle_loop(false);
            return false;
        }
        true
    }

    fn handle_loop(&mut self, send_err: bool) {
        let c = self.client.clone();
        if let Some(idx) = self.link.remote {
            super::solicit::set_delay(&self.server, idx, LOOP_DELAY);
        }
        let acc = c.account.read().name.clone();
        let txt = format!(
            "Loop detected for leafnode account={acc:?}. Delaying attempt to reconnect for {}",
            nats_common::monitor::go_duration_string(LOOP_DELAY)
        );
        if send_err {
            c.send_err(&txt);
        }
        error!("{} - {txt}", c.prefix());
        c.close(ClosedState::ProtocolViolation);
    }

    /// The hub side: a leaf's CONNECT, checked and bound to its account.
    fn connect(&mut self, json: &[u8]) -> bool {
        let c = self.client.clone();
        let info: LeafConnectInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {e}", c.prefix());
                c.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        let Some(acc) = self.authorize(&info) else {
            self.auth_violation(&info.user);
            return false;
        };
        if !info.lang.is_empty() {
            c.send_err("attempted to connect to leaf node port");
            error!("{} - attempted to connect to leaf node port", c.prefix());
            c.close(ClosedState::WrongPort);
            return false;
        }
        let cn = self.server.cluster.name();
        if !cn.is_empty() && info.cluster == cn {
            c.send_err("remote leafnode has same cluster name");
            error!("{} - remote leafnode has same cluster name", c.prefix());
            c.close(ClosedState::ClusterNamesIdentical);
            return false;
        }
        if !info.gateway.is_empty() {
            let txt = format!(
                "Rejecting connection from gateway {:?} on the leafnode port",
                info.gateway
            );
            error!("{} - {txt}", c.prefix());
            c.send_err(&txt);
            c.close(ClosedState::WrongGateway);
            return false;
        }
        let mv = self.server.opts().leaf.min_version.clone();
        if !mv.is_empty() && version_below(&info.version, &mv) {
            // As the reference: the INFO first (so the leaf does not drop the connection at
            // once), the error, then the close after a while.
            *c.account.write() = acc.clone();
            c.out
                .send(&hub_info(&self.server, &c, false, Some(&acc.name)));
            let txt = format!("connection rejected since minimum version required is {mv:?}");
            c.send_err(&txt);
            error!("{} - {txt}", c.prefix());
            let cc = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                cc.close(ClosedState::MinimumVersionRequired);
            });
            // Nothing more is read from it.
            self.stage = Stage::Rejected;
            return false;
        }
        *c.account.write() = acc.clone();
        c.meta.lock().user = info.user.clone();
        let headers = info.headers && !self.server.opts().no_header_support;
        c.headers.store(headers, Ordering::Relaxed);
        *self.link.remote_server.write() = info.name.clone();
        *self.link.remote_cluster.write() = info.cluster.clone();
        if info.is_hub {
            self.link.spoke.store(true, Ordering::Relaxed);
        }
        self.link
            .pub_deny
            .write()
            .extend(info.deny_pub.iter().cloned());
        // A connection from the same server for the same account replaces the old one.
        if !info.name.is_empty() {
            let old = self.server.leafs.conns().into_iter().find(|o| {
                let Some(l) = o.leaf.get() else { return false };
                !l.solicited
                    && *l.remote_server.read() == info.name
                    && *l.remote_cluster.read() == info.cluster
                    && o.account.read().name == acc.name
            });
            if let Some(old) = old {
                old.send_err("Duplicate Remote LeafNode Connection");
                error!("{} - Duplicate Remote LeafNode Connection", old.prefix());
                old.close(ClosedState::DuplicateRemoteLeafnodeConnection);
                warn!("{} - Replacing connection from same server", c.prefix());
            }
        }
        add_js_denies(&self.server, &c, &self.link);
        c.out
            .send(&hub_info(&self.server, &c, false, Some(&acc.name)));
        self.bind(acc);
        true
    }

    /// The account a leaf's credentials bind it to, or `None` when they are refused (the
    /// reference's `isLeafNodeAuthorized`).
    fn authorize(&self, info: &LeafConnectInfo) -> Option<Arc<crate::accounts::Account>> {
        let opts = self.server.opts();
        let lookup = |name: &str| -> Option<Arc<crate::accounts::Account>> {
            if name.is_empty() {
                return Some(self.server.accounts.global.clone());
            }
            let acc = self.server.accounts.get(name);
            if acc.is_none() {
                error!(
                    "authentication of user {:?} failed, unable to lookup account {name:?}: account not found",
                    info.user
                );
            }
            acc
        };
        let l = &opts.leaf;
        if !l.username.is_empty() {
            if info.user != l.username || !auth::secret_matches(&l.password, &info.pass) {
                return None;
            }
            return lookup(&l.account);
        }
        if !l.users.is_empty() {
            let u = l.users.iter().find(|u| u.username == info.user)?;
            if !auth::secret_matches(&u.password, &info.pass) {
                return None;
            }
            return lookup(&u.account);
        }
        if crate::accounts::jwt::trusted_mode(&opts) {
            // Operator mode: the leaf's user JWT and its signature of our nonce.
            let nonce = self.client.meta.lock().auth.nonce.clone();
            let u = crate::accounts::jwt::authenticate(
                &self.server.accounts,
                &self.client.prefix(),
                &info.jwt,
                &info.sig,
                &nonce,
                Some(self.client.addr.ip()),
            )?;
            self.server.finish_accounts(&u.built);
            return Some(u.account.clone());
        }
        if !opts.auth_required() {
            // The reference then binds to the global account, whatever
            // `leafnodes.authorization.account` says.
            return lookup("");
        }
        // The client users apply (a token does not: the reference does not check it for
        // leafs); a leaf that names no user binds to `leafnodes.authorization.account`.
        let mut user = info.user.clone();
        let mut pass = info.pass.clone();
        if user.is_empty() && pass.is_empty() && !opts.no_auth_user.is_empty() {
            if let Some(u) = opts.users.iter().find(|u| u.username == opts.no_auth_user) {
                user = u.username.clone();
                pass = u.password.clone();
            }
        }
        if !opts.users.is_empty() && !user.is_empty() {
            let u = opts.users.iter().find(|u| u.username == user)?;
            if !auth::secret_matches(&u.password, &pass) {
                return None;
            }
            return lookup(&u.account);
        }
        lookup(&l.account)
    }

    /// Registers the connection and sends the account's interest.
    fn bind(&mut self, acc: Arc<crate::accounts::Account>) {
        self.account = Some(acc);
        self.stage = Stage::Bound;
        self.server
            .leafs
            .bind(&self.server, &self.client, &self.link);
        // Anything queued by the handshake leaves with this batch.
        self.flush.push(self.client.clone());
    }

    fn info(&mut self, json: &[u8]) -> bool {
        if !self.link.solicited {
            return true;
        }
        let info: ServerInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {e}", self.client.prefix());
                self.client.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        if let (Some(idx), Some(urls)) = (self.link.remote, &info.leafnode_urls) {
            if !urls.is_empty() {
                super::solicit::update_urls(&self.server, idx, urls);
            }
        }
        if self.stage == Stage::AwaitConnectInfo && info.connect_info {
            let acc = self.client.account.read().clone();
            add_js_denies(&self.server, &self.client, &self.link);
            self.bind(acc);
        }
        true
    }

    fn leaf_sub(&mut self, subj: &[u8], queue: Option<&[u8]>, weight: u32) {
        let Some(acc) = self.account.clone() else {
            return;
        };
        if subj.starts_with(super::LDS_PREFIX.as_bytes())
            && subj == self.server.leafs.lds(&acc.name).as_bytes()
        {
            self.handle_loop(true);
            return;
        }
        if !exempt(subj)
            && subject::is_valid_literal_subject(subj)
            && Link::denied(&self.link.pub_deny, subj)
        {
            if self.link.spoke.load(Ordering::Relaxed) {
                return;
            }
            let c = &self.client;
            let s = String::from_utf8_lossy(subj);
            c.send_err(&format!(
                "Permissions Violation for Subscription to \"{s}\""
            ));
            error!(
                "{} - Subscription Violation on \"{s}\" - Check other side configuration",
                c.prefix()
            );
            c.close(ClosedState::ProtocolViolation);
            return;
        }
        if !subject::is_valid_sub_subject(subj) {
            error!(
                "{} - Could not insert subscription: sublist: invalid subject",
                self.client.prefix()
            );
            self.client.send_err("Invalid Subscription");
            return;
        }
        let key = smap_key(subj, queue);
        let c = &self.client;
        let existing = c.subs.lock().get(&key[..]).cloned();
        let weight = weight.max(1);
        if let Some(s) = existing {
            if queue.is_some() && !s.closed.load(Ordering::Acquire) {
                self.server.sub_weight_changed(&s, weight);
            }
            return;
        }
        let sub = Subscription::new(c, &acc, subj, queue, &key);
        sub.weight.store(weight, Ordering::Release);
        let sub = Arc::new(sub);
        c.subs.lock().insert(key.into_boxed_slice(), sub.clone());
        self.server.add_sub(&sub);
        // Stream imports of the bound account reach the leaf too.
        self.server.add_shadows(&sub);
    }

    fn leaf_unsub(&mut self, subj: &[u8], queue: Option<&[u8]>) {
        let key = smap_key(subj, queue);
        let sub = self.client.subs.lock().get(&key[..]).cloned();
        if let Some(s) = sub {
            self.server.remove_sub(&s);
        }
    }

    fn leaf_msg(&mut self, msg: Message<'_>, queues: Queues<'_>) {
        self.flush.count_in(msg.size());
        let Some(acc) = self.account.clone() else {
            return;
        };
        let mapped;
        let msg = match acc.map_subject(msg.subject, &self.server.cluster.name()) {
            crate::accounts::Mapped::Unchanged => msg,
            crate::accounts::Mapped::To(s) => {
                mapped = s;
                Message {
                    subject: &mapped,
                    ..msg
                }
            }
            crate::accounts::Mapped::Dropped => return,
        };
        let result = self.cache.get(&acc, msg.subject);
        // With gateways, a message nobody here wants may still leave for another cluster.
        if result.is_empty() && !self.server.gateway.active() {
            return;
        }
        let mut d = Delivery::new(&self.server, &acc, &self.client, false, &mut self.flush);
        deliver::deliver(&mut d, &msg, &result, Some(queues));
    }

    fn ping_timer(&mut self) {
        let c = self.client.clone();
        debug!("{} - Leafnode Ping Timer", c.prefix());
        let opts = self.server.opts();
        let need_rtt = c.meta.lock().rtt.is_none();
        // Spoke connections never put their PING off (the reference's rule).
        if !self.link.spoke.load(Ordering::Relaxed) {
            if let Some(why) =
                crate::client::delay_ping(&c, self.last_remote_ping, opts.ping_interval, need_rtt)
            {
                debug!("{} - {why}", c.prefix());
                return;
            }
        }
        if self.pings_out + 1 > opts.ping_max {
            debug!("{} - Stale Client Connection - Closing", c.prefix());
            c.send_err("Stale Connection");
            c.close(ClosedState::StaleConnection);
            return;
        }
        crate::route::trace_out(&c, b"PING");
        self.pings_out += 1;
        self.ping_sent = Some(Instant::now());
        c.out.send(proto::PING);
    }
}
