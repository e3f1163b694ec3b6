//! Configuration reload (SIGHUP): read the file again, apply the command-line flags on
//! top, refuse the whole reload if something not reloadable changed, otherwise swap the
//! options in, log what changed in the reference's words, and re-check every client's
//! credentials and subscriptions against the new authorization.

use crate::cli::Flags;
use crate::client::ClosedState;
use crate::options::Options;
use crate::server::Server;
use nats_common::monitor::go_duration_string;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::{error, info};

/// Reloads; the error text follows `Failed to reload server configuration: `.
pub fn reload(server: &Arc<Server>, flags: &Flags) -> Result<(), String> {
    let old = server.opts();
    let path = old
        .config_file
        .clone()
        .ok_or("can only reload config when a file is provided using -c or --config")?;
    let mut new = Options::default();
    match crate::config::apply::load_file(&path, &mut new) {
        Ok(warnings) => {
            for w in warnings {
                error!("{w}");
            }
        }
        Err(e) => return Err(e.to_string().trim_end().to_string()),
    }
    flags.apply(&mut new).map_err(|e| format!("{e:?}"))?;
    new.validate()?;
    crate::config::apply::validate_auth(&new)?;
    let changes = diff(&old, &new)?;

    let logging_changed = old.debug != new.debug
        || old.trace != new.trace
        || old.logtime != new.logtime
        || old.log_file != new.log_file
        || old.syslog != new.syslog
        || old.remote_syslog != new.remote_syslog;
    let auth_changed = auth_fields_differ(&old, &new);
    server.set_opts(new.clone());
    if logging_changed {
        crate::logging::configure(&crate::logging::LogConfig {
            debug: new.debug,
            trace: new.trace,
            logtime: new.logtime,
            file: new.log_file.as_deref(),
            size_limit: new.log_size_limit,
            syslog: new.syslog,
            remote_syslog: &new.remote_syslog,
        })
        .map_err(|e| match e {
            crate::logging::LogError::File(e) => format!("error opening log file: {e}"),
            // The reference cannot go on without its logger either.
            e @ crate::logging::LogError::Syslog(_) => {
                e.report();
                std::process::exit(1)
            }
        })?;
    }
    for c in &changes {
        info!("Reloaded: {c}");
    }
    // Accounts are always reconfigured, as the reference does.
    server.reconfigure_accounts(&new);
    crate::jetstream::reinstall_imports(server);
    if auth_changed {
        crate::auth::bump_generation();
        recheck_clients(server);
    }
    if old.max_payload != new.max_payload || old.max_control_line != new.max_control_line {
        // Existing connections adopt the new limits too, as on the reference.
        LIMITS_GENERATION.fetch_add(1, Ordering::AcqRel);
    }
    if old.max_payload != new.max_payload {
        server.broadcast_info();
    }
    Ok(())
}

static LIMITS_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Bumped by every reload that changes max_payload or max_control_line; readers compare it
/// once per read to refresh their parser limits.
pub fn limits_generation() -> u64 {
    LIMITS_GENERATION.load(Ordering::Acquire)
}

fn auth_fields_differ(a: &Options, b: &Options) -> bool {
    a.username != b.username
        || a.password != b.password
        || a.token != b.token
        || a.users != b.users
        || a.nkeys != b.nkeys
        || a.default_permissions != b.default_permissions
        || a.no_auth_user != b.no_auth_user
        || a.tls.as_ref().map(|t| t.verify_and_map) != b.tls.as_ref().map(|t| t.verify_and_map)
}

/// The websocket options as Go's `%v` prints the reference's WebsocketOpts.
fn go_websocket(w: &crate::options::WebsocketOptions) -> String {
    format!(
        "{{{} {} {} {} {} {} {} {} {} {} {} {} map[] {} [{}] {} {}}}",
        w.host,
        w.port,
        w.advertise,
        w.no_auth_user,
        w.jwt_cookie,
        w.username,
        w.password,
        w.token,
        w.auth_timeout.map_or(0.0, |d| d.as_secs_f64()),
        w.no_tls,
        if w.tls.is_some() { "&{...}" } else { "<nil>" },
        w.tls.as_ref().is_some_and(|t| t.verify_and_map),
        w.same_origin,
        w.allowed_origins.join(" "),
        w.compression,
        go_duration_string(w.handshake_timeout),
    )
}

/// The `Reloaded: ...` lines, in the reference's order, or the refusal.
fn diff(old: &Options, new: &Options) -> Result<Vec<String>, String> {
    fn refuse(name: &str, old: impl std::fmt::Display, new: impl std::fmt::Display) -> String {
        format!("config reload not supported for {name}: old={old}, new={new}")
    }
    if old.server_name != new.server_name {
        return Err(refuse("ServerName", &old.server_name, &new.server_name));
    }
    // JetStream's settings stay as started (README: the reference can turn JetStream and
    // its accounts on and off at reload).
    if old.jetstream != new.jetstream {
        return Err(refuse("JetStream", old.jetstream, new.jetstream));
    }
    if old.jetstream {
        if old.store_dir != new.store_dir {
            return Err("config reload not supported for jetstream storage directory".into());
        }
        if old.jetstream_max_memory != new.jetstream_max_memory
            || old.jetstream_max_store != new.jetstream_max_store
        {
            return Err("config reload not supported for JetStream limits".into());
        }
        let js_accounts = |o: &Options| -> Vec<(String, crate::options::AccountJetStream)> {
            o.accounts
                .iter()
                .filter(|a| a.jetstream.limits().is_some())
                .map(|a| (a.name.clone(), a.jetstream))
                .collect()
        };
        if js_accounts(old) != js_accounts(new) {
            return Err("config reload not supported for accounts' jetstream settings".into());
        }
    }
    if old.host != new.host {
        return Err(refuse("Host", &old.host, &new.host));
    }
    if old.port != new.port {
        return Err(refuse("Port", old.port, new.port));
    }
    // Operator mode: the account resolver can be neither added nor removed, and the
    // trusted operators, keys and preloaded accounts stay as started (the reference
    // refuses these too; it prints the operators as pointers, here their keys).
    if old.resolver.is_some() != new.resolver.is_some() {
        return Err("config reload does not support moving to or from an account resolver".into());
    }
    let go_list = |v: &[String]| format!("[{}]", v.join(" "));
    if old.trusted_keys != new.trusted_keys {
        return Err(refuse(
            "TrustedKeys",
            go_list(&old.trusted_keys),
            go_list(&new.trusted_keys),
        ));
    }
    if old.trusted_operators != new.trusted_operators {
        let subs = |o: &Options| {
            let v: Vec<String> = o
                .trusted_operators
                .iter()
                .map(|c| c.data.sub.clone())
                .collect();
            go_list(&v)
        };
        return Err(refuse("TrustedOperators", subs(old), subs(new)));
    }
    if old.resolver_preload != new.resolver_preload {
        let keys = |o: &Options| {
            let v: Vec<String> = o.resolver_preload.iter().map(|(k, _)| k.clone()).collect();
            go_list(&v)
        };
        return Err(refuse("resolverPreloads", keys(old), keys(new)));
    }
    if old.no_header_support != new.no_header_support {
        return Err(refuse(
            "NoHeaderSupport",
            old.no_header_support,
            new.no_header_support,
        ));
    }
    if old.max_subscriptions != new.max_subscriptions {
        return Err(refuse(
            "MaxSubs",
            old.max_subscriptions,
            new.max_subscriptions,
        ));
    }
    if old.http_host != new.http_host {
        return Err(refuse("HTTPHost", &old.http_host, &new.http_host));
    }
    if old.http_port != new.http_port {
        return Err(refuse("HTTPPort", old.http_port, new.http_port));
    }
    if old.https_port != new.https_port {
        return Err(refuse("HTTPSPort", old.https_port, new.https_port));
    }
    if old.max_pending != new.max_pending {
        return Err(refuse("MaxPending", old.max_pending, new.max_pending));
    }
    if old.cluster.host != new.cluster.host {
        return Err(format!(
            "config reload not supported for cluster host: old={}, new={}",
            old.cluster.host, new.cluster.host
        ));
    }
    if old.cluster.port != new.cluster.port {
        return Err(format!(
            "config reload not supported for cluster port: old={}, new={}",
            old.cluster.port, new.cluster.port
        ));
    }
    {
        // Only the TLS settings of the leafnodes block may change (as on the reference).
        let strip = |l: &crate::options::LeafNodeOptions| {
            let mut l = l.clone();
            l.tls = None;
            for r in &mut l.remotes {
                r.tls = None;
            }
            l
        };
        let (o, n) = (strip(&old.leaf), strip(&new.leaf));
        if o != n {
            return Err(format!(
                "config reload not supported for LeafNode: old={o:?}, new={n:?}"
            ));
        }
    }
    {
        // Gateways cannot change on reload (TLS settings aside), as on the reference.
        let strip = |g: &crate::options::GatewayOptions| {
            let mut g = g.clone();
            g.tls = None;
            for r in &mut g.gateways {
                r.tls = None;
            }
            g
        };
        let (o, n) = (strip(&old.gateway), strip(&new.gateway));
        if o != n {
            let show = |g: &crate::options::GatewayOptions| {
                format!("{{{} {} {}}}", g.name, g.host, g.port)
            };
            return Err(refuse("Gateway", show(&o), show(&n)));
        }
    }
    if old.lame_duck_duration != new.lame_duck_duration {
        return Err(refuse(
            "LameDuckDuration",
            go_duration_string(old.lame_duck_duration),
            go_duration_string(new.lame_duck_duration),
        ));
    }
    if old.lame_duck_grace_period != new.lame_duck_grace_period {
        return Err(refuse(
            "LameDuckGracePeriod",
            go_duration_string(old.lame_duck_grace_period),
            go_duration_string(new.lame_duck_grace_period),
        ));
    }

    // Any change of the websocket block but its TLS certificates (the reference takes a
    // new TLS configuration, not the rest).
    let ws_fixed = |o: &Options| {
        let mut w = o.websocket.clone();
        w.tls = w.tls.map(|t| crate::options::TlsOptions {
            verify_and_map: t.verify_and_map,
            ..Default::default()
        });
        w
    };
    if ws_fixed(old) != ws_fixed(new) {
        return Err(refuse(
            "Websocket",
            go_websocket(&old.websocket),
            go_websocket(&new.websocket),
        ));
    }

    let mut out = Vec::new();
    if old.client_advertise != new.client_advertise {
        out.push(format!("client_advertise = {}", new.client_advertise));
    }
    if old.trace != new.trace {
        out.push(format!("trace = {}", new.trace));
    }
    if old.debug != new.debug {
        out.push(format!("debug = {}", new.debug));
    }
    if old.logtime != new.logtime {
        out.push(format!("logtime = {}", new.logtime));
    }
    if old.max_connections != new.max_connections {
        out.push(format!("max_connections = {}", new.max_connections));
    }
    if old.nkeys != new.nkeys {
        out.push("authorization nkey users".into());
    }
    // The reference never compares users and accounts (they hold live state): every
    // reload reports them, and reconfigures them.
    out.push("authorization users".into());
    out.push("accounts".into());
    if old.no_auth_user != new.no_auth_user {
        out.push(format!("no_auth_user = {}", new.no_auth_user));
    }
    if old.username != new.username {
        out.push("authorization username".into());
    }
    if old.password != new.password {
        out.push("authorization password".into());
    }
    if old.token != new.token {
        out.push("authorization token".into());
    }
    if old.ping_interval != new.ping_interval {
        out.push(format!(
            "ping_interval = {}",
            go_duration_string(new.ping_interval)
        ));
    }
    if old.ping_max != new.ping_max {
        out.push(format!("ping_max = {}", new.ping_max));
    }
    if old.auth_timeout != new.auth_timeout {
        out.push(format!(
            "authorization timeout = {}",
            new.auth_timeout.as_secs_f64()
        ));
    }
    if old.max_control_line != new.max_control_line {
        out.push(format!("max_control_line = {}", new.max_control_line));
    }
    if old.max_payload != new.max_payload {
        out.push(format!("max_payload = {}", new.max_payload));
    }
    if old.cluster != new.cluster {
        out.push("cluster".into());
    }
    if old.pid_file != new.pid_file {
        out.push(format!(
            "pid_file = {}",
            new.pid_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    if old.ports_file_dir != new.ports_file_dir {
        out.push(format!(
            "ports_file_dir = {}",
            new.ports_file_dir
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    if old.log_file != new.log_file {
        out.push(format!(
            "log_file = {}",
            new.log_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
    }
    if old.syslog != new.syslog {
        out.push(format!("syslog = {}", new.syslog));
    }
    if old.remote_syslog != new.remote_syslog {
        out.push(format!("remote_syslog = {}", new.remote_syslog));
    }
    if old.tls != new.tls {
        out.push(format!(
            "tls = {}",
            if new.tls.is_some() {
                "enabled"
            } else {
                "disabled"
            }
        ));
    }
    if old.write_deadline != new.write_deadline {
        out.push(format!(
            "write_deadline = {}",
            go_duration_string(new.write_deadline)
        ));
    }
    if old.max_traced_msg_len != new.max_traced_msg_len {
        out.push(format!("max_traced_msg_len = {}", new.max_traced_msg_len));
    }
    Ok(out)
}

/// Closes clients whose credentials no longer pass, and drops subscriptions the new
/// permissions refuse (with the reference's error).
fn recheck_clients(server: &Arc<Server>) {
    let opts = server.opts();
    for c in server.client_conns() {
        let Some(connect) = c.meta.lock().auth.connect.clone() else {
            continue;
        };
        // JWT logins are checked against their claims, not the config's users.
        if connect.jwt.is_some() && crate::accounts::jwt::trusted_mode(&opts) {
            continue;
        }
        // A client whose user is gone or now belongs to another account is closed (it
        // reconnects into the right one), as the reference does.
        let nkey = connect.nkey.as_deref().unwrap_or_default();
        let user = connect.user.as_deref().unwrap_or_default();
        let target = if !nkey.is_empty() {
            Some(
                opts.nkeys
                    .iter()
                    .find(|n| n.nkey == nkey)
                    .map(|n| &n.account),
            )
        } else if !user.is_empty() {
            Some(
                opts.users
                    .iter()
                    .find(|u| u.username == user)
                    .map(|u| &u.account),
            )
        } else {
            None
        };
        if let Some(target) = target {
            let current = c.account.read().name.clone();
            let moved = match target {
                None => true,
                Some(a) if a.is_empty() => current != crate::options::GLOBAL_ACCOUNT,
                Some(a) => *a != current,
            };
            if moved {
                c.close(ClosedState::ClientClosed);
                continue;
            }
        }
        match crate::auth::recheck(server, &c) {
            None => {
                let (user, nkey) = {
                    let m = c.meta.lock();
                    let connect = m.auth.connect.as_ref();
                    (
                        connect.and_then(|i| i.user.clone()).unwrap_or_default(),
                        connect.and_then(|i| i.nkey.clone()).unwrap_or_default(),
                    )
                };
                error!(
                    "{} - {}",
                    c.prefix(),
                    crate::auth::violation(&server.opts(), &user, &nkey)
                );
                c.send_err("Authorization Violation");
                c.close(ClosedState::AuthenticationViolation);
            }
            Some(Some(perms)) => {
                let subs: Vec<_> = c.subs.lock().values().cloned().collect();
                for s in subs {
                    if perms.can_subscribe(&s.subject, s.queue.as_deref()) {
                        continue;
                    }
                    let subj = String::from_utf8_lossy(&s.subject).into_owned();
                    let sid = String::from_utf8_lossy(&s.sid).into_owned();
                    server.remove_sub(&s);
                    c.send_err(&format!(
                        "Permissions Violation for Subscription to {subj:?} (sid {sid:?})"
                    ));
                    info!(
                        "{} - Removed sub {subj:?} (sid {sid:?}) for user {:?} - not authorized",
                        c.prefix(),
                        c.meta.lock().user
                    );
                }
            }
            Some(None) => {}
        }
    }
}
