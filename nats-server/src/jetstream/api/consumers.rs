//! The consumer requests: create (the 2.9 `CREATE.<stream>.<name>[.<filter>]`, the
//! legacy ephemeral `CREATE.<stream>` and `DURABLE.CREATE.<stream>.<durable>`), names,
//! list, info and delete, with the reference's checks in its order.

use super::errors::{self, ApiError};
use super::types::*;
use super::{decode, error_body, is_empty_request, json, Endpoint, Request};
use crate::jetstream::consumer::{config, Consumer};
use crate::jetstream::stream::{now_nanos, Stream};
use crate::jetstream::JsAccount;
use crate::server::Server;
use std::sync::Arc;

const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;

/// Token `i` (1-based, as the reference's tokenAt) of a subject.
fn token(subject: &str, i: usize) -> &str {
    subject.split('.').nth(i - 1).unwrap_or_default()
}

#[derive(PartialEq)]
enum Kind {
    New,
    LegacyEphemeral,
    LegacyDurable,
}

pub(super) fn create(server: &Arc<Server>, jsa: &Arc<JsAccount>, req: &Request) -> (Vec<u8>, bool) {
    let ep = req.endpoint;
    let err = |e: ApiError| (error_body(ep, e), true);
    let mut creq: CreateConsumerRequest = match serde_json::from_slice(&req.payload) {
        Ok(r) => r,
        Err(_) => return err(errors::invalid_json()),
    };
    let subject = req.subject.as_str();
    let n = subject.split('.').count();
    let (kind, stream_name, consumer_name, filter) = if n == 5 {
        (Kind::LegacyEphemeral, token(subject, 5), "", String::new())
    } else if token(subject, 4) == "DURABLE" {
        if n != 7 {
            return err(errors::consumer_durable_not_in_subject());
        }
        (
            Kind::LegacyDurable,
            token(subject, 6),
            token(subject, 7),
            String::new(),
        )
    } else {
        let filter = if n > 7 {
            subject.split('.').skip(6).collect::<Vec<_>>().join(".")
        } else {
            String::new()
        };
        (Kind::New, token(subject, 5), token(subject, 6), filter)
    };
    if stream_name != creq.stream_name {
        return err(errors::stream_mismatch());
    }
    if consumer_name.contains(['\\', '/']) {
        return err(errors::consumer_name_path_separators());
    }
    let cfg = &mut creq.config;
    match kind {
        Kind::LegacyDurable => {
            if cfg.durable_name.is_empty() {
                return err(errors::consumer_durable_not_set());
            }
            if consumer_name != cfg.durable_name {
                return err(errors::consumer_durable_not_match_subject());
            }
        }
        Kind::New => {
            if !cfg.durable_name.is_empty() && consumer_name != cfg.durable_name {
                return err(errors::consumer_durable_not_match_subject());
            }
            cfg.name = consumer_name.to_string();
        }
        Kind::LegacyEphemeral => {
            if !cfg.durable_name.is_empty() {
                return err(errors::consumer_ephemeral_with_durable_name());
            }
        }
    }
    if !filter.is_empty() && cfg.filter_subject != filter {
        return err(errors::consumer_filter_subject_mismatch());
    }
    if cfg.num_replicas > 1 {
        return err(errors::replicas_not_supported());
    }
    let Some(st) = jsa.streams.lock().get(stream_name).cloned() else {
        return err(errors::stream_not_found());
    };
    match add_consumer(server, &st, creq.config) {
        Ok(info) => (
            json(
                ep.response_type(),
                None,
                ConsumerInfoBody { info: Some(info) },
            ),
            false,
        ),
        Err(e) => err(e),
    }
}

/// The reference's addConsumer for one server: defaults, checks, an update of an
/// existing one, the stream's limits, then a new consumer with its advisory.
pub(crate) fn add_consumer(
    server: &Arc<Server>,
    st: &Arc<Stream>,
    mut cfg: ConsumerConfig,
) -> Result<ConsumerInfo, ApiError> {
    let scfg = st.config();
    let limits = st.jsa.upgrade().map(|a| a.limits).unwrap_or_default();
    config::set_defaults(&mut cfg, limits.max_ack_pending);
    config::check(&cfg, &scfg, limits.max_ack_pending, false)?;
    let durable = !cfg.durable_name.is_empty();
    let cname = if durable {
        cfg.durable_name.clone()
    } else {
        cfg.name.clone()
    };
    if !cname.is_empty() {
        if let Some(existing) = st.consumer(&cname) {
            existing.update(&cfg)?;
            return Ok(existing.info());
        }
    }
    let count = st.public_consumers().len() as i64;
    let mut maxc = scfg.max_consumers;
    if maxc <= 0 || (limits.max_consumers > 0 && limits.max_consumers < maxc) {
        maxc = limits.max_consumers;
    }
    if maxc > 0 && count >= maxc {
        return Err(errors::maximum_consumers_limit());
    }
    if scfg.retention == Retention::WorkQueue && !cfg.direct {
        if cfg.ack_policy != AckPolicy::Explicit {
            return Err(errors::consumer_wq_requires_explicit_ack());
        }
        let others: Vec<String> = st
            .consumers
            .read()
            .values()
            .map(|c| c.config().filter_subject)
            .collect();
        if !others.is_empty() {
            if cfg.filter_subject.is_empty() {
                return Err(errors::consumer_wq_multiple_unfiltered());
            }
            let f = cfg.filter_subject.as_bytes();
            let unique = others.iter().all(|o| {
                !o.is_empty()
                    && !nats_common::subject::is_subset(f, o.as_bytes())
                    && !nats_common::subject::is_subset(o.as_bytes(), f)
            });
            if !unique {
                return Err(errors::consumer_wq_not_unique());
            }
        }
        if cfg.deliver_policy != DeliverPolicy::All {
            return Err(errors::consumer_wq_not_deliver_all());
        }
    }
    let name = if durable {
        if cfg.durable_name.len() > config::MAX_NAME_LEN {
            return Err(errors::consumer_name_too_long(config::MAX_NAME_LEN));
        }
        cfg.durable_name.clone()
    } else if !cfg.name.is_empty() {
        cfg.name.clone()
    } else {
        // A generated name is not written into the configuration the consumer shows
        // (the reference copies the configuration before naming it).
        loop {
            let n = crate::system::hash8(&nats_common::nuid::next());
            if st.consumer(&n).is_none() {
                break n;
            }
        }
    };
    if !config::valid_name(&name) {
        return Err(errors::consumer_bad_durable_name());
    }
    // A mirror's or source's (direct) consumer keeps nothing on disk, as the reference.
    let dir = (!cfg.direct)
        .then(|| st.consumer_dir(&name, cfg.mem_storage))
        .flatten();
    let cfg_durable = cfg.durable_name.clone();
    let c = Consumer::new(server, st, name, cfg, now_nanos(), dir, None);
    if let Err(e) = c.write_meta() {
        // Logged with the cause; the requester gets the reference's generic text.
        tracing::warn!(
            "Consumer create failed for '{} > {} > {}': {}",
            st.account.name,
            st.name,
            cfg_durable,
            errors::consumer_store_failed(e.to_string()).description
        );
        return Err(errors::consumer_create("error creating store for consumer"));
    }
    // A mirror's or source's consumer answers with where it starts (it delivers at once
    // to its internal subscription, and its maker skips up to there).
    let early = c.is_direct().then(|| c.info());
    c.start(server);
    st.add_consumer(c.clone());
    let info = early.unwrap_or_else(|| c.info());
    c.advisory_action("create");
    Ok(info)
}

pub(super) fn names_or_list(jsa: &Arc<JsAccount>, req: &Request) -> (Vec<u8>, bool) {
    let ep = req.endpoint;
    let err = |e: ApiError| (error_body(ep, e), true);
    let mut offset = 0i64;
    if !is_empty_request(&req.payload) {
        match decode::<NamesRequest>(&req.payload) {
            Ok(r) => offset = r.offset,
            Err(e) => return err(e),
        }
    }
    let Some(st) = jsa.streams.lock().get(token(&req.subject, 5)).cloned() else {
        return err(errors::stream_not_found());
    };
    let all: Vec<Arc<Consumer>> = st.public_consumers();
    let total = all.len();
    let offset = (offset.max(0) as usize).min(total);
    let list = ep == Endpoint::ConsumerList;
    let limit = if list { LIST_LIMIT } else { NAMES_LIMIT };
    let page = all.into_iter().skip(offset).take(limit);
    let paged = Paged {
        total,
        offset,
        limit,
    };
    let body = if list {
        json(
            ep.response_type(),
            None,
            ConsumerListBody {
                paged,
                consumers: page.map(|c| c.info()).collect(),
            },
        )
    } else {
        json(
            ep.response_type(),
            None,
            ConsumerNamesBody {
                paged,
                consumers: page.map(|c| c.name.clone()).collect(),
            },
        )
    };
    (body, false)
}

/// INFO and DELETE: an empty body, then the stream named in the subject.
fn empty_request_stream(jsa: &JsAccount, req: &Request) -> Result<Arc<Stream>, ApiError> {
    if !is_empty_request(&req.payload) {
        return Err(errors::not_empty_request());
    }
    jsa.streams
        .lock()
        .get(token(&req.subject, 5))
        .cloned()
        .ok_or_else(errors::stream_not_found)
}

pub(super) fn info(jsa: &Arc<JsAccount>, req: &Request) -> (Vec<u8>, bool) {
    let ep = req.endpoint;
    let err = |e: ApiError| (error_body(ep, e), true);
    let st = match empty_request_stream(jsa, req) {
        Ok(st) => st,
        Err(e) => return err(e),
    };
    let Some(c) = st.consumer(token(&req.subject, 6)) else {
        return err(errors::consumer_not_found());
    };
    (
        json(
            ep.response_type(),
            None,
            ConsumerInfoBody {
                info: Some(c.info()),
            },
        ),
        false,
    )
}

pub(super) fn delete(server: &Arc<Server>, jsa: &Arc<JsAccount>, req: &Request) -> (Vec<u8>, bool) {
    let ep = req.endpoint;
    let err = |e: ApiError| (error_body(ep, e), true);
    let st = match empty_request_stream(jsa, req) {
        Ok(st) => st,
        Err(e) => return err(e),
    };
    if !st.delete_consumer(server, token(&req.subject, 6)) {
        return err(errors::consumer_not_found());
    }
    (
        json(ep.response_type(), None, SuccessBody { success: true }),
        false,
    )
}
