//! Events of the system account: client connects and disconnects, authentication errors,
//! account connection counts, the periodic server statistics and the shutdown notice; and
//! the other servers of the cluster, tracked from theirs.

use super::System;
use crate::accounts::Account;
use crate::client::{Client, ClosedState};
use crate::monitor::go_json;
use crate::server::Server;
use nats_common::monitor::{format_rfc3339_nanos, go_float};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The sending server's description carried by every system message.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct EventServer {
    pub name: String,
    pub host: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    pub ver: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub jetstream: bool,
    #[serde(default)]
    pub time: String,
}

impl System {
    /// This server's description, numbered as the next system message.
    pub fn event_server(&self, server: &Server) -> EventServer {
        let opts = server.opts();
        EventServer {
            name: server.name.clone(),
            host: opts.host.clone(),
            id: server.id.clone(),
            cluster: server.cluster.name(),
            domain: String::new(),
            ver: crate::server::VERSION.to_string(),
            tags: Vec::new(),
            seq: self.next_seq(),
            jetstream: server.jetstream().is_some(),
            time: format_rfc3339_nanos(SystemTime::now()),
        }
    }

    /// Publishes `json` on `subject` in the system account.
    pub fn publish(&self, server: &Arc<Server>, subject: &str, json: &str) {
        server.send_internal(
            &self.account,
            subject.as_bytes(),
            None,
            None,
            json.as_bytes(),
        );
    }
}

#[derive(Serialize, Default)]
pub struct DataStats {
    pub msgs: i64,
    pub bytes: i64,
}

fn stats(msgs: u64, bytes: u64) -> DataStats {
    DataStats {
        msgs: msgs as i64,
        bytes: bytes as i64,
    }
}

#[derive(Serialize)]
struct RouteStat {
    rid: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    sent: DataStats,
    received: DataStats,
    pending: i64,
}

/// One remote gateway in STATSZ: our outbound's sent, the inbound ones' received.
#[derive(Serialize)]
struct GatewayStat {
    gwid: u64,
    name: String,
    sent: DataStats,
    received: DataStats,
    inbound_connections: i64,
}

#[derive(Serialize)]
struct ServerStats {
    start: String,
    mem: i64,
    cores: i64,
    #[serde(serialize_with = "go_float")]
    cpu: f64,
    connections: i64,
    total_connections: i64,
    active_accounts: i64,
    subscriptions: u32,
    sent: DataStats,
    received: DataStats,
    slow_consumers: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<RouteStat>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gateways: Vec<GatewayStat>,
    #[serde(skip_serializing_if = "is_zero")]
    active_servers: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[derive(Serialize)]
struct ServerStatsMsg {
    server: EventServer,
    statsz: ServerStats,
}

/// The `{"server":…,"statsz":…}` message of STATSZ events and PING replies.
pub fn statsz_json(sys: &System, server: &Server) -> String {
    let st = &server.stats;
    let routes = server
        .cluster
        .route_infos()
        .into_iter()
        .map(|r| RouteStat {
            rid: r.rid,
            name: r.remote_name.clone(),
            sent: stats(r.out_msgs, r.out_bytes),
            received: stats(r.in_msgs, r.in_bytes),
            pending: r.pending_size as i64,
        })
        .collect();
    let gw = &server.gateway;
    let inbound = gw.inbound.lock().clone();
    let gateways = gw
        .out
        .read()
        .iter()
        .map(|c| {
            let name = c.name();
            let (out_msgs, out_bytes) = {
                let st = c.client.out.lock();
                (st.msgs, st.bytes)
            };
            let (mut n, mut msgs, mut bytes) = (0, 0, 0);
            for i in inbound.iter().filter(|i| i.name() == name) {
                n += 1;
                msgs += i.client.in_msgs.load(Relaxed);
                bytes += i.client.in_bytes.load(Relaxed);
            }
            GatewayStat {
                gwid: c.client.cid,
                name,
                sent: stats(out_msgs, out_bytes),
                received: stats(msgs, bytes),
                inbound_connections: n,
            }
        })
        .collect();
    let cpu = server.monitor().map_or(0.0, |m| m.cpu_percent());
    let msg = ServerStatsMsg {
        server: sys.event_server(server),
        statsz: ServerStats {
            start: format_rfc3339_nanos(server.start),
            mem: crate::monitor::rss_bytes(),
            cores: crate::monitor::cores(),
            cpu,
            connections: server.client_conns().len() as i64,
            total_connections: st.total_connections.load(Relaxed) as i64,
            active_accounts: server.accounts.active() as i64,
            subscriptions: u32::try_from(server.accounts.num_subs()).unwrap_or(u32::MAX),
            sent: stats(st.out_msgs.load(Relaxed), st.out_bytes.load(Relaxed)),
            received: stats(st.in_msgs.load(Relaxed), st.in_bytes.load(Relaxed)),
            slow_consumers: st.slow_consumers.load(Relaxed) as i64,
            routes,
            gateways,
            active_servers: sys.active_servers() as i64,
        },
    };
    go_json(&msg)
}

/// Publishes this server's statistics on `$SYS.SERVER.<id>.STATSZ`.
pub fn send_statsz(sys: &System, server: &Arc<Server>) {
    let subject = format!("$SYS.SERVER.{}.STATSZ", server.id);
    sys.publish(server, &subject, &statsz_json(sys, server));
}

/// The statistics go out 250 ms after start, then at doubling intervals up to every 30 s,
/// as the reference sends them; servers not heard from for 150 s are forgotten.
pub fn start_statsz_timer(sys: &Arc<System>) {
    let sys = Arc::downgrade(sys);
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(250);
        loop {
            tokio::time::sleep(wait).await;
            let Some(sys) = sys.upgrade() else { return };
            let Some(server) = sys.server() else { return };
            if server.is_shutting_down() {
                return;
            }
            send_statsz(&sys, &server);
            sys.servers
                .lock()
                .retain(|_, seen| seen.elapsed() < ORPHAN_AFTER);
            wait = (wait * 2).min(STATSZ_MAX);
        }
    });
}

const STATSZ_MAX: Duration = Duration::from_secs(30);
const ORPHAN_AFTER: Duration = Duration::from_secs(150);

/// A STATSZ from the cluster: the sender is alive. The first time a server is heard of,
/// this one announces itself at once.
pub fn remote_statsz(sys: &Arc<System>, req: &super::requests::Request) {
    #[derive(Deserialize)]
    struct Msg {
        server: EventServer,
    }
    let Ok(m) = serde_json::from_slice::<Msg>(&req.payload) else {
        return;
    };
    let Some(server) = sys.server() else { return };
    if m.server.id == server.id {
        return;
    }
    let new = sys
        .servers
        .lock()
        .insert(m.server.id, Instant::now())
        .is_none();
    if new {
        let sys = sys.clone();
        tokio::spawn(async move { send_statsz(&sys, &server) });
    }
}

/// A server announced its shutdown.
pub fn remote_shutdown(sys: &Arc<System>, req: &super::requests::Request) {
    let Ok(s) = serde_json::from_slice::<EventServer>(&req.payload) else {
        return;
    };
    sys.servers.lock().remove(&s.id);
}

/// `$SYS.SERVER.<id>.SHUTDOWN` with this server's bare description.
pub fn send_shutdown(server: &Arc<Server>) {
    let Some(sys) = server.system() else { return };
    let subject = format!("$SYS.SERVER.{}.SHUTDOWN", server.id);
    sys.publish(server, &subject, &go_json(&sys.event_server(server)));
}

// ---- clients ----

/// `ClientInfo` of the reference's events.
#[derive(Serialize, Default)]
pub struct ClientInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub id: u64,
    pub acc: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ver: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub rtt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_type: String,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn client_info(c: &Client, acc: &str, rtt: bool, stop: Option<&str>) -> ClientInfo {
    let meta = c.meta.lock();
    ClientInfo {
        start: Some(format_rfc3339_nanos(c.start)),
        host: c.addr.ip().to_string(),
        id: c.cid,
        acc: acc.to_string(),
        user: meta.user.clone(),
        name: meta.name.clone(),
        lang: meta.lang.clone(),
        ver: meta.version.clone(),
        rtt: if rtt {
            meta.rtt.map_or(0, |d| d.as_nanos() as u64)
        } else {
            0
        },
        stop: stop.map(str::to_string),
        kind: "Client".to_string(),
        client_type: if c.ws.get().is_some() {
            "websocket"
        } else {
            "nats"
        }
        .to_string(),
    }
}

#[derive(Serialize)]
struct ConnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    client: ClientInfo,
}

#[derive(Serialize)]
struct DisconnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    client: ClientInfo,
    sent: DataStats,
    received: DataStats,
    reason: &'static str,
}

const CONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_connect";
const DISCONNECT_TYPE: &str = "io.nats.server.advisory.v1.client_disconnect";
const CONNS_TYPE: &str = "io.nats.server.advisory.v1.account_connections";

/// `$SYS.ACCOUNT.<acc>.CONNECT` for a client that authenticated into `acc` (none for the
/// global account, as the reference).
pub fn client_connected(server: &Arc<Server>, c: &Client, acc: &Arc<Account>) {
    let Some(sys) = server.system() else { return };
    account_conns(&sys, server, acc);
    if Arc::ptr_eq(acc, &server.accounts.global) {
        return;
    }
    let ev = ConnectEvent {
        kind: CONNECT_TYPE,
        id: nats_common::nuid::next(),
        timestamp: format_rfc3339_nanos(SystemTime::now()),
        server: sys.event_server(server),
        client: client_info(c, &acc.name, false, None),
    };
    sys.publish(
        server,
        &format!("$SYS.ACCOUNT.{}.CONNECT", acc.name),
        &go_json(&ev),
    );
}

fn disconnect_event(
    sys: &System,
    server: &Server,
    c: &Client,
    acc: &str,
    reason: ClosedState,
) -> String {
    let now = format_rfc3339_nanos(SystemTime::now());
    let (out_msgs, out_bytes) = {
        let st = c.out.lock();
        (st.msgs, st.bytes)
    };
    go_json(&DisconnectEvent {
        kind: DISCONNECT_TYPE,
        id: nats_common::nuid::next(),
        timestamp: now.clone(),
        server: sys.event_server(server),
        client: client_info(c, acc, true, Some(&now)),
        sent: stats(c.in_msgs.load(Relaxed), c.in_bytes.load(Relaxed)),
        received: stats(out_msgs, out_bytes),
        reason: reason.as_str(),
    })
}

/// `$SYS.ACCOUNT.<acc>.DISCONNECT` for a closed client of `acc` (none for the global
/// account).
pub fn client_disconnected(server: &Arc<Server>, c: &Client, acc: &Arc<Account>) {
    let Some(sys) = server.system() else { return };
    if !Arc::ptr_eq(acc, &server.accounts.global) {
        account_conns(&sys, server, acc);
        let reason = c.close_reason().unwrap_or(ClosedState::ClientClosed);
        let json = disconnect_event(&sys, server, c, &acc.name, reason);
        sys.publish(
            server,
            &format!("$SYS.ACCOUNT.{}.DISCONNECT", acc.name),
            &json,
        );
    }
}

/// `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` for a connection whose credentials were refused.
pub fn auth_error(server: &Arc<Server>, c: &Client) {
    let Some(sys) = server.system() else { return };
    let json = disconnect_event(
        &sys,
        server,
        c,
        &server.accounts.global.name,
        ClosedState::AuthenticationViolation,
    );
    sys.publish(
        server,
        &format!("$SYS.SERVER.{}.CLIENT.AUTH.ERR", server.id),
        &json,
    );
}

#[derive(Serialize)]
struct AccountConns {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: EventServer,
    acc: String,
    conns: i64,
    leafnodes: i64,
    total_conns: i64,
    sent: DataStats,
    received: DataStats,
    slow_consumers: i64,
}

/// The account's connection-count event (also the answer to `…ACCOUNT.<acc>.CONNS`).
pub fn account_conns_json(sys: &System, server: &Server, acc: &Account) -> String {
    let conns = acc.num_clients.load(Relaxed) as i64;
    let st = &acc.stats;
    go_json(&AccountConns {
        kind: CONNS_TYPE,
        id: nats_common::nuid::next(),
        timestamp: format_rfc3339_nanos(SystemTime::now()),
        server: sys.event_server(server),
        acc: acc.name.clone(),
        conns,
        leafnodes: server.leafs.num_for_account(&acc.name) as i64,
        total_conns: conns + server.leafs.num_for_account(&acc.name) as i64,
        sent: stats(st.out_msgs.load(Relaxed), st.out_bytes.load(Relaxed)),
        received: stats(st.in_msgs.load(Relaxed), st.in_bytes.load(Relaxed)),
        slow_consumers: st.slow_consumers.load(Relaxed) as i64,
    })
}

/// Announces `acc`'s connection count (on the old and the new subject, as the reference),
/// and keeps announcing it every 30 s while it has connections.
pub fn account_conns(sys: &Arc<System>, server: &Arc<Server>, acc: &Arc<Account>) {
    publish_conns(sys, server, acc);
    if acc.num_clients.load(Relaxed) == 0 {
        // Nothing left to keep announcing.
        sys.conns_sent.lock().remove(&acc.name);
        return;
    }
    let first = sys
        .conns_sent
        .lock()
        .insert(acc.name.clone(), Instant::now())
        .is_none();
    if first {
        heartbeat(sys, acc);
    }
}

/// The same count on the old subject (the one servers listen to) and the new one.
fn publish_conns(sys: &System, server: &Arc<Server>, acc: &Account) {
    let json = account_conns_json(sys, server, acc);
    for subject in [
        format!("$SYS.SERVER.ACCOUNT.{}.CONNS", acc.name),
        format!("$SYS.ACCOUNT.{}.SERVER.CONNS", acc.name),
    ] {
        sys.publish(server, &subject, &json);
    }
}

const CONNS_HEARTBEAT: Duration = Duration::from_secs(30);

fn heartbeat(sys: &Arc<System>, acc: &Arc<Account>) {
    let (sys, acc) = (Arc::downgrade(sys), acc.clone());
    tokio::spawn(async move {
        loop {
            let due = {
                let Some(s) = sys.upgrade() else { return };
                let last = s.conns_sent.lock().get(&acc.name).copied();
                match last {
                    Some(t) => t + CONNS_HEARTBEAT,
                    None => return,
                }
            };
            tokio::time::sleep_until(due.into()).await;
            let Some(s) = sys.upgrade() else { return };
            let Some(server) = s.server() else { return };
            if server.is_shutting_down() {
                return;
            }
            let last = s.conns_sent.lock().get(&acc.name).copied();
            if last.is_some_and(|t| t.elapsed() >= CONNS_HEARTBEAT) {
                if acc.num_clients.load(Relaxed) == 0 {
                    // One last count, then quiet until the next connection.
                    s.conns_sent.lock().remove(&acc.name);
                    publish_conns(&s, &server, &acc);
                    return;
                }
                account_conns(&s, &server, &acc);
            }
        }
    });
}
