//! The `accounts {}` block (users, exports, imports, mappings, limits per account) and
//! `mappings {}`, checked as the reference checks them at load: every account an export or
//! import names must exist, an import needs a matching export that admits the importer, and
//! imports must not form cycles. Messages carry the reference's wording and positions.

use super::apply::{conv, get_int, get_str, parse_permissions, parse_users, Report};
use super::{Entry, Kind, Value};
use crate::options::{
    AccountOptions, ExportOptions, ImportOptions, MapDest, Mapping, Options, ResponseType,
    GLOBAL_ACCOUNT,
};
use nats_common::subject;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// `accounts: [A, B]` or `accounts { A { ... } }`.
pub(super) fn apply_accounts(e: &Entry, opts: &mut Options, r: &mut Report) {
    match &e.value.kind {
        Kind::Array(names) => {
            let mut seen = HashSet::new();
            for n in names {
                let Some(name) = n.as_str() else {
                    r.err(&n.pos, conv(n, "string"));
                    continue;
                };
                if name == GLOBAL_ACCOUNT {
                    r.err(&n.pos, format!("{name:?} is a Reserved Account"));
                    continue;
                }
                if !seen.insert(name.to_string()) {
                    r.err(&n.pos, format!("Duplicate Account Entry: {name}"));
                    continue;
                }
                opts.accounts.push(AccountOptions {
                    name: name.to_string(),
                    ..Default::default()
                });
            }
        }
        Kind::Map(m) => {
            let errors_before = r.errors.len();
            for acc in m.entries() {
                if acc.used_as_variable {
                    continue;
                }
                let Some(am) = acc.value.as_map() else {
                    r.err(&acc.key_pos, "Expected map entries for accounts");
                    continue;
                };
                if acc.key == GLOBAL_ACCOUNT {
                    r.err(&acc.key_pos, format!("{:?} is a Reserved Account", acc.key));
                    continue;
                }
                let mut a = AccountOptions {
                    name: acc.key.clone(),
                    ..Default::default()
                };
                let mut dp = None;
                let mut users = Vec::new();
                let mut nkeys = Vec::new();
                let mut users_at = None;
                for ae in am.entries() {
                    if ae.used_as_variable {
                        continue;
                    }
                    match ae.key.to_ascii_lowercase().as_str() {
                        "nkey" => match ae.value.as_str() {
                            Some(k) if is_account_nkey(k) => a.nkey = k.to_string(),
                            _ => r.err(
                                &ae.key_pos,
                                format!(
                                    "Not a valid public nkey for an account: {:?}",
                                    value_text(&ae.value)
                                ),
                            ),
                        },
                        "users" => {
                            let (u, n) = parse_users(ae, r);
                            users = u;
                            nkeys = n;
                            users_at = Some(ae.key_pos.clone());
                        }
                        "default_permissions" => dp = parse_permissions(&ae.value, r),
                        "exports" => a.exports = parse_exports(ae, r),
                        "imports" => a.imports = parse_imports(ae, r),
                        "mappings" | "maps" => a.mappings = parse_mappings(ae, r),
                        "limits" => parse_limits(ae, r),
                        "jetstream" => a.jetstream = parse_account_jetstream(ae, r),
                        _ => r.err(&ae.key_pos, format!("unknown field {:?}", ae.key)),
                    }
                }
                if let Some(at) = &users_at {
                    if !users.is_empty() || !nkeys.is_empty() {
                        if !opts.username.is_empty() {
                            r.err(at, "Can not have a single user/pass and accounts");
                        } else if !opts.token.is_empty() {
                            r.err(at, "Can not have a token and accounts");
                        }
                    }
                }
                for u in users.iter_mut() {
                    if u.permissions.is_none() {
                        u.permissions = dp.clone();
                    }
                    u.account = a.name.clone();
                }
                for n in nkeys.iter_mut() {
                    if n.permissions.is_none() {
                        n.permissions = dp.clone();
                    }
                    n.account = a.name.clone();
                }
                let at = users_at.as_ref().unwrap_or(&acc.key_pos);
                for u in users {
                    if opts.users.iter().any(|o| o.username == u.username) {
                        r.err(at, format!("Duplicate user {:?} detected", u.username));
                        continue;
                    }
                    opts.users.push(u);
                }
                for n in nkeys {
                    if opts.nkeys.iter().any(|o| o.nkey == n.nkey) {
                        r.err(at, format!("Duplicate nkey {:?} detected", n.nkey));
                        continue;
                    }
                    opts.nkeys.push(n);
                }
                opts.accounts.push(a);
            }
            // Exports and imports are resolved once every account is known, and only when
            // the block itself was clean (as the reference).
            if r.errors.len() == errors_before {
                resolve(e, opts, r);
            }
        }
        _ => r.err(&e.key_pos, conv(&e.value, "map[string]interface {}")),
    }
}

fn is_account_nkey(k: &str) -> bool {
    k.starts_with('A') && nkeys::KeyPair::from_public_key(k).is_ok()
}

/// A value as Go's `%q`/`%v` shows it in messages.
fn value_text(v: &Value) -> String {
    match &v.kind {
        Kind::String(s) => s.clone(),
        Kind::Integer(i) => i.to_string(),
        Kind::Bool(b) => b.to_string(),
        _ => format!("{:?}", v.kind),
    }
}

fn parse_limits(e: &Entry, r: &mut Report) {
    let Some(m) = e.value.as_map() else {
        r.err(
            &e.key_pos,
            format!(
                "Expected account limits to be a map/struct, got {}",
                value_text(&e.value)
            ),
        );
        return;
    };
    for le in m.entries() {
        if le.used_as_variable {
            continue;
        }
        match le.key.to_ascii_lowercase().as_str() {
            "max_connections" | "max_conn" | "max_subscriptions" | "max_subs" | "max_payload"
            | "max_pay" | "max_leafnodes" | "max_leafs" => {
                get_int(le, r);
            }
            _ => r.err(
                &le.key_pos,
                format!("Unknown field {:?} parsing account limits", le.key),
            ),
        }
    }
}

// ---- exports ----

fn parse_exports(e: &Entry, r: &mut Report) -> Vec<ExportOptions> {
    let Some(items) = e.value.as_array() else {
        r.err(
            &e.key_pos,
            format!("Exports should be an array, got {}", go_type(&e.value)),
        );
        return Vec::new();
    };
    items.iter().filter_map(|v| parse_export(v, r)).collect()
}

/// Go's `%T` of a config value.
fn go_type(v: &Value) -> &'static str {
    v.type_name()
}

fn parse_export(v: &Value, r: &mut Report) -> Option<ExportOptions> {
    let Some(m) = v.as_map() else {
        r.err(
            &v.pos,
            format!(
                "Export Items should be a map with type entry, got {}",
                go_type(v)
            ),
        );
        return None;
    };
    let mut stream: Option<String> = None;
    let mut service: Option<String> = None;
    let mut x = ExportOptions::default();
    let mut rt_seen = false;
    let mut thresh_seen = false;
    for me in m.entries() {
        if me.used_as_variable {
            continue;
        }
        match me.key.to_ascii_lowercase().as_str() {
            "stream" => {
                if service.is_some() {
                    r.err(
                        &me.key_pos,
                        format!(
                            "Detected stream {:?} but already saw a service",
                            value_text(&me.value)
                        ),
                    );
                    continue;
                }
                if rt_seen || thresh_seen {
                    r.err(&me.key_pos, "Detected response directive on non-service");
                    continue;
                }
                match me.value.as_str() {
                    Some(s) => stream = Some(s.to_string()),
                    None => r.err(
                        &me.key_pos,
                        format!(
                            "Expected stream name to be string, got {}",
                            go_type(&me.value)
                        ),
                    ),
                }
            }
            "service" => {
                if stream.is_some() {
                    r.err(
                        &me.key_pos,
                        format!(
                            "Detected service {:?} but already saw a stream",
                            value_text(&me.value)
                        ),
                    );
                    continue;
                }
                match me.value.as_str() {
                    Some(s) => service = Some(s.to_string()),
                    None => r.err(
                        &me.key_pos,
                        format!(
                            "Expected service name to be string, got {}",
                            go_type(&me.value)
                        ),
                    ),
                }
            }
            "response" | "response_type" => {
                if rt_seen {
                    r.err(&me.key_pos, "Duplicate response type definition");
                    continue;
                }
                rt_seen = true;
                let Some(s) = me.value.as_str() else {
                    r.err(
                        &me.key_pos,
                        format!(
                            "Expected response type to be string, got {}",
                            go_type(&me.value)
                        ),
                    );
                    continue;
                };
                x.response_type = match s.to_ascii_lowercase().as_str() {
                    "single" | "singleton" => ResponseType::Singleton,
                    "stream" => ResponseType::Streamed,
                    "chunk" | "chunked" => ResponseType::Chunked,
                    _ => {
                        r.err(&me.key_pos, format!("Unknown response type: {s:?}"));
                        continue;
                    }
                };
                if stream.is_some() {
                    r.err(&me.key_pos, "Detected response directive on non-service");
                }
            }
            "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                if thresh_seen {
                    r.err(&me.key_pos, "Duplicate response threshold detected");
                    continue;
                }
                thresh_seen = true;
                let Some(s) = me.value.as_str() else {
                    r.err(
                        &me.key_pos,
                        format!(
                            "Expected response threshold to be a parseable time duration, got {}",
                            go_type(&me.value)
                        ),
                    );
                    continue;
                };
                match super::parse_duration(s) {
                    Ok(d) => x.response_threshold = Some(d),
                    Err(_) => {
                        r.err(
                            &me.key_pos,
                            format!(
                                "Expected response threshold to be a parseable time duration, got {s:?}"
                            ),
                        );
                        continue;
                    }
                }
                if stream.is_some() {
                    r.err(&me.key_pos, "Detected response directive on non-service");
                }
            }
            "accounts" => {
                let names = me
                    .value
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                // An empty list is public, as in the reference.
                x.accounts = (!names.is_empty()).then_some(names);
            }
            "latency" => {
                if stream.is_some() {
                    r.err(&me.key_pos, "Detected latency directive on non-service");
                }
            }
            "account_token_position" => {
                if let Some(p) = get_int(me, r) {
                    x.account_token_position = p.max(0) as u32;
                }
            }
            _ => r.err(&me.key_pos, format!("unknown field {:?}", me.key)),
        }
    }
    match (stream, service) {
        (Some(s), _) => {
            x.subject = s;
            Some(x)
        }
        (None, Some(s)) => {
            x.subject = s;
            x.service = true;
            Some(x)
        }
        (None, None) => None,
    }
}

// ---- imports ----

fn parse_imports(e: &Entry, r: &mut Report) -> Vec<ImportOptions> {
    let Some(items) = e.value.as_array() else {
        r.err(
            &e.key_pos,
            format!("Imports should be an array, got {}", go_type(&e.value)),
        );
        return Vec::new();
    };
    let mut out: Vec<ImportOptions> = Vec::new();
    for v in items {
        let Some(im) = parse_import(v, r) else {
            continue;
        };
        if im.service {
            if let Some(dup) = out.iter().find(|o| o.service && o.to == im.to) {
                r.err(
                    &v.pos,
                    format!(
                        "Duplicate service import subject {:?}, previously used in import for account {:?}, subject {:?}",
                        im.to, dup.account, dup.subject
                    ),
                );
                continue;
            }
        }
        out.push(im);
    }
    out
}

fn parse_import(v: &Value, r: &mut Report) -> Option<ImportOptions> {
    let Some(m) = v.as_map() else {
        r.err(
            &v.pos,
            format!(
                "Import Items should be a map with type entry, got {}",
                go_type(v)
            ),
        );
        return None;
    };
    let mut im = ImportOptions::default();
    let mut kind: Option<bool> = None; // Some(true): service
    for me in m.entries() {
        if me.used_as_variable {
            continue;
        }
        match me.key.to_ascii_lowercase().as_str() {
            key @ ("stream" | "service") => {
                let service = key == "service";
                if kind == Some(!service) {
                    let (this, other) = if service {
                        ("service", "stream")
                    } else {
                        ("stream", "service")
                    };
                    r.err(
                        &me.key_pos,
                        format!("Detected {this} but already saw a {other}"),
                    );
                    continue;
                }
                let Some(am) = me.value.as_map() else {
                    let what = if service { "Service" } else { "Stream" };
                    r.err(
                        &me.key_pos,
                        format!(
                            "{what} entry should be an account map, got {}",
                            go_type(&me.value)
                        ),
                    );
                    continue;
                };
                let (mut account, mut subj) = (String::new(), String::new());
                for ae in am.entries() {
                    if ae.used_as_variable {
                        continue;
                    }
                    match ae.key.to_ascii_lowercase().as_str() {
                        "account" => account = get_str(ae, r).unwrap_or_default(),
                        "subject" => subj = get_str(ae, r).unwrap_or_default(),
                        _ => r.err(&ae.key_pos, format!("unknown field {:?}", ae.key)),
                    }
                }
                if account.is_empty() || subj.is_empty() {
                    r.err(&me.key_pos, "Expect an account name and a subject");
                    continue;
                }
                kind = Some(service);
                im.service = service;
                im.account = account;
                im.subject = subj;
            }
            "prefix" => im.prefix = get_str(me, r).unwrap_or_default(),
            "to" => {
                im.to = get_str(me, r).unwrap_or_default();
                if kind == Some(false) && !im.prefix.is_empty() {
                    r.err(
                        &me.key_pos,
                        "Stream import can not have a 'prefix' and a 'to' property",
                    );
                }
            }
            "share" => {
                im.share = me.value.as_bool().unwrap_or_else(|| {
                    r.err(&me.key_pos, conv(&me.value, "bool"));
                    false
                })
            }
            _ => r.err(&me.key_pos, format!("unknown field {:?}", me.key)),
        }
    }
    kind?;
    if im.service && im.to.is_empty() {
        im.to = im.subject.clone();
    }
    Some(im)
}

// ---- mappings ----

/// `mappings { src: dest }`, `{ src: [{destination: d, weight: 50%}, ...] }` or one
/// `{destination, weight}` map.
pub(super) fn parse_mappings(e: &Entry, r: &mut Report) -> Vec<Mapping> {
    let Some(m) = e.value.as_map() else {
        r.err(&e.key_pos, conv(&e.value, "map[string]interface {}"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for me in m.entries() {
        if me.used_as_variable {
            continue;
        }
        if !subject::is_valid_subject(me.key.as_bytes()) {
            r.err(
                &e.key_pos,
                format!("Subject {:?} is not a valid subject", me.key),
            );
            continue;
        }
        let dests = match &me.value.kind {
            Kind::String(d) => vec![MapDest {
                subject: d.clone(),
                weight: 100,
                cluster: String::new(),
            }],
            Kind::Array(items) => items
                .iter()
                .filter_map(|v| parse_map_dest(v, &v.pos, r))
                .collect(),
            Kind::Map(_) => match parse_map_dest(&me.value, &me.key_pos, r) {
                Some(d) => vec![d],
                None => continue,
            },
            _ => {
                r.err(
                    &me.key_pos,
                    format!(
                        "Unknown type {} for mapping destination",
                        go_type(&me.value)
                    ),
                );
                continue;
            }
        };
        let spec: Vec<(&str, u8, &str)> = dests
            .iter()
            .map(|d| (d.subject.as_str(), d.weight, d.cluster.as_str()))
            .collect();
        if let Err(err) = nats_common::transform::Mapping::new(&me.key, spec) {
            match &me.value.kind {
                Kind::String(d) => r.err(
                    &me.key_pos,
                    format!("Error adding mapping for {:?} to {d:?} : {err}", me.key),
                ),
                // The reference's message for these converts the destination to a string,
                // which panics; the panic is reported and ends the block.
                Kind::Array(items) => {
                    let at = items.last().map_or(&me.key_pos, |v| &v.pos);
                    r.err(at, conv(&me.value, "string"));
                    return out;
                }
                _ => {
                    r.err(&me.key_pos, conv(&me.value, "string"));
                    return out;
                }
            }
            continue;
        }
        out.push(Mapping {
            source: me.key.clone(),
            dests,
        });
    }
    out
}

fn parse_map_dest(v: &Value, at: &super::Pos, r: &mut Report) -> Option<MapDest> {
    let Some(m) = v.as_map() else {
        r.err(at, "Expected an entry for the mapping destination");
        return None;
    };
    let mut d = MapDest::default();
    let mut weight_seen = false;
    for de in m.entries() {
        match de.key.to_ascii_lowercase().as_str() {
            "dest" | "destination" => d.subject = get_str(de, r).unwrap_or_default(),
            "weight" => {
                let w = match &de.value.kind {
                    Kind::String(s) => {
                        let t = s.trim_end_matches('%');
                        match t.parse::<i64>() {
                            Ok(w) => w,
                            Err(_) => {
                                r.err(
                                    &de.key_pos,
                                    format!("Invalid weight {t:?} for mapping destination"),
                                );
                                return None;
                            }
                        }
                    }
                    Kind::Integer(w) => *w,
                    _ => {
                        r.err(
                            &de.key_pos,
                            format!(
                                "Unknown entry type for weight of {}\n",
                                value_text(&de.value)
                            ),
                        );
                        return None;
                    }
                };
                if !(0..=100).contains(&w) {
                    r.err(
                        &de.key_pos,
                        format!("Invalid weight {w} for mapping destination"),
                    );
                    return None;
                }
                d.weight = w as u8;
                weight_seen = true;
            }
            "cluster" => d.cluster = get_str(de, r).unwrap_or_default(),
            _ => {
                r.err(
                    &de.key_pos,
                    format!("Unknown field {:?} for mapping destination", de.key),
                );
                return None;
            }
        }
    }
    if !weight_seen {
        r.err(
            at,
            format!("Missing weight for mapping destination {:?}", d.subject),
        );
        return None;
    }
    Some(d)
}

// ---- resolving exports and imports across accounts ----

const STREAM_NOT_AUTHORIZED: &str = "stream import not authorized";
const SERVICE_NOT_AUTHORIZED: &str = "service import not authorized";
const FORMS_CYCLE: &str = "import forms a cycle";

/// Checks every export and import against the accounts defined, in the reference's order
/// (stream exports, service exports, stream imports, service imports), reporting at the
/// `accounts` key. Imports that fail are dropped.
fn resolve(e: &Entry, opts: &mut Options, r: &mut Report) {
    let at = &e.key_pos;
    let names: HashSet<String> = opts.accounts.iter().map(|a| a.name.clone()).collect();
    for service in [false, true] {
        let what = if service { "service" } else { "stream" };
        for a in opts.accounts.iter_mut() {
            for x in a.exports.iter_mut().filter(|x| x.service == service) {
                if let Some(accs) = &mut x.accounts {
                    accs.retain(|n| {
                        let ok = names.contains(n);
                        if !ok {
                            r.err(at, format!("{n:?} account not defined for {what} export"));
                        }
                        ok
                    });
                }
                if x.account_token_position > 0 {
                    let toks: Vec<&str> = x.subject.split('.').collect();
                    let p = x.account_token_position as usize;
                    if toks.len() < p || toks[p - 1] != "*" {
                        r.err(
                            at,
                            format!(
                                "Error adding {what} export {:?}: sublist: invalid subject",
                                x.subject
                            ),
                        );
                    }
                }
            }
        }
    }
    // Imports are checked against a snapshot of the exports, and against the imports
    // accepted so far (cycles), in order.
    let exports: HashMap<String, Vec<ExportOptions>> = opts
        .accounts
        .iter()
        .map(|a| (a.name.clone(), a.exports.clone()))
        .collect();
    let mut accepted: HashMap<String, Vec<ImportOptions>> = HashMap::new();
    for service in [false, true] {
        let what = if service { "service" } else { "stream" };
        for ai in 0..opts.accounts.len() {
            let importer = opts.accounts[ai].name.clone();
            let imports = std::mem::take(&mut opts.accounts[ai].imports);
            let mut kept = Vec::new();
            for mut im in imports {
                if im.service != service {
                    kept.push(im);
                    continue;
                }
                let Some(exp) = exports.get(&im.account) else {
                    r.err(
                        at,
                        format!("{:?} account not defined for {what} import", im.account),
                    );
                    continue;
                };
                let res = if service {
                    check_service_import(&importer, &im, exp, &accepted)
                } else {
                    check_stream_import(&importer, &mut im, &exports, &accepted)
                };
                match res {
                    Ok(()) => {
                        accepted
                            .entry(importer.clone())
                            .or_default()
                            .push(im.clone());
                        kept.push(im);
                    }
                    Err(err) => r.err(
                        at,
                        format!("Error adding {what} import {:?}: {err}", im.subject),
                    ),
                }
            }
            opts.accounts[ai].imports = kept;
        }
    }
}

/// Whether `exports` (of the exporting account) lets `importer` take `subj`: an export
/// with exactly that subject, else the first whose subject covers it.
pub(crate) fn export_approves(
    exports: &[ExportOptions],
    service: bool,
    importer: &str,
    subj: &str,
) -> bool {
    let candidates = || exports.iter().filter(|x| x.service == service);
    let x = candidates().find(|x| x.subject == subj).or_else(|| {
        candidates().find(|x| subject::is_subset(subj.as_bytes(), x.subject.as_bytes()))
    });
    let Some(x) = x else {
        return false;
    };
    if x.account_token_position > 0 {
        let p = x.account_token_position as usize;
        return subj.split('.').nth(p - 1) == Some(importer);
    }
    match &x.accounts {
        None => true,
        Some(accs) => accs.iter().any(|a| a == importer),
    }
}

fn check_stream_import(
    importer: &str,
    im: &mut ImportOptions,
    all_exports: &HashMap<String, Vec<ExportOptions>>,
    accepted: &HashMap<String, Vec<ImportOptions>>,
) -> Result<(), String> {
    let exports = all_exports.get(&im.account).map_or(&[][..], Vec::as_slice);
    if !subject::is_valid_subject(im.subject.as_bytes())
        || !export_approves(exports, false, importer, &im.subject)
    {
        return Err(STREAM_NOT_AUTHORIZED.into());
    }
    let mut prefix = im.prefix.clone();
    if !prefix.is_empty() {
        if subject::has_wildcard(prefix.as_bytes()) {
            return Err("stream import prefix can not contain wildcard tokens".into());
        }
        if !prefix.ends_with('.') {
            prefix.push('.');
        }
    }
    let to = if !prefix.is_empty() {
        format!("{prefix}{}", im.subject)
    } else if im.to.is_empty() {
        im.subject.clone()
    } else {
        im.to.clone()
    };
    let mut visited = HashSet::from([importer.to_string()]);
    if stream_cycle(&im.account, &to, all_exports, accepted, &mut visited) {
        return Err(FORMS_CYCLE.into());
    }
    if subject::has_wildcard(im.subject.as_bytes()) && to != im.subject {
        let dest = nats_common::transform::tokenize_wildcards(&to);
        if let Err(err) = nats_common::transform::Transform::new(&im.subject, &dest) {
            return Err(format!(
                "failed to create mapping transform for stream import subject {:?} to {:?}: {err}",
                im.subject, to
            ));
        }
    }
    if accepted
        .get(importer)
        .into_iter()
        .flatten()
        .any(|o| !o.service && o.account == im.account && o.subject == im.subject)
    {
        return Err("stream import already exists".into());
    }
    im.to = to;
    im.prefix.clear();
    Ok(())
}

/// Whether importing `to` from `account` leads back to an account already visited,
/// through stream imports of subjects that collide (the reference's cycle walk, which only
/// follows accounts exporting a stream that covers the subject).
fn stream_cycle(
    account: &str,
    to: &str,
    all_exports: &HashMap<String, Vec<ExportOptions>>,
    accepted: &HashMap<String, Vec<ImportOptions>>,
    visited: &mut HashSet<String>,
) -> bool {
    let exports_it = all_exports.get(account).into_iter().flatten();
    if !exports_it
        .filter(|x| !x.service)
        .any(|x| subject::is_subset(to.as_bytes(), x.subject.as_bytes()))
    {
        return false;
    }
    let mut to = to.to_string();
    for si in accepted
        .get(account)
        .into_iter()
        .flatten()
        .filter(|i| !i.service)
    {
        if subject::intersects(to.as_bytes(), si.to.as_bytes()) {
            if visited.contains(&si.account) {
                return true;
            }
            visited.insert(account.to_string());
            if subject::is_subset(si.to.as_bytes(), to.as_bytes()) {
                to = si.to.clone();
            }
            if stream_cycle(&si.account, &to, all_exports, accepted, visited) {
                return true;
            }
        }
    }
    false
}

fn check_service_import(
    importer: &str,
    im: &ImportOptions,
    exports: &[ExportOptions],
    accepted: &HashMap<String, Vec<ImportOptions>>,
) -> Result<(), String> {
    // The reference's argument names: `from` is the importer's subject (`to` here) and
    // `to` the exporter's (`subject`).
    let (from, to) = (&im.to, &im.subject);
    if !subject::is_valid_subject(from.as_bytes()) || !subject::is_valid_subject(to.as_bytes()) {
        return Err("sublist: invalid subject".into());
    }
    if !export_approves(exports, true, importer, to) {
        return Err(SERVICE_NOT_AUTHORIZED.into());
    }
    let mut visited = HashSet::from([importer.to_string()]);
    if service_cycle(&im.account, from, accepted, &mut visited) {
        return Err(FORMS_CYCLE.into());
    }
    if subject::has_wildcard(to.as_bytes()) && to != from {
        let (to_plain, _) = nats_common::transform::untokenize_wildcards(to);
        let src = nats_common::transform::tokenize_wildcards(from);
        if let Err(err) = nats_common::transform::Transform::new(&to_plain, &src) {
            return Err(format!(
                "failed to create mapping transform for service import subject {from:?} to {to_plain:?}: {err}"
            ));
        }
    }
    Ok(())
}

fn service_cycle(
    account: &str,
    from: &str,
    accepted: &HashMap<String, Vec<ImportOptions>>,
    visited: &mut HashSet<String>,
) -> bool {
    let mut from = from.to_string();
    // Here an import's `to` is its local subject and `subject` the exporter's (the
    // reference's `from` and `to`).
    for si in accepted
        .get(account)
        .into_iter()
        .flatten()
        .filter(|i| i.service)
    {
        if subject::intersects(from.as_bytes(), si.subject.as_bytes()) {
            if visited.contains(&si.account) {
                return true;
            }
            visited.insert(account.to_string());
            if subject::is_subset(si.to.as_bytes(), from.as_bytes()) {
                from = si.to.clone();
            }
            if service_cycle(&si.account, &from, accepted, visited) {
                return true;
            }
        }
    }
    false
}

/// The default for a service export's response threshold.
pub const DEFAULT_RESPONSE_THRESHOLD: Duration = Duration::from_secs(120);

/// An account's `jetstream`: `enabled`/`disabled`, a boolean, or a block of limits (the
/// reference's names and aliases; sizes as `1G`).
fn parse_account_jetstream(e: &Entry, r: &mut Report) -> crate::options::AccountJetStream {
    use crate::options::{AccountJetStream as J, JsLimits};
    match &e.value.kind {
        Kind::Bool(true) => J::On(JsLimits::default()),
        Kind::Bool(false) => J::Off,
        Kind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => J::On(JsLimits::default()),
            "disabled" | "disable" => J::Off,
            _ => {
                r.err(
                    &e.key_pos,
                    format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
                );
                J::Off
            }
        },
        Kind::Map(m) => {
            let mut l = JsLimits::default();
            for me in m.entries() {
                let key = me.key.to_ascii_lowercase();
                if matches!(
                    key.as_str(),
                    "max_bytes_required" | "max_stream_bytes" | "max_bytes"
                ) {
                    match me.value.kind {
                        Kind::Bool(b) => l.max_bytes_required = b,
                        _ => r.err(
                            &me.value.pos,
                            format!(
                                "Expected a parseable bool for {:?}, got {}",
                                me.key,
                                super::apply::go_value(&me.value)
                            ),
                        ),
                    }
                    continue;
                }
                let slot = match key.as_str() {
                    "max_memory" | "max_mem" | "mem" | "memory" => &mut l.max_memory,
                    "max_store" | "max_file" | "max_disk" | "store" | "disk" => &mut l.max_store,
                    "max_streams" | "streams" => &mut l.max_streams,
                    "max_consumers" | "consumers" => &mut l.max_consumers,
                    "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                        &mut l.memory_max_stream_bytes
                    }
                    "disk_max_stream_bytes" | "store_max_stream_bytes" => {
                        &mut l.store_max_stream_bytes
                    }
                    "max_ack_pending" => &mut l.max_ack_pending,
                    _ => {
                        r.err(&me.key_pos, format!("unknown field {:?}", me.key));
                        continue;
                    }
                };
                match me.value.kind {
                    Kind::Integer(i) => *slot = i,
                    _ => r.err(
                        &me.value.pos,
                        format!(
                            "Expected a parseable size for {:?}, got {}",
                            me.key,
                            super::apply::go_value(&me.value)
                        ),
                    ),
                }
            }
            J::On(l)
        }
        _ => {
            r.err(&e.key_pos, conv(&e.value, "map[string]interface {}"));
            J::Off
        }
    }
}
