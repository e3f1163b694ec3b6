//! What crosses between accounts, and how.
//!
//! A stream import lets an account's clients receive what another account publishes on
//! the exported subjects: every client subscription that overlaps the import gets a shadow
//! copy in the exporting account's index, and a message delivered through the copy has its
//! subject rewritten (prefix or `to`).
//!
//! A service import lets an account's clients send requests to another account: an
//! internal subscription on the import's subject forwards each request into the exporting
//! account. A request's reply subject is replaced by a private `_R_.<prefix>.<id>` subject
//! of the exporter, remembered in its `Responses`; a reply published there is forwarded back
//! to the requester's original reply subject (once for a singleton service, until the
//! response threshold for streamed and chunked ones).

use super::Account;
use crate::client::{Internal, Kind};
use crate::deliver::{self, Delivery};
use crate::options::{ImportOptions, ResponseType};
use nats_common::proto::Message;
use nats_common::subject;
use nats_common::transform::{self, Transform};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Where a subject goes through an import: rewritten by its transform, kept (a wildcard
/// import onto itself), or the import's literal subject.
fn mapped(transform: Option<&Transform>, use_pub: bool, to: &str, subject: &[u8]) -> Vec<u8> {
    match transform {
        Some(t) => t.apply(subject),
        None if use_pub => subject.to_vec(),
        None => to.as_bytes().to_vec(),
    }
}

/// The reference's default response threshold of a service export.
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

/// A stream this account takes from `exporter`.
pub struct StreamImport {
    pub exporter: Arc<Account>,
    /// The subject in the exporting account.
    pub from: String,
    /// The subject in the importing account (the prefix applied).
    pub to: String,
    /// `from` has wildcards that map to a different `to`.
    transform: Option<Transform>,
    /// The same, from `to` back to `from`, for the shadow subscription subjects.
    reverse: Option<Transform>,
    /// `from` has wildcards and `to` equals it: the published subject is kept.
    use_pub: bool,
}

impl StreamImport {
    pub fn new(exporter: &Arc<Account>, im: &ImportOptions) -> StreamImport {
        let to = if im.to.is_empty() {
            im.subject.clone()
        } else {
            im.to.clone()
        };
        let wild = subject::has_wildcard(im.subject.as_bytes());
        let use_pub = wild && to == im.subject;
        let transform = (wild && !use_pub)
            .then(|| Transform::new(&im.subject, &transform::tokenize_wildcards(&to)).ok())
            .flatten();
        let reverse = transform.as_ref().and_then(Transform::reverse);
        let to = if transform.is_some() {
            transform::untokenize_wildcards(&to).0
        } else {
            to
        };
        StreamImport {
            exporter: exporter.clone(),
            from: im.subject.clone(),
            to,
            transform,
            reverse,
            use_pub,
        }
    }

    /// The subject a message published on `subject` in the exporter is delivered with.
    pub fn delivered_subject(&self, subject: &[u8]) -> Vec<u8> {
        mapped(self.transform.as_ref(), self.use_pub, &self.to, subject)
    }

    /// The subject of the shadow subscription in the exporting account for a client
    /// subscription on `sub` in the importing account, or `None` when they do not overlap.
    pub fn shadow_subject(&self, sub: &str) -> Option<String> {
        if sub == self.to {
            return Some(self.from.clone());
        }
        let stoks: Vec<&str> = sub.split('.').collect();
        let itoks: Vec<&str> = self.to.split('.').collect();
        let has_wc = stoks.contains(&"*") || stoks.last() == Some(&">");
        let (dynamic, overlap) = if subject::is_subset(sub.as_bytes(), self.to.as_bytes()) {
            (true, None)
        } else if has_wc {
            if subject::is_subset(self.to.as_bytes(), sub.as_bytes()) {
                (false, None)
            } else {
                // Narrow the subscription's wildcards to the import's tokens.
                let mut toks: Vec<&str> = stoks.clone();
                for (i, t) in toks.iter_mut().enumerate() {
                    if i >= itoks.len() {
                        break;
                    }
                    if *t == "*" && itoks[i] != ">" {
                        *t = itoks[i];
                    }
                }
                let last = toks.len() - 1;
                if toks[last] == ">" && itoks.len() >= toks.len() {
                    toks[last] = itoks[last];
                    toks.extend_from_slice(&itoks[toks.len()..]);
                }
                let o = toks.join(".");
                if !subject::is_subset(o.as_bytes(), self.to.as_bytes()) {
                    return None;
                }
                (true, Some(o))
            }
        } else {
            return None;
        };
        if !self.use_pub && dynamic {
            if let Some(r) = &self.reverse {
                return Some(r.apply_str(overlap.as_deref().unwrap_or(sub)));
            }
        }
        if !self.use_pub || overlap.is_some() || !dynamic {
            return Some(overlap.unwrap_or_else(|| self.from.clone()));
        }
        Some(sub.to_string())
    }
}

/// A service this account takes from `exporter`.
pub struct ServiceImport {
    pub exporter: Arc<Account>,
    /// The subject this account's clients publish requests to.
    pub from: String,
    /// The subject in the exporting account.
    pub to: String,
    transform: Option<Transform>,
    use_pub: bool,
    pub response_type: ResponseType,
    pub threshold: Duration,
}

impl ServiceImport {
    pub fn new(exporter: &Arc<Account>, im: &ImportOptions, rt: (ResponseType, Duration)) -> Self {
        let from = im.to.clone();
        let mut to = im.subject.clone();
        let mut transform = None;
        let mut use_pub = false;
        if subject::has_wildcard(to.as_bytes()) {
            if to == from {
                use_pub = true;
            } else {
                to = transform::untokenize_wildcards(&to).0;
                transform = Transform::new(&to, &transform::tokenize_wildcards(&from))
                    .ok()
                    .and_then(|t| t.reverse());
            }
        }
        ServiceImport {
            exporter: exporter.clone(),
            from,
            to,
            transform,
            use_pub,
            response_type: rt.0,
            threshold: rt.1,
        }
    }

    /// The subject a request published on `subject` goes to in the exporting account.
    pub fn request_subject(&self, subject: &[u8]) -> Vec<u8> {
        mapped(self.transform.as_ref(), self.use_pub, &self.to, subject)
    }
}

/// The response type and threshold of the exporter's service export covering `subject`.
pub fn response_type_of(exporter: &Account, subject: &str) -> (ResponseType, Duration) {
    let exports = exporter.exports.read();
    let x = exports
        .iter()
        .filter(|x| x.service)
        .find(|x| x.subject == subject)
        .or_else(|| {
            exports
                .iter()
                .filter(|x| x.service)
                .find(|x| nats_common::subject::is_subset(subject.as_bytes(), x.subject.as_bytes()))
        });
    match x {
        Some(x) => (
            x.response_type,
            x.response_threshold.unwrap_or(DEFAULT_RESPONSE_THRESHOLD),
        ),
        None => (ResponseType::Singleton, DEFAULT_RESPONSE_THRESHOLD),
    }
}

/// A reply owed to a requester in another account.
pub struct Response {
    /// The requester's account and its original reply subject.
    pub to_account: Arc<Account>,
    pub reply: Box<[u8]>,
    pub response_type: ResponseType,
    threshold: Duration,
    /// Last delivery (or creation): streamed responses live until the threshold after it.
    touched: Instant,
}

/// Replies owed by an exporting account, by their `_R_` subject.
#[derive(Default)]
pub struct Responses {
    /// `_R_.<6 random base-62 chars>.`: this account's reply prefix on this server.
    prefix: OnceLock<String>,
    map: Mutex<HashMap<Box<[u8]>, Response>>,
}

const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(mut n: u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(DIGITS[(n % 62) as usize] as char);
        n /= 62;
    }
    s
}

impl Responses {
    /// The account's reply prefix, and whether this call created it (the caller then
    /// subscribes `<prefix>>` so replies from other servers find their way here).
    pub fn prefix(&self) -> (&str, bool) {
        let mut created = false;
        let p = self.prefix.get_or_init(|| {
            created = true;
            format!("_R_.{}.", base62(rand::random(), 6))
        });
        (p, created)
    }

    /// A new private reply subject for a request from `to_account` with reply `reply`.
    pub fn add(
        &self,
        to_account: &Arc<Account>,
        reply: &[u8],
        response_type: ResponseType,
        threshold: Duration,
    ) -> Vec<u8> {
        let (prefix, _) = self.prefix();
        let subject = format!("{prefix}{}", base62(rand::random(), 6)).into_bytes();
        let mut map = self.map.lock();
        // Forgotten replies go once their threshold has passed.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, r| r.touched.elapsed() < r.threshold);
        }
        map.insert(
            subject.clone().into_boxed_slice(),
            Response {
                to_account: to_account.clone(),
                reply: reply.into(),
                response_type,
                threshold,
                touched: Instant::now(),
            },
        );
        subject
    }

    /// Where a reply published on `subject` goes: the requester's account and reply
    /// subject. A singleton's entry is used up; an empty message ends a chunked one.
    pub fn take(&self, subject: &[u8], eof: bool) -> Option<(Arc<Account>, Box<[u8]>)> {
        let mut map = self.map.lock();
        let r = map.get_mut(subject)?;
        if r.touched.elapsed() >= r.threshold {
            map.remove(subject);
            return None;
        }
        let out = (r.to_account.clone(), r.reply.clone());
        if r.response_type == ResponseType::Singleton || eof {
            map.remove(subject);
        } else {
            r.touched = Instant::now();
        }
        Some(out)
    }

    /// Forgets a reply that could not be delivered.
    pub fn remove(&self, subject: &[u8]) {
        self.map.lock().remove(subject);
    }
}

/// The `Nats-Request-Info` header the reference adds to a request crossing into another
/// account through a service import: `{"acc":"<requester's account>","rtt":<ns>}`.
pub fn with_request_info(headers: Option<&[u8]>, account: &str, rtt: Duration) -> Vec<u8> {
    const KEY: &str = "Nats-Request-Info";
    let mut info = format!(
        "{{\"acc\":{}",
        serde_json::to_string(account).unwrap_or_default()
    );
    let ns = rtt.as_nanos();
    if ns > 0 {
        info.push_str(&format!(",\"rtt\":{ns}"));
    }
    info.push('}');
    let mut out = Vec::with_capacity(64 + info.len() + headers.map_or(0, <[u8]>::len));
    match headers {
        Some(h) if h.len() > 4 => {
            // Keep the original block without its final blank line and without an older
            // copy of the header.
            let body = &h[..h.len() - 2];
            for line in body.split_inclusive(|b| *b == b'\n') {
                let is_key = line.len() > KEY.len()
                    && line[..KEY.len()].eq_ignore_ascii_case(KEY.as_bytes())
                    && line[KEY.len()] == b':';
                if !is_key {
                    out.extend_from_slice(line);
                }
            }
        }
        _ => out.extend_from_slice(b"NATS/1.0\r\n"),
    }
    out.extend_from_slice(KEY.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(info.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

// ---- delivery across accounts ----

/// Imports chained deeper than this are dropped (configurations cannot form cycles; this
/// bounds what a peer's interest could still set off).
const MAX_SERVICE_CHAIN: u8 = 8;

/// Delivers to an internal subscription: a request into the exporting account, or a reply
/// back to its requester. True when someone got it.
pub fn deliver_internal(d: &mut Delivery<'_>, internal: &Internal, msg: &Message<'_>) -> bool {
    match internal {
        Internal::ServiceImport(si) => forward_request(d, si, msg),
        Internal::Responses => forward_response(d, msg),
        Internal::System(h) => crate::system::handle(d, *h, msg),
        Internal::JetStream(h) => crate::jetstream::handle(d, h, msg),
    }
}

fn forward_request(d: &mut Delivery<'_>, si: &ServiceImport, msg: &Message<'_>) -> bool {
    // A request that came over a route was forwarded by the server it was published on.
    if d.from.kind == Kind::Router || d.via_service >= MAX_SERVICE_CHAIN {
        return false;
    }
    let exporter = &si.exporter;
    let mut subject = si.request_subject(msg.subject);
    match exporter.map_subject(&subject, &d.server.cluster.name()) {
        super::Mapped::Unchanged => {}
        super::Mapped::To(s) => subject = s,
        super::Mapped::Dropped => return false,
    }
    let reply = msg.reply.map(|r| {
        let (prefix, created) = exporter.responses.prefix();
        if created {
            let wildcard = format!("{prefix}>");
            d.server
                .subscribe_internal(exporter, &wildcard, Internal::Responses, true);
        }
        exporter
            .responses
            .add(d.account, r, si.response_type, si.threshold)
    });
    let rtt = d.from.meta.lock().rtt.unwrap_or_default();
    let headers = with_request_info(msg.headers, &d.account.name, rtt);
    let m = Message {
        subject: &subject,
        reply: reply.as_deref(),
        headers: Some(&headers),
        payload: msg.payload,
    };
    let delivered = deliver_in(d, exporter, &m);
    if delivered == 0 {
        if let Some(r) = &reply {
            exporter.responses.remove(r);
        }
    }
    delivered > 0
}

fn forward_response(d: &mut Delivery<'_>, msg: &Message<'_>) -> bool {
    // An empty message ends a chunked response.
    let eof = msg.payload.is_empty() && msg.headers.is_none();
    let Some((requester, reply)) = d.account.responses.take(msg.subject, eof) else {
        return false;
    };
    let m = Message {
        subject: &reply,
        reply: None,
        headers: msg.headers,
        payload: msg.payload,
    };
    deliver_in(d, &requester, &m) > 0
}

/// Delivers `m` in `account` as a message of its own, from within another delivery: the
/// outer delivery's route targets are set aside meanwhile.
fn deliver_in(d: &mut Delivery<'_>, account: &Arc<Account>, m: &Message<'_>) -> usize {
    let (from, echo, via, origin) = (d.from, d.echo, d.via_service + 1, d.origin);
    deliver::deliver_nested(d, account, from, echo, via, origin, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(from: &str, prefix: &str, to: &str) -> StreamImport {
        let im = ImportOptions {
            service: false,
            account: "A".into(),
            subject: from.into(),
            prefix: String::new(),
            to: if prefix.is_empty() {
                to.into()
            } else {
                format!("{prefix}.{from}")
            },
            share: false,
        };
        StreamImport::new(&Account::new("A"), &im)
    }

    #[test]
    fn stream_import_subjects() {
        let s = stream("foo.>", "x", "");
        assert_eq!(s.delivered_subject(b"foo.bar"), b"x.foo.bar");
        assert_eq!(s.shadow_subject("x.foo.bar").as_deref(), Some("foo.bar"));
        assert_eq!(s.shadow_subject(">").as_deref(), Some("foo.>"));
        assert_eq!(s.shadow_subject("x.>").as_deref(), Some("foo.>"));
        assert_eq!(s.shadow_subject("y.>"), None);
        let lit = stream("foo", "x", "");
        assert_eq!(lit.delivered_subject(b"foo"), b"x.foo");
        assert_eq!(lit.shadow_subject("x.foo").as_deref(), Some("foo"));
        assert_eq!(lit.shadow_subject("x.*").as_deref(), Some("foo"));
        let same = stream("foo.*", "", "foo.*");
        assert_eq!(same.delivered_subject(b"foo.a"), b"foo.a");
        assert_eq!(same.shadow_subject("foo.a").as_deref(), Some("foo.a"));
        let mapped = stream("foo.*", "", "bar.*");
        assert_eq!(mapped.delivered_subject(b"foo.a"), b"bar.a");
        assert_eq!(mapped.shadow_subject("bar.a").as_deref(), Some("foo.a"));
    }

    #[test]
    fn request_info_header() {
        let h = with_request_info(None, "B", Duration::ZERO);
        assert_eq!(h, b"NATS/1.0\r\nNats-Request-Info: {\"acc\":\"B\"}\r\n\r\n");
        let h = with_request_info(
            Some(b"NATS/1.0\r\nA: b\r\nNats-Request-Info: old\r\n\r\n"),
            "B",
            Duration::from_nanos(5),
        );
        assert_eq!(
            h,
            b"NATS/1.0\r\nA: b\r\nNats-Request-Info: {\"acc\":\"B\",\"rtt\":5}\r\n\r\n"
        );
    }
}
