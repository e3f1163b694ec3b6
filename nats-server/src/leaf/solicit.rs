//! The leaf node listener (hub side) and the dialling of `leafnodes.remotes` (leaf side):
//! URL choice, the hub's first INFO, TLS, CONNECT with credentials, reconnects.

use super::conn::{self, Rd, Wr};
use crate::client::ClosedState;
use crate::server::{host_port, Server};
use bytes::BytesMut;
use nats_common::info::{LeafConnectInfo, ServerInfo};
use nats_common::proto::{self, Op, Parser, Side};
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, error, info};

/// How long a leaf waits for the hub's first INFO.
const INFO_WAIT: Duration = Duration::from_secs(1);
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

/// A parsed remote URL.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RemoteUrl {
    host: String,
    port: u16,
    user: Option<String>,
    pass: Option<String>,
}

impl RemoteUrl {
    fn parse(s: &str) -> Option<RemoteUrl> {
        let r = crate::route::RouteUrl::parse(s).or_else(|| {
            // A URL without a port dials the default leaf port.
            crate::route::RouteUrl::parse(&format!("{}:7422", s.trim_end_matches('/')))
        })?;
        Some(RemoteUrl {
            host: r.host,
            port: r.port,
            user: r.user,
            pass: r.pass,
        })
    }

    fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// Dialling state of one `leafnodes.remotes` entry.
pub struct Remote {
    opts: crate::options::RemoteLeafOptions,
    /// Configured URLs (parsed).
    configured: Vec<RemoteUrl>,
    /// URLs to try, in order: learned from the hub's `leafnode_urls`, then configured.
    urls: Mutex<Vec<RemoteUrl>>,
    cur: Mutex<Option<RemoteUrl>>,
    /// Credentials from the first configured URL that had some (for learned URLs).
    user: Option<(String, String)>,
    /// Wait before the next dial (a loop or a cluster name clash was reported).
    delay: Mutex<Duration>,
}

impl Remote {
    fn new(opts: &crate::options::RemoteLeafOptions) -> Remote {
        let mut configured: Vec<RemoteUrl> = opts
            .urls
            .iter()
            .filter_map(|u| RemoteUrl::parse(u))
            .collect();
        let user = configured
            .iter()
            .find_map(|u| Some((u.user.clone()?, u.pass.clone().unwrap_or_default())));
        if !opts.no_randomize {
            configured.shuffle(&mut rand::thread_rng());
        }
        Remote {
            opts: opts.clone(),
            urls: Mutex::new(configured.clone()),
            configured,
            cur: Mutex::new(None),
            user,
            delay: Mutex::new(Duration::ZERO),
        }
    }

    /// The next URL to dial: the current one moves to the back when there are others.
    fn pick(&self) -> Option<RemoteUrl> {
        let mut urls = self.urls.lock();
        let mut cur = self.cur.lock();
        if urls.is_empty() {
            return None;
        }
        if urls.len() > 1 && cur.as_ref() == Some(&urls[0]) {
            let first = urls.remove(0);
            urls.push(first);
        }
        *cur = Some(urls[0].clone());
        cur.clone()
    }
}

fn remote(server: &Server, idx: usize) -> Option<Arc<Remote>> {
    server.leafs.remotes.get()?.get(idx).cloned()
}

/// Delays the next dial of remote `idx`.
pub fn set_delay(server: &Server, idx: usize, d: Duration) {
    if let Some(r) = remote(server, idx) {
        *r.delay.lock() = d;
    }
}

/// The hub's `leafnode_urls`: they come first, then the configured URLs.
pub fn update_urls(server: &Server, idx: usize, urls: &[String]) {
    let Some(r) = remote(server, idx) else { return };
    let mut list = Vec::new();
    for u in urls {
        let Some(p) = RemoteUrl::parse(&format!("nats-leaf://{u}")) else {
            error!("Error parsing url {u:?}");
            continue;
        };
        if r.configured
            .iter()
            .any(|c| c.host == p.host && c.port == p.port)
        {
            continue;
        }
        list.push(p);
    }
    list.extend(r.configured.iter().cloned());
    *r.urls.lock() = list;
}

/// Starts the leaf node listener, when configured. Called before the client listener, as
/// the reference does.
pub async fn start(server: &Arc<Server>) -> std::io::Result<()> {
    let opts = server.opts();
    let leafs = &server.leafs;
    if opts.leaf.port != 0 {
        let port = if opts.leaf.port < 0 {
            0
        } else {
            opts.leaf.port as u16
        };
        let host = if opts.leaf.host.is_empty() {
            crate::options::DEFAULT_HOST.to_string()
        } else {
            opts.leaf.host.clone()
        };
        let bind = host_port(&host, port);
        let listener = crate::netutil::listen(&bind).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "Error listening on leafnode port: {} - listen tcp {bind}: {}",
                    opts.leaf.port,
                    crate::netutil::go_listen_error(&e)
                ),
            )
        })?;
        let addr = listener.local_addr()?;
        let _ = leafs.listen.set(addr);
        info!(
            "Listening for leafnode connections on {}",
            host_port(&host, addr.port())
        );
        let (h, p) = conn::advertised(server);
        let own = host_port(&h, p);
        if !opts.leaf.advertise.is_empty() {
            info!("Advertise address for leafnode is set to {own}");
        }
        let _ = leafs.own_url.set(own.clone());
        leafs.urls.lock().insert(0, own);
        let s = server.clone();
        *leafs.accept_task.lock() = Some(tokio::spawn(accept_loop(s, listener)));
    }
    Ok(())
}

/// Starts dialling the configured remotes (after "Server is ready", where the reference's
/// first attempts show in its log).
pub fn start_remotes(server: &Arc<Server>) {
    let opts = server.opts();
    let leafs = &server.leafs;
    let remotes: Vec<Arc<Remote>> = opts
        .leaf
        .remotes
        .iter()
        .map(|r| Arc::new(Remote::new(r)))
        .collect();
    let n = remotes.len();
    let _ = leafs.remotes.set(remotes);
    for idx in 0..n {
        let s = server.clone();
        tokio::spawn(async move { connect(s, idx, true).await });
    }
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    crate::netutil::accept_loop(server, listener, "Leafnode", accepted).await
}

/// The hub side of a new connection: INFO first (the TLS handshake, when configured,
/// follows it), then the read loop waits for the CONNECT.
async fn accepted(server: Arc<Server>, mut stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (c, _link) = conn::new_conn(&server, addr, false, None, false);
    info!("{} - Leafnode connection created ", c.prefix());
    c.meta.lock().auth.nonce = crate::auth::make_nonce();
    let info = conn::hub_info(&server, &c, true, None);
    if stream.write_all(&info).await.is_err() {
        c.close(ClosedState::WriteError);
        server.leafs.all.lock().remove(&c.cid);
        return;
    }
    let opts = server.opts();
    let (rd, wr): (Rd, Wr) = match &opts.leaf.tls {
        Some(t) => {
            let cfg = match crate::tls::client_server_config(t) {
                Ok(cfg) => cfg,
                Err(e) => {
                    error!("{} - TLS leafnode handshake error: {e}", c.prefix());
                    c.close(ClosedState::TlsHandshakeError);
                    server.leafs.all.lock().remove(&c.cid);
                    return;
                }
            };
            match crate::tls::accept(cfg, stream, t.timeout).await {
                Ok(s) => {
                    let (r, w) = tokio::io::split(s);
                    (Box::pin(r), Box::pin(w))
                }
                Err(e) => {
                    error!("{} - TLS leafnode handshake error: {e}", c.prefix());
                    c.close(ClosedState::TlsHandshakeError);
                    info!(
                        "{} - Leafnode connection closed: {} account: ",
                        c.prefix(),
                        ClosedState::TlsHandshakeError.as_str()
                    );
                    server.leafs.all.lock().remove(&c.cid);
                    return;
                }
            }
        }
        None => {
            let (r, w) = stream.into_split();
            (Box::pin(r), Box::pin(w))
        }
    };
    conn::run(server, c, rd, wr, BytesMut::new(), None, false).await;
}

/// Schedules the next dial of remote `idx` after a connection to it closed.
pub fn reconnect(server: Arc<Server>, idx: usize) {
    if server.is_shutting_down() {
        return;
    }
    tokio::spawn(async move {
        let wait = server.opts().leaf.reconnect;
        tokio::time::sleep(wait).await;
        connect(server, idx, false).await;
    });
}

/// Dials remote `idx` until a connection is made, then runs it.
async fn connect(server: Arc<Server>, idx: usize, first: bool) {
    let Some(r) = remote(&server, idx) else {
        return;
    };
    if r.configured.is_empty() {
        debug!("Empty remote leafnode definition, nothing to connect");
        return;
    }
    let delay = std::mem::take(&mut *r.delay.lock());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut attempts: u64 = 0;
    loop {
        if server.is_shutting_down() {
            return;
        }
        let Some(url) = r.pick() else { return };
        let hp = url.host_port();
        let resolved = tokio::net::lookup_host(hp.as_str())
            .await
            .ok()
            .and_then(|mut a| a.next());
        let ip = match resolved {
            Some(a) if a.to_string() != hp => format!(" ({a})"),
            _ => String::new(),
        };
        debug!("Trying to connect as leafnode to remote server on {hp:?}{ip}");
        let res = match resolved {
            Some(a) => match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(a)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout")),
            },
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such host",
            )),
        };
        match res {
            Ok(stream) => {
                solicited(server, idx, r, url, stream).await;
                return;
            }
            Err(e) => {
                attempts += 1;
                let text = crate::cluster::dial_error_text(
                    &resolved.map_or(hp.clone(), |a| a.to_string()),
                    &e,
                );
                // The reference reports the first failure (and each after a drop) at ERR.
                if attempts == 1 || !first || attempts.is_multiple_of(3600) {
                    error!(
                        "Error trying to connect as leafnode to remote server {hp:?} (attempt {attempts}): {text}"
                    );
                } else {
                    debug!(
                        "Error trying to connect as leafnode to remote server {hp:?} (attempt {attempts}): {text}"
                    );
                }
                tokio::time::sleep(server.opts().leaf.reconnect).await;
            }
        }
    }
}

/// The leaf side of a new connection: the hub's INFO, TLS when either side wants it, then
/// our CONNECT, and the read loop waits for the hub's answer.
async fn solicited(
    server: Arc<Server>,
    idx: usize,
    r: Arc<Remote>,
    url: RemoteUrl,
    mut stream: TcpStream,
) {
    let _ = stream.set_nodelay(true);
    let addr = stream
        .peer_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], url.port)));
    let (c, link) = conn::new_conn(&server, addr, true, Some(idx), !r.opts.hub);
    let acc_name = if r.opts.account.is_empty() {
        crate::options::GLOBAL_ACCOUNT.to_string()
    } else {
        r.opts.account.clone()
    };
    let Some(acc) = server.accounts.get(&acc_name) else {
        error!(
            "Unable to lookup account {acc_name} for solicited leafnode connection: account not found"
        );
        c.close(ClosedState::ClientClosed);
        server.leafs.all.lock().remove(&c.cid);
        reconnect(server, idx);
        return;
    };
    *c.account.write() = acc;
    info!(
        "{} - Leafnode connection created for account: {acc_name} ",
        c.prefix()
    );
    {
        let mut p = link.pub_deny.write();
        p.extend(r.opts.deny_exports.iter().cloned());
        let mut s = link.sub_deny.write();
        s.extend(r.opts.deny_imports.iter().cloned());
    }
    let fail = |server: Arc<Server>, c: &Arc<crate::client::Client>, reason: ClosedState| {
        c.close(reason);
        info!(
            "{} - Leafnode connection closed: {} account: {acc_name}",
            c.prefix(),
            reason.as_str()
        );
        server.leafs.all.lock().remove(&c.cid);
        reconnect(server, idx);
    };
    // The hub's first INFO, within a second.
    let mut buf = BytesMut::with_capacity(4096);
    let parser = Parser::new(Side::Leaf, 64 * 1024, 1 << 20);
    let info: ServerInfo = loop {
        let read = tokio::time::timeout(INFO_WAIT, stream.read_buf(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => {}
            _ => {
                fail(server, &c, ClosedState::ReadError);
                return;
            }
        }
        match parser.parse(&buf) {
            Ok(None) => continue,
            Ok(Some((Op::Info(json), used))) => {
                let parsed = serde_json::from_slice::<ServerInfo>(json);
                bytes::Buf::advance(&mut buf, used);
                match parsed {
                    Ok(i) => break i,
                    Err(e) => {
                        error!("{} - {e}", c.prefix());
                        fail(server, &c, ClosedState::ProtocolViolation);
                        return;
                    }
                }
            }
            _ => {
                error!("{} - attempted to connect to wrong port", c.prefix());
                fail(server, &c, ClosedState::WrongPort);
                return;
            }
        }
    };
    // A leaf port's INFO names our connection and the hub's leaf URLs.
    if info.client_id == 0 || info.leafnode_urls.is_none() {
        error!("{} - attempted to connect to wrong port", c.prefix());
        fail(server, &c, ClosedState::WrongPort);
        return;
    }
    let opts = server.opts();
    c.headers
        .store(info.headers && !opts.no_header_support, Ordering::Relaxed);
    *link.remote_server.write() = if info.server_name.is_empty() {
        info.server_id.clone()
    } else {
        info.server_name.clone()
    };
    *link.remote_cluster.write() = info.cluster.clone();
    if let Some(urls) = &info.leafnode_urls {
        if !urls.is_empty() {
            update_urls(&server, idx, urls);
        }
    }
    let tls_required = info.tls_required || r.opts.tls.is_some();
    let (rd, wr): (Rd, Wr) = if tls_required {
        let t = r.opts.tls.clone().unwrap_or_default();
        let cfg = match crate::tls::route_client_config(&t) {
            Ok(cfg) => cfg,
            Err(e) => {
                error!("{} - TLS leafnode handshake error: {e}", c.prefix());
                fail(server, &c, ClosedState::TlsHandshakeError);
                return;
            }
        };
        match crate::tls::connect(cfg, &url.host, stream, t.timeout).await {
            Ok(s) => {
                let (r, w) = tokio::io::split(s);
                (Box::pin(r), Box::pin(w))
            }
            Err(e) => {
                error!("{} - TLS leafnode handshake error: {e}", c.prefix());
                fail(server, &c, ClosedState::TlsHandshakeError);
                return;
            }
        }
    } else {
        let (r, w) = stream.into_split();
        (Box::pin(r), Box::pin(w))
    };
    let mut ci = LeafConnectInfo {
        version: crate::server::VERSION.to_string(),
        tls_required,
        server_id: server.id.clone(),
        name: server.name.clone(),
        is_hub: r.opts.hub,
        cluster: server.cluster.name(),
        headers: !opts.no_header_support,
        deny_pub: r.opts.deny_imports.clone(),
        ..Default::default()
    };
    if let Some(path) = &r.opts.credentials {
        debug!(
            "{} - Authenticating with credentials file {:?}",
            c.prefix(),
            path.display().to_string()
        );
        let creds = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| nats_common::client::parse_creds(&t));
        match creds {
            Some((jwt, seed)) => {
                use base64::Engine as _;
                let sig = nkeys::KeyPair::from_seed(&seed)
                    .ok()
                    .and_then(|kp| kp.sign(info.nonce.as_bytes()).ok());
                match sig {
                    Some(sig) => {
                        ci.jwt = jwt;
                        ci.sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
                    }
                    None => error!("{} - Credentials file has malformed seed", c.prefix()),
                }
            }
            None => error!("{} - Credentials file malformed", c.prefix()),
        }
    } else if let Some(u) = &url.user {
        ci.user = u.clone();
        ci.pass = url.pass.clone().unwrap_or_default();
    } else if let Some((u, p)) = &r.user {
        ci.user = u.clone();
        ci.pass = p.clone();
    }
    let json = serde_json::to_vec(&ci).unwrap_or_default();
    let mut connect = Vec::with_capacity(json.len() + 12);
    proto::connect(&mut connect, &json);
    conn::run(server, c, rd, wr, buf, Some(connect), !info.info_on_connect).await;
}

use std::sync::atomic::Ordering;
