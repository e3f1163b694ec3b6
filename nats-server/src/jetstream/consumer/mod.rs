//! Consumers: a stream's messages delivered to clients, push (to `deliver_subject`) or
//! pull (`MSG.NEXT` requests), with the reference's acks, redeliveries, limits and
//! statuses.
//!
//! Each consumer runs one task (`run`) that does all delivering: it takes the lock, picks
//! what to send (redeliveries first, then the stream's next message for the filter),
//! records it as pending, and sends outside the lock. Acks and pull requests arrive on
//! internal subscriptions in the stream's account and are handled inline on the
//! publisher's read loop (`ack`, `next_request`); they only change the state and wake the
//! task. The stream wakes it on every stored message that matches the filter.
//!
//! Lock order: a consumer's lock may be held while reading the stream's store, never the
//! other way round (the stream asks consumers about interest only without its own lock).
//!
//! - `config.rs`: the defaults and checks of a configuration, and what an update may change.
//! - `pull.rs`: pull requests and their queue.
//! - `state.rs`: what a consumer of a file stream keeps on disk.

pub mod config;
pub mod pull;
pub mod state;

use super::advisory::Advisory;
use super::api::types::{
    AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, ReplayPolicy, Retention, SequenceInfo,
};
use super::stream::{now_nanos, Stream};
use crate::accounts::Account;
use crate::client::Subscription;
use crate::server::Server;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{error, warn};

/// Flow control's window for push consumers (the reference's 32 MiB, starting at 1/16).
const FLOW_CONTROL_MAX_PENDING: i64 = 32 * 1024 * 1024;
/// Most messages picked per turn of the task before sending them.
const BATCH: usize = 256;

struct Pending {
    dseq: u64,
    ts: i64,
}

/// Push consumers' flow control.
#[derive(Default)]
struct Flow {
    limit: i64,
    max: i64,
    bytes: i64,
    id: String,
    size: i64,
}

struct Inner {
    cfg: ConsumerConfig,
    /// Next stream sequence to look at, next delivery sequence.
    sseq: u64,
    dseq: u64,
    /// Ack floors (delivery and stream sequence).
    adflr: u64,
    asflr: u64,
    pending: BTreeMap<u64, Pending>,
    rdq: VecDeque<u64>,
    rdqi: HashSet<u64>,
    rdc: HashMap<u64, u64>,
    waiting: pull::Queue,
    /// Push: the deliver subject has interest.
    active: bool,
    /// Deliver last per subject: the sequences still to send, then where to go on.
    lss: Option<(VecDeque<u64>, u64)>,
    /// Last delivery and last ack (unix nanoseconds; 0: never).
    ldt: i64,
    lat: i64,
    flow: Flow,
    /// Replay original: the last delivered message's time.
    replay: bool,
    lts: i64,
    /// Rate limit: when the next message may go.
    rate_next: Option<Instant>,
    /// When pending messages are next checked for ack_wait.
    ptmr: Option<Instant>,
    /// Deleted when inactive: the threshold and when it runs out.
    dthresh: Option<Duration>,
    dtmr: Option<Instant>,
    /// Push idle heartbeat: next one due.
    hb_next: Option<Instant>,
    /// The saved state is behind.
    dirty: bool,
    /// Delivered with ack none on an interest or work queue stream: told to the stream.
    ack_none: Vec<u64>,
    last_saved: Instant,
}

pub struct Consumer {
    pub name: String,
    pub stream_name: String,
    stream: Weak<Stream>,
    pub account: Arc<Account>,
    server: Weak<Server>,
    pub created: i64,
    /// `obs/<name>` of a file stream (nothing kept for memory streams or `mem_storage`).
    dir: Option<PathBuf>,
    inner: Mutex<Inner>,
    wake: Notify,
    closed: AtomicBool,
    subs: Mutex<Vec<Arc<Subscription>>>,
    /// The filter, readable without the lock (the stream asks it on every message).
    filter: parking_lot::RwLock<String>,
    /// Messages for the filter not yet delivered (kept as messages come and go; recounted
    /// from the store when asked for info).
    npc: AtomicI64,
    retention: Retention,
    pub durable: bool,
    /// A mirror's or source's consumer (`direct`): left out of what clients see.
    direct: bool,
}

/// What the task sends after releasing the lock.
struct Out {
    dsubj: String,
    subject: String,
    reply: Option<String>,
    hdr: Vec<u8>,
    data: Vec<u8>,
    /// The stream sequence (0 for statuses), to requeue a pull message nobody took.
    seq: u64,
}

impl Out {
    /// A status message: sent, as all the reference's JetStream messages without a
    /// reply, with an empty reply (`HMSG <inbox> <sid>  <hlen> <len>`).
    fn status(dsubj: &str, hdr: Vec<u8>) -> Out {
        Out {
            dsubj: dsubj.to_string(),
            subject: dsubj.to_string(),
            reply: Some(String::new()),
            hdr,
            data: Vec::new(),
            seq: 0,
        }
    }
}

impl Consumer {
    /// A consumer on `stream` with a checked configuration. `saved`: state recovered
    /// from disk (else the start follows the deliver policy).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        server: &Arc<Server>,
        stream: &Arc<Stream>,
        name: String,
        cfg: ConsumerConfig,
        created: i64,
        dir: Option<PathBuf>,
        saved: Option<state::Saved>,
    ) -> Arc<Consumer> {
        let scfg = stream.config();
        let pull = cfg.deliver_subject.is_empty();
        let durable = !cfg.durable_name.is_empty();
        let direct = cfg.direct;
        let mut inner = Inner {
            waiting: pull::Queue::new(if pull { cfg.max_waiting } else { 0 }),
            sseq: 1,
            dseq: 1,
            adflr: 0,
            asflr: 0,
            pending: BTreeMap::new(),
            rdq: VecDeque::new(),
            rdqi: HashSet::new(),
            rdc: HashMap::new(),
            active: pull,
            lss: None,
            ldt: 0,
            lat: 0,
            flow: Flow::default(),
            replay: cfg.replay_policy == ReplayPolicy::Original,
            lts: 0,
            rate_next: None,
            ptmr: None,
            dthresh: None,
            dtmr: None,
            hb_next: None,
            dirty: false,
            ack_none: Vec::new(),
            last_saved: Instant::now(),
            cfg,
        };
        if inner.cfg.flow_control {
            inner.flow.limit = FLOW_CONTROL_MAX_PENDING;
            inner.flow.max = (FLOW_CONTROL_MAX_PENDING / 16).max(1);
        }
        let c = Arc::new(Consumer {
            name,
            stream_name: stream.name.clone(),
            stream: Arc::downgrade(stream),
            account: stream.account.clone(),
            server: Arc::downgrade(server),
            created,
            dir,
            filter: parking_lot::RwLock::new(inner.cfg.filter_subject.clone()),
            inner: Mutex::new(inner),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            subs: Mutex::new(Vec::new()),
            npc: AtomicI64::new(0),
            retention: scfg.retention,
            durable,
            direct,
        });
        {
            let mut g = c.inner.lock();
            match saved {
                Some(s) => c.apply_saved(&mut g, s),
                None => c.select_start(&mut g),
            }
            c.set_inactive_threshold(&mut g);
            if !g.pending.is_empty() {
                g.ptmr = Some(Instant::now() + c.ack_wait(&g, None));
            }
        }
        c.recount_pending();
        c
    }

    /// The reference's selectStartingSeqNo.
    fn select_start(&self, g: &mut Inner) {
        let Some(st) = self.stream.upgrade() else {
            return;
        };
        let s = st.store_state();
        let filter = g.cfg.filter_subject.clone();
        g.sseq = if g.cfg.opt_start_seq == 0 {
            match g.cfg.deliver_policy {
                DeliverPolicy::All => s.first_seq,
                DeliverPolicy::Last => {
                    if filter.is_empty() {
                        s.last_seq
                    } else {
                        st.load_last(&filter).map_or(0, |m| m.seq)
                    }
                }
                DeliverPolicy::LastPerSubject => {
                    let seqs = st.with_index(|ix| ix.last_per_subject(&filter));
                    if let Some(first) = seqs.first().copied() {
                        g.lss = Some((seqs.into_iter().collect(), s.last_seq));
                        first
                    } else {
                        s.last_seq
                    }
                }
                DeliverPolicy::ByStartTime => {
                    let t = g
                        .cfg
                        .opt_start_time
                        .as_deref()
                        .and_then(nats_common::monitor::parse_rfc3339)
                        .map_or(0, |t| t.unix_nanos);
                    st.with_index(|ix| ix.first_since(t as i64))
                        .unwrap_or(s.last_seq + 1)
                }
                DeliverPolicy::New | DeliverPolicy::ByStartSequence => s.last_seq + 1,
            }
        } else {
            g.cfg.opt_start_seq
        };
        if s.first_seq == 0 {
            g.sseq = 1;
        } else if g.sseq < s.first_seq {
            g.sseq = s.first_seq;
        } else if g.sseq > s.last_seq {
            g.sseq = s.last_seq + 1;
        }
        g.dseq = 1;
        // The reference's stored state starts with no ack floor (only the delivered
        // stream sequence is set), so a new consumer shows 0/0.
        g.adflr = 0;
        g.asflr = 0;
    }

    fn apply_saved(&self, g: &mut Inner, s: state::Saved) {
        g.sseq = s.delivered_stream + 1;
        g.dseq = s.delivered_consumer + 1;
        g.adflr = s.ack_floor_consumer;
        g.asflr = s.ack_floor_stream;
        let now = now_nanos();
        for (sseq, dseq, ts) in s.pending {
            // Redelivered after a full ack wait from now, as the reference restarts timers.
            let _ = ts;
            g.pending.insert(sseq, Pending { dseq, ts: now });
        }
        g.rdc = s.redelivered.into_iter().collect();
        // Counts below the ack floor are stale (the reference's checkRedelivered).
        let floor = g.asflr;
        g.rdc.retain(|seq, _| *seq >= floor);
    }

    fn saved(g: &Inner) -> state::Saved {
        state::Saved {
            delivered_consumer: g.dseq - 1,
            delivered_stream: g.sseq.saturating_sub(1),
            ack_floor_consumer: g.adflr,
            ack_floor_stream: g.asflr,
            pending: g.pending.iter().map(|(s, p)| (*s, p.dseq, p.ts)).collect(),
            redelivered: g.rdc.iter().map(|(s, n)| (*s, *n)).collect(),
        }
    }

    /// Writes the state if it changed (file streams).
    fn save(&self, g: &mut Inner) {
        if !g.dirty {
            return;
        }
        g.dirty = false;
        g.last_saved = Instant::now();
        if let Some(dir) = &self.dir {
            if let Err(e) = state::write_state(dir, &Self::saved(g)) {
                error!(
                    "JetStream consumer '{} > {} > {}' failed to write state: {e}",
                    self.account.name, self.stream_name, self.name
                );
            }
        }
    }

    pub fn write_meta(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let cfg = self.inner.lock().cfg.clone();
        state::write_meta(
            dir,
            &state::Meta {
                config: cfg,
                created: self.created,
            },
        )
    }

    /// The reference's updateInactiveThreshold: ephemerals go 5 s after losing interest
    /// unless they set their own threshold.
    fn set_inactive_threshold(&self, g: &mut Inner) {
        if !self.durable && g.cfg.inactive_threshold <= 0 {
            g.dthresh = Some(Duration::from_nanos(config::DELETE_WAIT_DEFAULT as u64));
            g.cfg.inactive_threshold = config::DELETE_WAIT_DEFAULT;
        } else if g.cfg.inactive_threshold > 0 {
            g.dthresh = Some(Duration::from_nanos(g.cfg.inactive_threshold as u64));
        } else {
            g.dthresh = None;
        }
    }

    pub fn is_direct(&self) -> bool {
        self.direct
    }

    pub fn config(&self) -> ConsumerConfig {
        self.inner.lock().cfg.clone()
    }

    /// Subscribes the ack, next-request and flow-control subjects and starts the task.
    pub fn start(self: &Arc<Self>, server: &Arc<Server>) {
        let handler = |kind: Endpoint| {
            crate::client::Internal::JetStream(super::Handler::Consumer(Arc::downgrade(self), kind))
        };
        let pre = format!("$JS.ACK.{}.{}", self.stream_name, self.name);
        let mut subs = self.subs.lock();
        subs.push(server.subscribe_internal(
            &self.account,
            &format!("{pre}.>"),
            handler(Endpoint::Ack),
            true,
        ));
        subs.push(server.subscribe_internal(
            &self.account,
            &format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
                self.stream_name, self.name
            ),
            handler(Endpoint::Next),
            true,
        ));
        if self.inner.lock().cfg.flow_control {
            subs.push(server.subscribe_internal(
                &self.account,
                &format!("$JS.FC.{}.{}.*", self.stream_name, self.name),
                handler(Endpoint::FlowControl),
                true,
            ));
        }
        drop(subs);
        {
            let mut g = self.inner.lock();
            if !g.cfg.deliver_subject.is_empty() {
                g.active = self.has_interest(&g.cfg.deliver_subject);
            }
            if g.dthresh.is_some() && (g.cfg.deliver_subject.is_empty() || !g.active) {
                g.dtmr = g.dthresh.map(|d| Instant::now() + d);
            }
            if g.cfg.idle_heartbeat > 0 {
                g.hb_next =
                    Some(Instant::now() + Duration::from_nanos(g.cfg.idle_heartbeat as u64));
            }
        }
        tokio::spawn(run(Arc::downgrade(self)));
    }

    fn has_interest(&self, subject: &str) -> bool {
        !self
            .account
            .sublist
            .read()
            .match_subject(subject.as_bytes())
            .is_empty()
    }

    /// The stream stored a message: counted and the task woken when it is for us.
    pub fn on_stored(&self, subject: &str) {
        if self.matches(subject) {
            self.npc.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    /// Whether the filter takes `subject` (no filter: everything).
    pub fn matches(&self, subject: &str) -> bool {
        let f = self.filter.read();
        f.is_empty() || super::store::subject_matches(subject, &f)
    }

    /// The reference's isFilteredMatch for a purge subject: a literal filter takes only
    /// that subject, a wildcard filter what is within it.
    pub fn takes(&self, subject: &str) -> bool {
        let f = self.filter.read();
        if f.is_empty() {
            return true;
        }
        if !nats_common::subject::has_wildcard(f.as_bytes()) {
            return subject == *f;
        }
        nats_common::subject::is_subset(subject.as_bytes(), f.as_bytes())
    }

    /// The stream was purged up to `fseq` (0: all of it, up to `lseq`).
    pub fn purged(&self, fseq: u64, lseq: u64) {
        let mut g = self.inner.lock();
        let sseq = if fseq == 0 { lseq + 1 } else { fseq };
        if g.sseq < sseq {
            g.sseq = sseq;
        }
        if g.asflr < sseq {
            g.asflr = sseq - 1;
            g.adflr = g.dseq - 1;
        }
        g.pending.clear();
        g.ptmr = None;
        let keep = g.sseq;
        let rdq: Vec<u64> = g.rdq.drain(..).filter(|s| *s >= keep).collect();
        g.rdqi = rdq.iter().copied().collect();
        g.rdq = rdq.into();
        g.lss = None;
        g.dirty = true;
        self.save(&mut g);
    }

    /// Recounts what is pending for the filter from the store.
    pub fn recount_pending(&self) {
        let Some(st) = self.stream.upgrade() else {
            return;
        };
        let (sseq, lss) = {
            let g = self.inner.lock();
            (g.sseq, g.lss.as_ref().map(|(v, _)| v.len() as i64))
        };
        let filter = self.filter.read().clone();
        // Under the stream's lock, so that no message is counted twice or missed.
        st.with_index(|ix| {
            let n = match lss {
                Some(n) => n,
                None => ix.count_matching(&filter, sseq) as i64,
            };
            self.npc.store(n, Ordering::Relaxed);
        });
    }

    fn num_pending(&self) -> u64 {
        self.npc.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn info(&self) -> ConsumerInfo {
        self.recount_pending();
        let mut g = self.inner.lock();
        let now = Instant::now();
        if g.cfg.deliver_subject.is_empty() {
            self.expire_waiting(&mut g, now, false, &mut Vec::new());
        }
        let t = |ns: i64| (ns != 0).then(|| super::api::types::time_string(ns));
        ConsumerInfo {
            stream_name: self.stream_name.clone(),
            name: self.name.clone(),
            created: super::api::types::time_string(self.created),
            config: g.cfg.clone(),
            delivered: SequenceInfo {
                consumer_seq: g.dseq - 1,
                stream_seq: g.sseq.saturating_sub(1),
                last_active: t(g.ldt),
            },
            ack_floor: SequenceInfo {
                consumer_seq: g.adflr,
                stream_seq: g.asflr,
                last_active: t(g.lat),
            },
            num_ack_pending: g.pending.len(),
            num_redelivered: g.rdc.len(),
            num_waiting: g.waiting.len(),
            num_pending: self.num_pending(),
            push_bound: !g.cfg.deliver_subject.is_empty() && g.active,
        }
    }

    /// An update of an existing consumer (create with the same name).
    pub fn update(&self, new: &ConsumerConfig) -> Result<(), super::api::errors::ApiError> {
        let mut g = self.inner.lock();
        let old_deliver = g.cfg.deliver_subject.clone();
        config::check_update(&g.cfg, new, || self.has_interest(&old_deliver))?;
        if g.cfg == *new {
            return Ok(());
        }
        if new.deliver_subject != g.cfg.deliver_subject {
            // Everything pending goes again to the new subject.
            let seqs: Vec<u64> = g.pending.keys().copied().collect();
            for s in seqs {
                if g.rdqi.insert(s) {
                    g.rdq.push_back(s);
                }
            }
            g.active = self.has_interest(&new.deliver_subject);
        }
        let threshold_changed = new.inactive_threshold != g.cfg.inactive_threshold;
        g.cfg = new.clone();
        *self.filter.write() = new.filter_subject.clone();
        if threshold_changed {
            self.set_inactive_threshold(&mut g);
            g.dtmr = g.dthresh.map(|d| Instant::now() + d);
        }
        drop(g);
        if let Err(e) = self.write_meta() {
            return Err(super::api::errors::consumer_create(e.to_string()));
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Removes the consumer's subscriptions and stops its task; with `advisory`, as a
    /// deletion (pull requests told, advisory sent).
    pub fn stop(&self, server: &Arc<Server>, deleted: bool) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for sub in self.subs.lock().drain(..) {
            server.remove_sub(&sub);
        }
        let mut out = Vec::new();
        {
            let mut g = self.inner.lock();
            if deleted {
                for wr in g.waiting.reqs.drain(..) {
                    out.push(Out::status(
                        &wr.reply,
                        pull::status(409, "Consumer Deleted"),
                    ));
                }
            }
            self.save(&mut g);
        }
        self.send(server, out);
        if deleted {
            self.advisory_action("delete");
        }
        self.wake.notify_one();
    }

    /// Removes what the consumer kept on disk.
    pub fn remove_files(&self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn advisory_action(&self, action: &str) {
        let kind = if action == "create" {
            "CREATED"
        } else {
            "DELETED"
        };
        self.advise(
            Advisory::new("io.nats.jetstream.advisory.v1.consumer_action")
                .with("stream", self.stream_name.clone())
                .with("consumer", self.name.clone())
                .with("action", action),
            &format!("$JS.EVENT.ADVISORY.CONSUMER.{kind}"),
        );
    }

    fn advise(&self, a: Advisory, prefix: &str) {
        if let Some(server) = self.server.upgrade() {
            a.send(
                &server,
                &self.account,
                &format!("{prefix}.{}.{}", self.stream_name, self.name),
            );
        }
    }

    fn advise_seq(&self, kind: &str, prefix: &str, sseq: u64, dseq: Option<u64>, dc: u64) {
        let mut a = Advisory::new(kind)
            .with("stream", self.stream_name.clone())
            .with("consumer", self.name.clone());
        if let Some(d) = dseq {
            a = a.with("consumer_seq", d);
        }
        a = a.with("stream_seq", sseq).with("deliveries", dc);
        self.advise(a, prefix);
    }

    fn ack_wait(&self, g: &Inner, next: Option<Duration>) -> Duration {
        next.unwrap_or(Duration::from_nanos(g.cfg.ack_wait.max(0) as u64))
            + Duration::from_millis(1)
    }

    /// Sends what the task or a handler prepared, outside the lock. A pull message
    /// nobody took goes back on the redelivery queue (the reference's didNotDeliver).
    fn send(&self, server: &Arc<Server>, out: Vec<Out>) {
        let mut missed = Vec::new();
        for o in out {
            let n = server.deliver_as(
                &self.account,
                o.dsubj.as_bytes(),
                o.subject.as_bytes(),
                o.reply.as_deref().map(str::as_bytes),
                (!o.hdr.is_empty()).then_some(&o.hdr[..]),
                &o.data,
            );
            if n == 0 && o.seq > 0 {
                missed.push(o.seq);
            }
        }
        if missed.is_empty() {
            return;
        }
        let mut g = self.inner.lock();
        if !g.cfg.deliver_subject.is_empty() {
            g.active = false;
            if let Some(d) = g.dthresh {
                g.dtmr.get_or_insert(Instant::now() + d);
            }
        } else {
            for seq in missed {
                if g.pending.contains_key(&seq) && g.rdqi.insert(seq) {
                    g.rdq.push_back(seq);
                }
            }
            drop(g);
            self.wake.notify_one();
        }
    }

    /// One turn of the task: what to send now, and when to look again (None: when
    /// woken).
    fn work(&self, g: &mut Inner, now: Instant, out: &mut Vec<Out>) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut soonest = |t: Instant| {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        };
        // Ack wait: pending messages past it go on the redelivery queue.
        if let Some(t) = g.ptmr {
            if t <= now {
                self.check_pending(g);
            }
        }
        if let Some(t) = g.ptmr {
            soonest(t);
        }
        let push = !g.cfg.deliver_subject.is_empty();
        if push {
            // Interest comes and goes with the deliver subject's subscribers; without it
            // an ephemeral's countdown runs (the reference's updateDeliveryInterest).
            let active = self.has_interest(&g.cfg.deliver_subject);
            if active && !g.active {
                g.dtmr = None;
            } else if !active && g.dtmr.is_none() {
                g.dtmr = g.dthresh.map(|d| now + d);
            }
            g.active = active;
        }
        let mut eos = false;
        let mut max_ack_pending = false;
        let mut stalled_by_time = false;
        while out.len() < BATCH {
            if push {
                if !g.active || (g.flow.max > 0 && g.flow.bytes > g.flow.max) {
                    break;
                }
            } else if g.waiting.is_empty() {
                break;
            }
            let Some((msg, dc)) = (match self.next_msg(g) {
                Ok(m) => m,
                Err(NextErr::MaxAckPending) => {
                    max_ack_pending = true;
                    None
                }
                Err(NextErr::Eof) => {
                    eos = true;
                    None
                }
            }) else {
                break;
            };
            // Replay original: wait out the gap to the previous message.
            if g.replay && g.lts > 0 {
                let gap = msg.ts - g.lts;
                if gap > 1_000_000 {
                    let due = now + Duration::from_nanos(gap as u64);
                    if g.rate_next.is_none_or(|t| t < due) {
                        g.rate_next = Some(due);
                    }
                }
            }
            if let Some(t) = g.rate_next {
                if t > Instant::now() {
                    // Not yet: put the message back and come back then.
                    self.unpick(g, msg.seq, dc);
                    soonest(t);
                    stalled_by_time = true;
                    break;
                }
                g.rate_next = None;
            }
            // What is left once this one is out (the reference decrements first).
            let pending = self.num_pending().saturating_sub(u64::from(dc == 1));
            let ack_reply = format!(
                "$JS.ACK.{}.{}.{dc}.{}.{}.{}.{pending}",
                self.stream_name, self.name, msg.seq, g.dseq, msg.ts
            );
            let (hdr, data) = if g.cfg.headers_only {
                let mut h = if msg.hdr.len() >= 4 {
                    msg.hdr[..msg.hdr.len() - 2].to_vec()
                } else {
                    b"NATS/1.0\r\n".to_vec()
                };
                h.extend_from_slice(
                    format!("Nats-Msg-Size: {}\r\n\r\n", msg.data.len()).as_bytes(),
                );
                (h, Vec::new())
            } else {
                (msg.hdr, msg.data)
            };
            let sz = (msg.subject.len() + ack_reply.len() + hdr.len() + data.len()) as i64;
            let dsubj = if push {
                g.cfg.deliver_subject.clone()
            } else {
                match self.next_waiting(g, sz, now, out) {
                    Some(r) => r,
                    None => {
                        self.unpick(g, msg.seq, dc);
                        break;
                    }
                }
            };
            if g.replay {
                g.lts = msg.ts;
            }
            if g.cfg.rate_limit_bps > 0 {
                let bits = (sz * 8) as f64;
                let secs = bits / g.cfg.rate_limit_bps as f64;
                g.rate_next = Some(Instant::now() + Duration::from_secs_f64(secs));
            }
            self.delivered(g, msg.seq, dc, msg.ts, sz, out.len());
            out.push(Out {
                dsubj,
                subject: msg.subject,
                reply: Some(ack_reply),
                hdr,
                data,
                seq: msg.seq,
            });
            if push && g.flow.max > 0 && self.need_flow_control(g, sz) {
                self.flow_control_request(g, out);
            }
        }
        if !stalled_by_time {
            if let Some(t) = g.rate_next {
                soonest(t);
            }
        }
        if g.replay && eos {
            g.replay = false;
        }
        // Pull requests: expiry, heartbeats, and no_wait requests answered at the end.
        if !push {
            if let Some(t) = self.expire_waiting(g, now, eos && !max_ack_pending, out) {
                soonest(t);
            }
        }
        // Push idle heartbeat.
        if push && g.cfg.idle_heartbeat > 0 {
            let every = Duration::from_nanos(g.cfg.idle_heartbeat as u64);
            if !out.is_empty() {
                g.hb_next = Some(now + every);
            } else if let Some(t) = g.hb_next {
                if t <= now {
                    if g.active {
                        let h = self.heartbeat(g);
                        out.push(Out::status(&g.cfg.deliver_subject.clone(), h));
                    }
                    g.hb_next = Some(now + every);
                }
            }
            if let Some(t) = g.hb_next {
                soonest(t);
            }
        }
        // Inactivity.
        if let Some(t) = g.dtmr {
            soonest(t);
        }
        if g.dirty && g.last_saved.elapsed() >= Duration::from_secs(1) {
            self.save(g);
        } else if g.dirty {
            soonest(g.last_saved + Duration::from_secs(1));
        }
        next
    }

    /// The reference's getNextMsg: a redelivery, else the skip list of deliver last per
    /// subject, else the next stored message for the filter.
    fn next_msg(&self, g: &mut Inner) -> Result<Option<(super::store::StoreMsg, u64)>, NextErr> {
        let st = self.stream.upgrade().ok_or(NextErr::Eof)?;
        while let Some(seq) = g.rdq.pop_front() {
            g.rdqi.remove(&seq);
            let dc = {
                let n = g.rdc.entry(seq).or_insert(0);
                *n += 1;
                *n + 1
            };
            let maxdc = g.cfg.max_deliver;
            if maxdc > 0 && dc > maxdc as u64 {
                if dc == maxdc as u64 + 1 {
                    self.advise_seq(
                        "io.nats.jetstream.advisory.v1.max_deliver",
                        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES",
                        seq,
                        None,
                        dc - 1,
                    );
                }
                g.pending.remove(&seq);
                g.dirty = true;
                continue;
            }
            match st.load(seq) {
                Ok(m) => return Ok(Some((m, dc))),
                Err(_) => {
                    // Gone from the stream meanwhile.
                    g.pending.remove(&seq);
                    g.rdc.remove(&seq);
                    g.dirty = true;
                    continue;
                }
            }
        }
        let mut seq = g.sseq;
        let mut from_lss = false;
        if let Some((seqs, resume)) = &mut g.lss {
            if let Some(s) = seqs.pop_front() {
                seq = s;
                from_lss = true;
                if seqs.is_empty() {
                    let r = *resume;
                    g.lss = None;
                    g.sseq = r + 1;
                }
            } else {
                g.lss = None;
            }
        }
        if g.cfg.max_ack_pending > 0 && g.pending.len() as i64 >= g.cfg.max_ack_pending {
            if from_lss {
                // Not taken: keep it for next time.
                let resume = g.sseq.saturating_sub(1);
                match &mut g.lss {
                    Some((seqs, _)) => seqs.push_front(seq),
                    None => g.lss = Some((VecDeque::from([seq]), resume)),
                }
            }
            return Err(NextErr::MaxAckPending);
        }
        let filter = g.cfg.filter_subject.clone();
        // The last sequence comes with the answer (one look at the store): taken apart, a
        // message stored in between would count as looked at and never go out.
        let got = if from_lss {
            st.load(seq).map_err(|_| st.store_state().last_seq)
        } else {
            st.load_next_or_last(&filter, seq)
        };
        match got {
            Ok(m) => {
                if m.seq >= g.sseq {
                    g.sseq = m.seq + 1;
                }
                Ok(Some((m, 1)))
            }
            Err(last) => {
                // Nothing more: what the filter skipped counts as looked at.
                if last + 1 > g.sseq && g.lss.is_none() {
                    g.sseq = last + 1;
                }
                Err(NextErr::Eof)
            }
        }
    }

    /// Puts back a message picked but not sent.
    fn unpick(&self, g: &mut Inner, seq: u64, dc: u64) {
        if dc > 1 {
            if let Some(n) = g.rdc.get_mut(&seq) {
                *n -= 1;
                if *n == 0 {
                    g.rdc.remove(&seq);
                }
            }
            if g.rdqi.insert(seq) {
                g.rdq.push_front(seq);
            }
        } else if let Some((seqs, _)) = &mut g.lss {
            seqs.push_front(seq);
        } else if g.sseq > seq {
            g.sseq = seq;
        }
    }

    /// Records a delivery (the reference's deliverMsg bookkeeping).
    fn delivered(&self, g: &mut Inner, seq: u64, dc: u64, _ts: i64, sz: i64, _n: usize) {
        let dseq = g.dseq;
        g.dseq += 1;
        if dc == 1 {
            self.npc.fetch_sub(1, Ordering::Relaxed);
        }
        if g.flow.max > 0 {
            g.flow.bytes += sz;
        }
        match g.cfg.ack_policy {
            AckPolicy::Explicit | AckPolicy::All => {
                let now = now_nanos();
                g.pending
                    .entry(seq)
                    .and_modify(|p| p.ts = now)
                    .or_insert(Pending { dseq, ts: now });
                if g.ptmr.is_none() {
                    g.ptmr = Some(Instant::now() + self.ack_wait(g, None));
                }
            }
            AckPolicy::None => {
                g.adflr = dseq;
                g.asflr = seq;
            }
        }
        if g.cfg.deliver_subject.is_empty() && g.dthresh.is_some() {
            g.waiting.last = Instant::now();
        }
        g.ldt = now_nanos();
        g.dirty = true;
        if g.cfg.ack_policy == AckPolicy::None && self.retention != Retention::Limits {
            // Ack none on interest or work queue streams: the stream may let it go once
            // the lock is released.
            g.ack_none.push(seq);
        }
    }

    /// The reference's nextWaiting: the request the next message goes to. Requests
    /// without interest are dropped; one whose max_bytes the message would pass is
    /// closed with a 409.
    fn next_waiting(
        &self,
        g: &mut Inner,
        sz: i64,
        now: Instant,
        out: &mut Vec<Out>,
    ) -> Option<String> {
        loop {
            let wr = g.waiting.reqs.front_mut()?;
            if wr.b > 0 {
                if sz <= wr.b {
                    wr.b -= sz;
                    if wr.b == 0 {
                        wr.n = 1;
                    }
                } else {
                    let h =
                        pull::status_with_pending(409, "Message Size Exceeds MaxBytes", wr.n, wr.b);
                    out.push(Out::status(&wr.reply, h));
                    g.waiting.reqs.pop_front();
                    continue;
                }
            }
            let live = wr.expires.is_none_or(|t| now < t);
            if live && self.has_interest(&wr.reply) {
                return g.waiting.pop().map(|(r, _, _)| r);
            }
            g.waiting.reqs.pop_front();
        }
    }

    /// The reference's processWaiting: expired requests get 408, no_wait requests that
    /// got something are closed at the end of the stream, requests without interest are
    /// dropped, heartbeats go out. Returns the next time something is due.
    fn expire_waiting(
        &self,
        g: &mut Inner,
        now: Instant,
        eos: bool,
        out: &mut Vec<Out>,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut keep = VecDeque::with_capacity(g.waiting.reqs.len());
        let reqs = std::mem::take(&mut g.waiting.reqs);
        for mut wr in reqs {
            if (eos && wr.no_wait && wr.d > 0) || wr.expires.is_some_and(|t| now >= t) {
                out.push(Out::status(
                    &wr.reply,
                    pull::status_with_pending(408, "Request Timeout", wr.n, wr.b),
                ));
                continue;
            }
            if !self.has_interest(&wr.reply) {
                continue;
            }
            if let (Some(hb), Some(t)) = (wr.hb, wr.hbt) {
                if now >= t {
                    let h = self.heartbeat(g);
                    out.push(Out::status(&wr.reply, h));
                    wr.hbt = Some(now + hb);
                }
            }
            for t in [wr.hbt, wr.expires].into_iter().flatten() {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
            keep.push_back(wr);
        }
        g.waiting.reqs = keep;
        next
    }

    fn heartbeat(&self, g: &Inner) -> Vec<u8> {
        let mut h = format!(
            "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: {}\r\nNats-Last-Stream: {}\r\n",
            g.dseq - 1,
            g.sseq.saturating_sub(1)
        );
        if !g.flow.id.is_empty() {
            h.push_str(&format!("Nats-Consumer-Stalled: {}\r\n", g.flow.id));
        }
        h.push_str("\r\n");
        h.into_bytes()
    }

    fn need_flow_control(&self, g: &mut Inner, sz: i64) -> bool {
        if g.flow.id.is_empty() && g.flow.bytes > g.flow.max / 2 {
            return true;
        }
        if !g.flow.id.is_empty() && g.flow.bytes - g.flow.size >= g.flow.max {
            g.flow.size += sz;
        }
        false
    }

    fn flow_control_request(&self, g: &mut Inner, out: &mut Vec<Out>) {
        const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut r = nats_common::nuid::next().into_bytes();
        r.truncate(4);
        for b in r.iter_mut() {
            *b = DIGITS[(*b as usize) % DIGITS.len()];
        }
        let id = format!(
            "$JS.FC.{}.{}.{}",
            self.stream_name,
            self.name,
            String::from_utf8_lossy(&r)
        );
        g.flow.size = g.flow.bytes;
        g.flow.id = id.clone();
        out.push(Out {
            dsubj: g.cfg.deliver_subject.clone(),
            subject: g.cfg.deliver_subject.clone(),
            reply: Some(id),
            hdr: b"NATS/1.0 100 FlowControl Request\r\n\r\n".to_vec(),
            data: Vec::new(),
            seq: 0,
        });
    }

    /// A flow control reply.
    fn flow_control_reply(&self, subject: &str) {
        let mut g = self.inner.lock();
        if subject != g.flow.id {
            return;
        }
        if g.flow.max < g.flow.limit {
            g.flow.max = (g.flow.max * 2).min(g.flow.limit);
        }
        g.flow.bytes = (g.flow.bytes - g.flow.size).max(0);
        g.flow.id.clear();
        g.flow.size = 0;
        drop(g);
        self.wake.notify_one();
    }

    /// The reference's checkPending: pending messages past their ack wait (or backoff)
    /// go on the redelivery queue in stream order; the next check is set.
    fn check_pending(&self, g: &mut Inner) {
        let now = now_nanos();
        let ttl = g.cfg.ack_wait;
        let backoff = g.cfg.backoff.clone();
        let mut next = backoff.last().copied().unwrap_or(ttl);
        let first = self
            .stream
            .upgrade()
            .map_or(0, |st| st.store_state().first_seq);
        let mut expired = Vec::new();
        let mut gone = Vec::new();
        for (seq, p) in &g.pending {
            if *seq < first {
                gone.push(*seq);
                continue;
            }
            let elapsed = now - p.ts;
            let mut deadline = ttl;
            if !backoff.is_empty() {
                let mut dc = *g.rdc.get(seq).unwrap_or(&0) as usize;
                let mut nbi = dc + 1;
                if dc + 1 >= backoff.len() {
                    dc = backoff.len() - 1;
                    nbi = dc;
                }
                deadline = backoff[dc];
                next = next.min(backoff[nbi]);
            }
            if elapsed >= deadline {
                if !g.rdqi.contains(seq) {
                    expired.push(*seq);
                }
            } else if deadline - elapsed < next {
                next = deadline - elapsed;
            }
        }
        for seq in gone {
            g.pending.remove(&seq);
            g.rdc.remove(&seq);
            if g.rdqi.remove(&seq) {
                g.rdq.retain(|s| *s != seq);
            }
            g.dirty = true;
        }
        if let Some(first) = expired.first() {
            let off = now - g.pending[first].ts;
            for seq in &expired {
                if g.rdqi.insert(*seq) {
                    g.rdq.push_back(*seq);
                }
                if let Some(p) = g.pending.get_mut(seq) {
                    p.ts += off;
                }
            }
        }
        g.ptmr = if g.pending.is_empty() {
            None
        } else {
            let next = Duration::from_nanos(next.max(0) as u64);
            Some(Instant::now() + self.ack_wait(g, Some(next)))
        };
    }

    /// A message on the ack subject (`$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>`).
    /// Returns the body of the ack's own reply (an empty message) when it is to be sent.
    pub fn ack(self: &Arc<Self>, subject: &str, reply: Option<&[u8]>, body: &[u8]) -> Option<()> {
        let (sseq, dseq, dc) = parse_ack_subject(subject);
        let mut skip_reply = sseq == 0;
        if body.is_empty() || body == b"+ACK" || body == b"+OK" {
            self.process_ack(sseq, dseq, dc, true);
        } else if let Some(rest) = body.strip_prefix(b"+NXT") {
            self.process_ack(sseq, dseq, dc, true);
            if let Some(r) = reply {
                self.next_request(&String::from_utf8_lossy(r), rest);
            }
            skip_reply = true;
        } else if body.starts_with(b"-NAK") {
            self.process_nak(sseq, dseq, dc, &body[4..]);
        } else if body == b"+WPI" {
            let mut g = self.inner.lock();
            if let Some(p) = g.pending.get_mut(&sseq) {
                p.ts = now_nanos();
                g.dirty = true;
            }
        } else if body == b"+TERM" {
            self.process_ack(sseq, dseq, dc, false);
            self.advise_seq(
                "io.nats.jetstream.advisory.v1.terminated",
                "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED",
                sseq,
                Some(dseq),
                dc,
            );
        }
        if reply.is_some() && !skip_reply {
            // A confirmed ack is on disk before the confirmation goes.
            let mut g = self.inner.lock();
            self.save(&mut g);
            return Some(());
        }
        None
    }

    /// The reference's processAckMsg (`sample`: an ack that may be reported on
    /// `$JS.EVENT.METRIC.CONSUMER.ACK` after `sample_freq`).
    fn process_ack(&self, sseq: u64, dseq: u64, dc: u64, sample: bool) {
        let mut g = self.inner.lock();
        let mut acked: Vec<u64> = Vec::new();
        let mut signal = false;
        let mut metric = None;
        match g.cfg.ack_policy {
            AckPolicy::Explicit => {
                let ack_dseq = dseq;
                let mut dseq = dseq;
                if let Some(p) = g.pending.get(&sseq) {
                    if sample && should_sample(&g.cfg.sample_freq) {
                        metric = Some((ack_dseq, now_nanos() - p.ts));
                    }
                    if g.cfg.max_ack_pending > 0 && g.pending.len() as i64 >= g.cfg.max_ack_pending
                    {
                        signal = true;
                    }
                    dseq = p.dseq;
                    g.pending.remove(&sseq);
                    acked.push(sseq);
                }
                if g.pending.is_empty() {
                    g.adflr = g.dseq - 1;
                    g.asflr = g.sseq.saturating_sub(1);
                } else if dseq == g.adflr + 1 {
                    g.adflr = dseq;
                    g.asflr = sseq;
                    if let Some((ss, p)) = g.pending.range(sseq + 1..g.sseq.max(sseq + 1)).next() {
                        let (ss, pd) = (*ss, p.dseq);
                        if pd > 0 {
                            g.adflr = pd - 1;
                            g.asflr = ss - 1;
                        }
                    }
                }
                g.rdc.remove(&sseq);
                if g.rdqi.remove(&sseq) {
                    g.rdq.retain(|s| *s != sseq);
                }
            }
            AckPolicy::All => {
                if dseq <= g.adflr || sseq <= g.asflr {
                    return;
                }
                if g.cfg.max_ack_pending > 0 && g.pending.len() as i64 >= g.cfg.max_ack_pending {
                    signal = true;
                }
                let from = g.asflr + 1;
                g.adflr = dseq;
                g.asflr = sseq;
                let seqs: Vec<u64> = g.pending.range(..=sseq).map(|(s, _)| *s).collect();
                for s in seqs {
                    g.pending.remove(&s);
                    g.rdc.remove(&s);
                    if g.rdqi.remove(&s) {
                        g.rdq.retain(|x| *x != s);
                    }
                }
                acked.extend(from..=sseq);
            }
            AckPolicy::None => return,
        }
        g.lat = now_nanos();
        g.dirty = true;
        if g.pending.is_empty() {
            g.ptmr = None;
        }
        drop(g);
        if let Some((d, delay)) = metric {
            self.advise(
                Advisory::new("io.nats.jetstream.metric.v1.consumer_ack")
                    .with("stream", self.stream_name.clone())
                    .with("consumer", self.name.clone())
                    .with("consumer_seq", d)
                    .with("stream_seq", sseq)
                    .with("ack_time", delay)
                    .with("deliveries", dc),
                "$JS.EVENT.METRIC.CONSUMER.ACK",
            );
        }
        if self.retention != Retention::Limits {
            if let Some(st) = self.stream.upgrade() {
                for seq in acked {
                    st.ack_msg(self, seq);
                }
            }
        }
        if signal {
            self.wake.notify_one();
        }
    }

    /// The reference's processNak (with an optional delay: a Go duration or
    /// `{"delay": <ns>}`).
    fn process_nak(&self, sseq: u64, dseq: u64, dc: u64, arg: &[u8]) {
        let g = self.inner.lock();
        if dseq <= g.adflr || dseq > g.dseq {
            return;
        }
        if !g.pending.is_empty() && !g.pending.contains_key(&sseq) {
            return;
        }
        drop(g);
        self.advise_seq(
            "io.nats.jetstream.advisory.v1.nak",
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED",
            sseq,
            Some(dseq),
            dc,
        );
        let mut g = self.inner.lock();
        let arg = arg.trim_ascii();
        if !arg.is_empty() {
            let delay = if arg[0] == b'{' {
                serde_json::from_slice::<serde_json::Value>(arg)
                    .ok()
                    .and_then(|v| v.get("delay").and_then(|d| d.as_i64()))
                    .map(|n| n.max(0))
                    .ok_or(())
            } else {
                nats_common::monitor::parse_go_duration(&String::from_utf8_lossy(arg))
                    .map(|d| d.as_nanos() as i64)
                    .map_err(|_| ())
            };
            match delay {
                Err(()) => warn!(
                    "JetStream consumer '{} > {} > {}' bad NAK delay value: {:?}",
                    self.account.name,
                    self.stream_name,
                    self.name,
                    String::from_utf8_lossy(arg)
                ),
                Ok(d) => {
                    if g.rdqi.remove(&sseq) {
                        g.rdq.retain(|s| *s != sseq);
                    }
                    let wait = g.cfg.ack_wait;
                    if let Some(p) = g.pending.get_mut(&sseq) {
                        p.ts = now_nanos() - wait + d;
                        g.dirty = true;
                        if g.ptmr.is_some() {
                            g.ptmr = Some(Instant::now() + Duration::from_millis(10));
                        }
                    }
                    drop(g);
                    self.wake.notify_one();
                    return;
                }
            }
        }
        if g.rdqi.insert(sseq) {
            g.rdq.push_back(sseq);
        }
        drop(g);
        self.wake.notify_one();
    }

    /// A pull request (`MSG.NEXT`, or `+NXT` on an ack), as the reference's
    /// processNextMsgRequest. Errors are answered at once.
    pub fn next_request(&self, reply: &str, body: &[u8]) {
        let mut out = Vec::new();
        self.queue_request(reply, body, &mut out);
        if !out.is_empty() {
            if let Some(server) = self.server.upgrade() {
                self.send(&server, out);
            }
        }
        self.wake.notify_one();
    }

    fn queue_request(&self, reply: &str, body: &[u8], out: &mut Vec<Out>) {
        let mut g = self.inner.lock();
        let err = |out: &mut Vec<Out>, code: u16, text: &str| {
            out.push(Out::status(reply, pull::status(code, text)));
        };
        if !g.cfg.deliver_subject.is_empty() {
            return err(out, 409, "Consumer is push based");
        }
        let req = match pull::parse(body) {
            Ok(r) => r,
            Err(e) => return err(out, 400, &format!("Bad Request - {e}")),
        };
        if g.cfg.max_batch > 0 && req.batch > g.cfg.max_batch {
            return err(
                out,
                409,
                &format!("Exceeded MaxRequestBatch of {}", g.cfg.max_batch),
            );
        }
        if let Some(e) = req.expires {
            if g.cfg.max_expires > 0 && e.as_nanos() as i64 > g.cfg.max_expires {
                return err(
                    out,
                    409,
                    &format!(
                        "Exceeded MaxRequestExpires of {}",
                        nats_common::monitor::go_duration_string(Duration::from_nanos(
                            g.cfg.max_expires as u64
                        ))
                    ),
                );
            }
        }
        if req.max_bytes > 0 && g.cfg.max_bytes > 0 && req.max_bytes > g.cfg.max_bytes {
            return err(
                out,
                409,
                &format!("Exceeded MaxRequestMaxBytes of {}", g.cfg.max_bytes),
            );
        }
        let now = Instant::now();
        if g.waiting.is_full() {
            self.expire_waiting(&mut g, now, false, out);
        }
        if req.no_wait {
            let pending = self.num_pending() + g.rdq.len() as u64;
            if pending == 0 && req.expires.is_none() {
                g.waiting.last = now;
                return err(out, 404, "No Messages");
            }
            if pending > 0 {
                let batch_pending: i64 = g.waiting.reqs.iter().map(|w| w.n).sum();
                if pending < batch_pending.max(0) as u64 {
                    g.waiting.last = now;
                    return err(out, 408, "Requests Pending");
                }
            }
        }
        if g.waiting.is_full() {
            return err(out, 409, "Exceeded MaxWaiting");
        }
        g.waiting.last = now;
        g.waiting.reqs.push_back(pull::Waiting {
            reply: reply.to_string(),
            n: req.batch,
            d: 0,
            b: req.max_bytes,
            expires: req.expires.map(|e| now + e),
            hb: req.hb,
            hbt: req.hb.map(|h| now + h),
            no_wait: req.no_wait,
        });
    }

    /// Whether this consumer still needs `seq` acknowledged (interest retention).
    pub fn needs_ack(&self, seq: u64, subject: &str) -> bool {
        if !self.matches(subject) {
            return false;
        }
        let g = self.inner.lock();
        match g.cfg.ack_policy {
            AckPolicy::None | AckPolicy::All => seq > g.asflr,
            AckPolicy::Explicit => seq > g.asflr && (seq >= g.sseq || g.pending.contains_key(&seq)),
        }
    }

    /// The ack floor's stream sequence (a deleted interest consumer's messages from there on
    /// are checked).
    pub fn ack_floor(&self) -> u64 {
        self.inner.lock().asflr
    }

    /// The stream removed messages: recount and forget what is gone.
    pub fn stream_changed(&self) {
        self.recount_pending();
        self.wake.notify_one();
    }

    /// Deletes an inactive consumer when its time has come (true: deleted).
    fn check_inactive(self: &Arc<Self>, server: &Arc<Server>) -> bool {
        let mut g = self.inner.lock();
        let Some(due) = g.dtmr else {
            return false;
        };
        let now = Instant::now();
        if now < due {
            return false;
        }
        let push = !g.cfg.deliver_subject.is_empty();
        if push {
            if g.active || self.has_interest(&g.cfg.deliver_subject) {
                g.active = true;
                g.dtmr = None;
                return false;
            }
        } else {
            let thresh = g.dthresh.unwrap_or_default();
            let idle = g.waiting.last.elapsed();
            if idle <= Duration::from_nanos(g.cfg.inactive_threshold.max(0) as u64) {
                g.dtmr = Some(now + thresh.saturating_sub(idle));
                return false;
            }
            let mut out = Vec::new();
            self.expire_waiting(&mut g, now, true, &mut out);
            if !g.waiting.is_empty() {
                g.dtmr = Some(now + thresh);
                drop(g);
                self.send(server, out);
                return false;
            }
        }
        drop(g);
        if let Some(st) = self.stream.upgrade() {
            st.delete_consumer(server, &self.name);
        }
        true
    }
}

/// The reference's shouldSample: `sample_freq` as a percentage (`30%` or `30`), every ack
/// at 100 or more, none at 0.
fn should_sample(freq: &str) -> bool {
    let n: i64 = freq.trim_end_matches('%').parse().unwrap_or(0);
    match n {
        n if n <= 0 => false,
        n if n >= 100 => true,
        n => (now_nanos().rem_euclid(100)) <= n,
    }
}

enum NextErr {
    MaxAckPending,
    Eof,
}

/// The numbers in an ack subject: (stream seq, delivery seq, delivery count); zeros when
/// it is not one.
pub fn parse_ack_subject(subject: &str) -> (u64, u64, u64) {
    let t: Vec<&str> = subject.split('.').collect();
    if t.len() != 9 || t[0] != "$JS" || t[1] != "ACK" {
        return (0, 0, 0);
    }
    let n = |s: &str| -> u64 {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            u64::MAX
        } else {
            s.parse().unwrap_or(u64::MAX)
        }
    };
    (n(t[5]), n(t[6]), n(t[4]))
}

/// What a consumer's internal subscription receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Ack,
    Next,
    FlowControl,
}

/// The delivery path's hook for a consumer's subscriptions. Returns an answer to send to
/// the message's reply subject (an ack's confirmation).
pub fn handle(
    c: &Arc<Consumer>,
    ep: Endpoint,
    subject: &str,
    reply: Option<&[u8]>,
    body: &[u8],
) -> Option<()> {
    if c.is_closed() {
        return None;
    }
    match ep {
        Endpoint::Ack => c.ack(subject, reply, body),
        Endpoint::Next => {
            if let Some(r) = reply {
                c.next_request(&String::from_utf8_lossy(r), body);
            }
            None
        }
        Endpoint::FlowControl => {
            c.flow_control_reply(subject);
            None
        }
    }
}

/// The consumer's task.
async fn run(c: Weak<Consumer>) {
    let mut turns = 0u32;
    loop {
        let Some(c) = c.upgrade() else { return };
        if c.is_closed() {
            return;
        }
        let Some(server) = c.server.upgrade() else {
            return;
        };
        if c.check_inactive(&server) {
            return;
        }
        let mut out = Vec::new();
        let (next, ack_none, waiting_for_interest) = {
            let mut g = c.inner.lock();
            let next = c.work(&mut g, Instant::now(), &mut out);
            let watch = !g.cfg.deliver_subject.is_empty() && (!g.active || g.dthresh.is_some());
            (next, std::mem::take(&mut g.ack_none), watch)
        };
        let sent = !out.is_empty();
        c.send(&server, out);
        if !ack_none.is_empty() {
            if let Some(st) = c.stream.upgrade() {
                for seq in ack_none {
                    st.ack_msg(&c, seq);
                }
            }
        }
        drop(server);
        if sent {
            turns += 1;
            if turns.is_multiple_of(16) {
                tokio::task::yield_now().await;
            }
            continue;
        }
        // Wait for a message, an ack, a request, a deadline, or (push) a change of the
        // account's subscriptions.
        let notified = c.wake.notified();
        let account = c.account.clone();
        let interest = account.interest_changed.notified();
        tokio::pin!(interest);
        if waiting_for_interest {
            account.interest_waiters.fetch_add(1, Ordering::Relaxed);
            interest.as_mut().enable();
            // It may have changed between the check and now.
            let g = c.inner.lock();
            let changed = c.has_interest(&g.cfg.deliver_subject) != g.active;
            drop(g);
            if changed {
                account.interest_waiters.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        }
        let sleep = async {
            match next {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = sleep => {}
            _ = &mut interest, if waiting_for_interest => {}
        }
        if waiting_for_interest {
            account.interest_waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
