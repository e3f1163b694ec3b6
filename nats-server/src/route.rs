//! One route (server-to-server) connection: the handshake (CONNECT/INFO), the read loop
//! that applies the peer's interest (`RS+`/`RS-`) and delivers its messages (`RMSG`/`HMSG`)
//! to local clients, and keepalive. Membership decisions (registration, duplicates, gossip,
//! reconnects) live in `cluster.rs`.

use crate::auth;
use crate::client::{Client, ClosedState, Kind, Subscription};
use crate::deliver::{self, Delivery, FlushSet};
use crate::logging;
use crate::outbound;
use crate::server::Server;
use bytes::{Buf, BytesMut};
use nats_common::info::{RouteConnectInfo, ServerInfo};
use nats_common::proto::{self, Message, Op, ParseError, Parser, Queues, Side};
use nats_common::subject;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tracing::{debug, error, info, trace};

pub type RouteRead = Pin<Box<dyn AsyncRead + Send>>;
pub type RouteWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// Every route connection, accepted or dialled, passes through here before any protocol
/// byte is exchanged. Cluster TLS belongs here: wrap `stream` and return the TLS halves.
pub async fn secure(
    server: &Arc<Server>,
    stream: TcpStream,
    solicited: bool,
) -> std::io::Result<(RouteRead, RouteWrite)> {
    let _ = stream.set_nodelay(true);
    if let Some(t) = server.opts().cluster.tls.clone() {
        return crate::tls::secure_route(stream, solicited, &t).await;
    }
    let (rd, wr) = stream.into_split();
    Ok((Box::pin(rd), Box::pin(wr)))
}

/// A parsed route URL: `nats-route://[user:pass@]host:port` or `nats://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteUrl {
    /// As configured (credentials included), for matching.
    pub raw: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub host: String,
    pub port: u16,
}

impl RouteUrl {
    pub fn parse(s: &str) -> Option<RouteUrl> {
        let raw = s.trim().to_string();
        let rest = raw.split_once("://").map_or(raw.as_str(), |(_, r)| r);
        let rest = rest.split('/').next().unwrap_or("");
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = crate::cli::split_host_port(hostport)?;
        let port = port.parse().ok()?;
        let (user, pass) = match userinfo {
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                (Some(user.to_string()), Some(pass.to_string()))
            }
            None => (None, None),
        };
        Some(RouteUrl {
            raw: raw.clone(),
            user,
            pass,
            host: host.to_string(),
            port,
        })
    }

    pub fn host_port(&self) -> String {
        crate::server::host_port(&self.host, self.port)
    }

    /// The URL with the password hidden, for logs.
    pub fn redacted(&self) -> String {
        match (&self.user, &self.pass) {
            (Some(u), Some(_)) => {
                let scheme = self.raw.split_once("://").map_or("nats", |(s, _)| s);
                format!("{scheme}://{u}:xxxxx@{}", self.host_port())
            }
            _ => self.raw.clone(),
        }
    }
}

/// Route-specific state next to the connection's `Client` handle.
pub struct Route {
    pub client: Arc<Client>,
    /// We dialled it (or took over the URL of a duplicate we dialled).
    pub solicited: AtomicBool,
    /// Its URL is in the configured `routes`.
    pub configured: AtomicBool,
    /// An implicit route that should be re-dialled when lost.
    pub retry: AtomicBool,
    pub url: Mutex<Option<RouteUrl>>,
    /// The peer's INFO, once received (kept up to date by later INFOs from the same peer).
    pub remote: Mutex<Option<ServerInfo>>,
    pub registered: AtomicBool,
}

impl Route {
    pub fn new(client: Arc<Client>, url: Option<RouteUrl>, configured: bool) -> Arc<Route> {
        Arc::new(Route {
            client,
            solicited: AtomicBool::new(url.is_some()),
            configured: AtomicBool::new(configured),
            retry: AtomicBool::new(false),
            url: Mutex::new(url),
            remote: Mutex::new(None),
            registered: AtomicBool::new(false),
        })
    }

    pub fn remote_id(&self) -> String {
        self.client.meta.lock().remote_id.clone()
    }
}

/// Outgoing message and interest lines toward routes, traced like the reference.
pub fn trace_out(client: &Client, line: &[u8]) {
    if logging::trace_enabled() {
        let l = String::from_utf8_lossy(line);
        trace!("{} - ->> [{}]", client.prefix(), l.trim_end());
    }
}

struct Reader {
    server: Arc<Server>,
    route: Arc<Route>,
    client: Arc<Client>,
    parser: Parser,
    solicited: bool,
    /// CONNECT accepted (acceptor side); the solicitor sends its own.
    connected: bool,
    auth_required: bool,
    cache: crate::accounts::MatchCache,
    flush: FlushSet,
    pings_out: u32,
    ping_sent: Option<Instant>,
    last_in: Instant,
    /// When the peer last sent us a PING (our own PING is then put off).
    last_remote_ping: Option<Instant>,
}

/// Runs a route connection until it closes. For a solicited route the CONNECT and our
/// INFO go out first; an accepted one starts with our INFO.
pub async fn run(server: Arc<Server>, route: Arc<Route>, rd: RouteRead, wr: RouteWrite) {
    let client = route.client.clone();
    let opts = server.opts();
    let solicited = route.solicited.load(Ordering::Acquire);
    let writer = tokio::spawn(outbound::run_writer(
        client.clone(),
        wr,
        opts.write_deadline,
    ));
    if solicited {
        let mut b = Vec::new();
        let connect = server.cluster.connect_json(&server, &route);
        // Not traced: the reference does not trace the CONNECT and INFO it sends a route.
        proto::connect(&mut b, &connect);
        proto::info(&mut b, &server.cluster.info_json(&server));
        client.out.send(&b);
        debug!("{} - Route connect msg sent", client.prefix());
    } else {
        let mut b = Vec::new();
        proto::info(&mut b, &server.cluster.info_json(&server));
        client.out.send(&b);
    }
    info!("{} - Route connection created", client.prefix());
    // Routed payloads are bounded by the peer's max_payload, which may exceed ours.
    let max_payload = opts.max_payload.max(opts.max_pending);
    let mut parser = Parser::new(
        Side::Route,
        opts.max_control_line.max(proto_line_min()),
        max_payload,
    );
    // Until the peer's CONNECT or INFO says it does headers (HPUB is refused till then).
    parser.headers = false;
    let mut reader = Reader {
        server: server.clone(),
        route: route.clone(),
        client: client.clone(),
        parser,
        solicited,
        connected: solicited,
        auth_required: !solicited && !opts.cluster.username.is_empty(),
        cache: Default::default(),
        flush: FlushSet::default(),
        pings_out: 0,
        ping_sent: None,
        last_in: Instant::now(),
        last_remote_ping: None,
    };
    let auth_timeout = if opts.cluster.auth_timeout.is_zero() {
        crate::options::AUTH_TIMEOUT
    } else {
        opts.cluster.auth_timeout
    };
    reader.read_loop(rd, auth_timeout).await;
    reader.flush.flush(&server);
    let subs: Vec<Arc<Subscription>> = client.subs.lock().drain().map(|(_, s)| s).collect();
    let reason = client.close_reason().unwrap_or(ClosedState::ClientClosed);
    info!(
        "{} - Router connection closed: {}",
        client.prefix(),
        reason.as_str()
    );
    // Counted per account, as the reference logs them.
    let mut per_account: Vec<(&str, usize)> = Vec::new();
    for s in &subs {
        match per_account.iter_mut().find(|(a, _)| *a == s.account.name) {
            Some((_, n)) => *n += 1,
            None => per_account.push((&s.account.name, 1)),
        }
    }
    for (acc, n) in per_account {
        debug!(
            "{} - Removing {n} subscriptions for account {acc:?}",
            client.prefix()
        );
    }
    server.remove_subs(&subs);
    let _ = writer.await;
    server.cluster.route_closed(&server, &route, reason);
}

/// Route control lines carry long queue lists; never parse them with less than this.
fn proto_line_min() -> usize {
    4096
}

/// First PING about 1 s in (plus up to 20% jitter), as the reference does on routes.
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
    async fn read_loop(&mut self, mut rd: RouteRead, auth_timeout: Duration) {
        // Route traffic is bursty too: the same adaptive read size as client connections.
        let mut read_size = crate::client::MAX_READ / 2;
        let mut buf = BytesMut::with_capacity(read_size);
        let ping = tokio::time::sleep(first_ping_delay(self.server.opts().ping_interval));
        tokio::pin!(ping);
        let auth = tokio::time::sleep(auth_timeout);
        tokio::pin!(auth);
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
                        read_size = crate::client::next_read_size(read_size, n);
                        self.last_in = Instant::now();
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
                _ = &mut ping => {
                    self.ping_timer();
                    let next = self.server.opts().ping_interval;
                    ping.as_mut().reset(tokio::time::Instant::now() + next);
                }
                _ = &mut auth, if self.auth_required && !self.connected => {
                    debug!("{} - Authentication Timeout", client.prefix());
                    client.send_err("Authentication Timeout");
                    client.close(ClosedState::AuthenticationTimeout);
                    break;
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
                    "{} - Router parser ERROR, state=0, i=0: proto='{}...'",
                    c.prefix(),
                    logging::proto_snippet(rest)
                );
                c.send_err("Unknown Protocol Operation");
            }
            ParseError::MaxControlLine { len, max } => {
                error!(
                    "{} - maximum control line exceeded: max_control_line {max}, line len {len}",
                    c.prefix()
                );
                c.send_err("maximum control line exceeded");
            }
            other => error!("{} - {other}", c.prefix()),
        }
        c.close(ClosedState::ProtocolViolation);
    }

    fn send(&mut self, bytes: &[u8]) {
        self.flush.queue(&self.client, bytes);
    }

    fn handle(&mut self, op: Op<'_>) -> bool {
        if logging::trace_enabled() {
            self.trace_in(&op);
        }
        if self.auth_required && !self.connected && !matches!(op, Op::Connect(_)) {
            self.client.send_err("Authorization Violation");
            error!(
                "{} - {}",
                self.client.prefix(),
                auth::violation(&self.server.opts(), "", "")
            );
            self.client.close(ClosedState::AuthenticationViolation);
            return false;
        }
        match op {
            Op::Ping => {
                self.last_remote_ping = Some(Instant::now());
                trace_out(&self.client, b"PONG");
                self.send(proto::PONG);
                true
            }
            Op::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    self.client.meta.lock().rtt = Some(sent.elapsed());
                }
                true
            }
            Op::Ok => true,
            Op::Err(text) => {
                error!(
                    "{} - Route Error '{}'",
                    self.client.prefix(),
                    String::from_utf8_lossy(text)
                );
                self.client.close(ClosedState::ParseError);
                false
            }
            Op::Connect(json) => self.connect(json),
            Op::Info(json) => self.info(json),
            Op::RouteSub {
                account,
                subject,
                queue,
                weight,
                origin,
            } => {
                self.remote_sub(account, subject, queue, weight, origin);
                true
            }
            Op::RouteUnsub {
                account,
                subject,
                queue,
            } => {
                self.remote_unsub(account, subject, queue);
                true
            }
            Op::RouteMsg {
                account,
                origin,
                msg,
                queues,
            } => {
                self.routed_msg(account, origin, msg, queues);
                true
            }
            // Read and dropped, as the reference (a PUB names no account to deliver in).
            Op::Ignored | Op::Pub(_) => true,
            // The route-side parser never yields these.
            Op::Sub { .. }
            | Op::Unsub { .. }
            | Op::Msg { .. }
            | Op::AccountSub(_)
            | Op::AccountUnsub(_) => {
                self.client.send_err("Unknown Protocol Operation");
                self.client.close(ClosedState::ParseError);
                false
            }
        }
    }

    fn trace_in(&self, op: &Op<'_>) {
        if let Some(line) = logging::inbound_op_line(op, logging::OpDialect::Route) {
            trace!("{} - <<- [{line}]", self.client.prefix());
        }
    }

    /// The solicitor's CONNECT, checked by the acceptor.
    fn connect(&mut self, json: &[u8]) -> bool {
        let c = self.client.clone();
        if self.solicited {
            // We dialled; a CONNECT from the acceptor carries nothing we need.
            return true;
        }
        let info: RouteConnectInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {}", c.prefix(), e);
                c.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        if info.lang.is_some() {
            // A client library dialled the route port.
            c.send_err("attempted to connect to route port");
            c.close(ClosedState::WrongPort);
            return false;
        }
        if let Some(gw) = &info.gateway {
            let txt = format!("Rejecting connection from gateway \"{gw}\" on the Route port");
            error!("{} - {txt}", c.prefix());
            c.send_err(&txt);
            c.close(ClosedState::WrongPort);
            return false;
        }
        let opts = self.server.opts();
        if !opts.cluster.username.is_empty() {
            let ok = info.user.as_deref() == Some(opts.cluster.username.as_str())
                && auth::secret_matches(&opts.cluster.password, info.pass.as_deref().unwrap_or(""));
            if !ok {
                error!(
                    "{} - {}",
                    c.prefix(),
                    auth::violation(&opts, info.user.as_deref().unwrap_or_default(), "")
                );
                c.send_err("Authorization Violation");
                c.close(ClosedState::AuthenticationViolation);
                return false;
            }
        }
        if !self.server.cluster.accept_cluster_name(
            &self.server,
            &self.route,
            &info.cluster,
            info.cluster_dynamic,
        ) {
            return false;
        }
        if !info.name.is_empty() {
            c.meta.lock().remote_id = info.name.clone();
        }
        self.parser.headers = info.headers;
        self.connected = true;
        true
    }

    fn info(&mut self, json: &[u8]) -> bool {
        let c = self.client.clone();
        if crate::gateway::conn::route_info(&self.server, json) {
            // A gateway gossip, not the peer's own INFO.
            return true;
        }
        let info: ServerInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {}", c.prefix(), e);
                c.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        self.parser.headers = info.headers;
        // Anything we queued during registration must go out with this batch.
        self.flush.push(c.clone());
        if !self.route.registered.load(Ordering::Acquire) {
            if self.route.remote.lock().is_some() {
                // A second INFO before registration finished (it failed): ignore.
                return !c.is_closed();
            }
            let leaf_url = match &info.leafnode_urls {
                Some(u) if u.len() == 1 => Some(u[0].clone()),
                _ => None,
            };
            let ok = self
                .server
                .cluster
                .register(&self.server, &self.route, info);
            if ok {
                if let Some(u) = leaf_url {
                    self.server.leafs.route_url(&self.server, &u, true);
                }
            }
            return ok;
        }
        let remote_id = self.route.remote_id();
        if info.server_id != remote_id {
            self.server
                .cluster
                .implicit_route_hint(&self.server, &self.route, info);
        } else {
            self.server
                .cluster
                .peer_updated(&self.server, &self.route, info);
        }
        true
    }

    /// The account a peer names, or `None` (logged) when this server does not have it.
    fn account(&self, name: &[u8], subj: &[u8]) -> Option<Arc<crate::accounts::Account>> {
        let acc = std::str::from_utf8(name)
            .ok()
            .and_then(|n| self.server.accounts.get(n));
        if acc.is_none() {
            error!(
                "{} - Unknown account {:?} for remote subject {:?}",
                self.client.prefix(),
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(subj)
            );
        }
        acc
    }

    fn remote_sub(
        &mut self,
        account: &[u8],
        subj: &[u8],
        queue: Option<&[u8]>,
        weight: u32,
        origin: Option<&[u8]>,
    ) {
        // The peer's INFO precedes its interest; a connection that was not registered
        // (a duplicate being closed) must not attract copies of our messages.
        if !self.route.registered.load(Ordering::Acquire) {
            return;
        }
        if !subject::is_valid_sub_subject(subj) {
            error!(
                "{} - Could not insert subscription: sublist: invalid subject",
                self.client.prefix()
            );
            return;
        }
        if !crate::cluster::permitted(&self.server.opts().cluster.export, subj) {
            // `cluster.permissions.export` does not let peers subscribe to this.
            return;
        }
        let Some(acc) = self.account(account, subj) else {
            return;
        };
        let key = sub_key(account, subj, queue);
        let weight = weight.max(1);
        let c = &self.client;
        let existing = c.subs.lock().get(&key[..]).cloned();
        if let Some(s) = existing {
            if !s.closed.load(Ordering::Acquire) {
                // The reference re-sends RS+ with the group's new total; replace it.
                self.server.sub_weight_changed(&s, weight);
                return;
            }
        }
        let mut sub = Subscription::new(c, &acc, subj, queue, &key);
        sub.weight.store(weight, Ordering::Release);
        sub.origin = origin.filter(|o| !o.is_empty()).map(Into::into);
        let sub = Arc::new(sub);
        c.subs.lock().insert(key.into_boxed_slice(), sub.clone());
        self.server.add_sub(&sub);
    }

    fn remote_unsub(&mut self, account: &[u8], subj: &[u8], queue: Option<&[u8]>) {
        let key = sub_key(account, subj, queue);
        let sub = self.client.subs.lock().get(&key[..]).cloned();
        if let Some(s) = sub {
            self.server.remove_sub(&s);
        }
    }

    fn routed_msg(
        &mut self,
        account: &[u8],
        origin: Option<&[u8]>,
        msg: Message<'_>,
        queues: Queues<'_>,
    ) {
        self.flush.count_in(msg.size());
        // Only the registered connection to a peer carries its traffic (no duplicates).
        if !self.route.registered.load(Ordering::Acquire) {
            return;
        }
        if self.server.gateway.enabled && crate::gateway::is_routed_reply(msg.subject) {
            crate::gateway::handle_routed_reply(
                &self.server,
                &self.client,
                &mut self.cache,
                &mut self.flush,
                account,
                &msg,
            );
            return;
        }
        let Some((acc, result)) = self
            .cache
            .get_named(&self.server.accounts, account, msg.subject)
        else {
            debug!(
                "{} - Unknown account {:?} for routed message on subject: {:?}",
                self.client.prefix(),
                String::from_utf8_lossy(account),
                String::from_utf8_lossy(msg.subject)
            );
            return;
        };
        if result.is_empty() {
            return;
        }
        let mut d = Delivery::new(&self.server, &acc, &self.client, true, &mut self.flush);
        d.origin = origin;
        deliver::deliver(&mut d, &msg, &result, Some(queues));
    }

    fn ping_timer(&mut self) {
        let c = self.client.clone();
        debug!("{} - Router Ping Timer", c.prefix());
        let opts = self.server.opts();
        // As for clients: no PING while the peer is active, once the RTT is known.
        let need_rtt = c.meta.lock().rtt.is_none();
        if let Some(why) =
            crate::client::delay_ping(&c, self.last_remote_ping, opts.ping_interval, need_rtt)
        {
            debug!("{} - {why}", c.prefix());
            return;
        }
        if self.pings_out + 1 > opts.ping_max {
            debug!("{} - Stale Router Connection - Closing", c.prefix());
            c.send_err("Stale Connection");
            c.close(ClosedState::StaleConnection);
            return;
        }
        trace_out(&c, b"PING");
        self.pings_out += 1;
        self.ping_sent = Some(Instant::now());
        c.out.send(proto::PING);
    }
}

/// The key a peer's interest is stored under: `account subject [queue]` (RS- repeats it).
pub fn sub_key(account: &[u8], subj: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let mut k =
        Vec::with_capacity(account.len() + subj.len() + queue.map_or(0, |q| q.len() + 1) + 1);
    k.extend_from_slice(account);
    k.push(b' ');
    k.extend_from_slice(subj);
    if let Some(q) = queue {
        k.push(b' ');
        k.extend_from_slice(q);
    }
    k
}

/// Creates the shared handle of a new route connection.
pub fn new_route(
    server: &Arc<Server>,
    addr: SocketAddr,
    url: Option<RouteUrl>,
    configured: bool,
) -> Arc<Route> {
    let cid = server.next_cid();
    let client = Client::new(server, cid, Kind::Router, addr);
    Route::new(client, url, configured)
}
