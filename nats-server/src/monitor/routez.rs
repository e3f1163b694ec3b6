//! `/routez`: the route connections to other cluster members.

use super::connz::sorted_subs;
use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon, Monitor};
use crate::client::{Client, Kind, Subscription};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{
    format_rfc3339_nanos, format_unix_nanos, go_duration_string, uptime_string, RouteInfo, Routez,
    SubDetail,
};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub async fn handle(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    let (subs, detail) = match params.subs() {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    // Counted only once the parameters decoded, as the reference does.
    mon.count("/routez");
    respond(
        &params,
        StatusCode::OK,
        go_json_pretty(&routez(&mon, subs, detail)),
    )
}

fn unix_nanos(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

fn since(later: i128, earlier: i128) -> Duration {
    let d = later.saturating_sub(earlier).max(0);
    Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX))
}

fn routez(mon: &Monitor, subs: bool, detail: bool) -> Routez {
    let now = SystemTime::now();
    let mut routes: Vec<Arc<Client>> = mon
        .server
        .clients
        .lock()
        .values()
        .filter(|c| c.kind == Kind::Router)
        .cloned()
        .collect();
    routes.sort_by_key(|c| c.cid);
    let routes: Vec<RouteInfo> = routes
        .iter()
        .map(|c| route_info(c, now, subs, detail))
        .collect();
    Routez {
        server_id: mon.server.id.clone(),
        now: format_rfc3339_nanos(now),
        import: None,
        export: None,
        num_routes: routes.len() as i64,
        routes,
    }
}

fn route_info(c: &Client, now: SystemTime, subs: bool, detail: bool) -> RouteInfo {
    let meta = c.meta.lock().clone();
    let (out_msgs, out_bytes) = {
        let st = c.out.lock();
        (st.msgs, st.bytes)
    };
    let list: Vec<Arc<Subscription>> = c.subs.lock().values().cloned().collect();
    let now_ns = unix_nanos(now);
    let start = unix_nanos(c.start);
    let last = i128::from(c.last_activity.load(Ordering::Relaxed));
    let mut info = RouteInfo {
        rid: c.cid,
        remote_id: meta.remote_id.clone(),
        did_solicit: false,
        is_configured: false,
        ip: c.addr.ip().to_string(),
        port: i64::from(c.addr.port()),
        start: format_unix_nanos(start),
        last_activity: format_unix_nanos(last),
        rtt: go_duration_string(meta.rtt.unwrap_or_default()),
        uptime: uptime_string(since(now_ns, start)),
        idle: uptime_string(since(now_ns, last)),
        import: None,
        export: None,
        pending_size: c.out.pending() as i64,
        in_msgs: c.in_msgs.load(Ordering::Relaxed) as i64,
        out_msgs: out_msgs as i64,
        in_bytes: c.in_bytes.load(Ordering::Relaxed) as i64,
        out_bytes: out_bytes as i64,
        subscriptions: u32::try_from(list.len()).unwrap_or(u32::MAX),
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
    };
    if detail {
        info.subscriptions_list_detail = sorted_subs(&list)
            .into_iter()
            .map(|s| route_sub_detail(s))
            .collect();
    } else if subs {
        info.subscriptions_list = sorted_subs(&list)
            .into_iter()
            .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
            .collect();
    }
    info
}

/// A route's subscription: its sid reads `<account> <subject>[ <queue>]`.
fn route_sub_detail(s: &Subscription) -> SubDetail {
    let mut d = super::connz::sub_detail(s, "");
    d.sid = if d.qgroup.is_empty() {
        format!("$G {}", d.subject)
    } else {
        format!("$G {} {}", d.subject, d.qgroup)
    };
    d
}
