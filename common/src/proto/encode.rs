//! Writing ops. Every function appends to a caller-owned buffer so many ops coalesce into
//! one socket write.

pub const PING: &[u8] = b"PING\r\n";
pub const PONG: &[u8] = b"PONG\r\n";
pub const OK: &[u8] = b"+OK\r\n";
pub const CRLF: &[u8] = b"\r\n";

#[inline]
fn num(out: &mut Vec<u8>, n: usize) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(n).as_bytes());
}

#[inline]
fn sizes_and_body(out: &mut Vec<u8>, headers: Option<&[u8]>, payload: &[u8]) {
    if let Some(h) = headers {
        num(out, h.len());
        out.push(b' ');
        num(out, h.len() + payload.len());
        out.extend_from_slice(CRLF);
        out.extend_from_slice(h);
    } else {
        num(out, payload.len());
        out.extend_from_slice(CRLF);
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// `MSG subject sid [reply] len` or, with headers, `HMSG subject sid [reply] hdr total`.
#[inline]
pub fn msg(
    out: &mut Vec<u8>,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    out.reserve(subject.len() + sid.len() + payload.len() + 40);
    out.extend_from_slice(if headers.is_some() { b"HMSG " } else { b"MSG " });
    out.extend_from_slice(subject);
    out.push(b' ');
    out.extend_from_slice(sid);
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.push(b' ');
    }
    sizes_and_body(out, headers, payload);
}

/// `PUB subject [reply] len` or `HPUB subject [reply] hdr total`.
pub fn publish(
    out: &mut Vec<u8>,
    subject: &[u8],
    reply: Option<&[u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    out.reserve(subject.len() + payload.len() + 40);
    out.extend_from_slice(if headers.is_some() { b"HPUB " } else { b"PUB " });
    out.extend_from_slice(subject);
    out.push(b' ');
    if let Some(r) = reply {
        out.extend_from_slice(r);
        out.push(b' ');
    }
    sizes_and_body(out, headers, payload);
}

/// `SUB subject [queue] sid`.
pub fn sub(out: &mut Vec<u8>, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
    out.extend_from_slice(b"SUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    if let Some(q) = queue {
        out.extend_from_slice(q);
        out.push(b' ');
    }
    out.extend_from_slice(sid);
    out.extend_from_slice(CRLF);
}

/// `UNSUB sid [max]`.
pub fn unsub(out: &mut Vec<u8>, sid: &[u8], max: Option<u64>) {
    out.extend_from_slice(b"UNSUB ");
    out.extend_from_slice(sid);
    if let Some(m) = max {
        out.push(b' ');
        num(out, m as usize);
    }
    out.extend_from_slice(CRLF);
}

/// `RMSG account subject [reply] len` / `HMSG account subject ...`, with the queue-group
/// marker form (`+ reply q..` or `| q..`) when queues are listed.
pub fn rmsg<'q>(
    out: &mut Vec<u8>,
    account: &[u8],
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: impl IntoIterator<Item = &'q [u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    out.reserve(account.len() + subject.len() + payload.len() + 48);
    out.extend_from_slice(if headers.is_some() {
        b"HMSG "
    } else {
        b"RMSG "
    });
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    out.push(b' ');
    reply_and_queues(out, reply, queues);
    sizes_and_body(out, headers, payload);
}

/// The routed-message middle part: `reply ` alone, or with queue groups the marker form
/// `+ reply q.. ` / `| q.. ` (each item followed by a space).
#[inline]
fn reply_and_queues<'q>(
    out: &mut Vec<u8>,
    reply: Option<&[u8]>,
    queues: impl IntoIterator<Item = &'q [u8]>,
) {
    let mut queues = queues.into_iter().peekable();
    if queues.peek().is_some() {
        match reply {
            Some(r) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(r);
                out.push(b' ');
            }
            None => out.extend_from_slice(b"| "),
        }
        for q in queues {
            out.extend_from_slice(q);
            out.push(b' ');
        }
    } else if let Some(r) = reply {
        out.extend_from_slice(r);
        out.push(b' ');
    }
}

/// `RS+ account subject [queue weight]`.
pub fn rs_plus(out: &mut Vec<u8>, account: &[u8], subject: &[u8], queue: Option<(&[u8], u32)>) {
    out.extend_from_slice(b"RS+ ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some((q, w)) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
        out.push(b' ');
        num(out, w as usize);
    }
    out.extend_from_slice(CRLF);
}

/// `RS- account subject [queue]`.
pub fn rs_minus(out: &mut Vec<u8>, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    out.extend_from_slice(b"RS- ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
    }
    out.extend_from_slice(CRLF);
}

/// `INFO {json} ` with the space before CRLF the reference puts on every INFO it originates.
pub fn info(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(b"INFO ");
    out.extend_from_slice(json);
    out.extend_from_slice(b" \r\n");
}

/// `CONNECT {json}`.
pub fn connect(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(b"CONNECT ");
    out.extend_from_slice(json);
    out.extend_from_slice(CRLF);
}

/// `-ERR 'text'`.
pub fn err(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"-ERR '");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"'\r\n");
}

/// `LMSG subject [reply] len` / `HMSG subject ...` toward a leaf node (no account: the
/// connection is bound to one), with the queue-group marker form when queues are listed.
pub fn lmsg<'q>(
    out: &mut Vec<u8>,
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: impl IntoIterator<Item = &'q [u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    out.reserve(subject.len() + payload.len() + 48);
    out.extend_from_slice(if headers.is_some() {
        b"HMSG "
    } else {
        b"LMSG "
    });
    out.extend_from_slice(subject);
    out.push(b' ');
    reply_and_queues(out, reply, queues);
    sizes_and_body(out, headers, payload);
}

/// `LMSG origin account subject [reply | + reply q.. | '|' q..] hdr size` toward a route:
/// a message from a leaf node cluster, named so that it is not sent back into it.
#[allow(clippy::too_many_arguments)]
pub fn lmsg_route<'q>(
    out: &mut Vec<u8>,
    origin: &[u8],
    account: &[u8],
    subject: &[u8],
    reply: Option<&[u8]>,
    queues: impl IntoIterator<Item = &'q [u8]>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    out.reserve(origin.len() + account.len() + subject.len() + payload.len() + 56);
    out.extend_from_slice(b"LMSG ");
    out.extend_from_slice(origin);
    out.push(b' ');
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    out.push(b' ');
    reply_and_queues(out, reply, queues);
    let h = headers.map_or(0, <[u8]>::len);
    num(out, h);
    out.push(b' ');
    num(out, h + payload.len());
    out.extend_from_slice(CRLF);
    if let Some(h) = headers {
        out.extend_from_slice(h);
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(CRLF);
}

/// `LS+ origin account subject [queue weight]` toward a route (leaf node interest).
pub fn ls_route(
    out: &mut Vec<u8>,
    origin: &[u8],
    account: &[u8],
    subject: &[u8],
    queue: Option<(&[u8], u32)>,
) {
    out.extend_from_slice(b"LS+ ");
    out.extend_from_slice(origin);
    out.push(b' ');
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some((q, w)) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
        out.push(b' ');
        num(out, w as usize);
    }
    out.extend_from_slice(CRLF);
}

/// `LS- account subject [queue]` toward a route (the reference names no origin here).
pub fn ls_route_minus(out: &mut Vec<u8>, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    out.extend_from_slice(b"LS- ");
    out.extend_from_slice(account);
    out.push(b' ');
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
    }
    out.extend_from_slice(CRLF);
}

/// `LS+ subject [queue weight]` or `LS- subject [queue]` (weight 0) toward a leaf node.
pub fn ls(out: &mut Vec<u8>, subject: &[u8], queue: Option<&[u8]>, weight: i32) {
    out.extend_from_slice(if weight > 0 { b"LS+ " } else { b"LS- " });
    out.extend_from_slice(subject);
    if let Some(q) = queue {
        out.push(b' ');
        out.extend_from_slice(q);
        if weight > 0 {
            out.push(b' ');
            num(out, weight as usize);
        }
    }
    out.extend_from_slice(CRLF);
}
