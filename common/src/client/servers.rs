//! Server URLs and the pool of servers a client connects and reconnects to.

use rand::seq::SliceRandom;
use rand::Rng;
use std::fmt;
use std::time::{Duration, Instant};

pub const DEFAULT_PORT: u16 = 4222;

/// One server address: `nats://user:pass@host:port`, `tls://host`, `host:port`, `[::1]:4222`,
/// `ws://host:port`, `wss://host` (websocket; default ports 80 and 443 as nats.go has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// `tls://` or `wss://` was given: TLS is required even if the server does not ask for it.
    pub tls: bool,
    /// `ws://` or `wss://`: the protocol runs over websocket frames.
    pub ws: bool,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
    /// `nats://token@host`: a user part without a password is a token.
    pub token: Option<String>,
}

impl ServerAddr {
    pub fn parse(url: &str) -> Result<ServerAddr, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("empty server URL".into());
        }
        let (tls, ws, rest) = match url.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "nats" => (false, false, rest),
                "tls" => (true, false, rest),
                "ws" => (false, true, rest),
                "wss" => (true, true, rest),
                other => return Err(format!("unsupported URL scheme {other:?} in {url:?}")),
            },
            None => (false, false, url),
        };
        // Drop any path or query; only the authority matters.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let default_port = match (ws, tls) {
            (true, true) => 443,
            (true, false) => 80,
            _ => DEFAULT_PORT,
        };
        let (host, port) = split_host_port(hostport, default_port)
            .ok_or_else(|| format!("invalid server URL {url:?}"))?;
        let (mut user, mut pass, mut token) = (None, None, None);
        if let Some(ui) = userinfo {
            match ui.split_once(':') {
                Some((u, p)) => {
                    user = Some(percent_decode(u));
                    pass = Some(percent_decode(p));
                }
                None if !ui.is_empty() => token = Some(percent_decode(ui)),
                None => {}
            }
        }
        Ok(ServerAddr {
            tls,
            ws,
            host,
            port,
            user,
            pass,
            token,
        })
    }

    /// `host:port` as used for dialing (IPv6 bracketed).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn same_endpoint(&self, other: &ServerAddr) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }
}

/// Shown without credentials, so it is safe in logs: `nats://127.0.0.1:4222`.
impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.ws, self.tls) {
            (true, true) => "wss",
            (true, false) => "ws",
            (false, true) => "tls",
            (false, false) => "nats",
        };
        write!(f, "{scheme}://{}", self.host_port())
    }
}

fn split_host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address without brackets has several colons: no port then.
        Some((h, _)) if h.contains(':') => Some((s.to_string(), default_port)),
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((s.to_string(), default_port)),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a comma-separated server list.
pub fn parse_server_list(list: &str) -> Result<Vec<ServerAddr>, String> {
    let addrs: Vec<ServerAddr> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(ServerAddr::parse)
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err("no servers specified".into());
    }
    Ok(addrs)
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub addr: ServerAddr,
    /// Learned from INFO `connect_urls` rather than configured.
    pub implicit: bool,
    /// Failed attempts since the last successful connect.
    pub failures: u32,
    pub last_attempt: Option<Instant>,
}

/// The servers we may connect to, in the order they will be tried.
#[derive(Debug, Default)]
pub(crate) struct ServerPool {
    pub entries: Vec<Entry>,
    randomize: bool,
}

impl ServerPool {
    pub fn new(addrs: Vec<ServerAddr>, randomize: bool) -> Self {
        let mut entries: Vec<Entry> = addrs
            .into_iter()
            .map(|addr| Entry {
                addr,
                implicit: false,
                failures: 0,
                last_attempt: None,
            })
            .collect();
        if randomize {
            entries.shuffle(&mut rand::thread_rng());
        }
        ServerPool { entries, randomize }
    }

    /// Merges a server's `connect_urls` into the pool: adds unknown ones (inheriting the
    /// current scheme) and forgets learned ones the cluster no longer advertises.
    /// Returns true when something was added.
    pub fn merge_discovered(&mut self, urls: &[String], current: &ServerAddr) -> bool {
        let discovered: Vec<ServerAddr> = urls
            .iter()
            .filter_map(|u| ServerAddr::parse(u).ok())
            .map(|mut a| {
                a.tls = current.tls;
                a.ws = current.ws;
                a
            })
            .collect();
        self.entries.retain(|e| {
            !e.implicit
                || e.addr.same_endpoint(current)
                || discovered.iter().any(|d| d.same_endpoint(&e.addr))
        });
        let mut fresh: Vec<Entry> = discovered
            .into_iter()
            .filter(|d| !self.entries.iter().any(|e| e.addr.same_endpoint(d)))
            .map(|addr| Entry {
                addr,
                implicit: true,
                failures: 0,
                last_attempt: None,
            })
            .collect();
        let added = !fresh.is_empty();
        if self.randomize {
            fresh.shuffle(&mut rand::thread_rng());
        }
        self.entries.extend(fresh);
        added
    }

    /// Moves the server we just lost to the back so others are tried first.
    pub fn demote(&mut self, addr: &ServerAddr) {
        if let Some(i) = self.entries.iter().position(|e| e.addr.same_endpoint(addr)) {
            let e = self.entries.remove(i);
            self.entries.push(e);
        }
    }

    /// The next server to try and how long to wait before trying it. Servers that failed
    /// more than `max_reconnects` times in a row are dropped; `None` when none is left.
    pub fn next(
        &mut self,
        max_reconnects: Option<u32>,
        wait: Duration,
        jitter: Duration,
    ) -> Option<(ServerAddr, Duration)> {
        if let Some(max) = max_reconnects {
            self.entries.retain(|e| e.failures <= max);
        }
        let mut e = self.entries.first()?.clone();
        let delay = match e.last_attempt {
            Some(t) => {
                let since = t.elapsed();
                let extra = if jitter.is_zero() {
                    Duration::ZERO
                } else {
                    rand::thread_rng().gen_range(Duration::ZERO..jitter)
                };
                wait.saturating_sub(since) + extra
            }
            None => Duration::ZERO,
        };
        e.last_attempt = Some(Instant::now() + delay);
        // Rotate: the chosen server goes to the back for the next round.
        self.entries.remove(0);
        self.entries.push(e.clone());
        Some((e.addr, delay))
    }

    pub fn record(&mut self, addr: &ServerAddr, ok: bool) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.addr.same_endpoint(addr)) {
            if ok {
                e.failures = 0;
            } else {
                e.failures += 1;
            }
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.addr.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_urls() {
        let a = ServerAddr::parse("ws://127.0.0.1:8080").unwrap();
        assert!(a.ws && !a.tls);
        assert_eq!(a.port, 8080);
        assert_eq!(a.to_string(), "ws://127.0.0.1:8080");
        let a = ServerAddr::parse("wss://u:p@example.com").unwrap();
        assert!(a.ws && a.tls);
        assert_eq!(a.port, 443);
        assert_eq!(a.to_string(), "wss://example.com:443");
        assert_eq!(ServerAddr::parse("ws://h").unwrap().port, 80);
        // Learned URLs take the scheme of the connection they came on.
        let mut pool = ServerPool::new(vec![a.clone()], false);
        pool.merge_discovered(&["10.0.0.2:8443".to_string()], &a);
        assert!(pool.entries.iter().all(|e| e.addr.ws && e.addr.tls));
    }

    #[test]
    fn parses_url_forms() {
        let a = ServerAddr::parse("nats://u:p%40ss@example.com:4333").unwrap();
        assert_eq!(
            (
                a.host.as_str(),
                a.port,
                a.user.as_deref(),
                a.pass.as_deref(),
                a.tls
            ),
            ("example.com", 4333, Some("u"), Some("p@ss"), false)
        );
        let a = ServerAddr::parse("tls://tok@host").unwrap();
        assert!(a.tls);
        assert_eq!(a.token.as_deref(), Some("tok"));
        assert_eq!(a.port, 4222);
        let a = ServerAddr::parse("127.0.0.1:5000").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 5000));
        assert_eq!(a.to_string(), "nats://127.0.0.1:5000");
        let a = ServerAddr::parse("[fd00::2]:24230").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("fd00::2", 24230));
        assert_eq!(a.host_port(), "[fd00::2]:24230");
        let a = ServerAddr::parse("nats://localhost").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("localhost", 4222));
        assert!(ServerAddr::parse("nats://h:notaport").is_err());
        assert!(ServerAddr::parse("http://h:1").is_err());
        assert!(ServerAddr::parse("").is_err());
        let l = parse_server_list("nats://a:1, b:2,,tls://c:3").unwrap();
        assert_eq!(l.len(), 3);
        assert!(parse_server_list(" , ").is_err());
    }

    #[test]
    fn pool_learns_and_rotates() {
        let a = ServerAddr::parse("nats://127.0.0.1:1").unwrap();
        let mut pool = ServerPool::new(vec![a.clone()], false);
        assert!(pool.merge_discovered(&["127.0.0.1:1".into(), "127.0.0.1:2".into()], &a));
        assert_eq!(
            pool.urls(),
            vec!["nats://127.0.0.1:1", "nats://127.0.0.1:2"]
        );
        pool.demote(&a);
        let (next, delay) = pool
            .next(None, Duration::from_secs(2), Duration::ZERO)
            .unwrap();
        assert_eq!(next.port, 2);
        assert_eq!(delay, Duration::ZERO);
        // The learned server vanishes from connect_urls: it is forgotten.
        assert!(!pool.merge_discovered(&["127.0.0.1:1".into()], &a));
        assert_eq!(pool.urls(), vec!["nats://127.0.0.1:1"]);
        pool.record(&a, false);
        pool.record(&a, false);
        assert!(pool.next(Some(1), Duration::ZERO, Duration::ZERO).is_none());
    }
}
