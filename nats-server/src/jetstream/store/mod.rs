//! Message storage under a stream: the `Store` trait the stream talks to, and its two
//! implementations, `memory::MemStore` and `file::FileStore`.
//!
//! A store owns the numbering (sequences), the per-subject bookkeeping and the stream's
//! limits (`max_msgs`, `max_bytes`, `max_age`, `max_msgs_per_subject`, discard policy),
//! which it enforces as the reference's stores do. Everything above it (headers,
//! duplicates, acks) belongs to the stream. A replicated log can later sit between the
//! stream and a store: every change goes through `store_msg`, `remove_msg`, `purge` and
//! `expire`, which take no stream state and return what they did.
//!
//! The bookkeeping both stores share is `Index`: which sequences exist, their subjects,
//! times and sizes. Each store adds where the bodies live.

pub mod file;
pub mod memory;

use nats_common::subject;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreMsg {
    pub subject: String,
    pub seq: u64,
    /// Unix nanoseconds.
    pub ts: i64,
    pub hdr: Vec<u8>,
    pub data: Vec<u8>,
}

/// The limits a store enforces (from the stream's configuration; -1 or 0: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_msgs: i64,
    pub max_bytes: i64,
    /// Nanoseconds; 0: none.
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    pub discard_new: bool,
    pub discard_new_per_subject: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_msgs: -1,
            max_bytes: -1,
            max_age: 0,
            max_msgs_per_subject: -1,
            discard_new: false,
            discard_new_per_subject: false,
        }
    }
}

/// A store's figures, as the stream's `state` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreState {
    pub msgs: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub first_ts: i64,
    pub last_seq: u64,
    pub last_ts: i64,
    pub num_subjects: u64,
    /// Sequences between first and last that are gone (deleted messages).
    pub num_deleted: u64,
}

/// Errors with the reference's texts (they reach clients inside API errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    MaxMsgs,
    MaxBytes,
    MaxMsgsPerSubject,
    NotFound,
    /// A sequence past the last one.
    Eof,
    Io(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::MaxMsgs => f.write_str("maximum messages exceeded"),
            StoreError::MaxBytes => f.write_str("maximum bytes exceeded"),
            StoreError::MaxMsgsPerSubject => f.write_str("maximum messages per subject exceeded"),
            StoreError::NotFound => f.write_str("no message found"),
            StoreError::Eof => f.write_str("stream store EOF"),
            StoreError::Io(e) => f.write_str(e),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// What a purge removes: everything, one subject (filter, wildcards allowed), below a
/// sequence, and/or all but the newest `keep`.
#[derive(Clone, Debug, Default)]
pub struct Purge {
    pub subject: Option<String>,
    pub seq: Option<u64>,
    pub keep: Option<u64>,
}

/// The storage under one stream.
pub trait Store: Send {
    /// Appends a message at the next sequence, first refusing it if a discard-new limit
    /// is reached, then removing what discard-old limits push out. Returns its sequence.
    fn store_msg(
        &mut self,
        subject: &str,
        hdr: &[u8],
        data: &[u8],
        ts: i64,
    ) -> Result<u64, StoreError>;
    /// Uses the next sequence without keeping a message (interest retention with no
    /// interest). Returns it.
    fn skip_msg(&mut self, ts: i64) -> Result<u64, StoreError>;
    fn load(&self, seq: u64) -> Result<StoreMsg, StoreError>;
    /// The newest message whose subject matches `filter` (wildcards allowed).
    fn load_last(&self, filter: &str) -> Result<StoreMsg, StoreError>;
    /// The first message at or after `start` whose subject matches `filter`.
    fn load_next(&self, filter: &str, start: u64) -> Result<StoreMsg, StoreError>;
    /// False when the sequence was not there (the memory store); the file store answers
    /// `NotFound` for a removed sequence and `Eof` past the last one, as the reference's.
    fn remove_msg(&mut self, seq: u64) -> Result<bool, StoreError>;
    /// How many messages went.
    fn purge(&mut self, p: &Purge) -> Result<u64, StoreError>;
    /// Removes messages older than `max_age` at `now` (unix nanoseconds); how many went.
    fn expire(&mut self, now: i64) -> Result<u64, StoreError>;
    fn state(&self) -> StoreState;
    /// The first sequence stored at or after `ts` (from the index, no reading).
    fn first_since(&self, ts: i64) -> Option<u64>;
    /// New limits; what they push out goes at once.
    fn set_limits(&mut self, limits: Limits) -> Result<(), StoreError>;
    /// Makes what was written durable (the file store's periodic sync).
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Removes the store and whatever it kept on disk.
    fn delete(&mut self) -> Result<(), StoreError>;
    /// The bookkeeping, for the questions consumers ask (counts, subjects, last per
    /// subject) without reading bodies.
    fn index(&self) -> &Index;
}

/// Which sizes a store counts a message with (the reference's formulas, so `bytes` and
/// `max_bytes` mean the same on both servers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sizing {
    Memory,
    File,
}

impl Sizing {
    pub fn size(self, subject: &str, hdr: &[u8], data: &[u8]) -> u64 {
        match self {
            Sizing::Memory => (subject.len() + hdr.len() + data.len() + 16) as u64,
            Sizing::File if hdr.is_empty() => (22 + subject.len() + data.len() + 8) as u64,
            Sizing::File => (22 + subject.len() + 4 + hdr.len() + data.len() + 8) as u64,
        }
    }
}

/// Whether a stored (literal) subject matches a filter that may have wildcards.
pub fn subject_matches(subject: &str, filter: &str) -> bool {
    subject::matches(filter.as_bytes(), subject.as_bytes())
}

/// What the index knows of one message.
#[derive(Clone, Debug)]
pub struct Meta {
    pub subject: Arc<str>,
    pub ts: i64,
    pub size: u64,
}

/// The shared bookkeeping: live sequences with their subject, time and size; per
/// subject, its live sequences; totals; and the limits with the reference's order of
/// enforcement.
#[derive(Debug)]
pub struct Index {
    pub msgs: BTreeMap<u64, Meta>,
    subjects: HashMap<Arc<str>, BTreeSet<u64>>,
    pub bytes: u64,
    /// The last sequence ever assigned (survives removals and purges).
    pub last_seq: u64,
    pub last_ts: i64,
    /// After a purge of everything the first sequence is the next one.
    first_hint: u64,
    /// The first time shown while there is no message: a skipped sequence's.
    pub empty_first_ts: i64,
    pub limits: Limits,
}

impl Index {
    pub fn new(limits: Limits) -> Index {
        Index {
            msgs: BTreeMap::new(),
            subjects: HashMap::new(),
            bytes: 0,
            last_seq: 0,
            last_ts: 0,
            first_hint: 0,
            empty_first_ts: 0,
            limits,
        }
    }

    /// The reference's discard-new checks, before a message of `size` (`body`: header
    /// and payload length) on `subject` is stored.
    pub fn check_discard_new(
        &self,
        subject: &str,
        body: u64,
        first_of_subject_size: impl Fn(u64) -> u64,
    ) -> Result<(), StoreError> {
        let l = &self.limits;
        let ss = self.subjects.get(subject);
        let at_subject_limit = l.max_msgs_per_subject > 0
            && ss.is_some_and(|s| s.len() as u64 >= l.max_msgs_per_subject as u64);
        if !l.discard_new {
            return Ok(());
        }
        if at_subject_limit && l.discard_new_per_subject {
            return Err(StoreError::MaxMsgsPerSubject);
        }
        if l.max_msgs > 0 && self.msgs.len() as u64 >= l.max_msgs as u64 && !at_subject_limit {
            return Err(StoreError::MaxMsgs);
        }
        if l.max_bytes > 0 && self.bytes + body >= l.max_bytes as u64 {
            if !at_subject_limit {
                return Err(StoreError::MaxBytes);
            }
            let first = ss.and_then(|s| s.first().copied()).unwrap_or(0);
            if first_of_subject_size(first) < body {
                return Err(StoreError::MaxBytes);
            }
        }
        Ok(())
    }

    pub fn insert(&mut self, seq: u64, subject: &str, ts: i64, size: u64) {
        let subj: Arc<str> = match self.subjects.get_key_value(subject) {
            Some((k, _)) => k.clone(),
            None => Arc::from(subject),
        };
        self.subjects.entry(subj.clone()).or_default().insert(seq);
        self.msgs.insert(
            seq,
            Meta {
                subject: subj,
                ts,
                size,
            },
        );
        self.bytes += size;
        if seq > self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
        }
    }

    pub fn remove(&mut self, seq: u64) -> Option<Meta> {
        let m = self.msgs.remove(&seq)?;
        self.bytes -= m.size;
        if let Some(set) = self.subjects.get_mut(&m.subject) {
            set.remove(&seq);
            if set.is_empty() {
                self.subjects.remove(&m.subject);
            }
        }
        Some(m)
    }

    /// Records that every sequence up to `seq` is gone (a purge), so the first sequence
    /// is `seq + 1` even with no message left.
    pub fn purged_through(&mut self, seq: u64) {
        self.first_hint = self.first_hint.max(seq + 1);
        self.empty_first_ts = 0;
        if seq > self.last_seq {
            self.last_seq = seq;
        }
    }

    /// Sequences the discard-old limits push out after `subject` got a message:
    /// per-subject first, then message count, then bytes.
    pub fn over_limits(&self, subject: Option<&str>) -> Vec<u64> {
        let l = &self.limits;
        let mut out = Vec::new();
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        if l.max_msgs_per_subject > 0 {
            let max = l.max_msgs_per_subject as usize;
            let mut check = |set: &BTreeSet<u64>| {
                if set.len() > max {
                    for s in set.iter().take(set.len() - max) {
                        gone.insert(*s);
                    }
                }
            };
            match subject {
                Some(s) => {
                    if let Some(set) = self.subjects.get(s) {
                        check(set);
                    }
                }
                None => self.subjects.values().for_each(check),
            }
        }
        if !l.discard_new {
            let mut msgs = self.msgs.len() as u64 - gone.len() as u64;
            let mut bytes = self.bytes - gone.iter().map(|s| self.msgs[s].size).sum::<u64>();
            for (seq, m) in &self.msgs {
                let over_msgs = l.max_msgs >= 0 && msgs > l.max_msgs as u64;
                let over_bytes = l.max_bytes >= 0 && bytes > l.max_bytes as u64;
                if !over_msgs && !over_bytes {
                    break;
                }
                if gone.insert(*seq) {
                    msgs -= 1;
                    bytes -= m.size;
                }
            }
        }
        out.extend(gone);
        out
    }

    /// Sequences older than max_age at `now`.
    pub fn expired(&self, now: i64) -> Vec<u64> {
        if self.limits.max_age <= 0 {
            return Vec::new();
        }
        let cutoff = now - self.limits.max_age;
        self.msgs
            .iter()
            .take_while(|(_, m)| m.ts <= cutoff)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Sequences a purge removes.
    pub fn purge_set(&self, p: &Purge) -> Vec<u64> {
        let filter = p.subject.as_deref().filter(|s| !s.is_empty() && *s != ">");
        let mut cands: Vec<u64> = match filter {
            None => self.msgs.keys().copied().collect(),
            Some(f) => {
                let mut v: Vec<u64> = self
                    .subjects
                    .iter()
                    .filter(|(s, _)| subject_matches(s, f))
                    .flat_map(|(_, set)| set.iter().copied())
                    .collect();
                v.sort_unstable();
                v
            }
        };
        if let Some(seq) = p.seq.filter(|s| *s > 0) {
            cands.retain(|s| *s < seq);
        } else if let Some(keep) = p.keep.filter(|k| *k > 0) {
            if filter.is_some() {
                // Keep the newest `keep` of each subject: the reference keeps per subject
                // when a filter is given.
                let mut per: HashMap<&str, usize> = HashMap::new();
                let mut keep_set = BTreeSet::new();
                for s in cands.iter().rev() {
                    let n = per.entry(&self.msgs[s].subject).or_default();
                    if (*n as u64) < keep {
                        keep_set.insert(*s);
                        *n += 1;
                    }
                }
                cands.retain(|s| !keep_set.contains(s));
            } else {
                let n = cands.len().saturating_sub(keep as usize);
                cands.truncate(n);
            }
        }
        cands
    }

    pub fn state(&self) -> StoreState {
        let (first_seq, first_ts) = match self.msgs.first_key_value() {
            Some((s, m)) => (*s, m.ts),
            None => (self.last_seq + 1, self.empty_first_ts),
        };
        let first_seq = if self.msgs.is_empty() {
            if self.last_seq == 0 {
                0
            } else {
                first_seq.max(self.first_hint)
            }
        } else {
            first_seq
        };
        let msgs = self.msgs.len() as u64;
        let num_deleted = if msgs > 0 {
            self.last_seq - first_seq + 1 - msgs
        } else {
            0
        };
        StoreState {
            msgs,
            bytes: self.bytes,
            first_seq,
            first_ts,
            last_seq: self.last_seq,
            last_ts: self.last_ts,
            num_subjects: self.subjects.len() as u64,
            num_deleted,
        }
    }

    /// A sequence used without a message (interest retention without interest).
    pub fn skip(&mut self, seq: u64, ts: i64) {
        if seq > self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
        }
        if self.msgs.is_empty() {
            self.empty_first_ts = ts;
        }
    }

    pub fn last_matching(&self, filter: &str) -> Option<u64> {
        if !subject::has_wildcard(filter.as_bytes()) {
            return self.subjects.get(filter).and_then(|s| s.last().copied());
        }
        self.subjects
            .iter()
            .filter(|(s, _)| subject_matches(s, filter))
            .filter_map(|(_, set)| set.last().copied())
            .max()
    }

    pub fn first_since(&self, ts: i64) -> Option<u64> {
        self.msgs.iter().find(|(_, m)| m.ts >= ts).map(|(s, _)| *s)
    }

    pub fn next_matching(&self, filter: &str, start: u64) -> Option<u64> {
        let all = filter.is_empty() || filter == ">";
        self.msgs
            .range(start..)
            .find(|(_, m)| all || subject_matches(&m.subject, filter))
            .map(|(s, _)| *s)
    }

    /// How many live messages at or after `start` match `filter` (empty or `>`: all).
    pub fn count_matching(&self, filter: &str, start: u64) -> u64 {
        if filter.is_empty() || filter == ">" {
            return self.msgs.range(start..).count() as u64;
        }
        if !subject::has_wildcard(filter.as_bytes()) {
            return self
                .subjects
                .get(filter)
                .map_or(0, |s| s.range(start..).count() as u64);
        }
        self.subjects
            .iter()
            .filter(|(s, _)| subject_matches(s, filter))
            .map(|(_, set)| set.range(start..).count() as u64)
            .sum()
    }

    /// The last sequence of every subject matching `filter`, in order.
    pub fn last_per_subject(&self, filter: &str) -> Vec<u64> {
        let all = filter.is_empty() || filter == ">";
        let mut v: Vec<u64> = self
            .subjects
            .iter()
            .filter(|(s, _)| all || subject_matches(s, filter))
            .filter_map(|(_, set)| set.last().copied())
            .collect();
        v.sort_unstable();
        v
    }

    /// The subject of a live message.
    pub fn subject_of(&self, seq: u64) -> Option<Arc<str>> {
        self.msgs.get(&seq).map(|m| m.subject.clone())
    }
}
