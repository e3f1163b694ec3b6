//! One stream: its configuration, its store, the subscriptions that capture its subjects,
//! and what happens to a published message on its way in (the headers' checks,
//! duplicates, rollups, limits, the PubAck).
//!
//! A message captured on the stream's subjects is stored on the delivery path, in the
//! publisher's read loop as on the reference (so a publisher cannot outrun its stream),
//! and its PubAck delivered from there. One task per stream expires messages
//! (`max_age`), forgets old message ids (`duplicate_window`) and syncs the file store every
//! minute.

use super::api::errors::{self, ApiError};
use super::api::types::{Discard, Retention, Storage, StreamConfig, StreamInfo, StreamState};
use super::consumer::Consumer;
use super::store::{self, file::FileStore, memory::MemStore, Limits, Purge, Store};
use crate::accounts::Account;
use crate::client::Subscription;
use crate::server::Server;
use nats_common::headers::Headers;
use nats_common::subject;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::{error, warn};

const DEFAULT_DUPLICATE_WINDOW: i64 = 120_000_000_000;
const MAX_NAME_LEN: usize = 255;
const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// How often the file store is synced to disk (the reference 2.9's default).
const SYNC_INTERVAL: Duration = Duration::from_secs(60);

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains([' ', '\t', '\r', '\n', '\x0c', '.', '*', '>'])
}

/// The reference's checks and defaults of a stream configuration (checkStreamCfg), for
/// what this server supports; `lookup` gives the account's other streams' configurations
/// by name, for the mirrors' and sources' checks.
pub fn check_config_with(
    cfg: &StreamConfig,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<StreamConfig, ApiError> {
    if !valid_name(&cfg.name) {
        return Err(errors::invalid_config(
            "stream name is required and can not contain '.', '*', '>'",
        ));
    }
    if cfg.name.len() > MAX_NAME_LEN {
        return Err(errors::invalid_config(format!(
            "stream name is too long, maximum allowed is {MAX_NAME_LEN}"
        )));
    }
    if cfg.description.len() > MAX_DESCRIPTION_LEN {
        return Err(errors::invalid_config(format!(
            "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
        )));
    }
    let mut c = cfg.clone();
    if c.num_replicas == 0 {
        c.num_replicas = 1;
    }
    if c.num_replicas > 5 {
        return Err(errors::invalid_config("maximum replicas is 5"));
    }
    if c.num_replicas < 0 {
        return Err(errors::replicas_negative());
    }
    for v in [
        &mut c.max_msgs,
        &mut c.max_msgs_per_subject,
        &mut c.max_bytes,
    ] {
        if *v == 0 {
            *v = -1;
        }
    }
    if c.max_msg_size == 0 {
        c.max_msg_size = -1;
    }
    if c.max_consumers == 0 {
        c.max_consumers = -1;
    }
    if c.duplicate_window == 0 && c.mirror.is_none() {
        c.duplicate_window = if c.max_age != 0 && c.max_age < DEFAULT_DUPLICATE_WINDOW {
            c.max_age
        } else {
            DEFAULT_DUPLICATE_WINDOW
        };
    }
    const MS100: i64 = 100_000_000;
    if c.max_age > 0 && c.max_age < MS100 {
        return Err(errors::invalid_config("max age needs to be >= 100ms"));
    }
    if c.duplicate_window < 0 {
        return Err(errors::invalid_config(
            "duplicates window can not be negative",
        ));
    }
    if c.max_age != 0 && c.duplicate_window > c.max_age {
        return Err(errors::invalid_config(
            "duplicates window can not be larger then max age",
        ));
    }
    if c.duplicate_window > 0 && c.duplicate_window < MS100 {
        return Err(errors::invalid_config(
            "duplicates window needs to be >= 100ms",
        ));
    }
    if c.deny_purge && c.allow_rollup_hdrs {
        return Err(errors::invalid_config(
            "roll-ups require the purge permission",
        ));
    }
    if c.discard_new_per_subject {
        if c.discard != Discard::New {
            return Err(errors::invalid_config(
                "discard new per subject requires discard new policy to be set",
            ));
        }
        if c.max_msgs_per_subject <= 0 {
            return Err(errors::invalid_config(
                "discard new per subject requires max msgs per subject > 0",
            ));
        }
    }
    super::mirror::check_config(&mut c, lookup)?;
    if c.subjects.is_empty() {
        if c.mirror.is_none() && c.sources.is_none() {
            c.subjects.push(c.name.clone());
        }
    } else {
        if c.mirror.is_some() {
            return Err(errors::mirror_with_subjects());
        }
        let mut seen = std::collections::HashSet::new();
        for s in &c.subjects {
            if !seen.insert(s.as_str()) {
                return Err(errors::invalid_config("duplicate subjects detected"));
            }
            if subject::is_subset(s.as_bytes(), b"$JS.API.>") {
                return Err(errors::invalid_config(
                    "subjects overlap with jetstream api",
                ));
            }
            if !subject::is_valid_subject(s.as_bytes()) {
                return Err(errors::invalid_config("invalid subject"));
            }
        }
    }
    if c.subjects.len() > 1 {
        for a in &c.subjects {
            for b in &c.subjects {
                if a != b && subject::intersects(a.as_bytes(), b.as_bytes()) {
                    return Err(errors::invalid_config(format!(
                        "subject {a:?} overlaps with {b:?}"
                    )));
                }
            }
        }
    }
    if let Some(rp) = &mut c.republish {
        if rp.src.is_empty() {
            rp.src = ">".into();
        }
        let collides = |x: &str| {
            c.subjects
                .iter()
                .any(|s| subject::intersects(x.as_bytes(), s.as_bytes()))
        };
        if !collides(&rp.src) {
            return Err(errors::invalid_config(
                "stream configuration for republish source is not valid subset of subjects",
            ));
        }
        if collides(&rp.dest) {
            return Err(errors::invalid_config(
                "stream configuration for republish destination forms a cycle",
            ));
        }
        if nats_common::transform::Transform::new(&rp.src, &rp.dest).is_err() {
            return Err(errors::invalid_config(
                "stream configuration for republish not valid",
            ));
        }
    }
    Ok(c)
}

/// The reference's checks of an update against the current configuration, and its
/// adjustments for sealing (no more expiry, deletes, purges or rollups).
pub fn check_update(old: &StreamConfig, new: &StreamConfig) -> Result<StreamConfig, ApiError> {
    let inv = |m: &str| Err(errors::invalid_config(m));
    if new.name != old.name {
        return inv("stream configuration name must match original");
    }
    if new.max_consumers != old.max_consumers {
        return inv("stream configuration update can not change MaxConsumers");
    }
    if new.storage != old.storage {
        return inv("stream configuration update can not change storage type");
    }
    if new.retention != old.retention {
        return inv("stream configuration update can not change retention policy");
    }
    if old.sealed && !new.sealed {
        return inv("stream configuration update can not unseal a sealed stream");
    }
    if old.deny_delete && !new.deny_delete {
        return inv("stream configuration update can not cancel deny message deletes");
    }
    if old.deny_purge && !new.deny_purge {
        return inv("stream configuration update can not cancel deny purge");
    }
    if new.mirror != old.mirror {
        return Err(errors::mirror_not_updatable());
    }
    if old.republish != new.republish {
        return inv("stream configuration update can not change RePublish");
    }
    let mut c = new.clone();
    if c.sealed {
        c.max_age = 0;
        c.discard = Discard::New;
        c.deny_delete = true;
        c.deny_purge = true;
        c.allow_rollup_hdrs = false;
    }
    Ok(c)
}

pub fn limits_of(c: &StreamConfig) -> Limits {
    Limits {
        max_msgs: c.max_msgs,
        max_bytes: c.max_bytes,
        max_age: c.max_age,
        max_msgs_per_subject: c.max_msgs_per_subject,
        discard_new: c.discard == Discard::New,
        discard_new_per_subject: c.discard_new_per_subject,
    }
}

/// A message captured on one of the stream's subjects.
pub struct Inbound<'a> {
    pub subject: &'a str,
    pub reply: bool,
    pub hdr: &'a [u8],
    pub data: &'a [u8],
}

struct Inner {
    config: StreamConfig,
    store: Box<dyn Store>,
    /// Message ids within the duplicate window: id -> (seq, time), and their order.
    dedupe: HashMap<String, u64>,
    dedupe_order: VecDeque<(String, i64)>,
    last_msg_id: String,
}

pub struct Stream {
    pub name: String,
    pub account: Arc<Account>,
    /// The account's JetStream: its limits, and its usage this stream adds to.
    pub jsa: Weak<super::JsAccount>,
    acc_used: Arc<super::StoreUsage>,
    server: Weak<Server>,
    /// Unix nanoseconds.
    pub created: i64,
    /// The stream's directory (file and memory streams both keep their configuration).
    dir: PathBuf,
    inner: Mutex<Inner>,
    subs: Mutex<Vec<Arc<Subscription>>>,
    /// `$JS.API.DIRECT.GET.<name>` and `….<name>.>` while `allow_direct` is on.
    direct: Mutex<Vec<Arc<Subscription>>>,
    /// The bytes last counted into the server's usage (`JetStream::used`).
    counted: std::sync::atomic::AtomicU64,
    /// Its consumers, by name (taken after `inner` when both are held).
    pub consumers: parking_lot::RwLock<BTreeMap<String, Arc<Consumer>>>,
    /// Its mirror's or sources' progress (mirror.rs).
    pub origins: Mutex<super::mirror::Origins>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Meta {
    pub config: StreamConfig,
    pub created: i64,
}

impl Stream {
    /// Opens the stream's store (recovering a file store) and starts its task. The
    /// caller subscribes it (`subscribe`) once it is registered.
    pub fn open(
        server: &Arc<Server>,
        jsa: &Arc<super::JsAccount>,
        dir: PathBuf,
        config: StreamConfig,
        created: i64,
    ) -> Result<Arc<Stream>, String> {
        let account = &jsa.account;
        let limits = limits_of(&config);
        let store: Box<dyn Store> = match config.storage {
            Storage::Memory => Box::new(MemStore::new(limits)),
            Storage::File => {
                let (fs, repairs) = FileStore::open(&dir, limits).map_err(|e| e.to_string())?;
                for r in repairs {
                    warn!("JetStream stream '{} > {}': {r}", account.name, config.name);
                }
                Box::new(fs)
            }
        };
        if config.storage == Storage::File {
            // Memory streams leave nothing on disk and do not survive a restart, as on
            // the reference.
            let meta = Meta {
                config: config.clone(),
                created,
            };
            write_meta(&dir, &meta).map_err(|e| e.to_string())?;
        }
        let st = Arc::new(Stream {
            name: config.name.clone(),
            account: account.clone(),
            jsa: Arc::downgrade(jsa),
            acc_used: jsa.used.clone(),
            server: Arc::downgrade(server),
            created,
            dir,
            inner: Mutex::new(Inner {
                config,
                store,
                dedupe: HashMap::new(),
                dedupe_order: VecDeque::new(),
                last_msg_id: String::new(),
            }),
            subs: Mutex::new(Vec::new()),
            direct: Mutex::new(Vec::new()),
            counted: std::sync::atomic::AtomicU64::new(0),
            consumers: parking_lot::RwLock::new(BTreeMap::new()),
            origins: Mutex::new(super::mirror::Origins::default()),
        });
        st.rebuild_dedupe();
        st.recount(&st.inner.lock());
        tokio::spawn(run(Arc::downgrade(&st)));
        Ok(st)
    }

    /// Brings the server's usage figure up to date with the store.
    fn recount(&self, g: &Inner) {
        let now = g.store.state().bytes;
        self.set_counted(g.config.storage, now);
    }

    fn set_counted(&self, storage: Storage, now: u64) {
        let before = self.counted.swap(now, std::sync::atomic::Ordering::Relaxed);
        let delta = now as i64 - before as i64;
        self.acc_used.add(storage, delta);
        if let Some(js) = self.server.upgrade().and_then(|s| s.jetstream()) {
            js.add_used(storage, delta);
        }
    }

    /// Message ids of the stored messages still inside the duplicate window.
    fn rebuild_dedupe(&self) {
        let mut g = self.inner.lock();
        let window = g.config.duplicate_window;
        let st = g.store.state();
        if window <= 0 || st.msgs == 0 {
            return;
        }
        let cutoff = now_nanos() - window;
        let Some(mut seq) = g.store.first_since(cutoff) else {
            return;
        };
        while let Ok(m) = g.store.load_next(">", seq) {
            seq = m.seq + 1;
            if m.ts < cutoff || m.hdr.is_empty() {
                continue;
            }
            if let Some(id) = Headers::parse(&m.hdr)
                .ok()
                .and_then(|h| h.get("Nats-Msg-Id").map(str::to_string))
            {
                g.dedupe.insert(id.clone(), m.seq);
                g.dedupe_order.push_back((id.clone(), m.ts));
                g.last_msg_id = id;
            }
        }
    }

    pub fn subscribe(self: &Arc<Self>, server: &Arc<Server>) {
        let subjects = self.inner.lock().config.subjects.clone();
        let mut subs = self.subs.lock();
        for s in subjects {
            let sub = server.subscribe_internal(
                &self.account,
                &s,
                crate::client::Internal::JetStream(super::Handler::Ingest(Arc::downgrade(self))),
                true,
            );
            subs.push(sub);
        }
    }

    pub fn unsubscribe(&self, server: &Arc<Server>) {
        for sub in self.subs.lock().drain(..) {
            server.remove_sub(&sub);
        }
        for sub in self.direct.lock().drain(..) {
            server.remove_sub(&sub);
        }
    }

    /// Subscribes or unsubscribes the direct get subjects.
    pub fn set_direct(self: &Arc<Self>, server: &Arc<Server>, on: bool) {
        let mut d = self.direct.lock();
        if on && d.is_empty() {
            for s in [
                format!("$JS.API.DIRECT.GET.{}", self.name),
                format!("$JS.API.DIRECT.GET.{}.>", self.name),
            ] {
                d.push(server.subscribe_internal(
                    &self.account,
                    &s,
                    crate::client::Internal::JetStream(super::Handler::DirectGet(Arc::downgrade(
                        self,
                    ))),
                    true,
                ));
            }
        } else if !on {
            for sub in d.drain(..) {
                server.remove_sub(&sub);
            }
        }
    }

    pub fn config(&self) -> StreamConfig {
        self.inner.lock().config.clone()
    }

    /// Where a consumer keeps its state: `obs/<name>` beside a file stream's messages;
    /// nothing for memory streams (or consumers asking for memory storage).
    pub fn consumer_dir(&self, name: &str, mem_storage: bool) -> Option<PathBuf> {
        let file = self.inner.lock().config.storage == Storage::File;
        (file && !mem_storage).then(|| self.dir.join("obs").join(name))
    }

    /// The consumers' directories found on disk (recovery).
    pub fn saved_consumer_dirs(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(self.dir.join("obs")) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        v.sort();
        v
    }

    pub fn info(&self) -> StreamInfo {
        // The origins' figures first (mirror.rs holds them while reading the store).
        let (mirror, sources) = self.origins.lock().info();
        let g = self.inner.lock();
        let mut state = state_json(&g.store.state());
        state.consumer_count = self.public_consumers().len() as u64;
        StreamInfo {
            config: g.config.clone(),
            created: super::api::types::time_string(self.created),
            state,
            mirror,
            sources,
        }
    }

    /// Syncs the store to disk now.
    pub fn sync(&self) {
        if let Err(e) = self.inner.lock().store.sync() {
            error!(
                "JetStream stream '{} > {}' sync failed: {e}",
                self.account.name, self.name
            );
        }
    }

    pub fn store_state(&self) -> store::StoreState {
        self.inner.lock().store.state()
    }

    pub fn update(&self, config: StreamConfig) -> Result<(), ApiError> {
        let mut g = self.inner.lock();
        let config = check_update(&g.config, &config)?;
        g.store
            .set_limits(limits_of(&config))
            .map_err(|e| errors::stream_update(e.to_string()))?;
        if config.storage == Storage::File {
            write_meta(
                &self.dir,
                &Meta {
                    config: config.clone(),
                    created: self.created,
                },
            )
            .map_err(|e| errors::stream_update(e.to_string()))?;
        }
        g.config = config;
        self.recount(&g);
        Ok(())
    }

    /// A purge request; consumers taking the purged subject move past what went (the
    /// reference's consumer purge).
    pub fn purge(&self, p: &Purge) -> Result<u64, store::StoreError> {
        let mut g = self.inner.lock();
        let r = g.store.purge(p);
        self.recount(&g);
        let st = g.store.state();
        let mut fseq = st.first_seq;
        if let Some(subj) = &p.subject {
            fseq = g
                .store
                .index()
                .next_matching(subj, st.first_seq)
                .unwrap_or(0);
        }
        drop(g);
        if r.is_ok() {
            // A request with a body names a subject, even an empty one that only
            // unfiltered consumers take.
            let with_body = p.subject.is_some() || p.seq.is_some() || p.keep.is_some();
            let subj = p.subject.as_deref().unwrap_or_default();
            for c in self.consumers.read().values() {
                if !with_body || c.takes(subj) {
                    c.purged(fseq, st.last_seq);
                }
            }
        }
        self.changed();
        r
    }

    pub fn remove_msg(&self, seq: u64) -> Result<bool, store::StoreError> {
        let mut g = self.inner.lock();
        let r = g.store.remove_msg(seq);
        self.recount(&g);
        drop(g);
        self.changed();
        r
    }

    /// Tells the consumers that messages went (their pending counts change).
    fn changed(&self) {
        for c in self.consumers.read().values() {
            c.stream_changed();
        }
    }

    /// Runs `f` on the store's bookkeeping under the stream's lock.
    pub fn with_index<R>(&self, f: impl FnOnce(&store::Index) -> R) -> R {
        let g = self.inner.lock();
        f(g.store.index())
    }

    /// A consumer acknowledged `seq` on an interest or work queue stream: the message
    /// goes when no other consumer still needs it (the reference's ackMsg).
    pub fn ack_msg(&self, from: &Consumer, seq: u64) {
        let retention = self.inner.lock().config.retention;
        if retention == Retention::Limits {
            return;
        }
        let subject = {
            let g = self.inner.lock();
            if seq < g.store.state().first_seq {
                return;
            }
            g.store.index().subject_of(seq)
        };
        let Some(subject) = subject else { return };
        let keep = self
            .consumers
            .read()
            .values()
            .any(|c| !std::ptr::eq(&**c, from) && c.needs_ack(seq, &subject));
        if !keep {
            let mut g = self.inner.lock();
            let _ = g.store.remove_msg(seq);
            self.recount(&g);
        }
    }

    /// The consumers clients see: not the `direct` ones mirrors and sources make.
    pub fn public_consumers(&self) -> Vec<Arc<Consumer>> {
        self.consumers
            .read()
            .values()
            .filter(|c| !c.is_direct())
            .cloned()
            .collect()
    }

    /// A mirrored message, stored at the origin's sequence `seq` with its time (the
    /// sequences in between skipped). False when `seq` is not past the last one.
    pub fn store_mirrored(
        &self,
        subject: &str,
        hdr: &[u8],
        data: &[u8],
        seq: u64,
        ts: i64,
    ) -> Result<bool, store::StoreError> {
        let mut g = self.inner.lock();
        let last = g.store.state().last_seq;
        if seq <= last {
            return Ok(false);
        }
        // The server's and the account's limits, as for a publish.
        if let Some(js) = self.server.upgrade().and_then(|s| s.jetstream()) {
            if js.limits_exceeded(g.config.storage) {
                js.resources_exceeded();
                return Err(store::StoreError::Io(
                    errors::insufficient_resources().description,
                ));
            }
        }
        if let Some(jsa) = self.jsa.upgrade() {
            if jsa.limits_exceeded(g.config.storage) {
                jsa.resources_exceeded();
                return Err(store::StoreError::Io(
                    errors::account_resources_exceeded().description,
                ));
            }
        }
        for _ in last + 1..seq {
            g.store.skip_msg(ts)?;
        }
        g.store.store_msg(subject, hdr, data, ts)?;
        self.recount(&g);
        for c in self.consumers.read().values() {
            c.on_stored(subject);
        }
        Ok(true)
    }

    /// Skips sequences up to `seq` (a mirror whose origin lost messages).
    pub fn skip_to(&self, seq: u64) {
        let mut g = self.inner.lock();
        let mut last = g.store.state().last_seq;
        while last < seq {
            if g.store.skip_msg(now_nanos()).is_err() {
                break;
            }
            last += 1;
        }
    }

    /// Adds a consumer (already started) to the stream.
    pub fn add_consumer(&self, c: Arc<Consumer>) {
        self.consumers.write().insert(c.name.clone(), c);
    }

    pub fn consumer(&self, name: &str) -> Option<Arc<Consumer>> {
        self.consumers.read().get(name).cloned()
    }

    /// Deletes a consumer: stopped with its advisory, its files removed, and on an
    /// interest stream the messages nobody needs any more removed. False when there is
    /// no such consumer.
    pub fn delete_consumer(&self, server: &Arc<Server>, name: &str) -> bool {
        let Some(c) = self.consumers.write().remove(name) else {
            return false;
        };
        c.stop(server, true);
        c.remove_files();
        let (retention, first, last) = {
            let g = self.inner.lock();
            let st = g.store.state();
            (g.config.retention, st.first_seq, st.last_seq)
        };
        if retention == Retention::Interest {
            let start = c.ack_floor().max(first);
            let consumers: Vec<Arc<Consumer>> = self.consumers.read().values().cloned().collect();
            let mut gone = Vec::new();
            for seq in start..=last {
                let subject = self.inner.lock().store.index().subject_of(seq);
                let Some(subject) = subject else { continue };
                if !consumers.iter().any(|o| o.needs_ack(seq, &subject)) {
                    gone.push(seq);
                }
            }
            let mut g = self.inner.lock();
            for seq in gone {
                let _ = g.store.remove_msg(seq);
            }
            self.recount(&g);
        }
        true
    }

    /// Stops every consumer (the stream is going away or the server stops);
    /// `deleted`: with their files and advisories.
    pub fn stop_consumers(&self, server: &Arc<Server>, deleted: bool) {
        let all: Vec<Arc<Consumer>> = std::mem::take(&mut *self.consumers.write())
            .into_values()
            .collect();
        for c in all {
            c.stop(server, deleted);
        }
    }

    pub fn load(&self, seq: u64) -> Result<store::StoreMsg, store::StoreError> {
        self.inner.lock().store.load(seq)
    }

    pub fn load_last(&self, filter: &str) -> Result<store::StoreMsg, store::StoreError> {
        self.inner.lock().store.load_last(filter)
    }

    pub fn load_next(
        &self,
        filter: &str,
        start: u64,
    ) -> Result<store::StoreMsg, store::StoreError> {
        self.inner.lock().store.load_next(filter, start)
    }

    /// `load_next`, or when there is nothing, the last sequence at that moment.
    pub fn load_next_or_last(&self, filter: &str, start: u64) -> Result<store::StoreMsg, u64> {
        let g = self.inner.lock();
        g.store
            .load_next(filter, start)
            .map_err(|_| g.store.state().last_seq)
    }

    /// Removes the stream's data (after `unsubscribe`).
    pub fn delete(&self) -> Result<(), String> {
        let storage = self.inner.lock().config.storage;
        self.set_counted(storage, 0);
        self.inner
            .lock()
            .store
            .delete()
            .map_err(|e| e.to_string())?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// One published message: the reference's checks in its order, then the store.
    /// Returns the answer for the publisher's reply subject; `republish` gets the copy to
    /// publish again when the stream republishes this subject.
    pub fn process(&self, m: Inbound<'_>, republish: &mut Option<Republished>) -> Option<Vec<u8>> {
        let mut g = self.inner.lock();
        let name = self.name.clone();
        let can_respond = !g.config.no_ack && m.reply;
        let fail =
            |e: ApiError| -> Option<Vec<u8>> { can_respond.then(|| pub_ack_error(&name, e)) };
        let mut msg_id = String::new();
        let mut rollup_sub = false;
        let mut rollup_all = false;
        if g.config.sealed {
            return fail(errors::stream_sealed());
        }
        let hdrs = if m.hdr.is_empty() {
            None
        } else {
            Headers::parse(m.hdr).ok()
        };
        if let Some(h) = &hdrs {
            if let Some(s) = h.get("Nats-Expected-Stream").filter(|s| !s.is_empty()) {
                if s != name {
                    return fail(errors::stream_not_match());
                }
            }
            if let Some(id) = h.get("Nats-Msg-Id").filter(|s| !s.is_empty()) {
                msg_id = id.to_string();
                if let Some(seq) = g.dedupe.get(id) {
                    let seq = *seq;
                    return can_respond.then(|| {
                        format!(
                            "{{\"stream\":{}, \"seq\":{seq},\"duplicate\": true}}",
                            json_str(&name)
                        )
                        .into_bytes()
                    });
                }
            }
            if let Some(v) = h.get("Nats-Expected-Last-Subject-Sequence") {
                if let Ok(seq) = v.parse::<u64>() {
                    let last = g.store.load_last(m.subject).map_or(0, |sm| sm.seq);
                    if last != seq {
                        return fail(errors::wrong_last_sequence(last));
                    }
                }
            }
            if let Some(v) = h.get("Nats-Expected-Last-Sequence") {
                if let Ok(seq) = v.parse::<u64>() {
                    let last = g.store.state().last_seq;
                    if seq != last {
                        return fail(errors::wrong_last_sequence(last));
                    }
                }
            }
            if let Some(id) = h.get("Nats-Expected-Last-Msg-Id").filter(|s| !s.is_empty()) {
                if id != g.last_msg_id {
                    return fail(errors::wrong_last_msg_id(&g.last_msg_id));
                }
            }
            if let Some(r) = h.get("Nats-Rollup").filter(|s| !s.is_empty()) {
                if !g.config.allow_rollup_hdrs || g.config.deny_purge {
                    return fail(errors::rollup_failed("rollup not permitted"));
                }
                match r {
                    "sub" => rollup_sub = true,
                    "all" => rollup_all = true,
                    _ => return None,
                }
            }
        }
        let max = g.config.max_msg_size;
        if max >= 0 && m.hdr.len() + m.data.len() > max as usize {
            return fail(errors::message_exceeds_maximum());
        }
        if m.hdr.len() > u16::MAX as usize {
            return fail(errors::header_exceeds_maximum());
        }
        if let Some(js) = self.server.upgrade().and_then(|s| s.jetstream()) {
            if js.limits_exceeded(g.config.storage) {
                js.resources_exceeded();
                return fail(errors::insufficient_resources());
            }
        }
        if let Some(jsa) = self.jsa.upgrade() {
            if jsa.limits_exceeded(g.config.storage) {
                jsa.resources_exceeded();
                return fail(errors::account_resources_exceeded());
            }
        }
        // Republish: the subject it goes out on, and the last sequence of this subject
        // before this message (gap detection for light clients).
        let rp = g.config.republish.clone().and_then(|rp| {
            let t = nats_common::transform::Transform::new(&rp.src, &rp.dest).ok()?;
            let to = t.matches_and_apply(m.subject).ok()?;
            let last = g.store.load_last(m.subject).map_or(0, |sm| sm.seq);
            Some((rp.headers_only, to, last))
        });
        let ts = now_nanos();
        // Interest retention with no consumer for the subject: the sequence is used and
        // nothing is kept, as the reference skips such messages.
        let no_interest = g.config.retention == Retention::Interest
            && !self.consumers.read().values().any(|c| c.matches(m.subject));
        let seq = if no_interest {
            match g.store.skip_msg(ts) {
                Ok(s) => s,
                Err(e) => return fail(errors::store_failed(e.to_string())),
            }
        } else {
            match g.store.store_msg(m.subject, m.hdr, m.data, ts) {
                Ok(s) => s,
                Err(e) => {
                    if matches!(e, store::StoreError::Io(_)) {
                        error!(
                            "JetStream failed to store a msg on stream '{} > {}': {e}",
                            self.account.name, name
                        );
                    }
                    return fail(errors::store_failed(e.to_string()));
                }
            }
        };
        g.last_msg_id = msg_id.clone();
        if !msg_id.is_empty() {
            g.dedupe.insert(msg_id.clone(), seq);
            g.dedupe_order.push_back((msg_id, ts));
        }
        if rollup_sub || rollup_all {
            let p = Purge {
                subject: rollup_sub.then(|| m.subject.to_string()),
                seq: None,
                keep: Some(1),
            };
            let _ = g.store.purge(&p);
        }
        self.recount(&g);
        if let Some((headers_only, to, last)) = rp {
            *republish = Some(Republished::new(
                &name,
                m.subject,
                seq,
                last,
                to,
                m.hdr,
                m.data,
                headers_only,
            ));
        }
        if !no_interest {
            for c in self.consumers.read().values() {
                c.on_stored(m.subject);
            }
        }
        drop(g);
        if rollup_sub || rollup_all {
            self.changed();
        }
        can_respond
            .then(|| format!("{{\"stream\":{}, \"seq\":{seq}}}", json_str(&name)).into_bytes())
    }

    /// Periodic work: expiry, the duplicate window, and (every `SYNC_INTERVAL`) sync.
    fn tick(&self, sync: bool) {
        let mut g = self.inner.lock();
        let now = now_nanos();
        match g.store.expire(now) {
            Err(e) => error!(
                "JetStream stream '{} > {}' expiry failed: {e}",
                self.account.name, self.name
            ),
            Ok(n) if n > 0 => {
                drop(g);
                self.changed();
                g = self.inner.lock();
            }
            Ok(_) => {}
        }
        self.recount(&g);
        let window = g.config.duplicate_window;
        while let Some((id, ts)) = g.dedupe_order.front().cloned() {
            if now - ts < window {
                break;
            }
            g.dedupe_order.pop_front();
            g.dedupe.remove(&id);
        }
        if sync {
            if let Err(e) = g.store.sync() {
                error!(
                    "JetStream stream '{} > {}' sync failed: {e}",
                    self.account.name, self.name
                );
            }
        }
    }
}

/// A stored message published again (the stream's `republish`): the reference's
/// `Nats-Stream`, `Nats-Subject`, `Nats-Sequence`, `Nats-Last-Sequence` headers (and
/// `Nats-Msg-Size` without the body for `headers_only`) added to the message's own.
pub struct Republished {
    pub subject: Vec<u8>,
    pub hdr: Vec<u8>,
    pub data: Vec<u8>,
}

impl Republished {
    #[allow(clippy::too_many_arguments)]
    fn new(
        stream: &str,
        subject: &str,
        seq: u64,
        last: u64,
        to: Vec<u8>,
        hdr: &[u8],
        data: &[u8],
        headers_only: bool,
    ) -> Republished {
        let mut h = if hdr.len() > 2 {
            hdr[..hdr.len() - 2].to_vec()
        } else {
            b"NATS/1.0\r\n".to_vec()
        };
        h.extend_from_slice(
            format!(
                "Nats-Stream: {stream}\r\nNats-Subject: {subject}\r\nNats-Sequence: {seq}\r\nNats-Last-Sequence: {last}\r\n"
            )
            .as_bytes(),
        );
        if headers_only {
            h.extend_from_slice(format!("Nats-Msg-Size: {}\r\n", data.len()).as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        Republished {
            subject: to,
            hdr: h,
            data: if headers_only {
                Vec::new()
            } else {
                data.to_vec()
            },
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The reference's error PubAck: `{"error":{…},"stream":…,"seq":0}`.
fn pub_ack_error(stream: &str, e: ApiError) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct R<'a> {
        error: ApiError,
        stream: &'a str,
        seq: u64,
    }
    crate::monitor::go_json(&R {
        error: e,
        stream,
        seq: 0,
    })
    .into_bytes()
}

pub fn state_json(s: &store::StoreState) -> StreamState {
    StreamState {
        messages: s.msgs,
        bytes: s.bytes,
        first_seq: s.first_seq,
        first_ts: super::api::types::time_string(s.first_ts),
        last_seq: s.last_seq,
        last_ts: super::api::types::time_string(s.last_ts),
        num_deleted: s.num_deleted,
        num_subjects: s.num_subjects,
        consumer_count: 0,
    }
}

fn write_meta(dir: &std::path::Path, meta: &Meta) -> std::io::Result<()> {
    let tmp = dir.join("meta.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(meta).unwrap_or_default())?;
    std::fs::rename(tmp, dir.join("meta.json"))
}

pub fn read_meta(dir: &std::path::Path) -> Result<Meta, String> {
    let b = std::fs::read(dir.join("meta.json")).map_err(|e| e.to_string())?;
    serde_json::from_slice(&b).map_err(|e| e.to_string())
}

/// The stream's task: the periodic work (expiry, the duplicate window, syncs).
async fn run(stream: Weak<Stream>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sync = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(st) = stream.upgrade() else { return };
        let sync = last_sync.elapsed() >= SYNC_INTERVAL;
        if sync {
            last_sync = tokio::time::Instant::now();
        }
        tokio::task::block_in_place(|| st.tick(sync));
    }
}
