//! The streaming op parser.
//!
//! `Parser::parse` looks at the front of a read buffer and returns one complete op and the
//! number of bytes it used, or `None` when more bytes are needed. A caller keeps unread bytes
//! and calls again after the next read, so an op may be split across reads at any byte.
//! Ops borrow the buffer: nothing is copied or allocated on the success path.

use super::ops::{split_args, split_fields, Message, Op, Queues};
use memchr::memchr;

/// Which peer the bytes come from; each accepts a different op set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A server reading a client connection.
    Client,
    /// A server reading a route (cluster) connection.
    Route,
    /// A client reading the server it connected to.
    Server,
    /// A server reading a leaf node connection (either end): `LS+ subject [queue weight]`,
    /// `LS- subject [queue]`, `LMSG`/`HMSG subject ...` with no account (the connection
    /// is bound to one). The ops come out as the route ones with an empty account.
    Leaf,
    /// A server reading a gateway connection: the route ops plus `A+`/`A-`.
    Gateway,
}

/// Why a connection's input could not be parsed. The reference server answers each kind
/// differently, so the kinds are kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Unknown or malformed op name, or payload not followed by CRLF:
    /// `-ERR 'Unknown Protocol Operation'` and close.
    UnknownOp,
    /// `-ERR 'maximum control line exceeded'` and close.
    MaxControlLine { len: usize, max: usize },
    /// `-ERR 'Maximum Payload Violation'` and close.
    MaxPayload { size: usize, max: usize },
    /// HPUB on a connection that did not negotiate headers: close without -ERR.
    HeadersNotSupported,
    /// Wrong argument count or bad size: close without -ERR; the text is for the log.
    Protocol(String),
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::UnknownOp => f.write_str("Unknown Protocol Operation"),
            ParseError::MaxControlLine { len, max } => write!(
                f,
                "maximum control line exceeded: max_control_line {max}, line len {len}"
            ),
            ParseError::MaxPayload { size, max } => {
                write!(f, "maximum payload exceeded: {size} vs {max}")
            }
            ParseError::HeadersNotSupported => f.write_str("message headers not supported"),
            ParseError::Protocol(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parser settings for one connection. Cheap to copy; the server changes `headers` after
/// CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct Parser {
    pub side: Side,
    pub max_control_line: usize,
    pub max_payload: usize,
    /// HPUB accepted (client side only).
    pub headers: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    Info,
    Ping,
    Pong,
    Ok,
    Err,
    Pub,
    HPub,
    Sub,
    Unsub,
    Msg,
    HMsg,
    RSubPlus,
    RSubMinus,
    LSubPlus,
    LSubMinus,
    RMsg,
    LMsg,
    ASub,
    AUnsub,
}

/// Op names per side. Names for which anything may follow up to the line end (`PINGX`
/// answers PONG on the reference) are flagged `loose`.
const CLIENT_OPS: &[(&[u8], Kind)] = &[
    (b"PUB", Kind::Pub),
    (b"HPUB", Kind::HPub),
    (b"SUB", Kind::Sub),
    (b"UNSUB", Kind::Unsub),
    (b"PING", Kind::Ping),
    (b"PONG", Kind::Pong),
    (b"CONNECT", Kind::Connect),
    (b"INFO", Kind::Info),
    (b"+OK", Kind::Ok),
    (b"-ERR", Kind::Err),
];
const ROUTE_OPS: &[(&[u8], Kind)] = &[
    (b"RMSG", Kind::RMsg),
    (b"HMSG", Kind::RMsg),
    (b"LMSG", Kind::LMsg),
    (b"RS+", Kind::RSubPlus),
    (b"RS-", Kind::RSubMinus),
    (b"LS+", Kind::LSubPlus),
    (b"LS-", Kind::LSubMinus),
    (b"PING", Kind::Ping),
    (b"PONG", Kind::Pong),
    (b"CONNECT", Kind::Connect),
    (b"INFO", Kind::Info),
    (b"+OK", Kind::Ok),
    (b"-ERR", Kind::Err),
    // Client verbs the reference's parser also takes on a route: SUB is dropped, PUB/HPUB
    // are read and dropped (no account), UNSUB is read as RS-.
    (b"SUB", Kind::Sub),
    (b"PUB", Kind::Pub),
    (b"HPUB", Kind::HPub),
    (b"UNSUB", Kind::Unsub),
];
const LEAF_OPS: &[(&[u8], Kind)] = &[
    (b"LMSG", Kind::LMsg),
    (b"HMSG", Kind::LMsg),
    (b"LS+", Kind::LSubPlus),
    (b"LS-", Kind::LSubMinus),
    (b"PING", Kind::Ping),
    (b"PONG", Kind::Pong),
    (b"CONNECT", Kind::Connect),
    (b"INFO", Kind::Info),
    (b"+OK", Kind::Ok),
    (b"-ERR", Kind::Err),
    (b"PUB", Kind::Pub),
    (b"HPUB", Kind::HPub),
    (b"SUB", Kind::Sub),
    (b"UNSUB", Kind::Unsub),
];
const GATEWAY_OPS: &[(&[u8], Kind)] = &[
    (b"RMSG", Kind::RMsg),
    (b"HMSG", Kind::RMsg),
    (b"RS+", Kind::RSubPlus),
    (b"RS-", Kind::RSubMinus),
    (b"A+", Kind::ASub),
    (b"A-", Kind::AUnsub),
    (b"PING", Kind::Ping),
    (b"PONG", Kind::Pong),
    (b"CONNECT", Kind::Connect),
    (b"INFO", Kind::Info),
    (b"+OK", Kind::Ok),
    (b"-ERR", Kind::Err),
    (b"SUB", Kind::Sub),
    (b"PUB", Kind::Pub),
    (b"HPUB", Kind::HPub),
    (b"UNSUB", Kind::Unsub),
];
const SERVER_OPS: &[(&[u8], Kind)] = &[
    (b"MSG", Kind::Msg),
    (b"HMSG", Kind::HMsg),
    (b"PING", Kind::Ping),
    (b"PONG", Kind::Pong),
    (b"INFO", Kind::Info),
    (b"+OK", Kind::Ok),
    (b"-ERR", Kind::Err),
];

fn is_loose(kind: Kind) -> bool {
    matches!(kind, Kind::Ping | Kind::Pong | Kind::Ok)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

enum Name {
    /// A complete op name; the byte after it has been seen.
    Known(Kind, usize),
    /// The bytes so far could still become an op name.
    NeedMore,
}

impl Parser {
    pub fn new(side: Side, max_control_line: usize, max_payload: usize) -> Self {
        Parser {
            side,
            max_control_line,
            max_payload,
            headers: side != Side::Client,
        }
    }

    fn ops(&self) -> &'static [(&'static [u8], Kind)] {
        match self.side {
            Side::Client => CLIENT_OPS,
            Side::Route => ROUTE_OPS,
            Side::Server => SERVER_OPS,
            Side::Leaf => LEAF_OPS,
            Side::Gateway => GATEWAY_OPS,
        }
    }

    /// Recognises the op name at the front of `buf`, rejecting impossible prefixes at once
    /// (as the reference's byte-at-a-time state machine does) rather than waiting for a
    /// newline that may never come.
    fn op_name(&self, buf: &[u8]) -> Result<Name, ParseError> {
        let mut candidate_left = false;
        for &(name, kind) in self.ops() {
            let n = name.len();
            let avail = buf.len().min(n);
            if !buf[..avail].eq_ignore_ascii_case(&name[..avail]) {
                continue;
            }
            if buf.len() < n {
                candidate_left = true;
                continue;
            }
            // PING/PONG/+OK ignore what follows; CONNECT/INFO take whatever follows as
            // their argument (`CONNECTX {}` is a bad CONNECT, not an unknown op).
            if is_loose(kind) || matches!(kind, Kind::Connect | Kind::Info) {
                return Ok(Name::Known(kind, n));
            }
            match buf.get(n) {
                None => candidate_left = true,
                Some(&b) if is_ws(b) => return Ok(Name::Known(kind, n)),
                // `SUBX`, `PUB\r\n`: the name is known but not followed by a separator.
                Some(_) => {}
            }
        }
        if candidate_left {
            Ok(Name::NeedMore)
        } else {
            Err(ParseError::UnknownOp)
        }
    }

    /// Parses one op from the front of `buf`.
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let (kind, name_len) = match self.op_name(buf)? {
            Name::Known(k, n) => (k, n),
            Name::NeedMore => return Ok(None),
        };
        let nl = match memchr(b'\n', &buf[name_len..]) {
            Some(i) => name_len + i,
            None => {
                let partial = buf.len() - name_len;
                if partial > self.max_control_line {
                    return Err(ParseError::MaxControlLine {
                        len: partial,
                        max: self.max_control_line,
                    });
                }
                return Ok(None);
            }
        };
        let mut arg_start = name_len;
        while arg_start < nl && is_ws(buf[arg_start]) {
            arg_start += 1;
        }
        // The argument runs from its first byte to the newline, less one byte when a CR
        // came after that first byte: the reference's parser notes any CR while reading
        // an argument and then drops the last byte before LF (normally that CR).
        let drop_last = arg_start < nl && memchr(b'\r', &buf[arg_start + 1..nl]).is_some();
        let arg = &buf[arg_start..nl - usize::from(drop_last)];
        // The reference limits the argument part of client control lines.
        if self.side == Side::Client && !is_loose(kind) && arg.len() > self.max_control_line {
            return Err(ParseError::MaxControlLine {
                len: arg.len(),
                max: self.max_control_line,
            });
        }
        let after_line = nl + 1;
        let op = match kind {
            Kind::Ping => Op::Ping,
            Kind::Pong => Op::Pong,
            Kind::Ok => Op::Ok,
            Kind::Connect => Op::Connect(arg),
            Kind::Info => Op::Info(arg),
            Kind::Err => Op::Err(unquote(arg)),
            Kind::Sub if matches!(self.side, Side::Route | Side::Gateway | Side::Leaf) => {
                Op::Ignored
            }
            Kind::Sub => parse_sub(arg)?,
            Kind::Unsub if matches!(self.side, Side::Route | Side::Gateway) => parse_runsub(arg)?,
            Kind::Unsub if self.side == Side::Leaf => Op::Ignored,
            Kind::ASub | Kind::AUnsub => {
                let mut f = split_fields(arg);
                let acc = match (f.next(), f.next()) {
                    (Some(a), None) => a,
                    _ => {
                        return Err(ParseError::Protocol(format!(
                            "processAccount{}Sub parse error: '{}'",
                            if kind == Kind::ASub { "" } else { "Un" },
                            lossy(arg)
                        )))
                    }
                };
                if kind == Kind::ASub {
                    Op::AccountSub(acc)
                } else {
                    Op::AccountUnsub(acc)
                }
            }
            Kind::Unsub => parse_unsub(arg)?,
            Kind::LSubPlus if self.side == Side::Leaf => parse_lsub(arg)?,
            Kind::LSubMinus if self.side == Side::Leaf => parse_lunsub(arg)?,
            Kind::RSubPlus | Kind::LSubPlus => parse_rsub(arg, kind == Kind::LSubPlus)?,
            Kind::RSubMinus | Kind::LSubMinus => parse_runsub(arg)?,
            Kind::Pub | Kind::HPub => {
                if kind == Kind::HPub && !self.headers {
                    return Err(ParseError::HeadersNotSupported);
                }
                let a = parse_pub_args(arg, kind == Kind::HPub)?;
                return self.with_payload(buf, after_line, a.hdr, a.total, |headers, payload| {
                    Op::Pub(Message {
                        subject: a.subject,
                        reply: a.reply,
                        headers,
                        payload,
                    })
                });
            }
            Kind::Msg | Kind::HMsg => {
                let a = parse_msg_args(arg, kind == Kind::HMsg)?;
                return self.with_payload(buf, after_line, a.hdr, a.total, |headers, payload| {
                    Op::Msg {
                        sid: a.sid,
                        msg: Message {
                            subject: a.subject,
                            reply: a.reply,
                            headers,
                            payload,
                        },
                    }
                });
            }
            Kind::RMsg | Kind::LMsg => {
                // A route's `LMSG origin account subject ...` always carries a header size
                // (0 without headers).
                let route_lmsg = kind == Kind::LMsg && self.side == Side::Route;
                let has_headers = buf[..3].eq_ignore_ascii_case(b"HMS") || route_lmsg;
                let a = if self.side == Side::Leaf {
                    parse_lmsg_args(arg, has_headers)?
                } else {
                    parse_rmsg_args(arg, has_headers, kind == Kind::LMsg)?
                };
                let hdr = if route_lmsg && a.hdr == Some(0) {
                    None
                } else {
                    a.hdr
                };
                return self.with_payload(buf, after_line, hdr, a.total, |headers, payload| {
                    Op::RouteMsg {
                        account: a.account,
                        origin: a.origin,
                        queues: a.queues,
                        msg: Message {
                            subject: a.subject,
                            reply: a.reply,
                            headers,
                            payload,
                        },
                    }
                });
            }
        };
        Ok(Some((op, after_line)))
    }

    /// Waits for `total` payload bytes plus CRLF after the control line, then builds the op.
    fn with_payload<'a>(
        &self,
        buf: &'a [u8],
        start: usize,
        hdr: Option<usize>,
        total: usize,
        build: impl FnOnce(Option<&'a [u8]>, &'a [u8]) -> Op<'a>,
    ) -> Result<Option<(Op<'a>, usize)>, ParseError> {
        if total > self.max_payload {
            return Err(ParseError::MaxPayload {
                size: total,
                max: self.max_payload,
            });
        }
        let end = start + total;
        if buf.len() < end + 2 {
            // Any bytes already present past the payload must still be the start of CRLF.
            if buf.len() > end && buf[end] != b'\r' {
                return Err(ParseError::UnknownOp);
            }
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ParseError::UnknownOp);
        }
        let body = &buf[start..end];
        let (headers, payload) = match hdr {
            Some(h) => (Some(&body[..h]), &body[h..]),
            None => (None, body),
        };
        Ok(Some((build(headers, payload), end + 2)))
    }
}

fn unquote(arg: &[u8]) -> &[u8] {
    let t = arg.trim_ascii();
    if t.len() >= 2 && t[0] == b'\'' && t[t.len() - 1] == b'\'' {
        &t[1..t.len() - 1]
    } else {
        t
    }
}

/// Parses a non-negative decimal size the way the reference does: digits only.
pub fn parse_size(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut n: usize = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

fn lossy(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Collects up to N argument slices; returns the count seen (which may exceed N).
fn collect_n<'a, const N: usize>(it: impl Iterator<Item = &'a [u8]>) -> ([&'a [u8]; N], usize) {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    for a in it {
        if n < N {
            out[n] = a;
        }
        n += 1;
    }
    (out, n)
}

/// PUB, HPUB and MSG arguments ([`split_args`]).
fn args_n<const N: usize>(arg: &[u8]) -> ([&[u8]; N], usize) {
    collect_n(split_args(arg))
}

/// SUB, UNSUB and route arguments ([`split_fields`]).
fn fields_n<const N: usize>(arg: &[u8]) -> ([&[u8]; N], usize) {
    collect_n(split_fields(arg))
}

struct PubArgs<'a> {
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    hdr: Option<usize>,
    total: usize,
}

fn sizes(
    hdr_tok: Option<&[u8]>,
    total_tok: &[u8],
    op: &str,
    arg: &[u8],
) -> Result<(Option<usize>, usize), ParseError> {
    let total = parse_size(total_tok).ok_or_else(|| {
        ParseError::Protocol(format!("{op} Bad or Missing Size: '{}'", lossy(arg)))
    })?;
    let hdr = match hdr_tok {
        None => None,
        Some(h) => match parse_size(h) {
            Some(h) if h <= total => Some(h),
            _ => {
                return Err(ParseError::Protocol(format!(
                    "{op} Bad or Missing Header Size: '{}'",
                    lossy(arg)
                )))
            }
        },
    };
    Ok((hdr, total))
}

fn parse_pub_args(arg: &[u8], headers: bool) -> Result<PubArgs<'_>, ParseError> {
    let (a, n) = args_n::<4>(arg);
    let op = if headers {
        "processHeaderPub"
    } else {
        "processPub"
    };
    let base = if headers { 3 } else { 2 };
    let (subject, reply, rest) = if n == base {
        (a[0], None, &a[1..n])
    } else if n == base + 1 {
        (a[0], Some(a[1]), &a[2..n])
    } else {
        return Err(ParseError::Protocol(format!(
            "{op} Parse Error: '{}'",
            lossy(arg)
        )));
    };
    let (hdr, total) = if headers {
        sizes(Some(rest[0]), rest[1], op, arg)?
    } else {
        sizes(None, rest[0], op, arg)?
    };
    Ok(PubArgs {
        subject,
        reply,
        hdr,
        total,
    })
}

struct MsgArgs<'a> {
    subject: &'a [u8],
    sid: &'a [u8],
    reply: Option<&'a [u8]>,
    hdr: Option<usize>,
    total: usize,
}

fn parse_msg_args(arg: &[u8], headers: bool) -> Result<MsgArgs<'_>, ParseError> {
    let (a, n) = args_n::<5>(arg);
    let base = if headers { 4 } else { 3 };
    let (reply, rest) = if n == base {
        (None, &a[2..n])
    } else if n == base + 1 {
        (Some(a[2]), &a[3..n])
    } else {
        return Err(ParseError::Protocol(format!(
            "processMsgArgs Parse Error: '{}'",
            lossy(arg)
        )));
    };
    let (hdr, total) = if headers {
        sizes(Some(rest[0]), rest[1], "processMsgArgs", arg)?
    } else {
        sizes(None, rest[0], "processMsgArgs", arg)?
    };
    Ok(MsgArgs {
        subject: a[0],
        sid: a[1],
        reply,
        hdr,
        total,
    })
}

struct RMsgArgs<'a> {
    origin: Option<&'a [u8]>,
    account: &'a [u8],
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    queues: Queues<'a>,
    hdr: Option<usize>,
    total: usize,
}

/// `[origin] account subject [reply | + reply q.. | '|' q..] [hdr] size`
fn parse_rmsg_args(arg: &[u8], headers: bool, leaf: bool) -> Result<RMsgArgs<'_>, ParseError> {
    let op = if headers {
        "processRoutedHeaderMsgArgs"
    } else {
        "processRoutedMsgArgs"
    };
    let bad = || ParseError::Protocol(format!("{op} Parse Error: '{}'", lossy(arg)));
    // Counted and indexed in passes over the line instead of collected, so routed
    // messages parse without allocating.
    let n = split_fields(arg).count();
    let skip = usize::from(leaf);
    let sizes_n = if headers { 2 } else { 1 };
    if n < skip + 2 + sizes_n {
        return Err(bad());
    }
    let tok = |i: usize| split_fields(arg).nth(i).unwrap_or_default();
    let account = tok(skip);
    let subject = tok(skip + 1);
    let (hdr, total) = if headers {
        sizes(Some(tok(n - 2)), tok(n - 1), op, arg)?
    } else {
        sizes(None, tok(n - 1), op, arg)?
    };
    let mid_start = skip + 2;
    let mid_len = n - sizes_n - mid_start;
    // The text from the first to the last of the given middle tokens.
    let span = |from: usize| -> Queues<'_> {
        if from >= mid_len {
            return Queues::default();
        }
        let f = tok(mid_start + from);
        let l = tok(mid_start + mid_len - 1);
        let base = arg.as_ptr() as usize;
        let s = f.as_ptr() as usize - base;
        let e = l.as_ptr() as usize - base + l.len();
        Queues(&arg[s..e])
    };
    let (reply, queues) = match mid_len {
        0 => (None, Queues::default()),
        1 => (Some(tok(mid_start)), Queues::default()),
        // `+ reply [queues]` (with no queue the reply alone) or `| queues`.
        _ => match tok(mid_start) {
            b"+" => (Some(tok(mid_start + 1)), span(2)),
            b"|" => (None, span(1)),
            other => {
                return Err(ParseError::Protocol(format!(
                    "{op} Bad or Missing Reply Indicator: '{}'",
                    lossy(other)
                )))
            }
        },
    };
    Ok(RMsgArgs {
        origin: leaf.then(|| tok(0)),
        account,
        subject,
        reply,
        queues,
        hdr,
        total,
    })
}

/// A leaf connection's `LMSG subject [reply | + reply q.. | '|' q..] [hdr] size`.
fn parse_lmsg_args(arg: &[u8], headers: bool) -> Result<RMsgArgs<'_>, ParseError> {
    let op = if headers {
        "processLeafHeaderMsgArgs"
    } else {
        "processLeafMsgArgs"
    };
    let n = split_fields(arg).count();
    let sizes_n = if headers { 2 } else { 1 };
    if n < 1 + sizes_n {
        return Err(ParseError::Protocol(format!(
            "{op} Parse Error: '{}'",
            lossy(arg)
        )));
    }
    let tok = |i: usize| split_fields(arg).nth(i).unwrap_or_default();
    let subject = tok(0);
    let (hdr, total) = if headers {
        sizes(Some(tok(n - 2)), tok(n - 1), op, arg)?
    } else {
        sizes(None, tok(n - 1), op, arg)?
    };
    let mid_len = n - sizes_n - 1;
    let span = |from: usize| -> Queues<'_> {
        if from >= mid_len {
            return Queues::default();
        }
        let f = tok(1 + from);
        let l = tok(mid_len);
        let base = arg.as_ptr() as usize;
        let s = f.as_ptr() as usize - base;
        let e = l.as_ptr() as usize - base + l.len();
        Queues(&arg[s..e])
    };
    let (reply, queues) = match mid_len {
        0 => (None, Queues::default()),
        1 => (Some(tok(1)), Queues::default()),
        _ => match tok(1) {
            b"+" => (Some(tok(2)), span(2)),
            b"|" => (None, span(1)),
            other => {
                return Err(ParseError::Protocol(format!(
                    "{op} Bad or Missing Reply Indicator: '{}'",
                    lossy(other)
                )))
            }
        },
    };
    Ok(RMsgArgs {
        origin: None,
        account: &[],
        subject,
        reply,
        queues,
        hdr,
        total,
    })
}

/// A leaf connection's `LS+ subject [queue weight]`.
fn parse_lsub(arg: &[u8]) -> Result<Op<'_>, ParseError> {
    let (a, n) = fields_n::<3>(arg);
    let err = || ParseError::Protocol(format!("processLeafSub Parse Error: '{}'", lossy(arg)));
    match n {
        1 => Ok(Op::RouteSub {
            account: &[],
            subject: a[0],
            queue: None,
            weight: 0,
            origin: None,
        }),
        3 => Ok(Op::RouteSub {
            account: &[],
            subject: a[0],
            queue: Some(a[1]),
            // The reference takes a bad weight as -1, stored as no weight.
            weight: parse_size(a[2]).map_or(0, |w| w.min(u32::MAX as usize) as u32),
            origin: None,
        }),
        _ => Err(err()),
    }
}

/// A leaf connection's `LS- subject [queue]`.
fn parse_lunsub(arg: &[u8]) -> Result<Op<'_>, ParseError> {
    let (a, n) = fields_n::<2>(arg);
    match n {
        1 => Ok(Op::RouteUnsub {
            account: &[],
            subject: a[0],
            queue: None,
        }),
        2 => Ok(Op::RouteUnsub {
            account: &[],
            subject: a[0],
            queue: Some(a[1]),
        }),
        // The reference looks the whole argument up as a key and finds nothing.
        _ => Ok(Op::Ignored),
    }
}

fn parse_sub(arg: &[u8]) -> Result<Op<'_>, ParseError> {
    let (a, n) = fields_n::<3>(arg);
    match n {
        2 => Ok(Op::Sub {
            subject: a[0],
            queue: None,
            sid: a[1],
        }),
        3 => Ok(Op::Sub {
            subject: a[0],
            queue: Some(a[1]),
            sid: a[2],
        }),
        _ => Err(ParseError::Protocol(format!(
            "processSub Parse Error: '{}'",
            lossy(arg)
        ))),
    }
}

fn parse_unsub(arg: &[u8]) -> Result<Op<'_>, ParseError> {
    let (a, n) = fields_n::<2>(arg);
    let err = || ParseError::Protocol(format!("processUnsub Parse Error: '{}'", lossy(arg)));
    match n {
        1 => Ok(Op::Unsub {
            sid: a[0],
            max: None,
        }),
        // A max that is not a number counts as none: the reference unsubscribes at once.
        2 => Ok(Op::Unsub {
            sid: a[0],
            max: parse_size(a[1]).map(|m| m as u64),
        }),
        _ => Err(err()),
    }
}

fn parse_rsub(arg: &[u8], leaf: bool) -> Result<Op<'_>, ParseError> {
    let (a, n) = fields_n::<5>(arg);
    let origin = leaf.then_some(a[0]);
    let a = if leaf { &a[1..] } else { &a[..4] };
    let n = n.saturating_sub(usize::from(leaf));
    let err = || ParseError::Protocol(format!("processRemoteSub Parse Error: '{}'", lossy(arg)));
    match n {
        2 => Ok(Op::RouteSub {
            account: a[0],
            subject: a[1],
            queue: None,
            weight: 0,
            origin,
        }),
        4 => {
            let weight = parse_size(a[3]).ok_or_else(err)?.min(u32::MAX as usize) as u32;
            Ok(Op::RouteSub {
                account: a[0],
                subject: a[1],
                queue: Some(a[2]),
                weight,
                origin,
            })
        }
        _ => Err(err()),
    }
}

fn parse_runsub(arg: &[u8]) -> Result<Op<'_>, ParseError> {
    let (a, n) = fields_n::<3>(arg);
    match n {
        2 => Ok(Op::RouteUnsub {
            account: a[0],
            subject: a[1],
            queue: None,
        }),
        3 => Ok(Op::RouteUnsub {
            account: a[0],
            subject: a[1],
            queue: Some(a[2]),
        }),
        _ => Err(ParseError::Protocol(format!(
            "processRemoteUnsub parse error: '{}'",
            lossy(arg)
        ))),
    }
}

/// A connection's side of the read loop: the parser settings in force (they can change
/// after CONNECT, so they are asked for before every op) and what to do with each op.
pub trait OpHandler {
    fn parser(&self) -> &Parser;
    /// Acts on one op; false stops reading this buffer (the connection is closing).
    fn handle(&mut self, op: Op<'_>) -> bool;
}

/// How far `drive` got through a read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Driven {
    /// Every complete op was handled; this many bytes were used (the rest is a partial op).
    Used(usize),
    /// The handler asked to stop.
    Stopped,
    /// The bytes at `at` could not be parsed.
    Failed(ParseError, usize),
}

/// Parses and hands over every complete op at the front of `buf`.
pub fn drive<H: OpHandler>(h: &mut H, buf: &[u8]) -> Driven {
    let mut pos = 0;
    while pos < buf.len() {
        match h.parser().parse(&buf[pos..]) {
            Ok(Some((op, n))) => {
                pos += n;
                if !h.handle(op) {
                    return Driven::Stopped;
                }
            }
            Ok(None) => break,
            Err(e) => return Driven::Failed(e, pos),
        }
    }
    Driven::Used(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Parser {
        let mut p = Parser::new(Side::Client, 4096, 1024 * 1024);
        p.headers = true;
        p
    }

    /// Parses everything in `buf`, returning debug strings of the ops.
    fn all(p: &Parser, buf: &[u8]) -> Result<(Vec<String>, usize), ParseError> {
        let mut pos = 0;
        let mut out = Vec::new();
        while let Some((op, n)) = p.parse(&buf[pos..])? {
            out.push(format!("{op:?}"));
            pos += n;
        }
        Ok((out, pos))
    }

    /// Feeds `buf` in two pieces split at every byte, as reads would deliver it, and checks
    /// the ops come out the same as from one read.
    fn check_splits(p: &Parser, buf: &[u8]) {
        let (whole, used) = all(p, buf).expect("whole parse");
        assert_eq!(used, buf.len());
        for cut in 0..=buf.len() {
            let mut acc: Vec<u8> = Vec::new();
            let mut ops = Vec::new();
            for piece in [&buf[..cut], &buf[cut..]] {
                acc.extend_from_slice(piece);
                let (got, used) = all(p, &acc).expect("split parse");
                ops.extend(got);
                acc.drain(..used);
            }
            assert!(acc.is_empty(), "cut {cut}: leftover");
            assert_eq!(ops, whole, "cut {cut}");
        }
    }

    #[test]
    fn every_client_op_split_everywhere() {
        let stream: &[u8] = b"CONNECT {\"verbose\":false}\r\nPING\r\nPONG\r\nSUB foo 1\r\nSUB foo q 2\r\n\
PUB foo 5\r\nhello\r\nPUB foo bar 5\r\nhello\r\nPUB foo 0\r\n\r\n\
HPUB foo rep 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\nHPUB foo 18 18\r\nNATS/1.0\r\nA: b\r\n\r\n\r\n\
UNSUB 1\r\nUNSUB 2 5\r\n+OK\r\n-ERR 'x y'\r\nINFO {}\r\nsub\tfoo\t 3\n";
        check_splits(&client(), stream);
        let (ops, _) = all(&client(), stream).unwrap();
        assert_eq!(ops.len(), 16);
    }

    #[test]
    fn route_and_server_ops_split_everywhere() {
        let route = Parser::new(Side::Route, 4096, usize::MAX);
        check_splits(
            &route,
            b"RS+ $G foo\r\nRS+ $G bar q1 2\r\nRS- $G foo\r\nRS- $G bar q1\r\nRMSG $G pub.a 5\r\nhello\r\n\
RMSG $G pub.b rep.1 3\r\nabc\r\nHMSG $G pub.c rep.2 18 23\r\nNATS/1.0\r\nX: y\r\n\r\nworld\r\n\
RMSG $G qq | grp 2\r\nhi\r\nRMSG $G qq + r.x grp g2 2\r\nhi\r\nLS+ orig $G foo\r\n\
LMSG orig $G lm 0 2\r\nhi\r\nLMSG orig $G lm + r.y g1 18 23\r\nNATS/1.0\r\nX: y\r\n\r\nworld\r\nPING\r\n",
        );
        let server = Parser::new(Side::Server, 4096, usize::MAX);
        check_splits(
            &server,
            b"INFO {\"a\":1} \r\nMSG foo 1 5\r\nhello\r\nMSG foo 1 rep 0\r\n\r\nHMSG foo 2 16 16\r\nNATS/1.0 503\r\n\r\n\r\n+OK\r\n-ERR 'Stale Connection'\r\nPING\r\n",
        );
    }

    #[test]
    fn leaf_ops() {
        let leaf = Parser::new(Side::Leaf, 4096, usize::MAX);
        check_splits(
            &leaf,
            b"LS+ foo\r\nLS+ bar q1 2\r\nLS- foo\r\nLS- bar q1\r\nLMSG pub.a 5\r\nhello\r\n\
LMSG pub.b rep.1 3\r\nabc\r\nHMSG pub.c rep.2 18 23\r\nNATS/1.0\r\nX: y\r\n\r\nworld\r\n\
LMSG qq | grp 2\r\nhi\r\nLMSG qq + r.x grp g2 2\r\nhi\r\nPING\r\n",
        );
        let (op, _) = leaf
            .parse(b"LMSG qq + r.x g1 g2 2\r\nhi\r\n")
            .unwrap()
            .unwrap();
        let Op::RouteMsg {
            account,
            msg,
            queues,
            ..
        } = op
        else {
            panic!("{op:?}")
        };
        assert!(account.is_empty());
        assert_eq!(msg.subject, b"qq");
        assert_eq!(msg.reply, Some(&b"r.x"[..]));
        assert_eq!(queues.0, b"g1 g2");
        let (op, _) = leaf.parse(b"LS+ bar q1 3\r\n").unwrap().unwrap();
        assert_eq!(
            op,
            Op::RouteSub {
                account: b"",
                subject: b"bar",
                queue: Some(b"q1"),
                weight: 3,
                origin: None
            }
        );
        assert!(leaf.parse(b"RS+ $G foo\r\n").is_err());
        // On a route, LMSG names the origin cluster and always has a header size.
        let route = Parser::new(Side::Route, 4096, usize::MAX);
        let (op, _) = route
            .parse(b"LMSG orig $G lm 0 2\r\nhi\r\n")
            .unwrap()
            .unwrap();
        let Op::RouteMsg { account, msg, .. } = op else {
            panic!("{op:?}")
        };
        assert_eq!(
            (account, msg.subject, msg.headers, msg.payload),
            (&b"$G"[..], &b"lm"[..], None, &b"hi"[..])
        );
        let (op, _) = route
            .parse(b"LMSG orig $G lm r.z 4 6\r\nh:\r\nhi\r\n")
            .unwrap()
            .unwrap();
        let Op::RouteMsg { msg, .. } = op else {
            panic!("{op:?}")
        };
        assert_eq!(
            (msg.reply, msg.headers, msg.payload),
            (Some(&b"r.z"[..]), Some(&b"h:\r\n"[..]), &b"hi"[..])
        );
        assert!(matches!(
            leaf.parse(b"LS+ a b\r\n"),
            Err(ParseError::Protocol(_))
        ));
    }

    #[test]
    fn decoded_fields() {
        let p = client();
        let (op, n) = p.parse(b"PUB foo bar 5\r\nhello\r\nX").unwrap().unwrap();
        assert_eq!(n, 22);
        let Op::Pub(m) = op else { panic!() };
        assert_eq!(m.subject, b"foo");
        assert_eq!(m.reply, Some(&b"bar"[..]));
        assert_eq!(m.payload, b"hello");
        let (op, _) = p
            .parse(b"HPUB foo 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n")
            .unwrap()
            .unwrap();
        let Op::Pub(m) = op else { panic!() };
        assert_eq!(m.headers, Some(&b"NATS/1.0\r\nA: b\r\n\r\n"[..]));
        assert_eq!(m.payload, b"hello");
        let route = Parser::new(Side::Route, 4096, usize::MAX);
        let (op, _) = route
            .parse(b"RMSG $G qq + r.x g1 g2 2\r\nhi\r\n")
            .unwrap()
            .unwrap();
        let Op::RouteMsg {
            account,
            msg,
            queues,
            ..
        } = op
        else {
            panic!()
        };
        assert_eq!(account, b"$G");
        assert_eq!(msg.reply, Some(&b"r.x"[..]));
        assert_eq!(queues.iter().collect::<Vec<_>>(), vec![&b"g1"[..], b"g2"]);
        let (op, _) = route.parse(b"RS+ $G bar q1 3\r\n").unwrap().unwrap();
        assert_eq!(
            op,
            Op::RouteSub {
                account: b"$G",
                subject: b"bar",
                queue: Some(b"q1"),
                weight: 3,
                origin: None
            }
        );
    }

    #[test]
    fn case_insensitive_and_loose() {
        let p = client();
        for line in [&b"pInG\r\n"[..], b"PINGX\r\n", b"PING foo\r\n"] {
            assert_eq!(p.parse(line).unwrap().unwrap().0, Op::Ping);
        }
        assert!(matches!(
            p.parse(b"uNsUb 1\r\n").unwrap().unwrap().0,
            Op::Unsub { .. }
        ));
    }

    #[test]
    fn errors_as_the_reference_reports_them() {
        let p = client();
        let unknown: &[&[u8]] = &[
            b"FOO\r\n",
            b"\r\n",
            b"PUB\r\n",
            b"UNSUB\r\n",
            b"SUBX foo 1\r\n",
            b"MSG foo 1 1\r\n",
            b"RS+ $G foo\r\n",
            b"PUB foo 5\r\nhelloXX",
            b"X",
        ];
        for u in unknown {
            assert_eq!(
                p.parse(u),
                Err(ParseError::UnknownOp),
                "{}",
                String::from_utf8_lossy(u)
            );
        }
        for silent in [
            &b"SUB foo\r\n"[..],
            b"SUB foo 1 2 3\r\n",
            b"PUB foo\r\n",
            b"PUB foo abc\r\n",
            b"PUB foo -1\r\n",
            b"HPUB foo 10 5\r\n",
        ] {
            assert!(
                matches!(p.parse(silent), Err(ParseError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(silent)
            );
        }
        let small = Parser::new(Side::Client, 16, 8);
        assert_eq!(
            small.parse(b"PUB foo 9\r\n"),
            Err(ParseError::MaxPayload { size: 9, max: 8 })
        );
        assert!(matches!(
            small.parse(b"SUB aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            Err(ParseError::MaxControlLine { .. })
        ));
        let mut nohdr = client();
        nohdr.headers = false;
        assert_eq!(
            nohdr.parse(b"HPUB foo 5 5\r\n"),
            Err(ParseError::HeadersNotSupported)
        );
    }

    /// Argument splitting byte for byte as the reference: SUB, UNSUB and route ops split on
    /// spaces, tabs, CR and LF; PUB on spaces and tabs only; a CR after an argument's first
    /// byte makes the byte before LF drop; other whitespace (form feed) is argument text.
    #[test]
    fn whitespace_in_arguments_as_the_reference() {
        let p = client();
        // The op as text, after checking it used the whole line.
        let one = |line: &[u8]| {
            let (op, n) = p.parse(line).unwrap().unwrap();
            assert_eq!(n, line.len());
            format!("{op:?}")
        };
        let sub = |subject: &'static [u8], queue: Option<&'static [u8]>, sid: &'static [u8]| {
            format!(
                "{:?}",
                Op::Sub {
                    subject,
                    queue,
                    sid
                }
            )
        };
        assert_eq!(one(b"SUB foo\r1\r\n"), sub(b"foo", None, b"1"));
        assert_eq!(one(b"SUB a\x0cb 1\r\n"), sub(b"a\x0cb", None, b"1"));
        assert_eq!(one(b"SUB foo\rq\t2\r\n"), sub(b"foo", Some(b"q"), b"2"));
        // The byte before LF is dropped once a CR was seen: `x` here, not the CR.
        assert_eq!(one(b"SUB foo 1\rx\n"), sub(b"foo", None, b"1"));
        assert_eq!(
            one(b"UNSUB 1\r2\r\n"),
            format!(
                "{:?}",
                Op::Unsub {
                    sid: b"1",
                    max: Some(2)
                }
            )
        );
        // PUB does not split on CR.
        assert!(matches!(
            p.parse(b"PUB foo\r5\r\nhello\r\n"),
            Err(ParseError::Protocol(_))
        ));
        let route = Parser::new(Side::Route, 4096, usize::MAX);
        assert_eq!(
            route.parse(b"RS+ $G foo\rq 1\r\n").unwrap().unwrap().0,
            Op::RouteSub {
                account: b"$G",
                subject: b"foo",
                queue: Some(b"q"),
                weight: 1,
                origin: None
            }
        );
        check_splits(&p, b"SUB foo\r1\r\nSUB a\x0cb 1\r\nPING\r\n");
    }

    #[test]
    fn partial_inputs_wait() {
        let p = client();
        for part in [
            &b"P"[..],
            b"PU",
            b"PUB",
            b"PUB foo 5\r\nhel",
            b"PUB foo 5\r\nhello\r",
        ] {
            assert_eq!(p.parse(part), Ok(None), "{}", String::from_utf8_lossy(part));
        }
    }

    /// A deterministic fuzz pass: random and mutated inputs never panic, and every
    /// successful parse consumes at least one byte within the buffer.
    #[test]
    fn random_inputs_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let seeds: &[&[u8]] = &[
            b"PUB foo bar 5\r\nhello\r\n",
            b"HPUB foo 18 23\r\nNATS/1.0\r\nA: b\r\n\r\nhello\r\n",
            b"RMSG $G qq + r.x grp 2\r\nhi\r\n",
            b"SUB foo q 1\r\nUNSUB 1 2\r\n",
            b"MSG a 1 r 3\r\nabc\r\n",
            // Whitespace the reference treats specially: a bare CR between SUB arguments
            // separates them; a form feed is part of the subject.
            b"SUB foo\r1\r\n",
            b"SUB a\x0cb 1\r\n",
        ];
        let parsers = [
            client(),
            Parser::new(Side::Route, 64, 1 << 20),
            Parser::new(Side::Server, 64, 1 << 20),
        ];
        for i in 0..20_000 {
            let mut buf = seeds[i % seeds.len()].to_vec();
            for _ in 0..rng.gen_range(0..4) {
                let at = rng.gen_range(0..buf.len());
                match rng.gen_range(0..3) {
                    0 => buf[at] = rng.gen(),
                    1 => {
                        buf.remove(at);
                    }
                    _ => buf.insert(at, b"\r\n 0123456789+|*>."[rng.gen_range(0..17)]),
                }
                if buf.is_empty() {
                    break;
                }
            }
            for p in &parsers {
                let mut pos = 0;
                while let Ok(Some((_, n))) = p.parse(&buf[pos..]) {
                    assert!(n > 0 && pos + n <= buf.len());
                    pos += n;
                }
            }
        }
    }
}
