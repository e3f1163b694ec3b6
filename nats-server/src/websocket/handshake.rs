//! The HTTP side of a websocket connection: reading the upgrade request, the reference's
//! checks (with its HTTP statuses), the origin policy and the 101 answer.

use crate::options::WebsocketOptions;
use std::time::SystemTime;

/// Go's http server refuses request headers beyond 1 MB (plus its 4 KB slack).
pub const MAX_HEADER_BYTES: usize = (1 << 20) + 4096;

/// A parsed request: what the checks need.
pub struct Request {
    pub method: String,
    /// HTTP minor version (0 or 1).
    pub version: u8,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head (request line and headers, with the blank line).
    pub head_len: usize,
}

impl Request {
    /// Every value of header `name` (case-insensitive).
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name`, or "".
    pub fn get<'a>(&'a self, name: &str) -> &'a str {
        self.all(name).next().unwrap_or("")
    }

    /// Whether a comma-separated token of header `name` equals `value` (any case).
    pub fn contains(&self, name: &str, value: &str) -> bool {
        self.all(name).any(|v| {
            v.split(',')
                .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(value))
        })
    }

    /// The request asks for permessage-deflate.
    pub fn wants_deflate(&self) -> bool {
        self.all("Sec-WebSocket-Extensions").any(|v| {
            v.split(',').any(|ext| {
                ext.split(';').any(|p| {
                    p.trim_matches([' ', '\t'])
                        .eq_ignore_ascii_case("permessage-deflate")
                })
            })
        })
    }

    /// The connection stays open after an error answer (HTTP keep-alive).
    pub fn keep_alive(&self) -> bool {
        if self.contains("Connection", "close") {
            return false;
        }
        self.version >= 1 || self.contains("Connection", "keep-alive")
    }

    pub fn content_length(&self) -> Option<usize> {
        let v = self.get("Content-Length");
        if v.is_empty() {
            Some(0)
        } else {
            v.trim().parse().ok()
        }
    }
}

/// What reading a request head gave.
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    Request(Request),
    /// Not HTTP: answered with a plain 400 and the connection closed.
    Malformed,
    /// HTTP/1.1 without a Host header (Go's server refuses it itself).
    MissingHost,
}

pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(n)) => {
            let r = Request {
                method: req.method.unwrap_or("").to_string(),
                version: req.version.unwrap_or(1),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
                head_len: n,
            };
            if r.version >= 1
                && !r
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("Host"))
            {
                return Parsed::MissingHost;
            }
            Parsed::Request(r)
        }
        Err(_) => Parsed::Malformed,
    }
}

/// Go's answer to a request it cannot parse.
pub const MALFORMED: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";
pub const MISSING_HOST: &[u8] =
    b"HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host header";
pub const HEADERS_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large";

/// The reference's refusal of an upgrade (Go's `http.Error` with the status text), in the
/// request's HTTP version; `close` when the connection ends after it.
pub fn error_response(status: u16, version: u8, close: bool) -> Vec<u8> {
    let text = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let date = httpdate::fmt_http_date(SystemTime::now());
    // An HTTP/1.0 request is answered in 1.0, which closes without saying so.
    let conn = if close && version >= 1 {
        "Connection: close\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.{version} {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\nDate: {date}\r\nContent-Length: {}\r\n{conn}\r\n{text}\n",
        text.len() + 1
    )
    .into_bytes()
}

/// A refused upgrade: the HTTP status and the reason logged.
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// The reference's checks of an upgrade request, in its order (RFC 6455 4.2.1).
pub fn check(req: &Request, opts: &WebsocketOptions, tls: bool) -> Result<(), Refusal> {
    if req.method != "GET" {
        return Err(refuse(405, "request method must be GET"));
    }
    if req.get("Host").is_empty() {
        return Err(refuse(400, "'Host' missing in request"));
    }
    if !req.contains("Upgrade", "websocket") {
        return Err(refuse(400, "invalid value for header 'Upgrade'"));
    }
    if !req.contains("Connection", "Upgrade") {
        return Err(refuse(400, "invalid value for header 'Connection'"));
    }
    if req.get("Sec-WebSocket-Key").is_empty() {
        return Err(refuse(400, "key missing"));
    }
    if !req.contains("Sec-WebSocket-Version", "13") {
        return Err(refuse(400, "invalid version"));
    }
    if let Err(e) = check_origin(req, opts, tls) {
        return Err(refuse(403, format!("origin not allowed: {e}")));
    }
    Ok(())
}

/// Lower-cased host and the port (the scheme's default when absent).
fn host_and_port(tls: bool, hostport: &str) -> Result<(String, String), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, "")) => (h.to_string(), String::new()),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h.to_string(), p.to_string()),
                None => return Err(format!("address {hostport}: missing port in address")),
            },
            None => return Err(format!("address {hostport}: missing ']' in address")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!("address {hostport}: too many colons in address"))
            }
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.to_string(), String::new()),
        }
    };
    let port = if port.is_empty() {
        if tls { "443" } else { "80" }.to_string()
    } else {
        port
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// `scheme://host[:port][/...]`, as Go's url.ParseRequestURI reads an origin.
fn parse_origin(origin: &str) -> Result<(String, String), String> {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!("parse {origin:?}: invalid URI for request"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    Ok((scheme.to_ascii_lowercase(), host.to_string()))
}

/// One `allowed_origins` entry: host -> (scheme, port).
pub fn allowed_origin(entry: &str) -> Option<(String, String, String)> {
    let (scheme, host) = parse_origin(entry).ok()?;
    let (h, p) = host_and_port(scheme == "https", &host).ok()?;
    Some((h, scheme, p))
}

fn check_origin(req: &Request, opts: &WebsocketOptions, tls: bool) -> Result<(), String> {
    if !opts.same_origin && opts.allowed_origins.is_empty() {
        return Ok(());
    }
    let mut origin = req.get("Origin");
    if origin.is_empty() {
        origin = req.get("Sec-WebSocket-Origin");
    }
    if origin.is_empty() {
        return Ok(());
    }
    let (scheme, host) = parse_origin(origin)?;
    let (oh, op) = host_and_port(scheme == "https", &host)?;
    if opts.same_origin {
        let (rh, rp) = host_and_port(tls, req.get("Host"))?;
        if oh != rh || op != rp {
            return Err("not same origin".into());
        }
    }
    if !opts.allowed_origins.is_empty() {
        // As the reference's map, a later entry for the same host replaces an earlier one.
        let entry = opts
            .allowed_origins
            .iter()
            .rev()
            .filter_map(|e| allowed_origin(e))
            .find(|(h, _, _)| *h == oh);
        match entry {
            Some((_, s, p)) if s == scheme && p == op => {}
            _ => return Err("not in the allowed list".into()),
        }
    }
    Ok(())
}

/// The 101 answer.
pub fn switching(key: &str, compress: bool, no_masking: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        nats_common::ws::accept_key(key)
    );
    if compress {
        r.push_str("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n");
    }
    if no_masking {
        r.push_str("Nats-No-Masking: true\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str) -> Request {
        let text = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n{extra}\r\n");
        match parse(text.as_bytes()) {
            Parsed::Request(r) => r,
            _ => panic!("not parsed"),
        }
    }

    #[test]
    fn origins_as_the_reference() {
        let mut o = WebsocketOptions {
            same_origin: true,
            ..Default::default()
        };
        assert!(check_origin(&req("Origin: http://127.0.0.1:8080\r\n"), &o, false).is_ok());
        assert!(check_origin(&req("Origin: http://127.0.0.1:8081\r\n"), &o, false).is_err());
        assert!(check_origin(&req(""), &o, false).is_ok());
        o.same_origin = false;
        o.allowed_origins = vec!["https://example.com".into()];
        assert!(check_origin(&req("Origin: https://example.com\r\n"), &o, false).is_ok());
        assert!(check_origin(&req("Origin: https://EXAMPLE.com:443\r\n"), &o, false).is_ok());
        assert!(check_origin(&req("Origin: http://example.com\r\n"), &o, false).is_err());
        assert!(check_origin(&req("Origin: https://other.com\r\n"), &o, false).is_err());
    }

    #[test]
    fn header_tokens() {
        let r = req("Connection: keep-alive, Upgrade\r\nSec-WebSocket-Extensions: x, permessage-deflate; client_max_window_bits\r\n");
        assert!(r.contains("connection", "upgrade"));
        assert!(r.wants_deflate());
    }
}
