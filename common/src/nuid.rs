//! Unique ids in the style of NATS NUIDs: a random 12-character prefix and a 10-character
//! sequence, base 62, 22 characters in all. Fast enough to mint one per request inbox.

use rand::{Rng, RngCore};

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PRE_LEN: usize = 12;
const SEQ_LEN: usize = 10;
const MAX_SEQ: u64 = 839_299_365_868_340_224; // 62^10
const MIN_INC: u64 = 33;
const MAX_INC: u64 = 333;

pub struct Nuid {
    pre: [u8; PRE_LEN],
    seq: u64,
    inc: u64,
}

impl Default for Nuid {
    fn default() -> Self {
        Self::new()
    }
}

impl Nuid {
    pub fn new() -> Self {
        let mut rng = rand::thread_rng();
        let mut n = Nuid {
            pre: [0; PRE_LEN],
            seq: rng.gen_range(0..MAX_SEQ),
            inc: rng.gen_range(MIN_INC..MAX_INC),
        };
        n.randomize_prefix();
        n
    }

    fn randomize_prefix(&mut self) {
        let mut bytes = [0u8; PRE_LEN];
        rand::thread_rng().fill_bytes(&mut bytes);
        for (p, b) in self.pre.iter_mut().zip(bytes) {
            *p = DIGITS[b as usize % 62];
        }
    }

    /// The next id.
    pub fn next_id(&mut self) -> String {
        self.seq += self.inc;
        if self.seq >= MAX_SEQ {
            self.randomize_prefix();
            let mut rng = rand::thread_rng();
            self.seq = rng.gen_range(0..MAX_SEQ);
            self.inc = rng.gen_range(MIN_INC..MAX_INC);
        }
        let mut out = [0u8; PRE_LEN + SEQ_LEN];
        out[..PRE_LEN].copy_from_slice(&self.pre);
        let mut l = self.seq;
        for i in (PRE_LEN..PRE_LEN + SEQ_LEN).rev() {
            out[i] = DIGITS[(l % 62) as usize];
            l /= 62;
        }
        // Only ASCII digits and letters were written.
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A fresh id from a thread-local generator.
pub fn next() -> String {
    thread_local! {
        static NUID: std::cell::RefCell<Nuid> = std::cell::RefCell::new(Nuid::new());
    }
    NUID.with(|n| n.borrow_mut().next_id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_and_sized() {
        let a = super::next();
        let b = super::next();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
