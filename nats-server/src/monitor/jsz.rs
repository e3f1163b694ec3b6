//! `/jsz` and the `jetstream` block of `/varz`: JetStream's settings and totals, or the
//! reference's answer for a server without JetStream.
//!
//! With JetStream on, `accounts=true` adds `account_details` (one entry per JetStream
//! account), `streams=true` each account's `stream_detail`, `consumers=true` each stream's
//! `consumer_detail`, and `config=true` their configurations, as the reference.

use super::absent::{answer, now};
use super::{go_json_pretty, Mon};
use crate::server::Server;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Serialize;
use std::sync::atomic::Ordering;

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
pub struct JsConfig {
    max_memory: i64,
    max_storage: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    store_dir: String,
    #[serde(skip_serializing_if = "is_false")]
    compress_ok: bool,
}

#[derive(Serialize)]
struct JsApi {
    total: u64,
    errors: u64,
}

#[derive(Serialize)]
struct AccountDetail {
    name: String,
    id: String,
    memory: u64,
    storage: u64,
    /// The reference shows -1 cast to an unsigned number here.
    reserved_memory: u64,
    reserved_storage: u64,
    accounts: u64,
    ha_assets: u64,
    api: JsApi,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stream_detail: Vec<StreamDetail>,
}

/// A stream in `stream_detail`.
#[derive(Serialize)]
struct StreamDetail {
    name: String,
    created: String,
    cluster: Leader,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<crate::jetstream::api::types::StreamConfig>,
    state: crate::jetstream::api::types::StreamState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    consumer_detail: Vec<serde_json::Value>,
}

/// The reference's ClusterInfo of a single server: this server leads everything.
#[derive(Serialize)]
struct Leader {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    leader: String,
}

/// What `/jsz` was asked to show.
#[derive(Clone, Copy, Default)]
struct Detail {
    accounts: bool,
    streams: bool,
    consumers: bool,
    config: bool,
}

#[derive(Serialize)]
pub struct Jsz {
    server_id: String,
    now: String,
    #[serde(skip_serializing_if = "is_false")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    account_details: Option<Vec<AccountDetail>>,
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
            let consumers = p.boolean("consumers")?;
            let streams = p.boolean("streams")? || consumers;
            let d = Detail {
                accounts: p.boolean("accounts")? || streams,
                streams,
                consumers,
                config: p.boolean("config")?,
            };
            Ok(go_json_pretty(&jsz_with(&mon.server, d)))
        },
    )
}

pub fn jsz_data(server: &Server) -> Jsz {
    jsz_with(server, Detail::default())
}

fn jsz_with(server: &Server, d: Detail) -> Jsz {
    let Some(js) = server.jetstream() else {
        return Jsz {
            server_id: server.id.clone(),
            now: now(),
            disabled: true,
            config: JsConfig {
                max_memory: 0,
                max_storage: 0,
                store_dir: String::new(),
                compress_ok: false,
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
            account_details: None,
        };
    };
    let accounts = js.accounts();
    let u = js.usage();
    let account_details = d.accounts.then(|| {
        accounts
            .iter()
            .map(|a| {
                let au = a.usage();
                AccountDetail {
                    name: a.account.name.clone(),
                    id: a.account.name.clone(),
                    memory: au.memory,
                    storage: au.storage,
                    // The account's limits, -1 shown as an unsigned number as by the reference.
                    reserved_memory: a.limits.max_memory as u64,
                    reserved_storage: a.limits.max_store as u64,
                    accounts: 0,
                    ha_assets: 0,
                    api: JsApi {
                        total: a.api_total.load(Ordering::Relaxed),
                        errors: a.api_errors.load(Ordering::Relaxed),
                    },
                    stream_detail: if d.streams {
                        stream_details(server, a, d)
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    });
    Jsz {
        server_id: server.id.clone(),
        now: now(),
        disabled: false,
        config: config(&js),
        memory: u.memory,
        storage: u.storage,
        reserved_memory: u.reserved_memory,
        reserved_storage: u.reserved_storage,
        accounts: accounts.len() as u64,
        ha_assets: 0,
        api: JsApi {
            total: js.api_total.load(Ordering::Relaxed),
            errors: js.api_errors.load(Ordering::Relaxed),
        },
        streams: u.streams as u64,
        consumers: u.consumers as u64,
        messages: u.messages,
        bytes: u.bytes,
        account_details,
    }
}

fn stream_details(
    server: &Server,
    a: &crate::jetstream::JsAccount,
    d: Detail,
) -> Vec<StreamDetail> {
    let streams: Vec<_> = a.streams.lock().values().cloned().collect();
    streams
        .iter()
        .map(|st| {
            let info = st.info();
            let consumer_detail = if d.consumers {
                let cs: Vec<_> = st.public_consumers();
                cs.iter()
                    .filter_map(|c| {
                        let mut v = serde_json::to_value(c.info()).ok()?;
                        if !d.config {
                            v.as_object_mut()?.remove("config");
                        }
                        Some(v)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            StreamDetail {
                name: st.name.clone(),
                created: info.created,
                cluster: Leader {
                    name: server.cluster.name(),
                    leader: server.name.clone(),
                },
                config: d.config.then_some(info.config),
                state: info.state,
                consumer_detail,
            }
        })
        .collect()
}

fn config(js: &crate::jetstream::JetStream) -> JsConfig {
    JsConfig {
        max_memory: js.config.max_memory,
        max_storage: js.config.max_storage,
        store_dir: js.config.store_dir.display().to_string(),
        compress_ok: js.config.compress_ok,
    }
}

/// The `jetstream` block of /varz: `{}` without JetStream.
pub fn varz_block(server: &Server) -> nats_common::monitor::JetStreamVarz {
    use nats_common::monitor::{JetStreamApiStats, JetStreamVarzConfig, JetStreamVarzStats};
    let Some(js) = server.jetstream() else {
        return Default::default();
    };
    let u = js.usage();
    nats_common::monitor::JetStreamVarz {
        config: Some(JetStreamVarzConfig {
            max_memory: js.config.max_memory,
            max_storage: js.config.max_storage,
            store_dir: js.config.store_dir.display().to_string(),
            domain: String::new(),
            compress_ok: js.config.compress_ok,
        }),
        stats: Some(JetStreamVarzStats {
            memory: u.memory,
            storage: u.storage,
            reserved_memory: u.reserved_memory,
            reserved_storage: u.reserved_storage,
            accounts: js.accounts().len() as u64,
            ha_assets: 0,
            api: JetStreamApiStats {
                total: js.api_total.load(Ordering::Relaxed),
                errors: js.api_errors.load(Ordering::Relaxed),
            },
        }),
        meta: None,
    }
}
