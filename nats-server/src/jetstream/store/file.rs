//! The file store: append-only message blocks in `<stream dir>/msgs/<n>.blk`.
//!
//! Every change is one record appended to the newest block:
//!
//! ```text
//! u32 length of what follows | u8 kind | u64 seq | i64 ts | u16 subject len | u32 header len
//! | subject | header | payload | u32 CRC-32 of everything before it
//! ```
//!
//! Kinds: 1 a message, 2 the removal of `seq`, 3 the removal of every sequence up to `seq`
//! (purges, expiry and limits that cut from the front), 4 a sequence used without a message,
//! 5 the last sequence and time so far (written when front blocks are deleted, so the
//! numbering never goes back after a restart). The index is rebuilt on open by
//! replaying the blocks in order. A record whose length runs past the end of its block,
//! or whose checksum does not match, ends that block: it and what follows are cut off
//! (a write the crash interrupted), reported, and everything before it is kept.
//!
//! Durability follows the reference 2.9: each record reaches the operating system (one
//! `write`) before the publisher gets its PubAck, so a killed server loses nothing the
//! kernel holds; the data is fsynced every minute (`sync`, called by the stream) and when
//! the store closes, so a power loss can take the last minute, as with the reference.
//!
//! CRC-32 (crc32fast, hardware-accelerated) rather than the reference's HighwayHash:
//! the check only has to catch torn and corrupted records of this format, which is this
//! server's own (it does not read the reference's store directories).
//!
//! A block whose messages are all gone is deleted once every block before it is gone
//! too, so a removal record never outlives the block it refers to... in the wrong
//! direction: removals only ever point backwards, and blocks go from the front.

use super::{Index, Limits, Purge, Sizing, Store, StoreError, StoreMsg, StoreState};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const KIND_MSG: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_PURGE_THROUGH: u8 = 3;
const KIND_SKIP: u8 = 4;
const KIND_LAST: u8 = 5;
/// kind + seq + ts + subject len + header len.
const FIXED: usize = 1 + 8 + 8 + 2 + 4;
/// A new block is started past this size.
const BLOCK_SIZE: u64 = 8 * 1024 * 1024;

struct Block {
    id: u64,
    path: PathBuf,
    file: File,
    size: u64,
    live: u64,
}

/// Where a message's header and payload are.
#[derive(Clone, Copy)]
struct Loc {
    block: u64,
    offset: u64,
    hdr_len: u32,
    data_len: u32,
}

pub struct FileStore {
    dir: PathBuf,
    index: Index,
    blocks: Vec<Block>,
    locs: HashMap<u64, Loc>,
    dirty: bool,
}

/// What opening found wrong and repaired (for the log).
pub type Repairs = Vec<String>;

fn block_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.blk"))
}

impl FileStore {
    /// Opens (or creates) the store in `dir`, replaying its blocks.
    pub fn open(dir: &Path, limits: Limits) -> Result<(FileStore, Repairs), StoreError> {
        let dir = dir.join("msgs");
        fs::create_dir_all(&dir)?;
        let mut ids: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".blk")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        ids.sort_unstable();
        let mut fs_ = FileStore {
            dir,
            index: Index::new(limits),
            blocks: Vec::new(),
            locs: HashMap::new(),
            dirty: false,
        };
        let mut repairs = Vec::new();
        for id in ids {
            let path = block_path(&fs_.dir, id);
            let file = OpenOptions::new().read(true).append(true).open(&path)?;
            let buf = fs::read(&path)?;
            let good = fs_.replay(id, &buf);
            if (good as usize) < buf.len() {
                repairs.push(format!(
                    "block {} damaged at byte {} of {}: kept the {} bytes before, dropped the rest",
                    path.display(),
                    good,
                    buf.len(),
                    good
                ));
                file.set_len(good)?;
            }
            fs_.blocks.push(Block {
                id,
                path,
                file,
                size: good,
                live: 0,
            });
        }
        for loc in fs_.locs.values() {
            if let Some(b) = fs_.blocks.iter_mut().find(|b| b.id == loc.block) {
                b.live += 1;
            }
        }
        if fs_.blocks.is_empty() {
            fs_.new_block()?;
        }
        // Limits may have changed while the server was down.
        let gone = fs_.index.over_limits(None);
        fs_.remove_set(&gone)?;
        Ok((fs_, repairs))
    }

    /// Applies the records of one block; returns how many bytes were intact.
    fn replay(&mut self, block: u64, buf: &[u8]) -> u64 {
        let mut pos = 0usize;
        while pos < buf.len() {
            let Some(lenb) = buf.get(pos..pos + 4) else {
                break;
            };
            let len = u32::from_le_bytes(lenb.try_into().unwrap_or_default()) as usize;
            if len < FIXED + 4 || pos + 4 + len > buf.len() {
                break;
            }
            let rec = &buf[pos..pos + 4 + len];
            let (body, crc) = rec.split_at(rec.len() - 4);
            if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap_or_default()) {
                break;
            }
            let r = &body[4..];
            let kind = r[0];
            let seq = u64::from_le_bytes(r[1..9].try_into().unwrap_or_default());
            let ts = i64::from_le_bytes(r[9..17].try_into().unwrap_or_default());
            let slen = u16::from_le_bytes(r[17..19].try_into().unwrap_or_default()) as usize;
            let hlen = u32::from_le_bytes(r[19..23].try_into().unwrap_or_default()) as usize;
            if FIXED + slen + hlen > r.len() {
                break;
            }
            match kind {
                KIND_MSG => {
                    let Ok(subject) = std::str::from_utf8(&r[FIXED..FIXED + slen]) else {
                        break;
                    };
                    let data_len = r.len() - FIXED - slen - hlen;
                    let hdr = &r[FIXED + slen..FIXED + slen + hlen];
                    let data = &r[FIXED + slen + hlen..];
                    let size = Sizing::File.size(subject, hdr, data);
                    self.index.insert(seq, subject, ts, size);
                    self.locs.insert(
                        seq,
                        Loc {
                            block,
                            offset: (pos + 4 + FIXED + slen) as u64,
                            hdr_len: hlen as u32,
                            data_len: data_len as u32,
                        },
                    );
                }
                KIND_DELETE => {
                    self.index.remove(seq);
                    self.locs.remove(&seq);
                    self.note_seq(seq, ts);
                }
                KIND_PURGE_THROUGH => {
                    let gone: Vec<u64> = self.index.msgs.range(..=seq).map(|(s, _)| *s).collect();
                    for s in gone {
                        self.index.remove(s);
                        self.locs.remove(&s);
                    }
                    self.index.purged_through(seq);
                    self.note_seq(seq, ts);
                }
                KIND_SKIP => self.index.skip(seq, ts),
                KIND_LAST => self.note_seq(seq, ts),
                _ => break,
            }
            pos += 4 + len;
        }
        pos as u64
    }

    fn note_seq(&mut self, seq: u64, ts: i64) {
        if seq >= self.index.last_seq && ts != 0 {
            self.index.last_seq = seq;
            self.index.last_ts = ts;
        }
    }

    fn new_block(&mut self) -> Result<(), StoreError> {
        let id = self.blocks.last().map_or(1, |b| b.id + 1);
        let path = block_path(&self.dir, id);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        self.blocks.push(Block {
            id,
            path,
            file,
            size: 0,
            live: 0,
        });
        Ok(())
    }

    /// Appends one record to the newest block (one write); returns (block id, offset of
    /// the record's start).
    fn append(
        &mut self,
        kind: u8,
        seq: u64,
        ts: i64,
        subject: &str,
        hdr: &[u8],
        data: &[u8],
    ) -> Result<(u64, u64), StoreError> {
        if self.blocks.last().is_none_or(|b| b.size >= BLOCK_SIZE) {
            self.new_block()?;
        }
        let len = FIXED + subject.len() + hdr.len() + data.len() + 4;
        let mut rec = Vec::with_capacity(4 + len);
        rec.extend_from_slice(&(len as u32).to_le_bytes());
        rec.push(kind);
        rec.extend_from_slice(&seq.to_le_bytes());
        rec.extend_from_slice(&ts.to_le_bytes());
        rec.extend_from_slice(&(subject.len() as u16).to_le_bytes());
        rec.extend_from_slice(&(hdr.len() as u32).to_le_bytes());
        rec.extend_from_slice(subject.as_bytes());
        rec.extend_from_slice(hdr);
        rec.extend_from_slice(data);
        let crc = crc32fast::hash(&rec);
        rec.extend_from_slice(&crc.to_le_bytes());
        let b = self.blocks.last_mut().ok_or(StoreError::NotFound)?;
        if let Err(e) = b.file.write_all(&rec) {
            // Leave no half record behind.
            let _ = b.file.set_len(b.size);
            return Err(e.into());
        }
        let at = b.size;
        b.size += rec.len() as u64;
        self.dirty = true;
        Ok((b.id, at))
    }

    /// Removes `seqs` from the index and records it: one record when they are exactly
    /// the oldest messages, one per message otherwise. Then drops emptied front blocks.
    fn remove_set(&mut self, seqs: &[u64]) -> Result<u64, StoreError> {
        let seqs: Vec<u64> = seqs
            .iter()
            .copied()
            .filter(|s| self.index.msgs.contains_key(s))
            .collect();
        if seqs.is_empty() {
            return Ok(0);
        }
        let max = seqs.iter().copied().max().unwrap_or(0);
        let prefix = self.index.msgs.range(..=max).count() == seqs.len();
        let ts = self.index.last_ts;
        if prefix {
            self.append(KIND_PURGE_THROUGH, max, ts, "", b"", b"")?;
        } else {
            for s in &seqs {
                self.append(KIND_DELETE, *s, ts, "", b"", b"")?;
            }
        }
        for s in &seqs {
            self.index.remove(*s);
            if let Some(loc) = self.locs.remove(s) {
                if let Some(b) = self.blocks.iter_mut().find(|b| b.id == loc.block) {
                    b.live -= 1;
                }
            }
        }
        self.drop_empty_blocks()?;
        Ok(seqs.len() as u64)
    }

    fn drop_empty_blocks(&mut self) -> Result<(), StoreError> {
        if self.blocks.len() < 2 || self.blocks[0].live != 0 {
            return Ok(());
        }
        // The blocks that stay must still tell the last sequence.
        let (last, ts) = (self.index.last_seq, self.index.last_ts);
        self.append(KIND_LAST, last, ts, "", b"", b"")?;
        while self.blocks.len() > 1 && self.blocks[0].live == 0 {
            let b = self.blocks.remove(0);
            fs::remove_file(&b.path)?;
        }
        Ok(())
    }
}

impl Store for FileStore {
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
        let (block, at) = self.append(KIND_MSG, seq, ts, subject, hdr, data)?;
        let size = Sizing::File.size(subject, hdr, data);
        self.index.insert(seq, subject, ts, size);
        self.locs.insert(
            seq,
            Loc {
                block,
                offset: at + 4 + FIXED as u64 + subject.len() as u64,
                hdr_len: hdr.len() as u32,
                data_len: data.len() as u32,
            },
        );
        if let Some(b) = self.blocks.iter_mut().find(|b| b.id == block) {
            b.live += 1;
        }
        let gone = self.index.over_limits(Some(subject));
        self.remove_set(&gone)?;
        Ok(seq)
    }

    fn skip_msg(&mut self, ts: i64) -> Result<u64, StoreError> {
        let seq = self.index.last_seq + 1;
        self.append(KIND_SKIP, seq, ts, "", b"", b"")?;
        self.index.skip(seq, ts);
        Ok(seq)
    }

    fn load(&self, seq: u64) -> Result<StoreMsg, StoreError> {
        let m = self.index.msgs.get(&seq).ok_or(StoreError::NotFound)?;
        let loc = self.locs.get(&seq).ok_or(StoreError::NotFound)?;
        let b = self
            .blocks
            .iter()
            .find(|b| b.id == loc.block)
            .ok_or(StoreError::NotFound)?;
        let mut buf = vec![0u8; (loc.hdr_len + loc.data_len) as usize];
        b.file.read_exact_at(&mut buf, loc.offset)?;
        let data = buf.split_off(loc.hdr_len as usize);
        Ok(StoreMsg {
            subject: m.subject.to_string(),
            seq,
            ts: m.ts,
            hdr: buf,
            data,
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
        if seq > self.index.last_seq {
            return Err(StoreError::Eof);
        }
        if !self.index.msgs.contains_key(&seq) {
            return Err(StoreError::NotFound);
        }
        Ok(self.remove_set(&[seq])? == 1)
    }

    fn purge(&mut self, p: &Purge) -> Result<u64, StoreError> {
        let set = self.index.purge_set(p);
        let n = self.remove_set(&set)?;
        if p.subject.is_none() && p.keep.is_none() {
            let through = match p.seq {
                Some(s) if s > 0 => s - 1,
                _ => self.index.last_seq,
            };
            if through > 0 && n == 0 && self.index.msgs.is_empty() {
                // Nothing was there; the first sequence still moves on.
                let ts = self.index.last_ts;
                self.append(KIND_PURGE_THROUGH, through, ts, "", b"", b"")?;
            }
            self.index.purged_through(through);
        }
        Ok(n)
    }

    fn expire(&mut self, now: i64) -> Result<u64, StoreError> {
        let set = self.index.expired(now);
        self.remove_set(&set)
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
        self.remove_set(&gone)?;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        if std::mem::take(&mut self.dirty) {
            if let Some(b) = self.blocks.last() {
                b.file.sync_data()?;
            }
        }
        Ok(())
    }

    fn delete(&mut self) -> Result<(), StoreError> {
        self.blocks.clear();
        self.locs.clear();
        fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "js-filestore-{name}-{}-{}",
            std::process::id(),
            nats_common::nuid::next()
        ));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn reopen_keeps_messages_and_removals() {
        let d = tmp("reopen");
        {
            let (mut s, rep) = FileStore::open(&d, Limits::default()).unwrap();
            assert!(rep.is_empty());
            for i in 1..=5u64 {
                let hdr: &[u8] = if i == 2 {
                    b"NATS/1.0\r\nA: b\r\n\r\n"
                } else {
                    b""
                };
                assert_eq!(
                    s.store_msg(&format!("s.{i}"), hdr, format!("m{i}").as_bytes(), i as i64)
                        .unwrap(),
                    i
                );
            }
            assert!(s.remove_msg(3).unwrap());
            assert_eq!(s.remove_msg(3), Err(StoreError::NotFound));
            assert_eq!(s.remove_msg(9), Err(StoreError::Eof));
            assert_eq!(
                s.purge(&Purge {
                    seq: Some(2),
                    ..Purge::default()
                })
                .unwrap(),
                1
            );
        }
        let (s, rep) = FileStore::open(&d, Limits::default()).unwrap();
        assert!(rep.is_empty());
        let st = s.state();
        assert_eq!(
            (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
            (3, 2, 5, 1)
        );
        let m = s.load(2).unwrap();
        assert_eq!((m.subject.as_str(), m.data.as_slice()), ("s.2", &b"m2"[..]));
        assert_eq!(m.hdr, b"NATS/1.0\r\nA: b\r\n\r\n");
        assert_eq!(s.load(3), Err(StoreError::NotFound));
        assert_eq!(s.load_last("s.*").unwrap().seq, 5);
        // 22 + subject + payload + 8 per message; +4 + header for the one with headers.
        assert_eq!(st.bytes, (22 + 3 + 2 + 8) * 3 + 4 + 18);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn truncated_and_corrupt_tail_keeps_intact_records() {
        let d = tmp("tail");
        {
            let (mut s, _) = FileStore::open(&d, Limits::default()).unwrap();
            for i in 1..=3u64 {
                s.store_msg("t", b"", b"payload", i as i64).unwrap();
            }
        }
        let blk = d.join("msgs").join("1.blk");
        let full = fs::metadata(&blk).unwrap().len();
        // A write cut short: the last record loses its last 5 bytes.
        OpenOptions::new()
            .write(true)
            .open(&blk)
            .unwrap()
            .set_len(full - 5)
            .unwrap();
        let (mut s, rep) = FileStore::open(&d, Limits::default()).unwrap();
        assert_eq!(rep.len(), 1, "{rep:?}");
        let st = s.state();
        assert_eq!((st.msgs, st.last_seq), (2, 2));
        // The store goes on after the cut: the next message takes sequence 3.
        assert_eq!(s.store_msg("t", b"", b"again", 9).unwrap(), 3);
        drop(s);
        // A flipped byte inside the second record: it and what follows are dropped.
        let mut bytes = fs::read(&blk).unwrap();
        let rec = bytes.len() / 3;
        bytes[rec + 30] ^= 0xff;
        fs::write(&blk, &bytes).unwrap();
        let (s, rep) = FileStore::open(&d, Limits::default()).unwrap();
        assert_eq!(rep.len(), 1);
        assert_eq!(s.state().msgs, 1);
        assert_eq!(s.load(1).unwrap().data, b"payload");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn numbering_survives_dropped_blocks() {
        let d = tmp("numbering");
        {
            let (mut s, _) = FileStore::open(&d, Limits::default()).unwrap();
            let big = vec![b'x'; 1024 * 1024];
            for i in 1..=9u64 {
                s.store_msg("n", b"", &big, i as i64).unwrap();
            }
            assert!(s.blocks.len() >= 2);
            // Remove the newest first (not a prefix), then the rest: every block empties.
            for seq in (1..=9u64).rev() {
                assert!(s.remove_msg(seq).unwrap());
            }
            assert_eq!(s.blocks.len(), 1);
        }
        let (mut s, rep) = FileStore::open(&d, Limits::default()).unwrap();
        assert!(rep.is_empty());
        let st = s.state();
        assert_eq!((st.msgs, st.last_seq, st.first_seq), (0, 9, 10));
        assert_eq!(s.store_msg("n", b"", b"y", 10).unwrap(), 10);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn limits_and_blocks_from_the_front() {
        let d = tmp("limits");
        let limits = Limits {
            max_msgs: 2,
            ..Limits::default()
        };
        {
            let (mut s, _) = FileStore::open(&d, limits.clone()).unwrap();
            for i in 1..=4u64 {
                s.store_msg("l", b"", b"x", i as i64).unwrap();
            }
            assert_eq!(s.state().first_seq, 3);
            assert_eq!(s.purge(&Purge::default()).unwrap(), 2);
        }
        let (mut s, _) = FileStore::open(&d, limits).unwrap();
        let st = s.state();
        assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 5, 4));
        assert_eq!(s.store_msg("l", b"", b"y", 5).unwrap(), 5);
        s.delete().unwrap();
        assert!(!d.join("msgs").exists());
        let _ = fs::remove_dir_all(&d);
    }
}
