//! The subscription index: a trie of subject tokens with `*` and `>` branches, queue
//! groups merged by name, and a bounded cache of match results.
//!
//! Every change bumps a generation number. Readers that keep their own copy of match
//! results (the server's connections do) compare generations to know when a copy is stale,
//! so the message path needs no shared lock while the subscription set is stable.

use crate::subject::{self, FWC, PWC};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const CACHE_MAX: usize = 1024;

/// What a literal subject matched: plain subscriptions, and queue groups by name.
#[derive(Debug)]
pub struct MatchResult<T> {
    pub psubs: Vec<T>,
    pub qsubs: Vec<(Box<[u8]>, Vec<T>)>,
}

impl<T> Default for MatchResult<T> {
    fn default() -> Self {
        MatchResult {
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> MatchResult<T> {
    pub fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }

    /// Plain subscriptions plus every queue member.
    pub fn len(&self) -> usize {
        self.psubs.len() + self.qsubs.iter().map(|(_, q)| q.len()).sum::<usize>()
    }
}

struct Node<T> {
    next: Option<Box<Level<T>>>,
    psubs: Vec<T>,
    qsubs: Vec<(Box<[u8]>, Vec<T>)>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            next: None,
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.psubs.is_empty()
            && self.qsubs.is_empty()
            && self.next.as_ref().is_none_or(|l| l.is_empty())
    }
}

struct Level<T> {
    literals: HashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Level {
            literals: HashMap::new(),
            pwc: None,
            fwc: None,
        }
    }
}

impl<T> Level<T> {
    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }
}

/// Counters reported by the monitoring `/subsz` endpoint.
#[derive(Debug, Clone, Default)]
pub struct SublistStats {
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    pub max_fanout: u64,
    pub avg_fanout: f64,
}

type Cache<T> = HashMap<Box<[u8]>, Arc<MatchResult<T>>>;

pub struct Sublist<T> {
    root: Level<T>,
    count: u64,
    genid: Arc<AtomicU64>,
    cache: Mutex<Cache<T>>,
    inserts: AtomicU64,
    removes: AtomicU64,
    matches: AtomicU64,
    cache_hits: AtomicU64,
}

impl<T: Clone + PartialEq> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq> Sublist<T> {
    pub fn new() -> Self {
        Sublist {
            root: Level::default(),
            count: 0,
            genid: Arc::new(AtomicU64::new(1)),
            cache: Mutex::new(HashMap::new()),
            inserts: AtomicU64::new(0),
            removes: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    /// A handle on the generation number, readable without any lock on the sublist.
    pub fn genid_handle(&self) -> Arc<AtomicU64> {
        self.genid.clone()
    }

    pub fn genid(&self) -> u64 {
        self.genid.load(Ordering::Acquire)
    }

    /// Number of subscriptions stored.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn changed(&self, pattern: &[u8]) {
        self.genid.fetch_add(1, Ordering::AcqRel);
        self.cache
            .lock()
            .retain(|subj, _| !subject::matches(pattern, subj));
    }

    /// Adds a subscription on `subject` (optionally in a queue group). The subject must
    /// already be valid.
    pub fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: T) {
        let mut level = &mut self.root;
        let mut toks = subject::tokens(subject).peekable();
        let node = loop {
            // Callers validate subjects first, so an empty one never gets here.
            let Some(t) = toks.next() else { return };
            let node: &mut Node<T> = if t == PWC {
                level.pwc.get_or_insert_with(Default::default)
            } else if t == FWC {
                level.fwc.get_or_insert_with(Default::default)
            } else {
                level.literals.entry(t.into()).or_default()
            };
            if toks.peek().is_none() {
                break node;
            }
            level = node.next.get_or_insert_with(Default::default);
        };
        match queue {
            None => node.psubs.push(sub),
            Some(q) => match node.qsubs.iter_mut().find(|(n, _)| &**n == q) {
                Some((_, members)) => members.push(sub),
                None => node.qsubs.push((q.into(), vec![sub])),
            },
        }
        self.count += 1;
        self.inserts.fetch_add(1, Ordering::Relaxed);
        self.changed(subject);
    }

    /// Removes one subscription; returns whether it was present.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: &T) -> bool {
        let toks: Vec<&[u8]> = subject::tokens(subject).collect();
        let removed = remove_from(&mut self.root, &toks, queue, sub);
        if removed {
            self.count -= 1;
            self.removes.fetch_add(1, Ordering::Relaxed);
            self.changed(subject);
        }
        removed
    }

    /// All subscriptions matching the literal `subject`, from the cache when possible.
    pub fn match_subject(&self, subject: &[u8]) -> Arc<MatchResult<T>> {
        self.matches.fetch_add(1, Ordering::Relaxed);
        if let Some(r) = self.cache.lock().get(subject) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return r.clone();
        }
        let mut result = MatchResult::default();
        let toks: Vec<&[u8]> = subject::tokens(subject).collect();
        // A subject with an empty token (`foo..bar`, `.foo`, `foo.`) matches nothing, not
        // even `>`, as on the reference; it is not cached.
        if toks.iter().any(|t| t.is_empty()) {
            return Arc::new(result);
        }
        match_level(&self.root, &toks, &mut result);
        let result = Arc::new(result);
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_MAX {
            // Drop about half; which ones does not matter for correctness.
            let drop: Vec<Box<[u8]>> = cache.keys().take(CACHE_MAX / 2).cloned().collect();
            for k in drop {
                cache.remove(&k);
            }
        }
        cache.insert(subject.into(), result.clone());
        result
    }

    /// Whether any subscription matches the literal `subject`.
    pub fn has_interest(&self, subject: &[u8]) -> bool {
        !self.match_subject(subject).is_empty()
    }

    /// Visits every stored subscription with its subject and queue.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<&[u8]>, &T)) {
        let mut path = Vec::new();
        walk(&self.root, &mut path, &mut f);
    }

    pub fn stats(&self) -> SublistStats {
        let cache = self.cache.lock();
        let matches = self.matches.load(Ordering::Relaxed);
        let hits = self.cache_hits.load(Ordering::Relaxed);
        let (mut max, mut total) = (0u64, 0u64);
        for r in cache.values() {
            let n = r.len() as u64;
            max = max.max(n);
            total += n;
        }
        SublistStats {
            num_subscriptions: self.count,
            num_cache: cache.len() as u64,
            num_inserts: self.inserts.load(Ordering::Relaxed),
            num_removes: self.removes.load(Ordering::Relaxed),
            num_matches: matches,
            cache_hit_rate: if matches > 0 {
                hits as f64 / matches as f64
            } else {
                0.0
            },
            max_fanout: max,
            avg_fanout: if cache.is_empty() {
                0.0
            } else {
                total as f64 / cache.len() as f64
            },
        }
    }
}

fn remove_from<T: PartialEq>(
    level: &mut Level<T>,
    toks: &[&[u8]],
    queue: Option<&[u8]>,
    sub: &T,
) -> bool {
    let Some((&t, rest)) = toks.split_first() else {
        return false;
    };
    let node: &mut Node<T> = if t == PWC {
        match level.pwc.as_deref_mut() {
            Some(n) => n,
            None => return false,
        }
    } else if t == FWC {
        match level.fwc.as_deref_mut() {
            Some(n) => n,
            None => return false,
        }
    } else {
        match level.literals.get_mut(t) {
            Some(n) => n,
            None => return false,
        }
    };
    let removed = if rest.is_empty() {
        match queue {
            None => match node.psubs.iter().position(|s| s == sub) {
                Some(i) => {
                    node.psubs.swap_remove(i);
                    true
                }
                None => false,
            },
            Some(q) => match node.qsubs.iter().position(|(n, _)| &**n == q) {
                Some(gi) => {
                    let members = &mut node.qsubs[gi].1;
                    match members.iter().position(|s| s == sub) {
                        Some(i) => {
                            members.swap_remove(i);
                            if members.is_empty() {
                                node.qsubs.swap_remove(gi);
                            }
                            true
                        }
                        None => false,
                    }
                }
                None => false,
            },
        }
    } else {
        match node.next.as_deref_mut() {
            Some(next) => remove_from(next, rest, queue, sub),
            None => false,
        }
    };
    if removed && node.is_empty() {
        // Prune so the trie does not keep growing with churned subjects.
        if t == PWC {
            level.pwc = None;
        } else if t == FWC {
            level.fwc = None;
        } else {
            level.literals.remove(t);
        }
    }
    removed
}

fn add_node<T: Clone>(node: &Node<T>, result: &mut MatchResult<T>) {
    result.psubs.extend(node.psubs.iter().cloned());
    for (name, members) in &node.qsubs {
        match result.qsubs.iter_mut().find(|(n, _)| n == name) {
            Some((_, existing)) => existing.extend(members.iter().cloned()),
            None => result.qsubs.push((name.clone(), members.clone())),
        }
    }
}

fn match_level<T: Clone>(level: &Level<T>, toks: &[&[u8]], result: &mut MatchResult<T>) {
    let Some((&t, rest)) = toks.split_first() else {
        return;
    };
    if let Some(fwc) = &level.fwc {
        add_node(fwc, result);
    }
    if let Some(pwc) = &level.pwc {
        if rest.is_empty() {
            add_node(pwc, result);
        } else if let Some(next) = &pwc.next {
            match_level(next, rest, result);
        }
    }
    if let Some(node) = level.literals.get(t) {
        if rest.is_empty() {
            add_node(node, result);
        } else if let Some(next) = &node.next {
            match_level(next, rest, result);
        }
    }
}

fn walk<T>(level: &Level<T>, path: &mut Vec<u8>, f: &mut impl FnMut(&[u8], Option<&[u8]>, &T)) {
    let mut visit = |tok: &[u8], node: &Node<T>, path: &mut Vec<u8>| {
        let mark = path.len();
        if !path.is_empty() {
            path.push(b'.');
        }
        path.extend_from_slice(tok);
        for s in &node.psubs {
            f(path, None, s);
        }
        for (q, members) in &node.qsubs {
            for s in members {
                f(path, Some(q), s);
            }
        }
        if let Some(next) = &node.next {
            walk(next, path, f);
        }
        path.truncate(mark);
    };
    for (tok, node) in &level.literals {
        visit(tok, node, path);
    }
    if let Some(n) = &level.pwc {
        visit(PWC, n, path);
    }
    if let Some(n) = &level.fwc {
        visit(FWC, n, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects(r: &MatchResult<u32>) -> Vec<u32> {
        let mut v = r.psubs.clone();
        v.sort();
        v
    }

    #[test]
    fn literal_and_wildcards() {
        let mut s = Sublist::new();
        s.insert(b"foo.bar", None, 1);
        s.insert(b"foo.*", None, 2);
        s.insert(b"foo.>", None, 3);
        s.insert(b">", None, 4);
        s.insert(b"*.bar", None, 5);
        s.insert(b"foo", None, 6);
        assert_eq!(subjects(&s.match_subject(b"foo.bar")), vec![1, 2, 3, 4, 5]);
        assert_eq!(subjects(&s.match_subject(b"foo.baz.x")), vec![3, 4]);
        assert_eq!(subjects(&s.match_subject(b"foo")), vec![4, 6]);
        assert_eq!(s.count(), 6);
        for empty_token in [&b"foo..bar"[..], b".foo", b"foo.", b"", b"."] {
            assert!(s.match_subject(empty_token).is_empty(), "{empty_token:?}");
        }
    }

    #[test]
    fn cache_invalidated_on_change() {
        let mut s = Sublist::new();
        s.insert(b"a.b", None, 1);
        assert_eq!(s.match_subject(b"a.b").psubs.len(), 1);
        let g = s.genid();
        s.insert(b"a.*", None, 2);
        assert!(s.genid() > g);
        assert_eq!(s.match_subject(b"a.b").psubs.len(), 2);
        assert!(s.remove(b"a.*", None, &2));
        assert!(!s.remove(b"a.*", None, &2));
        assert_eq!(s.match_subject(b"a.b").psubs.len(), 1);
        assert!(s.remove(b"a.b", None, &1));
        assert!(s.match_subject(b"a.b").is_empty());
        assert_eq!(s.count(), 0);
        assert!(s.root.is_empty());
    }

    #[test]
    fn queues_merged_by_name() {
        let mut s = Sublist::new();
        s.insert(b"foo.bar", Some(b"q"), 1);
        s.insert(b"foo.*", Some(b"q"), 2);
        s.insert(b"foo.*", Some(b"r"), 3);
        s.insert(b"foo.bar", None, 4);
        let r = s.match_subject(b"foo.bar");
        assert_eq!(r.psubs, vec![4]);
        assert_eq!(r.qsubs.len(), 2);
        let q = r.qsubs.iter().find(|(n, _)| &**n == b"q").unwrap();
        assert_eq!(q.1.len(), 2);
        assert!(s.remove(b"foo.*", Some(b"q"), &2));
        let r = s.match_subject(b"foo.bar");
        let q = r.qsubs.iter().find(|(n, _)| &**n == b"q").unwrap();
        assert_eq!(q.1, vec![1]);
    }

    #[test]
    fn walk_visits_all() {
        let mut s = Sublist::new();
        s.insert(b"a.b.c", None, 1);
        s.insert(b"a.*", Some(b"g"), 2);
        s.insert(b"x.>", None, 3);
        let mut seen = Vec::new();
        s.for_each(|subj, q, v| {
            seen.push((
                String::from_utf8_lossy(subj).into_owned(),
                q.map(|q| String::from_utf8_lossy(q).into_owned()),
                *v,
            ))
        });
        seen.sort_by_key(|x| x.2);
        assert_eq!(
            seen,
            vec![
                ("a.b.c".into(), None, 1),
                ("a.*".into(), Some("g".into()), 2),
                ("x.>".into(), None, 3)
            ]
        );
    }

    #[test]
    fn agrees_with_subject_matches() {
        let pats = [
            "a", "a.b", "a.*", "*.b", "a.>", ">", "*.*", "a.b.c", "*.b.>",
        ];
        let subs = ["a", "b", "a.b", "a.c", "x.b", "a.b.c", "a.b.c.d", "q.b.z"];
        let mut s = Sublist::new();
        for (i, p) in pats.iter().enumerate() {
            s.insert(p.as_bytes(), None, i as u32);
        }
        for subj in subs {
            let got = subjects(&s.match_subject(subj.as_bytes()));
            let want: Vec<u32> = pats
                .iter()
                .enumerate()
                .filter(|(_, p)| subject::matches(p.as_bytes(), subj.as_bytes()))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "{subj}");
        }
    }
}
