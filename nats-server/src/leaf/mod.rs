//! Leaf nodes: this server as a hub that accepts leaf node connections on the
//! `leafnodes` port, and as a leaf that dials the hubs of `leafnodes.remotes`.
//!
//! A leaf connection is bound to one local account. Interest flows both ways as
//! `LS+ subject [queue weight]` / `LS- subject [queue]` and messages as `LMSG` (HMSG with
//! headers); the connection's subscriptions sit in the account's index like a route's, so
//! `deliver` hands it messages (with the reference's audience rules, see `may_send`).
//!
//! - `mod.rs`: the registry of leaf connections, the per-connection state (`Link`), the
//!   interest each connection is told about (`smap`, kept in step with the account's index),
//!   loop detection subjects, `leafnode_urls` gossip, monitoring snapshots;
//! - `conn.rs`: one connection's handshake (both sides) and read loop;
//! - `solicit.rs`: the accept loop and the dialling of remotes with reconnects.

mod conn;
mod solicit;

pub use solicit::{start, start_remotes};

use crate::client::{Client, ClosedState, Kind, Subscription};
use crate::server::Server;
use nats_common::proto;
use nats_common::subject;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Prefix of the subjects a server subscribes its leafs to, to find loops.
pub const LDS_PREFIX: &str = "$LDS.";
/// How long a leaf waits before redialling after a loop was detected.
pub const LOOP_DELAY: Duration = Duration::from_secs(30);
/// The JetStream subjects denied on a leaf connection when JetStream is not extended
/// (this server has no JetStream).
const DENY_CLIENT_JS: &[&str] = &["$JS.API.>", "$KV.>", "$OBJ.>"];
/// The same for the system account.
const DENY_ALL_JS: &[&str] = &["$JSC.>", "$NRG.>", "$JS.API.>", "$KV.>", "$OBJ.>"];

/// The leaf-specific state of one connection.
pub struct Link {
    /// We dialled it (we are the leaf).
    pub solicited: bool,
    /// Index of the remote in `leafnodes.remotes`, for solicited connections.
    pub remote: Option<usize>,
    /// The other side is the hub: only local interest is sent, and messages from it do not
    /// go on to routes.
    pub spoke: AtomicBool,
    pub remote_server: RwLock<String>,
    pub remote_cluster: RwLock<String>,
    /// Interest told to the other side: key (`subject` or `subject queue`) -> count.
    /// `None` until the connection is bound to its account.
    smap: Mutex<Option<HashMap<Vec<u8>, i32>>>,
    /// Subjects not sent to the other side (messages), and interest not announced.
    pub pub_deny: RwLock<Vec<String>>,
    pub sub_deny: RwLock<Vec<String>>,
}

impl Link {
    pub fn new(solicited: bool, remote: Option<usize>, spoke: bool) -> Arc<Link> {
        Arc::new(Link {
            solicited,
            remote,
            spoke: AtomicBool::new(spoke),
            remote_server: RwLock::new(String::new()),
            remote_cluster: RwLock::new(String::new()),
            smap: Mutex::new(None),
            pub_deny: RwLock::new(Vec::new()),
            sub_deny: RwLock::new(Vec::new()),
        })
    }

    fn denied(list: &RwLock<Vec<String>>, subj: &[u8]) -> bool {
        let l = list.read();
        !l.is_empty() && l.iter().any(|p| subject::matches(p.as_bytes(), subj))
    }
}

/// Whether `c` is a leaf connection to our hub.
#[inline]
pub fn is_spoke(c: &Client) -> bool {
    c.kind == Kind::Leaf
        && c.leaf
            .get()
            .is_some_and(|l| l.spoke.load(Ordering::Relaxed))
}

fn remote_cluster(c: &Client) -> String {
    c.leaf
        .get()
        .map(|l| l.remote_cluster.read().clone())
        .unwrap_or_default()
}

/// Whether the leaf connection `to` belongs to the leaf cluster `origin`.
pub fn in_cluster(to: &Client, origin: Option<&[u8]>) -> bool {
    let Some(o) = origin else { return false };
    to.leaf
        .get()
        .is_some_and(|l| l.remote_cluster.read().as_bytes() == o)
}

/// The leaf cluster a message or subscription of `c` comes from (a clustered leaf's
/// connection), named on routes so it is not sent back into that cluster.
pub fn origin_of(c: &Client) -> Option<String> {
    if c.kind != Kind::Leaf {
        return None;
    }
    let rc = remote_cluster(c);
    (!rc.is_empty()).then_some(rc)
}

/// Whether a message from `from` may go to the leaf connection `to` for a plain
/// subscription (the reference's audience rules).
pub fn may_send(from: &Arc<Client>, from_route: bool, to: &Arc<Client>, subj: &[u8]) -> bool {
    if Arc::ptr_eq(from, to) || to.is_closed() {
        return false;
    }
    let Some(link) = to.leaf.get() else {
        return false;
    };
    // From a route, only to the leafs we are the hub of.
    if from_route && link.spoke.load(Ordering::Relaxed) {
        return false;
    }
    may_send_queue(from, to, subj)
}

/// The checks shared with queue delivery: no echo into the same remote cluster, and the
/// connection's deny rules.
pub fn may_send_queue(from: &Arc<Client>, to: &Arc<Client>, subj: &[u8]) -> bool {
    let Some(link) = to.leaf.get() else {
        return false;
    };
    if from.kind == Kind::Leaf {
        let (src, dst) = (remote_cluster(from), link.remote_cluster.read());
        if !src.is_empty() && src == *dst {
            return false;
        }
    }
    !Link::denied(&link.pub_deny, subj)
}

/// The registry of leaf connections and the leaf node settings in force.
pub struct Leafs {
    /// Bound connections (those that passed the handshake), by cid.
    conns: Mutex<HashMap<u64, Arc<Client>>>,
    count: AtomicUsize,
    /// Every live leaf connection, bound or not (for shutdown).
    all: Mutex<HashMap<u64, Arc<Client>>>,
    listen: OnceLock<SocketAddr>,
    /// Our own leaf URL (`host:port`), once listening.
    own_url: OnceLock<String>,
    /// Leaf URLs of the cluster (ours and those routes told us), for `leafnode_urls`.
    urls: Mutex<Vec<String>>,
    /// Loop detection subject per account.
    lds: Mutex<HashMap<String, String>>,
    /// Dialling state of each remote.
    remotes: OnceLock<Vec<Arc<solicit::Remote>>>,
    accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A snapshot of one leaf connection, for /leafz and /varz.
pub struct LeafInfo {
    pub account: String,
    pub ip: String,
    pub port: u16,
    pub rtt: Option<Duration>,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub num_subs: usize,
    /// Subjects of its subscriptions, when asked for.
    pub subs: Vec<String>,
}

/// What a subscription counts for in a leaf's interest: its members for a queue group.
pub fn sub_weight(sub: &Subscription) -> i32 {
    if sub.queue.is_some() {
        sub.weight.load(Ordering::Relaxed).max(1) as i32
    } else {
        1
    }
}

fn smap_key(subject: &[u8], queue: Option<&[u8]>) -> Vec<u8> {
    let mut k = subject.to_vec();
    if let Some(q) = queue {
        k.push(b' ');
        k.extend_from_slice(q);
    }
    k
}

/// Splits an smap key back into subject and queue.
fn split_key(key: &[u8]) -> (&[u8], Option<&[u8]>) {
    match key.iter().position(|b| *b == b' ') {
        Some(i) => (&key[..i], Some(&key[i + 1..])),
        None => (key, None),
    }
}

/// Subjects exempt from a spoke's deny rules: loop detection and gateway replies.
fn exempt(subj: &[u8]) -> bool {
    subj.starts_with(LDS_PREFIX.as_bytes())
        || subj.starts_with(b"_GR_.")
        || subj.starts_with(b"$GR.")
}

impl Leafs {
    pub fn new(_opts: &crate::options::Options) -> Leafs {
        Leafs {
            conns: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            all: Mutex::new(HashMap::new()),
            listen: OnceLock::new(),
            own_url: OnceLock::new(),
            urls: Mutex::new(Vec::new()),
            lds: Mutex::new(HashMap::new()),
            remotes: OnceLock::new(),
            accept_task: Mutex::new(None),
        }
    }

    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.get().copied()
    }

    /// Our leaf URL for route INFO (`leafnode_urls`), unless `no_advertise`.
    pub fn own_url(&self, server: &Server) -> Option<String> {
        if server.opts().leaf.no_advertise {
            return None;
        }
        self.own_url.get().cloned()
    }

    pub fn num_leafs(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Leaf connections bound to the account named `name`.
    pub fn num_for_account(&self, name: &str) -> u64 {
        if self.num_leafs() == 0 {
            return 0;
        }
        self.conns
            .lock()
            .values()
            .filter(|c| c.account.read().name == name)
            .count() as u64
    }

    /// The loop detection subject of `account` on this server.
    pub fn lds(&self, account: &str) -> String {
        self.lds
            .lock()
            .entry(account.to_string())
            .or_insert_with(|| format!("{LDS_PREFIX}{}", nats_common::nuid::next()))
            .clone()
    }

    /// `leafnode_urls` of the INFO we send leafs.
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().clone()
    }

    /// A route told us about (or took away) a peer's leaf URL: tell our leafs.
    pub fn route_url(&self, server: &Server, url: &str, add: bool) {
        if self.own_url.get().is_none() {
            return;
        }
        let changed = {
            let mut urls = self.urls.lock();
            let pos = urls.iter().position(|u| u == url);
            match (add, pos) {
                (true, None) => {
                    urls.push(url.to_string());
                    true
                }
                (false, Some(i)) if Some(url) != self.own_url.get().map(String::as_str) => {
                    urls.remove(i);
                    true
                }
                _ => false,
            }
        };
        if changed && !server.is_shutting_down() {
            for c in self.conns.lock().values() {
                let l = c.leaf.get();
                if l.is_some_and(|l| !l.solicited) {
                    c.out.send(&conn::hub_info(server, c, false, None));
                }
            }
        }
    }

    /// A subscription of `sub.account` changed by `delta` (members for a queue group):
    /// update what each leaf connection bound to that account was told. Called under the
    /// account's index write lock, so the smaps follow the index exactly.
    pub fn sub_changed(&self, sub: &Subscription, delta: i32) {
        if self.count.load(Ordering::Acquire) == 0 || delta == 0 {
            return;
        }
        let conns = self.conns.lock();
        for c in conns.values() {
            if Arc::ptr_eq(c, &sub.client) || !Arc::ptr_eq(&*c.account.read(), &sub.account) {
                continue;
            }
            let Some(link) = c.leaf.get() else { continue };
            if !interest_for(link, sub) {
                continue;
            }
            update_smap(c, link, &sub.subject, sub.queue.as_deref(), delta);
        }
    }

    /// Interest of a remote cluster in `account`, learned on an outbound gateway in
    /// interest-only mode (`RS+`/`RS-`), changed by `delta`: update the leaf connections we
    /// are hub of (the reference's `updateInterestForAccountOnGateway`). Called under that
    /// gateway's interest lock, so the smaps follow what it knows.
    pub fn gateway_interest_changed(
        &self,
        account: &str,
        subj: &[u8],
        queue: Option<&[u8]>,
        delta: i32,
    ) {
        if self.count.load(Ordering::Acquire) == 0 || delta == 0 {
            return;
        }
        let lds = subj.starts_with(LDS_PREFIX.as_bytes());
        let conns = self.conns.lock();
        for c in conns.values() {
            let Some(link) = c.leaf.get() else { continue };
            // Toward a hub only local interest is told.
            if link.spoke.load(Ordering::Relaxed) || c.account.read().name != account {
                continue;
            }
            if !lds && Link::denied(&link.sub_deny, subj) {
                continue;
            }
            update_smap(c, link, subj, queue, delta);
        }
    }

    /// Binds a connection that passed its handshake: registers it and tells the other side
    /// about every subscription of its account (with the loop detection subject).
    fn bind(&self, server: &Server, c: &Arc<Client>, link: &Link) {
        let acc = c.account.read().clone();
        let opts = server.opts();
        let mut smap: HashMap<Vec<u8>, i32> = HashMap::new();
        {
            // Under the index lock: no change can slip between the dump and registration.
            let sl = acc.sublist.read();
            sl.for_each(|subj, queue, s| {
                if s.closed.load(Ordering::Relaxed) || Arc::ptr_eq(&s.client, c) {
                    return;
                }
                if !interest_for(link, s) {
                    return;
                }
                let n = if queue.is_some() { sub_weight(s) } else { 1 };
                *smap.entry(smap_key(subj, queue)).or_insert(0) += n;
            });
            // The interest of other clusters in the account, known from the outbound
            // gateways in interest-only mode. Their locks are held until the connection
            // is registered, so no `RS+`/`RS-` slips in between.
            let gws = server.gateway.out.read().clone();
            let outsims: Vec<_> = gws.iter().map(|g| g.outsim.read()).collect();
            // As the reference, a hub's too (later changes reach leafs only: see
            // `gateway_interest_changed`), each checked against the permissions only.
            for map in &outsims {
                let Some(Some(e)) = map.get(&acc.name) else {
                    continue;
                };
                e.sl.for_each(|subj, queue, key| {
                    if !Link::denied(&link.sub_deny, subj) {
                        // A queue group counts with the weight the remote announced.
                        let n = match queue {
                            Some(_) => e.keys.get(&key[..]).copied().unwrap_or(1).max(1) as i32,
                            None => 1,
                        };
                        *smap.entry(smap_key(subj, queue)).or_insert(0) += n;
                    }
                });
            }
            let maps = if acc.name == crate::options::GLOBAL_ACCOUNT {
                opts.mappings.clone()
            } else {
                opts.accounts
                    .iter()
                    .find(|a| a.name == acc.name)
                    .map(|a| a.mappings.clone())
                    .unwrap_or_default()
            };
            for m in maps {
                if !link.spoke.load(Ordering::Relaxed)
                    || !Link::denied(&link.sub_deny, m.source.as_bytes())
                {
                    *smap.entry(m.source.into_bytes()).or_insert(0) += 1;
                }
            }
            if server.gateway.enabled {
                // Replies mapped for gateways (`_GR_.`, and the old `$GR.`) must come back
                // through this server, which sends them on to their cluster.
                *smap.entry(b"$GR.*.>".to_vec()).or_insert(0) += 1;
                *smap.entry(b"_GR_.>".to_vec()).or_insert(0) += 1;
            }
            *smap.entry(self.lds(&acc.name).into_bytes()).or_insert(0) += 1;
            let mut b = Vec::new();
            for (k, n) in &smap {
                let (s, q) = split_key(k);
                write_ls(c, &mut b, s, q, *n);
            }
            *link.smap.lock() = Some(smap);
            let mut conns = self.conns.lock();
            conns.insert(c.cid, c.clone());
            self.count.store(conns.len(), Ordering::Release);
            drop(conns);
            drop(outsims);
            if !b.is_empty() {
                c.out.send(&b);
            }
        }
        server.clients.lock().insert(c.cid, c.clone());
    }

    fn unbind(&self, server: &Server, c: &Arc<Client>) {
        let mut conns = self.conns.lock();
        if conns.remove(&c.cid).is_some() {
            server.clients.lock().remove(&c.cid);
        }
        self.count.store(conns.len(), Ordering::Release);
        drop(conns);
        self.all.lock().remove(&c.cid);
    }

    /// Bound connections, ordered by cid.
    pub fn conns(&self) -> Vec<Arc<Client>> {
        let mut v: Vec<Arc<Client>> = self.conns.lock().values().cloned().collect();
        v.sort_by_key(|c| c.cid);
        v
    }

    /// Snapshots for /leafz, optionally of one account's connections only.
    pub fn infos(&self, account: Option<&str>, with_subs: bool) -> Vec<LeafInfo> {
        self.conns()
            .into_iter()
            .filter(|c| account.is_none_or(|a| c.account.read().name == a))
            .map(|c| {
                let meta = c.meta.lock().clone();
                let (out_msgs, out_bytes) = {
                    let st = c.out.lock();
                    (st.msgs, st.bytes)
                };
                let subs_map = c.subs.lock();
                let subs: Vec<String> = if with_subs {
                    subs_map
                        .values()
                        .map(|s| String::from_utf8_lossy(&s.subject).into_owned())
                        .collect()
                } else {
                    Vec::new()
                };
                let num_subs = subs_map.len();
                drop(subs_map);
                LeafInfo {
                    account: c.account.read().name.clone(),
                    ip: c.addr.ip().to_string(),
                    port: c.addr.port(),
                    rtt: meta.rtt,
                    in_msgs: c.in_msgs.load(Ordering::Relaxed),
                    out_msgs,
                    in_bytes: c.in_bytes.load(Ordering::Relaxed),
                    out_bytes,
                    num_subs,
                    subs,
                }
            })
            .collect()
    }

    /// Closes every leaf connection and stops accepting and dialling (server shutdown).
    pub fn shutdown(&self) {
        if let Some(t) = self.accept_task.lock().take() {
            t.abort();
        }
        let all: Vec<Arc<Client>> = self.all.lock().values().cloned().collect();
        for c in all {
            c.close(ClosedState::ServerShutdown);
        }
    }
}

/// Whether `sub`'s interest is told to the connection with `link` (the reference's
/// `updateLeafNodes` and `initLeafNodeSmapAndSendSubs` rules).
fn interest_for(link: &Link, sub: &Subscription) -> bool {
    let subj: &[u8] = &sub.subject;
    let lds = subj.starts_with(LDS_PREFIX.as_bytes());
    if link.spoke.load(Ordering::Relaxed) {
        // Toward our hub: only this server's own interest and that of leafs we are hub of.
        match sub.client.kind {
            Kind::Client | Kind::System => {}
            Kind::Leaf if !is_spoke(&sub.client) => {}
            _ => return false,
        }
        if !exempt(subj) && Link::denied(&link.sub_deny, subj) {
            return false;
        }
    } else if !lds && Link::denied(&link.sub_deny, subj) {
        return false;
    }
    // Not back into the cluster it came from.
    if !lds {
        let rc = link.remote_cluster.read();
        if !rc.is_empty() {
            if sub.client.kind == Kind::Leaf && *rc == remote_cluster(&sub.client) {
                return false;
            }
            if sub.origin.as_deref() == Some(rc.as_bytes()) {
                return false;
            }
        }
    }
    true
}

fn update_smap(c: &Client, link: &Link, subj: &[u8], queue: Option<&[u8]>, delta: i32) {
    let mut guard = link.smap.lock();
    let Some(smap) = guard.as_mut() else { return };
    let key = smap_key(subj, queue);
    let n = smap.get(&key).copied().unwrap_or(0);
    let update = queue.is_some() || n == 0 || n + delta <= 0;
    let n = n + delta;
    if n > 0 {
        smap.insert(key, n);
    } else {
        smap.remove(&key);
    }
    if update {
        let mut b = Vec::with_capacity(subj.len() + 32);
        write_ls(c, &mut b, subj, queue, n);
        c.out.send(&b);
    }
}

/// Appends one LS+ (n > 0) or LS- line, traced as the reference traces it.
fn write_ls(c: &Client, b: &mut Vec<u8>, subj: &[u8], queue: Option<&[u8]>, n: i32) {
    let start = b.len();
    proto::ls(b, subj, queue, n);
    crate::route::trace_out(c, &b[start..]);
}

/// JetStream denies the reference adds to every leaf connection when JetStream is not
/// extended across it, with its notice.
fn add_js_denies(server: &Server, c: &Client, link: &Link) {
    let acc = c.account.read().name.clone();
    let is_sys = server.accounts.system().is_some_and(|s| s.name == acc);
    let list: &[&str] = if is_sys {
        let who = link.remote_server.read().clone();
        let rc = link.remote_cluster.read().clone();
        let who = if rc.is_empty() {
            who
        } else {
            format!("{who}/{rc}")
        };
        tracing::info!("{} - System Account Connected from {who}", c.prefix());
        tracing::info!(
            "{} - JetStream Not Extended, adding denies [{}]",
            c.prefix(),
            DENY_ALL_JS.join(" ")
        );
        DENY_ALL_JS
    } else {
        tracing::info!(
            "{} - JetStream Not Extended, adding deny [{}] for account {acc:?}",
            c.prefix(),
            DENY_CLIENT_JS.join(" ")
        );
        DENY_CLIENT_JS
    };
    for l in [&link.pub_deny, &link.sub_deny] {
        let mut v = l.write();
        for d in list {
            if !v.iter().any(|x| x == d) {
                v.push((*d).to_string());
            }
        }
    }
}
