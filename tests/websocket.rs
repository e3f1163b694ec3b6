//! WebSocket clients against both servers with the same scenarios: async-nats with its
//! websocket feature, raw frames for compression and bad input, the official JavaScript
//! client nats.ws from Node, and a page using nats.ws in headless Chromium.

use crate::config::TempDir;
use crate::support::{free_port, ours, reference, rt, run_bounded, wait_until, ServerProc};
use futures::StreamExt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

fn servers() -> [(&'static str, std::path::PathBuf); 2] {
    [("reference", reference()), ("ours", ours())]
}

/// A server with a websocket listener configured by `ws_body` (inside `websocket {}`,
/// after the port), plus `top` at the top level.
pub struct WsServer {
    pub srv: ServerProc,
    pub ws_port: u16,
    pub http_port: u16,
    _dir: TempDir,
}

impl WsServer {
    pub fn start(exe: &Path, ws_body: &str, top: &str) -> WsServer {
        Self::start_on(exe, free_port(), free_port(), ws_body, top)
    }

    pub fn start_on(exe: &Path, port: u16, ws_port: u16, ws_body: &str, top: &str) -> WsServer {
        let http_port = free_port();
        let dir = TempDir::new("ws");
        let conf = dir.write(
            "ws.conf",
            &format!("http: {http_port}\n{top}\nwebsocket {{\n port: {ws_port}\n {ws_body}\n}}\n"),
        );
        let srv = ServerProc::start_on(exe, port, &["-c", conf.to_str().unwrap()]);
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                ws_port
            ))
            .is_ok()),
            "websocket port did not open; log:\n{}",
            srv.proc.log_text()
        );
        WsServer {
            srv,
            ws_port,
            http_port,
            _dir: dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port)
    }

    fn http_json(&self, path: &str) -> serde_json::Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }
}

// ---------------------------------------------------------------- raw websocket frames

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A websocket connection driven frame by frame.
struct WsRaw {
    s: TcpStream,
    buf: Vec<u8>,
}

/// What the server sent back: a frame, or the end of the connection.
#[derive(Debug, PartialEq)]
enum Got {
    Frame { b0: u8, payload: Vec<u8> },
    Eof,
    Timeout,
}

fn request(extra: &str) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A frame as a client sends it.
fn frame(op: u8, payload: &[u8], fin: bool, masked: bool, rsv1: bool) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | (if rsv1 { 0x40 } else { 0 }) | op];
    let m = if masked { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n < 65536 {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    let key = [0x11, 0x22, 0x33, 0x44];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

fn bin(payload: &[u8]) -> Vec<u8> {
    frame(2, payload, true, true, false)
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff]);
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(&input[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

impl WsRaw {
    /// Connects and sends `req`; returns the connection and the response head.
    fn open(port: u16, req: &str) -> (WsRaw, String) {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = WsRaw { s, buf: Vec::new() };
        w.s.write_all(req.as_bytes()).unwrap();
        let head = w.head();
        (w, head)
    }

    /// Reads an HTTP response head (with the body when it has a Content-Length).
    fn head(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i + 4]).into_owned();
                self.buf.drain(..i + 4);
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let mut body = String::new();
                if let Some(n) = len {
                    while self.buf.len() < n {
                        if !self.more() {
                            break;
                        }
                    }
                    body = String::from_utf8_lossy(&self.buf[..n.min(self.buf.len())]).into();
                    self.buf.drain(..n.min(self.buf.len()));
                } else if !head.starts_with("HTTP/1.1 101") {
                    while self.more() {}
                    body = String::from_utf8_lossy(&self.buf).into();
                    self.buf.clear();
                }
                return head + &body;
            }
            if !self.more() {
                return String::from_utf8_lossy(&self.buf).into_owned();
            }
        }
    }

    fn more(&mut self) -> bool {
        let mut b = [0u8; 65536];
        match self.s.read(&mut b) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
        }
    }

    /// The client's upgrade, then the INFO frame; returns the 101 head.
    fn connect(port: u16, extra: &str) -> (WsRaw, String) {
        let (mut w, head) = WsRaw::open(port, &request(extra));
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        match w.frame(Duration::from_secs(5)) {
            Got::Frame { .. } => {}
            other => panic!("no INFO: {other:?}"),
        }
        (w, head)
    }

    /// Sends bytes; a server that already hung up (a refused frame) is not an error here.
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    fn frame(&mut self, timeout: Duration) -> Got {
        self.s.set_read_timeout(Some(timeout)).unwrap();
        loop {
            if self.buf.len() >= 2 {
                let len7 = (self.buf[1] & 0x7f) as usize;
                let (hl, len) = match len7 {
                    126 if self.buf.len() >= 4 => {
                        (4, u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize)
                    }
                    127 if self.buf.len() >= 10 => (
                        10,
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (2, n),
                };
                if hl != usize::MAX && self.buf.len() >= hl + len {
                    let b0 = self.buf[0];
                    let payload = self.buf[hl..hl + len].to_vec();
                    self.buf.drain(..hl + len);
                    return Got::Frame { b0, payload };
                }
            }
            let mut b = [0u8; 65536];
            match self.s.read(&mut b) {
                Ok(0) => return Got::Eof,
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Got::Timeout
                }
                Err(_) => return Got::Eof,
            }
        }
    }

    /// Every frame until the connection ends or goes quiet for `quiet`.
    fn rest(&mut self, quiet: Duration) -> Vec<Got> {
        let mut out = Vec::new();
        loop {
            let g = self.frame(quiet);
            let end = g != Got::Timeout && !matches!(g, Got::Frame { .. });
            if g == Got::Timeout {
                out.push(g);
                return out;
            }
            out.push(g);
            if end {
                return out;
            }
        }
    }
}

/// What a connection received, with consecutive data frames joined: where a server cuts
/// its stream into frames depends on timing, not on what it says.
fn joined(frames: &[Got]) -> String {
    let mut out = Vec::new();
    let mut data = Vec::new();
    for g in frames {
        match g {
            Got::Frame { b0: 0x82, payload } => data.extend_from_slice(payload),
            other => {
                if !data.is_empty() {
                    out.push(format!("data {:?}", String::from_utf8_lossy(&data)));
                    data.clear();
                }
                out.push(match other {
                    Got::Frame { b0, payload } => {
                        format!("frame {b0:#x} {:?}", String::from_utf8_lossy(payload))
                    }
                    g => format!("{g:?}"),
                });
            }
        }
    }
    if !data.is_empty() {
        out.push(format!("data {:?}", String::from_utf8_lossy(&data)));
    }
    out.join(", ")
}

/// A response head without its Date line (it differs by the second).
fn without_date(head: &str) -> String {
    head.lines()
        .filter(|l| !l.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------- configuration

#[test]
fn websocket_requires_tls_unless_no_tls() {
    let dir = TempDir::new("wsnotls");
    let port = free_port();
    let conf = dir.write("n.conf", &format!("websocket {{ port: {port} }}\n"));
    for (name, exe) in servers() {
        let (code, _, err) = run_bounded(
            &exe,
            &["-c", conf.to_str().unwrap()],
            Duration::from_secs(10),
        );
        assert_eq!(code, Some(1), "{name}: {err}");
        assert_eq!(
            err.trim_end(),
            "nats-server: websocket requires TLS configuration",
            "{name}"
        );
    }
}

#[test]
fn varz_and_connz_show_websocket() {
    let mut got = Vec::new();
    for (name, exe) in servers() {
        let s = WsServer::start(
            &exe,
            "no_tls: true\n compression: true\n same_origin: false\n allowed_origins: [\"http://a.example\"]\n handshake_timeout: \"3s\"",
            "",
        );
        let varz = s.http_json("/varz");
        let mut ws = varz["websocket"].clone();
        assert_eq!(ws["port"], s.ws_port, "{name}");
        ws["port"] = 0.into();
        let (mut c, _) = WsRaw::connect(s.ws_port, "");
        c.send(&bin(
            b"CONNECT {\"verbose\":false,\"name\":\"w1\"}\r\nSUB foo 1\r\nPING\r\n",
        ));
        assert!(matches!(c.frame(Duration::from_secs(5)), Got::Frame { .. }));
        let connz = s.http_json("/connz?subs=1");
        let conn = &connz["connections"][0];
        got.push((
            ws,
            conn["type"].clone(),
            conn["name"].clone(),
            conn["subscriptions_list"].clone(),
        ));
    }
    assert_eq!(got[0], got[1]);
    assert_eq!(got[1].1, "websocket");
}

// ---------------------------------------------------------------- async-nats

async fn pubsub_request_headers(url: &str, who: &str) {
    let c = async_nats::connect(url).await.expect("ws connect");
    let mut sub = c.subscribe("ws.foo").await.unwrap();
    c.flush().await.unwrap();
    c.publish("ws.foo", "hello".into()).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"hello", "{who}");
    // Headers.
    let mut h = async_nats::HeaderMap::new();
    h.insert("X-Test", "1");
    c.publish_with_headers("ws.foo", h, "with headers".into())
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("X-Test"))
            .map(|v| v.as_str()),
        Some("1"),
        "{who}"
    );
    // Request/reply, with a big payload crossing many frames.
    let mut svc = c.subscribe("ws.svc").await.unwrap();
    let responder = c.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(r) = m.reply {
                let mut p = m.payload.to_vec();
                p.reverse();
                responder.publish(r, p.into()).await.unwrap();
            }
        }
    });
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 256) as u8).collect();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        c.request("ws.svc", big.clone().into()),
    )
    .await
    .unwrap()
    .unwrap();
    let mut want = big;
    want.reverse();
    assert_eq!(&r.payload[..], &want[..], "{who}");
    // Many messages in a row arrive in order.
    for i in 0..1000 {
        c.publish("ws.foo", i.to_string().into()).await.unwrap();
    }
    for i in 0..1000 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload, i.to_string(), "{who}");
    }
    task.abort();
}

#[test]
fn async_nats_pubsub_request_and_headers() {
    for (name, exe) in servers() {
        for compression in [false, true] {
            let s = WsServer::start(
                &exe,
                &format!("no_tls: true\n compression: {compression}"),
                "",
            );
            rt().block_on(pubsub_request_headers(&s.ws_url(), name));
        }
    }
}

#[test]
fn async_nats_websocket_and_tcp_clients_share_subjects() {
    // async-nats 0.38's websocket adapter now and then leaves a frame unsent until its
    // next write (on both servers alike), so each side publishes until the other hears.
    async fn until_heard(
        from: &async_nats::Client,
        subject: &str,
        sub: &mut async_nats::Subscriber,
    ) -> Option<async_nats::Message> {
        for _ in 0..50 {
            from.publish(subject.to_string(), "hello".into())
                .await
                .ok()?;
            from.flush().await.ok()?;
            if let Ok(m) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                return m;
            }
        }
        None
    }
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, "no_tls: true", "");
        rt().block_on(async {
            let ws = async_nats::connect(s.ws_url()).await.unwrap();
            let tcp = async_nats::connect(s.srv.url()).await.unwrap();
            let mut a = ws.subscribe("x").await.unwrap();
            let mut b = tcp.subscribe("y").await.unwrap();
            ws.flush().await.unwrap();
            tcp.flush().await.unwrap();
            let m = until_heard(&tcp, "x", &mut a).await;
            assert!(m.is_some(), "{name}: nothing on the websocket subscriber");
            let m = until_heard(&ws, "y", &mut b).await;
            assert!(m.is_some(), "{name}: nothing on the TCP subscriber");
        });
    }
}

#[test]
fn async_nats_reconnects_after_restart() {
    for (name, exe) in servers() {
        let port = free_port();
        let ws_port = free_port();
        let s = WsServer::start_on(&exe, port, ws_port, "no_tls: true", "");
        let rt = rt();
        // The subscriber's drop talks to the runtime.
        let _guard = rt.enter();
        let c = rt.block_on(async {
            async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connect(format!("ws://127.0.0.1:{ws_port}"))
                .await
                .unwrap()
        });
        let mut sub = rt.block_on(async {
            let sub = c.subscribe("r").await.unwrap();
            c.flush().await.unwrap();
            sub
        });
        drop(s);
        let _s2 = WsServer::start_on(&exe, port, ws_port, "no_tls: true", "");
        rt.block_on(async {
            // The subscription is replayed after the reconnect; publish until it delivers.
            let got = tokio::time::timeout(Duration::from_secs(20), async {
                loop {
                    let _ = c.publish("r", "again".into()).await;
                    let _ = c.flush().await;
                    if let Ok(Some(m)) =
                        tokio::time::timeout(Duration::from_millis(200), sub.next()).await
                    {
                        return m;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{name}: no message after restart"));
            assert_eq!(got.payload, "again");
        });
    }
}

#[test]
fn async_nats_over_wss_with_test_pki() {
    let pki = crate::tls::pki();
    let body = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, &body, "");
        assert!(
            s.srv.proc.wait_log(
                &format!(
                    "Listening for websocket clients on wss://0.0.0.0:{}",
                    s.ws_port
                ),
                Duration::from_secs(5)
            ),
            "{name}: {}",
            s.srv.proc.log_text()
        );
        rt().block_on(async {
            let c = async_nats::ConnectOptions::new()
                .add_root_certificates(pki.ca.clone())
                .connect(format!("wss://localhost:{}", s.ws_port))
                .await
                .unwrap_or_else(|e| panic!("{name}: wss connect: {e}"));
            let mut sub = c.subscribe("t").await.unwrap();
            c.flush().await.unwrap();
            c.publish("t", "over tls".into()).await.unwrap();
            let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m.payload, "over tls", "{name}");
        });
        // Plain ws:// to the TLS port fails.
        let r = rt().block_on(async {
            tokio::time::timeout(
                Duration::from_secs(5),
                async_nats::connect(format!("ws://127.0.0.1:{}", s.ws_port)),
            )
            .await
        });
        assert!(!matches!(r, Ok(Ok(_))), "{name}");
    }
}

// ---------------------------------------------------------------- compression

#[test]
fn compression_negotiated_as_the_reference() {
    let ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    for (name, exe) in servers() {
        // Off: the extension is not accepted and frames are plain.
        let s = WsServer::start(&exe, "no_tls: true", "");
        let (mut w, head) = WsRaw::open(s.ws_port, &request(ext));
        assert!(!head.contains("permessage-deflate"), "{name}: {head}");
        match w.frame(Duration::from_secs(5)) {
            Got::Frame { b0, payload } => {
                assert_eq!(b0, 0x82, "{name}");
                assert!(payload.starts_with(b"INFO "), "{name}");
            }
            g => panic!("{name}: {g:?}"),
        }
        drop(s);
        // On: the reference's answer, compressed frames both ways.
        let s = WsServer::start(&exe, "no_tls: true\n compression: true", "");
        // Without the client asking, nothing is compressed.
        let (_, head) = WsRaw::connect(s.ws_port, "");
        assert!(!head.contains("permessage-deflate"), "{name}: {head}");
        let (mut w, head) = WsRaw::open(s.ws_port, &request(ext));
        assert!(
            head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"),
            "{name}: {head}"
        );
        let info = match w.frame(Duration::from_secs(5)) {
            Got::Frame { b0, payload } => {
                assert_eq!(b0, 0xc2, "{name}: INFO is compressed");
                inflate(&payload)
            }
            g => panic!("{name}: {g:?}"),
        };
        assert!(info.starts_with(b"INFO {"), "{name}");
        // A compressed CONNECT/SUB/PUB split over a compressed first frame and continuation.
        let payload = vec![b'z'; 5000];
        let mut ops = b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPUB big 5000\r\n".to_vec();
        ops.extend_from_slice(&payload);
        ops.extend_from_slice(b"\r\nPING\r\n");
        let z = deflate(&ops);
        let (a, b) = z.split_at(z.len() / 2);
        let mut bytes = frame(2, a, false, true, true);
        bytes.extend(frame(0, b, true, true, false));
        w.send(&bytes);
        let mut text = Vec::new();
        while !text.ends_with(b"PONG\r\n") {
            match w.frame(Duration::from_secs(5)) {
                Got::Frame { b0, payload } if b0 & 0x40 != 0 => text.extend(inflate(&payload)),
                Got::Frame { payload, .. } => text.extend(payload),
                g => panic!("{name}: {g:?} after {:?}", String::from_utf8_lossy(&text)),
            }
        }
        let mut want = b"MSG big 1 5000\r\n".to_vec();
        want.extend_from_slice(&payload);
        want.extend_from_slice(b"\r\nPONG\r\n");
        assert_eq!(text, want, "{name}");
    }
}

// ---------------------------------------------------------------- origins and bad input

#[test]
fn refused_origin_gets_403_as_the_reference() {
    let mut heads = Vec::new();
    for (name, exe) in servers() {
        let s = WsServer::start(
            &exe,
            "no_tls: true\n allowed_origins: [\"http://good.example:8080\"]",
            "",
        );
        let (_, ok) = WsRaw::open(s.ws_port, &request("Origin: http://good.example:8080\r\n"));
        assert!(ok.starts_with("HTTP/1.1 101"), "{name}: {ok}");
        let (_, bad) = WsRaw::open(s.ws_port, &request("Origin: http://evil.example:8080\r\n"));
        assert!(
            bad.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{name}: {bad}"
        );
        assert!(s.srv.proc.wait_log(
            "websocket handshake error: origin not allowed: not in the allowed list",
            Duration::from_secs(5)
        ));
        heads.push(without_date(&bad));
        drop(s);
        let s = WsServer::start(&exe, "no_tls: true\n same_origin: true", "");
        let (_, bad) = WsRaw::open(s.ws_port, &request("Origin: http://127.0.0.1:1\r\n"));
        heads.push(without_date(&bad));
        let (_, ok) = WsRaw::open(s.ws_port, &request("Origin: http://127.0.0.1\r\n"));
        assert!(ok.starts_with("HTTP/1.1 101"), "{name}: {ok}");
        assert!(s.srv.proc.wait_log(
            "origin not allowed: not same origin",
            Duration::from_secs(5)
        ));
    }
    assert_eq!(heads[0], heads[2]);
    assert_eq!(heads[1], heads[3]);
}

/// HTTP requests that are not a valid upgrade, answered as the reference does.
#[test]
fn bad_upgrade_requests_answered_as_the_reference() {
    let base = |skip: &str, extra: &str| {
        let mut r = String::from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ] {
            if k != skip {
                r.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        r.push_str(extra);
        r.push_str("\r\n");
        r
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "plain GET",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into(),
        ),
        (
            "POST",
            base("", "Content-Length: 0\r\n").replacen("GET", "POST", 1),
        ),
        ("no Upgrade", base("Upgrade", "")),
        ("no Connection", base("Connection", "")),
        ("no key", base("Sec-WebSocket-Key", "")),
        (
            "empty key",
            base("Sec-WebSocket-Key", "Sec-WebSocket-Key: \r\n"),
        ),
        (
            "wrong version",
            base("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8\r\n"),
        ),
        ("not HTTP", "hello there\r\n\r\n".into()),
        (
            "HTTP/1.1 without Host",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".into(),
        ),
        (
            "HTTP/1.0",
            "GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n".into(),
        ),
        (
            "Connection: close",
            base("Upgrade", "Connection: close\r\n"),
        ),
    ];
    let mut answers: Vec<Vec<String>> = Vec::new();
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, "no_tls: true", "");
        // A healthy websocket client beside the bad ones.
        let (mut good, _) = WsRaw::connect(s.ws_port, "");
        good.send(&bin(b"CONNECT {\"verbose\":false}\r\n"));
        let mut got = Vec::new();
        for (what, req) in &cases {
            let (_, head) = WsRaw::open(s.ws_port, req);
            got.push(format!("{what}: {}", without_date(&head)));
        }
        // The same connection may ask again after a refusal (HTTP keep-alive).
        let (mut w, first) = WsRaw::open(s.ws_port, &base("Upgrade", ""));
        assert!(first.starts_with("HTTP/1.1 400"), "{name}: {first}");
        w.send(request("").as_bytes());
        let again = w.head();
        got.push(format!(
            "keep-alive: {}",
            again.lines().next().unwrap_or("")
        ));
        good.send(&bin(b"PING\r\n"));
        assert_eq!(
            good.frame(Duration::from_secs(5)),
            Got::Frame {
                b0: 0x82,
                payload: b"PONG\r\n".to_vec()
            },
            "{name}"
        );
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
}

/// Broken frames: each answered as the reference (close frame or just the end of the
/// connection), and a client beside them unharmed.
#[test]
fn bad_frames_answered_as_the_reference() {
    let connect = b"CONNECT {\"verbose\":false,\"protocol\":1}\r\n".to_vec();
    let cat = |parts: &[Vec<u8>]| parts.concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked frame", frame(2, b"PING\r\n", true, false, false)),
        (
            "op split over frames",
            cat(&[
                frame(
                    2,
                    &cat(&[connect.clone(), b"PI".to_vec()]),
                    false,
                    true,
                    false,
                ),
                frame(0, b"NG\r\n", true, true, false),
            ]),
        ),
        (
            "ops in a text frame",
            frame(
                1,
                &cat(&[connect.clone(), b"PING\r\nPING\r\n".to_vec()]),
                true,
                true,
                false,
            ),
        ),
        ("ping", frame(9, b"hello", true, true, false)),
        (
            "close with status",
            frame(8, b"\x03\xe8bye", true, true, false),
        ),
        ("close without status", frame(8, b"", true, true, false)),
        (
            "close with bad utf-8",
            frame(8, b"\x03\xe8\xff\xfe", true, true, false),
        ),
        (
            "oversized control frame",
            frame(9, &[b'x'; 126], true, true, false),
        ),
        (
            "fragmented control frame",
            frame(9, b"x", false, true, false),
        ),
        ("unknown opcode", frame(3, b"x", true, true, false)),
        ("continuation first", frame(0, b"x", true, true, false)),
        (
            "close in the middle of a message",
            cat(&[
                frame(
                    2,
                    &cat(&[connect.clone(), b"PUB foo 10\r\n01234".to_vec()]),
                    false,
                    true,
                    false,
                ),
                frame(8, b"\x03\xe8", true, true, false),
            ]),
        ),
        (
            "payload over max_payload",
            // Only the announcing line: the server refuses it before the payload, and a
            // payload it never reads would end the connection with a reset.
            bin(&cat(&[connect.clone(), b"PUB foo 2000000\r\n".to_vec()])),
        ),
        ("protocol error", bin(b"FOO\r\n")),
        (
            // A frame announcing 1 TB: the reference has no frame limit and waits for it.
            "frame announcing 1 TB",
            cat(&[
                vec![0x82, 0xff],
                (1u64 << 40).to_be_bytes().to_vec(),
                vec![1, 2, 3, 4],
                b"CONN".to_vec(),
            ]),
        ),
        (
            "compressed bit on data that is not deflate",
            frame(
                2,
                &cat(&[connect.clone(), b"PING\r\n".to_vec()]),
                true,
                true,
                true,
            ),
        ),
    ];
    let mut answers = Vec::new();
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, "no_tls: true", "");
        let (mut good, _) = WsRaw::connect(s.ws_port, "");
        good.send(&bin(b"CONNECT {\"verbose\":false}\r\nSUB bystander 1\r\n"));
        let mut got = Vec::new();
        for (what, bytes) in &cases {
            let (mut w, _) = WsRaw::connect(s.ws_port, "");
            w.send(bytes);
            let mut frames = w.rest(Duration::from_millis(700));
            // After a broken frame the reference queues a close frame (1002 and the
            // reason) but may drop the connection before it is written; ours always
            // writes it. Compared without it, checked apart below.
            let frame_error = |g: &Got| match g {
                Got::Frame { b0: 0x88, payload } => {
                    payload.starts_with(&[0x03, 0xea]) && &payload[2..] != b"Protocol Violation"
                }
                _ => false,
            };
            if name == "ours" && *what == "unmasked frame" {
                assert_eq!(
                    frames.first(),
                    Some(&Got::Frame {
                        b0: 0x88,
                        payload: b"\x03\xeamask bit missing".to_vec()
                    })
                );
            }
            frames.retain(|g| !frame_error(g));
            // Whether a refused connection ends with EOF or a reset is the OS's business.
            if frames.last() == Some(&Got::Eof) || frames.last() == Some(&Got::Timeout) {
            } else {
                frames.push(Got::Eof);
            }
            got.push(format!("{what}: {}", joined(&frames)));
        }
        good.send(&bin(b"PUB bystander 2\r\nok\r\nPING\r\n"));
        let mut text = Vec::new();
        while !text.ends_with(b"PONG\r\n") {
            match good.frame(Duration::from_secs(5)) {
                // The server's own RTT PING may come first.
                Got::Frame { payload, .. } if payload == b"PING\r\n" => {}
                Got::Frame { payload, .. } => text.extend(payload),
                g => panic!("{name}: bystander harmed: {g:?}"),
            }
        }
        assert_eq!(text, b"MSG bystander 1 2\r\nok\r\nPONG\r\n", "{name}");
        for needle in [
            "read error: mask bit missing",
            "read error: control frame length bigger than maximum allowed of 125 bytes",
            "read error: control frame does not have final bit set",
            "read error: unknown opcode 3",
            "read error: invalid continuation frame",
            "read error: flate: ",
        ] {
            assert!(
                s.srv.proc.wait_log(needle, Duration::from_secs(5)),
                "{name}: {needle}"
            );
        }
        answers.push(got);
    }
    for (r, o) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(r, o);
    }
}

// ---------------------------------------------------------------- nats.ws from Node

/// tests/js with nats.ws installed from the npm registry (once per test run).
fn js_dir() -> std::path::PathBuf {
    static READY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if !*ready {
        if !dir.join("node_modules/nats.ws/package.json").exists()
            || !dir.join("node_modules/ws/package.json").exists()
        {
            let st = std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("npm is needed for the nats.ws tests (scripts/test.sh installs it)");
            assert!(st.success(), "npm install in {} failed", dir.display());
        }
        *ready = true;
    }
    dir
}

/// A Node process running tests/js/client.mjs.
struct Node {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Node {
    fn start(env: &[(&str, &str)]) -> Node {
        let dir = js_dir();
        let mut cmd = std::process::Command::new("node");
        cmd.arg("client.mjs")
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .expect("node is needed for the nats.ws tests (scripts/test.sh installs it)");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        Node { child, out }
    }

    /// The next JSON line (panics after `timeout`).
    fn line(&mut self, timeout: Duration) -> serde_json::Value {
        use std::io::BufRead;
        let pid = self.child.id();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if rx.recv_timeout(timeout).is_err() {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        });
        let mut l = String::new();
        let _ = self.out.read_line(&mut l);
        let _ = tx.send(());
        let _ = watchdog.join();
        serde_json::from_str(l.trim()).unwrap_or_else(|_| panic!("node said {l:?}"))
    }

    fn say(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nats_ws_from_node_with_and_without_compression() {
    for (name, exe) in servers() {
        for compression in [false, true] {
            let s = WsServer::start(
                &exe,
                &format!("no_tls: true\n compression: {compression}"),
                "",
            );
            let url = s.ws_url();
            let mut n = Node::start(&[("NATS_URL", url.as_str()), ("SCENARIO", "basic")]);
            let r = n.line(Duration::from_secs(30));
            assert_eq!(r["ok"], true, "{name}: {r}");
            // The `ws` package offers permessage-deflate; it is taken only when configured.
            let want = if compression {
                "permessage-deflate"
            } else {
                ""
            };
            assert_eq!(r["extensions"], want, "{name}");
        }
    }
}

#[test]
fn nats_ws_from_node_over_wss() {
    let pki = crate::tls::pki();
    let body = format!(
        "compression: true\n tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, &body, "");
        let url = format!("wss://localhost:{}", s.ws_port);
        let ca = pki.ca.to_str().unwrap();
        let mut n = Node::start(&[
            ("NATS_URL", url.as_str()),
            ("SCENARIO", "basic"),
            ("NODE_EXTRA_CA_CERTS", ca),
        ]);
        let r = n.line(Duration::from_secs(30));
        assert_eq!(r["ok"], true, "{name}: {r}");
        assert_eq!(r["extensions"], "permessage-deflate", "{name}");
    }
}

#[test]
fn nats_ws_from_node_reconnects_after_restart() {
    for (name, exe) in servers() {
        let port = free_port();
        let ws_port = free_port();
        let s = WsServer::start_on(&exe, port, ws_port, "no_tls: true", "");
        let url = s.ws_url();
        let mut n = Node::start(&[("NATS_URL", url.as_str()), ("SCENARIO", "reconnect")]);
        let r = n.line(Duration::from_secs(30));
        assert_eq!(r["ready"], true, "{name}: {r}");
        drop(s);
        let _s2 = WsServer::start_on(&exe, port, ws_port, "no_tls: true", "");
        n.say("restarted\n");
        let r = n.line(Duration::from_secs(40));
        assert_eq!(r["ok"], true, "{name}: {r}");
    }
}

#[test]
fn nats_ws_from_node_refused_origin() {
    for (name, exe) in servers() {
        let s = WsServer::start(
            &exe,
            "no_tls: true\n allowed_origins: [\"http://good.example\"]",
            "",
        );
        let url = s.ws_url();
        let mut n = Node::start(&[
            ("NATS_URL", url.as_str()),
            ("SCENARIO", "origin"),
            ("WS_ORIGIN", "http://evil.example"),
        ]);
        let r = n.line(Duration::from_secs(30));
        assert_eq!(r["refused"], true, "{name}: {r}");
        let mut n = Node::start(&[
            ("NATS_URL", url.as_str()),
            ("SCENARIO", "basic"),
            ("WS_ORIGIN", "http://good.example"),
        ]);
        let r = n.line(Duration::from_secs(30));
        assert_eq!(r["ok"], true, "{name}: {r}");
    }
}

// ---------------------------------------------------------------- a browser

/// Serves tests/js/page.html and nats.ws's browser bundle; the page POSTs its result to
/// /result, which arrives on the returned channel.
fn page_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let dir = js_dir();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            let dir = dir.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut buf = Vec::new();
                let mut b = [0u8; 8192];
                let (head, mut body) = loop {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (
                            String::from_utf8_lossy(&buf[..i]).into_owned(),
                            buf[i + 4..].to_vec(),
                        );
                    }
                };
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while body.len() < len {
                    match c.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&b[..n]),
                    }
                }
                let (ctype, content) = if path.starts_with("/page.html") {
                    ("text/html", std::fs::read(dir.join("page.html")).unwrap())
                } else if path == "/nats.js" {
                    (
                        "text/javascript",
                        std::fs::read(dir.join("node_modules/nats.ws/esm/nats.js")).unwrap(),
                    )
                } else if path == "/result" {
                    let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                    ("text/plain", b"ok".to_vec())
                } else {
                    let _ = c.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    content.len()
                );
                let _ = c.write_all(&content);
            });
        }
    });
    (port, rx)
}

/// Headless Chromium on `url`, in a fresh profile, killed when dropped.
struct Browser {
    child: std::process::Child,
    _profile: TempDir,
}

impl Browser {
    fn open(url: &str) -> Browser {
        let profile = TempDir::new("chromium");
        let child = std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                &format!("--user-data-dir={}", profile.0.display()),
                url,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromium is needed for the browser test (scripts/test.sh installs it)");
        Browser {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn nats_ws_in_headless_chromium() {
    let (http, results) = page_server();
    let results = std::sync::Arc::new(std::sync::Mutex::new(results));
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, "no_tls: true\n compression: true", "");
        // A TCP client answers one of the page's requests.
        let rt = rt();
        let _guard = rt.enter();
        let tcp = rt.block_on(async { async_nats::connect(s.srv.url()).await.unwrap() });
        let mut svc = rt.block_on(async {
            let sub = tcp.subscribe("browser.svc.big").await.unwrap();
            tcp.flush().await.unwrap();
            sub
        });
        let url = format!(
            "http://127.0.0.1:{http}/page.html?ws=ws://127.0.0.1:{}",
            s.ws_port
        );
        let browser = Browser::open(&url);
        let results = results.clone();
        let got = rt.block_on(async {
            let tcp2 = tcp.clone();
            let answer = tokio::spawn(async move {
                while let Some(m) = svc.next().await {
                    if let Some(r) = m.reply {
                        let _ = tcp2.publish(r, m.payload).await;
                        let _ = tcp2.flush().await;
                    }
                }
            });
            let r = tokio::task::spawn_blocking(move || {
                results
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60))
            })
            .await
            .unwrap();
            answer.abort();
            r
        });
        drop(browser);
        let got = got.unwrap_or_else(|_| panic!("{name}: the page reported nothing"));
        let v: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["error"], serde_json::Value::Null, "{name}: {v}");
        assert_eq!(v["subject"], "browser.hello", "{name}");
        assert_eq!(v["data"], "hi from the page", "{name}");
        assert_eq!(v["header"], "browser", "{name}");
        assert_eq!(v["reply"], "re: ping", "{name}");
        assert_eq!(v["big"], 100000, "{name}");
        // Chromium offers permessage-deflate and the server takes it.
        assert_eq!(
            v["extensions"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "{name}"
        );
        assert_eq!(v["userAgentBrowser"], true, "{name}");
    }
}

// ---------------------------------------------------------------- our nats CLI

#[test]
fn nats_cli_over_ws_and_wss() {
    use crate::cli::{nats, text, Bg, TempDir as CliDir};
    let pki = crate::tls::pki();
    let wss_body = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let ca = pki.ca.to_str().unwrap().to_string();
    for (name, exe) in servers() {
        for tls in [false, true] {
            let s = WsServer::start(&exe, if tls { &wss_body } else { "no_tls: true" }, "");
            let url = if tls {
                format!("wss://localhost:{}", s.ws_port)
            } else {
                s.ws_url()
            };
            let mut common = vec!["-s", url.as_str()];
            if tls {
                common.extend(["--tlsca", ca.as_str()]);
            }
            let cfg = CliDir::new();
            let args = |extra: &[&str]| -> Vec<String> {
                common.iter().chain(extra).map(|s| s.to_string()).collect()
            };
            let sub_args = args(&["sub", "ws.cli", "--count", "1"]);
            let sub = Bg::start(
                &cfg,
                &sub_args.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            sub.wait_stderr("Subscribing on ws.cli");
            let rep_args = args(&["reply", "ws.svc", "pong"]);
            let _rep = Bg::start(
                &cfg,
                &rep_args.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            let out = nats(
                &cfg,
                &args(&["pub", "ws.cli", "hello over websocket"])
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            );
            assert!(
                out.status.success(),
                "{name} tls={tls}: {}",
                text(&out.stderr)
            );
            sub.wait_stdout("hello over websocket");
            // The replier logs nothing until a request arrives: retry while it starts.
            let req_args = args(&["request", "ws.svc", "ping"]);
            let req_args: Vec<&str> = req_args.iter().map(String::as_str).collect();
            assert!(
                wait_until(Duration::from_secs(10), || text(
                    &nats(&cfg, &req_args).stdout
                )
                .contains("pong")),
                "{name} tls={tls}: no reply"
            );
        }
    }
}

// ---------------------------------------------------------------- websocket authorization

/// The `websocket {}` block's own authorization and no_auth_user, and a TCP client beside
/// them: the answers (frames, then the end) compared with the reference.
#[test]
fn websocket_authorization_as_the_reference() {
    let configs = [
        (
            "user/password",
            "no_tls: true\n authorization { user: wsu, password: wsp }",
            "",
        ),
        ("token", "no_tls: true\n authorization { token: s3cr3t }", ""),
        (
            "no_auth_user",
            "no_tls: true\n no_auth_user: b",
            "authorization { users: [ {user: a, password: a}, {user: b, password: b, permissions: {publish: \"b.>\"}} ] }",
        ),
    ];
    let connects = [
        "{\"verbose\":false}",
        "{\"verbose\":false,\"user\":\"wsu\",\"pass\":\"wsp\"}",
        "{\"verbose\":false,\"user\":\"wsu\",\"pass\":\"bad\"}",
        "{\"verbose\":false,\"auth_token\":\"s3cr3t\"}",
        "{\"verbose\":false,\"user\":\"a\",\"pass\":\"a\"}",
    ];
    let mut answers = Vec::new();
    for (name, exe) in servers() {
        let mut got = Vec::new();
        for (what, body, top) in &configs {
            let s = WsServer::start(&exe, body, top);
            let (mut w, _) = WsRaw::open(s.ws_port, &request(""));
            let info = match w.frame(Duration::from_secs(5)) {
                Got::Frame { payload, .. } => payload,
                g => panic!("{name}: {g:?}"),
            };
            let info: serde_json::Value = serde_json::from_slice(&info[5..info.len() - 2]).unwrap();
            got.push(format!(
                "{what}: INFO auth_required={}",
                info["auth_required"]
            ));
            for c in connects {
                let (mut w, _) = WsRaw::connect(s.ws_port, "");
                w.send(&bin(
                    format!("CONNECT {c}\r\nPUB x 1\r\nx\r\nPING\r\n").as_bytes()
                ));
                let mut frames = w.rest(Duration::from_millis(500));
                frames
                    .retain(|g| !matches!(g, Got::Frame { payload, .. } if payload == b"PING\r\n"));
                got.push(format!("{what}: {c}: {}", joined(&frames)));
            }
            // A TCP client is not affected.
            let mut raw = crate::support::Raw::connect(s.srv.port);
            let tcp_info = raw.info();
            got.push(format!(
                "{what}: tcp auth_required={}",
                tcp_info["auth_required"]
            ));
        }
        answers.push(got);
    }
    for (r, o) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(r, o);
    }
}

// ---------------------------------------------------------------- cluster

/// Websocket URLs are gossiped over routes: a websocket client learns the cluster's
/// websocket URLs (a TCP client its TCP ones), and /varz lists them.
#[test]
fn cluster_gossips_websocket_urls() {
    for (name, exe) in servers() {
        let (ca, cb) = (free_port(), free_port());
        let (wa, wb) = (free_port(), free_port());
        let top = |own: u16, other: u16| {
            format!(
                "cluster {{ listen: \"127.0.0.1:{own}\", routes: [\"nats://127.0.0.1:{other}\"] }}"
            )
        };
        let ws = "host: \"127.0.0.1\"\n no_tls: true";
        let a = WsServer::start_on(&exe, free_port(), wa, ws, &top(ca, cb));
        let b = WsServer::start_on(&exe, free_port(), wb, ws, &top(cb, ca));
        let mut want = vec![format!("127.0.0.1:{wa}"), format!("127.0.0.1:{wb}")];
        want.sort();
        let mut last = serde_json::Value::Null;
        assert!(
            wait_until(Duration::from_secs(15), || {
                last = a.http_json("/varz")["ws_connect_urls"].clone();
                let mut got: Vec<String> = last
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                got.sort();
                got == want
            }),
            "{name}: /varz ws_connect_urls {last}"
        );
        // A websocket client's INFO carries the websocket URLs.
        let (mut w, _) = WsRaw::open(wa, &request(""));
        let info = match w.frame(Duration::from_secs(5)) {
            Got::Frame { payload, .. } => payload,
            g => panic!("{name}: {g:?}"),
        };
        let info: serde_json::Value = serde_json::from_slice(&info[5..info.len() - 2]).unwrap();
        let mut urls: Vec<String> = info["connect_urls"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no connect_urls in {info}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        urls.sort();
        assert_eq!(urls, want, "{name}");
        // A TCP client's INFO carries the TCP URLs.
        let mut raw = crate::support::Raw::connect(a.srv.port);
        let tcp_info = raw.info();
        let tcp_urls = tcp_info["connect_urls"].to_string();
        assert!(
            tcp_urls.contains(&format!("127.0.0.1:{}", a.srv.port)),
            "{name}: {tcp_urls}"
        );
        assert!(!tcp_urls.contains(&wa.to_string()), "{name}: {tcp_urls}");
        drop(b);
    }
}

/// `jwt_cookie`: a websocket client's JWT comes in a cookie of its upgrade request (a
/// bearer-token user needs no nonce signature); CONNECT's own JWT still wins.
#[test]
fn jwt_cookie_logs_in_as_the_reference() {
    use serde_json::json;
    let mut setup = crate::jwt::Setup::new("ws-jwt-cookie");
    let acc = setup.account("A", json!({}));
    let u = nkeys::KeyPair::new_user();
    let jwt = crate::jwt::user_jwt("u", &u, &acc, json!({"bearer_token": true}), json!({}));
    let ws_port = free_port();
    let conf = setup.conf(&format!(
        "websocket {{ port: {ws_port}, no_tls: true, jwt_cookie: \"natsjwt\" }}"
    ));
    let mut answers = Vec::new();
    for (name, exe) in servers() {
        let s = ServerProc::start(&exe, &["-c", conf.to_str().unwrap()]);
        assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(
            ("127.0.0.1", ws_port)
        )
        .is_ok()));
        let mut got = Vec::new();
        for (what, cookie) in [
            ("cookie", format!("Cookie: other=1; natsjwt={jwt}\r\n")),
            ("no cookie", String::new()),
            ("wrong cookie name", format!("Cookie: jwt={jwt}\r\n")),
        ] {
            let (mut w, _) = WsRaw::connect(ws_port, &cookie);
            w.send(&bin(
                b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n",
            ));
            let mut frames = w.rest(Duration::from_millis(500));
            frames.retain(|g| !matches!(g, Got::Frame { payload, .. } if payload == b"PING\r\n"));
            got.push(format!("{what}: {}", joined(&frames)));
        }
        assert!(got[0].contains("PONG"), "{name}: {got:?}");
        answers.push(got);
        drop(s);
    }
    assert_eq!(answers[0], answers[1]);
}

// ---------------------------------------------------------------- limits

/// max_connections refuses a websocket client as the reference does (INFO, -ERR, close
/// frame), and a websocket subscriber that stops reading is cut off as a slow consumer
/// while a healthy one gets everything.
#[test]
fn limits_apply_to_websocket_clients() {
    let mut answers = Vec::new();
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, "no_tls: true", "max_connections: 1");
        // The start-up probe of the ports counts as a connection until the server has
        // let it go: with one connection allowed, `first` must come after that.
        assert!(wait_until(Duration::from_secs(10), || s.http_json("/varz")
            ["connections"]
            == 0));
        let (mut first, _) = WsRaw::connect(s.ws_port, "");
        first.send(&bin(b"CONNECT {\"verbose\":false}\r\nPING\r\n"));
        // Registered once its PONG came (the INFO frame alone can come first).
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("PONG\r\n") {
            match first.frame(Duration::from_secs(10)) {
                Got::Frame { payload, .. } => seen.extend(payload),
                other => panic!("{name}: no PONG: {other:?}"),
            }
        }
        let (mut w, head) = WsRaw::open(s.ws_port, &request(""));
        assert!(head.starts_with("HTTP/1.1 101"), "{name}");
        // Data frames may cut the stream anywhere: compare the bytes after the INFO line
        // (which differs by server), then the close frame and the end.
        let mut data = Vec::new();
        let mut rest = Vec::new();
        // The reference writes its refusal without a writer running: give it time (the
        // wait ends at the close, so a generous one costs nothing; 3 s was once too short
        // for the reference under a full parallel run).
        for g in w.rest(Duration::from_secs(15)) {
            match g {
                Got::Frame { b0: 0x82, payload } => data.extend(payload),
                other => rest.push(other),
            }
        }
        let text = String::from_utf8_lossy(&data).into_owned();
        let after_info = text.split_once("\r\n").map(|x| x.1.to_string());
        answers.push(format!("{after_info:?} {rest:?}"));
        drop(s);

        // A stuck websocket subscriber, a healthy TCP one, a fast TCP publisher.
        let s = WsServer::start(
            &exe,
            "no_tls: true",
            "max_pending: 2MB\nwrite_deadline: \"2s\"",
        );
        let (mut stuck, _) = WsRaw::connect(s.ws_port, "");
        stuck.send(&bin(
            b"CONNECT {\"verbose\":false,\"name\":\"stuck\"}\r\nSUB flood 1\r\nPING\r\n",
        ));
        assert!(matches!(
            stuck.frame(Duration::from_secs(5)),
            Got::Frame { .. }
        ));
        // Stop reading: a tiny receive window makes the server's writes block.
        let rt = rt();
        let _guard = rt.enter();
        let n = 20_000;
        rt.block_on(async {
            let sub_c = async_nats::connect(s.ws_url()).await.unwrap();
            let mut sub = sub_c.subscribe("flood").await.unwrap();
            sub_c.flush().await.unwrap();
            let pub_c = async_nats::connect(s.srv.url()).await.unwrap();
            let payload = bytes::Bytes::from(vec![b'x'; 1024]);
            let reader = tokio::spawn(async move {
                let mut got = 0;
                while got < n {
                    match tokio::time::timeout(Duration::from_secs(20), sub.next()).await {
                        Ok(Some(_)) => got += 1,
                        _ => break,
                    }
                }
                got
            });
            for _ in 0..n {
                pub_c.publish("flood", payload.clone()).await.unwrap();
            }
            pub_c.flush().await.unwrap();
            assert_eq!(
                reader.await.unwrap(),
                n,
                "{name}: the healthy websocket subscriber"
            );
        });
        assert!(
            s.srv
                .proc
                .wait_log("Slow Consumer Detected", Duration::from_secs(20)),
            "{name}: {}",
            s.srv.proc.log_text()
        );
        let connz = s.http_json("/connz?state=closed");
        let reason = connz["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "stuck")
            .map(|c| c["reason"].clone());
        assert!(
            reason
                .as_ref()
                .and_then(|r| r.as_str())
                .is_some_and(|r| r.starts_with("Slow Consumer")),
            "{name}: {reason:?}"
        );
    }
    assert_eq!(answers[0], answers[1]);
}

/// A reload that changes the websocket block is refused with the reference's message.
#[test]
fn reload_refuses_websocket_changes_as_the_reference() {
    let mut msgs = Vec::new();
    for (name, exe) in servers() {
        let dir = TempDir::new("wsreload");
        let ws_port = free_port();
        let text = |compression: bool| {
            format!(
                "websocket {{ port: {ws_port}, no_tls: true, compression: {compression}, allowed_origins: [\"http://a.example\"], handshake_timeout: \"3s\" }}\n"
            )
        };
        let conf = dir.write("r.conf", &text(false));
        let s = ServerProc::start(&exe, &["-c", conf.to_str().unwrap()]);
        dir.write("r.conf", &text(true));
        s.proc.signal(libc::SIGHUP);
        assert!(
            s.proc.wait_log(
                "Failed to reload server configuration",
                Duration::from_secs(10)
            ),
            "{name}: {}",
            s.proc.log_text()
        );
        let log = s.proc.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("Failed to reload"))
            .unwrap()
            .split_once("[ERR] ")
            .unwrap()
            .1
            .replace(&ws_port.to_string(), "PORT");
        msgs.push(line);
    }
    assert_eq!(msgs[0], msgs[1]);
}

/// Bad `websocket {}` blocks: the reference's errors, at load (`-t`) and at start.
#[test]
fn websocket_config_errors_as_the_reference() {
    let load = [
        "websocket { port: 8080, no_tls: true, foo: 1 }",
        "websocket { port: \"x\" }",
        "websocket: 5",
        "websocket { handshake_timeout: \"abc\", no_tls: true, port: 1 }",
        "websocket { handshake_timeout: true }",
        "websocket { allowed_origins: 5 }",
        "websocket { allowed_origins: [\"http://a\", 5 ] }",
        "websocket { no_tls: true, port: 8080, authorization { user: a, password: b, users: [] } }",
        "websocket { no_tls: true, port: 8080, authorization { user: 5 } }",
        "websocket { listen: \"127.0.0.1:x\" }",
    ];
    let start = [
        "websocket { port: PORT }",
        "authorization { users: [ {user: a, password: a} ] }\nwebsocket { port: PORT, no_tls: true, authorization { user: u, password: p } }",
        "authorization { users: [ {user: a, password: a} ] }\nwebsocket { port: PORT, no_tls: true, authorization { token: t } }",
        "websocket { port: PORT, no_tls: true, no_auth_user: nobody }",
        "authorization { users: [ {user: a, password: a} ] }\nwebsocket { port: PORT, no_tls: true, no_auth_user: nobody }",
        "websocket { port: PORT, no_tls: true, jwt_cookie: c }",
    ];
    let dir = TempDir::new("wsconf");
    for (i, text) in load.iter().enumerate() {
        let f = format!("l{i}.conf");
        dir.write(&f, text);
        let mut got = Vec::new();
        for (_, exe) in servers() {
            let out = std::process::Command::new(&exe)
                .current_dir(&dir.0)
                .args(["-c", &f, "-t"])
                .output()
                .unwrap();
            got.push((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        assert_eq!(got[0], got[1], "{text}");
    }
    for text in start {
        let text = text.replace("PORT", &free_port().to_string());
        let conf = dir.write("s.conf", &text);
        let mut got = Vec::new();
        for (_, exe) in servers() {
            let (code, _, err) = run_bounded(
                &exe,
                &["-c", conf.to_str().unwrap(), "-p", &free_port().to_string()],
                Duration::from_secs(10),
            );
            got.push((code, err));
        }
        assert_eq!(got[0], got[1], "{text}");
        assert_eq!(got[0].0, Some(1), "{text}");
    }
}

/// wss with `verify_and_map`: the client certificate names the user, as on the reference.
#[test]
fn wss_verify_and_map_names_the_user() {
    let pki = crate::tls::pki();
    let body = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify_and_map: true }}",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display()
    );
    let top = "authorization { users = [ {user: \"alice@example.com\"} ] }";
    for (name, exe) in servers() {
        let s = WsServer::start(&exe, &body, top);
        let url = format!("wss://localhost:{}", s.ws_port);
        let rt = rt();
        let _guard = rt.enter();
        let _c = rt.block_on(async {
            let without = tokio::time::timeout(
                Duration::from_secs(5),
                async_nats::ConnectOptions::new()
                    .add_root_certificates(pki.ca.clone())
                    .connect(url.clone()),
            )
            .await;
            assert!(
                !matches!(without, Ok(Ok(_))),
                "{name}: connected without a certificate"
            );
            let c = async_nats::ConnectOptions::new()
                .add_root_certificates(pki.ca.clone())
                .add_client_certificate(pki.client_cert.clone(), pki.client_key.clone())
                .name("mapped")
                .connect(url.clone())
                .await
                .unwrap_or_else(|e| panic!("{name}: certificate refused: {e}"));
            c.flush().await.unwrap();
            c
        });
        let connz = s.http_json("/connz?auth=1");
        let conn = connz["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "mapped")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            conn["authorized_user"], "alice@example.com",
            "{name}: {conn}"
        );
        assert_eq!(conn["type"], "websocket", "{name}");
    }
}
