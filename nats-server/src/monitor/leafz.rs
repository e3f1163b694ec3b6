//! `/leafz`: the leaf node connections (`subs` lists their interest, `acc` filters by
//! account), also answering the system account's LEAFZ requests.

use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon};
use crate::server::Server;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::format_rfc3339_nanos;
use serde::Serialize;
use std::time::SystemTime;

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
    let params = Params::parse(q.as_deref());
    mon.count("/leafz");
    let subs = match params.boolean("subs") {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    let acc = Some(params.get("acc")).filter(|a| !a.is_empty());
    respond(
        &params,
        StatusCode::OK,
        go_json_pretty(&leafz_with(&mon.server, subs, acc)),
    )
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
        now: format_rfc3339_nanos(SystemTime::now()),
        leafnodes: leafs.len() as u64,
        leafs: (!leafs.is_empty()).then_some(leafs),
    }
}
