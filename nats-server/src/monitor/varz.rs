//! `/varz`: server configuration, process figures and counters.

use super::query::Params;
use super::{go_json_pretty, procstat, respond, Mon, Monitor};
use crate::client::Kind;
use crate::server::{RUNTIME, VERSION};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{format_rfc3339_nanos, uptime_string, ClusterOptsVarz, Varz};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

/// The TLS handshake timeout the reference assumes when none is configured.
const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn handle(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    mon.count("/varz");
    respond(&params, StatusCode::OK, go_json_pretty(&varz(&mon)))
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn varz(mon: &Monitor) -> Varz {
    let s = &mon.server;
    let opts = s.opts();
    let info = s.base_info();
    let now = SystemTime::now();
    let conns = s
        .clients
        .lock()
        .values()
        .filter(|c| c.kind == Kind::Client)
        .count() as i64;
    let route_ids: Vec<String> = s
        .cluster
        .route_infos()
        .into_iter()
        .map(|r| r.remote_id)
        .collect();
    let routes = route_ids.len() as i64;
    let remotes: HashSet<String> = route_ids.into_iter().collect();
    let tls_timeout = opts
        .tls
        .as_ref()
        .map(|t| t.timeout)
        .filter(|t| !t.is_zero())
        .unwrap_or(DEFAULT_TLS_TIMEOUT);
    let http_host = if opts.http_host.is_empty() {
        opts.host.clone()
    } else {
        opts.http_host.clone()
    };
    let st = &s.stats;
    Varz {
        server_id: s.id.clone(),
        server_name: s.name.clone(),
        version: VERSION.to_string(),
        proto: 1,
        git_commit: String::new(),
        go: RUNTIME.to_string(),
        host: info.host.clone(),
        port: i64::from(info.port),
        auth_required: info.auth_required,
        tls_required: info.tls_required,
        tls_verify: info.tls_verify,
        ip: String::new(),
        connect_urls: info.connect_urls.clone(),
        ws_connect_urls: s.ws_connect_urls.read().clone(),
        max_connections: opts.max_connections as i64,
        max_subscriptions: opts.max_subscriptions as i64,
        ping_interval: nanos(opts.ping_interval),
        ping_max: i64::from(opts.ping_max),
        http_host,
        http_port: i64::from(opts.http_port),
        http_base_path: opts.http_base_path.clone(),
        https_port: i64::from(opts.https_port),
        auth_timeout: opts.effective_auth_timeout().as_secs_f64(),
        max_control_line: opts.max_control_line as i64,
        max_payload: opts.max_payload as i64,
        max_pending: opts.max_pending as i64,
        cluster: cluster(
            &opts,
            s.cluster.name(),
            s.cluster.listen_addr().map(|a| a.port()),
        ),
        gateway: super::gatewayz::varz(s),
        leaf: leaf(&opts, s.leafs.listen_addr().map(|a| a.port())),
        mqtt: Default::default(),
        websocket: websocket(&opts.websocket, s.ws_addr().map(|a| a.port())),
        jetstream: super::jsz::varz_block(s),
        tls_timeout: tls_timeout.as_secs_f64(),
        write_deadline: nanos(opts.write_deadline),
        start: format_rfc3339_nanos(s.start),
        now: format_rfc3339_nanos(now),
        uptime: uptime_string(s.start_instant.elapsed()),
        mem: procstat::rss_bytes(),
        cores: procstat::cores(),
        gomaxprocs: procstat::cores(),
        cpu: mon.cpu.percent(),
        connections: conns,
        total_connections: st.total_connections.load(Ordering::Relaxed),
        routes,
        remotes: remotes.len() as i64,
        leafnodes: s.leafs.num_leafs() as i64,
        in_msgs: as_i64(st.in_msgs.load(Ordering::Relaxed)),
        out_msgs: as_i64(st.out_msgs.load(Ordering::Relaxed)),
        in_bytes: as_i64(st.in_bytes.load(Ordering::Relaxed)),
        out_bytes: as_i64(st.out_bytes.load(Ordering::Relaxed)),
        slow_consumers: as_i64(st.slow_consumers.load(Ordering::Relaxed)),
        subscriptions: u32::try_from(s.accounts.num_subs()).unwrap_or(u32::MAX),
        http_req_stats: mon.req_stats(),
        // The configuration is loaded once at start; reload support updates `start` alike.
        config_load_time: format_rfc3339_nanos(s.start),
        tags: Vec::new(),
        trusted_operators_jwt: Vec::new(),
        trusted_operators_claim: Vec::new(),
        // The reference always names its system account.
        system_account: "$SYS".to_string(),
        pinned_account_fails: 0,
    }
}

/// The `cluster` object: the name in force (configured, generated or adopted), and the
/// listener's settings when clustering is configured.
/// The `leaf` block: the listener's settings and the configured remotes.
fn leaf(
    opts: &crate::options::Options,
    bound_port: Option<u16>,
) -> nats_common::monitor::LeafNodeOptsVarz {
    let l = &opts.leaf;
    let mut v = nats_common::monitor::LeafNodeOptsVarz::default();
    if l.port != 0 {
        v.host = if l.host.is_empty() {
            crate::options::DEFAULT_HOST.to_string()
        } else {
            l.host.clone()
        };
        v.port = bound_port.map_or(i64::from(l.port.max(0)), i64::from);
        let tls_timeout = l
            .tls
            .as_ref()
            .map(|t| t.timeout)
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_TLS_TIMEOUT);
        v.auth_timeout = if l.auth_timeout.is_zero() {
            match &l.tls {
                Some(_) => (tls_timeout + std::time::Duration::from_secs(1)).as_secs_f64(),
                None => crate::options::AUTH_TIMEOUT.as_secs_f64(),
            }
        } else {
            l.auth_timeout.as_secs_f64()
        };
        v.tls_timeout = tls_timeout.as_secs_f64();
        v.tls_required = l.tls.is_some();
        v.tls_verify = l.tls.as_ref().is_some_and(|t| t.verify);
    }
    v.remotes = l
        .remotes
        .iter()
        .map(|r| nats_common::monitor::RemoteLeafOptsVarz {
            local_account: if r.account.is_empty() {
                crate::options::GLOBAL_ACCOUNT.to_string()
            } else {
                r.account.clone()
            },
            tls_timeout: r.tls.as_ref().map_or(0.0, |t| t.timeout.as_secs_f64()),
            urls: r
                .urls
                .iter()
                .map(|u| {
                    let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
                    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                    rest.trim_end_matches('/').to_string()
                })
                .collect(),
            deny: (!r.deny_exports.is_empty() || !r.deny_imports.is_empty()).then(|| {
                nats_common::monitor::DenyRules {
                    exports: r.deny_exports.clone(),
                    imports: r.deny_imports.clone(),
                }
            }),
        })
        .collect();
    v
}

fn cluster(
    opts: &crate::options::Options,
    name: String,
    bound_port: Option<u16>,
) -> ClusterOptsVarz {
    let c = &opts.cluster;
    if c.port == 0 {
        return ClusterOptsVarz {
            name,
            ..Default::default()
        };
    }
    let auth_timeout = if c.auth_timeout.is_zero() {
        crate::options::AUTH_TIMEOUT
    } else {
        c.auth_timeout
    };
    let tls_timeout = c
        .tls
        .as_ref()
        .map(|t| t.timeout)
        .filter(|t| !t.is_zero())
        .unwrap_or(DEFAULT_TLS_TIMEOUT);
    ClusterOptsVarz {
        name,
        addr: if c.host.is_empty() {
            crate::options::DEFAULT_HOST.to_string()
        } else {
            c.host.clone()
        },
        cluster_port: bound_port.map_or(i64::from(c.port.max(0)), i64::from),
        auth_timeout: auth_timeout.as_secs_f64(),
        urls: c.routes.iter().map(|r| route_host_port(r)).collect(),
        tls_timeout: tls_timeout.as_secs_f64(),
        tls_required: c.tls.is_some(),
        tls_verify: c.tls.as_ref().is_some_and(|t| t.verify),
    }
}

/// `nats://user:pass@host:port/` → `host:port`, as the reference lists configured routes.
fn route_host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// The `websocket` block: the options, with the port actually bound.
fn websocket(
    w: &crate::options::WebsocketOptions,
    bound: Option<u16>,
) -> nats_common::monitor::WebsocketOptsVarz {
    nats_common::monitor::WebsocketOptsVarz {
        host: w.host.clone(),
        port: bound.map_or(i64::from(w.port), i64::from),
        advertise: w.advertise.clone(),
        no_auth_user: w.no_auth_user.clone(),
        jwt_cookie: w.jwt_cookie.clone(),
        handshake_timeout: nanos(w.handshake_timeout),
        auth_timeout: w.auth_timeout.map_or(0.0, |d| d.as_secs_f64()),
        no_tls: w.no_tls,
        tls_map: w.tls.as_ref().is_some_and(|t| t.verify_and_map),
        tls_pinned_certs: Vec::new(),
        same_origin: w.same_origin,
        allowed_origins: w.allowed_origins.clone(),
        compression: w.compression,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_urls_are_host_port() {
        assert_eq!(route_host_port("nats://127.0.0.1:4245"), "127.0.0.1:4245");
        assert_eq!(route_host_port("nats-route://u:p@h:1/"), "h:1");
        assert_eq!(route_host_port("h:2"), "h:2");
    }
}
