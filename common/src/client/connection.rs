//! One connection to one server: dialing, TLS, the CONNECT handshake, the writer task that
//! flushes the shared output buffer in batches, and the read loop that dispatches ops.

use super::error::{io_reason, Error, Result};
use super::servers::ServerAddr;
use super::subscription::{Message, Sink};
use super::{tls, ConnState, Event, Shared};
use crate::info::{ConnectInfo, ServerInfo};
use crate::proto::{self, Op, Parser, Side};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// INFO with many connect_urls can be long; nothing else the server sends is.
const MAX_CONTROL_LINE: usize = 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;

/// A connection that finished its handshake.
pub(crate) struct Established {
    pub reader: Reader,
    pub writer: Writer,
    /// Bytes read past the handshake's PONG.
    pub leftover: Vec<u8>,
    pub info: ServerInfo,
    pub addr: ServerAddr,
}

fn parser() -> Parser {
    Parser::new(Side::Server, MAX_CONTROL_LINE, usize::MAX)
}

async fn read_more(r: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> Result<()> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    match r.read_buf(buf).await {
        Ok(0) => Err(Error::Io("EOF".into())),
        Ok(_) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn server_err(text: &[u8]) -> Error {
    let t = String::from_utf8_lossy(text).into_owned();
    if t.to_ascii_lowercase().contains("authorization violation") {
        Error::Authorization(t)
    } else {
        Error::Server(t)
    }
}

/// Dials `addr` and completes INFO / (TLS) / CONNECT / PING / PONG within the connect timeout.
pub(crate) async fn establish(shared: &Shared, addr: &ServerAddr) -> Result<Established> {
    match tokio::time::timeout(shared.opts.connect_timeout, handshake(shared, addr)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout),
    }
}

async fn handshake(shared: &Shared, addr: &ServerAddr) -> Result<Established> {
    let tcp = TcpStream::connect(addr.host_port()).await?;
    let _ = tcp.set_nodelay(true);
    if addr.ws {
        return ws_handshake(shared, addr, tcp).await;
    }
    let mut tcp = tcp;
    let p = parser();
    let mut buf = Vec::with_capacity(4096);
    // The server speaks first, in clear text, even when TLS follows.
    let info = read_info(&mut tcp, &mut buf).await?;
    let use_tls = addr.tls || tls::configured(&shared.opts) || info.tls_required;
    let (reader, writer): (Reader, Writer) = if use_tls {
        if !info.tls_required && !info.tls_available {
            return Err(Error::Tls("server does not support TLS".into()));
        }
        let stream = tls::handshake(tls_config(shared)?, &addr.host, tcp).await?;
        let (r, w) = tokio::io::split(stream);
        (Box::new(r), Box::new(w))
    } else {
        let (r, w) = tcp.into_split();
        (Box::new(r), Box::new(w))
    };
    finish(shared, addr, info, reader, writer, buf, &p, use_tls).await
}

fn tls_config(shared: &Shared) -> Result<Arc<rustls::ClientConfig>> {
    let mut slot = shared.tls.lock();
    Ok(match &*slot {
        Some(c) => c.clone(),
        None => {
            let c = tls::client_config(&shared.opts)?;
            *slot = Some(c.clone());
            c
        }
    })
}

/// Reads up to the server's INFO (skipping anything before it).
async fn read_info(r: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> Result<ServerInfo> {
    let p = parser();
    loop {
        match p.parse(buf) {
            Ok(Some((Op::Info(json), used))) => {
                let info = serde_json::from_slice(json)
                    .map_err(|e| Error::Io(format!("invalid INFO from server: {e}")))?;
                buf.drain(..used);
                return Ok(info);
            }
            Ok(Some((Op::Err(t), _))) => return Err(server_err(t)),
            Ok(Some((_, used))) => {
                buf.drain(..used);
            }
            Ok(None) => read_more(r, buf).await?,
            Err(e) => return Err(Error::Io(format!("protocol error: {e}"))),
        }
    }
}

/// `ws://` / `wss://`: TLS first for wss, the HTTP upgrade, then the protocol over
/// websocket frames (masked, as a client's must be).
async fn ws_handshake(shared: &Shared, addr: &ServerAddr, tcp: TcpStream) -> Result<Established> {
    let p = parser();
    let (mut rd, mut wr): (Reader, Writer) = if addr.tls {
        let stream = tls::handshake(tls_config(shared)?, &addr.host, tcp).await?;
        let (r, w) = tokio::io::split(stream);
        (Box::new(r), Box::new(w))
    } else {
        let (r, w) = tcp.into_split();
        (Box::new(r), Box::new(w))
    };
    let key = crate::ws::make_key();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        addr.host_port()
    );
    wr.write_all(req.as_bytes()).await?;
    wr.flush().await?;
    let mut head = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(Error::Io("websocket: response head too long".into()));
        }
        read_more(&mut rd, &mut head).await?;
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let status = text.lines().next().unwrap_or("").trim().to_string();
    if status.split(' ').nth(1) != Some("101") {
        return Err(Error::Io(format!("websocket: upgrade refused: {status:?}")));
    }
    let accept = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("Sec-WebSocket-Accept")
            .then(|| v.trim().to_string())
    });
    if accept.as_deref() != Some(crate::ws::accept_key(&key).as_str()) {
        return Err(Error::Io("websocket: invalid Sec-WebSocket-Accept".into()));
    }
    let ctl = crate::ws::Shared::default();
    let mut reader = crate::ws::WsRead::new(rd, &head[end..], false, ctl.clone());
    let writer = crate::ws::WsWrite::new(
        wr,
        crate::ws::WriteConfig {
            mask: true,
            ..Default::default()
        },
        ctl,
    );
    let mut buf = Vec::with_capacity(4096);
    let info = read_info(&mut reader, &mut buf).await?;
    finish(
        shared,
        addr,
        info,
        Box::new(reader),
        Box::new(writer),
        buf,
        &p,
        addr.tls,
    )
    .await
}

/// CONNECT and PING, then reads until the PONG.
#[allow(clippy::too_many_arguments)]
async fn finish(
    shared: &Shared,
    addr: &ServerAddr,
    info: ServerInfo,
    mut reader: Reader,
    mut writer: Writer,
    mut buf: Vec<u8>,
    p: &Parser,
    use_tls: bool,
) -> Result<Established> {
    let connect = connect_info(shared, addr, &info, use_tls);
    let json = serde_json::to_vec(&connect).map_err(|e| Error::Io(e.to_string()))?;
    let mut out = Vec::with_capacity(json.len() + 16);
    proto::connect(&mut out, &json);
    out.extend_from_slice(proto::PING);
    writer.write_all(&out).await?;
    writer.flush().await?;

    let mut info = info;
    loop {
        match p.parse(&buf) {
            Ok(Some((op, used))) => {
                match op {
                    Op::Pong => {
                        buf.drain(..used);
                        break;
                    }
                    Op::Err(t) => return Err(server_err(t)),
                    Op::Info(json) => {
                        if let Ok(i) = serde_json::from_slice(json) {
                            info = i;
                        }
                    }
                    Op::Ping => {
                        writer.write_all(proto::PONG).await?;
                    }
                    _ => {}
                }
                buf.drain(..used);
            }
            Ok(None) => read_more(&mut reader, &mut buf).await?,
            Err(e) => return Err(Error::Io(format!("protocol error: {e}"))),
        }
    }
    Ok(Established {
        reader,
        writer,
        leftover: buf,
        info,
        addr: addr.clone(),
    })
}

fn connect_info(shared: &Shared, addr: &ServerAddr, info: &ServerInfo, tls: bool) -> ConnectInfo {
    let o = &shared.opts;
    let mut c = ConnectInfo {
        verbose: false,
        pedantic: false,
        tls_required: tls,
        name: o.name.clone().unwrap_or_default(),
        lang: "rust".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: 1,
        echo: o.echo,
        headers: true,
        no_responders: true,
        ..Default::default()
    };
    // Credentials in the URL win over the options.
    if addr.user.is_some() {
        c.user = addr.user.clone();
        c.pass = addr.pass.clone();
    } else if addr.token.is_some() {
        c.auth_token = addr.token.clone();
    } else if o.user.is_some() {
        c.user = o.user.clone();
        c.pass = o.password.clone();
    }
    if c.auth_token.is_none() && c.user.is_none() {
        c.auth_token = o.token.clone();
    }
    let a = &shared.auth;
    if a.seed.is_some() {
        c.jwt = a.jwt.clone();
        if a.jwt.is_none() {
            c.nkey = a.public_key.clone();
        }
        if !info.nonce.is_empty() {
            c.sig = a.sign(&info.nonce);
        }
    }
    c
}

/// Why [`serve`] returned.
pub(crate) enum Ended {
    /// Lost the connection (reason as the Go client words it, e.g. `EOF`).
    Lost(String),
    /// The server is going away (lame duck); move elsewhere.
    LameDuck,
    /// The client was closed.
    Closed,
}

/// Takes whole batches from the shared buffer and writes them, until the connection
/// generation changes or a write fails.
async fn write_loop(shared: Arc<Shared>, mut w: Writer, gen: u64, err: oneshot::Sender<String>) {
    let mut chunk: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let wake = shared.writer_wake.notified();
        {
            let mut o = shared.out.lock();
            if o.gen != gen {
                break;
            }
            if !o.buf.is_empty() {
                std::mem::swap(&mut o.buf, &mut chunk);
                o.unsent_pings = 0;
            }
        }
        if chunk.is_empty() {
            wake.await;
            continue;
        }
        shared.space.notify_waiters();
        let r = match w.write_all(&chunk).await {
            Ok(()) => w.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            let _ = err.send(io_reason(&e));
            return;
        }
        chunk.clear();
        // Do not keep a huge buffer around after one burst.
        if chunk.capacity() > 32 * 1024 * 1024 {
            chunk = Vec::with_capacity(64 * 1024);
        }
    }
    let _ = w.shutdown().await;
}

/// Runs a connection until it ends: spawns the writer, reads and dispatches ops, sends
/// keepalive PINGs.
pub(crate) async fn serve(shared: &Arc<Shared>, conn: Established) -> Ended {
    let Established {
        mut reader,
        writer,
        leftover,
        addr,
        ..
    } = conn;
    let gen = shared.out.lock().gen;
    let (err_tx, mut err_rx) = oneshot::channel();
    let wtask = tokio::spawn(write_loop(shared.clone(), writer, gen, err_tx));
    let mut closed = shared.closed.subscribe();
    let p = parser();
    let mut buf = leftover;
    buf.reserve(READ_CHUNK);
    let interval = shared.opts.ping_interval.max(Duration::from_millis(10));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let url = addr.to_string();
    let ended = 'outer: loop {
        // Dispatch every complete op in the buffer.
        let mut pos = 0;
        loop {
            match p.parse(&buf[pos..]) {
                Ok(Some((op, used))) => {
                    pos += used;
                    if let Some(end) = handle_op(shared, &addr, &url, op) {
                        break 'outer end;
                    }
                }
                Ok(None) => break,
                Err(e) => break 'outer Ended::Lost(format!("nats: protocol error: {e}")),
            }
        }
        if pos > 0 {
            buf.drain(..pos);
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) => break Ended::Lost("EOF".into()),
                Ok(_) => {}
                Err(e) => break Ended::Lost(io_reason(&e)),
            },
            _ = ping.tick() => {
                if let Some(end) = keepalive(shared) {
                    break end;
                }
            }
            r = &mut err_rx => match r {
                Ok(reason) => break Ended::Lost(reason),
                // The writer stopped without error: generation changed (closing).
                Err(_) => break Ended::Closed,
            },
            _ = closed.wait_for(|c| *c) => break Ended::Closed,
        }
    };
    if matches!(ended, Ended::LameDuck) {
        // Let the writer finish the batch in hand so nothing already taken is lost.
        {
            let mut o = shared.out.lock();
            o.gen += 1;
        }
        shared.writer_wake.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(2), wtask).await;
    } else {
        wtask.abort();
    }
    ended
}

fn keepalive(shared: &Shared) -> Option<Ended> {
    let mut o = shared.out.lock();
    if o.state != ConnState::Connected {
        return None;
    }
    if o.pings_out >= shared.opts.max_pings_out {
        return Some(Ended::Lost("nats: stale connection".into()));
    }
    o.pings_out += 1;
    let was_empty = o.buf.is_empty();
    o.buf.extend_from_slice(proto::PING);
    o.pongs.push_back(None);
    o.unsent_pings += 1;
    drop(o);
    if was_empty {
        shared.writer_wake.notify_one();
    }
    None
}

/// Errors after which the server keeps the connection open.
fn is_soft_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.starts_with("permissions violation")
        || t.starts_with("invalid subject")
        || t.starts_with("invalid publish subject")
        || t.starts_with("maximum subscriptions exceeded")
}

fn handle_op(shared: &Shared, addr: &ServerAddr, url: &str, op: Op<'_>) -> Option<Ended> {
    match op {
        Op::Msg { sid, msg } => dispatch(shared, sid, &msg),
        Op::Ping => {
            let _ = shared.enqueue(|b| b.extend_from_slice(proto::PONG));
        }
        Op::Pong => {
            let mut o = shared.out.lock();
            o.pings_out = 0;
            if let Some(Some(tx)) = o.pongs.pop_front() {
                let _ = tx.send(());
            }
        }
        Op::Info(json) => {
            let Ok(info) = serde_json::from_slice::<ServerInfo>(json) else {
                return None;
            };
            let added = shared
                .pool
                .lock()
                .merge_discovered(&info.connect_urls, addr);
            if added {
                shared.emit(Event::ServersDiscovered {
                    urls: shared.pool.lock().urls(),
                });
            }
            let ldm = info.ldm;
            if info.max_payload > 0 {
                shared.out.lock().max_payload = info.max_payload as usize;
            }
            shared.status.lock().info = info;
            if ldm {
                shared.emit(Event::LameDuck {
                    url: url.to_string(),
                });
                if shared.pool.lock().entries.len() > 1 {
                    return Some(Ended::LameDuck);
                }
            }
        }
        Op::Err(t) => {
            let text = String::from_utf8_lossy(t).into_owned();
            if is_soft_error(&text) {
                let mut o = shared.out.lock();
                o.err_seq += 1;
                o.last_err = Some(text.clone());
                drop(o);
                shared.emit(Event::ServerError {
                    url: url.to_string(),
                    text,
                });
            } else {
                // The server closes after these; say why.
                shared.emit(Event::ServerError {
                    url: url.to_string(),
                    text: text.clone(),
                });
                return Some(Ended::Lost(format!("nats: {}", text.to_lowercase())));
            }
        }
        Op::Ok => {}
        _ => {}
    }
    None
}

fn parse_sid(sid: &[u8]) -> Option<u64> {
    if sid.is_empty() || sid.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in sid {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    Some(n)
}

fn dispatch(shared: &Shared, sid: &[u8], msg: &proto::Message<'_>) {
    let Some(sid) = parse_sid(sid) else { return };
    let mut subs = shared.subs.lock();
    let table = &mut *subs;
    let Some(entry) = table.map.get_mut(&sid) else {
        return;
    };
    entry.delivered += 1;
    let mut remove = entry.max.is_some_and(|m| entry.delivered >= m);
    match &mut entry.sink {
        Sink::Callback(f) => f(msg),
        Sink::Channel(tx) => match tx.try_send(Message::from_wire(msg)) {
            Ok(()) => entry.slow = false,
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                if !entry.slow {
                    entry.slow = true;
                    shared.emit(Event::SlowConsumer {
                        sid,
                        subject: entry.subject.clone(),
                    });
                }
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => remove = true,
        },
        Sink::Responses => {
            entry.delivered = 0;
            let token = table.resp_prefix.as_deref().and_then(|p| {
                std::str::from_utf8(msg.subject)
                    .ok()
                    .and_then(|s| s.strip_prefix(p))
            });
            if let Some(tx) = token.and_then(|t| table.responders.remove(t)) {
                let _ = tx.send(Message::from_wire(msg));
            }
        }
    }
    if remove {
        table.map.remove(&sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_and_soft_errors() {
        assert_eq!(parse_sid(b"42"), Some(42));
        assert_eq!(parse_sid(b"x1"), None);
        assert_eq!(parse_sid(b""), None);
        assert_eq!(parse_sid(b"99999999999999999999"), None);
        assert!(is_soft_error(
            "Permissions Violation for Publish to \"foo\""
        ));
        assert!(!is_soft_error("Authorization Violation"));
        assert!(!is_soft_error("Stale Connection"));
    }
}
