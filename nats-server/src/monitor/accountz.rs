//! `/accountz` (the accounts, one account's details: exports, imports, index statistics)
//! and `/accstatz` (message and connection counters per account). The same data answers
//! the system account's `ACCOUNTZ`, `INFO` and `STATZ` requests.

use super::query::Params;
use super::{bad_request, go_json_pretty, respond, Mon};
use crate::accounts::Account;
use crate::options::ResponseType;
use crate::server::Server;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::{format_rfc3339_nanos, SublistStats};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Serialize)]
pub struct ExportInfo {
    subject: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
}

#[derive(Serialize)]
pub struct ImportInfo {
    subject: String,
    account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    local_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    to: String,
    #[serde(rename = "type")]
    kind: &'static str,
    invalid: bool,
    share: bool,
    tracking: bool,
}

#[derive(Serialize)]
pub struct AccountInfo {
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exports: Vec<ExportInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<ImportInfo>,
    sublist_stats: SublistStats,
}

#[derive(Serialize)]
pub struct Accountz {
    server_id: String,
    now: String,
    system_account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    accounts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_detail: Option<AccountInfo>,
}

pub fn sublist_stats(acc: &Account) -> SublistStats {
    let st = acc.sublist.read().stats();
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

/// One account's details, `None` when there is no such account.
pub fn account_info(server: &Server, name: &str) -> Option<AccountInfo> {
    let acc = server.accounts.get(name)?;
    let is_system = server
        .accounts
        .system()
        .is_some_and(|s| Arc::ptr_eq(&s, &acc));
    let exports = acc
        .exports
        .read()
        .iter()
        .map(|x| ExportInfo {
            subject: x.subject.clone(),
            kind: if x.service { "service" } else { "stream" },
            response_type: x.service.then_some(match x.response_type {
                ResponseType::Singleton => "Singleton",
                ResponseType::Streamed => "Streamed",
                ResponseType::Chunked => "Chunked",
            }),
        })
        .collect();
    let mut imports: Vec<ImportInfo> = acc
        .stream_imports
        .read()
        .iter()
        .map(|i| ImportInfo {
            subject: i.from.clone(),
            account: i.exporter.name.clone(),
            local_subject: i.to.clone(),
            to: String::new(),
            kind: "stream",
            invalid: false,
            share: false,
            tracking: false,
        })
        .collect();
    imports.extend(acc.service_imports.read().iter().map(|i| ImportInfo {
        subject: i.from.clone(),
        account: i.exporter.name.clone(),
        local_subject: String::new(),
        to: i.to.clone(),
        kind: "service",
        invalid: false,
        share: false,
        tracking: false,
    }));
    let stats = sublist_stats(&acc);
    Some(AccountInfo {
        account_name: acc.name.clone(),
        update_time: format_rfc3339_nanos(acc.created),
        is_system,
        expired: false,
        complete: true,
        jetstream_enabled: server
            .jetstream()
            .is_some_and(|js| js.account(&acc.name).is_some()),
        leafnode_connections: server.leafs.num_for_account(&acc.name),
        client_connections: acc.num_clients.load(Relaxed),
        subscriptions: stats.num_subscriptions,
        exports,
        imports,
        sublist_stats: stats,
    })
}

/// Every account's name, or one account's details (`acc`); an unknown account is an error
/// with the reference's text.
pub fn accountz_data(server: &Server, acc: &str) -> Result<Accountz, String> {
    let mut out = Accountz {
        server_id: server.id.clone(),
        now: format_rfc3339_nanos(SystemTime::now()),
        system_account: server
            .accounts
            .system()
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        accounts: None,
        account_detail: None,
    };
    if acc.is_empty() {
        out.accounts = Some(
            server
                .accounts
                .all()
                .iter()
                .map(|a| a.name.clone())
                .collect(),
        );
    } else {
        out.account_detail =
            Some(account_info(server, acc).ok_or_else(|| format!("Account {acc} does not exist"))?);
    }
    Ok(out)
}

pub async fn accountz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    mon.count("/accountz");
    match accountz_data(&mon.server, params.get("acc")) {
        Ok(a) => respond(&params, StatusCode::OK, go_json_pretty(&a)),
        Err(e) => bad_request(e),
    }
}

#[derive(Serialize)]
pub struct DataStats {
    msgs: u64,
    bytes: u64,
}

#[derive(Serialize)]
pub struct AccountStat {
    acc: String,
    conns: u64,
    leafnodes: u64,
    total_conns: u64,
    sent: DataStats,
    received: DataStats,
    slow_consumers: u64,
}

#[derive(Serialize)]
pub struct AccountStatz {
    server_id: String,
    now: String,
    pub account_statz: Vec<AccountStat>,
}

/// Counters of the accounts named (all when none are), those without local client
/// connections only with `unused`.
pub fn account_statz(server: &Server, names: &[String], unused: bool) -> AccountStatz {
    let list = server
        .accounts
        .all()
        .into_iter()
        .filter(|a| names.is_empty() || names.contains(&a.name))
        .filter_map(|a| {
            let conns = a.num_clients.load(Relaxed);
            let leafs = server.leafs.num_for_account(&a.name);
            if conns + leafs == 0 && !unused {
                return None;
            }
            let st = &a.stats;
            Some(AccountStat {
                acc: a.name.clone(),
                conns,
                leafnodes: leafs,
                total_conns: conns + leafs,
                sent: DataStats {
                    msgs: st.out_msgs.load(Relaxed),
                    bytes: st.out_bytes.load(Relaxed),
                },
                received: DataStats {
                    msgs: st.in_msgs.load(Relaxed),
                    bytes: st.in_bytes.load(Relaxed),
                },
                slow_consumers: st.slow_consumers.load(Relaxed),
            })
        })
        .collect();
    AccountStatz {
        server_id: server.id.clone(),
        now: format_rfc3339_nanos(SystemTime::now()),
        account_statz: list,
    }
}

/// `/accstatz`: accounts with client connections (all with `unused`).
pub async fn accstatz(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    mon.count("/accstatz");
    match params.boolean("unused") {
        Ok(unused) => respond(
            &params,
            StatusCode::OK,
            go_json_pretty(&account_statz(&mon.server, &[], unused)),
        ),
        Err(e) => bad_request(e),
    }
}

/// How many client subscriptions of `acc` a message on `subject` (or, with wildcards,
/// any subject within it) would reach, optionally in queue group `queue`.
pub fn count_client_subs(acc: &Account, subject: &[u8], queue: Option<&[u8]>) -> u64 {
    let mut n = 0;
    acc.sublist.read().for_each(|subj, q, sub| {
        if sub.client.kind != crate::client::Kind::Client {
            return;
        }
        let hit = if nats_common::subject::has_wildcard(subject) {
            nats_common::subject::is_subset(subj, subject)
        } else {
            nats_common::subject::matches(subj, subject)
        };
        if hit && queue.is_none_or(|want| q == Some(want)) {
            n += 1;
        }
    });
    n
}
