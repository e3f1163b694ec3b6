//! Mirrors and sources on one server, as the reference 2.9 does them: for each origin
//! stream the stream makes a `direct` push consumer on the origin (ack none, flow
//! control, 1 s idle heartbeats) delivering to an internal subscription on
//! `$JS.M.<random>` (mirror) or `$JS.S.<random>` (source), and stores what comes:
//!
//! - a mirror keeps the origin's sequences and times (gaps skipped);
//! - a source adds the message as published, with `Nats-Stream-Source: <name> <seq>`.
//!
//! One task per stream takes the delivered messages in order (off the delivery path,
//! like the reference's queue) and checks every second whether an origin needs its
//! consumer (made anew when missing, when the origin appears later, when the heartbeats
//! tell of a gap, or after 3 s of silence; at most every 2 s). A restart continues after
//! the last stored sequence (mirror) or the last `Nats-Stream-Source` per origin (sources).
//!
//! Lock order: `Stream::origins` may be held while reading the stream's store, never the
//! other way round (stream info takes the origins' figures first).

use super::api::errors::{self, ApiError};
use super::api::types::{
    AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig, StreamSource, StreamSourceInfo,
};
use super::stream::{Inbound, Stream};
use crate::client::Subscription;
use crate::server::Server;
use nats_common::headers::Headers;
use nats_common::subject;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::warn;

/// The reference's sourceHealthCheckInterval (heartbeats, the health check).
const HEALTH_CHECK: Duration = Duration::from_secs(1);
/// The reference's sourceConsumerRetryThreshold.
const RETRY_THRESHOLD: Duration = Duration::from_secs(2);
const ACK_WAIT_22H: i64 = 22 * 3600 * 1_000_000_000;

/// A message delivered by an origin's consumer.
pub struct InMsg {
    pub subject: String,
    pub reply: String,
    pub hdr: Vec<u8>,
    pub data: Vec<u8>,
}

/// Where delivered messages go: (generation, origin index, message).
pub type Sender = mpsc::UnboundedSender<(u64, usize, InMsg)>;

/// One origin's progress (the reference's sourceInfo).
struct Origin {
    cfg: StreamSource,
    /// The name the source header carries (the reference's index name).
    iname: String,
    sseq: u64,
    dseq: u64,
    lag: u64,
    last: Option<Instant>,
    /// The consumer on the origin (empty: none).
    cname: String,
    sub: Option<Arc<Subscription>>,
    lreq: Option<Instant>,
    /// The stream's last message time at start (sources fall back to it).
    start: i64,
    err: Option<ApiError>,
    retry: bool,
}

impl Origin {
    fn new(cfg: StreamSource) -> Origin {
        Origin {
            iname: cfg.name.clone(),
            cfg,
            sseq: 0,
            dseq: 0,
            lag: 0,
            last: None,
            cname: String::new(),
            sub: None,
            lreq: None,
            start: 0,
            err: None,
            retry: false,
        }
    }

    fn info(&self) -> StreamSourceInfo {
        StreamSourceInfo {
            name: self.cfg.name.clone(),
            lag: self.lag,
            active: self
                .last
                .map_or(-1, |t| t.elapsed().as_nanos().min(i64::MAX as u128) as i64),
            error: self.err.clone(),
        }
    }
}

/// A stream's mirror or sources.
#[derive(Default)]
pub struct Origins {
    mirror: bool,
    list: Vec<Origin>,
    /// Bumped on every (re)start; messages and tasks of older ones are ignored.
    gen: u64,
    tx: Option<Sender>,
}

impl Origins {
    /// `mirror` and `sources` of stream info.
    pub fn info(&self) -> (Option<StreamSourceInfo>, Vec<StreamSourceInfo>) {
        if self.mirror {
            (self.list.first().map(Origin::info), Vec::new())
        } else {
            (None, self.list.iter().map(Origin::info).collect())
        }
    }
}

/// The reference's checkStreamCfg for mirrors and sources (in its place among the
/// other checks): `lookup` gives the account's other streams' configurations.
pub fn check_config(
    c: &mut StreamConfig,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<(), ApiError> {
    if c.sources.as_ref().is_some_and(Vec::is_empty) {
        c.sources = None;
    }
    let external = c.mirror.iter().chain(c.sources.iter().flatten());
    if external.into_iter().any(|s| s.external.is_some()) {
        // Not built yet (README): refused rather than accepted and ignored.
        return Err(errors::invalid_config(
            "stream mirrors, sources and republish are not supported by this server yet",
        ));
    }
    let overlap = |filter: &str, subs: &[String]| {
        filter.is_empty()
            || subs.is_empty()
            || subs
                .iter()
                .any(|s| subject::intersects(s.as_bytes(), filter.as_bytes()))
    };
    if let Some(m) = &c.mirror {
        if !c.subjects.is_empty() {
            return Err(errors::mirror_with_subjects());
        }
        if c.sources.is_some() {
            return Err(errors::mirror_with_sources());
        }
        if let Some(o) = lookup(&m.name) {
            if c.max_msg_size > 0 && o.max_msg_size > 0 && c.max_msg_size < o.max_msg_size {
                return Err(errors::mirror_max_message_size_too_big());
            }
            if !overlap(&m.filter_subject, &o.subjects) {
                return Err(errors::invalid_config(format!(
                    "mirror '{}' filter subject '{}' does not overlap with any origin stream subject",
                    m.name, m.filter_subject
                )));
            }
            c.mirror_direct = o.allow_direct;
        }
    }
    if let Some(sources) = &c.sources {
        // As the reference: the subjects of the sources seen so far.
        let mut subs: Vec<String> = Vec::new();
        for s in sources {
            let Some(o) = lookup(&s.name) else { continue };
            subs.extend(o.subjects.iter().cloned());
            if c.max_msg_size > 0 && o.max_msg_size > 0 && c.max_msg_size < o.max_msg_size {
                return Err(errors::source_max_message_size_too_big());
            }
            if !overlap(&s.filter_subject, &subs) {
                return Err(errors::invalid_config(format!(
                    "source '{}' filter subject '{}' does not overlap with any origin stream subject",
                    s.name, s.filter_subject
                )));
            }
        }
    }
    // Cycles through sources and mirrors.
    let mut to_visit = vec![c.clone()];
    let mut visited = std::collections::HashSet::new();
    while !to_visit.is_empty() {
        let cfg = to_visit.remove(0);
        visited.insert(cfg.name.clone());
        for s in cfg.sources.iter().flatten().chain(cfg.mirror.iter()) {
            if visited.contains(&s.name) {
                return Err(errors::invalid_config("detected cycle"));
            }
            if let Some(o) = lookup(&s.name) {
                to_visit.push(o);
            }
        }
    }
    Ok(())
}

/// `<pre>.<8 random characters>` (the reference's syncSubject).
fn sync_subject(pre: &str) -> String {
    use rand::Rng;
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let s: String = (0..8)
        .map(|_| DIGITS[rng.gen_range(0..DIGITS.len())] as char)
        .collect();
    format!("{pre}.{s}")
}

/// Starts the stream's mirror or sources (creation, recovery).
pub fn start(server: &Arc<Server>, st: &Arc<Stream>) {
    stop(server, st);
    let cfg = st.config();
    let (mirror, list) = match (&cfg.mirror, &cfg.sources) {
        (Some(m), _) => (true, vec![m.clone()]),
        (None, Some(v)) if !v.is_empty() => (false, v.clone()),
        _ => return,
    };
    let mut list: Vec<Origin> = list.into_iter().map(Origin::new).collect();
    if !mirror {
        starting_sequences(st, &mut list);
    }
    run_with(server, st, mirror, list);
}

/// After an update of `sources`: the kept ones continue after what they gave, the new
/// ones start from their start options (or the last message this stream has from them),
/// the removed ones stop (the reference's update).
pub fn update(server: &Arc<Server>, st: &Arc<Stream>) {
    let mut old: Vec<Origin> = {
        let mut o = st.origins.lock();
        o.gen += 1;
        o.tx = None;
        o.list.drain(..).collect()
    };
    for si in &mut old {
        cancel(server, si.sub.take());
    }
    let sources = st.config().sources.unwrap_or_default();
    let mut list = Vec::new();
    for src in sources {
        match old.iter().position(|o| o.iname == src.name) {
            Some(i) => {
                let mut si = old.swap_remove(i);
                si.cfg = src;
                si.cname.clear();
                si.dseq = 0;
                si.lreq = None;
                list.push(si);
            }
            None => {
                let mut si = vec![Origin::new(src)];
                let start = std::mem::take(&mut si[0].start);
                starting_sequences(st, &mut si);
                si[0].start = start;
                list.extend(si);
            }
        }
    }
    if !list.is_empty() {
        run_with(server, st, false, list);
    }
}

fn run_with(server: &Arc<Server>, st: &Arc<Stream>, mirror: bool, list: Vec<Origin>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gen = {
        let mut o = st.origins.lock();
        o.gen += 1;
        o.mirror = mirror;
        o.list = list;
        o.tx = Some(tx);
        o.gen
    };
    tokio::spawn(run(Arc::downgrade(st), Arc::downgrade(server), gen, rx));
}

/// Stops the mirror or sources: their subscriptions go (their consumers on the origins
/// then go when inactive).
pub fn stop(server: &Arc<Server>, st: &Arc<Stream>) {
    let old: Vec<Option<Arc<Subscription>>> = {
        let mut o = st.origins.lock();
        o.gen += 1;
        o.tx = None;
        o.list.drain(..).map(|mut si| si.sub.take()).collect()
    };
    for sub in old {
        cancel(server, sub);
    }
}

fn cancel(server: &Arc<Server>, sub: Option<Arc<Subscription>>) {
    // The consumer itself stays until its inactivity threshold (5 s without interest)
    // removes it, as on the reference, which only forgets its name.
    if let Some(sub) = sub {
        server.remove_sub(&sub);
    }
}

/// The reference's startingSequenceForSources: the last origin sequence each source
/// header names, newest first.
fn starting_sequences(st: &Stream, list: &mut [Origin]) {
    let state = st.store_state();
    if state.last_ts != 0 {
        for si in list.iter_mut() {
            si.start = state.last_ts;
        }
    }
    if state.msgs == 0 {
        return;
    }
    let mut found = std::collections::HashSet::new();
    let mut seq = state.last_seq;
    while seq >= state.first_seq && seq > 0 && found.len() < list.len() {
        if let Ok(m) = st.load(seq) {
            let src = (!m.hdr.is_empty())
                .then(|| Headers::parse(&m.hdr).ok())
                .flatten()
                .and_then(|h| h.get("Nats-Stream-Source").map(str::to_string));
            if let Some((name, n)) = src.as_deref().and_then(parse_source_header) {
                if let Some(si) = list.iter_mut().find(|s| s.iname == name) {
                    if found.insert(name) && n > 0 {
                        si.sseq = n;
                    }
                }
            }
        }
        seq -= 1;
    }
}

/// `<name> <seq>` (and the old form, the origin's ack reply).
fn parse_source_header(v: &str) -> Option<(String, u64)> {
    if v.starts_with("$JS.ACK.") {
        let t: Vec<&str> = v.split('.').collect();
        if t.len() != 9 {
            return None;
        }
        return Some((t[2].to_string(), t[5].parse().ok()?));
    }
    let f: Vec<&str> = v.split_whitespace().collect();
    if f.len() != 2 {
        return None;
    }
    Some((f[0].to_string(), f[1].parse().ok()?))
}

/// The stream's task: delivered messages in order, and the health check.
async fn run(
    st: Weak<Stream>,
    server: Weak<Server>,
    gen: u64,
    mut rx: mpsc::UnboundedReceiver<(u64, usize, InMsg)>,
) {
    let mut tick = tokio::time::interval(HEALTH_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some((g, idx, m)) = m else { return };
                let (Some(st), Some(server)) = (st.upgrade(), server.upgrade()) else { return };
                if g == gen {
                    tokio::task::block_in_place(|| process(&server, &st, idx, m));
                }
            }
            _ = tick.tick() => {
                let (Some(st), Some(server)) = (st.upgrade(), server.upgrade()) else { return };
                if st.origins.lock().gen != gen {
                    return;
                }
                tokio::task::block_in_place(|| health(&server, &st, gen));
            }
        }
    }
}

/// Every second: origins without a working consumer get one.
fn health(server: &Arc<Server>, st: &Arc<Stream>, gen: u64) {
    let n = st.origins.lock().list.len();
    for idx in 0..n {
        let due = {
            let o = st.origins.lock();
            let Some(si) = o.list.get(idx) else { return };
            let stalled = si.last.is_none_or(|t| t.elapsed() > 3 * HEALTH_CHECK);
            (si.cname.is_empty() || si.retry || stalled)
                && si.lreq.is_none_or(|t| t.elapsed() >= RETRY_THRESHOLD)
        };
        if due {
            setup(server, st, gen, idx);
        }
    }
}

/// The reference's setupMirrorConsumer / setSourceConsumer: a new consumer on the
/// origin, starting where this stream stands.
fn setup(server: &Arc<Server>, st: &Arc<Stream>, gen: u64, idx: usize) {
    let (mirror, src, old_sub, sseq, start, tx) = {
        let mut o = st.origins.lock();
        if o.gen != gen {
            return;
        }
        let mirror = o.mirror;
        let Some(tx) = o.tx.clone() else { return };
        let Some(si) = o.list.get_mut(idx) else {
            return;
        };
        si.lreq = Some(Instant::now());
        si.retry = false;
        si.cname.clear();
        (mirror, si.cfg.clone(), si.sub.take(), si.sseq, si.start, tx)
    };
    cancel(server, old_sub);
    let kind = if mirror { "mirror" } else { "source" };
    // The reference asks for the consumer through the API: counted as a request.
    let count = |error: bool| {
        if let Some(js) = server.jetstream() {
            super::count_api(&js, st.jsa.upgrade().as_deref(), error);
        }
    };
    let origin = st
        .jsa
        .upgrade()
        .and_then(|jsa| jsa.streams.lock().get(&src.name).cloned());
    let Some(origin) = origin else {
        count(true);
        fail(st, gen, idx, kind, errors::stream_not_found());
        return;
    };
    let deliver = sync_subject(if mirror { "$JS.M" } else { "$JS.S" });
    let mut c = ConsumerConfig {
        deliver_subject: deliver.clone(),
        ack_policy: AckPolicy::None,
        ack_wait: ACK_WAIT_22H,
        max_deliver: 1,
        idle_heartbeat: HEALTH_CHECK.as_nanos() as i64,
        flow_control: true,
        direct: true,
        filter_subject: src.filter_subject.clone(),
        ..Default::default()
    };
    if mirror {
        let state = st.store_state();
        c.deliver_policy = DeliverPolicy::ByStartSequence;
        c.opt_start_seq = state.last_seq + 1;
        if state.msgs == 0 && state.first_seq == 0 {
            c.opt_start_seq = 0;
            if src.opt_start_seq > 0 {
                c.opt_start_seq = src.opt_start_seq;
            } else if src.opt_start_time.is_some() {
                c.opt_start_time = src.opt_start_time.clone();
                c.deliver_policy = DeliverPolicy::ByStartTime;
            }
        }
        if c.opt_start_seq == 0 && c.opt_start_time.is_none() {
            c.deliver_policy = DeliverPolicy::All;
        }
    } else {
        let seq = sseq + 1;
        if seq <= 1 {
            if src.opt_start_seq > 0 {
                c.opt_start_seq = src.opt_start_seq;
                c.deliver_policy = DeliverPolicy::ByStartSequence;
            } else if let Some(t) = &src.opt_start_time {
                let given = parse_time(t);
                c.opt_start_time = Some(if start != 0 && given.is_some_and(|g| g < start) {
                    super::api::types::time_string(start)
                } else {
                    t.clone()
                });
                c.deliver_policy = DeliverPolicy::ByStartTime;
            } else if start != 0 {
                c.opt_start_time = Some(super::api::types::time_string(start));
                c.deliver_policy = DeliverPolicy::ByStartTime;
            }
        } else {
            c.opt_start_seq = seq;
            c.deliver_policy = DeliverPolicy::ByStartSequence;
        }
    }
    if !c.filter_subject.is_empty() {
        let pre = if mirror { "mirror" } else { "src" };
        c.name = format!("{pre}-{}", crate::system::hash8(&nats_common::nuid::next()));
    }
    // Subscribed before the consumer exists, as the reference: it may deliver at once.
    let sub = server.subscribe_internal(
        &st.account,
        &deliver,
        crate::client::Internal::JetStream(super::Handler::Origin(tx, gen, idx)),
        false,
    );
    match super::api::consumers::add_consumer(server, &origin, c) {
        Err(e) => {
            server.remove_sub(&sub);
            count(true);
            fail(st, gen, idx, kind, e);
        }
        Ok(info) => {
            count(false);
            let delivered = info.delivered.stream_seq;
            if mirror {
                let last = st.store_state().last_seq;
                if last < delivered {
                    st.skip_to(delivered);
                }
            }
            let mut o = st.origins.lock();
            let stale = o.gen != gen;
            match o.list.get_mut(idx).filter(|_| !stale) {
                Some(si) => {
                    if mirror {
                        si.sseq = delivered;
                    } else if si.sseq != delivered {
                        si.sseq = delivered + 1;
                    }
                    si.cname = info.name;
                    si.dseq = 0;
                    si.sub = Some(sub);
                    si.err = None;
                    si.last = Some(Instant::now());
                }
                None => {
                    drop(o);
                    cancel(server, Some(sub));
                }
            }
        }
    }
}

/// A consumer create the origin refused: kept for stream info, logged, retried.
fn fail(st: &Stream, gen: u64, idx: usize, kind: &str, e: ApiError) {
    warn!(
        "JetStream error response for create {kind} consumer: &{{Code:{} ErrCode:{} Description:{}}}",
        e.code, e.err_code, e.description
    );
    let mut o = st.origins.lock();
    if o.gen != gen {
        return;
    }
    if let Some(si) = o.list.get_mut(idx) {
        si.err = Some(e);
    }
}

fn parse_time(t: &str) -> Option<i64> {
    nats_common::monitor::parse_rfc3339(t).map(|t| t.unix_nanos as i64)
}

/// The consumer's reply subject: (dc, stream seq, delivery seq, time, pending).
fn reply_info(reply: &str) -> Option<(u64, u64, u64, i64, u64)> {
    let t: Vec<&str> = reply.split('.').collect();
    if t.len() != 9 || t[0] != "$JS" || t[1] != "ACK" {
        return None;
    }
    Some((
        t[4].parse().ok()?,
        t[5].parse().ok()?,
        t[6].parse().ok()?,
        t[7].parse().ok()?,
        t[8].parse().ok()?,
    ))
}

/// Go's removeHeaderIfPresent: the `key:` line goes (no header left: none).
fn remove_header(hdr: &[u8], key: &str) -> Vec<u8> {
    let k = key.as_bytes();
    let Some(start) = hdr.windows(k.len()).position(|w| w == k) else {
        return hdr.to_vec();
    };
    if start < 1 || hdr[start - 1] != b'\n' {
        return hdr.to_vec();
    }
    if hdr.get(start + k.len()) != Some(&b':') {
        return hdr.to_vec();
    }
    let Some(end) = hdr[start..].windows(2).position(|w| w == b"\r\n") else {
        return hdr.to_vec();
    };
    let mut out = hdr[..start].to_vec();
    out.extend_from_slice(&hdr[start + end + 2..]);
    if out.len() <= b"NATS/1.0\r\n\r\n".len() {
        return Vec::new();
    }
    out
}

/// Go's genHeader: `key: value` added before the closing blank line.
fn add_header(hdr: &[u8], key: &str, value: &str) -> Vec<u8> {
    let mut out = if hdr.len() > 2 {
        hdr[..hdr.len() - 2].to_vec()
    } else {
        b"NATS/1.0\r\n".to_vec()
    };
    out.extend_from_slice(format!("{key}: {value}\r\n\r\n").as_bytes());
    out
}

/// One delivered message (the reference's processInboundMirrorMsg and
/// processInboundSourceMsg).
fn process(server: &Arc<Server>, st: &Arc<Stream>, idx: usize, m: InMsg) {
    let control = m.data.is_empty() && m.hdr.starts_with(b"NATS/1.0 100 ");
    let mut o = st.origins.lock();
    let mirror = o.mirror;
    let Some(si) = o.list.get_mut(idx) else {
        return;
    };
    let current = !si.cname.is_empty()
        && m.reply.starts_with("$JS.ACK.")
        && m.reply.split('.').nth(3) == Some(si.cname.as_str());
    if !control && !current {
        return;
    }
    si.last = Some(Instant::now());
    if control {
        if !m.reply.is_empty() {
            drop(o);
            reply_empty(server, st, &m.reply);
            return;
        }
        let h = Headers::parse(&m.hdr).ok();
        let last = h
            .as_ref()
            .and_then(|h| h.get("Nats-Last-Consumer"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if last > 0 && last != si.dseq {
            si.retry = true;
            return;
        }
        let stalled = h
            .as_ref()
            .and_then(|h| h.get("Nats-Consumer-Stalled"))
            .map(str::to_string);
        drop(o);
        if let Some(fc) = stalled.filter(|s| !s.is_empty()) {
            reply_empty(server, st, &fc);
        }
        return;
    }
    let Some((dc, sseq, dseq, ts, pending)) = reply_info(&m.reply) else {
        return;
    };
    if dc > 1 {
        return;
    }
    let lag = pending.saturating_sub(1);
    if mirror {
        let (olag, osseq, odseq) = (si.lag, si.sseq, si.dseq);
        if sseq == si.sseq + 1 {
            si.dseq = dseq;
            si.sseq += 1;
        } else if sseq <= si.sseq {
            return;
        } else if dseq == si.dseq + 1 {
            // The origin lost messages in between: skipped (store_mirrored does).
            si.dseq += 1;
            si.sseq = sseq;
        } else {
            si.retry = true;
            return;
        }
        si.lag = lag;
        drop(o);
        match st.store_mirrored(&m.subject, &m.hdr, &m.data, sseq, ts) {
            Ok(true) => {}
            Ok(false) => {
                let mut o = st.origins.lock();
                if let Some(si) = o.list.get_mut(idx) {
                    si.lag = olag;
                    si.sseq = osseq;
                    si.dseq = odseq;
                }
            }
            Err(e) => {
                warn!(
                    "Error processing inbound mirror message for '{}' > '{}': {e}",
                    st.account.name, st.name
                );
                // Asked for again from where it stands, as the reference's retry.
                let mut o = st.origins.lock();
                if let Some(si) = o.list.get_mut(idx) {
                    si.lag = olag;
                    si.sseq = osseq;
                    si.dseq = odseq;
                    si.retry = true;
                }
            }
        }
    } else {
        if dseq == si.dseq + 1 {
            si.dseq += 1;
            si.sseq = sseq;
        } else {
            if dseq > si.dseq {
                si.retry = true;
            }
            return;
        }
        si.lag = lag;
        let iname = si.iname.clone();
        drop(o);
        let hdr = remove_header(&m.hdr, "Nats-Stream-Source");
        let hdr = add_header(&hdr, "Nats-Stream-Source", &format!("{iname} {sseq}"));
        let mut republish = None;
        st.process(
            Inbound {
                subject: &m.subject,
                reply: false,
                hdr: &hdr,
                data: &m.data,
            },
            &mut republish,
        );
        // A sourced message is republished like a published one.
        if let Some(r) = republish {
            server.send_internal(&st.account, &r.subject, Some(b""), Some(&r.hdr), &r.data);
        }
    }
}

/// An empty message to `subject` in the stream's account (flow control replies).
fn reply_empty(server: &Arc<Server>, st: &Stream, subject: &str) {
    server.deliver_as(
        &st.account,
        subject.as_bytes(),
        subject.as_bytes(),
        None,
        None,
        b"",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_go() {
        assert_eq!(
            add_header(b"", "Nats-Stream-Source", "O 5"),
            b"NATS/1.0\r\nNats-Stream-Source: O 5\r\n\r\n"
        );
        let h = add_header(b"NATS/1.0\r\nA: b\r\n\r\n", "Nats-Stream-Source", "O 5");
        assert_eq!(h, b"NATS/1.0\r\nA: b\r\nNats-Stream-Source: O 5\r\n\r\n");
        assert_eq!(
            remove_header(&h, "Nats-Stream-Source"),
            b"NATS/1.0\r\nA: b\r\n\r\n"
        );
        assert_eq!(
            remove_header(
                b"NATS/1.0\r\nNats-Stream-Source: O 5\r\n\r\n",
                "Nats-Stream-Source"
            ),
            b""
        );
        assert_eq!(parse_source_header("O 5"), Some(("O".into(), 5)));
    }
}
