//! `/connz`: client connections, open and recently closed, sorted and paged.

use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon, Monitor, DEFAULT_LIST_SIZE};
use crate::client::{Client, Kind, Subscription};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{
    format_rfc3339_nanos, format_unix_nanos, go_duration_string, uptime_string, ConnInfo, Connz,
    SubDetail,
};
use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Open,
    Closed,
    All,
}

/// The parameters of one /connz request (HTTP query or system account request).
pub struct ConnzOptions {
    sort: String,
    auth: bool,
    subs: bool,
    subs_detail: bool,
    offset: i64,
    limit: i64,
    cid: u64,
    state: ConnState,
    user: String,
    /// Only this account's connections.
    pub account: String,
}

impl ConnzOptions {
    /// The options of a `CONNZ` request to the system account (the reference's
    /// `ConnzOptions` JSON; `state` 0 open, 1 closed, 2 all).
    pub fn from_json(v: &serde_json::Value) -> ConnzOptions {
        let b = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false)
        };
        let i = |k: &str| v.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
        let t = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        ConnzOptions {
            sort: t("sort"),
            auth: b("auth"),
            subs: b("subscriptions"),
            subs_detail: b("subscriptions_detail"),
            offset: i("offset"),
            limit: i("limit"),
            cid: v
                .get("cid")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            state: match i("state") {
                1 => ConnState::Closed,
                2 => ConnState::All,
                _ => ConnState::Open,
            },
            user: t("user"),
            account: t("acc"),
        }
    }
}

/// Decodes the parameters in the reference's order, so the same first error wins.
fn decode(p: &Params) -> Result<ConnzOptions, String> {
    let sort = p.get("sort").to_string();
    let auth = p.boolean("auth")?;
    let (subs, subs_detail) = p.subs()?;
    let offset = p.int("offset")?;
    let limit = p.int("limit")?;
    let cid = p.uint64("cid")?;
    let state = match p.get("state").to_ascii_lowercase().as_str() {
        "" | "open" => ConnState::Open,
        "closed" => ConnState::Closed,
        "any" | "all" => ConnState::All,
        _ => return Err(format!("Error decoding state for {}", p.get("state"))),
    };
    Ok(ConnzOptions {
        sort,
        auth,
        subs,
        subs_detail,
        offset,
        limit,
        cid,
        state,
        user: p.get("user").to_string(),
        account: p.get("acc").to_string(),
    })
}

pub async fn handle(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    let opts = match decode(&params) {
        Ok(o) => o,
        Err(e) => return bad_request(e),
    };
    // Counted only once the parameters decoded, as the reference does.
    mon.count("/connz");
    match connz(&mon, &opts) {
        Ok(c) => respond(&params, StatusCode::OK, go_json_pretty(&c)),
        Err(e) => bad_request(e),
    }
}

const SORT_KEYS: &[&str] = &[
    "cid",
    "start",
    "subs",
    "pending",
    "msgs_to",
    "msgs_from",
    "bytes_to",
    "bytes_from",
    "last",
    "idle",
    "uptime",
    "stop",
    "reason",
];

/// One connection with the raw values it may be sorted by.
struct Entry {
    info: ConnInfo,
    cid: u64,
    subs: usize,
    pending: usize,
    in_msgs: u64,
    in_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    start: i128,
    last: i128,
    uptime: Duration,
    stop: i128,
}

pub fn connz(mon: &Monitor, opts: &ConnzOptions) -> Result<Connz, String> {
    let mut o = ConnzOptions {
        sort: opts.sort.clone(),
        user: opts.user.clone(),
        account: opts.account.clone(),
        ..*opts
    };
    let sort = if o.sort.is_empty() { "cid" } else { &o.sort };
    if !SORT_KEYS.contains(&sort) {
        return Err(format!("invalid sorting option: {sort}"));
    }
    if (sort == "stop" || sort == "reason") && o.state != ConnState::Closed {
        return Err(format!("sort by {sort} only valid on closed connections"));
    }
    let sort = sort.to_string();
    if o.offset < 0 {
        o.offset = 0;
    }
    if o.limit <= 0 {
        o.limit = DEFAULT_LIST_SIZE;
    }
    if o.cid > 0 {
        o.limit = 1;
    }
    let s = &mon.server;
    let now = SystemTime::now();

    let mut open: Vec<Arc<Client>> = Vec::new();
    if o.state != ConnState::Closed {
        open = s.client_conns();
    }
    type Closed = (
        Arc<Client>,
        SystemTime,
        &'static str,
        Vec<Arc<Subscription>>,
    );
    let mut closed: Vec<Closed> = Vec::new();
    if o.state != ConnState::Open {
        closed = s
            .closed
            .lock()
            .iter()
            .filter(|cc| cc.client.kind == Kind::Client)
            .map(|cc| {
                (
                    cc.client.clone(),
                    cc.stop,
                    cc.reason.as_str(),
                    cc.subs.clone(),
                )
            })
            .collect();
    }
    if !o.user.is_empty() {
        open.retain(|c| c.meta.lock().user == o.user);
        closed.retain(|c| c.0.meta.lock().user == o.user);
    }
    if !o.account.is_empty() {
        open.retain(|c| c.account.read().name == o.account);
        closed.retain(|c| c.0.account.read().name == o.account);
    }
    // The total counts every connection in the asked state, before the cid filter and paging.
    let total = open.len() + closed.len();
    if o.cid > 0 {
        open.retain(|c| c.cid == o.cid);
        closed.retain(|c| c.0.cid == o.cid);
        closed.truncate(1);
    }

    let offset = usize::try_from(o.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(o.limit).unwrap_or(usize::MAX);
    // In cid order (the default; `start` is the same order) the page is known from the cids
    // alone, so only its connections get their details built: a default /connz, and every
    // /metrics scrape, stays cheap with many connections open.
    let cid_order = sort == "cid" || sort == "start";
    let mut picks: Vec<(u64, usize)> = open
        .iter()
        .map(|c| c.cid)
        .chain(closed.iter().map(|c| c.0.cid))
        .enumerate()
        .map(|(i, cid)| (cid, i))
        .collect();
    if cid_order {
        picks.sort_by_key(|p| p.0);
        picks = picks.into_iter().skip(offset).take(limit).collect();
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(picks.len());
    for (_, i) in picks {
        if let Some(c) = open.get(i) {
            let subs: Vec<Arc<Subscription>> = c.subs.lock().values().cloned().collect();
            entries.push(entry(c, &subs, None, now, &o));
        } else if let Some((c, stop, reason, subs)) = closed.get(i - open.len()) {
            entries.push(entry(c, subs, Some((*stop, reason)), now, &o));
        }
    }

    entries.sort_by_key(|e| e.cid);
    match sort.as_str() {
        "subs" => entries.sort_by_key(|e| Reverse(e.subs)),
        "pending" => entries.sort_by_key(|e| Reverse(e.pending)),
        "msgs_to" => entries.sort_by_key(|e| Reverse(e.out_msgs)),
        "msgs_from" => entries.sort_by_key(|e| Reverse(e.in_msgs)),
        "bytes_to" => entries.sort_by_key(|e| Reverse(e.out_bytes)),
        "bytes_from" => entries.sort_by_key(|e| Reverse(e.in_bytes)),
        "last" => entries.sort_by_key(|e| Reverse(e.last)),
        // The reference (2.9.10) orders `idle` by how long a connection was active
        // (last activity minus start), longest first; kept for identical output.
        "idle" => entries.sort_by_key(|e| Reverse(e.last - e.start)),
        "uptime" => entries.sort_by_key(|e| e.uptime),
        "stop" => entries.sort_by_key(|e| Reverse(e.stop)),
        "reason" => entries.sort_by(|a, b| a.info.reason.cmp(&b.info.reason)),
        _ => {} // cid, start: already in cid order.
    }

    // Paged above in cid order.
    let (offset, limit) = if cid_order {
        (0, usize::MAX)
    } else {
        (offset, limit)
    };
    let connections: Vec<ConnInfo> = entries
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|e| e.info)
        .collect();
    Ok(Connz {
        server_id: s.id.clone(),
        now: format_rfc3339_nanos(now),
        num_connections: connections.len() as i64,
        total: total as i64,
        offset: o.offset,
        limit: o.limit,
        connections,
    })
}

fn unix_nanos(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

fn since(later: i128, earlier: i128) -> Duration {
    let d = later.saturating_sub(earlier).max(0);
    Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX))
}

/// Subscriptions ordered by sid (numerically when the sids are numbers).
pub fn sorted_subs(subs: &[Arc<Subscription>]) -> Vec<&Arc<Subscription>> {
    let mut v: Vec<&Arc<Subscription>> = subs.iter().collect();
    v.sort_by(|a, b| (a.sid.len(), &a.sid).cmp(&(b.sid.len(), &b.sid)));
    v
}

/// A subscription as monitoring shows it; `account` only where the reference prints it.
pub fn sub_detail(sub: &Subscription, account: &str) -> SubDetail {
    SubDetail {
        account: account.to_string(),
        subject: String::from_utf8_lossy(&sub.subject).into_owned(),
        qgroup: sub
            .queue
            .as_ref()
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .unwrap_or_default(),
        sid: String::from_utf8_lossy(&sub.sid).into_owned(),
        msgs: i64::try_from(sub.delivered.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        max: i64::try_from(sub.max.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        cid: sub.client.cid,
    }
}

fn entry(
    c: &Client,
    subs: &[Arc<Subscription>],
    closed: Option<(SystemTime, &str)>,
    now: SystemTime,
    o: &ConnzOptions,
) -> Entry {
    let is_closed = closed.is_some();
    let meta = c.meta.lock().clone();
    let (out_msgs, out_bytes) = {
        let st = c.out.lock();
        (st.msgs, st.bytes)
    };
    let pending = c.out.pending();
    let in_msgs = c.in_msgs.load(Ordering::Relaxed);
    let in_bytes = c.in_bytes.load(Ordering::Relaxed);
    let start = unix_nanos(c.start);
    let last = i128::from(c.last_activity.load(Ordering::Relaxed));
    // A closed connection's figures are as of when it closed.
    let end = unix_nanos(closed.map_or(now, |(stop, _)| stop));
    let uptime = since(end, start);
    let mut info = ConnInfo {
        cid: c.cid,
        kind: "Client".to_string(),
        conn_type: if c.ws.get().is_some() {
            "websocket"
        } else {
            "nats"
        }
        .to_string(),
        ip: c.addr.ip().to_string(),
        port: i64::from(c.addr.port()),
        start: format_unix_nanos(start),
        last_activity: format_unix_nanos(last),
        stop: closed.map(|(stop, _)| format_rfc3339_nanos(stop)),
        reason: closed.map(|(_, r)| r.to_string()).unwrap_or_default(),
        rtt: go_duration_string(meta.rtt.unwrap_or_default()),
        uptime: uptime_string(uptime),
        idle: uptime_string(since(end, last)),
        pending_bytes: pending as i64,
        in_msgs: in_msgs as i64,
        out_msgs: out_msgs as i64,
        in_bytes: in_bytes as i64,
        out_bytes: out_bytes as i64,
        subscriptions: u32::try_from(subs.len()).unwrap_or(u32::MAX),
        name: meta.name,
        lang: meta.lang,
        version: meta.version,
        tls_version: meta.tls_version,
        tls_cipher_suite: meta.tls_cipher,
        ..Default::default()
    };
    let acc_name = c.account.read().name.clone();
    if o.auth {
        info.authorized_user = meta.user;
        // The global account is not named, as the reference.
        if acc_name != crate::options::GLOBAL_ACCOUNT {
            info.account = acc_name.clone();
        }
    }
    // The reference names the account in closed connections' details only.
    let account = if is_closed { acc_name.as_str() } else { "" };
    if o.subs_detail {
        info.subscriptions_list_detail = sorted_subs(subs)
            .into_iter()
            .map(|s| sub_detail(s, account))
            .collect();
    } else if o.subs {
        info.subscriptions_list = sorted_subs(subs)
            .into_iter()
            .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
            .collect();
    }
    Entry {
        info,
        cid: c.cid,
        subs: subs.len(),
        pending,
        in_msgs,
        in_bytes,
        out_msgs,
        out_bytes,
        start,
        last,
        uptime,
        stop: if is_closed { end } else { 0 },
    }
}
