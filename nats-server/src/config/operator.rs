//! `operator`, `resolver`, `resolver_preload`, `resolver_pinned_accounts` and
//! `trusted_keys`: operator (JWT) mode settings, with the reference's load-time checks and
//! wording (`nats-server -t` reports these).

use super::apply::{conv, Report};
use super::{Entry, Kind};
use crate::accounts::claims;
use crate::options::{Options, ResolverOptions};

/// The reference's message for a resolver it cannot make sense of (with its double space).
const BAD_RESOLVER: &str = "error parsing account resolver, should be MEM or  URL(\"url\") or a map containing dir and type state=[FULL|CACHE])";

/// What the `operator` entries left to do once every key is read.
#[derive(Default)]
pub(super) struct Pending {
    operators_seen: bool,
    resolver_seen: bool,
}

/// Reads one operator JWT: a file holding it (decorated or not), or the JWT itself.
pub fn read_operator_jwt(name: &str) -> Result<(String, claims::OperatorClaims), String> {
    let contents = match std::fs::read(name) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            if !name.starts_with("eyJ") {
                return Err(crate::tls::open_error(std::path::Path::new(name), &e));
            }
            name.to_string()
        }
    };
    let jwt = claims::parse_decorated_jwt(&contents);
    let oc = claims::decode_operator(&jwt)?;
    Ok((jwt, oc))
}

pub(super) fn operator(e: &Entry, opts: &mut Options, p: &mut Pending, r: &mut Report) {
    p.operators_seen = true;
    let files: Vec<String> = match &e.value.kind {
        Kind::String(s) => vec![s.clone()],
        _ => {
            r.err(
                &e.key_pos,
                format!(
                    "error parsing operators: unsupported type {}",
                    e.value.type_name()
                ),
            );
            Vec::new()
        }
    };
    opts.trusted_operators.clear();
    for f in files {
        match read_operator_jwt(&f) {
            Ok((_, oc)) => opts.trusted_operators.push(oc),
            Err(err) => r.err(&e.key_pos, format!("error parsing operator JWT: {err}")),
        }
    }
}

/// Go's `url.Parse` refuses little: control characters and bad `%` escapes.
fn url_parses(u: &str) -> bool {
    let b = u.as_bytes();
    if b.iter().any(|c| *c < 0x20 || *c == 0x7f) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    true
}

/// The URL of `URL(...)`: the reference's pattern
/// `(?i)(?:URL){1}(?:\({1}\s*"?([^\s"]*)"?\s*\){1})?\s*`, which yields "" when the
/// parenthesized part does not match.
fn url_of(v: &str) -> Option<String> {
    let up = v.to_ascii_uppercase();
    let at = up.find("URL")?;
    let rest = &v[at + 3..];
    let inner = (|| {
        let r = rest.strip_prefix('(')?;
        let r = r.trim_start();
        let r = r.strip_prefix('"').unwrap_or(r);
        let end = r
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(r.len());
        let url = &r[..end];
        let r = &r[end..];
        let r = r.strip_prefix('"').unwrap_or(r);
        r.trim_start().strip_prefix(')')?;
        Some(url.to_string())
    })();
    Some(inner.unwrap_or_default())
}

pub(super) fn resolver(e: &Entry, opts: &mut Options, p: &mut Pending, r: &mut Report) {
    p.resolver_seen = true;
    opts.resolver = None;
    match &e.value.kind {
        Kind::String(v) => {
            if v.to_ascii_uppercase().contains("MEM") {
                opts.resolver = Some(ResolverOptions::Memory);
            } else if let Some(url) = url_of(v) {
                if !url_parses(url.trim()) {
                    r.err(
                        &e.key_pos,
                        format!("error parsing account resolver url [{:?}]", url.trim()),
                    );
                    return;
                }
                opts.resolver = Some(ResolverOptions::Url(url));
            }
        }
        Kind::Map(m) => {
            let mut dir = String::new();
            let mut kind = String::new();
            let mut del = false;
            let mut ttl = false;
            let mut sync = false;
            let mut bad_duration = None;
            for me in m.entries() {
                match me.key.as_str() {
                    "dir" => match me.value.as_str() {
                        Some(s) => dir = s.to_string(),
                        None => return r.err(&me.key_pos, conv(&me.value, "string")),
                    },
                    "type" => match me.value.as_str() {
                        Some(s) => kind = s.to_string(),
                        None => return r.err(&me.key_pos, conv(&me.value, "string")),
                    },
                    "allow_delete" => match me.value.as_bool() {
                        Some(b) => del = b,
                        None => return r.err(&me.key_pos, conv(&me.value, "bool")),
                    },
                    "limit" if me.value.as_i64().is_none() => {
                        return r.err(&me.key_pos, conv(&me.value, "int64"));
                    }
                    "ttl" | "interval" | "timeout" => match me.value.as_str() {
                        Some(s) => match super::parse_duration(s) {
                            Ok(d) => {
                                if me.key == "ttl" {
                                    ttl = !d.is_zero();
                                } else if me.key == "interval" {
                                    sync = !d.is_zero();
                                }
                            }
                            Err(err) => {
                                bad_duration.get_or_insert(err);
                            }
                        },
                        None => return r.err(&me.key_pos, conv(&me.value, "string")),
                    },
                    _ => {}
                }
            }
            if let Some(err) = bad_duration {
                return r.err(&e.key_pos, err);
            }
            if dir.is_empty() {
                return r.err(
                    &e.key_pos,
                    "dir has no value and needs to point to a directory",
                );
            }
            if let Ok(md) = std::fs::metadata(&dir) {
                use std::os::unix::fs::PermissionsExt as _;
                if !md.is_dir() || md.permissions().mode() & (1 << 7) == 0 {
                    return r.err(&e.key_pos, "dir needs to point to an accessible directory");
                }
            }
            match kind.to_uppercase().as_str() {
                "CACHE" => {
                    if sync {
                        r.err(&e.key_pos, "CACHE does not accept sync");
                    }
                    if del {
                        r.err(&e.key_pos, "CACHE does not accept allow_delete");
                    }
                    opts.resolver = Some(ResolverOptions::Dir { full: false, dir });
                }
                "FULL" => {
                    if ttl {
                        r.err(&e.key_pos, "FULL does not accept ttl");
                    }
                    opts.resolver = Some(ResolverOptions::Dir { full: true, dir });
                }
                _ => {}
            }
        }
        _ => {
            return r.err(
                &e.key_pos,
                format!(
                    "error parsing operator resolver, wrong type {}",
                    e.value.type_name()
                ),
            )
        }
    }
    if opts.resolver.is_none() {
        r.err(&e.key_pos, BAD_RESOLVER);
    }
}

pub(super) fn preload(e: &Entry, opts: &mut Options, r: &mut Report) {
    let Some(m) = e.value.as_map() else {
        return r.err(
            &e.key_pos,
            "preload should be a map of account_public_key:account_jwt",
        );
    };
    opts.resolver_preload.clear();
    for me in m.entries() {
        let Some(jwt) = me.value.as_str() else {
            r.err(&me.key_pos, "preload map value should be a string JWT");
            continue;
        };
        if claims::decode_account(jwt).is_err() {
            r.err(&me.key_pos, "invalid account JWT");
            continue;
        }
        opts.resolver_preload.retain(|(k, _)| k != &me.key);
        opts.resolver_preload
            .push((me.key.clone(), jwt.to_string()));
    }
    opts.resolver_preload.sort();
}

/// A string or an array of strings, with the reference's messages naming `what`; also
/// the position later errors are reported at (the reference's last token read: the
/// array's last element, else the entry).
fn string_list(e: &Entry, what: &str, r: &mut Report) -> (Option<Vec<String>>, super::Pos) {
    let mut at = e.key_pos.clone();
    let list = match &e.value.kind {
        Kind::String(s) => Some(vec![s.clone()]),
        Kind::Array(items) => {
            let mut out = Vec::new();
            for v in items {
                at = v.pos.clone();
                match v.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => r.err(
                        &v.pos,
                        format!(
                            "error parsing {what}: unsupported type in array {}",
                            v.type_name()
                        ),
                    ),
                }
            }
            Some(out)
        }
        _ => {
            r.err(
                &e.key_pos,
                format!(
                    "error parsing {what}: unsupported type {}",
                    e.value.type_name()
                ),
            );
            None
        }
    };
    (list, at)
}

pub(super) fn trusted(e: &Entry, opts: &mut Options, r: &mut Report) {
    let (keys, at) = string_list(e, "trusted", r);
    if let Some(keys) = keys {
        opts.trusted_keys = keys;
    }
    for key in &opts.trusted_keys {
        if !claims::is_operator_key(key) {
            r.err(
                &at,
                format!("trust key {key:?} required to be a valid public operator nkey"),
            );
        }
    }
}

pub(super) fn pinned(e: &Entry, opts: &mut Options, r: &mut Report) {
    if let (Some(keys), _) = string_list(e, "resolver_pinned_accounts", r) {
        opts.resolver_pinned_accounts = Some(keys);
    }
}

/// After every key: a single operator brings its account server (when no resolver is
/// configured) and its system account (when none is configured).
pub(super) fn finish(opts: &mut Options, p: &Pending) {
    if !p.operators_seen || opts.trusted_operators.len() != 1 {
        return;
    }
    let op = &opts.trusted_operators[0];
    if opts.resolver.is_none() && !p.resolver_seen && url_parses(op.nats.account_server_url.trim())
    {
        opts.resolver = Some(ResolverOptions::Url(format!(
            "{}/accounts",
            op.nats.account_server_url.trim()
        )));
    }
    if opts.system_account.is_empty() {
        opts.system_account = op.nats.system_account.clone();
    }
}
