//! `/subsz` (alias `/subscriptionsz`): sublist statistics and, with `subs`, the
//! subscriptions themselves, optionally only those a test subject would reach.

use super::connz::sub_detail;
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
    let offset = p.int("offset")?;
    let limit = p.int("limit")?;
    let out = subsz_data(mon, subs, offset, limit, p.get("test"), p.get("acc"))?;
    // Without any subscription to list the reference prints the statistics alone.
    if out.subscriptions_list.is_empty() {
        return Ok(go_json_pretty(&out.stats));
    }
    Ok(go_json_pretty(&out))
}

/// The subscription statistics of every account (or of `acc`), with the local
/// subscriptions listed when `subs`, optionally only those `test` would reach.
pub fn subsz_data(
    mon: &Monitor,
    subs: bool,
    mut offset: i64,
    mut limit: i64,
    test: &str,
    acc: &str,
) -> Result<Subsz, String> {
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
    let accounts: Vec<_> = mon
        .server
        .accounts
        .all()
        .into_iter()
        .filter(|a| acc.is_empty() || a.name == acc)
        .collect();
    // The statistics of the accounts' indexes added up, as the reference does.
    let mut stats = SublistStats::default();
    let (mut hits, mut fanout_sum) = (0f64, 0f64);
    let mut list: Vec<SubDetail> = Vec::new();
    let offset_n = usize::try_from(offset).unwrap_or(usize::MAX);
    let limit_n = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut seen = 0usize;
    for a in &accounts {
        let sl = a.sublist.read();
        let st = sl.stats();
        stats.num_subscriptions = stats
            .num_subscriptions
            .saturating_add(to_u32(st.num_subscriptions));
        stats.num_cache = stats.num_cache.saturating_add(to_u32(st.num_cache));
        stats.num_inserts += st.num_inserts;
        stats.num_removes += st.num_removes;
        stats.num_matches += st.num_matches;
        stats.max_fanout = stats.max_fanout.max(to_u32(st.max_fanout));
        hits += st.cache_hit_rate * st.num_matches as f64;
        fanout_sum += st.avg_fanout * st.num_cache as f64;
        if !subs {
            continue;
        }
        // Local subscriptions only (a peer's interest is not listed).
        sl.for_each(|subj, _queue, sub| {
            if sub.client.kind == crate::client::Kind::Router {
                return;
            }
            if !test.is_empty() && !subject::matches(subj, test.as_bytes()) {
                return;
            }
            if seen >= offset_n && list.len() < limit_n {
                let owner = if sub.client.kind == crate::client::Kind::System {
                    a.name.clone()
                } else {
                    sub.client.account.read().name.clone()
                };
                list.push(sub_detail(sub, &owner));
            }
            seen += 1;
        });
    }
    if stats.num_matches > 0 {
        stats.cache_hit_rate = hits / stats.num_matches as f64;
    }
    if stats.num_cache > 0 {
        stats.avg_fanout = fanout_sum / f64::from(stats.num_cache);
    }
    Ok(Subsz {
        server_id: mon.server.id.clone(),
        now: format_rfc3339_nanos(SystemTime::now()),
        stats,
        // The reference reports the number listed on this page as the total.
        total: list.len() as i64,
        offset,
        limit,
        subscriptions_list: list,
    })
}
