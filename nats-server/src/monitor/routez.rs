//! `/routez`: the route connections to other cluster members.

use super::connz::sorted_subs;
use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon, Monitor};
use crate::client::Subscription;
use crate::cluster::RouteInfo as ClusterRoute;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{
    format_rfc3339_nanos, format_unix_nanos, go_duration_string, uptime_string, RouteInfo, Routez,
    SubDetail,
};
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

pub fn routez(mon: &Monitor, subs: bool, detail: bool) -> Routez {
    let now = SystemTime::now();
    let routes: Vec<RouteInfo> = mon
        .server
        .cluster
        .route_infos()
        .into_iter()
        .map(|r| route_info(r, now, subs, detail))
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

fn route_info(r: ClusterRoute, now: SystemTime, subs: bool, detail: bool) -> RouteInfo {
    let now_ns = unix_nanos(now);
    let start = unix_nanos(r.start);
    let last = i128::from(r.last_activity);
    let mut info = RouteInfo {
        rid: r.rid,
        remote_id: r.remote_id,
        did_solicit: r.did_solicit,
        is_configured: r.is_configured,
        ip: r.ip,
        port: i64::from(r.port),
        start: format_unix_nanos(start),
        last_activity: format_unix_nanos(last),
        rtt: go_duration_string(r.rtt.unwrap_or_default()),
        uptime: uptime_string(since(now_ns, start)),
        idle: uptime_string(since(now_ns, last)),
        import: None,
        export: None,
        pending_size: r.pending_size as i64,
        in_msgs: r.in_msgs as i64,
        out_msgs: r.out_msgs as i64,
        in_bytes: r.in_bytes as i64,
        out_bytes: r.out_bytes as i64,
        subscriptions: u32::try_from(r.subscriptions.len()).unwrap_or(u32::MAX),
        subscriptions_list: Vec::new(),
        subscriptions_list_detail: Vec::new(),
    };
    if detail {
        // Details need the per-subscription counters, kept on the connection's table.
        let list: Vec<Arc<Subscription>> = r.client.subs.lock().values().cloned().collect();
        info.subscriptions_list_detail = sorted_subs(&list)
            .into_iter()
            .map(|s| route_sub_detail(s))
            .collect();
    } else if subs {
        info.subscriptions_list = r.subscriptions.into_iter().map(|(_, s, _)| s).collect();
    }
    info
}

/// A route's subscription: its sid reads `<account> <subject>[ <queue>]`.
fn route_sub_detail(s: &Subscription) -> SubDetail {
    let mut d = super::connz::sub_detail(s, "");
    let acc = &s.account.name;
    d.sid = if d.qgroup.is_empty() {
        format!("{acc} {}", d.subject)
    } else {
        format!("{acc} {} {}", d.subject, d.qgroup)
    };
    d
}
