//! Subscriptions: received messages, the per-connection subscription table and the
//! `Subscriber` handle.

use super::error::Result;
use super::Client;
use crate::headers::Headers;
use crate::proto;
use bytes::Bytes;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// A message delivered to a subscription, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub reply: Option<String>,
    /// Parsed header block, when the server sent HMSG and the block was well formed.
    pub headers: Option<Headers>,
    pub payload: Bytes,
}

impl Message {
    pub(crate) fn from_wire(m: &proto::Message<'_>) -> Message {
        Message {
            subject: String::from_utf8_lossy(m.subject).into_owned(),
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            headers: m.headers.and_then(|h| Headers::parse(h).ok()),
            payload: Bytes::copy_from_slice(m.payload),
        }
    }

    /// Status code from a `NATS/1.0 <code>` header line.
    pub fn status(&self) -> Option<u16> {
        self.headers.as_ref().and_then(|h| h.status)
    }

    /// The server's answer to a request nobody was subscribed to: status 503, no body.
    pub fn is_no_responders(&self) -> bool {
        self.status() == Some(503) && self.payload.is_empty()
    }
}

/// A callback run on the connection's read task for every message, without copying it.
/// It must return quickly and must not subscribe or unsubscribe (it runs under the
/// subscription table lock); publishing with [`Client::publish_now`] is fine.
pub type Callback = Box<dyn FnMut(&proto::Message<'_>) + Send>;

pub(crate) enum Sink {
    Channel(mpsc::Sender<Message>),
    Callback(Callback),
    /// The shared request inbox: messages go to the waiting request by reply token.
    Responses,
}

pub(crate) struct SubEntry {
    pub subject: String,
    pub queue: Option<String>,
    pub sink: Sink,
    /// Total deliveries after which the subscription ends (auto-unsubscribe).
    pub max: Option<u64>,
    pub delivered: u64,
    /// A slow-consumer drop was already reported and no message got through since.
    pub slow: bool,
}

impl SubEntry {
    pub fn remaining(&self) -> Option<u64> {
        self.max.map(|m| m.saturating_sub(self.delivered))
    }
}

#[derive(Default)]
pub(crate) struct SubTable {
    pub map: HashMap<u64, SubEntry>,
    /// `_INBOX.<nuid>.` once the request inbox subscription exists.
    pub resp_prefix: Option<String>,
    pub responders: HashMap<String, oneshot::Sender<Message>>,
}

/// A subscription whose messages are read with [`Subscriber::next`]. Dropping it
/// unsubscribes.
pub struct Subscriber {
    pub(crate) sid: u64,
    pub(crate) rx: mpsc::Receiver<Message>,
    pub(crate) client: Client,
    pub(crate) done: bool,
}

impl Subscriber {
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// The next message; `None` once the subscription ended (unsubscribed, max reached,
    /// drained or the client closed) and every buffered message was read.
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await
    }

    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }

    /// Stops delivery now.
    pub fn unsubscribe(mut self) -> Result<()> {
        self.done = true;
        self.client.unsubscribe_sid(self.sid, None)
    }

    /// Ends the subscription after `max` messages in total (counting those already
    /// delivered), at the server too.
    pub fn unsubscribe_after(&mut self, max: u64) -> Result<()> {
        self.client.unsubscribe_sid(self.sid, Some(max))
    }

    /// Unsubscribes at the server, waits a round trip so messages in flight arrive, then
    /// ends the subscription; buffered messages can still be read with `next`.
    pub async fn drain(&mut self) -> Result<()> {
        self.client.drain_sid(self.sid).await
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.client.unsubscribe_sid(self.sid, None);
        }
    }
}

/// Handle to a callback subscription. Dropping it does NOT unsubscribe (callbacks usually
/// live as long as the connection); call [`SubHandle::unsubscribe`].
#[derive(Clone)]
pub struct SubHandle {
    pub(crate) sid: u64,
    pub(crate) client: Client,
}

impl SubHandle {
    pub fn sid(&self) -> u64 {
        self.sid
    }

    pub fn unsubscribe(&self) -> Result<()> {
        self.client.unsubscribe_sid(self.sid, None)
    }

    pub fn unsubscribe_after(&self, max: u64) -> Result<()> {
        self.client.unsubscribe_sid(self.sid, Some(max))
    }
}
