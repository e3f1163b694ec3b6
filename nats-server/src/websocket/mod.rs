//! Websocket clients: the `websocket {}` listener, the HTTP upgrade (handshake.rs), then
//! the ordinary client read loop and writer over the frame layer of `nats_common::ws`
//! (a byte stream, as a TCP or TLS stream is). Nothing past the upgrade is websocket
//! specific but the close frame sent when the server closes the connection.

pub mod handshake;

use crate::client::{self, Client, ClosedState, Kind};
use crate::options::{TlsOptions, WebsocketOptions};
use crate::server::Server;
use handshake::Parsed;
use nats_common::ws;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{error, info, warn};

/// What the upgrade told about one websocket client.
#[derive(Debug, Clone, Default)]
pub struct WsMeta {
    /// A valid IP from `X-Forwarded-For`, shown before the address in log lines.
    pub forwarded_ip: String,
    /// The value of the `jwt_cookie` cookie, used when CONNECT has no JWT.
    pub cookie_jwt: String,
}

/// Binds the websocket listener and starts accepting, as the reference logs it.
pub async fn start(server: &Arc<Server>) -> Result<Option<SocketAddr>, String> {
    let opts = server.opts();
    let w = &opts.websocket;
    if w.port == 0 {
        return Ok(None);
    }
    let port = if w.port == -1 { 0 } else { w.port as u16 };
    let bind = crate::server::host_port(&w.host, port);
    let listener = crate::netutil::listen(&bind).await.map_err(|e| {
        format!(
            "Unable to listen for websocket connections: listen tcp {bind}: {}",
            crate::netutil::go_listen_error(&e)
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if w.tls.is_some() { "wss" } else { "ws" };
    info!(
        "Listening for websocket clients on {scheme}://{}",
        crate::server::host_port(&w.host, addr.port())
    );
    if w.tls.is_none() {
        warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
    }
    server.set_ws_addr(addr);
    let me = server.clone();
    let task = tokio::spawn(async move { accept_loop(me, listener).await });
    server.set_ws_accept_task(task);
    Ok(Some(addr))
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let s = server.clone();
                tokio::spawn(async move { serve(s, stream, addr).await });
            }
            Err(e) => {
                error!("Temporary Websocket Accept Error({e}), sleeping 10ms");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn tls_config(t: &TlsOptions) -> Result<Arc<rustls::ServerConfig>, String> {
    static CACHE: parking_lot::Mutex<Option<(TlsOptions, Arc<rustls::ServerConfig>)>> =
        parking_lot::Mutex::new(None);
    let mut g = CACHE.lock();
    if let Some((k, cfg)) = &*g {
        if k == t {
            return Ok(cfg.clone());
        }
    }
    let cfg = crate::tls::client_server_config(t)?;
    *g = Some((t.clone(), cfg.clone()));
    Ok(cfg)
}

async fn serve(server: Arc<Server>, stream: TcpStream, addr: SocketAddr) {
    if server.is_shutting_down() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let opts = server.opts();
    let w = &opts.websocket;
    match &w.tls {
        Some(t) => {
            let cfg = match tls_config(t) {
                Ok(c) => c,
                Err(e) => {
                    error!("{addr} - websocket TLS configuration error: {e}");
                    return;
                }
            };
            match crate::tls::accept(cfg, stream, t.timeout).await {
                Ok(tls) => {
                    let (version, cipher) = crate::tls::session_info(tls.get_ref().1);
                    upgrade(server, tls, addr, Some((version, cipher))).await
                }
                Err(e) => error!("websocket: TLS handshake error from {addr}: {e}"),
            }
        }
        None => upgrade(server, stream, addr, None).await,
    }
}

/// Reads HTTP requests until one is a valid upgrade (answering the others as the
/// reference does), then serves the connection as a client.
async fn upgrade<S>(
    server: Arc<Server>,
    mut stream: S,
    addr: SocketAddr,
    tls: Option<(String, String)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opts = server.opts();
    let w = opts.websocket.clone();
    let timeout = w.handshake_timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let head = read_head(&mut stream, &mut buf, timeout).await;
        let req = match head {
            Head::Closed => return,
            Head::TooLarge => {
                let _ = stream.write_all(handshake::HEADERS_TOO_LARGE).await;
                return;
            }
            Head::Parsed(Parsed::Malformed) => {
                let _ = stream.write_all(handshake::MALFORMED).await;
                return;
            }
            Head::Parsed(Parsed::MissingHost) => {
                let _ = stream.write_all(handshake::MISSING_HOST).await;
                return;
            }
            Head::Parsed(Parsed::Partial) => return,
            Head::Parsed(Parsed::Request(r)) => r,
        };
        buf.drain(..req.head_len);
        if let Err(refusal) = handshake::check(&req, &w, tls.is_some()) {
            error!("{addr} - websocket handshake error: {}", refusal.reason);
            let keep = req.keep_alive();
            let _ = stream
                .write_all(&handshake::error_response(
                    refusal.status,
                    req.version,
                    !keep,
                ))
                .await;
            if !keep {
                return;
            }
            // Skip the request's body, if any, and wait for the next request.
            match req.content_length() {
                Some(n) if n <= 256 * 1024 => {
                    while buf.len() < n {
                        if read_some(&mut stream, &mut buf, timeout).await.is_none() {
                            return;
                        }
                    }
                    buf.drain(..n);
                }
                _ => return,
            }
            continue;
        }
        if !buf.is_empty() {
            error!(
                "{addr} - websocket handshake error: client sent data before handshake is complete"
            );
            return;
        }
        let compress = w.compression && req.wants_deflate();
        let no_masking = req.get("Nats-No-Masking") == "true";
        let key = req.get("Sec-WebSocket-Key").to_string();
        if stream
            .write_all(&handshake::switching(&key, compress, no_masking))
            .await
            .is_err()
        {
            return;
        }
        let ua = req.get("User-Agent");
        let browser = ua.starts_with("Mozilla/");
        let cfg = ws::WriteConfig {
            mask: false,
            compress,
            browser,
            no_compressed_fragments: browser
                && compress
                && ua.contains("Version/")
                && ua.contains("Safari/"),
        };
        let forwarded_ip = req
            .all("X-Forwarded-For")
            .next()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
            .unwrap_or("")
            .to_string();
        let cookie_jwt = if w.jwt_cookie.is_empty() {
            String::new()
        } else {
            req.all("Cookie")
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().split_once('='))
                .find(|(k, _)| *k == w.jwt_cookie)
                .map(|(_, v)| v.trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let meta = WsMeta {
            forwarded_ip,
            cookie_jwt,
        };
        run_client(server, stream, addr, cfg, !no_masking, meta, tls).await;
        return;
    }
}

enum Head {
    Parsed(Parsed),
    Closed,
    TooLarge,
}

/// Reads more bytes, within `timeout` when set; None at EOF, error or timeout.
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Option<usize> {
    buf.reserve(4096);
    let r = if timeout.is_zero() {
        stream.read_buf(buf).await
    } else {
        match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
            Ok(r) => r,
            Err(_) => return None,
        }
    };
    match r {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Head {
    loop {
        if !buf.is_empty() {
            match handshake::parse(buf) {
                Parsed::Partial => {}
                p => return Head::Parsed(p),
            }
            if buf.len() > handshake::MAX_HEADER_BYTES {
                return Head::TooLarge;
            }
        }
        if read_some(stream, buf, timeout).await.is_none() {
            return Head::Closed;
        }
    }
}

/// The close frame the reference sends when it closes a websocket client for `reason`;
/// none after read or write failures, when it only drops the connection.
pub fn close_status(reason: ClosedState) -> Option<(u16, String)> {
    use ClosedState::*;
    let status = match reason {
        ReadError
        | WriteError
        | SlowConsumerPendingBytes
        | SlowConsumerWriteDeadline
        | TlsHandshakeError => return None,
        ClientClosed => ws::CLOSE_NORMAL,
        AuthenticationTimeout
        | AuthenticationViolation
        | MaxAccountConnectionsExceeded
        | MaxConnectionsExceeded
        | MaxControlLineExceeded
        | MaxSubscriptionsExceeded
        | AuthenticationExpired => ws::CLOSE_POLICY_VIOLATION,
        ParseError | ProtocolViolation | BadClientProtocolVersion => ws::CLOSE_PROTOCOL_ERROR,
        MaxPayloadExceeded => ws::CLOSE_MESSAGE_TOO_BIG,
        ServerShutdown => ws::CLOSE_GOING_AWAY,
        StaleConnection => ws::CLOSE_ABNORMAL,
        _ => ws::CLOSE_INTERNAL_ERROR,
    };
    Some((status, reason.as_str().to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn run_client<S>(
    server: Arc<Server>,
    stream: S,
    addr: SocketAddr,
    cfg: ws::WriteConfig,
    expect_mask: bool,
    meta: WsMeta,
    tls: Option<(String, String)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cid = server.next_cid();
    let client = Client::new(&server, cid, Kind::Client, addr);
    let _ = client.ws.set(meta);
    if let Some((version, cipher)) = tls {
        let mut meta = client.meta.lock();
        meta.tls_version = version;
        meta.tls_cipher = cipher;
    }
    let too_many = server.admit_client(&client);
    let (rd, wr) = tokio::io::split(stream);
    let ctl = ws::Shared::default();
    let mut reader = ws::WsRead::new(rd, &[], expect_mask, ctl.clone());
    let weak = Arc::downgrade(&client);
    reader.on_control(Box::new(move || {
        if let Some(c) = weak.upgrade() {
            c.out.poke();
        }
    }));
    let mut writer = ws::WsWrite::new(wr, cfg, ctl);
    let weak = Arc::downgrade(&client);
    writer.on_close(Box::new(move || {
        weak.upgrade()
            .and_then(|c| c.close_reason())
            .and_then(close_status)
    }));
    client.out.send(&server.client_info(&client));
    if too_many {
        error!("{} - maximum connections exceeded", client.prefix());
        client.send_err("maximum connections exceeded");
        client.close(ClosedState::MaxConnectionsExceeded);
    }
    client::run(server, client, reader, writer).await;
}

/// This server's websocket URLs (`host:port`), as peers and clients are told them.
pub fn own_urls(server: &Server, w: &WebsocketOptions) -> Vec<String> {
    let Some(addr) = server.ws_addr() else {
        return Vec::new();
    };
    if !w.advertise.is_empty() {
        if let Some((h, p)) = crate::cli::split_host_port(&w.advertise) {
            if let Ok(p) = p.parse::<u16>() {
                return vec![crate::server::host_port(h, p)];
            }
        }
        return vec![crate::server::host_port(&w.advertise, addr.port())];
    }
    crate::server::urls_for_host(&w.host, addr.port())
}
