//! HTTP monitoring (`-m` / `-ms`): `/`, `/varz`, `/connz`, `/routez`, `/subsz`
//! (`/subscriptionsz`) and `/healthz`, answering with the reference server's JSON shapes,
//! query parameters, error texts, JSONP and request counters; `/metrics` serves the same
//! data to Prometheus under prometheus-nats-exporter's names (metrics.rs).
//!
//! Everything here only reads what the message path already maintains (atomics and
//! per-connection state); no lock is added to the message path for monitoring.

mod absent;
mod accountz;
mod connz;
mod gatewayz;
mod healthz;
mod jsz;
mod leafz;
mod metrics;
mod procstat;
mod query;
mod routez;
mod subsz;
mod varz;

use crate::server::{host_port, Server};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use parking_lot::Mutex;
use query::Params;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::info;

// What the system account answers with: the same data as the pages.
pub use accountz::{account_info, account_statz, accountz_data, count_client_subs};
pub use connz::{connz as connz_data, ConnzOptions};
pub use gatewayz::gatewayz_data;
pub use jsz::jsz_data;
pub use leafz::{leafz_data, leafz_with};
pub use procstat::{cores, rss_bytes};
pub use routez::routez as routez_data;
pub use subsz::subsz_data;
pub use varz::varz as varz_data;

/// Default page size of /connz and /subsz.
pub const DEFAULT_LIST_SIZE: i64 = 1024;

/// Shared state of the monitoring handlers.
pub struct Monitor {
    pub server: Arc<Server>,
    /// Requests served per endpoint, shown in /varz `http_req_stats`.
    req_stats: Mutex<BTreeMap<String, u64>>,
    cpu: procstat::CpuMeter,
}

impl Monitor {
    /// The monitoring state of `server`, answering both HTTP and system account requests
    /// (it samples the process's CPU once a second).
    pub fn new(server: &Arc<Server>) -> Arc<Monitor> {
        let mon = Arc::new(Monitor {
            server: server.clone(),
            req_stats: Mutex::new(BTreeMap::new()),
            cpu: procstat::CpuMeter::new(),
        });
        procstat::spawn_sampler(&mon);
        mon
    }

    /// The process's CPU use over the last second, in percent.
    pub fn cpu_percent(&self) -> f64 {
        self.cpu.percent()
    }

    fn count(&self, path: &str) {
        *self.req_stats.lock().entry(path.to_string()).or_insert(0) += 1;
    }

    fn req_stats(&self) -> BTreeMap<String, u64> {
        self.req_stats.lock().clone()
    }
}

/// Starts the monitoring listener when `-m`/`-ms` asked for one; logs
/// `Starting http monitor on host:port`. Errors carry the reference's wording and are fatal
/// to the caller.
pub async fn start(mon: &Arc<Monitor>) -> Result<Option<SocketAddr>, String> {
    let opts = mon.server.opts();
    if opts.http_port == 0 && opts.https_port == 0 {
        return Ok(None);
    }
    if opts.http_port != 0 && opts.https_port != 0 {
        return Err(format!(
            "can't specify both HTTP ({}) and HTTPs ({}) ports",
            opts.http_port, opts.https_port
        ));
    }
    let secure = opts.https_port != 0;
    let tls = if secure {
        match https_acceptor(&opts)? {
            Some(a) => Some(a),
            None => return Err("TLS cert and key required for HTTPS".to_string()),
        }
    } else {
        None
    };
    let host = if opts.http_host.is_empty() {
        opts.host.clone()
    } else {
        opts.http_host.clone()
    };
    let port = if secure {
        opts.https_port
    } else {
        opts.http_port
    };
    // -1 asks for a random port.
    let port: u16 = if port < 0 { 0 } else { port as u16 };
    let bind = host_port(&host, port);
    let listener = crate::netutil::listen(&bind).await.map_err(|e| {
        format!(
            "can't listen to the monitor port: listen tcp {bind}: {}",
            crate::netutil::go_listen_error(&e)
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    info!(
        "Starting {} monitor on {}",
        if secure { "https" } else { "http" },
        host_port(&host, addr.port())
    );
    let app = router(&opts.http_base_path, mon.clone());
    match tls {
        None => {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("http monitor stopped: {e}");
                }
            });
        }
        Some(setup) => {
            tokio::spawn(serve_tls(listener, setup, app));
        }
    }
    Ok(Some(addr))
}

/// The TLS settings for `-ms`: the client port's TLS configuration; `None` when no
/// certificate is configured.
fn https_acceptor(opts: &crate::options::Options) -> Result<Option<TlsSetup>, String> {
    let Some(t) = opts.tls.as_ref() else {
        return Ok(None);
    };
    if t.cert_file.is_none() || t.key_file.is_none() {
        return Ok(None);
    }
    let cfg = crate::tls::https_server_config(t)?;
    Ok(Some(TlsSetup {
        cfg,
        timeout: t.timeout,
    }))
}

struct TlsSetup {
    cfg: Arc<rustls::ServerConfig>,
    timeout: std::time::Duration,
}

/// Serves HTTPS: one TLS handshake then HTTP/1.1 per accepted connection.
async fn serve_tls(listener: TcpListener, tls: TlsSetup, app: Router) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let cfg = tls.cfg.clone();
        let timeout = tls.timeout;
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(stream) = crate::tls::accept(cfg, stream, timeout).await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// `base` + `p`, the way the reference joins its `http_base_path`.
fn join_base(base: &str, p: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return p.to_string();
    }
    let base = if base.starts_with('/') {
        base.to_string()
    } else {
        format!("/{base}")
    };
    if p == "/" {
        base
    } else {
        format!("{base}{p}")
    }
}

fn router(base: &str, mon: Arc<Monitor>) -> Router {
    Router::new()
        .route(&join_base(base, "/"), any(root))
        .route(&join_base(base, "/varz"), any(varz::handle))
        .route(&join_base(base, "/connz"), any(connz::handle))
        .route(&join_base(base, "/routez"), any(routez::handle))
        .route(&join_base(base, "/subsz"), any(subsz::handle))
        .route(&join_base(base, "/subscriptionsz"), any(subsz::handle))
        .route(&join_base(base, "/healthz"), any(healthz::handle))
        .route(&join_base(base, "/metrics"), any(metrics::handle))
        .route(&join_base(base, "/jsz"), any(jsz::jsz))
        .route(&join_base(base, "/accountz"), any(accountz::accountz))
        .route(&join_base(base, "/accstatz"), any(accountz::accstatz))
        .route(&join_base(base, "/leafz"), any(leafz::leafz))
        .route(&join_base(base, "/gatewayz"), any(gatewayz::gatewayz))
        .route(&join_base(base, "/stacksz"), any(absent::stacksz))
        .route(&join_base(base, "/ipqueuesz"), any(absent::ipqueuesz))
        .fallback(not_found)
        .with_state(mon)
}

type Mon = State<Arc<Monitor>>;

/// Go's `http.ServeMux` path cleaning: `.` and `..` resolved, repeated slashes merged, a
/// trailing slash kept.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if p.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

/// Paths no handler takes: an unclean path is redirected to its clean form (301, as Go's
/// ServeMux does, so `//` leads to `/`); anything else is 404.
async fn not_found(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let clean = clean_path(path);
    if clean != path {
        let target = match uri.query() {
            Some(q) => format!("{clean}?{q}"),
            None => clean,
        };
        let body = format!(
            "<a href=\"{}\">Moved Permanently</a>.\n\n",
            target
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;")
        );
        return (
            StatusCode::MOVED_PERMANENTLY,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
                (header::LOCATION, target),
            ],
            body,
        )
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        "404 page not found\n",
    )
        .into_response()
}

async fn root(State(mon): Mon, RawQuery(_q): RawQuery) -> Response {
    mon.count("/");
    let v = crate::server::VERSION;
    let links = [
        ("varz", "General"),
        ("jsz", "JetStream"),
        ("connz", "Connections"),
        ("accountz", "Accounts"),
        ("accstatz", "Account Stats"),
        ("subsz", "Subscriptions"),
        ("routez", "Routes"),
        ("leafz", "LeafNodes"),
        ("gatewayz", "Gateways"),
        ("healthz", "Health Probe"),
        ("metrics", "Prometheus Metrics"),
    ];
    let mut page = String::from(
        "<html lang=\"en\">\n<head>\n<title>NATS Server Monitoring</title>\n</head>\n<body>\n",
    );
    page.push_str(&format!(
        "<h1>NATS</h1>\n<a class='version'>v{v}</a>\n<br/>\n"
    ));
    for (path, label) in links {
        page.push_str(&format!("<a href=./{path}>{label}</a>\n"));
    }
    page.push_str(
        "<a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring class=\"help\">Help</a>\n</body>\n</html>\n",
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// JSON the way Go's `json.MarshalIndent(v, "", "  ")` prints it: two-space indent, no
/// trailing newline, and `<`, `>`, `&`, U+2028, U+2029 escaped (Go's HTML-safe default).
pub fn go_json_pretty<T: Serialize>(v: &T) -> String {
    html_escape(serde_json::to_string_pretty(v).unwrap_or_default())
}

/// Compact form of [`go_json_pretty`] (Go's `json.Marshal`).
pub fn go_json<T: Serialize>(v: &T) -> String {
    html_escape(serde_json::to_string(v).unwrap_or_default())
}

fn html_escape(s: String) -> String {
    // These characters can only occur inside JSON strings, so replacing them anywhere is safe.
    if !s
        .chars()
        .any(|c| matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}'))
    {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON body, or `callback(body)` as JavaScript when `callback=` is given (JSONP).
pub fn respond(params: &Params, status: StatusCode, body: String) -> Response {
    let callback = params.get("callback");
    let (ctype, body) = if callback.is_empty() {
        ("application/json", body)
    } else {
        ("application/javascript", format!("{callback}({body})"))
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

/// HTTP 400 with the error text as a plain body, as the reference answers bad parameters.
pub fn bad_request(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean_path("//"), "/");
        assert_eq!(clean_path("//varz"), "/varz");
        assert_eq!(clean_path("/./varz"), "/varz");
        assert_eq!(clean_path("/a/../varz"), "/varz");
        assert_eq!(clean_path("/varz//"), "/varz/");
        assert_eq!(clean_path("/varz/"), "/varz/");
        assert_eq!(clean_path("/../.."), "/");
    }

    #[test]
    fn base_path_joins() {
        assert_eq!(join_base("", "/"), "/");
        assert_eq!(join_base("", "/varz"), "/varz");
        assert_eq!(join_base("/nats/", "/varz"), "/nats/varz");
        assert_eq!(join_base("nats", "/"), "/nats");
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(
            go_json(&vec!["foo.>", "a&b<c"]),
            r#"["foo.\u003e","a\u0026b\u003cc"]"#
        );
        assert_eq!(go_json_pretty(&Vec::<String>::new()), "[]");
    }
}
