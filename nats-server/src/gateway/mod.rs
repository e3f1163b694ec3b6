//! Gateways: this cluster's links to other clusters (a super-cluster), interoperable with
//! the reference's 2.9 gateway protocol.
//!
//! Per remote cluster, every server keeps one outbound connection (it sends messages on
//! it) and accepts one inbound connection from each server of the remote cluster (it
//! receives messages there and tells the remote what its own cluster is interested in).
//! Like the reference since 2.9, every account is switched to interest-only mode on each
//! inbound connection (INFO `gateway_cmd` 2, the `RS+` of all its subscriptions, INFO
//! `gateway_cmd` 3), so a remote sends only what someone here subscribed to; what a remote
//! sends optimistically is still answered with `A-`/`RS-`.
//!
//! Public face: [`Gateways`] (the server's state: configuration, connections, the interest
//! tally), [`send`] (a local message to the remote clusters), the reply mapping
//! (`_GR_.<cluster hash>.<server hash>.<reply>`) and the hooks routes and clients call.
//! The connections themselves are in `conn.rs`, /gatewayz in `monitor/gatewayz.rs`.

pub mod conn;

use crate::client::{Client, Kind};
use crate::deliver::Delivery;
use crate::server::Server;
use nats_common::proto::{self, Message};
use nats_common::sublist::Sublist;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Prefix of a reply subject mapped for a trip across gateways.
pub const REPLY_PREFIX: &[u8] = b"_GR_.";
const HASH_LEN: usize = 6;
const CLUSTER_OFFSET: usize = REPLY_PREFIX.len();
const SERVER_OFFSET: usize = CLUSTER_OFFSET + HASH_LEN + 1;
/// Where the original subject starts in a mapped reply.
pub const SUBJECT_OFFSET: usize = SERVER_OFFSET + HASH_LEN + 1;
/// How long a new subscription makes replies to it mapped, and how long a client may
/// answer a mapped reply (the reference's 2 s).
const RECENT: Duration = Duration::from_secs(2);

pub const CMD_GOSSIP: u8 = 1;
pub const CMD_ALL_SUBS_START: u8 = 2;
pub const CMD_ALL_SUBS_COMPLETE: u8 = 3;

/// The reference's 6-character hash of a name (cluster or server id), used in mapped replies.
pub fn hash6(name: &str) -> [u8; HASH_LEN] {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut out = [0u8; HASH_LEN];
    for (o, b) in out.iter_mut().zip(d.as_ref()) {
        *o = DIGITS[(*b % 62) as usize];
    }
    out
}

/// Whether `subj` is a mapped (`_GR_.`) reply long enough to hold both hashes.
#[inline]
pub fn is_routed_reply(subj: &[u8]) -> bool {
    subj.len() > SUBJECT_OFFSET && subj.starts_with(REPLY_PREFIX)
}

/// The INFO of a gateway connection, with the reference's field names and order (the
/// server fields first, printed even when empty, then the gateway ones).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayInfo {
    #[serde(deserialize_with = "nullable")]
    pub server_id: String,
    #[serde(deserialize_with = "nullable")]
    pub server_name: String,
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    #[serde(deserialize_with = "nullable")]
    pub proto: i32,
    #[serde(deserialize_with = "nullable")]
    pub go: String,
    #[serde(deserialize_with = "nullable")]
    pub host: String,
    #[serde(deserialize_with = "nullable")]
    pub port: u16,
    #[serde(deserialize_with = "nullable")]
    pub headers: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(deserialize_with = "nullable")]
    pub max_payload: i64,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub gateway_urls: Vec<String>,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_zero")]
    pub gateway_cmd: u8,
    /// A Go `[]byte`: base64 in JSON.
    #[serde(
        deserialize_with = "payload_de",
        serialize_with = "payload_ser",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_cmd_payload: Option<Vec<u8>>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub gateway_nrp: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_false")]
    pub gateway_iom: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn payload_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    use base64::Engine as _;
    let s = Option::<String>::deserialize(d)?;
    Ok(s.and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok()))
}

fn payload_ser<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    match v {
        Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
        None => s.serialize_none(),
    }
}

/// The CONNECT a gateway sends on the connection it dialled (the reference's key order).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayConnect {
    #[serde(deserialize_with = "nullable")]
    pub echo: bool,
    #[serde(deserialize_with = "nullable")]
    pub verbose: bool,
    #[serde(deserialize_with = "nullable")]
    pub pedantic: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub tls_required: bool,
    #[serde(deserialize_with = "nullable")]
    pub headers: bool,
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub cluster: String,
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway: String,
}

/// A remote gateway (cluster) this server connects to: configured or discovered.
pub struct Remote {
    pub name: String,
    pub hash: [u8; HASH_LEN],
    /// URLs to dial (configured ones first, then what the remote's INFOs listed).
    pub urls: Mutex<Vec<String>>,
    pub implicit: bool,
    pub tls: Option<crate::options::TlsOptions>,
    pub attempts: AtomicU32,
}

impl Remote {
    pub fn add_urls(&self, urls: &[String]) {
        let mut have = self.urls.lock();
        for u in urls {
            let hp = crate::route::RouteUrl::parse(u).map(|r| r.host_port());
            let known = have
                .iter()
                .any(|h| crate::route::RouteUrl::parse(h).map(|r| r.host_port()) == hp);
            if !known && hp.is_some() {
                have.push(u.clone());
            }
        }
    }
}

/// Interest mode of an account on one gateway connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Optimistic,
    Transitioning,
    InterestOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Optimistic => "Optimistic",
            Mode::Transitioning => "Transitioning",
            Mode::InterestOnly => "Interest-Only",
        }
    }
}

/// What an outbound connection knows of the remote's interest in one account.
pub struct OutAccount {
    pub mode: Mode,
    /// Optimistic mode: subjects the remote said it has no interest in (`RS-`); `None`
    /// once the remote sent all its subscriptions.
    pub ni: Option<HashSet<Box<[u8]>>>,
    /// The remote's subscriptions (queue ones always; plain ones once not optimistic).
    pub sl: Sublist<Arc<[u8]>>,
    /// The same subscriptions by key, with the queue weight the remote announced (1 for a
    /// plain one): what a leaf connection is told when it connects.
    pub keys: HashMap<Box<[u8]>, u32>,
    pub qsubs: usize,
}

impl OutAccount {
    fn new(mode: Mode, ni: Option<HashSet<Box<[u8]>>>) -> OutAccount {
        OutAccount {
            mode,
            ni,
            sl: Sublist::new(),
            keys: HashMap::new(),
            qsubs: 0,
        }
    }
}

/// `None`: the remote sent `A-` (no interest in the whole account).
pub type OutEntry = Option<OutAccount>;

/// What an inbound connection told the remote about one account.
pub enum InAccount {
    /// `A-` was sent.
    NoInterest,
    /// Optimistic, with the subjects `RS-` was sent for.
    Optimistic(HashSet<Box<[u8]>>),
    InterestOnly,
}

/// One gateway connection, inbound or outbound.
pub struct GwConn {
    pub client: Arc<Client>,
    pub outbound: bool,
    /// The remote gateway (cluster) name: configured for an outbound, from the INFO for
    /// an inbound.
    pub name: Mutex<String>,
    pub remote_id: Mutex<String>,
    pub remote: Mutex<Option<Arc<Remote>>>,
    /// The URL dialled (outbound): its credentials go in the CONNECT.
    pub url: Mutex<Option<crate::route::RouteUrl>>,
    pub registered: AtomicBool,
    /// The remote announced it switches every account to interest-only at once.
    pub interest_only: AtomicBool,
    pub outsim: RwLock<HashMap<String, OutEntry>>,
    pub insim: Mutex<HashMap<String, InAccount>>,
}

impl GwConn {
    pub fn name(&self) -> String {
        self.name.lock().clone()
    }

    /// Interest of the remote behind this outbound connection in `subj` of `acc`: plain
    /// interest, and the queue groups it has members of.
    fn interest(&self, acc: &str, subj: &[u8], queues: &mut Vec<Box<[u8]>>) -> bool {
        let iom = self.interest_only.load(Ordering::Relaxed);
        let map = self.outsim.read();
        let Some(entry) = map.get(acc) else {
            return !iom;
        };
        let Some(e) = entry else {
            return false;
        };
        let mut psi = false;
        if !iom {
            if let Some(ni) = &e.ni {
                psi = !ni.contains(subj);
            }
        }
        if e.ni.is_none() || e.qsubs > 0 {
            let r = e.sl.match_subject(subj);
            if !r.psubs.is_empty() {
                psi = true;
            }
            for (name, members) in &r.qsubs {
                if !members.is_empty() {
                    queues.push(name.clone());
                }
            }
        }
        psi
    }
}

/// A subject and when it was seen.
type Stamped = (Box<[u8]>, Instant);

/// (account, subject, queue group) of this cluster's interest.
type InterestKey = (Box<str>, Box<[u8]>, Option<Box<[u8]>>);

/// The server's gateway state.
pub struct Gateways {
    pub enabled: bool,
    pub name: String,
    /// `_GR_.<cluster hash>.<server hash>.`
    pub reply_prefix: Vec<u8>,
    pub cluster_hash: [u8; HASH_LEN],
    pub server_hash: [u8; HASH_LEN],
    /// This server's gateway URL (`host:port`) once listening.
    pub url: Mutex<String>,
    /// Gateway URLs of this cluster's servers (ours and those routes announced).
    pub urls: Mutex<Vec<String>>,
    pub listen: OnceLock<SocketAddr>,
    pub remotes: Mutex<BTreeMap<String, Arc<Remote>>>,
    /// Registered outbound connections, one per remote gateway.
    pub out: RwLock<Vec<Arc<GwConn>>>,
    /// Registered inbound connections.
    pub inbound: Mutex<Vec<Arc<GwConn>>>,
    /// Every live gateway connection by id.
    pub conns: Mutex<HashMap<u64, Arc<GwConn>>>,
    /// Subscriber counts of this cluster (local clients and routes).
    interest: Mutex<HashMap<InterestKey, u32>>,
    /// Subscriptions made in the last 2 s, per account: replies to them are mapped.
    recent: Mutex<HashMap<Box<str>, VecDeque<Stamped>>>,
    /// At least one outbound is registered (checked per message).
    active: AtomicBool,
    pub accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Gateways {
    pub fn new(opts: &crate::options::Options, server_id: &str) -> Gateways {
        let g = &opts.gateway;
        let enabled = !g.name.is_empty() && g.port != 0;
        let cluster_hash = hash6(&g.name);
        let server_hash = hash6(server_id);
        let mut reply_prefix = REPLY_PREFIX.to_vec();
        reply_prefix.extend_from_slice(&cluster_hash);
        reply_prefix.push(b'.');
        reply_prefix.extend_from_slice(&server_hash);
        reply_prefix.push(b'.');
        let mut remotes = BTreeMap::new();
        for r in &g.gateways {
            if r.name == g.name {
                continue;
            }
            remotes.insert(
                r.name.clone(),
                Arc::new(Remote {
                    name: r.name.clone(),
                    hash: hash6(&r.name),
                    urls: Mutex::new(r.urls.clone()),
                    implicit: false,
                    tls: r.tls.clone().or_else(|| g.tls.clone()),
                    attempts: AtomicU32::new(0),
                }),
            );
        }
        Gateways {
            enabled,
            name: g.name.clone(),
            reply_prefix,
            cluster_hash,
            server_hash,
            url: Mutex::new(String::new()),
            urls: Mutex::new(Vec::new()),
            listen: OnceLock::new(),
            remotes: Mutex::new(remotes),
            out: RwLock::new(Vec::new()),
            inbound: Mutex::new(Vec::new()),
            conns: Mutex::new(HashMap::new()),
            interest: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            active: AtomicBool::new(false),
            accept_task: Mutex::new(None),
        }
    }

    /// Messages may leave for other clusters (an outbound connection is registered).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    fn refresh_active(&self) {
        self.active
            .store(!self.out.read().is_empty(), Ordering::Relaxed);
    }

    pub fn outbound(&self, name: &str) -> Option<Arc<GwConn>> {
        self.out
            .read()
            .iter()
            .find(|c| *c.name.lock() == name)
            .cloned()
    }

    fn inbound_conns(&self) -> Vec<Arc<GwConn>> {
        self.inbound.lock().clone()
    }

    // ---- this cluster's interest ------------------------------------------------------

    /// A subscription entered an account's index (called under that index's write lock,
    /// so what is sent follows the index exactly). Routes' subscriptions count too: the
    /// inbound side speaks for the whole cluster.
    pub fn sub_added(&self, account: &str, subject: &[u8], queue: Option<&[u8]>) {
        if !self.enabled {
            return;
        }
        let mut tally = self.interest.lock();
        let n = tally
            .entry((account.into(), subject.into(), queue.map(Into::into)))
            .or_insert(0);
        *n += 1;
        let first = *n == 1;
        {
            let mut recent = self.recent.lock();
            let list = recent.entry(account.into()).or_default();
            let now = Instant::now();
            prune(list, now);
            list.push_back((subject.into(), now));
        }
        if !first {
            return;
        }
        for gc in self.inbound_conns() {
            let mut line = Vec::new();
            if let Some(q) = queue {
                proto::rs_plus(&mut line, account.as_bytes(), subject, Some((q, 1)));
                // A queue subscription clears an earlier A- (the remote keeps an entry).
                let mut insim = gc.insim.lock();
                if matches!(insim.get(account), Some(InAccount::NoInterest)) {
                    insim.remove(account);
                }
            } else {
                let mut insim = gc.insim.lock();
                match insim.get_mut(account) {
                    Some(InAccount::InterestOnly) => {
                        proto::rs_plus(&mut line, account.as_bytes(), subject, None)
                    }
                    Some(InAccount::Optimistic(ni)) => {
                        // Clear the remote's no-interest for what this subscription covers.
                        let before = ni.len();
                        if nats_common::subject::has_wildcard(subject) {
                            ni.retain(|s| !nats_common::subject::matches(subject, s));
                        } else {
                            ni.remove(subject);
                        }
                        if ni.len() != before {
                            proto::rs_plus(&mut line, account.as_bytes(), subject, None);
                        }
                    }
                    // A new account (or one that had no interest): switch it now.
                    Some(InAccount::NoInterest) | None => {
                        self.switch_account(&gc, &mut insim, account, &tally);
                    }
                }
            }
            if !line.is_empty() {
                crate::route::trace_out(&gc.client, &line);
                gc.client.out.send(&line);
            }
        }
    }

    /// A subscription left an account's index (under its write lock).
    pub fn sub_removed(&self, account: &str, subject: &[u8], queue: Option<&[u8]>) {
        if !self.enabled {
            return;
        }
        let mut tally = self.interest.lock();
        let key = (
            Box::<str>::from(account),
            Box::<[u8]>::from(subject),
            queue.map(Box::<[u8]>::from),
        );
        let Some(n) = tally.get_mut(&key) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return;
        }
        tally.remove(&key);
        for gc in self.inbound_conns() {
            let mut line = Vec::new();
            if queue.is_some() {
                proto::rs_minus(&mut line, account.as_bytes(), subject, queue);
            } else if matches!(gc.insim.lock().get(account), Some(InAccount::InterestOnly)) {
                proto::rs_minus(&mut line, account.as_bytes(), subject, None);
            }
            if !line.is_empty() {
                crate::route::trace_out(&gc.client, &line);
                gc.client.out.send(&line);
            }
        }
    }

    /// Sends the remote every queue subscription of this cluster (a new inbound).
    fn send_queue_subs(&self, gc: &GwConn, tally: &HashMap<InterestKey, u32>) {
        let mut buf = Vec::new();
        for (acc, subj, q) in tally.keys() {
            if let Some(q) = q {
                proto::rs_plus(&mut buf, acc.as_bytes(), subj, Some((q, 1)));
            }
        }
        if !buf.is_empty() {
            gc.client.out.send(&buf);
        }
        tracing::debug!(
            "{} - Sent queue subscriptions to gateway",
            gc.client.prefix()
        );
    }

    /// Switches `account` to interest-only mode on the inbound `gc`: the start command,
    /// every plain subscription, the complete command (caller holds the tally and insim).
    fn switch_account(
        &self,
        gc: &GwConn,
        insim: &mut HashMap<String, InAccount>,
        account: &str,
        tally: &HashMap<InterestKey, u32>,
    ) {
        let remote = gc.name();
        tracing::debug!(
            "{} - Gateway {remote:?}: switching account {account:?} to Interest-Only mode",
            gc.client.prefix()
        );
        let mut buf = Vec::new();
        self.command(&mut buf, CMD_ALL_SUBS_START, account);
        for (acc, subj, q) in tally.keys() {
            if q.is_none() && &**acc == account {
                proto::rs_plus(&mut buf, acc.as_bytes(), subj, None);
            }
        }
        self.command(&mut buf, CMD_ALL_SUBS_COMPLETE, account);
        gc.client.out.send(&buf);
        insim.insert(account.to_string(), InAccount::InterestOnly);
        tracing::debug!(
            "{} - Gateway {remote:?}: switching account {account:?} to Interest-Only mode complete",
            gc.client.prefix()
        );
    }

    fn command(&self, buf: &mut Vec<u8>, cmd: u8, account: &str) {
        let info = GatewayInfo {
            gateway: self.name.clone(),
            gateway_cmd: cmd,
            gateway_cmd_payload: Some(account.as_bytes().to_vec()),
            ..Default::default()
        };
        proto::info(buf, &serde_json::to_vec(&info).unwrap_or_default());
    }

    /// A new inbound connection is registered: queue subscriptions, then every account
    /// switched to interest-only mode, as the reference does since 2.9.
    pub fn inbound_registered(&self, server: &Server, gc: &Arc<GwConn>) {
        let tally = self.interest.lock();
        self.inbound.lock().push(gc.clone());
        self.send_queue_subs(gc, &tally);
        let mut insim = gc.insim.lock();
        for acc in server.accounts.all() {
            self.switch_account(gc, &mut insim, &acc.name, &tally);
        }
    }

    /// Whether `reply` (of a message going to another cluster) should be mapped: someone
    /// here subscribed to it in the last 2 s, so the remote may not know it yet.
    fn should_map_reply(&self, account: &str, reply: &[u8]) -> bool {
        let mut recent = self.recent.lock();
        let Some(list) = recent.get_mut(account) else {
            return false;
        };
        prune(list, Instant::now());
        let hit = list
            .iter()
            .any(|(s, _)| nats_common::subject::matches(s, reply));
        if list.is_empty() {
            recent.remove(account);
        }
        hit
    }

    /// Gossip INFO for a remote gateway (`gateway_cmd` 1), sent to inbound gateways and to
    /// routes; `id` is what the reference puts in `server_id`.
    fn gossip_info(&self, id: &str, server_name: &str, name: &str, urls: Vec<String>) -> Vec<u8> {
        let info = GatewayInfo {
            server_id: id.to_string(),
            server_name: server_name.to_string(),
            gateway: name.to_string(),
            gateway_urls: urls,
            gateway_cmd: CMD_GOSSIP,
            ..Default::default()
        };
        let mut b = Vec::new();
        proto::info(&mut b, &serde_json::to_vec(&info).unwrap_or_default());
        b
    }

    pub fn shutdown(&self) {
        if let Some(t) = self.accept_task.lock().take() {
            t.abort();
        }
        let all: Vec<Arc<GwConn>> = self.conns.lock().values().cloned().collect();
        for c in all {
            c.client.close(crate::client::ClosedState::ServerShutdown);
        }
    }
}

/// Drops the entries older than [`RECENT`] (the list is in time order).
fn prune(list: &mut VecDeque<Stamped>, now: Instant) {
    while list
        .front()
        .is_some_and(|(_, t)| now.duration_since(*t) >= RECENT)
    {
        list.pop_front();
    }
}

/// Sends a message published here to the remote clusters that want it: each outbound
/// gateway with plain interest, plus queue groups nobody here served (each group to one
/// cluster only). A mapped reply (`_GR_.`) subject goes straight to its cluster. Returns
/// how many gateways got it.
pub fn send(d: &mut Delivery<'_>, msg: &Message<'_>, served: &[&[u8]]) -> usize {
    let gw = &d.server.gateway;
    if msg.subject.is_empty() {
        return 0;
    }
    let conns: Vec<Arc<GwConn>> = gw.out.read().clone();
    if conns.is_empty() {
        return 0;
    }
    let acc = d.account.name.as_str();
    let direct = is_routed_reply(msg.subject);
    let mut groups: Vec<Box<[u8]>> = Vec::new();
    let mut sent_groups: Vec<Box<[u8]>> = Vec::new();
    let mut mapped: Option<Option<Vec<u8>>> = None;
    let mut sent = 0;
    for gc in &conns {
        groups.clear();
        if direct {
            let dst = &msg.subject[CLUSTER_OFFSET..CLUSTER_OFFSET + HASH_LEN];
            let ok = gc.remote.lock().as_ref().is_some_and(|r| r.hash == dst);
            if !ok {
                continue;
            }
        } else {
            let mut found = Vec::new();
            let psi = gc.interest(acc, msg.subject, &mut found);
            for q in found {
                if served.contains(&&*q) || sent_groups.contains(&q) {
                    continue;
                }
                sent_groups.push(q.clone());
                groups.push(q);
            }
            if !psi && groups.is_empty() {
                continue;
            }
        }
        let reply = match msg.reply {
            None => None,
            Some(r) => {
                let m = mapped.get_or_insert_with(|| {
                    gw.should_map_reply(acc, r).then(|| {
                        let mut v = gw.reply_prefix.clone();
                        v.extend_from_slice(r);
                        v
                    })
                });
                Some(m.as_deref().unwrap_or(r))
            }
        };
        let client = &gc.client;
        let headers = if client.headers.load(Ordering::Relaxed) {
            msg.headers
        } else {
            None
        };
        let size = headers.map_or(0, |h| h.len()) + msg.payload.len();
        let written = crate::deliver::append_msg(d, client, size, |buf| {
            let start = buf.len();
            proto::rmsg(
                buf,
                acc.as_bytes(),
                msg.subject,
                reply,
                groups.iter().map(|g| &**g),
                headers,
                msg.payload,
            );
            trace_line(client, &buf[start..]);
        });
        if written {
            sent += 1;
        }
    }
    sent
}

fn trace_line(client: &Client, line: &[u8]) {
    if crate::logging::trace_enabled() {
        let end = line.iter().position(|b| *b == b'\r').unwrap_or(line.len());
        tracing::trace!(
            "{} - ->> [{}]",
            client.prefix(),
            String::from_utf8_lossy(&line[..end])
        );
    }
}

/// Mapped replies a client received (reply without the prefix → the mapped one), kept
/// 2 s: when the client answers, the answer goes straight back to the requester's cluster.
#[derive(Default)]
pub struct ReplyMap {
    any: AtomicBool,
    map: Mutex<HashMap<Box<[u8]>, Stamped>>,
}

impl ReplyMap {
    pub fn track(&self, mapped: &[u8]) {
        let mut m = self.map.lock();
        let now = Instant::now();
        if m.len() > 64 {
            m.retain(|_, (_, t)| now.duration_since(*t) < RECENT);
        }
        m.insert(mapped[SUBJECT_OFFSET..].into(), (mapped.into(), now));
        self.any.store(true, Ordering::Relaxed);
    }

    /// The mapped subject for a publish on `subject`, if the client got one recently.
    pub fn get(&self, subject: &[u8]) -> Option<Box<[u8]>> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let mut m = self.map.lock();
        let now = Instant::now();
        m.retain(|_, (_, t)| now.duration_since(*t) < RECENT);
        if m.is_empty() {
            self.any.store(false, Ordering::Relaxed);
        }
        m.get(subject).map(|(s, _)| s.clone())
    }
}

/// A client answered a mapped reply: the answer goes, on the mapped subject, to the
/// gateway of the requester's cluster and to our hubs (leaf connections we dialled), which
/// send it on to that cluster (the reference's `handleGWReplyMap` and `gwLeafSubs`).
pub fn send_mapped_reply(d: &mut Delivery<'_>, msg: &Message<'_>, mapped: &[u8]) {
    let m = Message {
        subject: mapped,
        ..*msg
    };
    if d.server.leafs.num_leafs() > 0 {
        for c in d.server.leafs.conns() {
            if !crate::leaf::is_spoke(&c) || !Arc::ptr_eq(&*c.account.read(), d.account) {
                continue;
            }
            let headers = if c.headers.load(Ordering::Relaxed) {
                m.headers
            } else {
                None
            };
            let size = headers.map_or(0, |h| h.len()) + m.payload.len();
            crate::deliver::append_msg(d, &c, size, |buf| {
                let start = buf.len();
                proto::lmsg(
                    buf,
                    m.subject,
                    m.reply,
                    std::iter::empty::<&[u8]>(),
                    headers,
                    m.payload,
                );
                trace_line(&c, &buf[start..]);
            });
        }
    }
    send(d, &m, &[]);
}

/// A message on a mapped reply subject arrived (from a gateway, or from a route that the
/// receiving server forwarded it on): for another cluster it is dropped; for another
/// server of this cluster it goes over the route to it; here it is delivered with the
/// original subject (and offered to other gateways, as the reference does).
pub fn handle_routed_reply(
    server: &Arc<Server>,
    from: &Arc<Client>,
    cache: &mut crate::accounts::MatchCache,
    flush: &mut crate::deliver::FlushSet,
    account: &[u8],
    msg: &Message<'_>,
) {
    let gw = &server.gateway;
    let subj = msg.subject;
    if subj[CLUSTER_OFFSET..CLUSTER_OFFSET + HASH_LEN] != gw.cluster_hash {
        return;
    }
    let srv = &subj[SERVER_OFFSET..SERVER_OFFSET + HASH_LEN];
    if from.kind == Kind::Gateway && srv != gw.server_hash {
        if let Some(route) = server.cluster.route_by_hash(srv) {
            let c = &route.client;
            let headers = if c.headers.load(Ordering::Relaxed) {
                msg.headers
            } else {
                None
            };
            let mut b = Vec::with_capacity(subj.len() + msg.payload.len() + 64);
            proto::rmsg(
                &mut b,
                account,
                subj,
                msg.reply,
                std::iter::empty(),
                headers,
                msg.payload,
            );
            trace_line(c, &b);
            flush.queue(c, &b);
            return;
        }
    }
    let real = &subj[SUBJECT_OFFSET..];
    let Some((acc, result)) = cache.get_named(&server.accounts, account, real) else {
        if from.kind == Kind::Gateway {
            if let Some(gc) = gw.conns.lock().get(&from.cid).cloned() {
                conn::send_account_no_interest(&gc, account);
            }
        }
        return;
    };
    let m = Message {
        subject: real,
        ..*msg
    };
    let mut d = Delivery::new(server, &acc, from, true, flush);
    if !result.is_empty() {
        crate::deliver::deliver(&mut d, &m, &result, None);
    }
    if !real.starts_with(b"_R_.") {
        send(&mut d, &m, &[]);
    }
}

/// Whether a subscription of `client` takes part in the gateway interest tally.
#[inline]
pub fn counts(sub_client: &Client, local_only: bool) -> bool {
    sub_client.kind != Kind::Gateway && !local_only
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_hash_matches_the_reference() {
        // The reference mapped replies of cluster "B" to `_GR_.b2oh2L.…`.
        assert_eq!(&hash6("B"), b"b2oh2L");
        assert!(is_routed_reply(b"_GR_.b2oh2L.VWuTa5._INBOX.x"));
        assert!(!is_routed_reply(b"_GR_.b2oh2L.VWuTa5."));
        assert!(!is_routed_reply(b"_INBOX.x"));
    }

    #[test]
    fn command_info_as_the_reference() {
        let info = GatewayInfo {
            gateway: "B".into(),
            gateway_cmd: CMD_ALL_SUBS_START,
            gateway_cmd_payload: Some(b"$G".to_vec()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"server_id":"","server_name":"","version":"","proto":0,"go":"","host":"","port":0,"headers":false,"max_payload":0,"gateway":"B","gateway_cmd":2,"gateway_cmd_payload":"JEc="}"#
        );
        let back: GatewayInfo = serde_json::from_str(
            r#"{"server_id":"","gateway":"B","gateway_cmd":3,"gateway_cmd_payload":"JFNZUw==","gateway_urls":null}"#,
        )
        .unwrap();
        assert_eq!(back.gateway_cmd_payload.as_deref(), Some(&b"$SYS"[..]));
        assert!(back.gateway_urls.is_empty());
    }
}
