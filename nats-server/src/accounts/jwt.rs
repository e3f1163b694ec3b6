//! JWT operator mode: trusted operator keys, the memory account resolver, accounts built
//! from their JWTs (exports, imports, mappings, limits, signing keys, revocations), and
//! users authenticated by a user JWT and the signature of the server's nonce.
//!
//! Accounts are fetched from the resolver when first needed (a client's login, an import
//! of another account, the system account at start), as the reference does: an account
//! JWT is verified (trusted issuer, library validation) and turned into an ordinary
//! account of this server, named by its public key.

pub use super::claims::NO_LIMIT;
use super::claims::{self, AccountClaims, ExportType, UserClaims, UserScope};
use super::imports::{self, ServiceImport, StreamImport};
use super::{Account, Accounts};
use crate::options::{self, ExportOptions, ImportOptions, Options, ResolverOptions, ResponseType};
use parking_lot::{ReentrantMutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, error, warn};

/// Set while the server is being built: the reference logs nothing then (its logger is
/// configured afterwards), so accounts fetched for the system account log nothing either.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_quiet(q: bool) {
    QUIET.store(q, std::sync::atomic::Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

macro_rules! qdebug { ($($t:tt)*) => { if !quiet() { tracing::debug!($($t)*) } } }
macro_rules! qwarn { ($($t:tt)*) => { if !quiet() { tracing::warn!($($t)*) } } }
macro_rules! qerror { ($($t:tt)*) => { if !quiet() { tracing::error!($($t)*) } } }

/// The reference's error texts.
pub const ERR_MISSING_ACCOUNT: &str = "account missing";
pub const ERR_ACCOUNT_VALIDATION: &str = "account validation failed";

/// What a server trusts in operator mode, and where it finds account JWTs.
pub struct Trust {
    /// Operator keys (and their signing keys) allowed to issue account JWTs.
    pub keys: Vec<String>,
    /// Signing keys of operators strict about them: accounts these sign cannot sign
    /// users with their own key.
    strict: HashSet<String>,
    /// Accounts allowed to log users in, when `resolver_pinned_accounts` is set.
    pub pinned: Option<HashSet<String>>,
    /// The memory resolver: account JWTs by public key.
    resolver: Option<RwLock<HashMap<String, String>>>,
    /// Serializes account fetches (an account's imports fetch their exporters).
    fetching: ReentrantMutex<()>,
}

/// What an account JWT adds to an account.
#[derive(Debug)]
pub struct AccountJwt {
    pub claims: AccountClaims,
    /// The operator key that signed it.
    pub issuer: String,
    /// Keys that may sign its users: its own (unless the operator is strict) and its
    /// signing keys, with their scopes.
    pub signing_keys: HashMap<String, Option<UserScope>>,
    pub max_conns: i64,
    pub max_subs: i64,
    pub max_payload: i64,
    pub disallow_bearer: bool,
    pub default_permissions: Option<options::Permissions>,
}

impl AccountJwt {
    pub fn expired(&self) -> bool {
        let exp = self.claims.data.exp;
        exp != 0 && exp <= claims::now_unix()
    }

    /// `name/tag` when the JWT names the account, as the reference labels it in logs.
    pub fn label(&self, key: &str) -> String {
        label(key, &self.claims.data.name)
    }
}

fn label(key: &str, name: &str) -> String {
    if name.is_empty() {
        key.to_string()
    } else {
        format!("{key}/{name}")
    }
}

/// Whether the options put the server in trusted (operator) mode.
pub fn trusted_mode(opts: &Options) -> bool {
    !opts.trusted_operators.is_empty() || !opts.trusted_keys.is_empty()
}

/// The trusted keys: `trusted_keys`, then each operator's key (unless it is strict about
/// signing keys) and its signing keys.
pub fn trusted_keys(opts: &Options) -> Vec<String> {
    let mut keys = opts.trusted_keys.clone();
    for op in &opts.trusted_operators {
        if !op.nats.strict_signing_key_usage {
            keys.push(op.data.sub.clone());
        }
        keys.extend(op.nats.signing_keys.iter().cloned());
    }
    keys
}

/// The reference's `validateTrustedOperators`, run before the server is built.
pub fn validate_trusted_operators(opts: &Options) -> Result<(), String> {
    if opts.trusted_operators.is_empty() {
        return Ok(());
    }
    if opts.resolver.is_none() {
        return Err("operators require an account resolver to be configured".into());
    }
    if !opts.accounts.is_empty() {
        return Err("operators do not allow Accounts to be configured directly".into());
    }
    if !opts.users.is_empty() || !opts.nkeys.is_empty() {
        return Err("operators do not allow users to be configured directly".into());
    }
    if !opts.trusted_keys.is_empty() {
        return Err("conflicting options for 'TrustedKeys' and 'TrustedOperators'".into());
    }
    if !opts.system_account.is_empty() {
        let non_empty = opts
            .trusted_operators
            .iter()
            .any(|o| !o.nats.system_account.is_empty());
        let found = opts
            .trusted_operators
            .iter()
            .any(|o| o.nats.system_account == opts.system_account);
        if non_empty && !found {
            return Err("system_account in config and operator JWT must be identical".into());
        }
    }
    let (smaj, smin, supd) = parse_version(crate::server::VERSION).unwrap_or((0, 0, 0));
    for op in &opts.trusted_operators {
        let want = &op.nats.assert_server_version;
        match parse_version(want) {
            Err(e) => {
                return Err(format!(
                    "operator {} expects version {want} got error instead: {e}",
                    op.data.sub
                ))
            }
            Ok((maj, min, upd)) => {
                if maj > smaj {
                    return Err(format!(
                        "operator {} expected major version {maj} > server major version {smaj}",
                        op.data.sub
                    ));
                } else if smaj > maj {
                } else if min > smin {
                    return Err(format!(
                        "operator {} expected minor version {min} > server minor version {smin}",
                        op.data.sub
                    ));
                } else if smin > min {
                } else if upd > supd {
                    return Err(format!(
                        "operator {} expected update version {upd} > server update version {supd}",
                        op.data.sub
                    ));
                }
            }
        }
    }
    for key in trusted_keys(opts) {
        if !claims::is_operator_key(&key) {
            return Err(format!(
                "trusted Keys {key:?} are required to be a valid public operator nkey"
            ));
        }
    }
    if let Some(pinned) = &opts.resolver_pinned_accounts {
        for key in pinned {
            if !claims::is_account_key(key) {
                return Err(format!(
                    "pinned account key {key:?} is not a valid public account nkey"
                ));
            }
        }
    }
    Ok(())
}

/// The JWT library's `ParseServerVersion`: `""` is 0.0.0, else `major.minor.update`.
fn parse_version(v: &str) -> Result<(i64, i64, i64), String> {
    if v.is_empty() {
        return Ok((0, 0, 0));
    }
    let v = v.strip_prefix('v').unwrap_or(v);
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() != 3 {
        return Err(format!("invalid semver format: {v}"));
    }
    let mut out = [0i64; 3];
    for (i, p) in parts.iter().enumerate() {
        out[i] = p
            .parse()
            .map_err(|_| format!("strconv.Atoi: parsing {p:?}: invalid syntax"))?;
    }
    Ok((out[0], out[1], out[2]))
}

/// Start-up checks the reference makes while building the server, after the options are
/// validated: preloads need a writable resolver, a URL resolver must answer, the system
/// account must resolve. Resolvers other than MEMORY are not implemented here; a
/// configuration that needs one is refused with a message saying so.
pub fn check_startup(opts: &Options) -> Result<(), String> {
    let Some(res) = &opts.resolver else {
        return Ok(());
    };
    match res {
        ResolverOptions::Memory => {}
        ResolverOptions::Url(url) => {
            if !opts.resolver_preload.is_empty() {
                return Err("resolver preloads only available for writeable resolver types MEM/DIR/CACHE_DIR".into());
            }
            let mut url = url.clone();
            if !url.ends_with('/') {
                url.push('/');
            }
            let scheme = url
                .split_once("://")
                .map(|(s, _)| s.to_ascii_lowercase())
                .unwrap_or_default();
            if scheme != "http" && scheme != "https" {
                // What Go's HTTP client says of a URL it cannot fetch at all.
                let shown = url.split_once(':').map(|(s, _)| s).filter(|s| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                });
                return Err(format!(
                    "could not fetch <{url:?}>: Get {url:?}: unsupported protocol scheme {:?}",
                    shown.unwrap_or("")
                ));
            }
            return Err(format!(
                "the URL account resolver ({url}) is not supported by this server; use resolver: MEMORY"
            ));
        }
        ResolverOptions::Dir { full, dir } => {
            return Err(format!(
                "the {} account resolver (dir {dir}) is not supported by this server; use resolver: MEMORY",
                if *full { "FULL" } else { "CACHE" }
            ));
        }
    }
    if !opts.system_account.is_empty() {
        let trust = Trust::new(opts);
        trust
            .fetch_claims(&opts.system_account)
            .map_err(|e| format!("error resolving system account: {e}"))?;
    }
    Ok(())
}

impl Trust {
    pub fn new(opts: &Options) -> Trust {
        let resolver = matches!(opts.resolver, Some(ResolverOptions::Memory)).then(|| {
            RwLock::new(
                opts.resolver_preload
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        });
        let pinned = opts.resolver_pinned_accounts.as_ref().map(|p| {
            let mut set: HashSet<String> = p.iter().cloned().collect();
            if !opts.system_account.is_empty() {
                set.insert(opts.system_account.clone());
            }
            set
        });
        Trust {
            keys: if trusted_mode(opts) {
                trusted_keys(opts)
            } else {
                Vec::new()
            },
            strict: opts
                .trusted_operators
                .iter()
                .filter(|o| o.nats.strict_signing_key_usage)
                .flat_map(|o| o.nats.signing_keys.iter().cloned())
                .collect(),
            pinned,
            resolver,
            fetching: ReentrantMutex::new(()),
        }
    }

    pub fn has_resolver(&self) -> bool {
        self.resolver.is_some()
    }

    /// The reference's `isTrustedIssuer`.
    fn is_trusted(&self, issuer: &str) -> bool {
        if self.keys.is_empty() && issuer.is_empty() {
            return true;
        }
        self.keys.iter().any(|k| k == issuer)
    }

    /// The raw JWT of `name` from the resolver, with the reference's debug line.
    fn fetch_raw(&self, name: &str) -> Result<String, String> {
        let Some(res) = &self.resolver else {
            return Err("no account resolver configured".into());
        };
        let start = Instant::now();
        let found = if !claims::is_account_key(name) {
            Err("will only fetch valid account keys".to_string())
        } else {
            res.read()
                .get(name)
                .cloned()
                .ok_or_else(|| ERR_MISSING_ACCOUNT.to_string())
        };
        let took = nats_common::monitor::go_duration_string(start.elapsed());
        qdebug!("Account [{name}] fetch took {took}");
        if let Err(e) = &found {
            qwarn!("Account fetch failed: {e}");
        }
        found
    }

    /// Decodes and checks an account JWT: a trusted issuer, and no blocking validation
    /// issue (expiry included).
    fn verify(&self, jwt: &str) -> Result<AccountClaims, String> {
        let ac = claims::decode_account(jwt)?;
        if !self.is_trusted(&ac.data.iss) {
            return Err(ERR_ACCOUNT_VALIDATION.into());
        }
        if ac.validate().is_blocking(true) {
            return Err(ERR_ACCOUNT_VALIDATION.into());
        }
        Ok(ac)
    }

    fn fetch_claims(&self, name: &str) -> Result<AccountClaims, String> {
        let jwt = self.fetch_raw(name)?;
        let ac = self.verify(&jwt)?;
        if ac.data.sub != name {
            return Err(ERR_ACCOUNT_VALIDATION.into());
        }
        Ok(ac)
    }
}

/// `[WRN]` lines for preloaded account JWTs with validation issues (expired ones too).
pub fn log_preload_issues(opts: &Options) {
    for (k, v) in &opts.resolver_preload {
        let Ok(ac) = claims::decode_account(v) else {
            error!("Preloaded account [{k}] not valid");
            continue;
        };
        let vr = ac.validate();
        if vr.is_blocking(true) {
            warn!("Account [{k}] has validation issues:");
            for i in &vr.issues {
                warn!("  - {}", i.description);
            }
        }
    }
}

/// The reference's `buildPermissionsFromJwt`: none when nothing is set.
pub fn permissions_from_jwt(p: &claims::Permissions) -> Option<options::Permissions> {
    let side = |x: &claims::Permission| {
        (!x.is_empty()).then(|| options::SubjectPermission {
            allow: x.allow.clone(),
            deny: x.deny.clone(),
        })
    };
    let publish = side(&p.publish);
    let subscribe = side(&p.subscribe);
    let response = p.resp.as_ref().map(|r| {
        // As the reference's validateResponsePermissions: zero means its defaults.
        let max = if r.max == 0 { 1 } else { r.max };
        let ttl = if r.ttl == 0 {
            Duration::from_secs(2 * 60)
        } else {
            Duration::from_nanos(r.ttl.max(0) as u64)
        };
        options::ResponsePermission {
            max_msgs: max.max(0) as usize,
            expires: ttl,
        }
    });
    if publish.is_none() && subscribe.is_none() && response.is_none() {
        return None;
    }
    Some(options::Permissions {
        publish,
        subscribe,
        response,
    })
}

impl Accounts {
    /// The account named `name`: registered, or fetched from the resolver and built.
    /// Accounts built on the way (the one asked for and the exporters it imports from)
    /// are appended to `built`, for the server to finish (system imports, internal
    /// subscriptions).
    pub fn lookup(
        &self,
        name: &str,
        built: &mut Vec<Arc<Account>>,
    ) -> Result<Arc<Account>, String> {
        if let Some(a) = self.get(name) {
            return Ok(a);
        }
        let Some(trust) = &self.trust else {
            return Err(ERR_MISSING_ACCOUNT.into());
        };
        if !trust.has_resolver() {
            return Err(ERR_MISSING_ACCOUNT.into());
        }
        let _g = trust.fetching.lock();
        if let Some(a) = self.get(name) {
            return Ok(a);
        }
        let ac = trust.fetch_claims(name)?;
        Ok(self.build_from_claims(ac, built))
    }

    /// Registers the account of `ac` and gives it what the JWT says.
    fn build_from_claims(&self, ac: AccountClaims, built: &mut Vec<Arc<Account>>) -> Arc<Account> {
        let name = ac.data.sub.clone();
        let acc = self.get_or_create(&name);
        built.push(acc.clone());
        let tag = label(&name, &ac.data.name);
        qdebug!("Updating account claims: {name}/{}", ac.data.name);
        let mut exports = Vec::new();
        for e in ac.nats.exports.iter().flatten() {
            let service = e.kind == ExportType::Service;
            qdebug!(
                "Adding {} export {:?} for {tag}",
                if service { "service" } else { "stream" },
                e.subject
            );
            exports.push(ExportOptions {
                subject: e.subject.clone(),
                service,
                // Exports needing an activation token: no account is approved here.
                accounts: e.token_req.then(Vec::new),
                response_type: match e.response_type.as_str() {
                    "Stream" => ResponseType::Streamed,
                    "Chunked" => ResponseType::Chunked,
                    _ => ResponseType::Singleton,
                },
                response_threshold: (service && e.response_threshold > 0)
                    .then(|| Duration::from_nanos(e.response_threshold as u64)),
                account_token_position: e.account_token_position as u32,
            });
        }
        *acc.exports.write() = exports;
        let maps: Vec<options::Mapping> = ac
            .nats
            .mappings
            .iter()
            .map(|(src, dests)| options::Mapping {
                source: src.clone(),
                dests: dests
                    .iter()
                    .map(|d| options::MapDest {
                        subject: d.subject.clone(),
                        weight: d.weight(),
                        cluster: d.cluster.clone(),
                    })
                    .collect(),
            })
            .collect();
        super::set_mappings(&acc, &maps);
        let strict = self
            .trust
            .as_ref()
            .is_some_and(|t| t.strict.contains(&ac.data.iss));
        let mut signing_keys: HashMap<String, Option<UserScope>> = ac
            .nats
            .signing_keys
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !strict {
            signing_keys.insert(name.clone(), None);
        }
        let state = AccountJwt {
            issuer: ac.data.iss.clone(),
            signing_keys,
            max_conns: ac.nats.limits.conn,
            max_subs: ac.nats.limits.subs,
            max_payload: ac.nats.limits.payload,
            disallow_bearer: ac.nats.limits.disallow_bearer,
            default_permissions: permissions_from_jwt(&ac.nats.default_permissions),
            claims: ac.clone(),
        };
        *acc.jwt.write() = Some(Arc::new(state));
        let mut streams = Vec::new();
        let mut services = Vec::new();
        for i in ac.nats.imports.iter().flatten() {
            let exporter = match self.lookup(&i.account, built) {
                Ok(a) => a,
                Err(e) => {
                    qerror!(
                        "Can't locate account [{}] for import of [{}] {} (err={e})",
                        i.account,
                        i.subject,
                        i.kind.as_str()
                    );
                    continue;
                }
            };
            let exporter_tag = exporter
                .jwt
                .read()
                .as_ref()
                .map(|j| j.label(&exporter.name))
                .unwrap_or_else(|| exporter.name.clone());
            let exports = exporter.exports.read().clone();
            match i.kind {
                ExportType::Stream => {
                    let to = if !i.local_subject.is_empty() {
                        i.local_subject.clone()
                    } else if !i.to.is_empty() {
                        let mut p = i.to.clone();
                        if !p.ends_with('.') {
                            p.push('.');
                        }
                        format!("{p}{}", i.subject)
                    } else {
                        i.subject.clone()
                    };
                    qdebug!(
                        "Adding stream import {exporter_tag}:{:?} for {tag}:{:?}",
                        i.subject,
                        if i.local_subject.is_empty() {
                            &i.to
                        } else {
                            &i.local_subject
                        }
                    );
                    let valid = nats_common::subject::is_valid_subject(i.subject.as_bytes());
                    if !valid || !crate::config::export_approves(&exports, false, &name, &i.subject)
                    {
                        qdebug!(
                            "Error adding stream import to account [{tag}]: stream import not authorized"
                        );
                        continue;
                    }
                    let im = ImportOptions {
                        service: false,
                        account: exporter.name.clone(),
                        subject: i.subject.clone(),
                        prefix: String::new(),
                        to,
                        share: false,
                    };
                    streams.push(Arc::new(StreamImport::new(&exporter, &im)));
                }
                ExportType::Service => {
                    let (from, to) = if !i.local_subject.is_empty() {
                        (i.local_subject.clone(), i.subject.clone())
                    } else if !i.to.is_empty() {
                        (i.subject.clone(), i.to.clone())
                    } else {
                        (i.subject.clone(), i.subject.clone())
                    };
                    qdebug!("Adding service import {exporter_tag}:{from:?} for {tag}:{to:?}");
                    let valid = nats_common::subject::is_valid_subject(from.as_bytes())
                        && nats_common::subject::is_valid_subject(to.as_bytes());
                    if !valid {
                        qdebug!(
                            "Error adding service import to account [{tag}]: sublist: invalid subject"
                        );
                        continue;
                    }
                    if !crate::config::export_approves(&exports, true, &name, &to) {
                        qdebug!(
                            "Error adding service import to account [{tag}]: service import not authorized"
                        );
                        continue;
                    }
                    let im = ImportOptions {
                        service: true,
                        account: exporter.name.clone(),
                        subject: to.clone(),
                        prefix: String::new(),
                        to: from,
                        share: i.share,
                    };
                    let rt = imports::response_type_of(&exporter, &to);
                    services.push(Arc::new(ServiceImport::new(&exporter, &im, rt)));
                }
                ExportType::Unknown => {}
            }
        }
        *acc.stream_imports.write() = streams;
        *acc.service_imports.write() = services;
        acc
    }
}

/// What a logged-in JWT user gets.
pub struct JwtUser {
    pub account: Arc<Account>,
    /// The user's public key.
    pub user: String,
    pub permissions: Option<options::Permissions>,
    /// Per-connection limits from the user JWT and the account (-1: none).
    pub max_payload: i64,
    pub max_subs: i64,
    /// When the connection must close: the user JWT's expiry or the end of its connect
    /// window.
    pub expires_in: Option<Duration>,
    /// Accounts built to find this user's (for the server to finish).
    pub built: Vec<Arc<Account>>,
    /// The reference's `Authenticated JWT: ...` debug text, logged once the connection
    /// is registered with its account.
    pub authenticated: String,
}

/// The reference's `minLimit`: the smaller of two limits, -1 meaning none.
pub fn min_limit(value: &mut i64, limit: i64) -> bool {
    if *value != NO_LIMIT {
        if limit != NO_LIMIT && limit < *value {
            *value = limit;
            return true;
        }
    } else if limit != NO_LIMIT {
        *value = limit;
        return true;
    }
    false
}

const KNOWN_CONNECTION_TYPES: &[&str] = &[
    "STANDARD",
    "WEBSOCKET",
    "LEAFNODE",
    "LEAFNODE_WS",
    "MQTT",
    "MQTT_WS",
];

/// Checks a CONNECT with a user JWT. Failures are logged at debug level with the
/// reference's wording (`prefix` is the connection's log prefix) and return `None`.
pub fn authenticate(
    accounts: &Accounts,
    prefix: &str,
    jwt: &str,
    sig: &str,
    nonce: &str,
    host: Option<std::net::IpAddr>,
) -> Option<JwtUser> {
    let deny = |why: String| {
        debug!("{prefix} - {why}");
        None
    };
    if jwt.is_empty() {
        return deny("Authentication requires a user JWT".into());
    }
    let mut uc: UserClaims = match claims::decode_user(jwt) {
        Ok(c) => c,
        Err(e) => return deny(format!("User JWT not valid: {e}")),
    };
    let vr = uc.validate();
    if vr.is_blocking(true) {
        return deny(format!("User JWT no longer valid: {}", vr.go_debug()));
    }
    let trust = accounts.trust.as_ref()?;
    let types = &uc.nats.limits.allowed_connection_types;
    if !types.is_empty() {
        let upper: Vec<String> = types.iter().map(|t| t.to_uppercase()).collect();
        let unknown: Vec<&String> = upper
            .iter()
            .filter(|t| !KNOWN_CONNECTION_TYPES.contains(&t.as_str()))
            .collect();
        let known = upper.len() - unknown.len();
        if !unknown.is_empty() {
            let list: Vec<String> = unknown.iter().map(|u| format!("{u:?}")).collect();
            debug!("{prefix} - invalid connection types [{}]", list.join(" "));
            if known == 0 {
                return None;
            }
        }
        if !upper.iter().any(|t| t == "STANDARD") {
            return deny("Connection type not allowed".into());
        }
    }
    let issuer = if uc.nats.issuer_account.is_empty() {
        uc.data.iss.clone()
    } else {
        uc.nats.issuer_account.clone()
    };
    if let Some(pinned) = &trust.pinned {
        if !pinned.contains(&issuer) {
            return deny(format!(
                "Account {issuer} not listed as operator pinned account"
            ));
        }
    }
    let mut built = Vec::new();
    let acc = match accounts.lookup(&issuer, &mut built) {
        Ok(a) => a,
        Err(e) => return deny(format!("Account JWT lookup error: {e}")),
    };
    let Some(aj) = acc.jwt.read().clone() else {
        return deny("Account JWT not signed by trusted operator".into());
    };
    if !trust.is_trusted(&aj.issuer) {
        return deny("Account JWT not signed by trusted operator".into());
    }
    let Some(scope) = aj.signing_keys.get(&uc.data.iss) else {
        return deny("User JWT issuer is not known".into());
    };
    if let Some(scope) = scope {
        if uc.data.iss != scope.key {
            return deny("User JWT is not valid: issuer not the scoped signer".into());
        }
        if !uc.has_empty_permissions() {
            return deny(
                "User JWT is not valid: scoped users require no permissions or limits set".into(),
            );
        }
        // Template functions ({{name()}} and the like) are not expanded by this server.
        let t = &scope.template;
        if t.publish
            .allow
            .iter()
            .chain(&t.publish.deny)
            .chain(&t.subscribe.allow)
            .chain(&t.subscribe.deny)
            .any(|s| s.contains("{{"))
        {
            return deny("User JWT generated invalid permissions".into());
        }
        uc.nats.limits = t.clone();
    }
    if aj.expired() {
        return deny("Account JWT has expired".into());
    }
    let bearer = uc.nats.limits.bearer_token;
    if bearer && aj.disallow_bearer {
        return deny("Account does not allow bearer token".into());
    }
    if !bearer {
        use base64::Engine as _;
        if sig.is_empty() {
            return deny("Signature missing".into());
        }
        let raw = base64::engine::GeneralPurpose::new(
            &base64::alphabet::URL_SAFE,
            base64::engine::GeneralPurposeConfig::new()
                .with_encode_padding(false)
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
        );
        let std = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
        );
        let Ok(sig) = raw.decode(sig).or_else(|_| std.decode(sig)) else {
            return deny("Signature not valid base64".into());
        };
        let kp = match nkeys::KeyPair::from_public_key(&uc.data.sub) {
            Ok(k) => k,
            Err(e) => return deny(format!("User nkey not valid: {e}")),
        };
        if kp.verify(nonce.as_bytes(), &sig).is_err() {
            return deny("Signature not verified".into());
        }
    }
    if claims::is_revoked(&aj.claims.nats.revocations, &uc.data.sub, uc.data.iat) {
        return deny("User authentication revoked".into());
    }
    let limits = &uc.nats.limits;
    if !limits.src.is_empty() {
        let ok = host.is_some_and(|ip| {
            limits
                .src
                .iter()
                .filter_map(|c| claims::parse_cidr(c))
                .any(|n| claims::cidr_contains(n, ip))
        });
        if !ok {
            error!(
                "{prefix} - Bad src Ip {}",
                host.map(|h| h.to_string()).unwrap_or_default()
            );
            return None;
        }
    }
    let valid_for = match connect_window(limits) {
        Some(d) => d,
        None => {
            error!("{prefix} - Outside connect times");
            return None;
        }
    };
    let permissions =
        permissions_from_jwt(&limits.permissions()).or_else(|| aj.default_permissions.clone());
    let mut max_payload = limits.payload;
    let mut max_subs = limits.subs;
    min_limit(&mut max_payload, aj.max_payload);
    min_limit(&mut max_subs, aj.max_subs);
    let expires_in = expiry(uc.data.exp, valid_for);
    let authenticated = format!(
        "Authenticated JWT: Client {:?} (claim-name: {:?}, claim-tags: {}) signed with {:?} by Account {:?} (claim-name: {:?}, claim-tags: {}) signed with {:?} has mappings {} accused {:p}",
        uc.data.sub,
        uc.data.name,
        go_quoted_list(&uc.nats.tags),
        uc.data.iss,
        issuer,
        aj.claims.data.name,
        go_quoted_list(&aj.claims.nats.tags),
        aj.issuer,
        acc.has_mappings.load(std::sync::atomic::Ordering::Relaxed),
        Arc::as_ptr(&acc),
    );
    Some(JwtUser {
        account: acc,
        user: uc.data.sub.clone(),
        permissions,
        max_payload,
        max_subs,
        expires_in,
        built,
        authenticated,
    })
}

/// Go's `%q` of a string slice: `[]`, `["a" "b"]`.
fn go_quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// The reference's `setExpiration`: the JWT's expiry, or the end of the connect window
/// when that comes first.
fn expiry(exp: i64, valid_for: Duration) -> Option<Duration> {
    if exp == 0 {
        return (!valid_for.is_zero()).then_some(valid_for);
    }
    let now = claims::now_unix();
    let at = if exp > now {
        Duration::from_secs((exp - now) as u64)
    } else {
        Duration::ZERO
    };
    if !valid_for.is_zero() && valid_for < at {
        Some(valid_for)
    } else {
        Some(at)
    }
}

/// The reference's `validateTimes`: `Some(how long the window stays open)` (zero without
/// windows), `None` outside every window. Windows are read in local time; other time
/// zones are not supported (no time zone database here).
fn connect_window(l: &claims::UserPermissionLimits) -> Option<Duration> {
    if l.times.is_empty() {
        return Some(Duration::ZERO);
    }
    let utc = l.times_location == "UTC";
    if !claims::known_location(&l.times_location) {
        return None;
    }
    let now = claims::now_unix();
    for r in &l.times {
        let (Some(s), Some(e)) = (claims::parse_clock(&r.start), claims::parse_clock(&r.end))
        else {
            return None;
        };
        let overnight = (s.0, s.1, s.2) > (e.0, e.1, e.2);
        let start = day_time(now, s, 0, utc);
        if start < now {
            let end = day_time(now, e, if overnight { 1 } else { 0 }, utc);
            if end > now {
                return Some(Duration::from_secs((end - now) as u64));
            }
        }
    }
    None
}

/// Unix time of `hh:mm:ss` on the day of `now` (plus `days`), local or UTC.
fn day_time(now: i64, hms: (u32, u32, u32), days: i32, utc: bool) -> i64 {
    let t = now as libc::time_t;
    // SAFETY: localtime_r/gmtime_r/mktime/timegm read and write only the tm we pass.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if utc {
            libc::gmtime_r(&t, &mut tm);
        } else {
            libc::localtime_r(&t, &mut tm);
        }
        tm.tm_hour = hms.0 as i32;
        tm.tm_min = hms.1 as i32;
        tm.tm_sec = hms.2 as i32;
        tm.tm_mday += days;
        tm.tm_isdst = -1;
        (if utc {
            libc::timegm(&mut tm)
        } else {
            libc::mktime(&mut tm)
        }) as i64
    }
}

/// The `Trusted Operators` lines of the start-up banner.
pub fn log_operators(opts: &Options) {
    use tracing::info;
    if opts.trusted_operators.is_empty() {
        return;
    }
    info!("Trusted Operators");
    for op in &opts.trusted_operators {
        info!("  System  : {:?}", op.data.aud);
        info!("  Operator: {:?}", op.data.name);
        info!("  Issued  : {}", go_time(op.data.iat));
        if op.data.exp == 0 {
            info!("  Expires : Never");
        } else {
            info!("  Expires : {}", go_time(op.data.exp));
        }
    }
    if opts.system_account.is_empty() {
        warn!("Trusted Operators should utilize a System Account");
    }
}

/// Go's `time.Unix(t, 0).String()` in local time: `2026-12-02 04:26:10 +0000 UTC`.
fn go_time(t: i64) -> String {
    let secs = t as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we pass; tm_zone points at static data.
    let (tm, zone) = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        (tm, zone)
    };
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}{:02} {zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        off / 3600,
        (off % 3600) / 60
    )
}
