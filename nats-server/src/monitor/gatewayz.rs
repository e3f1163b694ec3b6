//! `/gatewayz` (with `accs`, `gw_name`, `acc_name`) and the `gateway` block of `/varz`,
//! as the reference builds them; without gateways, the reference's empty answer.

use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon};
use crate::client::Client;
use crate::gateway::{GwConn, InAccount, Mode};
use crate::server::Server;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{
    format_rfc3339_nanos, format_unix_nanos, go_duration_string, uptime_string, ConnInfo,
    GatewayOptsVarz, RemoteGatewayOptsVarz,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The reference's threshold of RS- before it switches an account (reported only).
const INTEREST_ONLY_THRESHOLD: i64 = 1000;

#[derive(Serialize)]
pub struct Gatewayz {
    server_id: String,
    now: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(skip_serializing_if = "is_zero")]
    port: u16,
    outbound_gateways: Option<BTreeMap<String, RemoteGatewayz>>,
    inbound_gateways: BTreeMap<String, Vec<RemoteGatewayz>>,
}

fn is_zero(p: &u16) -> bool {
    *p == 0
}

#[derive(Serialize)]
pub struct RemoteGatewayz {
    configured: bool,
    connection: ConnInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    accounts: Vec<AccountGatewayz>,
}

#[derive(Serialize)]
pub struct AccountGatewayz {
    name: String,
    interest_mode: &'static str,
    #[serde(skip_serializing_if = "is_zero_i64")]
    no_interest_count: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    interest_only_threshold: i64,
    #[serde(rename = "num_subs", skip_serializing_if = "is_zero_i64")]
    num_subs: i64,
    #[serde(rename = "num_queue_subs", skip_serializing_if = "is_zero_i64")]
    num_queue_subs: i64,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// What the request asks for.
#[derive(Default)]
pub struct GatewayzOptions {
    pub name: String,
    pub accounts: bool,
    pub account: String,
}

pub async fn gatewayz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    mon.count("/gatewayz");
    let accs = match params.boolean("accs") {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    let account = params.get("acc_name").to_string();
    let o = GatewayzOptions {
        name: params.get("gw_name").to_string(),
        accounts: accs || !account.is_empty(),
        account,
    };
    respond(
        &params,
        StatusCode::OK,
        go_json_pretty(&gatewayz_with(&mon.server, &o)),
    )
}

/// /gatewayz without options (the system account's request).
pub fn gatewayz_data(server: &Server) -> Gatewayz {
    gatewayz_with(server, &GatewayzOptions::default())
}

pub fn gatewayz_with(server: &Server, o: &GatewayzOptions) -> Gatewayz {
    let gw = &server.gateway;
    let now = SystemTime::now();
    let mut z = Gatewayz {
        server_id: server.id.clone(),
        now: format_rfc3339_nanos(now),
        name: String::new(),
        host: String::new(),
        port: 0,
        outbound_gateways: Some(BTreeMap::new()),
        inbound_gateways: BTreeMap::new(),
    };
    let url = gw.url.lock().clone();
    if !gw.enabled || url.is_empty() {
        return z;
    }
    z.name = gw.name.clone();
    if let Some((h, p)) = crate::cli::split_host_port(&url) {
        z.host = h.trim_matches(['[', ']']).to_string();
        z.port = p.parse().unwrap_or(0);
    }
    let outs: Vec<Arc<GwConn>> = gw.out.read().clone();
    let mut outbound = BTreeMap::new();
    for c in outs {
        let name = c.name();
        if !o.name.is_empty() && name != o.name {
            continue;
        }
        let configured = c.remote.lock().as_ref().is_some_and(|r| !r.implicit);
        let subs: usize = c
            .outsim
            .read()
            .values()
            .map(|e| e.as_ref().map_or(0, |a| a.keys.len()))
            .sum();
        let accounts = if o.accounts {
            outbound_accounts(&c, &o.account)
        } else {
            Vec::new()
        };
        outbound.insert(
            name,
            RemoteGatewayz {
                configured,
                connection: conn_info(&c.client, &c, subs, now),
                accounts,
            },
        );
    }
    z.outbound_gateways = if !o.name.is_empty() && outbound.is_empty() {
        None
    } else {
        Some(outbound)
    };
    let ins: Vec<Arc<GwConn>> = gw.inbound.lock().clone();
    for c in ins {
        let name = c.name();
        if !o.name.is_empty() && name != o.name {
            continue;
        }
        let accounts = if o.accounts {
            inbound_accounts(&c, &o.account)
        } else {
            Vec::new()
        };
        z.inbound_gateways
            .entry(name)
            .or_default()
            .push(RemoteGatewayz {
                configured: false,
                connection: conn_info(&c.client, &c, 0, now),
                accounts,
            });
    }
    z
}

fn outbound_accounts(c: &GwConn, only: &str) -> Vec<AccountGatewayz> {
    let map = c.outsim.read();
    let mut names: Vec<&String> = map
        .keys()
        .filter(|n| only.is_empty() || *n == only)
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| match &map[n] {
            Some(e) => AccountGatewayz {
                name: n.clone(),
                interest_mode: e.mode.as_str(),
                no_interest_count: e.ni.as_ref().map_or(0, |s| s.len() as i64),
                interest_only_threshold: INTEREST_ONLY_THRESHOLD,
                num_subs: e.keys.len() as i64,
                num_queue_subs: e.qsubs as i64,
            },
            None => AccountGatewayz {
                name: n.clone(),
                interest_mode: Mode::Optimistic.as_str(),
                no_interest_count: 0,
                interest_only_threshold: INTEREST_ONLY_THRESHOLD,
                num_subs: 0,
                num_queue_subs: 0,
            },
        })
        .collect()
}

fn inbound_accounts(c: &GwConn, only: &str) -> Vec<AccountGatewayz> {
    let map = c.insim.lock();
    let mut names: Vec<&String> = map
        .keys()
        .filter(|n| only.is_empty() || *n == only)
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let (mode, ni) = match &map[n] {
                InAccount::InterestOnly => (Mode::InterestOnly, 0),
                InAccount::Optimistic(s) => (Mode::Optimistic, s.len() as i64),
                InAccount::NoInterest => (Mode::Optimistic, 0),
            };
            AccountGatewayz {
                name: n.clone(),
                interest_mode: mode.as_str(),
                no_interest_count: ni,
                interest_only_threshold: INTEREST_ONLY_THRESHOLD,
                num_subs: 0,
                num_queue_subs: 0,
            }
        })
        .collect()
}

/// The reference truncates RTTs between 1 µs and 1 ms to whole microseconds.
fn rtt(d: Duration) -> Duration {
    if d > Duration::from_micros(1) && d < Duration::from_millis(1) {
        Duration::from_micros(d.as_micros() as u64)
    } else {
        d
    }
}

fn nanos(t: SystemTime) -> i128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

fn conn_info(c: &Client, gc: &GwConn, subs: usize, now: SystemTime) -> ConnInfo {
    let meta = c.meta.lock().clone();
    let (out_msgs, out_bytes) = {
        let st = c.out.lock();
        (st.msgs, st.bytes)
    };
    let start = nanos(c.start);
    let last = i128::from(c.last_activity.load(Ordering::Relaxed));
    let now = nanos(now);
    let since = |a: i128, b: i128| Duration::from_nanos((a - b).max(0) as u64);
    ConnInfo {
        cid: c.cid,
        kind: "Gateway".to_string(),
        ip: c.addr.ip().to_string(),
        port: i64::from(c.addr.port()),
        start: format_unix_nanos(start),
        last_activity: format_unix_nanos(last),
        rtt: go_duration_string(rtt(meta.rtt.unwrap_or_default())),
        uptime: uptime_string(since(now, start)),
        idle: uptime_string(since(now, last)),
        pending_bytes: c.out.pending() as i64,
        in_msgs: c.in_msgs.load(Ordering::Relaxed) as i64,
        out_msgs: out_msgs as i64,
        in_bytes: c.in_bytes.load(Ordering::Relaxed) as i64,
        out_bytes: out_bytes as i64,
        subscriptions: u32::try_from(subs).unwrap_or(u32::MAX),
        name: gc.remote_id.lock().clone(),
        ..Default::default()
    }
}

/// The `gateway` block of /varz.
pub fn varz(server: &Server) -> GatewayOptsVarz {
    let gw = &server.gateway;
    let opts = server.opts();
    let g = &opts.gateway;
    if !gw.enabled {
        return GatewayOptsVarz::default();
    }
    let port = gw
        .listen
        .get()
        .map_or(i64::from(g.port), |a| i64::from(a.port()));
    let auth = if g.auth_timeout.is_zero() {
        crate::options::AUTH_TIMEOUT
    } else {
        g.auth_timeout
    };
    let gateways = gw
        .remotes
        .lock()
        .values()
        .filter(|r| !r.implicit)
        .map(|r| RemoteGatewayOptsVarz {
            name: r.name.clone(),
            tls_timeout: r.tls.as_ref().map_or(0.0, |t| t.timeout.as_secs_f64()),
            urls: r
                .urls
                .lock()
                .iter()
                .filter_map(|u| crate::route::RouteUrl::parse(u).map(|x| x.host_port()))
                .collect(),
        })
        .collect();
    GatewayOptsVarz {
        name: gw.name.clone(),
        host: if g.host.is_empty() {
            crate::options::DEFAULT_HOST.to_string()
        } else {
            g.host.clone()
        },
        port,
        auth_timeout: auth.as_secs_f64(),
        tls_timeout: g.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64()),
        tls_required: g.tls.is_some(),
        tls_verify: g.tls.as_ref().is_some_and(|t| t.verify),
        advertise: g.advertise.clone(),
        connect_retries: i64::from(g.connect_retries),
        gateways,
        reject_unknown: g.reject_unknown,
    }
}
