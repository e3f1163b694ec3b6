//! The server: listeners, the registry of connections, the accounts (each with its
//! subscription index), counters, and shutdown.

use crate::client::{self, Client, ClosedState, Kind, SubRef, Subscription};
use crate::options::Options;
use nats_common::info::ServerInfo;
use nats_common::proto;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, error, info, warn};

pub const VERSION: &str = crate::cli::VERSION;
/// Reported in the INFO `go` field, which names the runtime the server was built with.
pub const RUNTIME: &str = concat!("rust-", env!("CARGO_PKG_VERSION"));
/// How many closed connections /connz can still show.
pub const MAX_CLOSED_CLIENTS: usize = 10_000;

/// Server-wide counters, updated without locks.
#[derive(Default)]
pub struct Stats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub total_connections: AtomicU64,
}

/// A connection that has gone, kept for monitoring.
pub struct ClosedClient {
    pub client: Arc<Client>,
    pub stop: SystemTime,
    pub reason: ClosedState,
    /// Its subscriptions when it closed, for /connz `subs`.
    pub subs: Vec<Arc<Subscription>>,
}

pub struct Server {
    opts: RwLock<Arc<Options>>,
    pub id: String,
    pub name: String,
    pub start: SystemTime,
    pub start_instant: Instant,
    /// Every account, each with its own subscription index.
    pub accounts: crate::accounts::Accounts,
    /// The system account's state, unless there is no system account.
    system: OnceLock<Arc<crate::system::System>>,
    /// JetStream, when enabled.
    jetstream: OnceLock<Arc<crate::jetstream::JetStream>>,
    /// Monitoring state, for HTTP and system account requests.
    monitor: OnceLock<Arc<crate::monitor::Monitor>>,
    /// Every registered connection: clients, and routes once registered.
    pub clients: Mutex<HashMap<u64, Arc<Client>>>,
    /// How many of `clients` are client connections (changed under the `clients` lock).
    num_clients: std::sync::atomic::AtomicUsize,
    pub closed: Mutex<VecDeque<ClosedClient>>,
    next_cid: AtomicU64,
    pub stats: Stats,
    /// Client URLs announced in INFO `connect_urls` (own first, then peers').
    pub connect_urls: RwLock<Vec<String>>,
    /// Some peer's URLs have been in `connect_urls`; from then on INFO always carries them.
    pub peer_urls_seen: AtomicBool,
    pub client_addr: OnceLock<SocketAddr>,
    /// The websocket listener's address, when there is one.
    ws_addr: OnceLock<SocketAddr>,
    ws_accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Websocket URLs announced to websocket clients in INFO `connect_urls` (own first,
    /// then peers'); empty until a peer announced some, as on the reference.
    pub ws_connect_urls: RwLock<Vec<String>>,
    shutting_down: AtomicBool,
    accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Routes and cluster membership.
    pub cluster: crate::cluster::Cluster,
    /// Leaf node connections (hub and leaf sides).
    pub leafs: crate::leaf::Leafs,
    pub gateway: crate::gateway::Gateways,
}

impl Server {
    pub fn new(opts: Options) -> Arc<Server> {
        let id = nkeys::KeyPair::new_server().public_key();
        let name = if opts.server_name.is_empty() {
            id.clone()
        } else {
            opts.server_name.clone()
        };
        let accounts = crate::accounts::Accounts::new(&opts);
        let cluster = crate::cluster::Cluster::new(&opts);
        let leafs = crate::leaf::Leafs::new(&opts);
        let gateway = crate::gateway::Gateways::new(&opts, &id);
        Arc::new(Server {
            opts: RwLock::new(Arc::new(opts)),
            id,
            name,
            start: SystemTime::now(),
            start_instant: Instant::now(),
            accounts,
            system: OnceLock::new(),
            jetstream: OnceLock::new(),
            monitor: OnceLock::new(),
            clients: Mutex::new(HashMap::new()),
            num_clients: std::sync::atomic::AtomicUsize::new(0),
            closed: Mutex::new(VecDeque::new()),
            next_cid: AtomicU64::new(1),
            stats: Stats::default(),
            connect_urls: RwLock::new(Vec::new()),
            peer_urls_seen: AtomicBool::new(false),
            client_addr: OnceLock::new(),
            ws_addr: OnceLock::new(),
            ws_accept_task: Mutex::new(None),
            ws_connect_urls: RwLock::new(Vec::new()),
            shutting_down: AtomicBool::new(false),
            accept_task: Mutex::new(None),
            cluster,
            leafs,
            gateway,
        })
    }

    /// The options in force (replaced as a whole on reload).
    #[inline]
    pub fn opts(&self) -> Arc<Options> {
        self.opts.read().clone()
    }

    pub fn set_opts(&self, opts: Options) {
        *self.opts.write() = Arc::new(opts);
    }

    pub fn auth_required(&self) -> bool {
        let opts = self.opts();
        opts.auth_required() && opts.no_auth_user.is_empty()
    }

    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs the reference's start-up banner.
    pub fn log_banner(&self) {
        let opts = self.opts();
        info!("Starting nats-server");
        info!("  Version:  {VERSION}");
        info!("  Git:      [not set]");
        debug!("  Rust build: {RUNTIME}");
        let cluster = self.cluster.name();
        if !cluster.is_empty() {
            info!("  Cluster:  {cluster}");
        }
        info!("  Name:     {}", self.name);
        info!("  ID:       {}", self.id);
        if crate::auth::plaintext_warning(&opts) {
            warn!("Plaintext passwords detected, use nkeys or bcrypt");
        }
        if let Some(f) = &opts.config_file {
            info!("Using configuration file: {}", f.display());
        }
        crate::accounts::jwt::log_operators(&opts);
        if !opts.trusted_operators.is_empty() {
            crate::accounts::jwt::log_preload_issues(&opts);
        }
    }

    /// Binds the client listener and starts accepting.
    pub async fn start_clients(self: &Arc<Self>) -> std::io::Result<SocketAddr> {
        let opts = self.opts();
        let port = match opts.port {
            -1 => 0,
            0 => crate::options::DEFAULT_PORT,
            p => p as u16,
        };
        let bind = host_port(&opts.host, port);
        let listener = crate::netutil::listen(&bind).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "Error listening on port: {bind}, \"listen tcp {bind}: {}\"",
                    crate::netutil::go_listen_error(&e)
                ),
            )
        })?;
        let addr = listener.local_addr()?;
        let _ = self.client_addr.set(addr);
        info!(
            "Listening for client connections on {}",
            host_port(&opts.host, addr.port())
        );
        if opts.tls.is_some() {
            if opts.allow_non_tls {
                info!("TLS available for client connections");
            } else {
                info!("TLS required for client connections");
            }
        }
        self.refresh_own_urls();
        let me = self.clone();
        let task = tokio::spawn(async move { me.accept_loop(listener).await });
        *self.accept_task.lock() = Some(task);
        Ok(addr)
    }

    /// Stops accepting new clients (lame duck mode); existing connections stay.
    pub fn stop_accepting(&self) {
        if let Some(t) = self.accept_task.lock().take() {
            t.abort();
            debug!("Client accept loop exiting..");
        }
        if let Some(t) = self.ws_accept_task.lock().take() {
            t.abort();
        }
    }

    pub fn set_ws_addr(&self, addr: SocketAddr) {
        let _ = self.ws_addr.set(addr);
    }

    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr.get().copied()
    }

    pub fn set_ws_accept_task(&self, t: tokio::task::JoinHandle<()>) {
        *self.ws_accept_task.lock() = Some(t);
    }

    /// Registers a new client connection unless max_connections is reached (then it is
    /// not registered, as on the reference, and true is returned).
    pub fn admit_client(&self, client: &Arc<Client>) -> bool {
        let opts = self.opts();
        // Only clients count toward max_connections (routes are in the registry too).
        let too_many = {
            let mut clients = self.clients.lock();
            let n = self.num_clients.load(Ordering::Relaxed);
            if n >= opts.max_connections {
                true
            } else {
                clients.insert(client.cid, client.clone());
                self.num_clients.store(n + 1, Ordering::Relaxed);
                false
            }
        };
        self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
        debug!("{} - Client connection created", client.prefix());
        if !opts.nkeys.is_empty() || crate::accounts::jwt::trusted_mode(&opts) {
            client.meta.lock().auth.nonce = crate::auth::make_nonce();
        }
        too_many
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        crate::netutil::accept_loop(self, listener, "Client", |me, stream, addr| async move {
            me.handle_client(stream, addr).await
        })
        .await
    }

    async fn handle_client(self: Arc<Self>, stream: TcpStream, addr: SocketAddr) {
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let _ = stream.set_nodelay(true);
        let cid = self.next_cid();
        let client = Client::new(&self, cid, Kind::Client, addr);
        let opts = self.opts();
        let too_many = self.admit_client(&client);
        if let Some(t) = &opts.tls {
            let info = self.client_info(&client);
            crate::tls::serve_client(self, client, stream, info, too_many, t).await;
            return;
        }
        client.out.send(&self.client_info(&client));
        if too_many {
            error!("{} - maximum connections exceeded", client.prefix());
            client.send_err("maximum connections exceeded");
            client.close(ClosedState::MaxConnectionsExceeded);
        }
        let (rd, wr) = stream.into_split();
        client::run(self, client, rd, wr).await;
    }

    /// The INFO line for one client.
    pub fn client_info(&self, client: &Client) -> Vec<u8> {
        let mut info = self.base_info();
        info.client_id = client.cid;
        info.client_ip = client.addr.ip().to_string();
        info.nonce = client.meta.lock().auth.nonce.clone();
        self.ws_info(client, &mut info);
        let json = serde_json::to_vec(&info).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 8);
        proto::info(&mut out, &json);
        out
    }

    /// A websocket client is told the websocket URLs of the cluster.
    fn ws_info(&self, client: &Client, info: &mut ServerInfo) {
        if client.ws.get().is_some() {
            if crate::auth::ws_override(&self.opts().websocket) {
                info.auth_required = true;
            }
            info.connect_urls = if self.opts().cluster.no_advertise {
                Vec::new()
            } else {
                self.ws_connect_urls.read().clone()
            };
        }
    }

    /// An INFO sent after the first one: no nonce, and the client's own payload limit.
    pub fn async_info(&self, client: &Client) -> Vec<u8> {
        let mut info = self.base_info();
        info.client_id = client.cid;
        info.client_ip = client.addr.ip().to_string();
        let mpay = client.max_payload.load(Ordering::Relaxed);
        if mpay >= 0 {
            info.max_payload = mpay;
        }
        self.ws_info(client, &mut info);
        let json = serde_json::to_vec(&info).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 8);
        proto::info(&mut out, &json);
        out
    }

    /// Finishes accounts fetched from the resolver while the server runs: the system
    /// account's imports every account has, and the subscriptions of service imports.
    pub fn finish_accounts(self: &Arc<Self>, built: &[Arc<crate::accounts::Account>]) {
        let sys = self.accounts.system();
        for acc in built {
            if let Some(sys) = &sys {
                if !Arc::ptr_eq(sys, acc) {
                    self.accounts.add_system_imports(acc, sys);
                }
            }
            let imports = acc.service_imports.read().clone();
            for si in imports {
                let from = si.from.clone();
                self.subscribe_internal(acc, &from, client::Internal::ServiceImport(si), false);
            }
            crate::jetstream::account_built(self, acc);
        }
    }

    /// The INFO fields shared by every client.
    pub fn base_info(&self) -> ServerInfo {
        let opts = self.opts();
        let (host, port) = self.advertised_client_addr();
        let tls = opts.tls.is_some();
        ServerInfo {
            server_id: self.id.clone(),
            server_name: self.name.clone(),
            version: VERSION.to_string(),
            proto: 1,
            go: RUNTIME.to_string(),
            host,
            port,
            headers: !opts.no_header_support,
            // With no_auth_user, clients without credentials are let in as that user.
            auth_required: opts.auth_required() && opts.no_auth_user.is_empty(),
            tls_required: tls && !opts.allow_non_tls,
            tls_verify: opts.tls.as_ref().is_some_and(|t| t.verify),
            tls_available: tls && opts.allow_non_tls,
            max_payload: opts.max_payload as i64,
            jetstream: self.jetstream.get().is_some(),
            cluster: self.cluster.name(),
            connect_urls: if opts.cluster.no_advertise {
                Vec::new()
            } else {
                self.connect_urls_for_info()
            },
            ..Default::default()
        }
    }

    /// `connect_urls` appear once some peer has been known; after the last one leaves they
    /// list this server alone, which tells clients to drop the departed servers.
    fn connect_urls_for_info(&self) -> Vec<String> {
        if self.peer_urls_seen.load(Ordering::Relaxed) {
            self.connect_urls.read().clone()
        } else {
            Vec::new()
        }
    }

    /// Host and port clients are told to use: `client_advertise`, else the listener.
    pub fn advertised_client_addr(&self) -> (String, u16) {
        let opts = self.opts();
        let port = self.client_addr.get().map_or(0, |a| a.port());
        if !opts.client_advertise.is_empty() {
            if let Some((h, p)) = crate::cli::split_host_port(&opts.client_advertise) {
                if let Ok(p) = p.parse() {
                    return (h.to_string(), p);
                }
            }
            return (opts.client_advertise.clone(), port);
        }
        (opts.host.clone(), port)
    }

    /// This server's own client URLs, as `host:port` strings; with host 0.0.0.0, the
    /// machine's non-loopback addresses (the reference does the same).
    pub fn own_client_urls(&self) -> Vec<String> {
        let (host, port) = self.advertised_client_addr();
        urls_for_host(&host, port)
    }

    /// This server's websocket URLs, as `host:port` strings.
    pub fn own_ws_urls(&self) -> Vec<String> {
        crate::websocket::own_urls(self, &self.opts().websocket)
    }

    fn refresh_own_urls(&self) {
        let own = self.own_client_urls();
        let mut urls = self.connect_urls.write();
        urls.retain(|u| !own.contains(u));
        let peers = std::mem::take(&mut *urls);
        *urls = own;
        urls.extend(peers);
    }

    /// Called when a client's CONNECT was accepted.
    pub fn client_connected(&self, client: &Arc<Client>, protocol: i32) {
        client.meta.lock().protocol = protocol;
    }

    /// Called when a connected client got its first PONG: async INFO may follow.
    pub fn client_ready(&self, client: &Arc<Client>) {
        if client.meta.lock().protocol >= 1 {
            client.info_ready.store(true, Ordering::Release);
        }
    }

    /// Sends the current INFO to every client that accepts async INFO.
    /// A snapshot of the client connections (routes excluded), taken under the registry
    /// lock and used without it.
    pub fn client_conns(&self) -> Vec<Arc<Client>> {
        self.clients
            .lock()
            .values()
            .filter(|c| c.kind == Kind::Client)
            .cloned()
            .collect()
    }

    pub fn broadcast_info(&self) {
        for c in self.client_conns() {
            if c.info_ready.load(Ordering::Acquire) {
                c.out.send(&self.async_info(&c));
            }
        }
    }

    pub fn set_monitor(&self, mon: &Arc<crate::monitor::Monitor>) {
        let _ = self.monitor.set(mon.clone());
    }

    pub fn monitor(&self) -> Option<Arc<crate::monitor::Monitor>> {
        self.monitor.get().cloned()
    }

    /// The connection that owns `account`'s internal subscriptions (service imports,
    /// replies owed across accounts, the system account's requests); created on first use.
    pub fn account_client(
        self: &Arc<Self>,
        account: &Arc<crate::accounts::Account>,
    ) -> Arc<Client> {
        account
            .internal
            .get_or_init(|| {
                let addr = SocketAddr::from(([0, 0, 0, 0], 0));
                let c = Client::new(self, self.next_cid(), Kind::System, addr);
                *c.account.write() = account.clone();
                c
            })
            .clone()
    }

    /// Subscribes the server itself to `subject` in `account`, handled by `internal`;
    /// `forward`: announced to routes like a client's interest.
    pub fn subscribe_internal(
        self: &Arc<Self>,
        account: &Arc<crate::accounts::Account>,
        subject: &str,
        internal: crate::client::Internal,
        forward: bool,
    ) -> Arc<Subscription> {
        let c = self.account_client(account);
        let sid = (account.next_sid.fetch_add(1, Ordering::Relaxed) + 1).to_string();
        let mut sub = Subscription::new(&c, account, subject.as_bytes(), None, sid.as_bytes());
        sub.internal = Some(internal);
        sub.local_only = !forward;
        let sub = Arc::new(sub);
        c.subs
            .lock()
            .insert(sid.into_bytes().into_boxed_slice(), sub.clone());
        self.add_sub(&sub);
        sub
    }

    /// Publishes a message from the server itself in `account`: delivered to its local
    /// subscribers and to routes, like a client's.
    pub fn send_internal(
        self: &Arc<Self>,
        account: &Arc<crate::accounts::Account>,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let result = account.sublist.read().match_subject(subject);
        if result.is_empty() {
            return;
        }
        let c = self.account_client(account);
        let mut flush = crate::deliver::FlushSet::default();
        let msg = nats_common::proto::Message {
            subject,
            reply,
            headers,
            payload,
        };
        let mut d = crate::deliver::Delivery::new(self, account, &c, true, &mut flush);
        crate::deliver::deliver(&mut d, &msg, &result, None);
        flush.flush(self);
    }

    /// Delivers a message JetStream addresses to `dsubj` (a pull request's inbox, a push
    /// consumer's deliver subject) while showing its stream subject: this server's
    /// subscribers see `subject`; routes, leaf nodes and gateways get `dsubj`, which is
    /// what the other side matches (the reference's delivery subject). Returns how many
    /// subscriptions took it.
    pub fn deliver_as(
        self: &Arc<Self>,
        account: &Arc<crate::accounts::Account>,
        dsubj: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> usize {
        let result = account.sublist.read().match_subject(dsubj);
        if result.is_empty() {
            return 0;
        }
        let c = self.account_client(account);
        let mut flush = crate::deliver::FlushSet::default();
        let peer = |s: &crate::client::SubRef| {
            matches!(s.client.kind, Kind::Router | Kind::Leaf | Kind::Gateway)
        };
        let all_local = result.psubs.iter().all(|s| !peer(s))
            && result.qsubs.iter().all(|(_, m)| m.iter().all(|s| !peer(s)));
        // The message as local subscribers see it, and as other servers match it.
        let shown = nats_common::proto::Message {
            subject,
            reply,
            headers,
            payload,
        };
        let addressed = nats_common::proto::Message {
            subject: dsubj,
            ..shown
        };
        let mut n = 0;
        if all_local || subject == dsubj {
            let mut d = crate::deliver::Delivery::new(self, account, &c, true, &mut flush);
            d.gateways = subject == dsubj;
            n += crate::deliver::deliver(&mut d, &shown, &result, None);
            if subject != dsubj && self.gateway.active() {
                let mut d = crate::deliver::Delivery::new(self, account, &c, true, &mut flush);
                n += crate::gateway::send(&mut d, &addressed, &[]);
            }
        } else {
            let (mut local, mut far) = (
                nats_common::sublist::MatchResult::default(),
                nats_common::sublist::MatchResult::default(),
            );
            for s in &result.psubs {
                if peer(s) {
                    far.psubs.push(s.clone());
                } else {
                    local.psubs.push(s.clone());
                }
            }
            for (name, members) in &result.qsubs {
                let (f, l): (Vec<_>, Vec<_>) = members.iter().cloned().partition(|s| peer(s));
                if !l.is_empty() {
                    local.qsubs.push((name.clone(), l));
                }
                if !f.is_empty() {
                    far.qsubs.push((name.clone(), f));
                }
            }
            let mut d = crate::deliver::Delivery::new(self, account, &c, true, &mut flush);
            d.gateways = false;
            n += crate::deliver::deliver(&mut d, &shown, &local, None);
            let mut d = crate::deliver::Delivery::new(self, account, &c, true, &mut flush);
            n += crate::deliver::deliver(&mut d, &addressed, &far, None);
        }
        flush.flush(self);
        n
    }

    pub fn set_jetstream(&self, js: Arc<crate::jetstream::JetStream>) {
        let _ = self.jetstream.set(js);
    }

    pub fn jetstream(&self) -> Option<Arc<crate::jetstream::JetStream>> {
        self.jetstream.get().cloned()
    }

    pub fn set_system(&self, sys: Arc<crate::system::System>) {
        let _ = self.system.set(sys);
    }

    pub fn system(&self) -> Option<Arc<crate::system::System>> {
        self.system.get().cloned()
    }

    /// A copy of a client's subscription in each account its account imports a stream
    /// from, where the subscription overlaps the import.
    pub fn add_shadows(self: &Arc<Self>, sub: &Arc<Subscription>) {
        let imports = sub.account.stream_imports.read().clone();
        if imports.is_empty() {
            return;
        }
        let subj = String::from_utf8_lossy(&sub.subject).into_owned();
        for im in imports {
            let Some(from) = im.shadow_subject(&subj) else {
                continue;
            };
            debug!(
                "{} - Creating import subscription on {:?} from account {:?}",
                sub.client.prefix(),
                from,
                im.exporter.name
            );
            let mut shadow = Subscription::new(
                &sub.client,
                &im.exporter,
                from.as_bytes(),
                sub.queue.as_deref(),
                &sub.sid,
            );
            shadow.import = Some(im.clone());
            let shadow = Arc::new(shadow);
            self.add_sub(&shadow);
            sub.shadows.lock().push(shadow);
        }
    }

    /// Reloaded accounts: new ones appear; every account's exports, imports and mappings
    /// are replaced, with their internal subscriptions and the clients' stream-import
    /// copies. (Clients of users that went away are closed by the credentials recheck.)
    pub fn reconfigure_accounts(self: &Arc<Self>, opts: &crate::options::Options) {
        for acc in self.accounts.all() {
            let Some(c) = acc.internal.get() else {
                continue;
            };
            let old: Vec<Arc<Subscription>> = c
                .subs
                .lock()
                .values()
                .filter(|s| matches!(s.internal, Some(crate::client::Internal::ServiceImport(_))))
                .cloned()
                .collect();
            for s in old {
                self.remove_sub(&s);
            }
        }
        for a in &opts.accounts {
            self.accounts.get_or_create(&a.name);
        }
        self.accounts.configure(opts);
        for acc in self.accounts.all() {
            self.install_account_imports(&acc, opts);
        }
        for c in self.client_conns() {
            let subs: Vec<Arc<Subscription>> = c.subs.lock().values().cloned().collect();
            for s in subs {
                let shadows = std::mem::take(&mut *s.shadows.lock());
                for sh in &shadows {
                    sh.closed.store(true, Ordering::Release);
                    self.unindex(sh);
                }
                self.add_shadows(&s);
            }
        }
    }

    /// The internal subscriptions of every account's service imports, with the imports of
    /// the system account's services every other account gets (kept to this server, as
    /// the reference keeps service import subscriptions).
    pub fn install_imports(self: &Arc<Self>) {
        let opts = self.opts();
        let mut all = self.accounts.all();
        // The global account's first, as the reference sets them up.
        all.sort_by_key(|a| !Arc::ptr_eq(a, &self.accounts.global));
        for (i, acc) in all.into_iter().enumerate() {
            if i == 1 {
                // The reference's send-queue connection takes the next connection id.
                self.next_cid();
            }
            self.install_account_imports(&acc, &opts);
        }
    }

    fn install_account_imports(
        self: &Arc<Self>,
        acc: &Arc<crate::accounts::Account>,
        opts: &crate::options::Options,
    ) {
        if let Some(sys) = self.accounts.system() {
            if !Arc::ptr_eq(&sys, acc) {
                self.accounts.add_system_imports(acc, &sys);
            }
            // "Simple mixed mode": a clustered server with no accounts of its own lets its
            // global account reach the JetStream API through the system account.
            if Arc::ptr_eq(acc, &self.accounts.global)
                && opts.accounts.is_empty()
                && opts.cluster.port != 0
            {
                self.accounts.add_jetstream_import(acc, &sys);
            }
        }
        let imports = acc.service_imports.read().clone();
        for si in imports {
            let from = si.from.clone();
            self.subscribe_internal(
                acc,
                &from,
                crate::client::Internal::ServiceImport(si),
                false,
            );
        }
    }

    /// Adds a subscription to its account's index. Interest of local clients and of the
    /// server itself is announced to routes under the index lock, so it follows the
    /// index exactly.
    pub fn add_sub(&self, sub: &Arc<Subscription>) {
        let mut sl = sub.account.sublist.write();
        sl.insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone()));
        let n = Self::members(sub);
        if Self::announced_to_routes(sub) {
            self.cluster.local_sub_delta(
                &sub.account.name,
                &sub.subject,
                sub.queue.as_deref(),
                i64::from(n),
                crate::leaf::origin_of(&sub.client).as_deref(),
            );
        }
        if crate::gateway::counts(&sub.client, sub.local_only)
            && !crate::leaf::is_spoke(&sub.client)
        {
            self.gateway
                .sub_added(&sub.account.name, &sub.subject, sub.queue.as_deref());
        }
        self.leafs.sub_changed(sub, crate::leaf::sub_weight(sub));
        drop(sl);
        if sub.account.interest_waiters.load(Ordering::Relaxed) > 0 {
            sub.account.interest_changed.notify_waiters();
        }
    }

    /// How many queue members a subscription stands for (a leaf's announced weight).
    fn members(sub: &Subscription) -> u32 {
        if sub.client.kind == Kind::Leaf && sub.queue.is_some() {
            sub.weight.load(Ordering::Relaxed).max(1)
        } else {
            1
        }
    }

    /// Interest of local clients, of the server itself and of the leaf nodes we are the
    /// hub of is announced to routes.
    fn announced_to_routes(sub: &Subscription) -> bool {
        sub.client.kind != Kind::Router && !sub.local_only && !crate::leaf::is_spoke(&sub.client)
    }

    /// A route's or leaf's queue subscription now stands for `weight` members: routes (for
    /// a leaf's) and leaf nodes are told the new totals.
    pub fn sub_weight_changed(&self, sub: &Arc<Subscription>, weight: u32) {
        let _sl = sub.account.sublist.write();
        let old = sub.weight.swap(weight.max(1), Ordering::AcqRel);
        let delta = i64::from(weight.max(1)) - i64::from(old.max(1));
        if delta == 0 {
            return;
        }
        if sub.client.kind == Kind::Leaf && Self::announced_to_routes(sub) {
            self.cluster.local_sub_delta(
                &sub.account.name,
                &sub.subject,
                sub.queue.as_deref(),
                delta,
                crate::leaf::origin_of(&sub.client).as_deref(),
            );
        }
        self.leafs.sub_changed(sub, delta as i32);
    }

    /// Removes a subscription (and its stream-import copies) from its account's index and
    /// its owner's table; idempotent.
    pub fn remove_sub(&self, sub: &Arc<Subscription>) {
        if sub.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut subs = sub.client.subs.lock();
            if subs.get(&sub.sid).is_some_and(|s| Arc::ptr_eq(s, sub)) {
                subs.remove(&sub.sid);
            }
        }
        self.unindex(sub);
        let shadows = std::mem::take(&mut *sub.shadows.lock());
        for s in &shadows {
            s.closed.store(true, Ordering::Release);
            self.unindex(s);
        }
    }

    fn unindex(&self, sub: &Arc<Subscription>) {
        let mut sl = sub.account.sublist.write();
        let removed = sl.remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()));
        if removed {
            let n = Self::members(sub);
            if Self::announced_to_routes(sub) {
                self.cluster.local_sub_delta(
                    &sub.account.name,
                    &sub.subject,
                    sub.queue.as_deref(),
                    -i64::from(n),
                    crate::leaf::origin_of(&sub.client).as_deref(),
                );
            }
            self.leafs.sub_changed(sub, -crate::leaf::sub_weight(sub));
            if sub.account.interest_waiters.load(Ordering::Relaxed) > 0 {
                sub.account.interest_changed.notify_waiters();
            }
        }
        if removed
            && crate::gateway::counts(&sub.client, sub.local_only)
            && !crate::leaf::is_spoke(&sub.client)
        {
            self.gateway
                .sub_removed(&sub.account.name, &sub.subject, sub.queue.as_deref());
        }
    }

    /// Removes many subscriptions (a connection closing).
    pub fn remove_subs(&self, subs: &[Arc<Subscription>]) {
        for s in subs {
            self.remove_sub(s);
        }
    }

    /// Unregisters a connection and keeps it for /connz?state=closed.
    pub fn client_closed(&self, client: &Arc<Client>) {
        self.client_closed_with_subs(client, Vec::new());
    }

    /// [`Self::client_closed`], remembering the subscriptions it had.
    pub fn client_closed_with_subs(&self, client: &Arc<Client>, subs: Vec<Arc<Subscription>>) {
        let reason = client.close_reason().unwrap_or(ClosedState::ClientClosed);
        {
            let mut clients = self.clients.lock();
            if clients.remove(&client.cid).is_some() && client.kind == Kind::Client {
                self.num_clients.fetch_sub(1, Ordering::Relaxed);
            }
        }
        debug!(
            "{} - Client connection closed: {}",
            client.prefix(),
            reason.as_str()
        );
        let mut closed = self.closed.lock();
        if closed.len() >= MAX_CLOSED_CLIENTS {
            closed.pop_front();
        }
        closed.push_back(ClosedClient {
            client: client.clone(),
            stop: SystemTime::now(),
            reason,
            subs,
        });
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Stops accepting, closes every connection after flushing what is queued, and waits
    /// (bounded) for the writers to finish.
    pub async fn shutdown(self: &Arc<Self>) {
        if self.shutting_down.load(Ordering::Acquire) {
            return;
        }
        // Peers learn at once that this server is going (the reference's last event).
        crate::system::send_shutdown(self);
        if self.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        info!("Initiating Shutdown...");
        if let Some(js) = self.jetstream() {
            js.shutdown();
        }
        self.stop_accepting();
        let clients: Vec<Arc<Client>> = self.clients.lock().values().cloned().collect();
        for c in &clients {
            c.close(ClosedState::ServerShutdown);
        }
        self.cluster.shutdown();
        self.leafs.shutdown();
        self.gateway.shutdown();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && (!self.clients.lock().is_empty() || !self.gateway.conns.lock().is_empty())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if !self.clients.lock().is_empty() {
            warn!("Shutdown timed out waiting for connections to close");
        }
        info!("Server Exiting..");
    }
}

/// `host:port`, bracketing IPv6 hosts.
/// `host:port` URLs for a listener on `host`; with 0.0.0.0, the machine's non-loopback
/// addresses (the reference does the same).
pub fn urls_for_host(host: &str, port: u16) -> Vec<String> {
    if host == "0.0.0.0" || host == "::" || host.is_empty() {
        let ips = crate::netutil::non_loopback_ips();
        if ips.is_empty() {
            return vec![format!("127.0.0.1:{port}")];
        }
        return ips.into_iter().map(|ip| host_port(&ip, port)).collect();
    }
    vec![host_port(host, port)]
}

pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
