//! Pull requests (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`): what a request asks
//! for, and the queue of requests waiting for messages, served round robin as the
//! reference's wait queue.

use crate::jetstream::api::gojson::{self, GoType};
use crate::jetstream::api::types::NextRequest;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One request in the queue.
pub struct Waiting {
    /// Where its messages and statuses go.
    pub reply: String,
    /// Messages still to send.
    pub n: i64,
    /// Messages sent so far.
    pub d: i64,
    /// Bytes still allowed (0: no limit).
    pub b: i64,
    pub expires: Option<Instant>,
    pub hb: Option<Duration>,
    pub hbt: Option<Instant>,
    pub no_wait: bool,
}

/// A parsed request body.
pub struct Next {
    pub batch: i64,
    pub max_bytes: i64,
    pub no_wait: bool,
    pub expires: Option<Duration>,
    pub hb: Option<Duration>,
}

/// The reference's nextReqFromMsg: empty (one message), a number, or JSON. The error
/// text follows `400 Bad Request - `.
pub fn parse(msg: &[u8]) -> Result<Next, String> {
    let req = msg.trim_ascii();
    let one = Next {
        batch: 1,
        max_bytes: 0,
        no_wait: false,
        expires: None,
        hb: None,
    };
    if req.is_empty() {
        return Ok(one);
    }
    if req[0] == b'{' {
        if let Some(e) = gojson::syntax_error(req) {
            return Err(e);
        }
        let v: serde_json::Value = serde_json::from_slice(req).map_err(|e| e.to_string())?;
        if let Some(e) = gojson::type_error(
            &v,
            "JSApiConsumerGetNextRequest",
            &[
                ("expires", GoType::Duration),
                ("batch", GoType::Int),
                ("max_bytes", GoType::Int),
                ("no_wait", GoType::Bool),
                ("idle_heartbeat", GoType::Duration),
            ],
        ) {
            return Err(e);
        }
        let r: NextRequest = serde_json::from_value(v).unwrap_or_default();
        if r.idle_heartbeat > 0 && r.idle_heartbeat.saturating_mul(2) > r.expires {
            return Err("heartbeat value too large".into());
        }
        let dur = |ns: i64| (ns > 0).then(|| Duration::from_nanos(ns as u64));
        return Ok(Next {
            batch: r.batch,
            max_bytes: r.max_bytes,
            no_wait: r.no_wait,
            expires: dur(r.expires),
            hb: dur(r.idle_heartbeat),
        });
    }
    match std::str::from_utf8(req)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(n) => Ok(Next { batch: n, ..one }),
        None => Ok(one),
    }
}

/// The queue, bounded by the consumer's `max_waiting`.
pub struct Queue {
    pub reqs: VecDeque<Waiting>,
    pub max: usize,
    /// When the last request came (pull consumers' activity, for the inactive threshold).
    pub last: Instant,
}

impl Queue {
    pub fn new(max: i64) -> Queue {
        Queue {
            reqs: VecDeque::new(),
            max: max.max(0) as usize,
            last: Instant::now(),
        }
    }

    pub fn is_full(&self) -> bool {
        self.reqs.len() >= self.max
    }

    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Takes one message's worth of the request at the front: a request with more to
    /// get moves to the back when others wait (round robin).
    pub fn pop(&mut self) -> Option<(String, bool, Option<Duration>)> {
        let mut wr = self.reqs.pop_front()?;
        wr.d += 1;
        wr.n -= 1;
        let reply = wr.reply.clone();
        let hb = wr.hb;
        if wr.n > 0 {
            if let Some(h) = hb {
                wr.hbt = Some(Instant::now() + h);
            }
            if self.reqs.is_empty() {
                self.reqs.push_front(wr);
            } else {
                self.reqs.push_back(wr);
            }
            Some((reply, false, hb))
        } else {
            Some((reply, true, hb))
        }
    }
}

/// `NATS/1.0 <code> <text>` with the pending counts of a request, as the reference's
/// statuses that close a request.
pub fn status_with_pending(code: u16, text: &str, n: i64, b: i64) -> Vec<u8> {
    format!(
        "NATS/1.0 {code} {text}\r\nNats-Pending-Messages: {n}\r\nNats-Pending-Bytes: {b}\r\n\r\n"
    )
    .into_bytes()
}

pub fn status(code: u16, text: &str) -> Vec<u8> {
    format!("NATS/1.0 {code} {text}\r\n\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_the_reference_reads_them() {
        assert_eq!(parse(b"").unwrap().batch, 1);
        assert_eq!(parse(b" 10 ").unwrap().batch, 10);
        assert_eq!(parse(b"abc").unwrap().batch, 1);
        let r = parse(br#"{"batch":5,"expires":1000000000,"no_wait":true}"#).unwrap();
        assert_eq!((r.batch, r.no_wait), (5, true));
        assert_eq!(r.expires, Some(Duration::from_secs(1)));
        assert_eq!(
            parse(br#"{"batch":1,"idle_heartbeat":600,"expires":1000}"#).err(),
            Some("heartbeat value too large".to_string())
        );
        assert!(parse(b"{bad").is_err());
    }

    #[test]
    fn requests_are_served_round_robin() {
        let mut q = Queue::new(10);
        for (r, n) in [("a", 2), ("b", 1)] {
            q.reqs.push_back(Waiting {
                reply: r.into(),
                n,
                d: 0,
                b: 0,
                expires: None,
                hb: None,
                hbt: None,
                no_wait: false,
            });
        }
        let order: Vec<String> = std::iter::from_fn(|| q.pop().map(|p| p.0)).collect();
        assert_eq!(order, ["a", "b", "a"]);
    }
}
