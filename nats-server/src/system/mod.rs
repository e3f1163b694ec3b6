//! The system account (`$SYS` unless configured otherwise): the server's own subscriptions
//! that answer monitoring requests (`$SYS.REQ.SERVER.*`, `$SYS.REQ.ACCOUNT.*`), the events
//! it publishes (connections, account connection counts, statistics, shutdown), and what it
//! learns about the other servers of its cluster from their events.
//!
//! Requests are answered off the message path: the internal subscription copies the request
//! and a task builds the answer (the same data as the HTTP monitoring pages) and publishes it
//! from the server's own connection, like any message.

mod events;
mod requests;

pub use events::{auth_error, client_connected, client_disconnected, send_shutdown};

use crate::accounts::Account;
use crate::client::Internal;
use crate::deliver::Delivery;
use crate::server::Server;
use nats_common::proto::Message;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

/// What an internal subscription of the system account does with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `$SYS.REQ.SERVER.PING`, `…PING.STATSZ`, `…<id>.STATSZ`.
    Statsz,
    /// `$SYS.REQ.SERVER.PING.<name>` and `…<id>.<name>`.
    Server(requests::ServerEndpoint),
    /// `$SYS.REQ.ACCOUNT.<acc>.<name>`.
    Account(requests::AccountEndpoint),
    /// `$SYS.REQ.ACCOUNT.PING.STATZ`: every account's statistics.
    AccountPingStatz,
    /// `$SYS.SERVER.<id>.STATSZ` from the cluster: another server is alive.
    RemoteStatsz,
    /// `$SYS.SERVER.<id>.SHUTDOWN`: another server went away.
    RemoteShutdown,
    /// `$SYS.SERVER.ACCOUNT.<acc>.CONNS`: another server's connection count.
    RemoteConns,
    /// `$SYS.REQ.ACCOUNT.NSUBS`: how many local subscriptions match.
    Nsubs,
    /// Subscriptions the reference holds for features not offered here (claims updates,
    /// latency tracking, leaf node connects, inboxes): they count and are announced.
    Ignore,
}

/// The system account and the server's state kept for it.
pub struct System {
    pub account: Arc<Account>,
    /// Eight base-62 characters from the SHA-256 of the server's name: tags this server's
    /// system inboxes.
    pub hash: String,
    server: Weak<Server>,
    /// Every message carrying the server's description is numbered.
    seq: AtomicU64,
    /// Other servers heard from, by id, and when last.
    servers: Mutex<HashMap<String, Instant>>,
    /// Per account: when its connection count was last announced (for the heartbeat).
    conns_sent: Mutex<HashMap<String, Instant>>,
}

/// The reference's 8-character hash of a name (servers in `$SYS` subjects, generated
/// consumer names).
pub fn hash8(name: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let d = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    d.as_ref()[..8]
        .iter()
        .map(|b| DIGITS[(*b % 62) as usize] as char)
        .collect()
}

/// The server endpoints, in the order the reference subscribes them.
const SERVER_ENDPOINTS: &[requests::ServerEndpoint] = &[
    requests::ServerEndpoint::Statsz,
    requests::ServerEndpoint::Varz,
    requests::ServerEndpoint::Subsz,
    requests::ServerEndpoint::Connz,
    requests::ServerEndpoint::Routez,
    requests::ServerEndpoint::Leafz,
    requests::ServerEndpoint::Healthz,
    requests::ServerEndpoint::Gatewayz,
    requests::ServerEndpoint::Accountz,
    requests::ServerEndpoint::Jsz,
];

const ACCOUNT_ENDPOINTS: &[requests::AccountEndpoint] = &[
    requests::AccountEndpoint::Statz,
    requests::AccountEndpoint::Conns,
    requests::AccountEndpoint::Subsz,
    requests::AccountEndpoint::Connz,
    requests::AccountEndpoint::Leafz,
    requests::AccountEndpoint::Jsz,
    requests::AccountEndpoint::Info,
];

impl System {
    /// Sets up the system account: its internal subscriptions, the imports every other
    /// account gets, and the periodic statistics. `None` with `no_system_account`.
    pub fn start(server: &Arc<Server>) -> Option<Arc<System>> {
        let account = server.accounts.system()?;
        let sys = Arc::new(System {
            account: account.clone(),
            hash: hash8(&server.name),
            server: Arc::downgrade(server),
            seq: AtomicU64::new(1),
            servers: Mutex::new(HashMap::new()),
            conns_sent: Mutex::new(HashMap::new()),
        });
        let id = &server.id;
        let h = &sys.hash;
        let mut subs: Vec<(String, Handler, bool)> = vec![
            (format!("$SYS._INBOX.{h}.*"), Handler::Ignore, true),
            (
                "$SYS.SERVER.ACCOUNT.*.CONNS".into(),
                Handler::RemoteConns,
                true,
            ),
            (format!("$SYS._INBOX_.{id}"), Handler::Ignore, true),
            ("$SYS.REQ.ACCOUNT.NSUBS".into(), Handler::Nsubs, true),
            ("$SYS.SERVER.*.STATSZ".into(), Handler::RemoteStatsz, true),
            (
                "$SYS.SERVER.*.SHUTDOWN".into(),
                Handler::RemoteShutdown,
                true,
            ),
            ("$SYS.ACCOUNT.*.CLAIMS.UPDATE".into(), Handler::Ignore, true),
            (
                "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE".into(),
                Handler::Ignore,
                true,
            ),
            ("$SYS.REQ.SERVER.PING".into(), Handler::Statsz, true),
        ];
        for ep in SERVER_ENDPOINTS {
            let name = ep.name();
            let handler = match ep {
                requests::ServerEndpoint::Statsz => Handler::Statsz,
                other => Handler::Server(*other),
            };
            subs.push((format!("$SYS.REQ.SERVER.{id}.{name}"), handler, true));
            subs.push((format!("$SYS.REQ.SERVER.PING.{name}"), handler, true));
        }
        for ep in ACCOUNT_ENDPOINTS {
            subs.push((
                format!("$SYS.REQ.ACCOUNT.*.{}", ep.name()),
                Handler::Account(*ep),
                true,
            ));
        }
        subs.push((
            "$SYS.REQ.ACCOUNT.PING.STATZ".into(),
            Handler::AccountPingStatz,
            true,
        ));
        subs.push((
            "$SYS.ACCOUNT.*.LEAFNODE.CONNECT".into(),
            Handler::Ignore,
            true,
        ));
        subs.push((format!("$SYS.LATENCY.M2.{h}"), Handler::Ignore, true));
        // Kept to this server, as the reference does.
        subs.push(("$SYS.DEBUG.SUBSCRIBERS".into(), Handler::Ignore, false));
        for (subject, handler, forward) in subs {
            server.subscribe_internal(&account, &subject, Internal::System(handler), forward);
        }
        events::start_statsz_timer(&sys);
        Some(sys)
    }

    fn server(&self) -> Option<Arc<Server>> {
        self.server.upgrade()
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// How many servers are known to be up, this one included.
    pub fn active_servers(&self) -> usize {
        1 + self.servers.lock().len()
    }
}

/// The three requests every account other than the system account can make of it: its
/// own connections and statistics (the reference's automatic service imports).
pub fn account_imports(account: &str) -> [(String, String); 3] {
    [
        (
            "$SYS.REQ.ACCOUNT.PING.CONNZ".into(),
            format!("$SYS.REQ.ACCOUNT.{account}.CONNZ"),
        ),
        (
            "$SYS.REQ.SERVER.PING.CONNZ".into(),
            format!("$SYS.REQ.ACCOUNT.{account}.CONNZ"),
        ),
        (
            "$SYS.REQ.ACCOUNT.PING.STATZ".into(),
            format!("$SYS.REQ.ACCOUNT.{account}.STATZ"),
        ),
    ]
}

/// Delivers a message to an internal subscription of the system account. True: the
/// subscription took it (what it answers, if anything, follows).
pub fn handle(d: &mut Delivery<'_>, handler: Handler, msg: &Message<'_>) -> bool {
    let Some(sys) = d.server.system() else {
        return false;
    };
    let req = requests::Request {
        subject: String::from_utf8_lossy(msg.subject).into_owned(),
        reply: msg.reply.map(|r| r.to_vec()),
        headers: msg.headers.map(|h| h.to_vec()),
        payload: msg.payload.to_vec(),
    };
    match handler {
        Handler::Ignore => {}
        Handler::RemoteStatsz => events::remote_statsz(&sys, &req),
        Handler::RemoteShutdown => events::remote_shutdown(&sys, &req),
        Handler::RemoteConns => {}
        other => {
            // Answered off the message path: the answer may take locks a reader holds.
            tokio::spawn(async move { requests::answer(&sys, other, req) });
        }
    }
    true
}
