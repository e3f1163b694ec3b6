//! JetStream on one server: persistent streams in file or memory storage, and the JSON
//! API on `$JS.API.>` that manages them.
//!
//! Design (layers, top to bottom):
//!
//! - `mod.rs` (this file), the public face: `enable` at start-up (the banner, the store
//!   directory, the API subscriptions, the accounts that get JetStream, recovery of their
//!   streams), the hook the delivery path calls for JetStream's internal subscriptions
//!   (`handle`), and the figures monitoring shows (`/varz`, `/jsz`, `/healthz`).
//! - `api/`: one handler per `$JS.API` request, the reference's JSON schemas (`types.rs`)
//!   and error codes (`errors.rs`). The API subscriptions live in the system account,
//!   which exports `$JS.API.>`; every JetStream account imports it, as on the reference,
//!   so the request reaches the system account carrying `Nats-Request-Info` with the
//!   requesting account. Requests are handled in arrival order by one task, off the
//!   delivery path, and answered with `send_internal` like the system account's requests.
//! - `stream.rs`: a stream's configuration checks, its internal subscriptions on its
//!   subjects (in its own account), and the ingest path: headers' checks, duplicates,
//!   rollups, the PubAck, run in the publisher's read loop as on the reference.
//! - `store/`: the `Store` trait the stream talks to, with the memory and file stores.
//!   The stream never touches files: a replicated log can later sit between the stream
//!   and the store (propose, then apply to the store) without changing either side.
//!
//! - `mirror.rs`: mirrors and sources (a direct push consumer on each origin stream).
//!
//! Not built yet (README "knowingly differs"): republish, external mirrors and sources.

pub mod advisory;
pub mod api;
pub mod consumer;
pub mod mirror;
pub mod store;
pub mod stream;

use crate::accounts::Account;
use crate::deliver::Delivery;
use crate::options::JsLimits;
use crate::server::Server;
use nats_common::proto::Message;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use stream::Stream;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// What a JetStream internal subscription does with a message.
#[derive(Clone)]
pub enum Handler {
    /// A `$JS.API` request (in the system account).
    Api(api::Endpoint),
    /// A message on a stream's subject.
    Ingest(Weak<Stream>),
    /// `$JS.API.DIRECT.GET.<stream>[.<subject>]` (in the stream's account).
    DirectGet(Weak<Stream>),
    /// A consumer's acks, pull requests and flow control replies (in its account).
    Consumer(Weak<consumer::Consumer>, consumer::Endpoint),
    /// What a mirror's or source's consumer delivers: (generation, origin index).
    Origin(mirror::Sender, u64, usize),
}

/// The server-wide settings, as /varz and /jsz show them.
#[derive(Clone, Debug)]
pub struct Config {
    pub max_memory: i64,
    pub max_storage: i64,
    /// `<store_dir>/jetstream`.
    pub store_dir: PathBuf,
    /// Set when both limits were configured (the reference then keeps its own
    /// configuration object, which carries this flag, instead of a dynamic one).
    pub compress_ok: bool,
}

/// Bytes stored per storage type (kept by the streams as they change).
#[derive(Default)]
pub struct StoreUsage {
    pub memory: std::sync::atomic::AtomicI64,
    pub file: std::sync::atomic::AtomicI64,
}

impl StoreUsage {
    pub fn add(&self, storage: api::types::Storage, delta: i64) {
        match storage {
            api::types::Storage::Memory => self.memory.fetch_add(delta, Ordering::Relaxed),
            api::types::Storage::File => self.file.fetch_add(delta, Ordering::Relaxed),
        };
    }

    pub fn get(&self, storage: api::types::Storage) -> i64 {
        match storage {
            api::types::Storage::Memory => self.memory.load(Ordering::Relaxed),
            api::types::Storage::File => self.file.load(Ordering::Relaxed),
        }
    }
}

/// One account's JetStream: its limits, its usage and its streams, by name.
pub struct JsAccount {
    pub account: Arc<Account>,
    pub limits: JsLimits,
    pub used: Arc<StoreUsage>,
    /// The limits warning was logged (the reference logs it once).
    warned: std::sync::atomic::AtomicBool,
    pub streams: Mutex<BTreeMap<String, Arc<Stream>>>,
    pub api_total: AtomicU64,
    pub api_errors: AtomicU64,
}

impl JsAccount {
    pub fn streams_dir(&self, js: &JetStream) -> PathBuf {
        js.config.store_dir.join(&self.account.name).join("streams")
    }

    /// The reference's jsAccount limitsExceeded: more stored than the account allows.
    pub fn limits_exceeded(&self, storage: api::types::Storage) -> bool {
        let used = self.used.get(storage);
        let (per_stream, max) = match storage {
            api::types::Storage::Memory => {
                (self.limits.memory_max_stream_bytes, self.limits.max_memory)
            }
            api::types::Storage::File => {
                (self.limits.store_max_stream_bytes, self.limits.max_store)
            }
        };
        (per_stream > 0 && used > per_stream) || (max >= 0 && used > max)
    }

    /// The reference's warning when a publish hits the account's limits (logged once).
    pub fn resources_exceeded(&self) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            warn!(
                "JetStream resource limits exceeded for account: {:?}",
                self.account.name
            );
        }
    }

    /// The reference's jsNonClusteredStreamLimitsCheck with this account's limits:
    /// the number of streams, then the bytes its streams reserve.
    pub fn check_stream_limits(
        &self,
        cfg: &api::types::StreamConfig,
    ) -> Result<(), api::errors::ApiError> {
        let streams = self.streams.lock();
        if self.limits.max_streams > 0 && streams.len() as i64 >= self.limits.max_streams {
            return Err(api::errors::maximum_streams_limit());
        }
        if cfg.max_consumers > 0
            && self.limits.max_consumers > 0
            && cfg.max_consumers > self.limits.max_consumers
        {
            return Err(api::errors::maximum_consumers_limit());
        }
        let reserved: i64 = streams
            .values()
            .map(|st| st.config())
            .filter(|c| c.max_bytes > 0 && c.storage == cfg.storage && c.name != cfg.name)
            .map(|c| c.max_bytes)
            .sum();
        let add = if cfg.max_bytes < 0 { 1 } else { cfg.max_bytes };
        match cfg.storage {
            api::types::Storage::Memory
                if self.limits.max_memory >= 0 && reserved + add > self.limits.max_memory =>
            {
                Err(api::errors::memory_resources_exceeded())
            }
            api::types::Storage::File
                if self.limits.max_store >= 0 && reserved + add > self.limits.max_store =>
            {
                Err(api::errors::storage_resources_exceeded())
            }
            _ => Ok(()),
        }
    }

    /// The account's `max_bytes_required` and per-stream byte limits (the reference's
    /// checkStreamCfg).
    pub fn check_stream_bytes(
        &self,
        cfg: &api::types::StreamConfig,
    ) -> Result<(), api::errors::ApiError> {
        let limit = match cfg.storage {
            api::types::Storage::Memory => self.limits.memory_max_stream_bytes,
            api::types::Storage::File => self.limits.store_max_stream_bytes,
        };
        if self.limits.max_bytes_required && cfg.max_bytes <= 0 {
            return Err(api::errors::stream_max_bytes_required());
        }
        if limit > 0 && cfg.max_bytes > limit {
            return Err(api::errors::stream_max_stream_bytes_exceeded());
        }
        Ok(())
    }
}

pub struct JetStream {
    pub config: Config,
    server: Weak<Server>,
    accounts: Mutex<BTreeMap<String, Arc<JsAccount>>>,
    pub api_total: AtomicU64,
    pub api_errors: AtomicU64,
    api_tx: mpsc::UnboundedSender<api::Request>,
    mem_used: std::sync::atomic::AtomicI64,
    store_used: std::sync::atomic::AtomicI64,
    rerr_last: Mutex<Option<std::time::Instant>>,
}

/// Go's friendlyBytes: `17.66 GB`, `1.00 MB`, `512 B`.
fn friendly_bytes(n: i64) -> String {
    let f = n as f64;
    const BASE: f64 = 1024.0;
    if f < BASE {
        return format!("{n} B");
    }
    let exp = (f.ln() / BASE.ln()).floor() as i32;
    let index = (exp - 1) as usize;
    let units = ["K", "M", "G", "T", "P", "E"];
    format!("{:.2} {}B", f / BASE.powi(exp), units[index.min(5)])
}

fn total_memory() -> i64 {
    // SAFETY: sysinfo fills the struct it is given.
    unsafe {
        let mut si: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut si) == 0 {
            return (si.totalram as i64).saturating_mul(si.mem_unit as i64);
        }
    }
    0
}

fn disk_available(dir: &std::path::Path) -> i64 {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return 1 << 40;
    };
    // SAFETY: statvfs fills the struct for a NUL-terminated path.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) == 0 {
            return ((st.f_bavail as u64).saturating_mul(st.f_bsize as u64) / 4 * 3) as i64;
        }
    }
    1 << 40
}

/// Starts JetStream (after monitoring, before the client listener, as the reference):
/// checks the store directory, logs the banner, subscribes the API, enables the global
/// account and recovers its streams.
pub fn enable(server: &Arc<Server>) -> Result<Arc<JetStream>, String> {
    let opts = server.opts();
    let Some(sys) = server.accounts.system() else {
        return Err("JetStream needs the system account (no_system_account is set)".into());
    };
    info!("Starting JetStream");
    let base = if opts.store_dir.is_empty() {
        std::env::temp_dir().join("nats")
    } else {
        PathBuf::from(&opts.store_dir)
    };
    let store_dir = base.join("jetstream");
    if !store_dir.exists() {
        std::fs::create_dir_all(&store_dir)
            .map_err(|e| format!("could not create storage directory - {e}"))?;
    } else if !store_dir.is_dir() {
        return Err("storage directory is not a directory".into());
    }
    let compress_ok = opts.jetstream_max_memory > 0 && opts.jetstream_max_store > 0;
    let max_memory = if opts.jetstream_max_memory >= 0 {
        opts.jetstream_max_memory
    } else {
        total_memory() / 4 * 3
    };
    let max_storage = if opts.jetstream_max_store >= 0 {
        opts.jetstream_max_store
    } else {
        disk_available(&store_dir)
    };
    if !compress_ok {
        tracing::debug!(
            "JetStream creating dynamic configuration - {} memory, {} disk",
            friendly_bytes(max_memory),
            friendly_bytes(max_storage)
        );
    }
    for line in [
        "    _ ___ _____ ___ _____ ___ ___   _   __  __",
        " _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |",
        "| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |",
        " \\__/|___| |_| |___/ |_| |_|_\\___/_/ \\_\\_|  |_|",
        "",
        "         https://docs.nats.io/jetstream",
        "",
        "---------------- JETSTREAM ----------------",
    ] {
        info!("{line}");
    }
    info!("  Max Memory:      {}", friendly_bytes(max_memory));
    info!("  Max Storage:     {}", friendly_bytes(max_storage));
    info!("  Store Directory: \"{}\"", store_dir.display());
    info!("-------------------------------------------");
    let (api_tx, api_rx) = mpsc::unbounded_channel();
    let js = Arc::new(JetStream {
        config: Config {
            max_memory,
            max_storage,
            store_dir,
            compress_ok,
        },
        server: Arc::downgrade(server),
        accounts: Mutex::new(BTreeMap::new()),
        api_total: AtomicU64::new(0),
        api_errors: AtomicU64::new(0),
        api_tx,
        mem_used: std::sync::atomic::AtomicI64::new(0),
        store_used: std::sync::atomic::AtomicI64::new(0),
        rerr_last: Mutex::new(None),
    });
    server.set_jetstream(js.clone());
    // Kept to this server: without clustered JetStream each server answers its own
    // clients (announced to routes, every JetStream server of a cluster would answer).
    for ep in api::ENDPOINTS {
        server.subscribe_internal(
            &sys,
            ep.subject(),
            crate::client::Internal::JetStream(Handler::Api(*ep)),
            false,
        );
    }
    tracing::debug!("  Exports:");
    tracing::debug!("     $JS.API.>");
    tokio::spawn(api::run(Arc::downgrade(&js), api_rx));
    // Without configured accounts the global account has JetStream; with them, the
    // accounts whose `jetstream` enables it. Every account reaches the API (the others
    // get "JetStream not enabled for account"), as on the reference.
    for (acc, limits) in api_accounts(server, &opts) {
        import_api(server, &acc, &sys);
        if let Some(limits) = limits {
            js.enable_account(server, &acc, limits);
        }
    }
    // Operator mode: the accounts already built from JWTs (preloaded); those fetched
    // later come through `account_built`.
    for acc in server.accounts.all() {
        if acc.jwt.read().is_some() {
            account_built(server, &acc);
        }
    }
    Ok(js)
}

/// The accounts that reach the API, and the JetStream limits of those that have it.
fn api_accounts(
    server: &Arc<Server>,
    opts: &crate::options::Options,
) -> Vec<(Arc<Account>, Option<JsLimits>)> {
    let sys = server.accounts.system();
    let mut accounts: Vec<(Arc<Account>, Option<JsLimits>)> = Vec::new();
    if opts.accounts.is_empty() {
        accounts.push((server.accounts.global.clone(), Some(JsLimits::default())));
    } else {
        accounts.push((server.accounts.global.clone(), None));
        for a in &opts.accounts {
            if let Some(acc) = server.accounts.get(&a.name) {
                accounts.push((acc, a.jetstream.limits()));
            }
        }
    }
    accounts.retain(|(a, _)| !sys.as_ref().is_some_and(|s| Arc::ptr_eq(s, a)));
    accounts
}

/// An account built from a JWT (operator mode): it reaches the API, and gets JetStream
/// when its JWT grants storage (`mem_storage` or `disk_storage` other than 0), with the
/// JWT's limits, as the reference.
pub fn account_built(server: &Arc<Server>, acc: &Arc<Account>) {
    let (Some(js), Some(sys)) = (server.jetstream(), server.accounts.system()) else {
        return;
    };
    if Arc::ptr_eq(acc, &sys) {
        return;
    }
    import_api(server, acc, &sys);
    if js.account(&acc.name).is_some() {
        return;
    }
    let Some(jwt) = acc.jwt.read().clone() else {
        return;
    };
    let l = &jwt.claims.nats.limits;
    if l.mem_storage == 0 && l.disk_storage == 0 {
        return;
    }
    // As the reference reads them: these three are unlimited unless positive.
    let unlimited = |v: i64| if v > 0 { v } else { -1 };
    js.enable_account(
        server,
        acc,
        JsLimits {
            max_memory: l.mem_storage,
            max_store: l.disk_storage,
            max_streams: l.streams,
            max_consumers: l.consumer,
            max_ack_pending: unlimited(l.max_ack_pending),
            memory_max_stream_bytes: unlimited(l.mem_max_stream_bytes),
            store_max_stream_bytes: unlimited(l.disk_max_stream_bytes),
            max_bytes_required: l.max_bytes_required,
        },
    );
}

/// After a reload rebuilt the accounts' imports: the API imports again (JetStream's own
/// settings cannot change on reload, see reload.rs).
pub fn reinstall_imports(server: &Arc<Server>) {
    let (Some(_), Some(sys)) = (server.jetstream(), server.accounts.system()) else {
        return;
    };
    for (acc, _) in api_accounts(server, &server.opts()) {
        import_api(server, &acc, &sys);
    }
}

/// `$JS.API.>` imported from the system account, with its internal subscription.
fn import_api(server: &Arc<Server>, acc: &Arc<Account>, sys: &Arc<Account>) {
    const API: &str = "$JS.API.>";
    if acc.service_imports.read().iter().any(|si| si.from == API) {
        return;
    }
    server.accounts.add_jetstream_import(acc, sys);
    let si = acc
        .service_imports
        .read()
        .iter()
        .find(|si| si.from == API)
        .cloned();
    if let Some(si) = si {
        server.subscribe_internal(acc, API, crate::client::Internal::ServiceImport(si), false);
    }
}

impl JetStream {
    pub fn server(&self) -> Option<Arc<Server>> {
        self.server.upgrade()
    }

    /// At server shutdown: every file store synced to disk.
    pub fn shutdown(&self) {
        info!("Initiating JetStream Shutdown...");
        for jsa in self.accounts() {
            for st in jsa.streams.lock().values() {
                if let Some(server) = self.server() {
                    st.stop_consumers(&server, false);
                }
                st.sync();
            }
        }
        info!("JetStream Shutdown");
    }

    pub fn account(&self, name: &str) -> Option<Arc<JsAccount>> {
        self.accounts.lock().get(name).cloned()
    }

    pub fn accounts(&self) -> Vec<Arc<JsAccount>> {
        self.accounts.lock().values().cloned().collect()
    }

    /// Enables `account` and recovers the streams found in its directory.
    fn enable_account(&self, server: &Arc<Server>, account: &Arc<Account>, limits: JsLimits) {
        let jsa = Arc::new(JsAccount {
            account: account.clone(),
            limits,
            used: Arc::new(StoreUsage::default()),
            warned: std::sync::atomic::AtomicBool::new(false),
            streams: Mutex::new(BTreeMap::new()),
            api_total: AtomicU64::new(0),
            api_errors: AtomicU64::new(0),
        });
        self.accounts
            .lock()
            .insert(account.name.clone(), jsa.clone());
        let dir = jsa.streams_dir(self);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        dirs.sort();
        let mut recovered = Vec::new();
        for d in dirs {
            let meta = match stream::read_meta(&d) {
                Ok(m) => m,
                Err(e) => {
                    warn!("  Error recovering stream in {}: {e}", d.display());
                    continue;
                }
            };
            info!(
                "  Starting restore for stream '{} > {}'",
                account.name, meta.config.name
            );
            match Stream::open(server, &jsa, d.clone(), meta.config, meta.created) {
                Ok(st) => {
                    st.subscribe(server);
                    let n = st.store_state().msgs;
                    info!(
                        "  Restored {} messages for stream '{} > {}'",
                        thousands(n),
                        account.name,
                        st.name
                    );
                    jsa.streams.lock().insert(st.name.clone(), st.clone());
                    restore_consumers(server, account, &st);
                    recovered.push(st.clone());
                }
                Err(e) => warn!("  Error recovering stream in {}: {e}", d.display()),
            }
        }
        // Mirrors and sources start once every stream is back (their origins too).
        for st in recovered {
            mirror::start(server, &st);
        }
    }

    /// Totals for /varz, /jsz and account info: (memory bytes, file bytes, streams,
    /// messages).
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for jsa in self.accounts() {
            let au = jsa.usage();
            u.memory += au.memory;
            u.storage += au.storage;
            u.streams += au.streams;
            u.consumers += au.consumers;
            u.all_consumers += au.all_consumers;
            u.messages += au.messages;
            u.bytes += au.bytes;
            u.reserved_memory += au.reserved_memory;
            u.reserved_storage += au.reserved_storage;
        }
        u
    }

    /// Bytes stored in all streams of one storage type (kept by the streams as they
    /// change), for the server-wide limits.
    pub fn used(&self, storage: api::types::Storage) -> i64 {
        match storage {
            api::types::Storage::Memory => self.mem_used.load(Ordering::Relaxed),
            api::types::Storage::File => self.store_used.load(Ordering::Relaxed),
        }
    }

    pub fn add_used(&self, storage: api::types::Storage, delta: i64) {
        match storage {
            api::types::Storage::Memory => self.mem_used.fetch_add(delta, Ordering::Relaxed),
            api::types::Storage::File => self.store_used.fetch_add(delta, Ordering::Relaxed),
        };
    }

    /// The reference's limitsExceeded: more stored than the server allows.
    pub fn limits_exceeded(&self, storage: api::types::Storage) -> bool {
        let max = match storage {
            api::types::Storage::Memory => self.config.max_memory,
            api::types::Storage::File => self.config.max_storage,
        };
        self.used(storage) > max
    }

    /// The reference's server check at stream creation: the reservations (streams'
    /// `max_bytes`) plus this one's must fit the server's limit.
    pub fn check_reservation(
        &self,
        cfg: &api::types::StreamConfig,
    ) -> Result<(), api::errors::ApiError> {
        let add = if cfg.max_bytes < 0 { 1 } else { cfg.max_bytes };
        let u = self.usage();
        match cfg.storage {
            api::types::Storage::Memory
                if u.reserved_memory as i64 + add > self.config.max_memory =>
            {
                Err(api::errors::memory_resources_exceeded())
            }
            api::types::Storage::File
                if u.reserved_storage as i64 + add > self.config.max_storage =>
            {
                Err(api::errors::storage_resources_exceeded())
            }
            _ => Ok(()),
        }
    }

    /// The reference's rate-limited error log when a publish hits the server's limits.
    pub fn resources_exceeded(&self) {
        let now = std::time::Instant::now();
        let mut last = self.rerr_last.lock();
        if last.is_none_or(|t| now.duration_since(t) > std::time::Duration::from_secs(10)) {
            tracing::error!("JetStream resource limits exceeded for server");
            *last = Some(now);
        }
    }
}

/// Brings back the consumers a file stream kept on disk, with their state.
fn restore_consumers(server: &Arc<Server>, account: &Arc<Account>, st: &Arc<Stream>) {
    let dirs = st.saved_consumer_dirs();
    if dirs.is_empty() {
        return;
    }
    info!(
        "  Recovering {} consumers for stream - '{} > {}'",
        dirs.len(),
        account.name,
        st.name
    );
    for d in dirs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = match consumer::state::read_meta(&d) {
            Ok(m) => m,
            Err(e) => {
                warn!("  Error recovering consumer in {}: {e}", d.display());
                continue;
            }
        };
        let saved = match consumer::state::read_state(&d) {
            Ok(s) => s,
            Err(e) => {
                warn!(
                    "  Error reading state of consumer '{} > {} > {name}': {e}",
                    account.name, st.name
                );
                None
            }
        };
        let c =
            consumer::Consumer::new(server, st, name, meta.config, meta.created, Some(d), saved);
        c.start(server);
        st.add_consumer(c);
    }
}

#[derive(Default, Clone, Copy)]
pub struct Usage {
    pub memory: u64,
    pub storage: u64,
    pub streams: usize,
    /// Without the mirrors' and sources' (direct) consumers, as /jsz counts them.
    pub consumers: usize,
    /// With them, as `$JS.API.INFO` counts them.
    pub all_consumers: usize,
    pub messages: u64,
    pub bytes: u64,
    /// The streams' `max_bytes` (where set), by storage type.
    pub reserved_memory: u64,
    pub reserved_storage: u64,
}

impl JsAccount {
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for st in self.streams.lock().values() {
            let s = st.store_state();
            let cfg = st.config();
            let reserve = cfg.max_bytes.max(0) as u64;
            match cfg.storage {
                api::types::Storage::Memory => {
                    u.memory += s.bytes;
                    u.reserved_memory += reserve;
                }
                api::types::Storage::File => {
                    u.storage += s.bytes;
                    u.reserved_storage += reserve;
                }
            }
            u.streams += 1;
            u.consumers += st.public_consumers().len();
            u.all_consumers += st.consumers.read().len();
            u.messages += s.msgs;
            u.bytes += s.bytes;
        }
        u
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The delivery path's hook for JetStream's internal subscriptions: copies the message
/// to the task that handles it. True: taken.
pub fn handle(d: &mut Delivery<'_>, handler: &Handler, msg: &Message<'_>) -> bool {
    match handler {
        Handler::Api(api::Endpoint::Other) => true,
        Handler::Api(ep) => {
            let Some(js) = d.server.jetstream() else {
                return false;
            };
            let _ = js.api_tx.send(api::Request {
                endpoint: *ep,
                subject: String::from_utf8_lossy(msg.subject).into_owned(),
                reply: msg.reply.map(<[u8]>::to_vec),
                headers: msg.headers.map(<[u8]>::to_vec),
                payload: msg.payload.to_vec(),
            });
            true
        }
        Handler::Ingest(st) => {
            let Some(st) = st.upgrade() else {
                return false;
            };
            let subject = String::from_utf8_lossy(msg.subject);
            let mut republish = None;
            let ack = st.process(
                stream::Inbound {
                    subject: &subject,
                    reply: msg.reply.is_some(),
                    hdr: msg.headers.unwrap_or_default(),
                    data: msg.payload,
                },
                &mut republish,
            );
            // The republished copy goes first, then the PubAck, as on the reference.
            if let Some(r) = republish {
                let from = d.server.account_client(&st.account);
                let m = Message {
                    subject: &r.subject,
                    reply: Some(b""),
                    headers: Some(&r.hdr),
                    payload: &r.data,
                };
                let via = d.via_service;
                crate::deliver::deliver_nested(d, &st.account, &from, true, via, None, &m);
            }
            if let (Some(reply), Some(ack)) = (msg.reply, ack) {
                send_in_delivery(d, &st.account, reply, &ack);
            }
            true
        }
        Handler::Consumer(c, ep) => {
            let Some(c) = c.upgrade() else {
                return false;
            };
            let subject = String::from_utf8_lossy(msg.subject);
            let confirm = consumer::handle(&c, *ep, &subject, msg.reply, msg.payload);
            if let (Some(reply), Some(())) = (msg.reply, confirm) {
                send_in_delivery(d, &c.account, reply, b"");
            }
            true
        }
        Handler::Origin(tx, gen, idx) => {
            let _ = tx.send((
                *gen,
                *idx,
                mirror::InMsg {
                    subject: String::from_utf8_lossy(msg.subject).into_owned(),
                    reply: msg
                        .reply
                        .map(|r| String::from_utf8_lossy(r).into_owned())
                        .unwrap_or_default(),
                    hdr: msg.headers.map(<[u8]>::to_vec).unwrap_or_default(),
                    data: msg.payload.to_vec(),
                },
            ));
            true
        }
        Handler::DirectGet(st) => {
            let Some(st) = st.upgrade() else {
                return false;
            };
            let Some(reply) = msg.reply else {
                return true;
            };
            api::direct_get(
                d.server,
                &st,
                String::from_utf8_lossy(msg.subject).into_owned(),
                reply.to_vec(),
                msg.payload.to_vec(),
            );
            true
        }
    }
}

/// Delivers `payload` to `subject` in `account` from inside a delivery in progress (a
/// PubAck, an ack's confirmation), as the account's own internal client, with the batch's
/// flush set. The reply is empty, not absent, as on the reference (`MSG <inbox> <sid>  <len>`).
fn send_in_delivery(d: &mut Delivery<'_>, account: &Arc<Account>, subject: &[u8], payload: &[u8]) {
    let from = d.server.account_client(account);
    let m = Message {
        subject,
        reply: Some(b""),
        headers: None,
        payload,
    };
    let via = d.via_service;
    crate::deliver::deliver_nested(d, account, &from, true, via, None, &m);
}

/// Counts an API request (and an error) for the server and the account.
pub fn count_api(js: &JetStream, jsa: Option<&JsAccount>, error: bool) {
    js.api_total.fetch_add(1, Ordering::Relaxed);
    if error {
        js.api_errors.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(a) = jsa {
        a.api_total.fetch_add(1, Ordering::Relaxed);
        if error {
            a.api_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn friendly_bytes_as_go() {
        assert_eq!(super::friendly_bytes(512), "512 B");
        assert_eq!(super::friendly_bytes(1024 * 1024), "1.00 MB");
        assert_eq!(super::friendly_bytes(18956992512), "17.66 GB");
    }
}
