//! The `$JS.API` requests: account info, the stream and consumer requests, with the
//! reference's response types, checks in its order, and errors.
//!
//! Each endpoint is its own internal subscription of the system account, beside a
//! catch-all `$JS.API.>` that takes what no endpoint answers (templates, snapshots, peer
//! removal, a pull request for a consumer that does not exist) without answering, as the
//! reference's dispatcher: the requester times out. `CONSUMER.MSG.NEXT` is not an API
//! endpoint: each pull consumer subscribes its own in its account.

pub(crate) mod consumers;
pub mod errors;
pub mod gojson;
pub mod types;

use super::advisory::{self, Advisory};
use super::store::Purge;
use super::stream::{self, Stream};
use super::{count_api, JetStream, JsAccount};
use crate::server::Server;
use base64::Engine as _;
use errors::ApiError;
use nats_common::headers::Headers;
use serde::Serialize;
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use types::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Info,
    StreamCreate,
    StreamUpdate,
    StreamNames,
    StreamList,
    StreamInfo,
    StreamDelete,
    StreamPurge,
    MsgDelete,
    MsgGet,
    StreamLeaderStepDown,
    ConsumerCreate,
    ConsumerCreateEx,
    DurableCreate,
    ConsumerNames,
    ConsumerList,
    ConsumerInfo,
    ConsumerDelete,
    ConsumerLeaderStepDown,
    /// Everything else under `$JS.API.>`: taken and left unanswered, as the reference's
    /// catch-all subscription does (the requester times out; no "no responders").
    Other,
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::Info,
    Endpoint::StreamCreate,
    Endpoint::StreamUpdate,
    Endpoint::StreamNames,
    Endpoint::StreamList,
    Endpoint::StreamInfo,
    Endpoint::StreamDelete,
    Endpoint::StreamPurge,
    Endpoint::MsgDelete,
    Endpoint::MsgGet,
    Endpoint::StreamLeaderStepDown,
    Endpoint::ConsumerCreate,
    Endpoint::ConsumerCreateEx,
    Endpoint::DurableCreate,
    Endpoint::ConsumerNames,
    Endpoint::ConsumerList,
    Endpoint::ConsumerInfo,
    Endpoint::ConsumerDelete,
    Endpoint::ConsumerLeaderStepDown,
    Endpoint::Other,
];

impl Endpoint {
    pub fn subject(self) -> &'static str {
        match self {
            Endpoint::Info => "$JS.API.INFO",
            Endpoint::StreamCreate => "$JS.API.STREAM.CREATE.*",
            Endpoint::StreamUpdate => "$JS.API.STREAM.UPDATE.*",
            Endpoint::StreamNames => "$JS.API.STREAM.NAMES",
            Endpoint::StreamList => "$JS.API.STREAM.LIST",
            Endpoint::StreamInfo => "$JS.API.STREAM.INFO.*",
            Endpoint::StreamDelete => "$JS.API.STREAM.DELETE.*",
            Endpoint::StreamPurge => "$JS.API.STREAM.PURGE.*",
            Endpoint::MsgDelete => "$JS.API.STREAM.MSG.DELETE.*",
            Endpoint::MsgGet => "$JS.API.STREAM.MSG.GET.*",
            Endpoint::StreamLeaderStepDown => "$JS.API.STREAM.LEADER.STEPDOWN.*",
            Endpoint::ConsumerCreate => "$JS.API.CONSUMER.CREATE.*",
            Endpoint::ConsumerCreateEx => "$JS.API.CONSUMER.CREATE.*.>",
            Endpoint::DurableCreate => "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
            Endpoint::ConsumerNames => "$JS.API.CONSUMER.NAMES.*",
            Endpoint::ConsumerList => "$JS.API.CONSUMER.LIST.*",
            Endpoint::ConsumerInfo => "$JS.API.CONSUMER.INFO.*.*",
            Endpoint::ConsumerDelete => "$JS.API.CONSUMER.DELETE.*.*",
            Endpoint::ConsumerLeaderStepDown => "$JS.API.CONSUMER.LEADER.STEPDOWN.*.*",
            Endpoint::Other => "$JS.API.>",
        }
    }

    fn response_type(self) -> &'static str {
        match self {
            Endpoint::Info => "io.nats.jetstream.api.v1.account_info_response",
            Endpoint::StreamCreate => "io.nats.jetstream.api.v1.stream_create_response",
            Endpoint::StreamUpdate => "io.nats.jetstream.api.v1.stream_update_response",
            Endpoint::StreamNames => "io.nats.jetstream.api.v1.stream_names_response",
            Endpoint::StreamList => "io.nats.jetstream.api.v1.stream_list_response",
            Endpoint::StreamInfo => "io.nats.jetstream.api.v1.stream_info_response",
            Endpoint::StreamDelete => "io.nats.jetstream.api.v1.stream_delete_response",
            Endpoint::StreamPurge => "io.nats.jetstream.api.v1.stream_purge_response",
            Endpoint::MsgDelete => "io.nats.jetstream.api.v1.stream_msg_delete_response",
            Endpoint::MsgGet => "io.nats.jetstream.api.v1.stream_msg_get_response",
            Endpoint::StreamLeaderStepDown => {
                "io.nats.jetstream.api.v1.stream_leader_stepdown_response"
            }
            Endpoint::ConsumerCreate | Endpoint::ConsumerCreateEx | Endpoint::DurableCreate => {
                "io.nats.jetstream.api.v1.consumer_create_response"
            }
            Endpoint::ConsumerNames => "io.nats.jetstream.api.v1.consumer_names_response",
            Endpoint::ConsumerList => "io.nats.jetstream.api.v1.consumer_list_response",
            Endpoint::ConsumerInfo => "io.nats.jetstream.api.v1.consumer_info_response",
            Endpoint::ConsumerDelete => "io.nats.jetstream.api.v1.consumer_delete_response",
            Endpoint::ConsumerLeaderStepDown => {
                "io.nats.jetstream.api.v1.consumer_leader_stepdown_response"
            }
            Endpoint::Other => "",
        }
    }
}

/// A request copied off the delivery path.
pub struct Request {
    pub endpoint: Endpoint,
    pub subject: String,
    pub reply: Option<Vec<u8>>,
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// The API task: requests in arrival order.
pub async fn run(js: Weak<JetStream>, mut rx: mpsc::UnboundedReceiver<Request>) {
    while let Some(req) = rx.recv().await {
        let Some(js) = js.upgrade() else { return };
        tokio::task::block_in_place(|| answer(&js, req));
    }
}

/// The requester's client information from the `Nats-Request-Info` header the service
/// import adds, and its account.
fn requester(headers: Option<&[u8]>) -> Option<(String, String)> {
    let h = Headers::parse(headers?).ok()?;
    let text = h.get("Nats-Request-Info")?;
    let info: serde_json::Value = serde_json::from_str(text).ok()?;
    let acc = info.get("acc")?.as_str()?.to_string();
    Some((acc, text.to_string()))
}

fn json<T: Serialize>(kind: &'static str, error: Option<ApiError>, body: T) -> Vec<u8> {
    crate::monitor::go_json(&Response { kind, error, body }).into_bytes()
}

/// Go's isEmptyRequest: no payload, `{}` or `null`... after trimming.
fn is_empty_request(p: &[u8]) -> bool {
    let s = String::from_utf8_lossy(p);
    let t = s.trim();
    if t.is_empty() {
        return true;
    }
    match serde_json::from_str::<serde_json::Value>(t) {
        Ok(serde_json::Value::Object(m)) => m.is_empty(),
        Ok(serde_json::Value::Null) => true,
        _ => false,
    }
}

/// Decodes a request body as Go's encoding/json would (an empty body is the zero value).
fn decode<T: serde::de::DeserializeOwned + Default>(p: &[u8]) -> Result<T, ApiError> {
    if p.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(p).map_err(|_| errors::invalid_json())
}

/// An error answer with the endpoint's own empty fields, as the reference's.
fn error_body(ep: Endpoint, e: ApiError) -> Vec<u8> {
    let kind = ep.response_type();
    match ep {
        Endpoint::StreamNames => json(
            kind,
            Some(e),
            NamesBody {
                paged: Paged::default(),
                streams: None,
            },
        ),
        Endpoint::StreamList => json(
            kind,
            Some(e),
            ListBody {
                paged: Paged::default(),
                streams: Vec::new(),
            },
        ),
        Endpoint::StreamInfo => json(
            kind,
            Some(e),
            StreamInfoBody {
                paged: Paged::default(),
                info: None,
            },
        ),
        Endpoint::StreamPurge => json(
            kind,
            Some(e),
            PurgeBody {
                success: false,
                purged: 0,
            },
        ),
        Endpoint::ConsumerNames => json(
            kind,
            Some(e),
            ConsumerNamesBody {
                paged: Paged::default(),
                consumers: Vec::new(),
            },
        ),
        Endpoint::ConsumerList => json(
            kind,
            Some(e),
            ConsumerListBody {
                paged: Paged::default(),
                consumers: Vec::new(),
            },
        ),
        Endpoint::ConsumerDelete
        | Endpoint::StreamLeaderStepDown
        | Endpoint::ConsumerLeaderStepDown => json(kind, Some(e), SuccessBody { success: false }),
        _ => json(kind, Some(e), Empty {}),
    }
}

fn answer(js: &Arc<JetStream>, req: Request) {
    let Some(server) = js.server() else { return };
    let Some((acc_name, client)) = requester(req.headers.as_deref()) else {
        // The reference ignores requests that did not come through the import.
        return;
    };
    let jsa = js.account(&acc_name);
    let ep = req.endpoint;

    let (body, is_err) = match &jsa {
        None => (error_body(ep, errors::not_enabled_for_account()), true),
        Some(jsa) => handle(js, &server, jsa, &req),
    };
    // A message got is answered outside the API figures, as by the reference.
    if ep != Endpoint::MsgGet || is_err {
        count_api(js, jsa.as_deref(), is_err);
    }
    if let (Some(reply), Some(sys)) = (&req.reply, server.accounts.system()) {
        server.send_internal(&sys, reply, None, None, &body);
    }
    // The audit advisory, in the requester's account.
    if let Some(acc) = server.accounts.get(&acc_name) {
        let mut a = Advisory::new("io.nats.jetstream.advisory.v1.api_audit")
            .with("server", server.name.clone())
            .with_raw("client", client)
            .with("subject", req.subject.clone());
        if !req.payload.is_empty() {
            a = a.with(
                "request",
                String::from_utf8_lossy(&req.payload).into_owned(),
            );
        }
        a.with("response", String::from_utf8_lossy(&body).into_owned())
            .plain()
            .send(&server, &acc, "$JS.EVENT.ADVISORY.API");
    }
}

/// The last token of the request subject: the stream's name.
fn stream_name(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or_default()
}

fn handle(
    js: &Arc<JetStream>,
    server: &Arc<Server>,
    jsa: &Arc<JsAccount>,
    req: &Request,
) -> (Vec<u8>, bool) {
    let ep = req.endpoint;
    let kind = ep.response_type();
    let p = &req.payload;
    match ep {
        Endpoint::Info => {
            let u = jsa.usage();
            let api = ApiStats {
                total: jsa.api_total.load(std::sync::atomic::Ordering::Relaxed),
                errors: jsa.api_errors.load(std::sync::atomic::Ordering::Relaxed),
            };
            let body = AccountInfoBody {
                memory: u.memory,
                storage: u.storage,
                streams: u.streams,
                consumers: u.all_consumers,
                limits: AccountLimits {
                    max_memory: jsa.limits.max_memory,
                    max_storage: jsa.limits.max_store,
                    max_streams: jsa.limits.max_streams,
                    max_consumers: jsa.limits.max_consumers,
                    max_ack_pending: jsa.limits.max_ack_pending,
                    memory_max_stream_bytes: jsa.limits.memory_max_stream_bytes,
                    storage_max_stream_bytes: jsa.limits.store_max_stream_bytes,
                    max_bytes_required: jsa.limits.max_bytes_required,
                },
                api,
            };
            (json(kind, None, body), false)
        }
        Endpoint::StreamCreate | Endpoint::StreamUpdate => {
            let err = |e: ApiError| (json(kind, Some(e), Empty {}), true);
            let cfg: StreamConfig = match decode(p) {
                Ok(c) => c,
                Err(e) => return err(e),
            };
            let name = stream_name(&req.subject);
            if name != cfg.name {
                return err(errors::stream_mismatch());
            }
            if ep == Endpoint::StreamCreate {
                if name.contains(['\\', '/']) {
                    return err(errors::stream_name_path_separators());
                }
                if cfg.sealed {
                    return err(errors::invalid_config(
                        "stream configuration for create can not be sealed",
                    ));
                }
                if cfg.mirror_direct && cfg.mirror.is_none() {
                    return err(errors::invalid_config(
                        "stream has no mirror but does have mirror direct",
                    ));
                }
                if let Err(e) = jsa.check_stream_limits(&cfg) {
                    return err(e);
                }
                match create_stream(js, server, jsa, &cfg) {
                    Ok((st, created)) => {
                        if created {
                            advisory::stream_action(server, &jsa.account, &st.name, "create");
                        }
                        // An identical stream that was already there answers as created.
                        let body = CreateBody {
                            info: Some(create_info(&st)),
                            did_create: true,
                        };
                        (json(kind, None, body), false)
                    }
                    Err(e) => err(e),
                }
            } else {
                let cfg = match stream::check_config_with(&cfg, &lookup(jsa)) {
                    Ok(c) => c,
                    Err(e) => return err(e),
                };
                if let Err(e) = jsa.check_stream_bytes(&cfg) {
                    return err(e);
                }
                let Some(st) = jsa.streams.lock().get(name).cloned() else {
                    return err(errors::stream_not_found());
                };
                if overlaps(jsa, &cfg.subjects, Some(name)) {
                    return err(errors::subject_overlap());
                }
                let old = st.config();
                let old_subjects = old.subjects.clone();
                if let Err(e) = st.update(cfg.clone()) {
                    return err(e);
                }
                if old.sources != cfg.sources {
                    crate::jetstream::mirror::update(server, &st);
                }
                if old_subjects != cfg.subjects {
                    st.unsubscribe(server);
                    st.subscribe(server);
                }
                update_direct(server, &st, &cfg);
                advisory::stream_action(server, &jsa.account, &st.name, "modify");
                (
                    json(
                        kind,
                        None,
                        CreateBody {
                            info: Some(st.info()),
                            did_create: false,
                        },
                    ),
                    false,
                )
            }
        }
        Endpoint::StreamNames | Endpoint::StreamList => {
            let list = ep == Endpoint::StreamList;
            let limit = if list { 256 } else { 1024 };
            let r: NamesRequest = match decode(p) {
                Ok(r) => r,
                Err(e) => {
                    let body = if list {
                        json(
                            kind,
                            Some(e),
                            ListBody {
                                paged: Paged::default(),
                                streams: Vec::new(),
                            },
                        )
                    } else {
                        json(
                            kind,
                            Some(e),
                            NamesBody {
                                paged: Paged::default(),
                                streams: None,
                            },
                        )
                    };
                    return (body, true);
                }
            };
            let streams: Vec<Arc<Stream>> = jsa
                .streams
                .lock()
                .values()
                .filter(|st| {
                    r.subject.is_empty()
                        || st.config().subjects.iter().any(|s| {
                            nats_common::subject::intersects(s.as_bytes(), r.subject.as_bytes())
                        })
                })
                .cloned()
                .collect();
            let total = streams.len();
            let offset = (r.offset.max(0) as usize).min(total);
            let page: Vec<Arc<Stream>> = streams.into_iter().skip(offset).take(limit).collect();
            let paged = Paged {
                total,
                offset,
                limit,
            };
            let body = if list {
                json(
                    kind,
                    None,
                    ListBody {
                        paged,
                        streams: page.iter().map(|s| s.info()).collect(),
                    },
                )
            } else {
                let names: Vec<String> = page.iter().map(|s| s.name.clone()).collect();
                json(
                    kind,
                    None,
                    NamesBody {
                        paged,
                        streams: (!names.is_empty()).then_some(names),
                    },
                )
            };
            (body, false)
        }
        Endpoint::StreamInfo => {
            let name = stream_name(&req.subject);
            let Some(st) = jsa.streams.lock().get(name).cloned() else {
                let body = StreamInfoBody {
                    paged: Paged::default(),
                    info: None,
                };
                return (json(kind, Some(errors::stream_not_found()), body), true);
            };
            let body = StreamInfoBody {
                paged: Paged::default(),
                info: Some(st.info()),
            };
            (json(kind, None, body), false)
        }
        Endpoint::StreamDelete => {
            let err = |e: ApiError| (json(kind, Some(e), SuccessBody { success: false }), true);
            let name = stream_name(&req.subject);
            let Some(st) = jsa.streams.lock().remove(name) else {
                return err(errors::stream_not_found());
            };
            st.unsubscribe(server);
            crate::jetstream::mirror::stop(server, &st);
            st.stop_consumers(server, true);
            if let Err(e) = st.delete() {
                return err(errors::stream_delete(e));
            }
            advisory::stream_action(server, &jsa.account, &st.name, "delete");
            (json(kind, None, SuccessBody { success: true }), false)
        }
        Endpoint::StreamPurge => {
            let err = |e: ApiError| {
                (
                    json(
                        kind,
                        Some(e),
                        PurgeBody {
                            success: false,
                            purged: 0,
                        },
                    ),
                    true,
                )
            };
            let name = stream_name(&req.subject);
            let Some(st) = jsa.streams.lock().get(name).cloned() else {
                return err(errors::stream_not_found());
            };
            let mut purge = Purge::default();
            if !is_empty_request(p) {
                let r: PurgeRequest = match decode(p) {
                    Ok(r) => r,
                    Err(e) => return err(e),
                };
                if r.seq > 0 && r.keep > 0 {
                    return err(errors::bad_request());
                }
                purge = Purge {
                    subject: (!r.filter.is_empty()).then_some(r.filter),
                    seq: (r.seq > 0).then_some(r.seq),
                    keep: (r.keep > 0).then_some(r.keep),
                };
            }
            let cfg = st.config();
            if cfg.sealed {
                return err(errors::stream_sealed());
            }
            if cfg.deny_purge {
                return err(errors::purge_failed("stream purge not permitted"));
            }
            match st.purge(&purge) {
                Ok(n) => (
                    json(
                        kind,
                        None,
                        PurgeBody {
                            success: true,
                            purged: n,
                        },
                    ),
                    false,
                ),
                // Answered as a success in the API figures, as the reference does.
                Err(e) => (err(errors::stream_general(e.to_string())).0, false),
            }
        }
        Endpoint::MsgDelete => {
            let err = |e: ApiError| (json(kind, Some(e), SuccessBody { success: false }), true);
            let name = stream_name(&req.subject);
            let Some(st) = jsa.streams.lock().get(name).cloned() else {
                return err(errors::stream_not_found());
            };
            if is_empty_request(p) {
                return err(errors::bad_request());
            }
            let r: MsgDeleteRequest = match decode(p) {
                Ok(r) => r,
                Err(e) => return err(e),
            };
            let cfg = st.config();
            if cfg.sealed {
                return err(errors::stream_sealed());
            }
            if cfg.deny_delete {
                return err(errors::msg_delete_failed("message delete not permitted"));
            }
            // The store's answer counts as a success in the API figures, as the
            // reference's does.
            match st.remove_msg(r.seq) {
                Ok(true) => (json(kind, None, SuccessBody { success: true }), false),
                Ok(false) => (err(errors::sequence_not_found(r.seq)).0, false),
                Err(e) => (err(errors::msg_delete_failed(e.to_string())).0, false),
            }
        }
        Endpoint::MsgGet => {
            let err = |e: ApiError| (json(kind, Some(e), MsgGetBody { message: None }), true);
            let name = stream_name(&req.subject);
            let Some(st) = jsa.streams.lock().get(name).cloned() else {
                return err(errors::stream_not_found());
            };
            if is_empty_request(p) {
                return err(errors::bad_request());
            }
            let r: MsgGetRequest = match decode(p) {
                Ok(r) => r,
                Err(e) => return err(e),
            };
            if (r.seq > 0 && !r.last_by_subj.is_empty())
                || (r.seq == 0 && r.last_by_subj.is_empty() && r.next_by_subj.is_empty())
                || (!r.last_by_subj.is_empty() && !r.next_by_subj.is_empty())
            {
                return err(errors::bad_request());
            }
            let got = if r.seq > 0 && r.next_by_subj.is_empty() {
                st.load(r.seq)
            } else if !r.next_by_subj.is_empty() {
                st.load_next(&r.next_by_subj, r.seq)
            } else {
                st.load_last(&r.last_by_subj)
            };
            let Ok(m) = got else {
                return err(errors::no_message_found());
            };
            let b64 = base64::engine::general_purpose::STANDARD;
            let msg = StoredMsg {
                subject: m.subject,
                seq: m.seq,
                hdrs: (!m.hdr.is_empty()).then(|| b64.encode(&m.hdr)),
                data: (!m.data.is_empty()).then(|| b64.encode(&m.data)),
                time: time_string(m.ts),
            };
            (json(kind, None, MsgGetBody { message: Some(msg) }), false)
        }
        Endpoint::StreamLeaderStepDown | Endpoint::ConsumerLeaderStepDown => {
            (error_body(ep, errors::cluster_required()), true)
        }
        Endpoint::ConsumerCreate | Endpoint::ConsumerCreateEx | Endpoint::DurableCreate => {
            consumers::create(server, jsa, req)
        }
        Endpoint::ConsumerNames | Endpoint::ConsumerList => consumers::names_or_list(jsa, req),
        Endpoint::ConsumerInfo => consumers::info(jsa, req),
        Endpoint::ConsumerDelete => consumers::delete(server, jsa, req),
        // Never queued (the delivery hook takes it and stops).
        Endpoint::Other => (Vec::new(), false),
    }
}

/// Whether `subjects` overlap a stream of the account other than `except`.
fn overlaps(jsa: &JsAccount, subjects: &[String], except: Option<&str>) -> bool {
    jsa.streams.lock().values().any(|st| {
        Some(st.name.as_str()) != except
            && st.config().subjects.iter().any(|a| {
                subjects
                    .iter()
                    .any(|b| nats_common::subject::intersects(a.as_bytes(), b.as_bytes()))
            })
    })
}

/// The reference's addStream for a single server.
fn create_stream(
    js: &Arc<JetStream>,
    server: &Arc<Server>,
    jsa: &Arc<JsAccount>,
    cfg: &StreamConfig,
) -> Result<(Arc<Stream>, bool), ApiError> {
    let cfg = stream::check_config_with(cfg, &lookup(jsa))?;
    jsa.check_stream_bytes(&cfg)?;
    if cfg.num_replicas > 1 {
        return Err(errors::replicas_not_supported());
    }
    if let Some(st) = jsa.streams.lock().get(&cfg.name).cloned() {
        return if st.config() == cfg {
            Ok((st, false))
        } else {
            Err(errors::stream_name_exist())
        };
    }
    js.check_reservation(&cfg)?;
    if overlaps(jsa, &cfg.subjects, None) {
        return Err(errors::subject_overlap());
    }
    let dir = jsa.streams_dir(js).join(&cfg.name);
    let st = Stream::open(server, jsa, dir, cfg.clone(), stream::now_nanos()).map_err(|e| {
        tracing::warn!(
            "Stream create failed for '{} > {}': {e}",
            jsa.account.name,
            cfg.name
        );
        errors::stream_create("error creating store for stream")
    })?;
    st.subscribe(server);
    update_direct(server, &st, &cfg);
    jsa.streams.lock().insert(cfg.name.clone(), st.clone());
    crate::jetstream::mirror::start(server, &st);
    Ok((st, true))
}

/// A create's answer: stream info without the mirror's or sources' progress, as the
/// reference's.
fn create_info(st: &Stream) -> super::api::types::StreamInfo {
    let mut i = st.info();
    i.mirror = None;
    i.sources.clear();
    i
}

/// The account's streams' configurations by name (the mirror and source checks).
fn lookup(jsa: &Arc<JsAccount>) -> impl Fn(&str) -> Option<StreamConfig> + '_ {
    move |name: &str| jsa.streams.lock().get(name).map(|st| st.config())
}

/// Subscribes (or not) the stream's direct get subjects after its `allow_direct`.
fn update_direct(server: &Arc<Server>, st: &Arc<Stream>, cfg: &StreamConfig) {
    st.set_direct(server, cfg.allow_direct);
}

/// `$JS.API.DIRECT.GET.<stream>` (JSON request) and `…<stream>.<subject>` (last message
/// on the subject): the message itself with `Nats-Stream`, `Nats-Subject`,
/// `Nats-Sequence`, `Nats-Time-Stamp` headers, or a status.
pub fn direct_get(
    server: &Arc<Server>,
    st: &Arc<Stream>,
    subject: String,
    reply: Vec<u8>,
    payload: Vec<u8>,
) {
    let server = server.clone();
    let st = st.clone();
    tokio::spawn(async move {
        let prefix = format!("$JS.API.DIRECT.GET.{}", st.name);
        let key = subject
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_prefix('.'))
            .unwrap_or_default()
            .to_string();
        let by_subject = subject.len() > prefix.len();
        let status = |s: &str| format!("NATS/1.0 {s}\r\n\r\n").into_bytes();
        let req = if by_subject {
            if !payload.is_empty() || key.is_empty() {
                Err(status("408 Bad Request"))
            } else {
                Ok(MsgGetRequest {
                    last_by_subj: key,
                    ..MsgGetRequest::default()
                })
            }
        } else if payload.is_empty() {
            Err(status("408 Empty Request"))
        } else {
            match serde_json::from_slice::<MsgGetRequest>(&payload) {
                Err(_) => Err(status("408 Malformed Request")),
                Ok(r) if r.seq == 0 && r.last_by_subj.is_empty() && r.next_by_subj.is_empty() => {
                    Err(status("408 Empty Request"))
                }
                Ok(r)
                    if (r.seq > 0 && !r.last_by_subj.is_empty())
                        || (!r.last_by_subj.is_empty() && !r.next_by_subj.is_empty()) =>
                {
                    Err(status("408 Bad Request"))
                }
                Ok(r) => Ok(r),
            }
        };
        let (hdr, data) = match req {
            Err(h) => (h, Vec::new()),
            Ok(r) => {
                let got = if r.seq > 0 && r.next_by_subj.is_empty() {
                    st.load(r.seq)
                } else if !r.next_by_subj.is_empty() {
                    st.load_next(&r.next_by_subj, r.seq)
                } else {
                    st.load_last(&r.last_by_subj)
                };
                match got {
                    Err(_) => (status("404 Message Not Found"), Vec::new()),
                    Ok(m) => {
                        let ts = time_string(m.ts);
                        let extra = format!(
                            "Nats-Stream: {}\r\nNats-Subject: {}\r\nNats-Sequence: {}\r\nNats-Time-Stamp: {ts}\r\n\r\n",
                            st.name, m.subject, m.seq
                        );
                        let mut h = if m.hdr.len() >= 2 {
                            m.hdr[..m.hdr.len() - 2].to_vec()
                        } else {
                            b"NATS/1.0\r\n".to_vec()
                        };
                        h.extend_from_slice(extra.as_bytes());
                        (h, m.data)
                    }
                }
            }
        };
        server.send_internal(&st.account, &reply, Some(b""), Some(&hdr), &data);
    });
}
