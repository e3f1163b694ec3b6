//! Syslog output (`-s`/`--syslog`, `-r`/`--remote_syslog`), written the way the reference's
//! Go `log/syslog` writer does it, so the same collectors and filters work:
//!
//! - over the network (udp, tcp): `<PRI>2006-01-02T15:04:05Z07:00 HOST TAG[PID]: MSG\n`
//! - to a local socket (`-s`, or `unix://path`): `<PRI>Jan _2 15:04:05 TAG[PID]: MSG\n`
//!
//! The tag is the executable's file name. Local syslog uses facility `daemon`; remote syslog
//! facility 0 (`kern`), as the reference's writers are created with those priorities.
//! Written by hand rather than with a syslog crate: the format above (Go's, which is
//! neither exact RFC 3164 nor RFC 5424), the reconnect-once-on-error behaviour and the
//! error texts operators see at start-up all have to be the reference's.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};

/// Syslog severities used by the server's log levels.
pub const CRIT: u8 = 2;
pub const ERR: u8 = 3;
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;
pub const DEBUG: u8 = 7;

const FACILITY_DAEMON: u8 = 3 << 3;

/// Where a writer delivers: the local daemon's socket, or a remote address.
#[derive(Debug, Clone)]
enum Target {
    Local,
    Net { network: String, addr: String },
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    UnixGram(UnixDatagram),
    UnixStream(UnixStream),
}

impl Conn {
    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Udp(s) => s.send(b).map(|_| ()),
            Conn::Tcp(s) => s.write_all(b),
            Conn::UnixGram(s) => s.send(b).map(|_| ()),
            Conn::UnixStream(s) => s.write_all(b),
        }
    }
}

pub struct Writer {
    target: Target,
    facility: u8,
    /// Local sockets get the short format without the host name.
    local: bool,
    hostname: String,
    tag: String,
    pid: u32,
    conn: Option<Conn>,
}

impl Writer {
    /// `-s`: the local syslog daemon (`/dev/log`, `/var/run/syslog`, `/var/run/log`).
    pub fn local() -> Result<Writer, String> {
        let mut w = Writer::new(Target::Local, FACILITY_DAEMON);
        w.connect().map_err(connect_error)?;
        Ok(w)
    }

    /// `-r URL`: `udp://host:port`, `tcp://host:port` or `unix:///path`.
    pub fn remote(url: &str) -> Result<Writer, String> {
        let (network, addr) = network_and_addr(url)?;
        let mut w = Writer::new(Target::Net { network, addr }, 0);
        w.connect().map_err(connect_error)?;
        Ok(w)
    }

    fn new(target: Target, facility: u8) -> Writer {
        Writer {
            target,
            facility,
            local: false,
            hostname: hostname(),
            tag: tag(),
            pid: std::process::id(),
            conn: None,
        }
    }

    fn connect(&mut self) -> Result<(), String> {
        self.conn = None;
        let (conn, local) = match &self.target {
            Target::Local => (dial_local()?, true),
            Target::Net { network, addr } => {
                let c = dial(network, addr)?;
                (c, network == "unix")
            }
        };
        if self.hostname.is_empty() {
            self.hostname = "localhost".to_string();
        }
        self.local = local;
        self.conn = Some(conn);
        Ok(())
    }

    /// Sends one message; on failure reconnects once and tries again (as Go's writer does).
    pub fn send(&mut self, severity: u8, msg: &str) {
        let line = self.format(severity, msg);
        if let Some(c) = self.conn.as_mut() {
            if c.write(line.as_bytes()).is_ok() {
                return;
            }
        }
        if self.connect().is_ok() {
            if let Some(c) = self.conn.as_mut() {
                let _ = c.write(line.as_bytes());
            }
        }
    }

    fn format(&self, severity: u8, msg: &str) -> String {
        let pri = self.facility | (severity & 7);
        let nl = if msg.ends_with('\n') { "" } else { "\n" };
        if self.local {
            format!("<{pri}>{} {}[{}]: {msg}{nl}", stamp(), self.tag, self.pid)
        } else {
            format!(
                "<{pri}>{} {} {}[{}]: {msg}{nl}",
                rfc3339(),
                self.hostname,
                self.tag,
                self.pid
            )
        }
    }
}

fn connect_error(e: String) -> String {
    format!(
        "error connecting to syslog: {}",
        nats_common::gofmt::quote(&e)
    )
}

/// The executable's file name, the tag the reference uses.
fn tag() -> String {
    let arg0 = std::env::args().next().unwrap_or_default();
    arg0.rsplit('/')
        .find(|p| !p.is_empty())
        .unwrap_or("nats-server")
        .to_string()
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn dial_local() -> Result<Conn, String> {
    const PATHS: [&str; 3] = ["/dev/log", "/var/run/syslog", "/var/run/log"];
    for p in PATHS {
        if let Ok(s) = UnixDatagram::unbound() {
            if s.connect(p).is_ok() {
                return Ok(Conn::UnixGram(s));
            }
        }
    }
    for p in PATHS {
        if let Ok(s) = UnixStream::connect(p) {
            return Ok(Conn::UnixStream(s));
        }
    }
    Err("Unix syslog delivery error".to_string())
}

/// Go's error text for a failed system call (`connection refused`).
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a pointer to a static, NUL-terminated message.
            let msg = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
                .to_string_lossy()
                .into_owned();
            let mut c = msg.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => msg,
            }
        }
        None => e.to_string(),
    }
}

fn dial(network: &str, addr: &str) -> Result<Conn, String> {
    if network == "unix" {
        return UnixStream::connect(addr)
            .map(Conn::UnixStream)
            .map_err(|e| format!("dial unix {addr}: connect: {}", errno_text(&e)));
    }
    if addr.is_empty() {
        return Err(format!("dial {network}: missing address"));
    }
    let Some((host, port)) = crate::cli::split_host_port(addr) else {
        return Err(format!(
            "dial {network}: address {addr}: missing port in address"
        ));
    };
    let port: u16 = match port.parse::<u32>() {
        Ok(p) if p <= 65535 => p as u16,
        _ => return Err(format!("dial {network}: address {port}: invalid port")),
    };
    let addrs: Vec<std::net::SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return Err(format!("dial {network}: lookup {host}: no such host")),
    };
    // IPv4 first, as Go's dialer prefers.
    let mut addrs = addrs;
    addrs.sort_by_key(|a| !a.is_ipv4());
    let mut last = format!("dial {network}: lookup {host}: no such host");
    for a in addrs {
        let shown = crate::server::host_port(&a.ip().to_string(), a.port());
        let r = if network == "udp" {
            let bind: std::net::SocketAddr = if a.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            UdpSocket::bind(bind)
                .and_then(|s| s.connect(a).map(|_| s))
                .map(Conn::Udp)
        } else {
            TcpStream::connect(a).map(Conn::Tcp)
        };
        match r {
            Ok(c) => return Ok(c),
            Err(e) => last = format!("dial {network} {shown}: connect: {}", errno_text(&e)),
        }
    }
    Err(last)
}

/// The reference's reading of the `-r` URL (Go's `net/url` rules for the forms that occur,
/// and its error texts): the network is the scheme; udp and tcp take the host, unix the path.
fn network_and_addr(raw: &str) -> Result<(String, String), String> {
    let u = parse_url(raw).map_err(|e| format!("parse {}: {e}", nats_common::gofmt::quote(raw)))?;
    match u.scheme.as_str() {
        "udp" | "tcp" => Ok((u.scheme, u.host)),
        "unix" => Ok((u.scheme, u.path)),
        other => Err(format!(
            "error invalid network type: {}",
            nats_common::gofmt::quote(other)
        )),
    }
}

struct Url {
    scheme: String,
    host: String,
    path: String,
}

fn parse_url(raw: &str) -> Result<Url, String> {
    let raw = raw.split('#').next().unwrap_or_default();
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".to_string());
    }
    let (scheme, rest) = split_scheme(raw)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split('?').next().unwrap_or_default();
    let mut url = Url {
        scheme,
        host: String::new(),
        path: String::new(),
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Opaque: no host and no path.
            return Ok(url);
        }
        if rest.split('/').next().unwrap_or_default().contains(':') {
            return Err("first path segment in URL cannot contain colon".to_string());
        }
    }
    let mut rest = rest;
    if let Some(auth) = rest.strip_prefix("//") {
        if !url.scheme.is_empty() || !rest.starts_with("///") {
            let (authority, after) = match auth.find('/') {
                Some(i) => (&auth[..i], &auth[i..]),
                None => (auth, ""),
            };
            let hostpart = authority.rsplit('@').next().unwrap_or_default();
            url.host = parse_host(hostpart)?;
            rest = after;
        }
    }
    url.path = unescape(rest)?;
    Ok(url)
}

fn split_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".to_string());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn valid_optional_port(p: &str) -> bool {
    match p.strip_prefix(':') {
        None => p.is_empty(),
        Some(d) => d.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = host.rfind(']') else {
            return Err("missing ']' in host".to_string());
        };
        let port = &host[i + 1..];
        if !valid_optional_port(port) {
            return Err(format!(
                "invalid port {} after host",
                nats_common::gofmt::quote(port)
            ));
        }
    } else if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_optional_port(port) {
            return Err(format!(
                "invalid port {} after host",
                nats_common::gofmt::quote(port)
            ));
        }
    }
    for (i, c) in host.bytes().enumerate() {
        if c == b'%' {
            check_escape(host, i)?;
            continue;
        }
        let ok = c >= 0x80 || c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c);
        if !ok {
            return Err(format!(
                "invalid character {} in host name",
                nats_common::gofmt::quote(&host[i..i + 1])
            ));
        }
    }
    unescape(host)
}

fn check_escape(s: &str, i: usize) -> Result<(), String> {
    let b = s.as_bytes();
    if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
        let end = (i + 3).min(s.len());
        return Err(format!(
            "invalid URL escape {}",
            nats_common::gofmt::quote(&String::from_utf8_lossy(&b[i..end]))
        ));
    }
    Ok(())
}

fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            check_escape(s, i)?;
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn local_tm() -> libc::tm {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we pass and reads the given time_t.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    }
}

/// Go's `time.RFC3339` in local time: `2006-01-02T15:04:05Z07:00`.
fn rfc3339() -> String {
    let tm = local_tm();
    let off = tm.tm_gmtoff;
    let zone = if off == 0 {
        "Z".to_string()
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.abs();
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// Go's `time.Stamp` in local time: `Jan _2 15:04:05`.
fn stamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let tm = local_tm();
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_errors_as_the_reference() {
        assert_eq!(
            network_and_addr("udp://127.0.0.1:514").unwrap(),
            ("udp".into(), "127.0.0.1:514".into())
        );
        assert_eq!(
            network_and_addr("UDP://h:1").unwrap(),
            ("udp".into(), "h:1".into())
        );
        assert_eq!(
            network_and_addr("unix:///tmp/x").unwrap(),
            ("unix".into(), "/tmp/x".into())
        );
        let err = |u: &str| network_and_addr(u).unwrap_err();
        assert_eq!(
            err("syslog://h:1"),
            "error invalid network type: \"syslog\""
        );
        assert_eq!(
            err("localhost:514"),
            "error invalid network type: \"localhost\""
        );
        assert_eq!(err("foo"), "error invalid network type: \"\"");
        assert_eq!(
            err("127.0.0.1:514"),
            "parse \"127.0.0.1:514\": first path segment in URL cannot contain colon"
        );
        assert_eq!(err(":foo"), "parse \":foo\": missing protocol scheme");
        assert_eq!(
            err("udp://127.0.0.1:abc"),
            "parse \"udp://127.0.0.1:abc\": invalid port \":abc\" after host"
        );
        assert_eq!(
            err("udp://[::1"),
            "parse \"udp://[::1\": missing ']' in host"
        );
        assert_eq!(
            err("udp://host name:1"),
            "parse \"udp://host name:1\": invalid character \" \" in host name"
        );
        assert_eq!(err("%zz"), "parse \"%zz\": invalid URL escape \"%zz\"");
    }

    #[test]
    fn dial_errors_as_the_reference() {
        let e = |u: &str| Writer::remote(u).err().unwrap();
        assert_eq!(
            e("udp://"),
            "error connecting to syslog: \"dial udp: missing address\""
        );
        assert_eq!(
            e("udp://localhost"),
            "error connecting to syslog: \"dial udp: address localhost: missing port in address\""
        );
        assert_eq!(
            e("udp://127.0.0.1:99999"),
            "error connecting to syslog: \"dial udp: address 99999: invalid port\""
        );
        assert_eq!(
            e("unix:///nonexistent/sock"),
            "error connecting to syslog: \"dial unix /nonexistent/sock: connect: no such file or directory\""
        );
    }

    #[test]
    fn stamps_have_go_layouts() {
        let s = stamp();
        assert_eq!(s.len(), 15, "{s}");
        let r = rfc3339();
        assert!(r.len() == 20 || r.len() == 25, "{r}");
        assert_eq!(&r[10..11], "T");
    }
}
