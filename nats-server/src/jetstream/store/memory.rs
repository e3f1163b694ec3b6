//! The memory store: the index plus the bodies in a map. Gone with the process, as the
//! reference's.

use super::{Index, Limits, Purge, Sizing, Store, StoreError, StoreMsg, StoreState};
use std::collections::HashMap;

pub struct MemStore {
    index: Index,
    bodies: HashMap<u64, (Vec<u8>, Vec<u8>)>,
}

impl MemStore {
    pub fn new(limits: Limits) -> MemStore {
        MemStore {
            index: Index::new(limits),
            bodies: HashMap::new(),
        }
    }

    fn remove_all(&mut self, seqs: &[u64]) -> u64 {
        let mut n = 0;
        for s in seqs {
            if self.index.remove(*s).is_some() {
                self.bodies.remove(s);
                n += 1;
            }
        }
        n
    }
}

impl Store for MemStore {
    fn store_msg(
        &mut self,
        subject: &str,
        hdr: &[u8],
        data: &[u8],
        ts: i64,
    ) -> Result<u64, StoreError> {
        let body = (hdr.len() + data.len()) as u64;
        self.index.check_discard_new(subject, body, |seq| {
            self.index.msgs.get(&seq).map_or(0, |m| m.size)
        })?;
        let seq = self.index.last_seq + 1;
        let size = Sizing::Memory.size(subject, hdr, data);
        self.index.insert(seq, subject, ts, size);
        self.bodies.insert(seq, (hdr.to_vec(), data.to_vec()));
        let gone = self.index.over_limits(Some(subject));
        self.remove_all(&gone);
        Ok(seq)
    }

    fn skip_msg(&mut self, ts: i64) -> Result<u64, StoreError> {
        let seq = self.index.last_seq + 1;
        self.index.skip(seq, ts);
        Ok(seq)
    }

    fn load(&self, seq: u64) -> Result<StoreMsg, StoreError> {
        let m = self.index.msgs.get(&seq).ok_or(StoreError::NotFound)?;
        let (hdr, data) = self.bodies.get(&seq).ok_or(StoreError::NotFound)?;
        Ok(StoreMsg {
            subject: m.subject.to_string(),
            seq,
            ts: m.ts,
            hdr: hdr.clone(),
            data: data.clone(),
        })
    }

    fn load_last(&self, filter: &str) -> Result<StoreMsg, StoreError> {
        let seq = self
            .index
            .last_matching(filter)
            .ok_or(StoreError::NotFound)?;
        self.load(seq)
    }

    fn load_next(&self, filter: &str, start: u64) -> Result<StoreMsg, StoreError> {
        let seq = self
            .index
            .next_matching(filter, start)
            .ok_or(StoreError::NotFound)?;
        self.load(seq)
    }

    fn remove_msg(&mut self, seq: u64) -> Result<bool, StoreError> {
        Ok(self.remove_all(&[seq]) == 1)
    }

    fn purge(&mut self, p: &Purge) -> Result<u64, StoreError> {
        let set = self.index.purge_set(p);
        let n = self.remove_all(&set);
        if p.subject.is_none() && p.keep.is_none() {
            let through = match p.seq {
                Some(s) if s > 0 => s - 1,
                _ => self.index.last_seq,
            };
            self.index.purged_through(through);
        }
        Ok(n)
    }

    fn expire(&mut self, now: i64) -> Result<u64, StoreError> {
        let set = self.index.expired(now);
        Ok(self.remove_all(&set))
    }

    fn state(&self) -> StoreState {
        self.index.state()
    }

    fn first_since(&self, ts: i64) -> Option<u64> {
        self.index.first_since(ts)
    }

    fn index(&self) -> &Index {
        &self.index
    }

    fn set_limits(&mut self, limits: Limits) -> Result<(), StoreError> {
        self.index.limits = limits;
        let gone = self.index.over_limits(None);
        self.remove_all(&gone);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn delete(&mut self) -> Result<(), StoreError> {
        self.bodies.clear();
        self.index = Index::new(self.index.limits.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_limits_and_purge() {
        let mut s = MemStore::new(Limits {
            max_msgs: 3,
            ..Limits::default()
        });
        for i in 0..5 {
            assert_eq!(s.store_msg("a.b", b"", b"x", i).unwrap(), i as u64 + 1);
        }
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (3, 3, 5));
        assert_eq!(st.bytes, 3 * (3 + 1 + 16));
        assert_eq!(s.load(2), Err(StoreError::NotFound));
        assert_eq!(s.load(4).unwrap().data, b"x");
        assert!(s.remove_msg(4).unwrap());
        assert!(!s.remove_msg(4).unwrap());
        assert_eq!(s.state().num_deleted, 1);
        assert_eq!(s.purge(&Purge::default()).unwrap(), 2);
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 6, 5));
        assert_eq!(s.store_msg("a.b", b"", b"y", 9).unwrap(), 6);
    }

    #[test]
    fn discard_new_and_per_subject() {
        let mut s = MemStore::new(Limits {
            max_msgs: 2,
            discard_new: true,
            ..Limits::default()
        });
        s.store_msg("a", b"", b"1", 1).unwrap();
        s.store_msg("b", b"", b"2", 2).unwrap();
        assert_eq!(s.store_msg("c", b"", b"3", 3), Err(StoreError::MaxMsgs));
        let mut s = MemStore::new(Limits {
            max_msgs_per_subject: 1,
            ..Limits::default()
        });
        s.store_msg("k.a", b"", b"1", 1).unwrap();
        s.store_msg("k.b", b"", b"2", 2).unwrap();
        s.store_msg("k.a", b"", b"3", 3).unwrap();
        assert_eq!(s.state().msgs, 2);
        assert_eq!(s.load_last("k.a").unwrap().seq, 3);
        assert_eq!(s.load_last("k.*").unwrap().seq, 3);
        assert_eq!(s.load_next("k.b", 1).unwrap().seq, 2);
    }

    #[test]
    fn purge_filter_keep_and_expire() {
        let mut s = MemStore::new(Limits::default());
        for i in 0..6 {
            let subj = if i % 2 == 0 { "e.x" } else { "e.y" };
            s.store_msg(subj, b"", b"", i * 10).unwrap();
        }
        let p = Purge {
            subject: Some("e.x".into()),
            keep: Some(1),
            ..Purge::default()
        };
        assert_eq!(s.purge(&p).unwrap(), 2);
        let p = Purge {
            seq: Some(4),
            ..Purge::default()
        };
        assert_eq!(s.purge(&p).unwrap(), 1); // seq 2 (e.y); 1 and 3 went above
        s.set_limits(Limits {
            max_age: 15,
            ..Limits::default()
        })
        .unwrap();
        assert_eq!(s.expire(55).unwrap(), 2); // ts 30 (seq 4) and 40 (seq 5) <= 40
        assert_eq!(s.state().first_seq, 6);
    }
}
