//! Protocol operations, borrowed from the read buffer they were parsed from.

/// One parsed operation. Every slice points into the caller's read buffer, so parsing
/// allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    /// `CONNECT {json}` (client or route).
    Connect(&'a [u8]),
    /// `INFO {json}`.
    Info(&'a [u8]),
    Ping,
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR 'text'`: the text between the quotes (or the raw argument when unquoted).
    Err(&'a [u8]),
    /// `PUB` or `HPUB` from a client.
    Pub(Message<'a>),
    /// `SUB subject [queue] sid`.
    Sub {
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        sid: &'a [u8],
    },
    /// `UNSUB sid [max]`.
    Unsub {
        sid: &'a [u8],
        max: Option<u64>,
    },
    /// `MSG`/`HMSG` delivered by a server to a client.
    Msg {
        sid: &'a [u8],
        msg: Message<'a>,
    },
    /// `RS+ account subject [queue weight]` (and `LS+`, whose origin is dropped). On a
    /// leaf connection (`LS+ subject [queue weight]`) the account is empty.
    RouteSub {
        account: &'a [u8],
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
        weight: u32,
        /// The leaf node cluster the interest comes from (`LS+ origin ...` on a route).
        origin: Option<&'a [u8]>,
    },
    /// `RS- account subject [queue]` (and `LS-`).
    RouteUnsub {
        account: &'a [u8],
        subject: &'a [u8],
        queue: Option<&'a [u8]>,
    },
    /// An op the reference reads and drops on this side (`SUB` on a route).
    Ignored,
    /// `A+ account` on a gateway: the remote has interest in the account again.
    AccountSub(&'a [u8]),
    /// `A- account` on a gateway: the remote has no interest in the account.
    AccountUnsub(&'a [u8]),
    /// `RMSG`/`HMSG` (and `LMSG`) from a route peer; on a leaf connection (`LMSG subject
    /// ...`) the account is empty.
    RouteMsg {
        account: &'a [u8],
        /// The leaf node cluster the message comes from (`LMSG origin ...` on a route).
        origin: Option<&'a [u8]>,
        msg: Message<'a>,
        /// Queue groups the receiver must serve: names separated by single spaces.
        queues: Queues<'a>,
    },
}

/// A message as it travels: subject, optional reply, optional header block, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// The raw `NATS/1.0` header block including its blank line, when the op had headers.
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// Bytes counted against max_payload and in statistics: headers plus payload.
    pub fn size(&self) -> usize {
        self.headers.map_or(0, |h| h.len()) + self.payload.len()
    }
}

/// The queue-group names carried by a routed message, kept as the raw argument text so
/// parsing does not allocate; iterate to get each name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Queues<'a>(pub &'a [u8]);

impl<'a> Queues<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        split_fields(self.0)
    }
}

/// Splits PUB, HPUB and MSG arguments: on runs of spaces and tabs (the reference's
/// publish parsing; any other byte, CR included, belongs to an argument).
pub fn split_args(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|s| !s.is_empty())
}

/// Splits SUB, UNSUB and route arguments: on runs of spaces, tabs, CRs and LFs, as the
/// reference's `splitArg` does (so `SUB foo\r1` is subject `foo`, sid `1`).
pub fn split_fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| matches!(*b, b' ' | b'\t' | b'\r' | b'\n'))
        .filter(|s| !s.is_empty())
}
