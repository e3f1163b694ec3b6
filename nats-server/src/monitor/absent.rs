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
use nats_common::monitor::{format_rfc3339_nanos, SublistStats};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// The global account, where every client of this server is.
const GLOBAL: &str = "$G";
/// The system account name the reference reports (also in /varz `system_account`).
const SYSTEM: &str = "$SYS";

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
struct Jsz {
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
            Ok(go_json_pretty(&Jsz {
                server_id: mon.server.id.clone(),
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
            }))
        },
    )
}

#[derive(Serialize)]
struct AccountInfo {
    account_name: String,
    update_time: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_system: bool,
    expired: bool,
    complete: bool,
    jetstream_enabled: bool,
    leafnode_connections: u64,
    client_connections: u64,
    subscriptions: u32,
    sublist_stats: SublistStats,
}

#[derive(Serialize)]
struct Accountz {
    server_id: String,
    now: String,
    system_account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountInfo>,
}

fn global_stats(server: &Server) -> SublistStats {
    let st = server.accounts.global.sublist.read().stats();
    let u = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    SublistStats {
        num_subscriptions: u(st.num_subscriptions),
        num_cache: u(st.num_cache),
        num_inserts: st.num_inserts,
        num_removes: st.num_removes,
        num_matches: st.num_matches,
        cache_hit_rate: st.cache_hit_rate,
        max_fanout: u(st.max_fanout),
        avg_fanout: st.avg_fanout,
    }
}

/// `/accountz`: the global account (every client) and the system account's name; `acc=`
/// details one of them, any other name is unknown.
pub async fn accountz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(&mon, "/accountz", q.as_deref(), &[], &[], |p| {
        let s = &mon.server;
        let acc = p.get("acc");
        let mut out = Accountz {
            server_id: s.id.clone(),
            now: now(),
            system_account: SYSTEM.to_string(),
            accounts: None,
            account_detail: None,
        };
        match acc {
            "" => out.accounts = Some(vec![GLOBAL.to_string(), SYSTEM.to_string()]),
            GLOBAL | SYSTEM => {
                let global = acc == GLOBAL;
                let stats = if global {
                    global_stats(s)
                } else {
                    SublistStats::default()
                };
                out.account_detail = Some(AccountInfo {
                    account_name: acc.to_string(),
                    update_time: format_rfc3339_nanos(s.start),
                    is_system: !global,
                    expired: false,
                    complete: true,
                    jetstream_enabled: false,
                    leafnode_connections: 0,
                    client_connections: if global {
                        s.client_conns().len() as u64
                    } else {
                        0
                    },
                    subscriptions: stats.num_subscriptions,
                    sublist_stats: stats,
                });
            }
            other => return Err(format!("Account {other} does not exist")),
        }
        Ok(go_json_pretty(&out))
    })
}

#[derive(Serialize)]
struct DataStats {
    msgs: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct AccountStat {
    acc: String,
    conns: u64,
    leafnodes: u64,
    total_conns: u64,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
}

#[derive(Serialize)]
struct AccountStatz {
    server_id: String,
    now: String,
    account_statz: Vec<AccountStat>,
}

/// `/accstatz`: accounts with client connections (all with `unused`). Every client is in
/// the global account, so its counters are the server's.
pub async fn accstatz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(&mon, "/accstatz", q.as_deref(), &["unused"], &[], |p| {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &mon.server;
        let unused = p.boolean("unused")?;
        let conns = s.client_conns().len() as u64;
        let st = &s.stats;
        let mut list = Vec::new();
        if unused || conns > 0 {
            list.push(AccountStat {
                acc: GLOBAL.to_string(),
                conns,
                leafnodes: 0,
                total_conns: conns,
                sent: DataStats {
                    msgs: st.out_msgs.load(Relaxed),
                    bytes: st.out_bytes.load(Relaxed),
                },
                received: DataStats {
                    msgs: st.in_msgs.load(Relaxed),
                    bytes: st.in_bytes.load(Relaxed),
                },
                slow_consumers: st.slow_consumers.load(Relaxed),
            });
        }
        if unused {
            list.push(AccountStat {
                acc: SYSTEM.to_string(),
                conns: 0,
                leafnodes: 0,
                total_conns: 0,
                sent: DataStats { msgs: 0, bytes: 0 },
                received: DataStats { msgs: 0, bytes: 0 },
                slow_consumers: 0,
            });
        }
        Ok(go_json_pretty(&AccountStatz {
            server_id: s.id.clone(),
            now: now(),
            account_statz: list,
        }))
    })
}

#[derive(Serialize)]
struct Leafz {
    server_id: String,
    now: String,
    leafnodes: u64,
    /// Always `null`: there are no leaf node connections.
    leafs: Option<Vec<()>>,
}

pub async fn leafz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(&mon, "/leafz", q.as_deref(), &["subs"], &[], |_| {
        Ok(go_json_pretty(&Leafz {
            server_id: mon.server.id.clone(),
            now: now(),
            leafnodes: 0,
            leafs: None,
        }))
    })
}

#[derive(Serialize)]
struct Gatewayz {
    server_id: String,
    now: String,
    outbound_gateways: BTreeMap<String, ()>,
    inbound_gateways: BTreeMap<String, ()>,
}

pub async fn gatewayz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    answer(&mon, "/gatewayz", q.as_deref(), &["accs"], &[], |_| {
        Ok(go_json_pretty(&Gatewayz {
            server_id: mon.server.id.clone(),
            now: now(),
            outbound_gateways: BTreeMap::new(),
            inbound_gateways: BTreeMap::new(),
        }))
    })
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
