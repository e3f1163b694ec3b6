//! Endpoints of subsystems this server does not have (JetStream, leaf nodes, gateways,
//! separate accounts), answered as the reference answers them on a server where those are
//! not configured: same status, headers, JSON keys and parameter errors. Also `/stacksz`
//! and `/ipqueuesz`, the reference's debugging endpoints.

use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon, Monitor};
use crate::server::Server;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::format_rfc3339_nanos;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

fn now() -> String {
    format_rfc3339_nanos(SystemTime::now())
}

/// Decodes the parameters the reference decodes (only their errors matter here), then
/// answers with `body` or the reference's 400.
fn answer(
    mon: &Monitor,
    path: &str,
    q: Option<&str>,
    bools: &[&str],
    ints: &[&str],
    body: impl FnOnce(&Params) -> Result<String, String>,
) -> Response {
    let params = Params::parse(q);
    mon.count(path);
    for b in bools {
        if let Err(e) = params.boolean(b) {
            return bad_request(e);
        }
    }
    for i in ints {
        if let Err(e) = params.int(i) {
            return bad_request(e);
        }
    }
    match body(&params) {
        Ok(b) => respond(&params, StatusCode::OK, b),
        Err(e) => bad_request(e),
    }
}

#[derive(Serialize)]
struct JsConfig {
    max_memory: i64,
    max_storage: i64,
}

#[derive(Serialize)]
struct JsApi {
    total: u64,
    errors: u64,
}

/// `/jsz` with JetStream disabled.
#[derive(Serialize)]
pub struct Jsz {
    server_id: String,
    now: String,
    disabled: bool,
    config: JsConfig,
    memory: u64,
    storage: u64,
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JsApi,
    streams: u64,
    consumers: u64,
    messages: u64,
    bytes: u64,
}

pub async fn jsz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(
        &mon,
        "/jsz",
        q.as_deref(),
        &["accounts", "streams", "consumers", "config"],
        &["offset", "limit"],
        |p| {
            p.boolean("leader-only")?;
            Ok(go_json_pretty(&jsz_data(&mon.server)))
        },
    )
}

pub fn jsz_data(server: &Server) -> Jsz {
    Jsz {
        server_id: server.id.clone(),
        now: now(),
        disabled: true,
        config: JsConfig {
            max_memory: 0,
            max_storage: 0,
        },
        memory: 0,
        storage: 0,
        reserved_memory: 0,
        reserved_storage: 0,
        accounts: 0,
        ha_assets: 0,
        api: JsApi {
            total: 0,
            errors: 0,
        },
        streams: 0,
        consumers: 0,
        messages: 0,
        bytes: 0,
    }
}

/// `/leafz`: the leaf node connections (`null` when there are none, as the reference).
#[derive(Serialize)]
pub struct Leafz {
    server_id: String,
    now: String,
    leafnodes: u64,
    leafs: Option<Vec<LeafInfo>>,
}

/// One leaf node connection in `/leafz`.
#[derive(Serialize)]
pub struct LeafInfo {
    account: String,
    ip: String,
    port: u16,
    #[serde(skip_serializing_if = "String::is_empty")]
    rtt: String,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscriptions_list: Option<Vec<String>>,
}

pub async fn leafz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(&mon, "/leafz", q.as_deref(), &["subs"], &[], |p| {
        let subs = p.boolean("subs").unwrap_or(false);
        let acc = Some(p.get("acc")).filter(|a| !a.is_empty());
        Ok(go_json_pretty(&leafz_with(&mon.server, subs, acc)))
    })
}

pub fn leafz_data(server: &Server) -> Leafz {
    leafz_with(server, false, None)
}

/// The reference's `getRTT`: to the microsecond between 1 µs and 1 ms.
fn round_rtt(d: std::time::Duration) -> std::time::Duration {
    let us = std::time::Duration::from_micros(1);
    if d > us && d < std::time::Duration::from_millis(1) {
        std::time::Duration::from_micros(((d.as_nanos() + 500) / 1000) as u64)
    } else {
        d
    }
}

/// `/leafz` with the `subs` and `acc` options.
pub fn leafz_with(server: &Server, subs: bool, acc: Option<&str>) -> Leafz {
    let infos = server.leafs.infos(acc, subs);
    let leafs: Vec<LeafInfo> = infos
        .into_iter()
        .map(|l| {
            let mut list = l.subs;
            list.sort();
            LeafInfo {
                account: l.account,
                ip: l.ip,
                port: l.port,
                rtt: nats_common::monitor::go_duration_string(round_rtt(l.rtt.unwrap_or_default())),
                in_msgs: l.in_msgs,
                out_msgs: l.out_msgs,
                in_bytes: l.in_bytes,
                out_bytes: l.out_bytes,
                subscriptions: l.num_subs as u64,
                subscriptions_list: subs.then_some(list),
            }
        })
        .collect();
    Leafz {
        server_id: server.id.clone(),
        now: now(),
        leafnodes: leafs.len() as u64,
        leafs: (!leafs.is_empty()).then_some(leafs),
    }
}

#[derive(Serialize)]
pub struct Gatewayz {
    server_id: String,
    now: String,
    outbound_gateways: BTreeMap<String, ()>,
    inbound_gateways: BTreeMap<String, ()>,
}

pub async fn gatewayz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(&mon, "/gatewayz", q.as_deref(), &["accs"], &[], |_| {
        Ok(go_json_pretty(&gatewayz_data(&mon.server)))
    })
}

pub fn gatewayz_data(server: &Server) -> Gatewayz {
    Gatewayz {
        server_id: server.id.clone(),
        now: now(),
        outbound_gateways: BTreeMap::new(),
        inbound_gateways: BTreeMap::new(),
    }
}

/// `/ipqueuesz`: the reference's internal queues with pending work; this server has no
/// such queues, so the map is empty (the reference's with `all` names its own).
pub async fn ipqueuesz(RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    if let Err(e) = params.boolean("all") {
        return bad_request(e);
    }
    respond(&params, StatusCode::OK, "{}".to_string())
}

/// `/stacksz`: the reference dumps its goroutines' stacks here. Rust cannot walk other
/// threads' stacks, so this lists the process's threads (id, name, state) from /proc in
/// a similar text layout, with the same status and content type.
pub async fn stacksz(RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    let mut out = String::new();
    let mut tids: Vec<u64> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    for tid in tids {
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
        // `tid (name) S ...`: the name may contain spaces, so split at the last ')'.
        let (name, state) = match (stat.find('('), stat.rfind(')')) {
            (Some(a), Some(b)) if a < b => (
                &stat[a + 1..b],
                stat[b + 1..].split_whitespace().next().unwrap_or("?"),
            ),
            _ => ("?", "?"),
        };
        let state = match state {
            "R" => "running",
            "S" => "sleeping",
            "D" => "disk sleep",
            "T" | "t" => "stopped",
            "Z" => "zombie",
            _ => state,
        };
        out.push_str(&format!("thread {tid} [{state}]:\n{name}\n\n"));
    }
    respond(&params, StatusCode::OK, out)
}
