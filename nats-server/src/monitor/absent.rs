//! Endpoints of subsystems this server does not have (JetStream,
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
