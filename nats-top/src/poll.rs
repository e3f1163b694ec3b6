//! HTTP(S) polling of the monitoring endpoints, plus reverse DNS for the HOST column.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nats_common::monitor::{Connz, Healthz, Routez, Varz};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::app::{Links, PollResult, Query, Snapshot};

/// TLS client settings for `-ms`.
#[derive(Debug, Clone, Default)]
pub struct TlsOpts {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub cacert: Option<PathBuf>,
    pub insecure: bool,
}

/// Builds the HTTP client. A request may take at most `timeout`, so a hung server cannot stall
/// the refresh of the others.
pub fn build_client(tls: &TlsOpts, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .danger_accept_invalid_certs(tls.insecure);
    if let Some(ca) = &tls.cacert {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("parsing CA certificates in {}", ca.display()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let mut pem =
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).with_context(|| format!("reading {}", key.display()))?);
            let id = reqwest::Identity::from_pem(&pem)
                .context("loading the client certificate and key")?;
            b = b.identity(id);
        }
        (None, None) => {}
        _ => anyhow::bail!("-cert and -key must be given together"),
    }
    b.build().context("building the HTTP client")
}

/// A short description of a request failure: the innermost cause is the useful part
/// (`Connection refused (os error 111)`), the outer layers only repeat the URL.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_string();
    }
    let mut msg = err.to_string();
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

/// GETs `url` and decodes the JSON body. Non-200 answers become
/// `stats request failed <code>: "<first line of body>"` as in the original.
pub async fn get_json<T: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", describe(&e)))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("{url}: {}", describe(&e)))?;
    if status != reqwest::StatusCode::OK {
        let text = String::from_utf8_lossy(&body);
        let first: String = text.lines().next().unwrap_or("").chars().take(80).collect();
        return Err(format!(
            "stats request failed {}: \"{}\"",
            status.as_u16(),
            first
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: invalid JSON: {e}"))
}

/// `/healthz` answers 503 with a JSON body when unhealthy; that body is the answer we want.
async fn get_health(client: &reqwest::Client, base: &str) -> Option<Healthz> {
    let resp = client.get(format!("{base}/healthz")).send().await.ok()?;
    let body = resp.bytes().await.ok()?;
    serde_json::from_slice(&body).ok()
}

/// The `/connz` URL for the current settings.
pub fn connz_url(base: &str, q: &Query) -> String {
    let mut url = format!("{base}/connz?limit={}&sort={}", q.limit, q.sort.as_str());
    if q.subs {
        url.push_str("&subs=1");
    }
    url
}

/// One poll of one server: `/varz` must answer; `/connz` only when `with_connz`; `/routez` and
/// `/healthz` are best effort (a server without them still shows up).
pub async fn poll_server(
    client: &reqwest::Client,
    base: &str,
    q: &Query,
    with_connz: bool,
    dns: &mut HashMap<String, String>,
) -> Result<Snapshot, String> {
    let varz: Varz = get_json(client, &format!("{base}/varz")).await?;
    let connz = if with_connz {
        Some(get_json::<Connz>(client, &connz_url(base, q)).await?)
    } else {
        None
    };
    let routez = get_json::<Routez>(client, &format!("{base}/routez"))
        .await
        .ok();
    let healthz = get_health(client, base).await;
    // Best effort too, and only asked of a server that has gateways or leaf nodes.
    let mut links = Links::default();
    if !varz.gateway.name.is_empty() {
        links.gatewayz = get_json(client, &format!("{base}/gatewayz")).await.ok();
    }
    if varz.leafnodes > 0 {
        links.leafz = get_json(client, &format!("{base}/leafz")).await.ok();
    }
    let mut names = HashMap::new();
    if q.lookup {
        if let Some(c) = &connz {
            for conn in &c.connections {
                if !dns.contains_key(&conn.ip) {
                    let ip = conn.ip.clone();
                    let name = tokio::task::spawn_blocking(move || reverse_lookup(&ip))
                        .await
                        .ok()
                        .flatten();
                    // Cache misses too, so an IP without a name is not looked up every poll.
                    dns.insert(conn.ip.clone(), name.unwrap_or_default());
                }
                if let Some(n) = dns.get(&conn.ip).filter(|n| !n.is_empty()) {
                    names.insert(conn.ip.clone(), n.clone());
                }
            }
        }
    }
    Ok(Snapshot {
        varz,
        connz,
        routez,
        healthz,
        links,
        names,
    })
}

/// What every per-server polling task shares.
#[derive(Clone)]
pub struct Poller {
    pub client: reqwest::Client,
    pub query: watch::Receiver<Query>,
    pub delay: Duration,
    pub tx: Sender<PollResult>,
}

impl Poller {
    /// Polls server `idx` at `base` every `delay` (and at once when the settings change) until
    /// `stop` is set or the receiving side is gone.
    pub fn spawn(
        &self,
        rt: &tokio::runtime::Handle,
        idx: usize,
        base: String,
        stop: Arc<AtomicBool>,
    ) {
        let Poller {
            client,
            mut query,
            delay,
            tx,
        } = self.clone();
        rt.spawn(async move {
            let mut dns = HashMap::new();
            loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let q = query.borrow_and_update().clone();
                let outcome = poll_server(&client, &base, &q, q.active == idx, &mut dns).await;
                let res = PollResult {
                    target: idx,
                    at: Instant::now(),
                    outcome,
                };
                if tx.send(res).is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    changed = query.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Reverse DNS of an IP via the system resolver (getnameinfo honours /etc/hosts like Go does).
pub fn reverse_lookup(ip: &str) -> Option<String> {
    let addr: IpAddr = ip.parse().ok()?;
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: the sockaddr structs are zero-initialised plain C structs filled with valid
    // values; getnameinfo only reads `len` bytes of the address and writes at most `host.len()`
    // bytes (NUL-terminated) into `host`.
    let rc = unsafe {
        match addr {
            IpAddr::V4(v4) => {
                let mut sin: libc::sockaddr_in = std::mem::zeroed();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
                libc::getnameinfo(
                    &sin as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
            IpAddr::V6(v6) => {
                let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_addr.s6_addr = v6.octets();
                libc::getnameinfo(
                    &sin6 as *const libc::sockaddr_in6 as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    let name = name.to_string_lossy().trim_end_matches('.').to_string();
    if name.is_empty() {
        None
    } else {
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::SortKey;

    #[test]
    fn connz_query_string() {
        let q = Query {
            limit: 10,
            sort: SortKey::BytesTo,
            subs: true,
            lookup: false,
            active: 0,
        };
        assert_eq!(
            connz_url("http://h:1", &q),
            "http://h:1/connz?limit=10&sort=bytes_to&subs=1"
        );
    }

    #[test]
    fn lookup_of_garbage_is_none() {
        assert_eq!(reverse_lookup("not an ip"), None);
    }

    #[tokio::test]
    async fn unreachable_server_is_an_error_not_a_panic() {
        // Port 1 on localhost is essentially never listening.
        let client = build_client(&TlsOpts::default(), Duration::from_secs(2)).expect("client");
        let err = get_json::<Varz>(&client, "http://127.0.0.1:1/varz")
            .await
            .expect_err("must fail");
        assert!(err.starts_with("http://127.0.0.1:1/varz: "), "{err}");
    }
}
