//! Cluster membership: the route listener, soliciting configured routes with retries,
//! gossip (implicit routes), duplicate and self-route resolution, the registry of routes
//! by remote server id, the aggregated local interest announced to peers, and the
//! `connect_urls` clients are told about.

use crate::client::{Client, ClosedState};
use crate::route::{self, Route, RouteUrl};
use crate::server::{host_port, Server};
use nats_common::info::{RouteConnectInfo, ServerInfo};
use nats_common::proto;
use parking_lot::{Mutex, RwLock};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, error, info, warn};

/// Dial timeout for route connections.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between attempts to reach a route.
const CONNECT_RETRY: Duration = Duration::from_secs(1);
/// A failing configured route is reported at ERR on the first attempt and then once per
/// this many attempts (the rest at DBG).
const CONNECT_ERROR_REPORTS: u64 = 3600;
/// After a working route drops, each failed attempt is reported.
const RECONNECT_ERROR_REPORTS: u64 = 1;

/// A snapshot of one registered route, for monitoring (/routez).
#[derive(Clone)]
pub struct RouteInfo {
    pub rid: u64,
    pub remote_id: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    /// The peer's address of this connection.
    pub ip: String,
    pub port: u16,
    pub start: SystemTime,
    /// Unix nanoseconds.
    pub last_activity: u64,
    pub rtt: Option<Duration>,
    pub pending_size: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    /// The peer's server name.
    pub remote_name: String,
    /// The peer's interest: (account, subject, queue group).
    pub subscriptions: Vec<(String, String, Option<String>)>,
    /// The route's connection handle.
    pub client: Arc<Client>,
}

/// (account, subject, queue group) of local interest.
type InterestKey = (Box<str>, Box<[u8]>, Option<Box<[u8]>>);

pub struct Cluster {
    /// Clustering is configured (a cluster port is set).
    enabled: bool,
    name: RwLock<String>,
    dynamic: AtomicBool,
    listen: OnceLock<SocketAddr>,
    /// Registered routes by remote server id.
    routes: Mutex<HashMap<String, Arc<Route>>>,
    /// Every live route connection by rid, registered or not.
    conns: Mutex<HashMap<u64, Arc<Route>>>,
    /// Local interest: subscriber counts per (account, subject, queue group).
    local: Mutex<HashMap<InterestKey, u32>>,
    /// Route URLs found to point at ourselves.
    self_urls: Mutex<HashSet<String>>,
    /// Server ids an implicit route is being dialled to.
    dialing: Mutex<HashSet<String>>,
    accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// `cluster.permissions.import`: only interest in these subjects is announced.
    import: Option<crate::options::SubjectPermission>,
}

/// Whether `subject` passes a cluster permission (no rules: everything passes).
pub fn permitted(perm: &Option<crate::options::SubjectPermission>, subject: &[u8]) -> bool {
    let Some(p) = perm else { return true };
    let hit = |pats: &[String]| {
        pats.iter()
            .any(|pat| nats_common::subject::matches(pat.as_bytes(), subject))
    };
    (p.allow.is_empty() || hit(&p.allow)) && !hit(&p.deny)
}

fn info_perm(
    p: &Option<crate::options::SubjectPermission>,
) -> Option<nats_common::info::SubjectPermission> {
    p.as_ref().map(|p| nats_common::info::SubjectPermission {
        allow: p.allow.clone(),
        deny: p.deny.clone(),
    })
}

impl Cluster {
    pub fn new(opts: &crate::options::Options) -> Cluster {
        let enabled = opts.cluster.port != 0;
        // As the reference does when the server is created: a cluster without a name gets a
        // generated one, shown in the banner, INFO and /varz until the cluster agrees on one.
        let dynamic = enabled && opts.cluster.name.is_empty();
        let name = if dynamic {
            dynamic_name()
        } else {
            opts.cluster.name.clone()
        };
        Cluster {
            enabled,
            name: RwLock::new(name),
            dynamic: AtomicBool::new(dynamic),
            listen: OnceLock::new(),
            routes: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            self_urls: Mutex::new(HashSet::new()),
            dialing: Mutex::new(HashSet::new()),
            accept_task: Mutex::new(None),
            import: opts.cluster.import.clone(),
        }
    }

    /// The cluster name in force: configured, generated, or adopted from peers (empty
    /// when clustering is off and no name was given).
    pub fn name(&self) -> String {
        self.name.read().clone()
    }

    pub fn is_dynamic(&self) -> bool {
        self.dynamic.load(Ordering::Relaxed)
    }

    /// The bound route listener address.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.get().copied()
    }

    /// Snapshots of the registered routes, ordered by rid.
    pub fn route_infos(&self) -> Vec<RouteInfo> {
        let routes: Vec<Arc<Route>> = self.routes.lock().values().cloned().collect();
        let mut out: Vec<RouteInfo> = routes
            .iter()
            .map(|r| {
                let c = &r.client;
                let meta = c.meta.lock().clone();
                let (out_msgs, out_bytes) = {
                    let st = c.out.lock();
                    (st.msgs, st.bytes)
                };
                let mut subscriptions: Vec<(String, String, Option<String>)> = c
                    .subs
                    .lock()
                    .values()
                    .map(|s| {
                        (
                            s.account.name.clone(),
                            String::from_utf8_lossy(&s.subject).into_owned(),
                            s.queue
                                .as_ref()
                                .map(|q| String::from_utf8_lossy(q).into_owned()),
                        )
                    })
                    .collect();
                subscriptions.sort();
                RouteInfo {
                    rid: c.cid,
                    remote_id: meta.remote_id,
                    remote_name: r
                        .remote
                        .lock()
                        .as_ref()
                        .map(|i| i.server_name.clone())
                        .unwrap_or_default(),
                    did_solicit: r.solicited.load(Ordering::Relaxed),
                    is_configured: r.configured.load(Ordering::Relaxed),
                    ip: c.addr.ip().to_string(),
                    port: c.addr.port(),
                    start: c.start,
                    last_activity: c.last_activity.load(Ordering::Relaxed),
                    rtt: meta.rtt,
                    pending_size: c.out.pending(),
                    in_msgs: c.in_msgs.load(Ordering::Relaxed),
                    out_msgs,
                    in_bytes: c.in_bytes.load(Ordering::Relaxed),
                    out_bytes,
                    subscriptions,
                    client: c.clone(),
                }
            })
            .collect();
        out.sort_by_key(|r| r.rid);
        out
    }

    // ---- local interest -------------------------------------------------------------

    /// Local interest changed by `delta` subscriptions (queue members) (called under its
    /// account's index write lock, so counts and the RS+/RS- sent follow the index exactly).
    /// `origin`: the leaf cluster of a leaf's interest, announced as `LS+ origin ...` so
    /// peers do not hand it back to that cluster (the reference's form).
    pub fn local_sub_delta(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        delta: i64,
        origin: Option<&str>,
    ) {
        if delta > 0 {
            self.local_sub_added(account, subject, queue, delta as u32, origin);
        } else if delta < 0 {
            self.local_sub_removed(account, subject, queue, (-delta) as u32, origin);
        }
    }

    fn local_sub_added(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        by: u32,
        origin: Option<&str>,
    ) {
        if !self.enabled {
            return;
        }
        let mut local = self.local.lock();
        let n = local
            .entry((account.into(), subject.into(), queue.map(Into::into)))
            .or_insert(0);
        let first = *n == 0;
        *n += by;
        let n = *n;
        if !permitted(&self.import, subject) {
            return;
        }
        let mut line = Vec::with_capacity(subject.len() + 32);
        let acc = account.as_bytes();
        let plus = |line: &mut Vec<u8>, q: Option<(&[u8], u32)>| match origin {
            Some(o) => proto::ls_route(line, o.as_bytes(), acc, subject, q),
            None => proto::rs_plus(line, acc, subject, q),
        };
        match queue {
            None if first => plus(&mut line, None),
            None => return,
            Some(q) => plus(&mut line, Some((q, n))),
        }
        self.send_to_routes(&line);
    }

    fn local_sub_removed(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        by: u32,
        origin: Option<&str>,
    ) {
        if !self.enabled {
            return;
        }
        let mut local = self.local.lock();
        let key = (
            Box::<str>::from(account),
            Box::<[u8]>::from(subject),
            queue.map(Box::<[u8]>::from),
        );
        let Some(n) = local.get_mut(&key) else {
            return;
        };
        *n = n.saturating_sub(by);
        let n = *n;
        if n == 0 {
            local.remove(&key);
        }
        if !permitted(&self.import, subject) {
            return;
        }
        let mut line = Vec::with_capacity(subject.len() + 32);
        let acc = account.as_bytes();
        let minus = |line: &mut Vec<u8>, q: Option<&[u8]>| match origin {
            Some(_) => proto::ls_route_minus(line, acc, subject, q),
            None => proto::rs_minus(line, acc, subject, q),
        };
        match queue {
            None if n == 0 => minus(&mut line, None),
            None => return,
            Some(q) if n == 0 => minus(&mut line, Some(q)),
            Some(q) => match origin {
                Some(o) => proto::ls_route(&mut line, o.as_bytes(), acc, subject, Some((q, n))),
                None => proto::rs_plus(&mut line, acc, subject, Some((q, n))),
            },
        }
        self.send_to_routes(&line);
    }

    /// Queues one interest line on every registered route (caller holds `local`).
    fn send_to_routes(&self, line: &[u8]) {
        for r in self.routes.lock().values() {
            route::trace_out(&r.client, line);
            r.client.out.send(line);
        }
    }

    /// Everything we are interested in, as RS+ lines.
    fn interest_dump(&self, local: &HashMap<InterestKey, u32>) -> Vec<u8> {
        let mut b = Vec::new();
        for ((acc, subj, queue), n) in local.iter() {
            if *n == 0 || !permitted(&self.import, subj) {
                continue;
            }
            match queue {
                None => proto::rs_plus(&mut b, acc.as_bytes(), subj, None),
                Some(q) => proto::rs_plus(&mut b, acc.as_bytes(), subj, Some((q, *n))),
            }
        }
        b
    }

    // ---- handshake pieces -----------------------------------------------------------

    /// Host and port peers should dial: `cluster.advertise`, else the listener.
    fn advertised_route_addr(&self, server: &Server) -> (String, u16, bool) {
        let opts = server.opts();
        let port = self.listen.get().map_or(0, |a| a.port());
        if !opts.cluster.advertise.is_empty() {
            let adv = opts
                .cluster
                .advertise
                .split_once("://")
                .map_or(opts.cluster.advertise.as_str(), |(_, r)| r);
            if let Some((h, p)) = crate::cli::split_host_port(adv) {
                if let Ok(p) = p.parse() {
                    return (h.to_string(), p, true);
                }
            }
            return (adv.to_string(), port, true);
        }
        let host = if opts.cluster.host.is_empty() {
            crate::options::DEFAULT_HOST.to_string()
        } else {
            opts.cluster.host.clone()
        };
        (host, port, false)
    }

    /// Our INFO for a new route connection.
    fn route_info(&self, server: &Server) -> ServerInfo {
        let opts = server.opts();
        let (host, port, advertised) = self.advertised_route_addr(server);
        let tls = opts.cluster.tls.is_some();
        ServerInfo {
            server_id: server.id.clone(),
            server_name: server.name.clone(),
            version: crate::server::VERSION.to_string(),
            proto: 2,
            go: crate::server::RUNTIME.to_string(),
            ip: if advertised {
                format!("nats-route://{}/", host_port(&host, port))
            } else {
                String::new()
            },
            host,
            port,
            headers: true,
            auth_required: !opts.cluster.username.is_empty(),
            tls_required: tls,
            tls_verify: tls,
            max_payload: opts.max_payload as i64,
            nonce: nonce(),
            cluster: self.name(),
            cluster_dynamic: self.is_dynamic(),
            connect_urls: if opts.cluster.no_advertise {
                Vec::new()
            } else {
                server.own_client_urls()
            },
            ws_connect_urls: if opts.cluster.no_advertise {
                Vec::new()
            } else {
                server.own_ws_urls()
            },
            lnoc: true,
            leafnode_urls: server.leafs.own_url(server).map(|u| vec![u]),
            import: info_perm(&opts.cluster.import),
            export: info_perm(&opts.cluster.export),
            ..Default::default()
        }
    }

    /// Tells every peer this server entered lame-duck mode (INFO with `ldm`), so they stop
    /// advertising its client URLs.
    pub fn announce_lame_duck(&self, server: &Server) {
        let mut info = self.route_info(server);
        info.ldm = true;
        info.nonce.clear();
        let json = serde_json::to_vec(&info).unwrap_or_default();
        let mut line = Vec::with_capacity(json.len() + 8);
        nats_common::proto::info(&mut line, &json);
        let routes: Vec<Arc<Route>> = self.routes.lock().values().cloned().collect();
        for r in routes {
            r.client.out.send(&line);
        }
    }

    pub fn info_json(&self, server: &Server) -> Vec<u8> {
        let mut v = serde_json::to_vec(&self.route_info(server)).unwrap_or_default();
        // Route peers learn this server's gateway URL (they pass it on to other clusters).
        let gw = server.gateway.url.lock().clone();
        if !gw.is_empty() && v.last() == Some(&b'}') {
            v.pop();
            v.extend_from_slice(b",\"gateway_url\":");
            v.extend_from_slice(&serde_json::to_vec(&gw).unwrap_or_default());
            v.push(b'}');
        }
        v
    }

    /// The CONNECT a solicitor sends, with the URL's credentials.
    pub fn connect_json(&self, server: &Server, route: &Route) -> Vec<u8> {
        let opts = server.opts();
        let url = route.url.lock().clone();
        let (user, pass) = match url {
            Some(u) => (u.user, u.pass),
            None => (None, None),
        };
        let ci = RouteConnectInfo {
            echo: true,
            verbose: false,
            pedantic: false,
            user,
            pass,
            tls_required: opts.cluster.tls.is_some(),
            headers: true,
            name: server.id.clone(),
            cluster: self.name(),
            cluster_dynamic: self.is_dynamic(),
            lnoc: true,
            lang: None,
            gateway: None,
        };
        serde_json::to_vec(&ci).unwrap_or_default()
    }

    /// Checks a peer's cluster name; a dynamically named server adopts a configured or
    /// higher-sorting name (dropping its other routes so they reconnect under it).
    /// False when the connection was closed.
    pub fn accept_cluster_name(
        &self,
        server: &Arc<Server>,
        route: &Arc<Route>,
        remote: &str,
        remote_dynamic: bool,
    ) -> bool {
        let ours = self.name();
        if remote.is_empty() || remote == ours {
            return true;
        }
        if self.is_dynamic() && (!remote_dynamic || ours.as_str() < remote) {
            info!("Cluster name updated to {remote}");
            // Still dynamic afterwards, as on the reference (a name not configured here).
            *self.name.write() = remote.to_string();
            self.remove_all_routes_except(route);
            server.broadcast_info();
            return true;
        }
        let c = &route.client;
        if route.solicited.load(Ordering::Relaxed) {
            c.close(ClosedState::ClusterNameConflict);
        } else {
            let txt =
                format!("Rejecting connection, cluster name {remote:?} does not match {ours:?}");
            error!("{} - {txt}", c.prefix());
            c.send_err(&txt);
            c.close(ClosedState::ClusterNameConflict);
            error!("{} - cluster name from remote server conflicts", c.prefix());
        }
        false
    }

    fn remove_all_routes_except(&self, keep: &Arc<Route>) {
        let all: Vec<Arc<Route>> = self.conns.lock().values().cloned().collect();
        for r in all {
            if !Arc::ptr_eq(&r, keep) {
                r.client.close(ClosedState::ClusterNameConflict);
            }
        }
    }

    // ---- registration ---------------------------------------------------------------

    /// Handles the first INFO of a route: self and duplicate detection, cluster name,
    /// registration, the interest dump, gossip to the other routes, and the clients'
    /// connect_urls. False when the connection was closed.
    pub fn register(&self, server: &Arc<Server>, route: &Arc<Route>, info: ServerInfo) -> bool {
        let c = &route.client;
        let solicited = route.solicited.load(Ordering::Acquire);
        if info.server_id == server.id {
            // Remembered so it is never dialled again; logged when the connection has
            // closed (route_closed), where the reference logs it.
            if let Some(u) = route.url.lock().as_ref() {
                self.self_urls.lock().insert(u.raw.clone());
            }
            c.meta.lock().remote_id = info.server_id.clone();
            *route.remote.lock() = Some(info);
            c.close(ClosedState::DuplicateRoute);
            return false;
        }
        if !self.accept_cluster_name(server, route, &info.cluster, info.cluster_dynamic) {
            *route.remote.lock() = Some(info);
            return false;
        }
        if !solicited && !info.server_name.is_empty() && info.server_name == server.name {
            error!(
                "{} - Remote server has a duplicate name: {:?}",
                c.prefix(),
                info.server_name
            );
            *route.remote.lock() = Some(info);
            c.close(ClosedState::DuplicateServerName);
            return false;
        }
        c.headers.store(info.headers, Ordering::Relaxed);
        c.meta.lock().remote_id = info.server_id.clone();
        let id = info.server_id.clone();
        *route.remote.lock() = Some(info.clone());
        let others: Vec<Arc<Route>> = {
            let local = self.local.lock();
            let mut routes = self.routes.lock();
            if let Some(existing) = routes.get(&id) {
                debug!("{} - Detected duplicate remote route {:?}", c.prefix(), id);
                if solicited && !existing.solicited.load(Ordering::Acquire) {
                    // Keep the URL so the surviving connection is re-dialled if lost.
                    existing.solicited.store(true, Ordering::Release);
                    existing
                        .configured
                        .store(route.configured.load(Ordering::Relaxed), Ordering::Release);
                    existing.retry.store(true, Ordering::Release);
                    *existing.url.lock() = route.url.lock().clone();
                }
                drop(routes);
                drop(local);
                c.close(ClosedState::DuplicateRoute);
                return false;
            }
            if c.is_closed() {
                return false;
            }
            debug!("{} - Registering remote route {:?}", c.prefix(), id);
            routes.insert(id.clone(), route.clone());
            route.registered.store(true, Ordering::Release);
            // Registered routes are listed with the connections (monitoring, shutdown).
            server.clients.lock().insert(c.cid, c.clone());
            let dump = self.interest_dump(&local);
            // Not traced line by line: the reference sends this dump untraced.
            if !dump.is_empty() {
                c.out.send(&dump);
            }
            debug!("{} - Sent local subscriptions to route", c.prefix());
            crate::gateway::conn::route_registered(server, c);
            routes
                .iter()
                .filter(|(k, _)| **k != id)
                .map(|(_, r)| r.clone())
                .collect()
        };
        if !others.is_empty() {
            // Tell the other members about the newcomer so they connect to it.
            let mut gossip = info;
            gossip.nonce.clear();
            if gossip.ip.is_empty() {
                gossip.ip = format!(
                    "nats-route://{}/",
                    host_port(&c.addr.ip().to_string(), gossip.port)
                );
            }
            let json = serde_json::to_vec(&gossip).unwrap_or_default();
            let mut line = Vec::with_capacity(json.len() + 8);
            line.extend_from_slice(b"INFO ");
            line.extend_from_slice(&json);
            line.extend_from_slice(b"\r\n");
            // Untraced, as the reference forwards it.
            for r in others {
                r.client.out.send(&line);
            }
        }
        self.refresh_connect_urls(server);
        true
    }

    /// A peer's later INFO about itself: new connect_urls, or lame-duck mode.
    pub fn peer_updated(&self, server: &Arc<Server>, route: &Arc<Route>, info: ServerInfo) {
        {
            let mut remote = route.remote.lock();
            if let Some(r) = remote.as_mut() {
                r.connect_urls = info.connect_urls;
                r.ws_connect_urls = info.ws_connect_urls;
                r.ldm = info.ldm;
            }
        }
        self.refresh_connect_urls(server);
    }

    /// An INFO about another server arrived on an established route: connect to it unless
    /// it is us, already connected, or one of our configured routes.
    pub fn implicit_route_hint(&self, server: &Arc<Server>, _via: &Arc<Route>, info: ServerInfo) {
        let id = info.server_id.clone();
        if id == server.id || self.routes.lock().contains_key(&id) {
            return;
        }
        let target = if !info.ip.is_empty() {
            info.ip.clone()
        } else {
            format!("nats-route://{}/", host_port(&info.host, info.port))
        };
        let Some(mut url) = RouteUrl::parse(&target) else {
            debug!("Ignoring implicit route with bad URL {target:?}");
            return;
        };
        let opts = server.opts();
        let explicit =
            opts.cluster.routes.iter().any(|r| {
                RouteUrl::parse(r).is_some_and(|u| u.host == url.host && u.port == url.port)
            });
        if explicit {
            return;
        }
        if !self.dialing.lock().insert(id.clone()) {
            return;
        }
        if info.auth_required && !opts.cluster.username.is_empty() {
            url.user = Some(opts.cluster.username.clone());
            url.pass = Some(opts.cluster.password.clone());
        }
        let s = server.clone();
        tokio::spawn(async move {
            connect_to_route(s.clone(), url, false, false).await;
            s.cluster.dialing.lock().remove(&id);
        });
    }

    /// A route connection ended: unregister it, update clients, and decide on reconnect.
    pub fn route_closed(&self, server: &Arc<Server>, route: &Arc<Route>, reason: ClosedState) {
        let c = &route.client;
        self.conns.lock().remove(&c.cid);
        if route.registered.load(Ordering::Acquire) {
            server.clients.lock().remove(&c.cid);
        }
        let id = route.remote_id();
        let was_registered = {
            let mut routes = self.routes.lock();
            match routes.get(&id) {
                Some(r) if Arc::ptr_eq(r, route) => {
                    routes.remove(&id);
                    true
                }
                _ => false,
            }
        };
        if was_registered {
            self.refresh_connect_urls(server);
            let leaf_url = route
                .remote
                .lock()
                .as_ref()
                .and_then(|i| i.leafnode_urls.as_ref())
                .filter(|u| u.len() == 1)
                .map(|u| u[0].clone());
            if let Some(u) = leaf_url {
                server.leafs.route_url(server, &u, false);
            }
        }
        if server.is_shutting_down() {
            return;
        }
        let url = route.url.lock().clone();
        let Some(url) = url else { return };
        if !route.solicited.load(Ordering::Acquire) {
            return;
        }
        if id == server.id {
            debug!("Detected route to self, ignoring {:?}", url.redacted());
            return;
        }
        if self.self_urls.lock().contains(&url.raw) {
            return;
        }
        if !id.is_empty() && self.routes.lock().contains_key(&id) {
            debug!("Not attempting reconnect for solicited route, already connected to {id:?}");
            return;
        }
        let configured = route.configured.load(Ordering::Acquire);
        if !configured && !route.retry.load(Ordering::Acquire) {
            return;
        }
        let _ = reason;
        debug!(
            "Attempting reconnect for solicited route {:?}",
            url.redacted()
        );
        let s = server.clone();
        tokio::spawn(async move {
            // A little randomness keeps two servers that both lost the route from
            // re-dialling in lockstep and dropping each other as duplicates again.
            let jitter = Duration::from_millis(rand::thread_rng().gen_range(0..100));
            tokio::time::sleep(CONNECT_RETRY + jitter).await;
            connect_to_route(s, url, configured, true).await;
        });
    }

    /// Rebuilds the clients' connect_urls (own first, then every peer's) and tells
    /// clients when they changed.
    fn refresh_connect_urls(&self, server: &Server) {
        let mut urls = server.own_client_urls();
        let own = urls.len();
        let mut ws_urls = server.own_ws_urls();
        let own_ws = ws_urls.len();
        {
            let routes = self.routes.lock();
            let mut peers: Vec<&Arc<Route>> = routes.values().collect();
            peers.sort_by_key(|r| r.client.cid);
            for r in peers {
                if let Some(info) = r.remote.lock().as_ref() {
                    if info.ldm {
                        continue;
                    }
                    for u in &info.connect_urls {
                        if !urls.contains(u) {
                            urls.push(u.clone());
                        }
                    }
                    for u in &info.ws_connect_urls {
                        if !ws_urls.contains(u) {
                            ws_urls.push(u.clone());
                        }
                    }
                }
            }
        }
        if urls.len() > own {
            server.peer_urls_seen.store(true, Ordering::Relaxed);
        }
        let mut changed = {
            let mut cur = server.connect_urls.write();
            if *cur != urls {
                *cur = urls;
                true
            } else {
                false
            }
        };
        // Websocket URLs are announced once some peer has any, as on the reference.
        {
            let mut cur = server.ws_connect_urls.write();
            if (ws_urls.len() > own_ws || !cur.is_empty()) && *cur != ws_urls {
                *cur = ws_urls;
                changed = true;
            }
        }
        if changed {
            server.broadcast_info();
        }
    }

    /// Closes every route connection (server shutdown) and stops dialling.
    /// The registered routes.
    pub fn registered_routes(&self) -> Vec<Arc<Route>> {
        self.routes.lock().values().cloned().collect()
    }

    /// The registered route to the server whose id hashes to `hash` (mapped gateway
    /// replies name their origin server this way).
    pub fn route_by_hash(&self, hash: &[u8]) -> Option<Arc<Route>> {
        self.routes
            .lock()
            .iter()
            .find(|(id, _)| crate::gateway::hash6(id) == hash)
            .map(|(_, r)| r.clone())
    }

    pub fn shutdown(&self) {
        // Only the listener is stopped by force: dialling tasks may be running a route,
        // which must close (and log) normally; they see the shutdown flag and stop.
        if let Some(t) = self.accept_task.lock().take() {
            t.abort();
            debug!("Route accept loop exiting..");
        }
        let all: Vec<Arc<Route>> = self.conns.lock().values().cloned().collect();
        for r in all {
            r.client.close(ClosedState::ServerShutdown);
        }
    }
}

fn nonce() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..15)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// A 22-character name for a cluster started without one.
fn dynamic_name() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..22)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Starts clustering if configured: names the cluster, binds the route listener and
/// starts dialling the configured routes. Called after "Server is ready", as the
/// reference logs these lines after it.
pub async fn start(server: &Arc<Server>) -> std::io::Result<()> {
    let cl = &server.cluster;
    if !cl.enabled {
        return Ok(());
    }
    let opts = server.opts();
    info!("Cluster name is {}", cl.name());
    if cl.is_dynamic() {
        warn!("Cluster name was dynamically generated, consider setting one");
    }
    let host = if opts.cluster.host.is_empty() {
        crate::options::DEFAULT_HOST.to_string()
    } else {
        opts.cluster.host.clone()
    };
    let port = if opts.cluster.port < 0 {
        0
    } else {
        opts.cluster.port as u16
    };
    let bind = host_port(&host, port);
    let listener = crate::netutil::listen(&bind).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "Error listening on router port: {} - listen tcp {bind}: {}",
                opts.cluster.port,
                crate::netutil::go_listen_error(&e)
            ),
        )
    })?;
    let addr = listener.local_addr()?;
    let _ = cl.listen.set(addr);
    info!(
        "Listening for route connections on {}",
        host_port(&host, addr.port())
    );
    let s = server.clone();
    let accept = tokio::spawn(async move { accept_loop(s, listener).await });
    *cl.accept_task.lock() = Some(accept);
    for r in &opts.cluster.routes {
        let Some(url) = RouteUrl::parse(r) else {
            error!("Error parsing route URL {r:?}");
            continue;
        };
        let s = server.clone();
        tokio::spawn(async move { connect_to_route(s, url, true, false).await });
    }
    Ok(())
}

async fn accept_loop(server: Arc<Server>, listener: TcpListener) {
    crate::netutil::accept_loop(server, listener, "Route", handle_accepted).await
}

async fn handle_accepted(server: Arc<Server>, stream: TcpStream, addr: SocketAddr) {
    let (rd, wr) = match route::secure(&server, stream, false).await {
        Ok(io) => io,
        Err(e) => {
            error!("{addr} - Route accept error: {e}");
            return;
        }
    };
    let route = route::new_route(&server, addr, None, false);
    server
        .cluster
        .conns
        .lock()
        .insert(route.client.cid, route.clone());
    route::run(server, route, rd, wr).await;
}

/// Go's wording for dial errors, which the logs are compared against: the address is
/// the resolved one (`127.0.0.1:4248`, not `localhost:4248`).
pub(crate) fn dial_error_text(addr: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        let host = crate::cli::split_host_port(addr).map_or(addr, |(h, _)| h);
        return format!("dial tcp: lookup {host}: no such host");
    }
    let what = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s.to_lowercase(),
            }
        }
    };
    format!("dial tcp {addr}: {what}")
}

/// Dials `url` until it answers, then runs the route. Configured routes are tried
/// forever; implicit ones once plus `connect_retries` times.
async fn connect_to_route(server: Arc<Server>, url: RouteUrl, configured: bool, after_drop: bool) {
    let report_every = if after_drop {
        RECONNECT_ERROR_REPORTS
    } else {
        CONNECT_ERROR_REPORTS
    };
    let mut attempts: u64 = 0;
    loop {
        if server.is_shutting_down() || server.cluster.self_urls.lock().contains(&url.raw) {
            return;
        }
        attempts += 1;
        let hp = url.host_port();
        let resolved = tokio::net::lookup_host(hp.as_str())
            .await
            .ok()
            .and_then(|mut a| a.next());
        let shown = resolved.map_or(hp.clone(), |a| a.to_string());
        debug!("Trying to connect to route on {hp} ({shown})");
        let res = match resolved {
            Some(a) => match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(a)).await {
                Ok(r) => r,
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timeout")),
            },
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such host",
            )),
        };
        match res {
            Ok(stream) => {
                let addr = stream.peer_addr().unwrap_or_else(|_| {
                    resolved.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], url.port)))
                });
                let (rd, wr) = match route::secure(&server, stream, true).await {
                    Ok(io) => io,
                    Err(e) => {
                        error!("{addr} - Route connection error: {e}");
                        tokio::time::sleep(CONNECT_RETRY).await;
                        continue;
                    }
                };
                let route = route::new_route(&server, addr, Some(url), configured);
                server
                    .cluster
                    .conns
                    .lock()
                    .insert(route.client.cid, route.clone());
                route::run(server, route, rd, wr).await;
                return;
            }
            Err(e) => {
                let text = dial_error_text(&resolved.map_or(hp.clone(), |a| a.to_string()), &e);
                if attempts == 1 || attempts.is_multiple_of(report_every) {
                    error!("Error trying to connect to route (attempt {attempts}): {text}");
                } else {
                    debug!("Error trying to connect to route (attempt {attempts}): {text}");
                }
                let retries = server.opts().cluster.connect_retries as u64;
                if !configured && attempts > retries {
                    return;
                }
            }
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
}
