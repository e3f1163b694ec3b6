//! From a matched subscription set to the outbound buffers of the connections that get the
//! message: plain subscribers all, one member of each queue group, echo suppression,
//! auto-unsubscribe counts, headers stripped for peers that did not ask for them.

use crate::accounts::Account;
use crate::client::{Client, ClosedState, Kind, SubRef};
use crate::logging;
use crate::server::Server;
use nats_common::proto::{self, Message, Queues};
use nats_common::sublist::MatchResult;
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tracing::{debug, trace};

/// Connections that got data during one read batch; their writers are woken once at the
/// end of the batch so many messages leave in one write.
/// Server-wide out counters are added once per batch too, not once per message.
///
/// One per reading connection (client or route): it also counts what that connection
/// read in the batch, and queues the connection's own replies (PONG, +OK).
#[derive(Default)]
pub struct FlushSet {
    /// Writers to wake, and whether a message was delivered to each (its activity).
    clients: Vec<(Arc<Client>, bool)>,
    out_msgs: u64,
    out_bytes: u64,
    in_msgs: u64,
    in_bytes: u64,
    /// Scratch for one message from a local client: routes that get it, and
    /// (route index, queue-group index) pairs naming the groups each must serve.
    route_targets: Vec<Arc<Client>>,
    route_groups: Vec<(u32, u32)>,
    /// The same for leaf node connections (LMSG).
    leaf_targets: Vec<Arc<Client>>,
    leaf_groups: Vec<(u32, u32)>,
    /// Consumers this producer fed while they were stalled; the reader waits for them
    /// (bounded) before it reads more.
    stalled: Vec<Arc<Client>>,
    /// Deliveries out of each account's index in this batch (usually one account).
    account_out: Vec<(Arc<Account>, u64, u64)>,
}

/// The route and leaf scratch of a delivery in progress, set aside while a nested one runs.
pub struct RouteScratch(
    Vec<Arc<Client>>,
    Vec<(u32, u32)>,
    Vec<Arc<Client>>,
    Vec<(u32, u32)>,
);

impl FlushSet {
    pub fn take_route_scratch(&mut self) -> RouteScratch {
        RouteScratch(
            std::mem::take(&mut self.route_targets),
            std::mem::take(&mut self.route_groups),
            std::mem::take(&mut self.leaf_targets),
            std::mem::take(&mut self.leaf_groups),
        )
    }

    pub fn restore_route_scratch(&mut self, s: RouteScratch) {
        self.route_targets = s.0;
        self.route_groups = s.1;
        self.leaf_targets = s.2;
        self.leaf_groups = s.3;
    }

    #[inline]
    pub fn push(&mut self, c: Arc<Client>) {
        self.clients.push((c, false));
    }

    /// Counts one message read in this batch.
    #[inline]
    pub fn count_in(&mut self, size: usize) {
        self.in_msgs += 1;
        self.in_bytes += size as u64;
    }

    /// Appends protocol bytes to `c`'s outbound buffer, written with the batch.
    pub fn queue(&mut self, c: &Arc<Client>, bytes: &[u8]) {
        let first = {
            let mut st = c.out.lock();
            if st.closed {
                return;
            }
            st.buf.extend_from_slice(bytes);
            !std::mem::replace(&mut st.flush_queued, true)
        };
        if first {
            self.push(c.clone());
        }
    }

    /// End of a read batch of `reader`: wakes writers and publishes the in/out counters
    /// (what a client published counts for its account too).
    pub fn end_batch(&mut self, server: &Server, reader: &Client) {
        self.flush(server);
        if self.in_msgs > 0 {
            reader.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            reader.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            if reader.kind == Kind::Client {
                let acc = reader.account.read();
                acc.stats.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
                acc.stats
                    .in_bytes
                    .fetch_add(self.in_bytes, Ordering::Relaxed);
            }
            reader
                .last_activity
                .store(crate::client::unix_nanos(), Ordering::Relaxed);
            let st = &server.stats;
            st.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
            st.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            self.in_msgs = 0;
            self.in_bytes = 0;
        }
    }

    pub fn flush(&mut self, server: &Server) {
        if !self.clients.is_empty() {
            // Delivery is activity too (monitoring's last_activity and idle).
            let now = crate::client::unix_nanos();
            for (c, delivered) in self.clients.drain(..) {
                if delivered {
                    c.last_activity.store(now, Ordering::Relaxed);
                }
                c.out.flush();
            }
        }
        if self.out_msgs > 0 {
            server
                .stats
                .out_msgs
                .fetch_add(self.out_msgs, Ordering::Relaxed);
            server
                .stats
                .out_bytes
                .fetch_add(self.out_bytes, Ordering::Relaxed);
            self.out_msgs = 0;
            self.out_bytes = 0;
        }
        for (acc, msgs, bytes) in self.account_out.drain(..) {
            acc.stats.out_msgs.fetch_add(msgs, Ordering::Relaxed);
            acc.stats.out_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Counts one delivery out of `account`'s index.
    #[inline]
    fn count_out(&mut self, account: &Arc<Account>, size: usize) {
        match self.account_out.last_mut() {
            Some((a, m, b)) if Arc::ptr_eq(a, account) => {
                *m += 1;
                *b += size as u64;
            }
            _ => match self
                .account_out
                .iter_mut()
                .find(|(a, _, _)| Arc::ptr_eq(a, account))
            {
                Some((_, m, b)) => {
                    *m += 1;
                    *b += size as u64;
                }
                None => self.account_out.push((account.clone(), 1, size as u64)),
            },
        }
    }
}

impl FlushSet {
    /// Fast-producer flow control, as the reference: after a batch in which this producer
    /// fed consumers that are falling behind (pending over half of max_pending), wait until
    /// each has finished a write or dropped below half, or for the reference's bounded time
    /// (100 ms to 1 s by how full it is); then go on regardless. Never waits on a closed
    /// producer.
    pub async fn wait_stalled(&mut self, producer: &Client) {
        if self.stalled.is_empty() {
            return;
        }
        let start = tokio::time::Instant::now();
        for c in self.stalled.drain(..) {
            let ttl = {
                let st = c.out.lock();
                if !st.stalled {
                    continue;
                }
                crate::outbound::stall_duration(st.pending(), c.out.max_pending)
            };
            let released = tokio::select! {
                r = c.out.wait_drained(start + ttl) => r,
                _ = producer.killed() => return,
            };
            if !released {
                debug!(
                    "{} - Timed out of fast producer stall ({})",
                    producer.prefix(),
                    nats_common::monitor::go_duration_string(ttl)
                );
            }
        }
    }
}

/// The publishing side of one delivery.
pub struct Delivery<'a> {
    pub server: &'a Arc<Server>,
    /// The account the message travels in.
    pub account: &'a Arc<Account>,
    pub from: &'a Arc<Client>,
    /// Deliver to the publisher's own subscriptions.
    pub echo: bool,
    pub flush: &'a mut FlushSet,
    /// How many service imports brought the message here (it is then not handed to
    /// stream imports again, and the chain is bounded).
    pub via_service: u8,
    /// The leaf node cluster a routed message comes from: not sent back into it.
    pub origin: Option<&'a [u8]>,
    /// Whether the message may leave for other clusters (false for the local half of a
    /// JetStream delivery, which goes out under its delivery subject instead).
    pub gateways: bool,
}

/// Delivers `m` in `account` as a message of its own, from within delivery `d` (a service
/// import's forward, a PubAck): `d`'s route and leaf targets are set aside meanwhile.
pub fn deliver_nested(
    d: &mut Delivery<'_>,
    account: &Arc<Account>,
    from: &Arc<Client>,
    echo: bool,
    via_service: u8,
    origin: Option<&[u8]>,
    m: &Message<'_>,
) -> usize {
    let result = account.sublist.read().match_subject(m.subject);
    if result.is_empty() {
        return 0;
    }
    let saved = d.flush.take_route_scratch();
    let mut nd = Delivery {
        server: d.server,
        account,
        from,
        echo,
        flush: &mut *d.flush,
        via_service,
        origin,
        gateways: true,
    };
    let n = deliver(&mut nd, m, &result, None);
    d.flush.restore_route_scratch(saved);
    n
}

impl<'a> Delivery<'a> {
    pub fn new(
        server: &'a Arc<Server>,
        account: &'a Arc<Account>,
        from: &'a Arc<Client>,
        echo: bool,
        flush: &'a mut FlushSet,
    ) -> Self {
        Delivery {
            server,
            account,
            from,
            echo,
            flush,
            via_service: 0,
            origin: None,
            gateways: true,
        }
    }
}

/// Delivers `msg` to the local subscribers in `result`; returns how many got it.
///
/// `route_queues`, for a message that came over a route or a leaf node connection, names
/// the queue groups this server must serve; `None` for a message from a local client.
///
/// Leaf node connections follow the reference's audience rules: a message from a route
/// goes only to the leaf nodes this server is the hub of; one from the hub (our
/// soliciting connection) does not go on to routes; a leaf never gets its own messages
/// back, nor does another leaf of the same remote cluster; a queue group is served by a
/// leaf member only when no local or route member can take the message.
pub fn deliver(
    d: &mut Delivery<'_>,
    msg: &Message<'_>,
    result: &MatchResult<SubRef>,
    route_queues: Option<Queues<'_>>,
) -> usize {
    let mut delivered = 0;
    let from_leaf = d.from.kind == Kind::Leaf;
    // One hop: what came over a route goes to local clients only (also once a service
    // import has carried it into another account). What came over a gateway or a leaf
    // node connection also goes to this cluster's routes.
    let from_route = d.from.kind == Kind::Router
        || (route_queues.is_some() && !from_leaf && d.from.kind != Kind::Gateway);
    let from_spoke = from_leaf && crate::leaf::is_spoke(d.from);
    // Messages published here may also leave for other clusters; the queue groups
    // served in this cluster are not offered to them.
    let to_gateways =
        d.gateways && !from_route && d.from.kind != Kind::Gateway && d.server.gateway.active();
    let mut served: Vec<&[u8]> = Vec::new();
    for sub in &result.psubs {
        match sub.client.kind {
            Kind::Router => {
                if !from_route && !from_spoke {
                    route_target(d.flush, &sub.client);
                }
                continue;
            }
            Kind::Leaf => {
                if !crate::leaf::may_send(d.from, from_route, &sub.client, msg.subject)
                    || crate::leaf::in_cluster(&sub.client, d.origin)
                {
                    continue;
                }
                if sub.import.is_some() {
                    // A stream import's copy of a leaf's subscription: its own subject.
                    if deliver_leaf_import(d, sub, msg) {
                        delivered += 1;
                    }
                } else {
                    leaf_target(d.flush, &sub.client);
                }
                continue;
            }
            _ => {}
        }
        if deliver_to(d, sub, msg) {
            delivered += 1;
        }
    }
    for (gi, (name, members)) in result.qsubs.iter().enumerate() {
        if let Some(q) = route_queues {
            if !q.iter().any(|n| n == &**name) {
                continue;
            }
        }
        // Local members are preferred; a remote one is picked only when none can take it,
        // and a leaf member only when no route member can either.
        if deliver_queue(d, members, msg) {
            delivered += 1;
            if to_gateways {
                served.push(name);
            }
            continue;
        }
        if !from_route {
            if let Some(rc) = pick_remote(members) {
                let ti = route_target(d.flush, rc);
                d.flush.route_groups.push((ti as u32, gi as u32));
                delivered += 1;
                if to_gateways {
                    served.push(name);
                }
                continue;
            }
        }
        if let Some(lc) = pick_leaf(members, d.from, msg.subject, d.origin) {
            let ti = leaf_target(d.flush, lc);
            d.flush.leaf_groups.push((ti as u32, gi as u32));
            delivered += 1;
            if to_gateways {
                served.push(name);
            }
        }
    }
    if !d.flush.route_targets.is_empty() {
        delivered += send_to_peers(d, msg, result, Peers::Routes);
    }
    if !d.flush.leaf_targets.is_empty() {
        delivered += send_to_peers(d, msg, result, Peers::Leafs);
    }
    if to_gateways {
        delivered += crate::gateway::send(d, msg, &served);
    }
    delivered
}

/// One LMSG with the subject an import delivers under, for a stream import's copy of a
/// leaf's subscription.
fn deliver_leaf_import(d: &mut Delivery<'_>, sub: &SubRef, msg: &Message<'_>) -> bool {
    let Some(im) = &sub.import else {
        return false;
    };
    if d.via_service > 0 || sub.closed.load(Ordering::Relaxed) {
        return false;
    }
    let subject = im.delivered_subject(msg.subject);
    let client = &sub.client;
    let headers = if client.headers.load(Ordering::Relaxed) {
        msg.headers
    } else {
        None
    };
    let size = headers.map_or(0, |h| h.len()) + msg.payload.len();
    append_msg(d, client, size, |buf| {
        let start = buf.len();
        proto::lmsg(buf, &subject, msg.reply, [], headers, msg.payload);
        if logging::trace_enabled() {
            let line = &buf[start..];
            let end = line.iter().position(|b| *b == b'\r').unwrap_or(line.len());
            trace!(
                "{} - ->> [{}]",
                client.prefix(),
                String::from_utf8_lossy(&line[..end])
            );
        }
    })
}

/// A leaf node member of a queue group (never the connection the message came from),
/// chosen at random weighted by the members each leaf announced.
fn pick_leaf<'m>(
    members: &'m [SubRef],
    from: &Arc<Client>,
    subject: &[u8],
    origin: Option<&[u8]>,
) -> Option<&'m Arc<Client>> {
    let live = |s: &&SubRef| {
        s.client.kind == Kind::Leaf
            && !s.closed.load(Ordering::Relaxed)
            && !s.client.is_closed()
            && !Arc::ptr_eq(&s.client, from)
            && crate::leaf::may_send_queue(from, &s.client, subject)
            && !crate::leaf::in_cluster(&s.client, origin)
    };
    let total: u64 = members
        .iter()
        .filter(live)
        .map(|s| u64::from(s.weight.load(Ordering::Relaxed).max(1)))
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = rand::thread_rng().gen_range(0..total);
    for s in members.iter().filter(live) {
        let w = u64::from(s.weight.load(Ordering::Relaxed).max(1));
        if r < w {
            return Some(&s.client);
        }
        r -= w;
    }
    None
}

/// A remote member of a queue group, chosen with probability proportional to the
/// weight (number of members) its server announced.
fn pick_remote(members: &[SubRef]) -> Option<&Arc<Client>> {
    let live = |s: &&SubRef| {
        s.client.kind == Kind::Router && !s.closed.load(Ordering::Relaxed) && !s.client.is_closed()
    };
    let total: u64 = members
        .iter()
        .filter(live)
        .map(|s| u64::from(s.weight.load(Ordering::Relaxed).max(1)))
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = rand::thread_rng().gen_range(0..total);
    for s in members.iter().filter(live) {
        let w = u64::from(s.weight.load(Ordering::Relaxed).max(1));
        if r < w {
            return Some(&s.client);
        }
        r -= w;
    }
    None
}

/// The peers a message goes to besides local clients: routes (`RMSG`, or `LMSG <origin>`
/// for a clustered leaf's message) and leaf connections (`LMSG`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Peers {
    Routes,
    Leafs,
}

impl FlushSet {
    /// The scratch lists of one kind of peer: targets, and (target, queue group) pairs.
    fn peers(&mut self, p: Peers) -> (&mut Vec<Arc<Client>>, &mut Vec<(u32, u32)>) {
        match p {
            Peers::Routes => (&mut self.route_targets, &mut self.route_groups),
            Peers::Leafs => (&mut self.leaf_targets, &mut self.leaf_groups),
        }
    }
}

/// Index of `c` among this message's targets of its kind, adding it once.
fn peer_target(f: &mut FlushSet, p: Peers, c: &Arc<Client>) -> usize {
    let (targets, _) = f.peers(p);
    if let Some(i) = targets.iter().position(|t| Arc::ptr_eq(t, c)) {
        return i;
    }
    targets.push(c.clone());
    targets.len() - 1
}

fn route_target(f: &mut FlushSet, c: &Arc<Client>) -> usize {
    peer_target(f, Peers::Routes, c)
}

fn leaf_target(f: &mut FlushSet, c: &Arc<Client>) -> usize {
    peer_target(f, Peers::Leafs, c)
}

/// Writes the message once to each target of kind `p`, listing the queue groups it was
/// chosen for; clears the scratch. Returns how many connections got it.
fn send_to_peers(
    d: &mut Delivery<'_>,
    msg: &Message<'_>,
    result: &MatchResult<SubRef>,
    p: Peers,
) -> usize {
    // Both scratch lists are taken out while the outbound buffers are written, and handed
    // back below so their capacity is reused by the next message.
    let (targets, groups_of) = {
        let (t, g) = d.flush.peers(p);
        (std::mem::take(t), std::mem::take(g))
    };
    let mut sent = 0;
    // A message from a clustered leaf names its cluster, so no route sends it back there.
    let origin = match p {
        Peers::Routes => crate::leaf::origin_of(d.from),
        Peers::Leafs => None,
    };
    for (ti, client) in targets.iter().enumerate() {
        let headers = if client.headers.load(Ordering::Relaxed) {
            msg.headers
        } else {
            None
        };
        let size = headers.map_or(0, |h| h.len()) + msg.payload.len();
        let groups = groups_of
            .iter()
            .filter(|(t, _)| *t as usize == ti)
            .filter_map(|(_, g)| result.qsubs.get(*g as usize).map(|(n, _)| &**n));
        let written = append_msg(d, client, size, |buf| {
            let start = buf.len();
            let account = d.account.name.as_bytes();
            match (p, &origin) {
                (Peers::Leafs, _) => {
                    proto::lmsg(buf, msg.subject, msg.reply, groups, headers, msg.payload)
                }
                (Peers::Routes, Some(o)) => proto::lmsg_route(
                    buf,
                    o.as_bytes(),
                    account,
                    msg.subject,
                    msg.reply,
                    groups,
                    headers,
                    msg.payload,
                ),
                (Peers::Routes, None) => proto::rmsg(
                    buf,
                    account,
                    msg.subject,
                    msg.reply,
                    groups,
                    headers,
                    msg.payload,
                ),
            }
            if logging::trace_enabled() {
                let line = &buf[start..];
                let end = line.iter().position(|b| *b == b'\r').unwrap_or(line.len());
                trace!(
                    "{} - ->> [{}]",
                    client.prefix(),
                    String::from_utf8_lossy(&line[..end])
                );
            }
        });
        if written {
            sent += 1;
        }
    }
    let (mut targets, mut groups_of) = (targets, groups_of);
    targets.clear();
    groups_of.clear();
    let (t, g) = d.flush.peers(p);
    *t = targets;
    *g = groups_of;
    sent
}

/// One member of a queue group gets the message, picked at random among live local members.
fn deliver_queue(d: &mut Delivery<'_>, members: &[SubRef], msg: &Message<'_>) -> bool {
    let n = members.len();
    if n == 0 {
        return false;
    }
    let start = if n == 1 {
        0
    } else {
        rand::thread_rng().gen_range(0..n)
    };
    for i in 0..n {
        let sub = &members[(start + i) % n];
        if matches!(sub.client.kind, Kind::Router | Kind::Leaf) {
            continue;
        }
        if deliver_to(d, sub, msg) {
            return true;
        }
    }
    false
}

/// Appends the message to one subscriber's connection; false when it was not delivered
/// (closed, echo off, over its max).
pub fn deliver_to(d: &mut Delivery<'_>, sub: &SubRef, msg: &Message<'_>) -> bool {
    if sub.closed.load(Ordering::Relaxed) {
        return false;
    }
    if let Some(internal) = &sub.internal {
        return crate::accounts::imports::deliver_internal(d, internal, msg);
    }
    if let Some(im) = &sub.import {
        // A stream import's copy: what a service import brought is not re-exported.
        if d.via_service > 0 {
            return false;
        }
        let subject = im.delivered_subject(msg.subject);
        let m = Message {
            subject: &subject,
            ..*msg
        };
        return deliver_to_client(d, sub, &m);
    }
    deliver_to_client(d, sub, msg)
}

/// [`deliver_to`] for a subscription of a client connection.
fn deliver_to_client(d: &mut Delivery<'_>, sub: &SubRef, msg: &Message<'_>) -> bool {
    let client = &sub.client;
    if !d.echo && Arc::ptr_eq(client, d.from) {
        return false;
    }
    if client.has_deliver_deny.load(Ordering::Relaxed) {
        if let Some(p) = &*client.deliver_deny.read() {
            if p.denies_delivery(msg.subject, sub.queue.as_deref()) {
                return false;
            }
        }
    }
    let max = sub.max.load(Ordering::Relaxed);
    let n = sub.delivered.fetch_add(1, Ordering::Relaxed) + 1;
    if max > 0 && n > max {
        return false;
    }
    let mut msg = *msg;
    if let Some(reply) = msg.reply {
        if crate::gateway::is_routed_reply(reply) {
            // A reply mapped for the trip across gateways: the client sees the original
            // and its answer is sent back to the requester's cluster.
            client.gw_replies.track(reply);
            msg.reply = Some(&reply[crate::gateway::SUBJECT_OFFSET..]);
        }
    }
    let msg = &msg;
    if let Some(reply) = msg.reply {
        // allow_responses: the receiver may answer this reply subject.
        client.replies.note(reply);
    }
    let headers = if client.headers.load(Ordering::Relaxed) {
        msg.headers
    } else {
        None
    };
    let size = headers.map_or(0, |h| h.len()) + msg.payload.len();
    let written = append_msg(d, client, size, |buf| {
        proto::msg(buf, msg.subject, &sub.sid, msg.reply, headers, msg.payload)
    });
    if !written {
        return false;
    }
    if logging::trace_enabled() {
        trace!(
            "{} - ->> [{}MSG {} {}{} {}]",
            client.prefix(),
            if headers.is_some() { "H" } else { "" },
            String::from_utf8_lossy(msg.subject),
            String::from_utf8_lossy(&sub.sid),
            msg.reply
                .map(|r| format!(" {}", String::from_utf8_lossy(r)))
                .unwrap_or_default(),
            size
        );
    }
    if max > 0 && n == max {
        d.server.remove_sub(&sub.0);
    }
    true
}

/// Appends one encoded message to `client`'s outbound buffer and does the accounting every
/// delivery shares: the connection's and the batch's counters, the max_pending check (slow
/// consumer, clients only, as the reference), the stall a client producer waits on, and
/// queueing the writer's wake-up for the end of the batch. False when the connection is
/// closed or was just cut off.
pub(crate) fn append_msg(
    d: &mut Delivery<'_>,
    client: &Arc<Client>,
    size: usize,
    encode: impl FnOnce(&mut Vec<u8>),
) -> bool {
    let max_pending = client.out.max_pending;
    let (queue_flush, stalled) = {
        let mut st = client.out.lock();
        if st.closed {
            return false;
        }
        let before = st.buf.len();
        encode(&mut st.buf);
        let pending = st.pending();
        if pending > max_pending && client.kind == Kind::Client {
            // The message that would overflow is not queued; the connection goes.
            st.buf.truncate(before);
            drop(st);
            client.slow_consumer(ClosedState::SlowConsumerPendingBytes, pending);
            return false;
        }
        st.msgs += 1;
        st.bytes += size as u64;
        if pending > max_pending / 2 {
            st.stalled = true;
        }
        // Client producers wait on any stalled consumer, as the reference. A route waits
        // only on one that is still draining: one stuck client must not hold a route (it
        // is cut off at max_pending as on the reference), while a healthy subscriber behind
        // a route keeps every message instead of being overrun by a faster cluster.
        let wait = st.stalled && (d.from.kind == Kind::Client || st.draining());
        (!std::mem::replace(&mut st.flush_queued, true), wait)
    };
    d.flush.out_msgs += 1;
    d.flush.out_bytes += size as u64;
    d.flush.count_out(d.account, size);
    if queue_flush {
        d.flush.clients.push((client.clone(), true));
    }
    if stalled && !d.flush.stalled.iter().any(|c| Arc::ptr_eq(c, client)) {
        d.flush.stalled.push(client.clone());
    }
    true
}
