//! The reference's debugging endpoints `/stacksz` and `/ipqueuesz`, answered with the same
//! status and content type, and the parameter checks the subsystems' endpoints share.

use super::query::Params;
use super::{bad_request, respond, Monitor};
use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::format_rfc3339_nanos;
use std::time::SystemTime;

pub(super) fn now() -> String {
    format_rfc3339_nanos(SystemTime::now())
}

/// Decodes the parameters the reference decodes (only their errors matter here), then
/// answers with `body` or the reference's 400.
pub(super) fn answer(
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
