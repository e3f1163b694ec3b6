//! Who may connect, and what they may publish and subscribe to.

use crate::client::Client;
use crate::options::{self, Options};
use crate::server::Server;
use base64::Engine as _;
use nats_common::info::ConnectInfo;
use nats_common::subject;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub enum Outcome {
    Allowed {
        user: String,
        /// The account the user belongs to; empty for the global account.
        account: String,
        permissions: Option<Arc<Permissions>>,
    },
    /// `user` is what the client claimed, for the log line.
    Denied,
}

/// Per-connection authentication inputs: the INFO nonce, names from a verified client
/// certificate, and the CONNECT that was accepted (kept so a reload can re-check it).
#[derive(Debug, Clone, Default)]
pub struct AuthState {
    pub nonce: String,
    pub tls_names: Vec<String>,
    pub connect: Option<Arc<ConnectInfo>>,
}

/// Bumped by every reload that changes authorization; connections re-read their
/// permissions when they see a new value.
static GENERATION: AtomicU64 = AtomicU64::new(0);

pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

pub fn bump_generation() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// One allow or deny rule: a subject pattern, optionally limited to a queue group
/// (`"foo.* workers"`).
#[derive(Debug, Clone)]
struct Rule {
    subject: String,
    queue: Option<String>,
}

impl Rule {
    fn parse(s: &str) -> Rule {
        let mut it = s.split_whitespace();
        let subject = it.next().unwrap_or("").to_string();
        let queue = it.next().map(str::to_string);
        Rule { subject, queue }
    }
}

fn rules(v: &[String]) -> Vec<Rule> {
    v.iter().map(|s| Rule::parse(s)).collect()
}

/// Compiled publish/subscribe rules of one user. Deny wins over allow; a side with no
/// allow list allows everything not denied.
#[derive(Debug, Default)]
pub struct Permissions {
    pub_allow: Option<Vec<Rule>>,
    pub_deny: Vec<Rule>,
    sub_allow: Option<Vec<Rule>>,
    sub_deny: Vec<Rule>,
    /// `allow_responses`: (max messages per request, time to answer).
    pub response: Option<(usize, Duration)>,
}

fn any_match(patterns: &[Rule], subj: &[u8]) -> bool {
    patterns
        .iter()
        .any(|p| p.queue.is_none() && subject::matches(p.subject.as_bytes(), subj))
}

/// The reference matches a subscription subject against the rule set as a sublist would:
/// plain rules matching the subject decide; rules naming queue groups decide for queue
/// subscriptions when they match the subject.
fn sub_rule_hits(rules: &[Rule], subj: &[u8], queue: Option<&[u8]>) -> (bool, Option<bool>) {
    let mut plain = false;
    let mut queue_hit: Option<bool> = None;
    for r in rules {
        if !subject::matches(r.subject.as_bytes(), subj) {
            continue;
        }
        match (&r.queue, queue) {
            (None, _) => plain = true,
            (Some(rq), Some(q)) => {
                let hit = subject::matches(rq.as_bytes(), q);
                queue_hit = Some(queue_hit.unwrap_or(false) || hit);
            }
            (Some(_), None) => {}
        }
    }
    (plain, queue_hit)
}

impl Permissions {
    pub fn from_options(p: &options::Permissions) -> Permissions {
        let split = |sp: &Option<options::SubjectPermission>| match sp {
            None => (None, Vec::new()),
            Some(sp) => (
                (!sp.allow.is_empty()).then(|| rules(&sp.allow)),
                rules(&sp.deny),
            ),
        };
        let (mut pub_allow, pub_deny) = split(&p.publish);
        let (sub_allow, sub_deny) = split(&p.subscribe);
        let response = p.response.as_ref().map(|r| (r.max_msgs, r.expires));
        // With allow_responses and no publish allow list, only replies may be published.
        if response.is_some() && pub_allow.is_none() {
            pub_allow = Some(Vec::new());
        }
        Permissions {
            pub_allow,
            pub_deny,
            sub_allow,
            sub_deny,
            response,
        }
    }

    pub fn can_publish(&self, subj: &[u8]) -> bool {
        if let Some(allow) = &self.pub_allow {
            if !any_match(allow, subj) {
                return false;
            }
        }
        !any_match(&self.pub_deny, subj)
    }

    /// A publish the rules refused may still be the answer to a request this client got.
    pub fn response_allowed(&self, client: &Client, subj: &[u8]) -> bool {
        self.response.is_some() && !any_match(&self.pub_deny, subj) && client.replies.take(subj)
    }

    /// Whether a subscribe deny rule covers this message subject. A wildcard subscription
    /// (`>`) may match subjects the user is denied; the reference filters those when
    /// delivering, so do we.
    pub fn denies_delivery(&self, subj: &[u8], queue: Option<&[u8]>) -> bool {
        let (plain, q) = sub_rule_hits(&self.sub_deny, subj, queue);
        plain || q == Some(true)
    }

    pub fn has_sub_deny(&self) -> bool {
        !self.sub_deny.is_empty()
    }

    pub fn can_subscribe(&self, subj: &[u8], queue: Option<&[u8]>) -> bool {
        if let Some(allow) = &self.sub_allow {
            let (plain, q) = sub_rule_hits(allow, subj, queue);
            let ok = match q {
                Some(qhit) => qhit,
                None => plain,
            };
            if !ok {
                return false;
            }
        }
        let (plain, q) = sub_rule_hits(&self.sub_deny, subj, queue);
        !(plain || q == Some(true))
    }
}

/// Reply subjects of requests delivered to a client with `allow_responses`, each good
/// for a limited number of answers within a limited time.
#[derive(Default)]
pub struct Replies {
    on: AtomicBool,
    inner: Mutex<RepliesInner>,
}

#[derive(Default)]
struct RepliesInner {
    max: usize,
    ttl: Duration,
    map: HashMap<Box<[u8]>, (Instant, usize)>,
}

impl Replies {
    pub fn enable(&self, max: usize, ttl: Duration) {
        let mut g = self.inner.lock();
        g.max = max;
        g.ttl = ttl;
        self.on.store(true, Ordering::Release);
    }

    pub fn disable(&self) {
        self.on.store(false, Ordering::Release);
        self.inner.lock().map.clear();
    }

    /// Remembers the reply subject of a message delivered to this client.
    #[inline]
    pub fn note(&self, reply: &[u8]) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let mut g = self.inner.lock();
        if g.map.len() >= 4096 {
            let ttl = g.ttl;
            g.map.retain(|_, (t, _)| t.elapsed() < ttl);
        }
        g.map.insert(reply.into(), (Instant::now(), 0));
    }

    /// Uses one answer to `subj`, if one is left and not expired.
    pub fn take(&self, subj: &[u8]) -> bool {
        if !self.on.load(Ordering::Relaxed) {
            return false;
        }
        let mut g = self.inner.lock();
        let (max, ttl) = (g.max, g.ttl);
        let Some((t, n)) = g.map.get_mut(subj) else {
            return false;
        };
        if !ttl.is_zero() && t.elapsed() > ttl {
            g.map.remove(subj);
            return false;
        }
        *n += 1;
        if max > 0 && *n >= max {
            g.map.remove(subj);
        }
        true
    }
}

/// Whether a stored password is a bcrypt hash.
pub fn is_bcrypt(stored: &str) -> bool {
    let b = stored.as_bytes();
    b.len() > 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// Compares a presented secret with a stored one, plain or bcrypt.
pub fn secret_matches(stored: &str, given: &str) -> bool {
    if is_bcrypt(stored) {
        bcrypt::verify(given, stored).unwrap_or(false)
    } else {
        constant_time_eq(stored.as_bytes(), given.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn perms_for(opts: &Options, p: &Option<options::Permissions>) -> Option<Arc<Permissions>> {
    p.as_ref()
        .or(opts.default_permissions.as_ref())
        .map(|p| Arc::new(Permissions::from_options(p)))
}

/// A fresh nonce for the INFO of a server with nkey users: 11 random bytes, base64url.
pub fn make_nonce() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks an nkey CONNECT: `sig` must be the user key's signature of our nonce.
fn nkey_signature_ok(nkey: &str, nonce: &str, sig: &str) -> bool {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    if nonce.is_empty() {
        return false;
    }
    let Ok(sig) = URL_SAFE_NO_PAD
        .decode(sig.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(sig))
    else {
        return false;
    };
    match nkeys::KeyPair::from_public_key(nkey) {
        Ok(kp) => kp.verify(nonce.as_bytes(), &sig).is_ok(),
        Err(_) => false,
    }
}

fn allowed(user: &str, account: &str, opts: &Options, p: &Option<options::Permissions>) -> Outcome {
    Outcome::Allowed {
        user: user.to_string(),
        account: account.to_string(),
        permissions: perms_for(opts, p),
    }
}

/// Decides whether `info` (with the connection's nonce and certificate names) may
/// connect under `opts`, and with which permissions.
pub fn check(opts: &Options, info: &ConnectInfo, st: &AuthState) -> Outcome {
    if !opts.auth_required() {
        return allowed("", "", opts, &None);
    }
    let claimed = info.user.clone().unwrap_or_default();
    let pass = info.pass.as_deref().unwrap_or_default();
    let nkey = info.nkey.as_deref().unwrap_or_default();
    let has_users = !opts.users.is_empty() || !opts.nkeys.is_empty();
    if has_users {
        // verify_and_map: the certificate names the user; CONNECT credentials do not count.
        if opts.tls.as_ref().is_some_and(|t| t.verify_and_map) {
            for name in &st.tls_names {
                if let Some(u) = opts.users.iter().find(|u| &u.username == name) {
                    return allowed(&u.username, &u.account, opts, &u.permissions);
                }
            }
            return Outcome::Denied;
        }
        let no_creds = claimed.is_empty()
            && pass.is_empty()
            && nkey.is_empty()
            && info.auth_token.as_deref().unwrap_or_default().is_empty();
        if no_creds && !opts.no_auth_user.is_empty() {
            if let Some(u) = opts.users.iter().find(|u| u.username == opts.no_auth_user) {
                return allowed(&u.username, &u.account, opts, &u.permissions);
            }
            if let Some(n) = opts.nkeys.iter().find(|n| n.nkey == opts.no_auth_user) {
                return allowed(&n.nkey, &n.account, opts, &n.permissions);
            }
        }
        if !nkey.is_empty() {
            if let Some(n) = opts.nkeys.iter().find(|n| n.nkey == nkey) {
                let sig = info.sig.as_deref().unwrap_or_default();
                if nkey_signature_ok(nkey, &st.nonce, sig) {
                    return allowed(&n.nkey, &n.account, opts, &n.permissions);
                }
            }
            return Outcome::Denied;
        }
        if let Some(u) = opts.users.iter().find(|u| u.username == claimed) {
            if secret_matches(&u.password, pass) {
                return allowed(&claimed, &u.account, opts, &u.permissions);
            }
        }
        return Outcome::Denied;
    }
    if !opts.token.is_empty() {
        let given = info.auth_token.as_deref().unwrap_or_default();
        return if secret_matches(&opts.token, given) {
            allowed("", "", opts, &None)
        } else {
            Outcome::Denied
        };
    }
    if claimed == opts.username && secret_matches(&opts.password, pass) {
        allowed(&claimed, "", opts, &None)
    } else {
        Outcome::Denied
    }
}

/// The `websocket {}` block has its own `authorization` (user/password or token) or
/// `no_auth_user`: websocket clients authenticate against those, as on the reference.
pub fn ws_override(w: &options::WebsocketOptions) -> bool {
    !w.username.is_empty() || !w.token.is_empty() || !w.no_auth_user.is_empty()
}

/// The options a client is authenticated under: the server's, with a websocket client's
/// overrides in place of the top-level user, password, token and no_auth_user.
pub fn client_opts(opts: Arc<Options>, client: &Client) -> Arc<Options> {
    if client.ws.get().is_none() {
        return opts;
    }
    let w = &opts.websocket;
    if !ws_override(w) && w.auth_timeout.is_none() {
        return opts;
    }
    let mut o = (*opts).clone();
    if let Some(t) = w.auth_timeout {
        o.auth_timeout = t;
    }
    if ws_override(w) {
        o.username = w.username.clone();
        o.password = w.password.clone();
        o.token = w.token.clone();
        o.no_auth_user = w.no_auth_user.clone();
    }
    Arc::new(o)
}

/// Checks a client's CONNECT credentials against the configured users, and remembers
/// what it authenticated with.
pub fn authenticate(server: &Server, client: &Client, info: &ConnectInfo) -> Outcome {
    let opts = client_opts(server.opts(), client);
    let st = client.meta.lock().auth.clone();
    let out = check(&opts, info, &st);
    if let Outcome::Allowed { permissions, .. } = &out {
        client.meta.lock().auth.connect = Some(Arc::new(info.clone()));
        match permissions.as_ref().and_then(|p| p.response) {
            Some((max, ttl)) => client.replies.enable(max, ttl),
            None => client.replies.disable(),
        }
    }
    out
}

/// Re-checks a connected client after a reload: its current permissions, or `None` when
/// its credentials are no longer accepted.
pub fn recheck(server: &Server, client: &Client) -> Option<Option<Arc<Permissions>>> {
    let st = client.meta.lock().auth.clone();
    let info = st.connect.clone()?;
    match check(&client_opts(server.opts(), client), &info, &st) {
        Outcome::Allowed { permissions, .. } => {
            match permissions.as_ref().and_then(|p| p.response) {
                Some((max, ttl)) => client.replies.enable(max, ttl),
                None => client.replies.disable(),
            }
            Some(permissions)
        }
        Outcome::Denied => None,
    }
}

/// `[WRN] Plaintext passwords detected, use nkeys or bcrypt` when any configured password
/// is stored in clear.
pub fn plaintext_warning(opts: &Options) -> bool {
    let tls_map = opts.tls.as_ref().is_some_and(|t| t.verify_and_map);
    (!opts.password.is_empty() && !is_bcrypt(&opts.password))
        || opts
            .users
            .iter()
            .any(|u| !(is_bcrypt(&u.password) || u.password.is_empty() && tls_map))
}

/// The CONNECT JSON for trace lines, with the password hidden as the reference does.
/// A CONNECT argument as the reference traces it: the raw text, with the value of the
/// first `pass…` field replaced by `[REDACTED]` (the reference's pattern
/// `"?\s*pass\S*?"?\s*[:=]\s*"?(([^",\r\n}])*)`, matched here without a regex engine).
pub fn redact_connect(json: &[u8]) -> String {
    let text = String::from_utf8_lossy(json).into_owned();
    match pass_value_span(text.as_bytes()) {
        Some((start, end)) => format!("{}[REDACTED]{}", &text[..start], &text[end..]),
        None => text,
    }
}

/// The span of the first password value in a CONNECT argument, per the reference's pattern.
fn pass_value_span(b: &[u8]) -> Option<(usize, usize)> {
    let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b');
    // `\s*[:=]` from `j`: the position after the separator.
    let sep = |mut j: usize| {
        while j < b.len() && ws(b[j]) {
            j += 1;
        }
        (j < b.len() && matches!(b[j], b':' | b'=')).then_some(j + 1)
    };
    let mut from = 0;
    while let Some(i) = b[from..].windows(4).position(|w| w == b"pass") {
        let after = from + i + 4;
        // `\S*?` lazily: the shortest run of non-space bytes after which `"?\s*[:=]` fits.
        let mut k = after;
        loop {
            let found = if b.get(k) == Some(&b'"') {
                sep(k + 1).or_else(|| sep(k))
            } else {
                sep(k)
            };
            if let Some(mut v) = found {
                while v < b.len() && ws(b[v]) {
                    v += 1;
                }
                if b.get(v) == Some(&b'"') {
                    v += 1;
                }
                let mut e = v;
                while e < b.len() && !matches!(b[e], b'"' | b',' | b'\r' | b'\n' | b'}') {
                    e += 1;
                }
                return Some((v, e));
            }
            if k >= b.len() || ws(b[k]) {
                break;
            }
            k += 1;
        }
        from += i + 1;
    }
    None
}

/// The reference's authentication-error log text: with NKey users configured it names
/// the CONNECT's nkey, with a user list the CONNECT's user, otherwise nothing.
pub fn violation(opts: &Options, user: &str, nkey: &str) -> String {
    if crate::accounts::jwt::trusted_mode(opts) {
        "authentication error".to_string()
    } else if !opts.nkeys.is_empty() {
        format!("authentication error - Nkey {nkey:?}")
    } else if !opts.users.is_empty() {
        format!("authentication error - User {user:?}")
    } else {
        "authentication error".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_traces_redact_the_password_in_place() {
        assert_eq!(
            redact_connect(br#"{"verbose":false,"user":"u","pass":"s3cr,t"}"#),
            r#"{"verbose":false,"user":"u","pass":"[REDACTED],t"}"#
        );
        assert_eq!(
            redact_connect(br#"{"pass" : "x","name":"n"}"#),
            r#"{"pass" : "[REDACTED]","name":"n"}"#
        );
        assert_eq!(
            redact_connect(br#"{"password":"x"}"#),
            r#"{"password":"[REDACTED]"}"#
        );
        assert_eq!(redact_connect(br#"{"name":"pass"}"#), r#"{"name":"pass"}"#);
        assert_eq!(
            redact_connect(br#"{"lang":"go","name":"n"}"#),
            r#"{"lang":"go","name":"n"}"#
        );
    }

    #[test]
    fn deny_wins() {
        let p = Permissions::from_options(&options::Permissions {
            publish: Some(options::SubjectPermission {
                allow: vec!["foo.>".into()],
                deny: vec!["foo.bar".into()],
            }),
            subscribe: Some(options::SubjectPermission {
                allow: vec![],
                deny: vec!["secret.>".into()],
            }),
            response: None,
        });
        assert!(p.can_publish(b"foo.baz"));
        assert!(!p.can_publish(b"foo.bar"));
        assert!(!p.can_publish(b"other"));
        assert!(p.can_subscribe(b"anything", None));
        assert!(!p.can_subscribe(b"secret.x", None));
    }

    #[test]
    fn bcrypt_detection() {
        assert!(is_bcrypt("$2a$11$abcdefghijklmnopqrstuv"));
        assert!(!is_bcrypt("plain"));
        let h = bcrypt::hash("pw", 4).unwrap();
        assert!(secret_matches(&h, "pw"));
        assert!(!secret_matches(&h, "nope"));
    }
}
