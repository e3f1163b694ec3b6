//! `/subsz` (alias `/subscriptionsz`): sublist statistics and, with `subs`, the
//! subscriptions themselves, optionally only those a test subject would reach.

use super::connz::{sub_detail, GLOBAL_ACCOUNT};
use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon, Monitor, DEFAULT_LIST_SIZE};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{format_rfc3339_nanos, SubDetail, SublistStats, Subsz};
use nats_common::subject;
use std::time::SystemTime;

pub async fn handle(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    // Counted before decoding, as the reference does for this endpoint.
    mon.count("/subsz");
    match subsz(&mon, &params) {
        Ok(body) => respond(&params, StatusCode::OK, body),
        Err(e) => bad_request(e),
    }
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn subsz(mon: &Monitor, p: &Params) -> Result<String, String> {
    let subs = p.boolean("subs")?;
    let mut offset = p.int("offset")?;
    let mut limit = p.int("limit")?;
    let test = p.get("test");
    let acc = p.get("acc");
    if offset < 0 {
        offset = 0;
    }
    if limit <= 0 {
        limit = DEFAULT_LIST_SIZE;
    }
    if !test.is_empty() && !subject::is_valid_literal_subject(test.as_bytes()) {
        return Err(format!(
            "invalid test subject, must be valid publish subject: {test}"
        ));
    }
    // There is only the global account; another name selects nothing.
    let other_account = !acc.is_empty() && acc != GLOBAL_ACCOUNT;
    let sl = mon.server.sublist.read();
    let stats = if other_account {
        SublistStats::default()
    } else {
        let st = sl.stats();
        SublistStats {
            num_subscriptions: to_u32(st.num_subscriptions),
            num_cache: to_u32(st.num_cache),
            num_inserts: st.num_inserts,
            num_removes: st.num_removes,
            num_matches: st.num_matches,
            cache_hit_rate: st.cache_hit_rate,
            max_fanout: to_u32(st.max_fanout),
            avg_fanout: st.avg_fanout,
        }
    };
    let mut list: Vec<SubDetail> = Vec::new();
    if subs && !other_account {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut seen = 0usize;
        sl.for_each(|subj, _queue, sub| {
            if !test.is_empty() && !subject::matches(subj, test.as_bytes()) {
                return;
            }
            if seen >= offset && list.len() < limit {
                list.push(sub_detail(sub, GLOBAL_ACCOUNT));
            }
            seen += 1;
        });
    }
    drop(sl);
    // Without any subscription to list the reference prints the statistics alone.
    if list.is_empty() {
        return Ok(go_json_pretty(&stats));
    }
    let out = Subsz {
        server_id: mon.server.id.clone(),
        now: format_rfc3339_nanos(SystemTime::now()),
        stats,
        // The reference reports the number listed on this page as the total.
        total: list.len() as i64,
        offset,
        limit,
        subscriptions_list: list,
    };
    Ok(go_json_pretty(&out))
}
