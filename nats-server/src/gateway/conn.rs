//! Gateway connections: the listener, dialling (explicit and discovered gateways,
//! reconnects), the handshake (INFO, CONNECT, registration) and the read loop of both
//! directions.

use super::{
    GatewayConnect, GatewayInfo, GwConn, InAccount, Mode, OutAccount, Remote,
    CMD_ALL_SUBS_COMPLETE, CMD_ALL_SUBS_START, CMD_GOSSIP,
};
use crate::auth;
use crate::client::{Client, ClosedState, Kind};
use crate::deliver::{self, Delivery, FlushSet};
use crate::logging;
use crate::outbound;
use crate::route::{RouteRead, RouteUrl, RouteWrite};
use crate::server::{host_port, Server};
use bytes::{Buf, BytesMut};
use nats_common::proto::{self, Message, Op, ParseError, Parser, Queues, Side};
use nats_common::subject;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, error, info, trace, warn};

/// Delay before the configured gateways are dialled (lets the cluster form first).
const SOLICIT_DELAY: Duration = Duration::from_secs(1);
/// Between two rounds of dialling a gateway's URLs.
const CONNECT_DELAY: Duration = Duration::from_secs(1);
/// Before re-dialling an explicit gateway whose connection dropped.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Gateways PING at least this often, traffic or not.
const MAX_PING_INTERVAL: Duration = Duration::from_secs(15);

/// Binds the gateway listener and, a second later, dials the configured gateways.
/// Called after "Server is ready", as the reference logs these lines.
pub async fn start(server: &Arc<Server>) -> std::io::Result<()> {
    let gw = &server.gateway;
    if !gw.enabled {
        return Ok(());
    }
    let opts = server.opts();
    let g = &opts.gateway;
    let host = if g.host.is_empty() {
        crate::options::DEFAULT_HOST.to_string()
    } else {
        g.host.clone()
    };
    let port = if g.port < 0 { 0 } else { g.port as u16 };
    let bind = host_port(&host, port);
    let listener = crate::netutil::listen(&bind).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "Error listening on gateway port: {} - listen tcp {bind}: {}",
                g.port,
                crate::netutil::go_listen_error(&e)
            ),
        )
    })?;
    let addr = listener.local_addr()?;
    let _ = gw.listen.set(addr);
    info!("Gateway name is {}", gw.name);
    info!(
        "Listening for gateways connections on {}",
        host_port(&host, addr.port())
    );
    let url = if !g.advertise.is_empty() {
        let u = match crate::cli::split_host_port(&g.advertise) {
            Some((h, p)) => host_port(h, p.parse().unwrap_or(addr.port())),
            None => host_port(&g.advertise, addr.port()),
        };
        info!("Advertise address for gateway {:?} is set to {u}", gw.name);
        u
    } else {
        let h = if host == "0.0.0.0" || host == "::" {
            crate::netutil::non_loopback_ips()
                .into_iter()
                .next()
                .unwrap_or(host.clone())
        } else {
            host.clone()
        };
        let u = host_port(&h, addr.port());
        info!("Address for gateway {:?} is {u}", gw.name);
        u
    };
    *gw.url.lock() = url.clone();
    gw.urls.lock().push(url);
    if opts.gateway.tls.as_ref().is_some_and(|t| t.insecure)
        || g.gateways
            .iter()
            .any(|r| r.tls.as_ref().is_some_and(|t| t.insecure))
    {
        warn!("TLS certificate chain and hostname of solicited gateways will not be verified. DO NOT USE IN PRODUCTION!");
    }
    let s = server.clone();
    let accept = tokio::spawn(async move { accept_loop(s, listener).await });
    *gw.accept_task.lock() = Some(accept);
    let s = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(SOLICIT_DELAY).await;
        let remotes: Vec<Arc<Remote>> = s.gateway.remotes.lock().values().cloned().collect();
        for r in remotes {
            if !r.implicit {
                let s = s.clone();
                tokio::spawn(async move { solicit(s, r, true).await });
            }
        }
    });
    Ok(())
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    crate::netutil::accept_loop(server, listener, "Gateway", |s, stream, addr| {
        create(s, None, None, stream, addr)
    })
    .await
}

/// Dials `remote` until a connection is made (explicit gateways forever; implicit ones
/// once plus `connect_retries` times, unless the remote has an inbound here).
async fn solicit(server: Arc<Server>, remote: Arc<Remote>, first: bool) {
    let kind = if remote.implicit {
        "implicit"
    } else {
        "explicit"
    };
    let mut attempts: u32 = 0;
    loop {
        if server.is_shutting_down() {
            return;
        }
        if server.gateway.outbound(&remote.name).is_some() {
            return;
        }
        let mut urls = remote.urls.lock().clone();
        if urls.is_empty() {
            return;
        }
        {
            use rand::seq::SliceRandom;
            urls.shuffle(&mut rand::thread_rng());
        }
        attempts += 1;
        // The reference reports the first attempt of a first connect and then one in 3600
        // (connect_error_reports); after a lost connection, every attempt.
        let report = !first || attempts == 1 || attempts.is_multiple_of(3600);
        for raw in &urls {
            let Some(url) = RouteUrl::parse(raw) else {
                continue;
            };
            let hp = url.host_port();
            let addr = match tokio::net::lookup_host(hp.clone()).await {
                Ok(mut a) => a.next(),
                Err(_) => None,
            };
            let Some(addr) = addr else {
                error!(
                    "Error getting IP for {kind} gateway {:?} ({hp}): lookup failed",
                    remote.name
                );
                continue;
            };
            let line = format!(
                "Connecting to {kind} gateway {:?} ({hp}) at {addr} (attempt {attempts})",
                remote.name
            );
            if report {
                info!("{line}");
            } else {
                debug!("{line}");
            }
            let dial = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
            match dial {
                Ok(Ok(stream)) => {
                    remote.attempts.fetch_add(1, Ordering::Relaxed);
                    let s = server.clone();
                    create(s, Some(remote.clone()), Some(url), stream, addr).await;
                    return;
                }
                Ok(Err(e)) => {
                    let line = format!(
                        "Error connecting to {kind} gateway {:?} ({hp}) at {addr} (attempt {attempts}): dial tcp {addr}: {}",
                        remote.name,
                        dial_error(&e)
                    );
                    if report {
                        error!("{line}");
                    } else {
                        debug!("{line}");
                    }
                }
                Err(_) => {
                    let line = format!(
                        "Error connecting to {kind} gateway {:?} ({hp}) at {addr} (attempt {attempts}): dial tcp {addr}: i/o timeout",
                        remote.name
                    );
                    if report {
                        error!("{line}");
                    } else {
                        debug!("{line}");
                    }
                }
            }
        }
        if remote.implicit {
            let retries = server.opts().gateway.connect_retries;
            if retries == 0 || attempts > retries {
                if has_inbound(&server, &remote.name) {
                    continue;
                }
                server.gateway.remotes.lock().remove(&remote.name);
                return;
            }
        }
        tokio::time::sleep(CONNECT_DELAY).await;
    }
}

fn dial_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s.to_lowercase(),
            }
        }
    }
}

fn has_inbound(server: &Server, name: &str) -> bool {
    server
        .gateway
        .inbound
        .lock()
        .iter()
        .any(|c| *c.name.lock() == name)
}

/// A new gateway connection: `remote` is set for one we dialled.
async fn create(
    server: Arc<Server>,
    remote: Option<Arc<Remote>>,
    url: Option<RouteUrl>,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let cid = server.next_cid();
    let client = Client::new(&server, cid, Kind::Gateway, addr);
    let outbound = remote.is_some();
    let gc = Arc::new(GwConn {
        client: client.clone(),
        outbound,
        name: Mutex::new(remote.as_ref().map(|r| r.name.clone()).unwrap_or_default()),
        remote_id: Mutex::new(String::new()),
        remote: Mutex::new(remote.clone()),
        url: Mutex::new(url),
        registered: AtomicBool::new(false),
        interest_only: AtomicBool::new(false),
        outsim: RwLock::new(HashMap::new()),
        insim: Mutex::new(HashMap::new()),
    });
    if let Some(r) = &remote {
        info!(
            "{} - Creating outbound gateway connection to {:?}",
            client.prefix(),
            r.name
        );
    } else {
        info!(
            "{} - Processing inbound gateway connection",
            client.prefix()
        );
    }
    let opts = server.opts();
    let tls = match &remote {
        Some(r) => r.tls.clone(),
        None => opts.gateway.tls.clone(),
    };
    let (rd, wr): (RouteRead, RouteWrite) = match tls {
        Some(t) => match crate::tls::secure_route(stream, outbound, &t).await {
            Ok(io) => io,
            Err(e) => {
                error!("{} - TLS handshake error: {e}", client.prefix());
                info!(
                    "{} - Gateway connection closed: {}",
                    client.prefix(),
                    ClosedState::TlsHandshakeError.as_str()
                );
                if let Some(r) = remote {
                    reconnect(server, r);
                }
                return;
            }
        },
        None => {
            let (r, w) = stream.into_split();
            (Box::pin(r), Box::pin(w))
        }
    };
    server.gateway.conns.lock().insert(cid, gc.clone());
    run(server, gc, rd, wr).await;
}

/// Our gateway INFO (sent first on every accepted connection, and after CONNECT on a
/// dialled one).
fn our_info(server: &Server) -> Vec<u8> {
    let opts = server.opts();
    let gw = &server.gateway;
    let url = gw.url.lock().clone();
    let (host, port) = crate::cli::split_host_port(&url)
        .map(|(h, p)| {
            (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().unwrap_or(0),
            )
        })
        .unwrap_or_default();
    let tls = opts.gateway.tls.is_some();
    let info = GatewayInfo {
        server_id: server.id.clone(),
        server_name: opts.server_name.clone(),
        version: crate::server::VERSION.to_string(),
        proto: 0,
        go: String::new(),
        host,
        port,
        headers: !opts.no_header_support,
        auth_required: !opts.gateway.username.is_empty(),
        tls_required: tls,
        tls_verify: tls,
        max_payload: opts.max_payload as i64,
        gateway: gw.name.clone(),
        gateway_urls: gw.urls.lock().clone(),
        gateway_url: url,
        gateway_nrp: true,
        gateway_iom: true,
        ..Default::default()
    };
    let mut b = Vec::new();
    proto::info(&mut b, &serde_json::to_vec(&info).unwrap_or_default());
    b
}

struct Reader {
    server: Arc<Server>,
    gc: Arc<GwConn>,
    client: Arc<Client>,
    parser: Parser,
    /// CONNECT received (inbound) / INFO received (outbound).
    connected: bool,
    info_received: bool,
    cache: crate::accounts::MatchCache,
    flush: FlushSet,
    pings_out: u32,
    ping_sent: Option<Instant>,
    ping_armed: bool,
}

async fn run(server: Arc<Server>, gc: Arc<GwConn>, rd: RouteRead, wr: RouteWrite) {
    let client = gc.client.clone();
    let opts = server.opts();
    let writer = tokio::spawn(outbound::run_writer(
        client.clone(),
        wr,
        opts.write_deadline,
    ));
    if !gc.outbound {
        client.out.send(&our_info(&server));
    }
    let max_payload = opts.max_payload.max(opts.max_pending);
    let mut parser = Parser::new(Side::Gateway, opts.max_control_line.max(4096), max_payload);
    parser.headers = true;
    let mut reader = Reader {
        server: server.clone(),
        gc: gc.clone(),
        client: client.clone(),
        parser,
        connected: false,
        info_received: false,
        cache: Default::default(),
        flush: FlushSet::default(),
        pings_out: 0,
        ping_sent: None,
        ping_armed: false,
    };
    let auth_timeout = if opts.gateway.auth_timeout.is_zero() {
        crate::options::AUTH_TIMEOUT
    } else {
        opts.gateway.auth_timeout
    };
    reader.read_loop(rd, auth_timeout).await;
    reader.flush.flush(&server);
    let reason = client.close_reason().unwrap_or(ClosedState::ClientClosed);
    info!(
        "{} - Gateway connection closed: {}",
        client.prefix(),
        reason.as_str()
    );
    let _ = writer.await;
    closed(&server, &gc);
}

/// Unregisters a closed connection; a lost outbound is dialled again.
fn closed(server: &Arc<Server>, gc: &Arc<GwConn>) {
    let gw = &server.gateway;
    gw.conns.lock().remove(&gc.client.cid);
    if gc.outbound {
        gw.out.write().retain(|c| !Arc::ptr_eq(c, gc));
        gw.refresh_active();
        if !server.is_shutting_down() {
            let remote = gc.remote.lock().clone();
            if let Some(r) = remote {
                // Only while the remote is still known (implicit ones may have gone); a
                // dialling task finds an outbound already registered and stops.
                let known = gw
                    .remotes
                    .lock()
                    .get(&r.name)
                    .is_some_and(|k| Arc::ptr_eq(k, &r));
                if known {
                    debug!("Attempting reconnect for gateway {:?}", r.name);
                    reconnect(server.clone(), r);
                }
            }
        }
    } else {
        gw.inbound.lock().retain(|c| !Arc::ptr_eq(c, gc));
    }
}

fn reconnect(server: Arc<Server>, remote: Arc<Remote>) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(rand::random::<u64>() % 100);
        if !remote.implicit {
            delay += RECONNECT_DELAY;
        }
        tokio::time::sleep(delay).await;
        solicit(server, remote, false).await;
    });
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
        let mut read_size = crate::client::MAX_READ / 2;
        let mut buf = BytesMut::with_capacity(read_size);
        let ping = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(ping);
        let auth = tokio::time::sleep(auth_timeout);
        tokio::pin!(auth);
        let client = self.client.clone();
        let inbound = !self.gc.outbound;
        loop {
            if client.is_closed() {
                break;
            }
            if self.ping_armed {
                self.ping_armed = false;
                ping.as_mut()
                    .reset(tokio::time::Instant::now() + first_ping_delay(self.ping_interval()));
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
                _ = &mut ping => {
                    self.ping_timer();
                    let next = self.ping_interval();
                    ping.as_mut().reset(tokio::time::Instant::now() + next);
                }
                _ = &mut auth, if inbound && !self.connected => {
                    error!("{} - Authentication Timeout", client.prefix());
                    client.send_err("Authentication Timeout");
                    client.close(ClosedState::AuthenticationTimeout);
                    break;
                }
            }
        }
    }

    fn ping_interval(&self) -> Duration {
        self.server.opts().ping_interval.min(MAX_PING_INTERVAL)
    }

    fn process(&mut self, buf: &[u8]) -> usize {
        // An accepted connection must start with CONNECT (the reference answers anything
        // else as an authorization violation).
        if !self.gc.outbound && !self.connected && !buf.is_empty() && !matches!(buf[0], b'C' | b'c')
        {
            self.auth_violation();
            return buf.len();
        }
        match proto::drive(self, buf) {
            proto::Driven::Used(n) => n,
            proto::Driven::Stopped => buf.len(),
            proto::Driven::Failed(e, at) => {
                self.parse_error(e, &buf[at..]);
                buf.len()
            }
        }
    }

    fn auth_violation(&mut self) {
        let c = &self.client;
        error!(
            "{} - {}",
            c.prefix(),
            auth::violation(&self.server.opts(), "", "")
        );
        c.send_err("Authorization Violation");
        c.close(ClosedState::AuthenticationViolation);
    }

    fn parse_error(&mut self, e: ParseError, rest: &[u8]) {
        let c = &self.client;
        match e {
            ParseError::UnknownOp => {
                error!(
                    "{} - Gateway parser ERROR, state=0, i=0: proto='{}...'",
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

    fn handle(&mut self, op: Op<'_>) -> bool {
        if logging::trace_enabled() {
            self.trace_in(&op);
        }
        if !self.gc.outbound && !self.connected && !matches!(op, Op::Connect(_)) {
            self.auth_violation();
            return false;
        }
        match op {
            Op::Ping => {
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
            Op::Ok => true,
            Op::Err(text) => {
                error!(
                    "{} - Gateway Error '{}'",
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
                ..
            } => self.remote_sub(account, subject, queue, weight),
            Op::RouteUnsub {
                account,
                subject,
                queue,
            } => self.remote_unsub(account, subject, queue),
            Op::AccountSub(acc) => self.account_sub(acc, true),
            Op::AccountUnsub(acc) => self.account_sub(acc, false),
            Op::RouteMsg {
                account,
                msg,
                queues,
                ..
            } => {
                self.message(account, msg, queues);
                true
            }
            Op::Ignored | Op::Pub(_) => true,
            Op::Sub { .. } | Op::Unsub { .. } | Op::Msg { .. } => {
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

    /// CONNECT of a dialling gateway (on an accepted connection).
    fn connect(&mut self, json: &[u8]) -> bool {
        let c = self.client.clone();
        if self.gc.outbound {
            return true;
        }
        let ci: GatewayConnect = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {e}", c.prefix());
                c.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        if ci.gateway.is_empty() {
            let txt = "attempted to connect to gateway port";
            c.send_err(txt);
            error!("{} - {txt}", c.prefix());
            c.close(ClosedState::WrongPort);
            error!("{} - {txt}", c.prefix());
            return false;
        }
        let opts = self.server.opts();
        if !opts.gateway.username.is_empty() {
            let ok = ci.user.as_deref() == Some(opts.gateway.username.as_str())
                && auth::secret_matches(&opts.gateway.password, ci.pass.as_deref().unwrap_or(""));
            if !ok {
                self.auth_violation();
                return false;
            }
        }
        let gw = &self.server.gateway;
        if opts.gateway.reject_unknown && !gw.remotes.lock().contains_key(&ci.gateway) {
            error!(
                "{} - Rejecting connection from gateway {:?}",
                c.prefix(),
                ci.gateway
            );
            c.send_err(&format!("Connection to gateway {:?} rejected", gw.name));
            c.close(ClosedState::WrongGateway);
            return false;
        }
        self.connected = true;
        self.ping_armed = true;
        true
    }

    fn info(&mut self, json: &[u8]) -> bool {
        let c = self.client.clone();
        let info: GatewayInfo = match serde_json::from_slice(json) {
            Ok(i) => i,
            Err(e) => {
                error!("{} - {e}", c.prefix());
                c.close(ClosedState::ProtocolViolation);
                return false;
            }
        };
        let first = !std::mem::replace(&mut self.info_received, true);
        if first {
            *self.gc.remote_id.lock() = info.server_id.clone();
            c.meta.lock().remote_id = info.server_id.clone();
        }
        self.flush.push(c.clone());
        if self.gc.outbound {
            self.outbound_info(info, first)
        } else {
            if first {
                self.inbound_first_info(info);
            }
            !c.is_closed()
        }
    }

    fn outbound_info(&mut self, info: GatewayInfo, first: bool) -> bool {
        let c = self.client.clone();
        let server = self.server.clone();
        let gw = &server.gateway;
        let name = self.gc.name();
        if info.gateway.is_empty() {
            let txt = format!("Attempt to connect to gateway {name:?} using wrong port");
            c.send_err(&txt);
            error!("{} - {txt}", c.prefix());
            c.close(ClosedState::WrongPort);
            return false;
        }
        if info.gateway != name {
            if !first && info.gateway_cmd == CMD_GOSSIP {
                if server.opts().gateway.reject_unknown
                    && !gw.remotes.lock().contains_key(&info.gateway)
                {
                    return true;
                }
                implicit_gateway(&server, &info);
                return true;
            }
            error!(
                "{} - Failing connection to gateway {name:?}, remote gateway name is {:?}",
                c.prefix(),
                info.gateway
            );
            c.send_err(&format!(
                "Connection from {:?} rejected, wanted to connect to {name:?}, this is {:?}",
                gw.name, info.gateway
            ));
            c.close(ClosedState::WrongGateway);
            return false;
        }
        if let Some(r) = self.gc.remote.lock().clone() {
            if !info.gateway_urls.is_empty() {
                r.add_urls(&info.gateway_urls);
            }
        }
        if first {
            self.gc
                .interest_only
                .store(info.gateway_iom, Ordering::Relaxed);
            c.headers.store(
                info.headers && !server.opts().no_header_support,
                Ordering::Relaxed,
            );
            let opts = server.opts();
            let url = self.gc.url.lock().clone();
            let (user, pass) = match url.and_then(|u| u.user.map(|us| (us, u.pass))) {
                Some((u, p)) => (Some(u), p),
                None if !opts.gateway.username.is_empty() => (
                    Some(opts.gateway.username.clone()),
                    Some(opts.gateway.password.clone()),
                ),
                None => (None, None),
            };
            let tls = self
                .gc
                .remote
                .lock()
                .as_ref()
                .is_some_and(|r| r.tls.is_some());
            let ci = GatewayConnect {
                echo: false,
                verbose: false,
                pedantic: false,
                user,
                pass,
                tls_required: tls,
                headers: !opts.no_header_support,
                name: server.id.clone(),
                cluster: String::new(),
                gateway: gw.name.clone(),
            };
            let mut b = Vec::new();
            proto::connect(&mut b, &serde_json::to_vec(&ci).unwrap_or_default());
            b.extend_from_slice(&our_info(&server));
            c.out.send(&b);
            debug!("{} - Gateway connect protocol sent to {name:?}", c.prefix());
            let registered = {
                let mut out = gw.out.write();
                if out.iter().any(|o| *o.name.lock() == name) {
                    false
                } else {
                    out.push(self.gc.clone());
                    true
                }
            };
            if !registered {
                c.close(ClosedState::WrongGateway);
                return false;
            }
            self.gc.registered.store(true, Ordering::Release);
            gw.refresh_active();
            info!(
                "{} - Outbound gateway connection to {name:?} ({}) registered",
                c.prefix(),
                info.server_id
            );
            self.connected = true;
            self.ping_armed = true;
        } else if info.gateway_cmd > 0 {
            match info.gateway_cmd {
                CMD_ALL_SUBS_START => self.all_subs_start(&info),
                CMD_ALL_SUBS_COMPLETE => self.all_subs_complete(&info),
                other => warn!("Received unknown command {other} from gateway {name:?}"),
            }
            return !c.is_closed();
        }
        // Tell this cluster about the gateway, so every server has an outbound to it.
        let urls = self
            .gc
            .remote
            .lock()
            .as_ref()
            .map(|r| r.urls.lock().clone())
            .unwrap_or_default();
        let opts = server.opts();
        let line = gw.gossip_info(
            &format!("GW{}", server.id),
            &opts.server_name,
            &name,
            if info.gateway_urls.is_empty() {
                urls
            } else {
                info.gateway_urls.clone()
            },
        );
        for r in server.cluster.registered_routes() {
            r.client.out.send(&line);
        }
        true
    }

    fn command_account(&mut self, info: &GatewayInfo, what: &str) -> Option<String> {
        match &info.gateway_cmd_payload {
            Some(p) if !p.is_empty() => Some(String::from_utf8_lossy(p).into_owned()),
            _ => {
                let txt = format!("Account absent from receive-all-subscriptions-{what} command");
                self.client.send_err(&txt);
                error!("{} - {txt}", self.client.prefix());
                self.client.close(ClosedState::ProtocolViolation);
                None
            }
        }
    }

    fn all_subs_start(&mut self, info: &GatewayInfo) {
        let Some(acc) = self.command_account(info, "start") else {
            return;
        };
        debug!(
            "{} - Gateway {:?}: switching account {acc:?} to {} mode",
            self.client.prefix(),
            info.gateway,
            Mode::InterestOnly.as_str()
        );
        let mut map = self.gc.outsim.write();
        match map.get_mut(&acc) {
            Some(Some(e)) => e.mode = Mode::Transitioning,
            _ => {
                map.insert(acc, Some(OutAccount::new(Mode::Transitioning, None)));
            }
        }
    }

    fn all_subs_complete(&mut self, info: &GatewayInfo) {
        let Some(acc) = self.command_account(info, "complete") else {
            return;
        };
        let mut map = self.gc.outsim.write();
        if let Some(Some(e)) = map.get_mut(&acc) {
            e.ni = None;
            e.mode = Mode::InterestOnly;
            debug!(
                "{} - Gateway {:?}: switching account {acc:?} to {} mode complete",
                self.client.prefix(),
                info.gateway,
                Mode::InterestOnly.as_str()
            );
        }
    }

    /// First INFO on an accepted connection: register it, send our queue interest,
    /// dial back the remote if we do not know it, tell it about the other gateways, and
    /// switch every account to interest-only mode.
    fn inbound_first_info(&mut self, info: GatewayInfo) {
        let c = self.client.clone();
        let server = self.server.clone();
        let gw = &server.gateway;
        *self.gc.name.lock() = info.gateway.clone();
        self.gc.registered.store(true, Ordering::Release);
        info!(
            "{} - Inbound gateway connection from {:?} ({}) registered",
            c.prefix(),
            info.gateway,
            info.server_id
        );
        implicit_gateway(&server, &info);
        // The other gateways we know, so the remote connects to them too.
        let remotes: Vec<Arc<Remote>> = gw.remotes.lock().values().cloned().collect();
        let mut b = Vec::new();
        for r in remotes {
            if r.name == info.gateway {
                continue;
            }
            let urls = r.urls.lock().clone();
            if urls.is_empty() {
                continue;
            }
            b.extend_from_slice(&gw.gossip_info(&server.id, "", &r.name, urls));
        }
        if !b.is_empty() {
            c.out.send(&b);
        }
        gw.inbound_registered(&server, &self.gc);
    }

    /// RS+ on an outbound connection: the remote's interest.
    fn remote_sub(&mut self, account: &[u8], subj: &[u8], queue: Option<&[u8]>, w: u32) -> bool {
        if !self.gc.outbound {
            error!(
                "{} - Received RS+ from gateway on inbound connection",
                self.client.prefix()
            );
            self.client.close(ClosedState::ProtocolViolation);
            return false;
        }
        if !subject::is_valid_sub_subject(subj) {
            return true;
        }
        let acc = String::from_utf8_lossy(account).into_owned();
        let mut map = self.gc.outsim.write();
        if !matches!(map.get(&acc), Some(Some(_))) {
            // No entry for a plain subscription: optimistic, nothing to clear.
            if queue.is_none() {
                return true;
            }
            map.insert(
                acc.clone(),
                Some(OutAccount::new(Mode::Optimistic, Some(HashSet::new()))),
            );
        }
        let Some(Some(entry)) = map.get_mut(&acc) else {
            return true;
        };
        let use_sl = queue.is_some() || entry.mode != Mode::Optimistic;
        if use_sl {
            let key = crate::route::sub_key(b"", subj, queue);
            if entry.keys.contains_key(&key[..]) {
                return true;
            }
            let k: Arc<[u8]> = key.clone().into();
            entry.sl.insert(subj, queue, k);
            let weight = if queue.is_some() { w.max(1) } else { 1 };
            entry.keys.insert(key.into_boxed_slice(), weight);
            if queue.is_some() {
                entry.qsubs += 1;
            }
            // Leaf nodes we are hub of learn of it (the reference's `updateLeafNodes`).
            self.server
                .leafs
                .gateway_interest_changed(&acc, subj, queue, 1);
        } else if let Some(ni) = &mut entry.ni {
            if subject::has_wildcard(subj) {
                ni.retain(|s| !subject::matches(subj, s));
            } else {
                ni.remove(subj);
            }
        }
        true
    }

    /// RS- on an outbound connection.
    fn remote_unsub(&mut self, account: &[u8], subj: &[u8], queue: Option<&[u8]>) -> bool {
        if !self.gc.outbound {
            error!(
                "{} - Received RS- from gateway on inbound connection",
                self.client.prefix()
            );
            self.client.close(ClosedState::ProtocolViolation);
            return false;
        }
        let acc = String::from_utf8_lossy(account).into_owned();
        let mut map = self.gc.outsim.write();
        match map.get_mut(&acc) {
            Some(Some(e)) => {
                let use_sl = queue.is_some() || e.mode != Mode::Optimistic;
                if use_sl {
                    let key = crate::route::sub_key(b"", subj, queue);
                    if e.keys.remove(&key[..]).is_some() {
                        let k: Arc<[u8]> = key.into();
                        e.sl.remove(subj, queue, &k);
                        if queue.is_some() {
                            e.qsubs = e.qsubs.saturating_sub(1);
                        }
                        self.server
                            .leafs
                            .gateway_interest_changed(&acc, subj, queue, -1);
                        let empty = e.sl.count() == 0
                            && e.mode == Mode::Optimistic
                            && e.ni.as_ref().is_some_and(|n| n.is_empty());
                        if empty {
                            map.remove(&acc);
                        }
                    }
                } else if let Some(ni) = &mut e.ni {
                    ni.insert(subj.into());
                }
            }
            Some(None) => {}
            None => {
                if queue.is_none() {
                    let mut ni = HashSet::new();
                    ni.insert(Box::<[u8]>::from(subj));
                    map.insert(acc, Some(OutAccount::new(Mode::Optimistic, Some(ni))));
                }
            }
        }
        true
    }

    /// A+ / A- on an outbound connection.
    fn account_sub(&mut self, account: &[u8], add: bool) -> bool {
        if !self.gc.outbound {
            error!(
                "{} - Received A{} from gateway on inbound connection",
                self.client.prefix(),
                if add { "+" } else { "-" }
            );
            self.client.close(ClosedState::ProtocolViolation);
            return false;
        }
        let acc = String::from_utf8_lossy(account).into_owned();
        let mut map = self.gc.outsim.write();
        if add {
            match map.get(&acc) {
                Some(Some(e)) if e.qsubs > 0 => {}
                Some(_) => {
                    map.remove(&acc);
                }
                None => {}
            }
        } else {
            match map.get_mut(&acc) {
                Some(Some(e)) if e.qsubs > 0 => e.ni = Some(HashSet::new()),
                Some(None) => {}
                _ => {
                    map.insert(acc, None);
                }
            }
        }
        true
    }

    /// A message from a remote cluster: delivered here and to this cluster's routes.
    fn message(&mut self, account: &[u8], msg: Message<'_>, queues: Queues<'_>) {
        self.flush.count_in(msg.size());
        if super::is_routed_reply(msg.subject) {
            super::handle_routed_reply(
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
                "{} - Unknown account {:?} for gateway message on subject: {:?}",
                self.client.prefix(),
                String::from_utf8_lossy(account),
                String::from_utf8_lossy(msg.subject)
            );
            send_account_no_interest(&self.gc, account);
            return;
        };
        if result.psubs.is_empty() {
            self.subject_no_interest(&acc, msg.subject);
            if queues.is_empty() {
                return;
            }
        }
        let mut d = Delivery::new(&self.server, &acc, &self.client, true, &mut self.flush);
        deliver::deliver(&mut d, &msg, &result, Some(queues));
    }

    /// No plain interest here in an optimistic send: `RS-` for the subject (or `A-` when
    /// the account has no subscription at all), unless the account is interest-only.
    fn subject_no_interest(&mut self, acc: &Arc<crate::accounts::Account>, subj: &[u8]) {
        let mut insim = self.gc.insim.lock();
        if matches!(insim.get(&acc.name), Some(InAccount::InterestOnly)) {
            return;
        }
        let mut line = Vec::new();
        if acc.num_subs() == 0 {
            if !matches!(insim.get(&acc.name), Some(InAccount::NoInterest)) {
                insim.insert(acc.name.clone(), InAccount::NoInterest);
                line.extend_from_slice(b"A- ");
                line.extend_from_slice(acc.name.as_bytes());
                line.extend_from_slice(b"\r\n");
            }
        } else {
            let e = insim
                .entry(acc.name.clone())
                .or_insert_with(|| InAccount::Optimistic(HashSet::new()));
            if let InAccount::Optimistic(ni) = e {
                if ni.insert(subj.into()) {
                    proto::rs_minus(&mut line, acc.name.as_bytes(), subj, None);
                }
            }
        }
        drop(insim);
        if !line.is_empty() {
            crate::route::trace_out(&self.client, &line);
            self.flush.queue(&self.client, &line);
        }
    }

    fn ping_timer(&mut self) {
        let c = self.client.clone();
        if !self.connected {
            return;
        }
        debug!("{} - Gateway Ping Timer", c.prefix());
        let opts = self.server.opts();
        if self.pings_out + 1 > opts.ping_max {
            debug!("{} - Stale Gateway Connection - Closing", c.prefix());
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

fn first_ping_delay(interval: Duration) -> Duration {
    let jitter = Duration::from_millis(rand::random::<u64>() % 200);
    (Duration::from_secs(1) + jitter).min(interval)
}

/// `A-` for an account this server does not have (once per connection).
pub fn send_account_no_interest(gc: &GwConn, account: &[u8]) {
    let name = String::from_utf8_lossy(account).into_owned();
    {
        let mut insim = gc.insim.lock();
        if matches!(insim.get(&name), Some(InAccount::NoInterest)) {
            return;
        }
        insim.insert(name, InAccount::NoInterest);
    }
    let mut line = b"A- ".to_vec();
    line.extend_from_slice(account);
    line.extend_from_slice(b"\r\n");
    crate::route::trace_out(&gc.client, &line);
    gc.client.out.send(&line);
}

/// Starts an outbound connection to a gateway learned from an INFO (an inbound
/// connection's, a gossip, or a route's), unless it is known already.
pub fn implicit_gateway(server: &Arc<Server>, info: &GatewayInfo) {
    let gw = &server.gateway;
    if !gw.enabled || info.gateway == gw.name || info.gateway.is_empty() {
        return;
    }
    let mut urls = info.gateway_urls.clone();
    if urls.is_empty() && !info.gateway_url.is_empty() {
        urls.push(info.gateway_url.clone());
    }
    let remote = {
        let mut remotes = gw.remotes.lock();
        if let Some(r) = remotes.get(&info.gateway) {
            r.add_urls(&urls);
            return;
        }
        if urls.is_empty() {
            return;
        }
        let r = Arc::new(Remote {
            name: info.gateway.clone(),
            hash: super::hash6(&info.gateway),
            urls: Mutex::new(Vec::new()),
            implicit: true,
            tls: server.opts().gateway.tls.clone(),
            attempts: AtomicU32::new(0),
        });
        r.add_urls(&urls);
        remotes.insert(info.gateway.clone(), r.clone());
        r
    };
    let s = server.clone();
    tokio::spawn(async move { solicit(s, remote, true).await });
}

/// A route's INFO: a gateway gossip (`gateway_cmd` 1) starts an implicit gateway; a
/// peer's `gateway_url` joins this cluster's gateway URLs. True when the INFO was a
/// gateway command (the route code must not treat it as a peer's INFO).
pub fn route_info(server: &Arc<Server>, json: &[u8]) -> bool {
    if memchr::memmem::find(json, b"\"gateway").is_none() {
        return false;
    }
    let Ok(info) = serde_json::from_slice::<GatewayInfo>(json) else {
        return false;
    };
    if info.gateway_cmd > 0 {
        if info.gateway_cmd == CMD_GOSSIP {
            implicit_gateway(server, &info);
        } else {
            error!(
                "Unknown command {} from server {}",
                info.gateway_cmd, info.server_id
            );
        }
        return true;
    }
    let gw = &server.gateway;
    if gw.enabled && !info.gateway_url.is_empty() {
        let added = {
            let mut urls = gw.urls.lock();
            if urls.contains(&info.gateway_url) {
                false
            } else {
                urls.push(info.gateway_url.clone());
                true
            }
        };
        if added {
            // The remotes learn the new URL from our INFO.
            let b = our_info(server);
            for c in gw.inbound.lock().iter() {
                c.client.out.send(&b);
            }
        }
    }
    false
}

/// A route was registered: tell the peer about the gateways we have an outbound to.
pub fn route_registered(server: &Server, client: &Client) {
    let gw = &server.gateway;
    if !gw.enabled {
        return;
    }
    let opts = server.opts();
    let mut b = Vec::new();
    for c in gw.out.read().iter() {
        let urls = c
            .remote
            .lock()
            .as_ref()
            .map(|r| r.urls.lock().clone())
            .unwrap_or_default();
        if urls.is_empty() {
            continue;
        }
        b.extend_from_slice(&gw.gossip_info(
            &format!("GW{}", server.id),
            &opts.server_name,
            &c.name(),
            urls,
        ));
    }
    if !b.is_empty() {
        client.out.send(&b);
    }
}
