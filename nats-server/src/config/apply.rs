//! From a parsed configuration tree to `Options`, with the reference's checks and
//! wording: every problem is collected as `<file>:<line>:<col>: <message>` (at the key's
//! position) and reported together; a few are warnings that only `-t` treats as fatal.

use super::{Entry, Kind, Map, Pos, Value};
use crate::options::{
    NkeyUser, Options, Permissions, ResponsePermission, SubjectPermission, TlsOptions, User,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What loading a file produced besides the options.
#[derive(Debug, Default)]
pub struct Report {
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

impl Report {
    pub(super) fn err(&mut self, pos: &Pos, msg: impl std::fmt::Display) {
        self.errors
            .push(format!("{}: {}", pos.reference_prefix(), msg));
    }

    /// An error the reference reports without a position.
    fn err_bare(&mut self, msg: impl std::fmt::Display) {
        self.errors.push(msg.to_string());
    }

    fn warn(&mut self, pos: &Pos, msg: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}: {}", pos.reference_prefix(), msg));
    }

    /// The reference's combined message: warnings first, then errors, one per line.
    pub fn combined(&self) -> String {
        let mut all: Vec<&str> = self.warnings.iter().map(String::as_str).collect();
        all.extend(self.errors.iter().map(String::as_str));
        all.join("\n")
    }
}

/// Why a configuration file could not be used. `Display` is the text after `nats-server: `.
#[derive(Debug)]
pub enum LoadError {
    /// Syntax, include or variable errors from the parser.
    Parse(String),
    /// Option errors (and the warnings that came with them).
    Options(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Parse(s) => f.write_str(s),
            // The reference ends this list with a newline of its own.
            LoadError::Options(s) => writeln!(f, "{s}"),
        }
    }
}

/// Reads `path` into `opts` (which should hold the defaults). Returns the warnings.
pub fn load_file(path: &Path, opts: &mut Options) -> Result<Vec<String>, LoadError> {
    let root = super::parse_file(path).map_err(|e| LoadError::Parse(e.to_string()))?;
    opts.config_file = Some(path.to_path_buf());
    let mut r = Report::default();
    if let Some(m) = root.as_map() {
        apply_top(m, opts, &mut r);
    }
    if r.errors.is_empty() {
        Ok(r.warnings)
    } else {
        Err(LoadError::Options(r.combined()))
    }
}

// ---- typed accessors with the reference's conversion errors ----

pub(super) fn conv(v: &Value, want: &str) -> String {
    format!(
        "interface conversion: interface {{}} is {}, not {want}",
        v.type_name()
    )
}

pub(super) fn get_int(e: &Entry, r: &mut Report) -> Option<i64> {
    match e.value.as_i64() {
        Some(i) => Some(i),
        None => {
            r.err(&e.key_pos, conv(&e.value, "int64"));
            None
        }
    }
}

pub(super) fn get_bool(e: &Entry, r: &mut Report) -> Option<bool> {
    match e.value.as_bool() {
        Some(b) => Some(b),
        None => {
            r.err(&e.key_pos, conv(&e.value, "bool"));
            None
        }
    }
}

pub(super) fn get_str(e: &Entry, r: &mut Report) -> Option<String> {
    match e.value.as_str() {
        Some(s) => Some(s.to_string()),
        None => {
            r.err(&e.key_pos, conv(&e.value, "string"));
            None
        }
    }
}

pub(super) fn get_map<'a>(e: &'a Entry, r: &mut Report) -> Option<&'a Map> {
    match e.value.as_map() {
        Some(m) => Some(m),
        None => {
            r.err(&e.key_pos, conv(&e.value, "map[string]interface {}"));
            None
        }
    }
}

fn usize_of(i: i64) -> usize {
    i.max(0) as usize
}

/// `ping_interval` / `write_deadline`: a duration string, or (deprecated) seconds.
fn get_lenient_duration(e: &Entry, name: &str, r: &mut Report) -> Option<Duration> {
    match &e.value.kind {
        Kind::String(s) => match super::parse_duration(s) {
            Ok(d) => Some(d),
            Err(msg) => {
                r.err(&e.key_pos, format!("error parsing {name}: {msg}"));
                None
            }
        },
        Kind::Integer(i) => {
            r.warn(
                &e.key_pos,
                format!(
                    "invalid use of field \"{name}\": {name} should be converted to a duration"
                ),
            );
            Some(Duration::from_secs((*i).max(0) as u64))
        }
        _ => {
            r.err(&e.key_pos, conv(&e.value, "string"));
            None
        }
    }
}

/// Durations that must be strings (`lame_duck_duration`, `expires`).
fn get_strict_duration(e: &Entry, name: &str, r: &mut Report) -> Option<Duration> {
    let s = get_str(e, r)?;
    match super::parse_duration(&s) {
        Ok(d) => Some(d),
        Err(msg) => {
            r.err(&e.key_pos, format!("error parsing {name}: {msg}"));
            None
        }
    }
}

/// Seconds given as an integer or a float.
fn seconds(v: &Value) -> Option<Duration> {
    let f = v.as_f64()?;
    (f.is_finite() && f >= 0.0).then(|| Duration::from_secs_f64(f))
}

/// `listen`/`http`-style values: a port number, or `host:port`.
fn host_port(e: &Entry, r: &mut Report) -> Option<(Option<String>, i32)> {
    match &e.value.kind {
        Kind::Integer(p) => Some((None, *p as i32)),
        Kind::String(s) => {
            let Some((h, p)) = crate::cli::split_host_port(s) else {
                r.err(
                    &e.key_pos,
                    format!("could not parse address string {}", go_q(s)),
                );
                return None;
            };
            match p.parse::<i32>() {
                Ok(p) => Some((Some(h.to_string()), p)),
                Err(_) => {
                    r.err(&e.key_pos, format!("could not parse port {}", go_q(p)));
                    None
                }
            }
        }
        _ => {
            r.err(&e.key_pos, conv(&e.value, "string"));
            None
        }
    }
}

fn go_q(s: &str) -> String {
    format!("{s:?}")
}

/// Top-level options the reference knows but this server does not act on: accepted
/// silently so valid reference configurations still load.
const IGNORED_TOP: &[&str] = &[
    "connect_error_reports",
    "reconnect_error_reports",
    "server_tags",
    "mqtt",
    "resolver_tls",
    "max_traced_msg_len",
    "prof_port",
    "http_base_path",
    "trace_verbose",
    "disable_sublist_cache",
    "no_sublist_cache",
    "ocsp",
    "default_js_domain",
];

fn apply_top(m: &Map, opts: &mut Options, r: &mut Report) {
    let mut op = super::operator::Pending::default();
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "listen" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        opts.host = h;
                    }
                    opts.port = p;
                }
            }
            "port" => {
                if let Some(i) = get_int(e, r) {
                    opts.port = i as i32;
                }
            }
            "server_name" => {
                if let Some(s) = get_str(e, r) {
                    opts.server_name = s;
                }
            }
            "host" | "net" => {
                if let Some(s) = get_str(e, r) {
                    opts.host = s;
                }
            }
            "client_advertise" => {
                if let Some(s) = get_str(e, r) {
                    opts.client_advertise = s;
                }
            }
            "http" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        opts.http_host = h;
                    }
                    opts.http_port = p;
                }
            }
            "https" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        opts.http_host = h;
                    }
                    opts.https_port = p;
                }
            }
            "http_port" | "monitor_port" => {
                if let Some(i) = get_int(e, r) {
                    opts.http_port = i as i32;
                }
            }
            "https_port" => {
                if let Some(i) = get_int(e, r) {
                    opts.https_port = i as i32;
                }
            }
            "debug" => {
                if let Some(b) = get_bool(e, r) {
                    opts.debug = b;
                }
            }
            "trace" => {
                if let Some(b) = get_bool(e, r) {
                    opts.trace = b;
                }
            }
            "logtime" => {
                if let Some(b) = get_bool(e, r) {
                    opts.logtime = b;
                }
            }
            "logfile" | "log_file" => {
                if let Some(s) = get_str(e, r) {
                    opts.log_file = Some(PathBuf::from(s));
                }
            }
            "logfile_size_limit" | "log_size_limit" => {
                if let Some(i) = get_int(e, r) {
                    opts.log_size_limit = i.max(0) as u64;
                }
            }
            "syslog" => {
                if let Some(b) = get_bool(e, r) {
                    opts.syslog = b;
                }
            }
            "remote_syslog" => {
                if let Some(s) = get_str(e, r) {
                    opts.remote_syslog = s;
                }
            }
            "pidfile" | "pid_file" => {
                if let Some(s) = get_str(e, r) {
                    opts.pid_file = Some(PathBuf::from(s));
                }
            }
            "ports_file_dir" => {
                if let Some(s) = get_str(e, r) {
                    opts.ports_file_dir = Some(PathBuf::from(s));
                }
            }
            "max_connections" | "max_conn" => {
                if let Some(i) = get_int(e, r) {
                    opts.max_connections = usize_of(i);
                }
            }
            "max_subscriptions" | "max_subs" => {
                if let Some(i) = get_int(e, r) {
                    opts.max_subscriptions = usize_of(i);
                }
            }
            "max_control_line" => {
                if let Some(i) = get_int(e, r) {
                    opts.max_control_line = usize_of(i);
                }
            }
            "max_payload" => {
                if let Some(i) = get_int(e, r) {
                    opts.max_payload = usize_of(i);
                }
            }
            "jetstream" => apply_jetstream(e, opts, r),
            "store_dir" => {
                if let Some(v) = get_str(e, r) {
                    opts.store_dir = v;
                }
            }
            "max_pending" => {
                if let Some(i) = get_int(e, r) {
                    opts.max_pending = usize_of(i);
                }
            }
            "max_traced_msg_len" => {
                if let Some(i) = get_int(e, r) {
                    opts.max_traced_msg_len = usize_of(i);
                }
            }
            "write_deadline" => {
                if let Some(d) = get_lenient_duration(e, "write_deadline", r) {
                    opts.write_deadline = d;
                }
            }
            "ping_interval" => {
                if let Some(d) = get_lenient_duration(e, "ping_interval", r) {
                    opts.ping_interval = d;
                }
            }
            "ping_max" => {
                if let Some(i) = get_int(e, r) {
                    opts.ping_max = i.clamp(0, u32::MAX as i64) as u32;
                }
            }
            "lame_duck_duration" => {
                if let Some(d) = get_strict_duration(e, "lame_duck_duration", r) {
                    if d < Duration::from_secs(30) {
                        r.err(
                            &e.key_pos,
                            format!(
                                "invalid lame_duck_duration of {}, minimum is 30 seconds",
                                nats_common::monitor::go_duration_string(d)
                            ),
                        );
                    } else {
                        opts.lame_duck_duration = d;
                    }
                }
            }
            "lame_duck_grace_period" => {
                if let Some(d) = get_strict_duration(e, "lame_duck_grace_period", r) {
                    opts.lame_duck_grace_period = d;
                }
            }
            "no_header_support" => {
                if let Some(b) = get_bool(e, r) {
                    opts.no_header_support = b;
                }
            }
            "allow_non_tls" => {
                if let Some(b) = get_bool(e, r) {
                    opts.allow_non_tls = b;
                }
            }
            "no_auth_user" => {
                if let Some(s) = get_str(e, r) {
                    opts.no_auth_user = s;
                }
            }
            "authorization" => {
                if let Some(am) = get_map(e, r) {
                    apply_authorization(e, am, opts, r);
                }
            }
            "accounts" => super::accounts::apply_accounts(e, opts, r),
            "mappings" | "maps" => opts.mappings = super::accounts::parse_mappings(e, r),
            "system_account" | "system" => {
                if let Some(s) = get_str(e, r) {
                    opts.system_account = s;
                }
            }
            "no_system_account" | "no_system" | "no_sys_acc" => {
                if let Some(b) = get_bool(e, r) {
                    opts.no_system_account = b;
                }
            }
            "tls" => {
                if let Some(tm) = get_map(e, r) {
                    if let Some(t) = parse_tls(e, tm, r) {
                        opts.tls = Some(t);
                    }
                }
            }
            "cluster" => {
                if let Some(cm) = get_map(e, r) {
                    apply_cluster(cm, opts, r);
                }
            }
            "leafnodes" | "leaf" => match e.value.as_map() {
                Some(lm) => apply_leafnodes(lm, opts, r),
                None => r.err(
                    &e.key_pos,
                    format!(
                        "Expected map to define a leafnode, got {}",
                        e.value.type_name()
                    ),
                ),
            },
            "websocket" => match e.value.as_map() {
                Some(wm) => apply_websocket(wm, opts, r),
                None => r.err(
                    &e.key_pos,
                    format!(
                        "Expected websocket to be a map, got {}",
                        e.value.type_name()
                    ),
                ),
            },
            "gateway" => {
                if let Some(gm) = get_map(e, r) {
                    apply_gateway(gm, opts, r);
                }
            }
            "trace_verbose" => {
                if let Some(b) = get_bool(e, r) {
                    opts.trace_verbose = b;
                    opts.trace = opts.trace || b;
                }
            }
            "disable_sublist_cache" | "no_sublist_cache" => {
                if let Some(b) = get_bool(e, r) {
                    opts.no_sublist_cache = b;
                }
            }
            "http_base_path" => {
                if let Some(s) = get_str(e, r) {
                    opts.http_base_path = s;
                }
            }
            "operator" | "operators" | "roots" | "root" | "root_operators" | "root_operator" => {
                super::operator::operator(e, opts, &mut op, r)
            }
            "resolver" | "account_resolver" | "accounts_resolver" => {
                super::operator::resolver(e, opts, &mut op, r)
            }
            "resolver_preload" => super::operator::preload(e, opts, r),
            "resolver_pinned_accounts" => super::operator::pinned(e, opts, r),
            "trusted" | "trusted_keys" => super::operator::trusted(e, opts, r),
            k if IGNORED_TOP.contains(&k) => {}
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
    super::operator::finish(opts, &op);
}

/// The parts of an `authorization` block.
#[derive(Default)]
struct AuthBlock {
    user: String,
    pass: String,
    token: String,
    timeout: Option<Duration>,
    users: Option<Vec<User>>,
    nkeys: Vec<NkeyUser>,
    default_permissions: Option<Permissions>,
}

/// The `authorization {}` of a cluster or gateway block: one user (or none), no token.
fn single_user_authorization(e: &Entry, r: &mut Report, what: &str) -> Option<AuthBlock> {
    let a = parse_authorization(get_map(e, r)?, r);
    if a.users.is_some() {
        r.err(
            &e.key_pos,
            format!("{what} authorization does not allow multiple users"),
        );
        return None;
    }
    if !a.token.is_empty() {
        r.err(
            &e.key_pos,
            format!("{what} authorization does not support tokens"),
        );
        return None;
    }
    Some(a)
}

fn parse_authorization(m: &Map, r: &mut Report) -> AuthBlock {
    let mut a = AuthBlock::default();
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "user" | "username" => a.user = get_str(e, r).unwrap_or_default(),
            "pass" | "password" => a.pass = get_str(e, r).unwrap_or_default(),
            "token" => a.token = get_str(e, r).unwrap_or_default(),
            // Any non-number is taken as one second, as the reference does.
            "timeout" => a.timeout = Some(seconds(&e.value).unwrap_or(Duration::from_secs(1))),
            "users" => {
                let (users, nkeys) = parse_users(e, r);
                a.users = Some(users);
                a.nkeys.extend(nkeys);
            }
            "default_permission" | "default_permissions" | "permissions" => {
                a.default_permissions = parse_permissions(&e.value, r);
            }
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
    if let Some(dp) = &a.default_permissions {
        if let Some(users) = &mut a.users {
            for u in users.iter_mut().filter(|u| u.permissions.is_none()) {
                u.permissions = Some(dp.clone());
            }
        }
        for n in a.nkeys.iter_mut().filter(|n| n.permissions.is_none()) {
            n.permissions = Some(dp.clone());
        }
    }
    a
}

fn apply_authorization(e: &Entry, m: &Map, opts: &mut Options, r: &mut Report) {
    let a = parse_authorization(m, r);
    if (!a.user.is_empty() || !a.pass.is_empty()) && !a.token.is_empty() {
        r.err(&e.key_pos, "Cannot have a user/pass and token");
    }
    if a.users.is_some() {
        if !a.user.is_empty() {
            r.err(
                &e.key_pos,
                "Can not have a single user/pass and a users array",
            );
        }
        if !a.token.is_empty() {
            r.err(&e.key_pos, "Can not have a token and a users array");
        }
    }
    let mut seen = std::collections::HashSet::new();
    for u in opts.users.iter().chain(a.users.iter().flatten()) {
        if !seen.insert(u.username.clone()) {
            r.err(
                &e.key_pos,
                format!("Duplicate user {:?} detected", u.username),
            );
        }
    }
    opts.username = a.user;
    opts.password = a.pass;
    opts.token = a.token;
    if let Some(t) = a.timeout {
        opts.auth_timeout = t;
    }
    if let Some(users) = a.users {
        opts.users.extend(users);
    }
    opts.nkeys.extend(a.nkeys);
    if a.default_permissions.is_some() {
        opts.default_permissions = a.default_permissions;
    }
}

pub(super) fn parse_users(e: &Entry, r: &mut Report) -> (Vec<User>, Vec<NkeyUser>) {
    let mut users = Vec::new();
    let mut nkeys = Vec::new();
    let Some(arr) = e.value.as_array() else {
        r.err(&e.key_pos, conv(&e.value, "[]interface {}"));
        return (users, nkeys);
    };
    for item in arr {
        let Some(um) = item.as_map() else {
            r.err(&item.pos, conv(item, "map[string]interface {}"));
            continue;
        };
        let mut user = User::default();
        let mut nkey = String::new();
        let mut perms = None;
        for ue in um.entries() {
            if ue.used_as_variable {
                continue;
            }
            match ue.key.to_ascii_lowercase().as_str() {
                "user" | "username" => user.username = get_str(ue, r).unwrap_or_default(),
                "pass" | "password" => user.password = get_str(ue, r).unwrap_or_default(),
                "nkey" => nkey = get_str(ue, r).unwrap_or_default(),
                "permission" | "permissions" => perms = parse_permissions(&ue.value, r),
                // Accepted for compatibility; every user may use every connection type here.
                "allowed_connection_types" | "connection_types" | "clients" | "account" => {}
                _ => r.err(&ue.key_pos, format!("unknown field {:?}", ue.key)),
            }
        }
        // The reference points at the entry's first key.
        let at = um.entries().first().map_or(&item.pos, |e| &e.key_pos);
        if !nkey.is_empty() {
            if !is_user_nkey(&nkey) {
                r.err(at, "Not a valid public nkey for a user");
                continue;
            }
            nkeys.push(NkeyUser {
                nkey,
                permissions: perms,
                account: String::new(),
            });
            continue;
        }
        if user.username.is_empty() {
            r.err(at, "User entry requires a user");
            continue;
        }
        user.permissions = perms;
        users.push(user);
    }
    (users, nkeys)
}

fn is_user_nkey(k: &str) -> bool {
    k.starts_with('U') && nkeys::KeyPair::from_public_key(k).is_ok()
}

/// `permissions { publish, subscribe, allow_responses }`.
pub(crate) fn parse_permissions(v: &Value, r: &mut Report) -> Option<Permissions> {
    let Some(m) = v.as_map() else {
        r.err(&v.pos, conv(v, "map[string]interface {}"));
        return None;
    };
    let mut p = Permissions::default();
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "pub" | "publish" | "import" => p.publish = parse_subject_permission(&e.value, r),
            "sub" | "subscribe" | "export" => p.subscribe = parse_subject_permission(&e.value, r),
            "publish_allow_responses" | "allow_responses" => {
                p.response = parse_allow_responses(&e.value, r)
            }
            _ => r.err(
                &e.key_pos,
                format!("Unknown field {:?} parsing permissions", e.key),
            ),
        }
    }
    Some(p)
}

fn parse_allow_responses(v: &Value, r: &mut Report) -> Option<ResponsePermission> {
    let mut rp = ResponsePermission {
        max_msgs: 1,
        expires: Duration::from_secs(120),
    };
    match &v.kind {
        Kind::Bool(true) => Some(rp),
        Kind::Bool(false) => None,
        Kind::Map(m) => {
            for e in m.entries() {
                match e.key.to_ascii_lowercase().as_str() {
                    "max" | "max_msgs" | "max_messages" | "max_responses" => {
                        if let Some(i) = get_int(e, r) {
                            rp.max_msgs = usize_of(i);
                        }
                    }
                    "expires" | "expiration" | "ttl" => {
                        if let Some(d) = get_strict_duration(e, "expires", r) {
                            rp.expires = d;
                        }
                    }
                    _ => r.err(
                        &e.key_pos,
                        format!("Unknown field {:?} parsing permissions", e.key),
                    ),
                }
            }
            Some(rp)
        }
        _ => {
            r.err_bare(format!(
                "error parsing response permissions, expected a boolean or a map, got {}",
                v.type_name()
            ));
            None
        }
    }
}

/// A string or array (allow list), or `{allow, deny}`.
fn parse_subject_permission(v: &Value, r: &mut Report) -> Option<SubjectPermission> {
    match &v.kind {
        Kind::Map(m) => {
            let mut sp = SubjectPermission::default();
            for e in m.entries() {
                match e.key.to_ascii_lowercase().as_str() {
                    "allow" => sp.allow = subject_list(&e.value, r)?,
                    "deny" => sp.deny = subject_list(&e.value, r)?,
                    _ => r.err(
                        &e.key_pos,
                        format!(
                            "Unknown field name {:?} parsing subject permissions, only 'allow' or 'deny' are permitted",
                            e.key
                        ),
                    ),
                }
            }
            Some(sp)
        }
        _ => Some(SubjectPermission {
            allow: subject_list(v, r)?,
            deny: Vec::new(),
        }),
    }
}

fn subject_list(v: &Value, r: &mut Report) -> Option<Vec<String>> {
    let items: Vec<&Value> = match &v.kind {
        Kind::String(_) => vec![v],
        Kind::Array(a) => a.iter().collect(),
        _ => {
            r.err_bare(format!(
                "Expected subject permissions to be a subject, or array of subjects, got {}",
                v.type_name()
            ));
            return None;
        }
    };
    let mut out = Vec::new();
    for it in items {
        let Some(s) = it.as_str() else {
            r.err_bare(format!(
                "Subject in permissions array cannot be cast to string, got {}",
                it.type_name()
            ));
            return None;
        };
        // A rule may name a queue group after the subject: `foo.* workers`.
        let subj = s.split_whitespace().next().unwrap_or("");
        if !nats_common::subject::is_valid_subject(subj.as_bytes()) {
            r.err_bare(format!("subject {s:?} is not a valid subject"));
            return None;
        }
        out.push(s.to_string());
    }
    Some(out)
}

/// A `tls {}` block (clients, routes or monitoring). The certificate files are loaded
/// right away so a bad path is a configuration error, as in the reference.
pub(crate) fn parse_tls(e: &Entry, m: &Map, r: &mut Report) -> Option<TlsOptions> {
    parse_tls_ctx(e, m, r, false)
}

/// [`parse_tls`] for the dialling side (leaf remotes): a certificate is optional.
fn parse_tls_ctx(e: &Entry, m: &Map, r: &mut Report, client: bool) -> Option<TlsOptions> {
    let mut t = TlsOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let before = r.errors.len();
    for te in m.entries() {
        if te.used_as_variable {
            continue;
        }
        match te.key.to_ascii_lowercase().as_str() {
            "cert_file" => t.cert_file = get_str(te, r).map(PathBuf::from),
            "key_file" => t.key_file = get_str(te, r).map(PathBuf::from),
            "ca_file" => t.ca_file = get_str(te, r).map(PathBuf::from),
            "verify" => t.verify = get_bool(te, r).unwrap_or(false),
            "verify_and_map" => {
                t.verify_and_map = get_bool(te, r).unwrap_or(false);
                t.verify = t.verify || t.verify_and_map;
            }
            "verify_cert_and_check_known_urls" => {
                t.verify = t.verify || get_bool(te, r).unwrap_or(false);
            }
            "insecure" => t.insecure = get_bool(te, r).unwrap_or(false),
            "timeout" => match &te.value.kind {
                Kind::String(s) => match super::parse_duration(s) {
                    Ok(d) => t.timeout = d,
                    Err(msg) => r.err(&te.key_pos, format!("error parsing tls config, {msg}")),
                },
                _ => match seconds(&te.value) {
                    Some(d) => t.timeout = d,
                    None => r.err(&te.key_pos, conv(&te.value, "float64")),
                },
            },
            // Accepted; rustls picks its own safe suites and groups.
            "cipher_suites"
            | "curve_preferences"
            | "pinned_certs"
            | "connection_rate_limit"
            | "handshake_first"
            | "min_version" => {}
            _ => r.err(
                &te.key_pos,
                format!("error parsing tls config, unknown field [{:?}]", te.key),
            ),
        }
    }
    if r.errors.len() != before {
        return None;
    }
    let checked = if client {
        crate::tls::check_client_files(&t)
    } else {
        crate::tls::check_files(&t)
    };
    if let Err(msg) = checked {
        r.err(&e.key_pos, msg);
        return None;
    }
    Some(t)
}

fn apply_cluster(m: &Map, opts: &mut Options, r: &mut Report) {
    let c = &mut opts.cluster;
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "name" => c.name = get_str(e, r).unwrap_or_default(),
            "listen" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        c.host = h;
                    }
                    c.port = p;
                }
            }
            "port" => {
                if let Some(i) = get_int(e, r) {
                    c.port = i as i32;
                }
            }
            "host" | "net" => c.host = get_str(e, r).unwrap_or_default(),
            "advertise" | "cluster_advertise" => c.advertise = get_str(e, r).unwrap_or_default(),
            "no_advertise" => c.no_advertise = get_bool(e, r).unwrap_or(false),
            "connect_retries" => {
                if let Some(i) = get_int(e, r) {
                    c.connect_retries = i.clamp(0, u32::MAX as i64) as u32;
                }
            }
            "authorization" => {
                let Some(a) = single_user_authorization(e, r, "Cluster") else {
                    continue;
                };
                c.username = a.user;
                c.password = a.pass;
                if let Some(t) = a.timeout {
                    c.auth_timeout = t;
                }
            }
            "routes" => match e.value.as_array() {
                Some(a) => {
                    c.routes = a
                        .iter()
                        .filter_map(|v| match v.as_str() {
                            Some(s) => Some(s.to_string()),
                            None => {
                                r.err(&v.pos, conv(v, "string"));
                                None
                            }
                        })
                        .collect();
                }
                None => match e.value.as_str() {
                    Some(s) => c.routes = vec![s.to_string()],
                    None => r.err(&e.key_pos, conv(&e.value, "[]interface {}")),
                },
            },
            "tls" => {
                if let Some(tm) = get_map(e, r) {
                    c.tls = parse_tls(e, tm, r);
                }
            }
            "permissions" => {
                if let Some(p) = parse_permissions(&e.value, r) {
                    if p.response.is_some() {
                        r.err(
                            &e.key_pos,
                            "Cluster permissions do not support allow_responses",
                        );
                    }
                    c.import = p.publish;
                    c.export = p.subscribe;
                }
            }
            "pool_size" | "compression" | "accounts" => {}
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
}

/// The `gateway {}` block, with the reference's errors.
fn apply_gateway(m: &Map, opts: &mut Options, r: &mut Report) {
    let g = &mut opts.gateway;
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "name" => g.name = get_str(e, r).unwrap_or_default(),
            "listen" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        g.host = h;
                    }
                    g.port = p;
                }
            }
            "port" => {
                if let Some(i) = get_int(e, r) {
                    g.port = i as i32;
                }
            }
            "host" | "net" => g.host = get_str(e, r).unwrap_or_default(),
            "advertise" => g.advertise = get_str(e, r).unwrap_or_default(),
            "connect_retries" => {
                if let Some(i) = get_int(e, r) {
                    g.connect_retries = i.clamp(0, u32::MAX as i64) as u32;
                }
            }
            "reject_unknown" | "reject_unknown_cluster" => {
                g.reject_unknown = get_bool(e, r).unwrap_or(false)
            }
            "authorization" => {
                let Some(a) = single_user_authorization(e, r, "Gateway") else {
                    continue;
                };
                g.username = a.user;
                g.password = a.pass;
                if let Some(t) = a.timeout {
                    g.auth_timeout = t;
                }
            }
            "tls" => {
                if let Some(tm) = get_map(e, r) {
                    g.tls = parse_tls(e, tm, r);
                }
            }
            "gateways" => {
                let Some(list) = e.value.as_array() else {
                    // The reference returns this one at once, without a position.
                    r.err_bare(format!(
                        "Expected gateways field to be an array, got {}",
                        go_type(&e.value)
                    ));
                    continue;
                };
                g.gateways = list.iter().filter_map(|v| remote_gateway(v, r)).collect();
            }
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
}

fn go_type(v: &Value) -> &'static str {
    match &v.kind {
        Kind::String(_) => "string",
        Kind::Integer(_) => "int64",
        Kind::Bool(_) => "bool",
        Kind::Map(_) => "map[string]interface {}",
        Kind::Float(_) => "float64",
        Kind::DateTime(_) => "time.Time",
        Kind::Array(_) => "[]interface {}",
    }
}

/// One entry of `gateway.gateways`.
fn remote_gateway(v: &Value, r: &mut Report) -> Option<crate::options::RemoteGatewayOptions> {
    let Some(m) = v.as_map() else {
        r.err(
            &v.pos,
            "Expected gateway entry to be a map/struct, got a non-map value",
        );
        return None;
    };
    let mut g = crate::options::RemoteGatewayOptions::default();
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "name" => g.name = get_str(e, r).unwrap_or_default(),
            "tls" => {
                if let Some(tm) = get_map(e, r) {
                    g.tls = parse_tls(e, tm, r);
                }
            }
            "url" => {
                if let Some(s) = get_str(e, r) {
                    match gateway_url(&s) {
                        Some(u) => g.urls.push(u),
                        None => r.err(&e.key_pos, format!("error parsing gateway url [{s:?}]")),
                    }
                }
            }
            "urls" => {
                let Some(list) = e.value.as_array() else {
                    r.err(&e.key_pos, conv(&e.value, "[]interface {}"));
                    continue;
                };
                let mut urls = Vec::new();
                let mut bad = false;
                for u in list {
                    let Some(s) = u.as_str() else {
                        r.err(&u.pos, conv(u, "string"));
                        bad = true;
                        continue;
                    };
                    match gateway_url(s) {
                        Some(x) => urls.push(x),
                        None => {
                            r.err(&u.pos, format!("error parsing gateway url [{s:?}]"));
                            bad = true;
                        }
                    }
                }
                if !bad {
                    g.urls = urls;
                }
            }
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
    Some(g)
}

/// A gateway URL as Go's url.Parse takes it: an optional valid scheme, no spaces or
/// control characters.
fn gateway_url(s: &str) -> Option<String> {
    let t = s.trim();
    if t.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    if let Some((scheme, _)) = t.split_once("://") {
        let mut cs = scheme.chars();
        let ok = cs.next().is_some_and(|c| c.is_ascii_alphabetic())
            && cs.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !ok {
            return None;
        }
    }
    Some(t.to_string())
}

/// A `no_auth_user` must name a configured user.
fn check_no_auth_user(opts: &Options, name: &str) -> Result<(), String> {
    if opts.users.is_empty() && opts.nkeys.is_empty() {
        return Err(format!(
            "no_auth_user: {name:?} present, but users are not defined"
        ));
    }
    if !opts.users.iter().any(|u| u.username == name) && !opts.nkeys.iter().any(|n| n.nkey == name)
    {
        return Err(format!(
            "no_auth_user: {name:?} not present as user in authorization block or account configuration"
        ));
    }
    Ok(())
}

/// The `websocket {}` block.
fn apply_websocket(m: &Map, opts: &mut Options, r: &mut Report) {
    let w = &mut opts.websocket;
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "listen" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        w.host = h;
                    }
                    w.port = p;
                }
            }
            "port" => {
                if let Some(i) = get_int(e, r) {
                    w.port = i as i32;
                }
            }
            "host" | "net" => w.host = get_str(e, r).unwrap_or_default(),
            "advertise" => w.advertise = get_str(e, r).unwrap_or_default(),
            "no_tls" => w.no_tls = get_bool(e, r).unwrap_or(false),
            "tls" => {
                if let Some(tm) = get_map(e, r) {
                    if let Some(t) = parse_tls(e, tm, r) {
                        w.tls = Some(t);
                    }
                }
            }
            "same_origin" => w.same_origin = get_bool(e, r).unwrap_or(false),
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins"
            | "origin" => match (e.value.as_array(), e.value.as_str()) {
                (Some(a), _) => {
                    w.allowed_origins = a
                        .iter()
                        .filter_map(|v| match v.as_str() {
                            Some(s) => Some(s.to_string()),
                            None => {
                                r.err(
                                    &v.pos,
                                    format!(
                                    "error parsing allowed origins: unsupported type in array {}",
                                    v.type_name()
                                ),
                                );
                                None
                            }
                        })
                        .collect()
                }
                (None, Some(s)) => w.allowed_origins = vec![s.to_string()],
                _ => r.err(
                    &e.key_pos,
                    format!(
                        "error parsing allowed origins: unsupported type {}",
                        e.value.type_name()
                    ),
                ),
            },
            "handshake_timeout" => match &e.value.kind {
                Kind::Integer(i) => w.handshake_timeout = Duration::from_secs((*i).max(0) as u64),
                Kind::String(s) => match super::parse_duration(s) {
                    Ok(d) => w.handshake_timeout = d,
                    Err(msg) => r.err(&e.key_pos, msg),
                },
                _ => r.err(
                    &e.key_pos,
                    format!(
                        "error parsing handshake timeout: unsupported type {}",
                        e.value.type_name()
                    ),
                ),
            },
            "compress" | "compression" => w.compression = get_bool(e, r).unwrap_or(false),
            "authorization" | "authentication" => {
                // The reference's simple authorization: no users lists here.
                if let Some(am) = get_map(e, r) {
                    let before = r.errors.len();
                    for ae in am.entries() {
                        if ae.used_as_variable {
                            continue;
                        }
                        match ae.key.to_ascii_lowercase().as_str() {
                            "user" | "username" => w.username = get_str(ae, r).unwrap_or_default(),
                            "pass" | "password" => w.password = get_str(ae, r).unwrap_or_default(),
                            "token" => w.token = get_str(ae, r).unwrap_or_default(),
                            "timeout" => {
                                w.auth_timeout =
                                    Some(seconds(&ae.value).unwrap_or(Duration::from_secs(1)))
                            }
                            _ => r.err(&ae.key_pos, format!("unknown field {:?}", ae.key)),
                        }
                    }
                    // A value of the wrong type leaves the reference without its parsed
                    // block, which it then dereferences: a second error, and the rest of
                    // the websocket block is not read.
                    let conversion = r.errors[before..]
                        .iter()
                        .any(|m| m.contains("interface conversion"));
                    if conversion {
                        r.err(
                            &e.key_pos,
                            "runtime error: invalid memory address or nil pointer dereference",
                        );
                        return;
                    }
                }
            }
            "jwt_cookie" => w.jwt_cookie = get_str(e, r).unwrap_or_default(),
            "no_auth_user" => w.no_auth_user = get_str(e, r).unwrap_or_default(),
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
    // The reference's baseline: a websocket listener without a host listens on all.
    if w.port != 0 && w.host.is_empty() {
        w.host = crate::options::DEFAULT_HOST.to_string();
    }
}

/// The reference's checks of the `websocket {}` block at start.
pub fn validate_websocket(opts: &Options) -> Result<(), String> {
    let w = &opts.websocket;
    if w.port == 0 {
        return Ok(());
    }
    if w.tls.is_none() && !w.no_tls {
        return Err("websocket requires TLS configuration".into());
    }
    if !w.no_auth_user.is_empty() {
        check_no_auth_user(opts, &w.no_auth_user)?;
    }
    if !opts.users.is_empty() || !opts.nkeys.is_empty() {
        if !w.username.is_empty() {
            return Err(
                "websocket authentication username not compatible with presence of users/nkeys"
                    .into(),
            );
        }
        if !w.token.is_empty() {
            return Err(
                "websocket authentication token not compatible with presence of users/nkeys".into(),
            );
        }
    }
    if !w.jwt_cookie.is_empty() && opts.trusted_operators.is_empty() && opts.trusted_keys.is_empty()
    {
        return Err(format!(
            "trusted operators or trusted keys configuration is required for JWT authentication via cookie {:?}",
            w.jwt_cookie
        ));
    }
    Ok(())
}

fn apply_leafnodes(m: &Map, opts: &mut Options, r: &mut Report) {
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        let l = &mut opts.leaf;
        match e.key.to_ascii_lowercase().as_str() {
            "listen" => {
                if let Some((h, p)) = host_port(e, r) {
                    if let Some(h) = h {
                        l.host = h;
                    }
                    l.port = p;
                }
            }
            "port" => {
                if let Some(i) = get_int(e, r) {
                    l.port = i as i32;
                }
            }
            "host" | "net" => l.host = get_str(e, r).unwrap_or_default(),
            "authorization" => {
                let Some(am) = get_map(e, r) else { continue };
                leaf_authorization(e, am, l, r);
            }
            "remotes" => match e.value.as_array() {
                Some(arr) => l.remotes = leaf_remotes(arr, r),
                None => r.err(
                    &e.key_pos,
                    format!(
                        "Expected remotes field to be an array, got {}",
                        e.value.type_name()
                    ),
                ),
            },
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                if let Some(i) = get_int(e, r) {
                    l.reconnect = Duration::from_secs(i.max(0) as u64);
                }
            }
            "tls" => {
                if let Some(tm) = get_map(e, r) {
                    l.tls = parse_tls(e, tm, r);
                }
            }
            "leafnode_advertise" | "advertise" => l.advertise = get_str(e, r).unwrap_or_default(),
            "no_advertise" => l.no_advertise = get_bool(e, r).unwrap_or(false),
            "min_version" | "minimum_version" => {
                let Some(v) = get_str(e, r) else { continue };
                match leaf_min_version_error(&v) {
                    Some(msg) => r.err(&e.key_pos, msg),
                    None => l.min_version = v,
                }
            }
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
}

/// The reference's check of `leafnodes.min_version` (at least 2.8.0).
fn leaf_min_version_error(v: &str) -> Option<String> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums {
        Some(n) if n.len() == 3 => {
            if (n[0], n[1], n[2]) < (2, 8, 0) {
                Some("the minimum version should be at least 2.8.0".into())
            } else {
                None
            }
        }
        _ => Some(format!(
            "invalid leafnode's minimum version: invalid semver {v:?}"
        )),
    }
}

fn leaf_authorization(
    at: &Entry,
    m: &Map,
    l: &mut crate::options::LeafNodeOptions,
    r: &mut Report,
) {
    let mut users_set = false;
    for e in m.entries() {
        if e.used_as_variable {
            continue;
        }
        match e.key.to_ascii_lowercase().as_str() {
            "user" | "username" => l.username = get_str(e, r).unwrap_or_default(),
            "pass" | "password" => l.password = get_str(e, r).unwrap_or_default(),
            // Any non-number is taken as one second, as the reference does.
            "timeout" => {
                l.auth_timeout = seconds(&e.value).unwrap_or(Duration::from_secs(1));
            }
            "account" => l.account = get_str(e, r).unwrap_or_default(),
            "users" => {
                let Some(arr) = e.value.as_array() else {
                    r.err(
                        &e.key_pos,
                        format!(
                            "Expected users field to be an array, got {}",
                            go_value(&e.value)
                        ),
                    );
                    continue;
                };
                users_set = true;
                l.users.clear();
                for item in arr {
                    let Some(um) = item.as_map() else {
                        r.err(
                            &item.pos,
                            format!(
                                "Expected user entry to be a map/struct, got {}",
                                go_value(item)
                            ),
                        );
                        continue;
                    };
                    let mut u = crate::options::LeafUser::default();
                    for ue in um.entries() {
                        if ue.used_as_variable {
                            continue;
                        }
                        match ue.key.to_ascii_lowercase().as_str() {
                            "user" | "username" => u.username = get_str(ue, r).unwrap_or_default(),
                            "pass" | "password" => u.password = get_str(ue, r).unwrap_or_default(),
                            "account" => u.account = get_str(ue, r).unwrap_or_default(),
                            _ => r.err(&ue.key_pos, format!("unknown field {:?}", ue.key)),
                        }
                    }
                    l.users.push(u);
                }
            }
            _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
        }
    }
    if users_set && !l.users.is_empty() {
        if !l.username.is_empty() {
            r.err(
                &at.key_pos,
                "can not have a single user/pass and a users array",
            );
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for u in &l.users {
            if !seen.insert(u.username.clone()) {
                r.err(
                    &at.key_pos,
                    format!(
                        "duplicate user {:?} detected in leafnode authorization",
                        u.username
                    ),
                );
                return;
            }
        }
    }
}

/// Go's `%v` of a configuration value, for the reference's "got ..." messages.
pub(super) fn go_value(v: &Value) -> String {
    match &v.kind {
        Kind::String(s) => s.clone(),
        Kind::Integer(i) => i.to_string(),
        Kind::Float(f) => f.to_string(),
        Kind::Bool(b) => b.to_string(),
        Kind::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Kind::Map(m) => format!(
            "map[{}]",
            m.entries()
                .iter()
                .map(|e| format!("{}:{}", e.key, go_value(&e.value)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Kind::DateTime(_) => v.type_name().to_string(),
    }
}

/// A leaf remote URL as the reference's `url.Parse` takes it (spaces and control bytes
/// are what it refuses in practice).
fn leaf_url(s: &str, pos: &Pos, r: &mut Report) -> Option<String> {
    let t = s.trim();
    if t.bytes().any(|b| b <= b' ' || b == 0x7f) {
        r.err(pos, format!("error parsing leafnode url [{t:?}]"));
        return None;
    }
    Some(t.to_string())
}

fn leaf_remotes(arr: &[Value], r: &mut Report) -> Vec<crate::options::RemoteLeafOptions> {
    let mut out = Vec::new();
    for item in arr {
        let Some(rm) = item.as_map() else {
            r.err(
                &item.pos,
                format!(
                    "Expected remote leafnode entry to be a map/struct, got {}",
                    go_value(item)
                ),
            );
            continue;
        };
        let mut remote = crate::options::RemoteLeafOptions::default();
        for e in rm.entries() {
            if e.used_as_variable {
                continue;
            }
            match e.key.to_ascii_lowercase().as_str() {
                "no_randomize" | "dont_randomize" => {
                    remote.no_randomize = get_bool(e, r).unwrap_or(false)
                }
                "url" | "urls" => match &e.value.kind {
                    Kind::Array(a) => {
                        let mut urls = Vec::new();
                        for u in a {
                            let Some(s) = u.as_str() else {
                                r.err(&u.pos, conv(u, "string"));
                                continue;
                            };
                            if urls.iter().any(|x: &String| x == s) {
                                r.warn(&u.pos, "Duplicate leafnode entry detected".to_string());
                                continue;
                            }
                            if let Some(url) = leaf_url(s, &u.pos, r) {
                                urls.push(url);
                            }
                        }
                        remote.urls = urls;
                    }
                    Kind::String(s) => {
                        if let Some(url) = leaf_url(s, &e.key_pos, r) {
                            remote.urls.push(url);
                        }
                    }
                    _ => r.err(
                        &e.key_pos,
                        format!(
                            "Expected remote leafnode url to be an array or string, got {}",
                            go_value(&e.value)
                        ),
                    ),
                },
                "account" | "local" => remote.account = get_str(e, r).unwrap_or_default(),
                "creds" | "credentials" => {
                    if let Some(p) = get_str(e, r) {
                        remote.credentials = Some(PathBuf::from(expand_home(&p)));
                    }
                }
                "tls" => {
                    if let Some(tm) = get_map(e, r) {
                        remote.tls = parse_tls_ctx(e, tm, r, true);
                    }
                }
                "hub" => remote.hub = get_bool(e, r).unwrap_or(false),
                "deny_imports" | "deny_import" => {
                    remote.deny_imports = subject_list(&e.value, r).unwrap_or_default()
                }
                "deny_exports" | "deny_export" => {
                    remote.deny_exports = subject_list(&e.value, r).unwrap_or_default()
                }
                "ws_compress"
                | "ws_compression"
                | "websocket_compress"
                | "websocket_compression"
                | "ws_no_masking"
                | "websocket_no_masking"
                | "jetstream_cluster_migrate"
                | "js_cluster_migrate" => {}
                _ => r.err(&e.key_pos, format!("unknown field {:?}", e.key)),
            }
        }
        out.push(remote);
    }
    out
}

/// `~` at the start of a credentials path is the home directory, as the reference expands it.
fn expand_home(p: &str) -> String {
    if let Some(rest) = p.strip_prefix('~') {
        if let Ok(home) = std::env::var("HOME") {
            return format!("{home}{rest}");
        }
    }
    p.to_string()
}

/// The reference's start-up checks of the `leafnodes` block (`validateLeafNode`).
pub fn validate_leaf(opts: &Options) -> Result<(), String> {
    validate_leaf_accounts(opts)?;
    if opts.leaf.port != 0
        && (!opts.gateway.name.is_empty() || opts.gateway.port != 0)
        && opts.system_account.is_empty()
    {
        return Err(
            "leaf nodes and gateways (both being defined) require a system account to also be configured"
                .into(),
        );
    }
    Ok(())
}

fn validate_leaf_accounts(opts: &Options) -> Result<(), String> {
    if !opts.trusted_operators.is_empty() || !opts.trusted_keys.is_empty() {
        if !opts.leaf.users.is_empty() {
            return Err("operator mode does not allow specifying user in leafnode config".into());
        }
        for r in &opts.leaf.remotes {
            if !(r.account.starts_with('A') && nkeys::KeyPair::from_public_key(&r.account).is_ok())
            {
                return Err("operator mode requires account nkeys in remotes. Please add an `account` key to each remote in your `leafnodes` section, to assign it to an account. Each account value should be a 56 character public key, starting with the letter 'A'".into());
            }
        }
        return Ok(());
    }
    let exists = |name: &str| {
        name.is_empty()
            || name == crate::options::GLOBAL_ACCOUNT
            || (opts.system_account.is_empty()
                && !opts.no_system_account
                && name == crate::options::SYSTEM_ACCOUNT)
            || opts.system_account == name
            || opts.accounts.iter().any(|a| a.name == name)
    };
    let missing = |name: &str, what: &str| {
        format!("cannot find local account {name:?} specified in leafnode {what}")
    };
    if !exists(&opts.leaf.account) {
        return Err(missing(&opts.leaf.account, "authorization"));
    }
    for u in &opts.leaf.users {
        if !exists(&u.account) {
            return Err(missing(&u.account, "authorization"));
        }
    }
    for r in &opts.leaf.remotes {
        if !exists(&r.account) {
            return Err(missing(&r.account, "remote"));
        }
    }
    Ok(())
}

/// Start-up checks the reference makes after options are final (not under `-t`).
pub fn validate_auth(opts: &Options) -> Result<(), String> {
    if !opts.no_auth_user.is_empty() {
        check_no_auth_user(opts, &opts.no_auth_user)?;
    }
    if opts.https_port != 0 && opts.tls.is_none() {
        return Err("TLS Config is required for HTTPS".into());
    }
    Ok(())
}

/// The reference's sizes for JetStream limits: an integer, or a string ending in
/// `K`, `M`, `G` or `T`.
fn storage_size(v: &Value) -> Result<i64, String> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    let Some(s) = v.as_str() else {
        return Err("must be int64 or string".into());
    };
    if s.is_empty() {
        return Ok(0);
    }
    let (num, suffix) = s.split_at(s.len() - 1);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseInt: parsing {num:?}: invalid syntax"))?;
    let shift = match suffix {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err("sizes defined as strings must end in K, M, G, T".into()),
    };
    Ok(n << shift)
}

/// `jetstream: true|enabled|disabled` or `jetstream { store_dir, max_memory_store,
/// max_file_store, enabled }`.
fn apply_jetstream(e: &Entry, opts: &mut Options, r: &mut Report) {
    match &e.value.kind {
        Kind::Bool(b) => opts.jetstream = *b,
        Kind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => opts.jetstream = true,
            "disabled" | "disable" => opts.jetstream = false,
            _ => r.err(
                &e.key_pos,
                format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
            ),
        },
        Kind::Map(m) => {
            let mut enable = true;
            for me in m.entries() {
                match me.key.to_ascii_lowercase().as_str() {
                    "store" | "store_dir" | "storedir" => {
                        if !opts.store_dir.is_empty() {
                            r.err(&me.key_pos, "Duplicate 'store_dir' configuration");
                        } else if let Some(v) = get_str(me, r) {
                            opts.store_dir = v;
                        }
                    }
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        match storage_size(&me.value) {
                            Ok(v) => opts.jetstream_max_memory = v,
                            Err(err) => r.err(&me.key_pos, format!("max_mem_store {err}")),
                        }
                    }
                    "max_file_store" | "max_file" => match storage_size(&me.value) {
                        Ok(v) => opts.jetstream_max_store = v,
                        Err(err) => r.err(&me.key_pos, format!("max_file_store {err}")),
                    },
                    "enable" | "enabled" => {
                        if let Some(b) = get_bool(me, r) {
                            enable = b;
                        }
                    }
                    // Domains, encryption, limits, hints: not acted on yet (README).
                    _ => {}
                }
            }
            opts.jetstream = enable;
        }
        _ => r.err(&e.key_pos, conv(&e.value, "map[string]interface {}")),
    }
}
