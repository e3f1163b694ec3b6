//! Accounts, the isolation boundary of NATS 2.x. Each account is a subject space of its
//! own: its subscription index (with its generation, so connections cache matches without
//! a shared lock), what it exports to other accounts and imports from them, and its
//! subject mappings. Every connection is bound to one account; a message never leaves its
//! account except through an import (see `imports`).

pub mod claims;
pub mod imports;
pub mod jwt;

use crate::client::Client;
use crate::client::SubRef;
use crate::options::{ExportOptions, Options, GLOBAL_ACCOUNT, SYSTEM_ACCOUNT};
use imports::{ServiceImport, StreamImport};
use nats_common::sublist::{MatchResult, Sublist};
use nats_common::transform::{Mapping, Mappings};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub struct Account {
    pub name: String,
    pub sublist: RwLock<Sublist<SubRef>>,
    /// The index's generation, read without its lock on the message path.
    pub genid: Arc<AtomicU64>,
    /// What this account offers other accounts.
    pub exports: RwLock<Vec<ExportOptions>>,
    /// Streams this account takes from others: each client subscription that overlaps one
    /// gets a shadow subscription in the exporting account.
    pub stream_imports: RwLock<Vec<Arc<StreamImport>>>,
    /// Services this account takes from others, by the subject its clients publish to.
    pub service_imports: RwLock<Vec<Arc<ServiceImport>>>,
    /// Replies owed to importers of this account's services, by the `_R_` subject the
    /// request was forwarded with.
    pub responses: imports::Responses,
    /// Subject mappings applied to what this account's clients publish.
    pub mappings: RwLock<Arc<Mappings>>,
    pub has_mappings: AtomicBool,
    /// Client connections bound to this account.
    pub num_clients: AtomicU64,
    /// Messages published into this account, and delivered out of its index.
    pub stats: AccountStats,
    /// The connection that owns this account's internal subscriptions, and their ids.
    pub internal: OnceLock<Arc<Client>>,
    pub next_sid: AtomicU64,
    /// When the account was set up (`update_time` in monitoring).
    pub created: std::time::SystemTime,
    /// What its JWT says, for an account of operator mode.
    pub jwt: RwLock<Option<Arc<jwt::AccountJwt>>>,
    /// Woken when a subscription comes or goes, while someone watches interest (a push
    /// consumer: it stops and resumes with its deliver subject's interest); the watchers
    /// are counted so that the subscribe path pays one load otherwise.
    pub interest_changed: tokio::sync::Notify,
    pub interest_waiters: std::sync::atomic::AtomicUsize,
}

/// Message counters of one account, as `/accstatz` and the system account report them.
#[derive(Default)]
pub struct AccountStats {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub slow_consumers: AtomicU64,
}

impl Account {
    pub fn new(name: &str) -> Arc<Account> {
        let sublist = Sublist::new();
        let genid = sublist.genid_handle();
        Arc::new(Account {
            name: name.to_string(),
            sublist: RwLock::new(sublist),
            genid,
            exports: RwLock::new(Vec::new()),
            stream_imports: RwLock::new(Vec::new()),
            service_imports: RwLock::new(Vec::new()),
            responses: imports::Responses::default(),
            mappings: RwLock::new(Arc::new(Mappings::new())),
            has_mappings: AtomicBool::new(false),
            num_clients: AtomicU64::new(0),
            stats: AccountStats::default(),
            internal: OnceLock::new(),
            next_sid: AtomicU64::new(0),
            created: std::time::SystemTime::now(),
            interest_changed: tokio::sync::Notify::new(),
            interest_waiters: std::sync::atomic::AtomicUsize::new(0),
            jwt: RwLock::new(None),
        })
    }

    /// Subscriptions in this account's index.
    pub fn num_subs(&self) -> u64 {
        self.sublist.read().count()
    }

    /// What this account's mappings do to a publish on `subject`; `cluster` selects
    /// cluster-scoped destinations.
    pub fn map_subject(&self, subject: &[u8], cluster: &str) -> Mapped {
        if !self.has_mappings.load(Ordering::Relaxed) {
            return Mapped::Unchanged;
        }
        let maps = self.mappings.read().clone();
        match maps.find(subject) {
            None => Mapped::Unchanged,
            Some(m) => match m.select(subject, cluster, || rand::random::<u8>() % 100) {
                Some(to) => Mapped::To(to),
                None => Mapped::Dropped,
            },
        }
    }
}

/// Replaces an account's subject mappings.
pub fn set_mappings(acc: &Arc<Account>, maps: &[crate::options::Mapping]) {
    let mut built = Mappings::new();
    for m in maps {
        let spec = m
            .dests
            .iter()
            .map(|d| (d.subject.as_str(), d.weight, d.cluster.as_str()));
        if let Ok(m) = Mapping::new(&m.source, spec) {
            built.add(m);
        }
    }
    acc.has_mappings.store(!built.is_empty(), Ordering::Release);
    *acc.mappings.write() = Arc::new(built);
}

/// The outcome of an account's subject mappings for one publish.
pub enum Mapped {
    Unchanged,
    To(Vec<u8>),
    /// A weighted mapping chose no destination: the message goes nowhere.
    Dropped,
}

/// Adds an export unless the account has one for that subject already.
fn add_export(acc: &Account, x: ExportOptions) {
    let mut exports = acc.exports.write();
    if !exports
        .iter()
        .any(|e| e.subject == x.subject && e.service == x.service)
    {
        exports.push(x);
    }
}

/// Every account of the server, by name, with the global and system accounts at hand.
pub struct Accounts {
    by_name: RwLock<HashMap<String, Arc<Account>>>,
    pub global: Arc<Account>,
    system: Mutex<Option<Arc<Account>>>,
    /// Operator mode: trusted keys and the account resolver.
    pub trust: Option<jwt::Trust>,
}

impl Accounts {
    /// The accounts the options define, the global account, and the system account
    /// (`$SYS` unless another is named, none with `no_system_account`).
    pub fn new(opts: &Options) -> Accounts {
        let global = Account::new(GLOBAL_ACCOUNT);
        let mut by_name = HashMap::new();
        by_name.insert(GLOBAL_ACCOUNT.to_string(), global.clone());
        for a in &opts.accounts {
            by_name.insert(a.name.clone(), Account::new(&a.name));
        }
        let trusted = jwt::trusted_mode(opts);
        let trust = (trusted || opts.resolver.is_some()).then(|| jwt::Trust::new(opts));
        let accounts = Accounts {
            by_name: RwLock::new(by_name),
            global,
            system: Mutex::new(None),
            trust,
        };
        if trusted && opts.system_account.is_empty() {
            // Operator mode without a system account: the reference's default `$SYS`
            // cannot be fetched (not an account key), so there is none.
        } else if opts.system_account.is_empty() || !trusted {
            if !opts.no_system_account {
                let name = if opts.system_account.is_empty() {
                    SYSTEM_ACCOUNT
                } else {
                    &opts.system_account
                };
                let sys = accounts.get_or_create(name);
                *accounts.system.lock() = Some(sys.clone());
            }
        } else {
            // Checked at start-up (jwt::check_startup), so the lookup succeeds.
            let mut built = Vec::new();
            jwt::set_quiet(true);
            if let Ok(sys) = accounts.lookup(&opts.system_account, &mut built) {
                *accounts.system.lock() = Some(sys);
            }
            jwt::set_quiet(false);
        }
        accounts.configure(opts);
        accounts
    }

    /// Installs exports, imports and mappings from the options on the existing accounts.
    pub fn configure(&self, opts: &Options) {
        let set_maps = set_mappings;
        set_maps(&self.global, &opts.mappings);
        for a in &opts.accounts {
            let acc = self.get_or_create(&a.name);
            *acc.exports.write() = a.exports.clone();
            set_maps(&acc, &a.mappings);
        }
        for a in &opts.accounts {
            let acc = self.get_or_create(&a.name);
            let mut streams = Vec::new();
            let mut services = Vec::new();
            for im in &a.imports {
                let Some(exporter) = self.get(&im.account) else {
                    continue;
                };
                if im.service {
                    let rt = imports::response_type_of(&exporter, &im.subject);
                    services.push(Arc::new(ServiceImport::new(&exporter, im, rt)));
                } else {
                    streams.push(Arc::new(StreamImport::new(&exporter, im)));
                }
            }
            *acc.stream_imports.write() = streams;
            *acc.service_imports.write() = services;
        }
        if let Some(sys) = self.system() {
            // What the system account offers every other account (the reference's).
            let service = |subject: &str, rt, pos| ExportOptions {
                subject: subject.to_string(),
                service: true,
                accounts: None,
                response_type: rt,
                response_threshold: None,
                account_token_position: pos,
            };
            use crate::options::ResponseType::{Singleton, Streamed};
            for x in [
                service("$SYS.REQ.ACCOUNT.*.CONNZ", Streamed, 4),
                service("$SYS.REQ.ACCOUNT.*.STATZ", Streamed, 4),
                service("$SYS.DEBUG.SUBSCRIBERS", Singleton, 0),
            ] {
                add_export(&sys, x);
            }
        }
    }

    /// Gives `acc` the imports of the system account's services every other account has:
    /// its own connections and statistics.
    pub fn add_system_imports(&self, acc: &Arc<Account>, sys: &Arc<Account>) {
        let mut services = acc.service_imports.write();
        for (from, to) in crate::system::account_imports(&acc.name) {
            let im = crate::options::ImportOptions {
                service: true,
                account: sys.name.clone(),
                subject: to,
                prefix: String::new(),
                to: from,
                share: false,
            };
            let rt = (
                crate::options::ResponseType::Streamed,
                imports::DEFAULT_RESPONSE_THRESHOLD,
            );
            services.push(Arc::new(ServiceImport::new(sys, &im, rt)));
        }
    }

    /// `$JS.API.>` imported from the system account, which exports it.
    pub fn add_jetstream_import(&self, acc: &Arc<Account>, sys: &Arc<Account>) {
        const JS_API: &str = "$JS.API.>";
        add_export(
            sys,
            ExportOptions {
                subject: JS_API.to_string(),
                service: true,
                ..Default::default()
            },
        );
        let im = crate::options::ImportOptions {
            service: true,
            account: sys.name.clone(),
            subject: JS_API.to_string(),
            prefix: String::new(),
            to: JS_API.to_string(),
            share: false,
        };
        let rt = imports::response_type_of(sys, JS_API);
        acc.service_imports
            .write()
            .push(Arc::new(ServiceImport::new(sys, &im, rt)));
    }

    pub fn system(&self) -> Option<Arc<Account>> {
        self.system.lock().clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.by_name.read().get(name).cloned()
    }

    pub fn get_or_create(&self, name: &str) -> Arc<Account> {
        if let Some(a) = self.get(name) {
            return a;
        }
        self.by_name
            .write()
            .entry(name.to_string())
            .or_insert_with(|| Account::new(name))
            .clone()
    }

    /// Every account, sorted by name.
    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut v: Vec<Arc<Account>> = self.by_name.read().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Accounts in use: with client connections, and the system account (the server's
    /// own connection is one of its clients).
    pub fn active(&self) -> usize {
        let sys = self.system();
        self.by_name
            .read()
            .values()
            .filter(|a| {
                a.num_clients.load(Ordering::Relaxed) > 0
                    || sys.as_ref().is_some_and(|s| Arc::ptr_eq(s, a))
            })
            .count()
    }

    /// Subscriptions in every account.
    pub fn num_subs(&self) -> u64 {
        self.by_name.read().values().map(|a| a.num_subs()).sum()
    }
}

/// A connection's own cache of match results by account and subject. An entry is valid
/// while its account's index generation is unchanged, so the message path takes no shared
/// lock while subscriptions are stable.
pub struct MatchCache {
    map: HashMap<Box<[u8]>, CacheEntry, nats_common::fasthash::FastState>,
    key: Vec<u8>,
}

struct CacheEntry {
    account: Arc<Account>,
    gen: u64,
    result: Arc<MatchResult<SubRef>>,
}

const MATCH_CACHE_MAX: usize = 256;

impl Default for MatchCache {
    fn default() -> Self {
        MatchCache {
            map: HashMap::default(),
            key: Vec::with_capacity(64),
        }
    }
}

impl MatchCache {
    /// What `subject` matches in `account`.
    pub fn get(&mut self, account: &Arc<Account>, subject: &[u8]) -> Arc<MatchResult<SubRef>> {
        self.set_key(account.name.as_bytes(), subject);
        let gen = account.genid.load(Ordering::Acquire);
        if let Some(e) = self.map.get(&self.key[..]) {
            if e.gen == gen && Arc::ptr_eq(&e.account, account) {
                return e.result.clone();
            }
        }
        self.fill(account.clone(), gen, subject)
    }

    /// What `subject` matches in the account named `name` (a routed message), or `None`
    /// for an account this server does not have.
    pub fn get_named(
        &mut self,
        accounts: &Accounts,
        name: &[u8],
        subject: &[u8],
    ) -> Option<(Arc<Account>, Arc<MatchResult<SubRef>>)> {
        self.set_key(name, subject);
        if let Some(e) = self.map.get(&self.key[..]) {
            if e.gen == e.account.genid.load(Ordering::Acquire) {
                return Some((e.account.clone(), e.result.clone()));
            }
        }
        let account = accounts.get(std::str::from_utf8(name).ok()?)?;
        let gen = account.genid.load(Ordering::Acquire);
        let r = self.fill(account.clone(), gen, subject);
        Some((account, r))
    }

    fn set_key(&mut self, account: &[u8], subject: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(account);
        self.key.push(b' ');
        self.key.extend_from_slice(subject);
    }

    fn fill(
        &mut self,
        account: Arc<Account>,
        gen: u64,
        subject: &[u8],
    ) -> Arc<MatchResult<SubRef>> {
        let result = account.sublist.read().match_subject(subject);
        if self.map.len() >= MATCH_CACHE_MAX {
            self.map.clear();
        }
        self.map.insert(
            self.key.clone().into_boxed_slice(),
            CacheEntry {
                account,
                gen,
                result: result.clone(),
            },
        );
        result
    }
}
