//! Application state: the servers being watched, rates between polls, sort order, limits, toggles,
//! key handling and cluster discovery. No I/O happens here, so everything is unit-testable.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use nats_common::monitor::{parse_rfc3339, parse_uptime, ConnInfo, Connz, Healthz, Routez, Varz};

use crate::format::Rates;

/// How far back the cluster sparklines reach.
pub const HISTORY: Duration = Duration::from_secs(60);
/// How long a flash message (e.g. `invalid order: x`) stays on screen.
const FLASH_FOR: Duration = Duration::from_secs(1);

/// The `/connz` sort options of the 2.9 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
}

impl SortKey {
    pub const ALL: [SortKey; 13] = [
        SortKey::Cid,
        SortKey::Start,
        SortKey::Subs,
        SortKey::Pending,
        SortKey::MsgsTo,
        SortKey::MsgsFrom,
        SortKey::BytesTo,
        SortKey::BytesFrom,
        SortKey::Last,
        SortKey::Idle,
        SortKey::Uptime,
        SortKey::Stop,
        SortKey::Reason,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Cid => "cid",
            SortKey::Start => "start",
            SortKey::Subs => "subs",
            SortKey::Pending => "pending",
            SortKey::MsgsTo => "msgs_to",
            SortKey::MsgsFrom => "msgs_from",
            SortKey::BytesTo => "bytes_to",
            SortKey::BytesFrom => "bytes_from",
            SortKey::Last => "last",
            SortKey::Idle => "idle",
            SortKey::Uptime => "uptime",
            SortKey::Stop => "stop",
            SortKey::Reason => "reason",
        }
    }

    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Sorts connections the way the server orders them for `key` (so the view stays stable between
/// polls and works even if a server ignores `sort`), then flips the order when `reverse` is set.
/// Ties are broken by CID so the order is deterministic.
pub fn sort_conns(conns: &mut [ConnInfo], key: SortKey, reverse: bool) {
    fn ts(s: &str) -> i128 {
        parse_rfc3339(s).map(|t| t.unix_nanos).unwrap_or(0)
    }
    fn dur(s: &str) -> Duration {
        parse_uptime(s).unwrap_or_default()
    }
    conns.sort_by(|a, b| {
        use std::cmp::Ordering;
        let ord: Ordering = match key {
            SortKey::Cid | SortKey::Start => a.cid.cmp(&b.cid),
            SortKey::Subs => b.subscriptions.cmp(&a.subscriptions),
            SortKey::Pending => b.pending_bytes.cmp(&a.pending_bytes),
            SortKey::MsgsTo => b.out_msgs.cmp(&a.out_msgs),
            SortKey::MsgsFrom => b.in_msgs.cmp(&a.in_msgs),
            SortKey::BytesTo => b.out_bytes.cmp(&a.out_bytes),
            SortKey::BytesFrom => b.in_bytes.cmp(&a.in_bytes),
            SortKey::Last => ts(&b.last_activity).cmp(&ts(&a.last_activity)),
            SortKey::Idle => dur(&b.idle).cmp(&dur(&a.idle)),
            SortKey::Uptime => dur(&a.uptime).cmp(&dur(&b.uptime)),
            SortKey::Stop => {
                ts(b.stop.as_deref().unwrap_or("")).cmp(&ts(a.stop.as_deref().unwrap_or("")))
            }
            SortKey::Reason => a.reason.cmp(&b.reason),
        };
        ord.then(a.cid.cmp(&b.cid))
    });
    if reverse {
        conns.reverse();
    }
}

/// Where a watched server came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Named with `-s`.
    Given,
    /// The peer address of a route in some server's `/routez`.
    Route,
    /// A host in some server's `connect_urls`.
    ConnectUrl,
}

/// A monitoring endpoint to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub https: bool,
    pub origin: Origin,
}

impl Target {
    /// `host:port`, with brackets around an IPv6 literal.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }
}

/// What one poll of one server brought back.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub varz: Varz,
    /// Only fetched for the server shown in the main view.
    pub connz: Option<Connz>,
    /// Missing when the server does not serve it; that is not an error.
    pub routez: Option<Routez>,
    pub healthz: Option<Healthz>,
    /// Leaf node and gateway links, fetched only when /varz shows the server has them.
    pub links: Links,
    /// Reverse-DNS names of connection IPs, when lookups are on.
    pub names: HashMap<String, String>,
}

/// The leaf node and gateway connections of one server, from /leafz and /gatewayz.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    pub gatewayz: Option<Gatewayz>,
    pub leafz: Option<Leafz>,
}

/// The parts of /gatewayz the cluster view shows.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Gatewayz {
    pub name: String,
    pub outbound_gateways: std::collections::BTreeMap<String, GatewayLink>,
    pub inbound_gateways: std::collections::BTreeMap<String, Vec<GatewayLink>>,
}

/// One gateway connection in /gatewayz.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct GatewayLink {
    pub configured: bool,
    pub connection: Option<ConnInfo>,
}

/// The parts of /leafz the cluster view shows.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Leafz {
    pub leafs: Vec<LeafLink>,
}

/// One leaf node connection in /leafz.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct LeafLink {
    pub account: String,
    pub ip: String,
    pub port: i64,
    pub rtt: String,
    pub in_msgs: i64,
    pub out_msgs: i64,
    pub subscriptions: i64,
}

/// A poll outcome delivered to the UI thread.
#[derive(Debug)]
pub struct PollResult {
    pub target: usize,
    pub at: Instant,
    pub outcome: Result<Snapshot, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not answered yet.
    Pending,
    Up,
    Down,
}

/// Counters of the previous poll, for rates.
#[derive(Debug, Clone, Copy)]
struct Prev {
    now_nanos: Option<i128>,
    at: Instant,
    in_msgs: i64,
    out_msgs: i64,
    in_bytes: i64,
    out_bytes: i64,
}

/// Everything known about one watched server.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub target: Target,
    pub status: Status,
    pub varz: Option<Varz>,
    pub connz: Option<Connz>,
    pub routez: Option<Routez>,
    pub healthz: Option<Healthz>,
    pub links: Links,
    pub names: HashMap<String, String>,
    pub rates: Rates,
    pub last_error: Option<String>,
    pub down_since: Option<Instant>,
    /// (time, in+out msgs/sec) over the last [`HISTORY`].
    pub history: VecDeque<(Instant, f64)>,
    /// Set when this endpoint turned out to be the same server as another one (same server_id).
    pub alias_of: Option<usize>,
    /// Successful polls so far.
    pub polls: u64,
    prev: Option<Prev>,
}

impl ServerState {
    pub fn new(target: Target) -> Self {
        ServerState {
            target,
            status: Status::Pending,
            varz: None,
            connz: None,
            routez: None,
            healthz: None,
            links: Links::default(),
            names: HashMap::new(),
            rates: Rates::default(),
            last_error: None,
            down_since: None,
            history: VecDeque::new(),
            alias_of: None,
            polls: 0,
            prev: None,
        }
    }

    pub fn server_id(&self) -> Option<&str> {
        self.varz
            .as_ref()
            .map(|v| v.server_id.as_str())
            .filter(|s| !s.is_empty())
    }

    /// The name to show: server name, else the address.
    pub fn label(&self) -> String {
        match &self.varz {
            Some(v) if !v.server_name.is_empty() => v.server_name.clone(),
            _ => self.target.addr(),
        }
    }

    /// Whether the cluster view lists this endpoint. Hosts guessed from connect_urls only count
    /// once they answered, since those lists often carry addresses that are not reachable.
    pub fn listed(&self) -> bool {
        self.alias_of.is_none() && (self.target.origin != Origin::ConnectUrl || self.polls > 0)
    }

    fn record_ok(&mut self, at: Instant, snap: Snapshot) {
        let v = &snap.varz;
        let now_nanos = parse_rfc3339(&v.now).map(|t| t.unix_nanos);
        self.rates = match self.prev {
            Some(p) => {
                let secs = match (now_nanos, p.now_nanos) {
                    (Some(n), Some(o)) if n > o => (n - o) as f64 / 1e9,
                    _ => at.saturating_duration_since(p.at).as_secs_f64(),
                };
                // A restarted server resets its counters; show 0 rather than a negative rate.
                let r = |new: i64, old: i64| {
                    if secs > 0.0 && new >= old {
                        (new - old) as f64 / secs
                    } else {
                        0.0
                    }
                };
                Rates {
                    in_msgs: r(v.in_msgs, p.in_msgs),
                    out_msgs: r(v.out_msgs, p.out_msgs),
                    in_bytes: r(v.in_bytes, p.in_bytes),
                    out_bytes: r(v.out_bytes, p.out_bytes),
                }
            }
            None => Rates::default(),
        };
        self.prev = Some(Prev {
            now_nanos,
            at,
            in_msgs: v.in_msgs,
            out_msgs: v.out_msgs,
            in_bytes: v.in_bytes,
            out_bytes: v.out_bytes,
        });
        self.history
            .push_back((at, self.rates.in_msgs + self.rates.out_msgs));
        self.prune_history(at);
        self.varz = Some(snap.varz);
        // Names belong to the connection list they were looked up for (empty with lookups off).
        if snap.connz.is_some() {
            self.connz = snap.connz;
            self.names = snap.names;
        }
        self.routez = snap.routez;
        self.healthz = snap.healthz;
        self.links = snap.links;
        self.status = Status::Up;
        self.last_error = None;
        self.down_since = None;
        self.polls += 1;
    }

    fn record_err(&mut self, at: Instant, err: String) {
        if self.status != Status::Down {
            self.down_since = Some(at);
        }
        self.status = Status::Down;
        self.last_error = Some(err);
        // Rates restart from scratch once the server is back.
        self.prev = None;
        self.rates = Rates::default();
        self.prune_history(at);
    }

    fn prune_history(&mut self, now: Instant) {
        while let Some((t, _)) = self.history.front() {
            if now.saturating_duration_since(*t) > HISTORY {
                self.history.pop_front();
            } else {
                break;
            }
        }
    }

    /// History as (age, value) pairs relative to `now`, for drawing.
    pub fn history_ages(&self, now: Instant) -> Vec<(Duration, f64)> {
        self.history
            .iter()
            .map(|(t, v)| (now.saturating_duration_since(*t), *v))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Main,
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Sort,
    Limit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub buf: String,
}

/// The settings the pollers need; republished whenever they change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub limit: usize,
    pub sort: SortKey,
    pub subs: bool,
    pub lookup: bool,
    pub active: usize,
}

/// Start-up settings for [`App`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub targets: Vec<Target>,
    pub monitor_port: u16,
    pub https: bool,
    pub sort: SortKey,
    pub limit: usize,
    pub show_subs: bool,
    pub lookup: bool,
    pub raw: bool,
}

/// The whole interactive state.
#[derive(Debug)]
pub struct App {
    pub servers: Vec<ServerState>,
    pub active: usize,
    pub sort: SortKey,
    pub reverse: bool,
    pub limit: usize,
    pub show_subs: bool,
    pub lookup: bool,
    pub raw: bool,
    pub view: View,
    pub help: bool,
    pub prompt: Option<Prompt>,
    pub flash: Option<(String, Instant)>,
    /// First connection row shown in the main view.
    pub scroll: usize,
    /// Connection rows that fit on screen; set by the UI loop from the terminal size.
    pub page: usize,
    /// Selected row in the cluster view.
    pub cluster_sel: usize,
    /// Route peers (server_id → ip) whose monitoring endpoint could not be guessed.
    pub unknown_peers: BTreeMap<String, String>,
    pub quit: bool,
    /// "Now" used for drawing ages and flash expiry; the loop refreshes it, tests pin it.
    pub now: Instant,
    monitor_port: u16,
    https: bool,
}

impl App {
    pub fn new(s: Settings, now: Instant) -> Self {
        App {
            servers: s.targets.into_iter().map(ServerState::new).collect(),
            active: 0,
            sort: s.sort,
            reverse: false,
            limit: s.limit,
            show_subs: s.show_subs,
            lookup: s.lookup,
            raw: s.raw,
            view: View::Main,
            help: false,
            prompt: None,
            flash: None,
            scroll: 0,
            page: 20,
            cluster_sel: 0,
            unknown_peers: BTreeMap::new(),
            quit: false,
            now,
            monitor_port: s.monitor_port,
            https: s.https,
        }
    }

    pub fn query(&self) -> Query {
        Query {
            limit: self.limit,
            sort: self.sort,
            subs: self.show_subs,
            lookup: self.lookup,
            active: self.active,
        }
    }

    pub fn active_server(&self) -> &ServerState {
        // `active` always indexes `servers`, which is never empty (main checks -s).
        &self.servers[self.active.min(self.servers.len().saturating_sub(1))]
    }

    /// Connections of the active server in display order.
    pub fn sorted_conns(&self) -> Vec<ConnInfo> {
        let mut conns = self
            .active_server()
            .connz
            .as_ref()
            .map(|c| c.connections.clone())
            .unwrap_or_default();
        sort_conns(&mut conns, self.sort, self.reverse);
        conns
    }

    /// Servers listed in the cluster view, by index.
    pub fn cluster_rows(&self) -> Vec<usize> {
        (0..self.servers.len())
            .filter(|&i| self.servers[i].listed())
            .collect()
    }

    pub fn flash_text(&self) -> Option<&str> {
        match &self.flash {
            Some((t, at)) if self.now.saturating_duration_since(*at) < FLASH_FOR => Some(t),
            _ => None,
        }
    }

    fn set_flash(&mut self, text: String) {
        self.flash = Some((text, self.now));
    }

    /// Applies one poll result. Returns indices of newly discovered servers to start polling.
    pub fn apply(&mut self, res: PollResult) -> Vec<usize> {
        let Some(state) = self.servers.get_mut(res.target) else {
            return Vec::new();
        };
        match res.outcome {
            Ok(snap) => {
                state.record_ok(res.at, snap);
                self.mark_alias(res.target);
                self.discover(res.target)
            }
            Err(e) => {
                state.record_err(res.at, e);
                Vec::new()
            }
        }
    }

    /// Two endpoints answering with one server_id are the same server: keep the one the user named
    /// (or the older one) and hide the other.
    fn mark_alias(&mut self, idx: usize) {
        let Some(id) = self.servers[idx].server_id().map(str::to_string) else {
            return;
        };
        let other = (0..self.servers.len()).find(|&j| {
            j != idx
                && self.servers[j].alias_of.is_none()
                && self.servers[j].server_id() == Some(id.as_str())
        });
        if let Some(j) = other {
            let keep_idx = self.servers[idx].target.origin == Origin::Given
                && self.servers[j].target.origin != Origin::Given;
            if keep_idx {
                self.servers[j].alias_of = Some(idx);
            } else {
                self.servers[idx].alias_of = Some(j);
            }
        }
    }

    /// Adds route peers and connect_urls hosts of server `idx` as new endpoints. The monitoring
    /// port of a peer is not published anywhere, so the seed's port is assumed.
    fn discover(&mut self, idx: usize) -> Vec<usize> {
        let mut candidates: Vec<(String, Origin, Option<String>)> = Vec::new();
        let s = &self.servers[idx];
        if let Some(r) = &s.routez {
            for route in &r.routes {
                let known = !route.remote_id.is_empty()
                    && self
                        .servers
                        .iter()
                        .any(|x| x.server_id() == Some(route.remote_id.as_str()));
                if !known && !route.ip.is_empty() {
                    candidates.push((
                        route.ip.clone(),
                        Origin::Route,
                        Some(route.remote_id.clone()),
                    ));
                }
            }
        }
        if let Some(v) = &s.varz {
            for url in &v.connect_urls {
                if let Some(host) = host_of(url) {
                    candidates.push((host, Origin::ConnectUrl, None));
                }
            }
        }
        let mut added = Vec::new();
        for (host, origin, remote_id) in candidates {
            let target = Target {
                host,
                port: self.monitor_port,
                https: self.https,
                origin,
            };
            let addr = target.addr();
            if let Some(existing) = self.servers.iter().find(|x| x.target.addr() == addr) {
                // The guessed endpoint is taken by a different server: we cannot reach this peer.
                if let (Some(rid), Some(id)) = (remote_id, existing.server_id()) {
                    if !rid.is_empty() && rid != id {
                        self.unknown_peers.insert(rid, target.host.clone());
                    }
                }
                continue;
            }
            self.servers.push(ServerState::new(target));
            added.push(self.servers.len() - 1);
        }
        let servers = &self.servers;
        self.unknown_peers
            .retain(|id, _| !servers.iter().any(|x| x.server_id() == Some(id.as_str())));
        added
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl_c =
            key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if ctrl_c {
            self.quit = true;
            return;
        }
        if self.help {
            // Any key leaves the help screen.
            self.help = false;
            return;
        }
        if self.prompt.is_some() {
            self.prompt_key(key.code);
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') | KeyCode::Char('h') => self.help = true,
            KeyCode::Char('o') => {
                self.prompt = Some(Prompt {
                    kind: PromptKind::Sort,
                    buf: String::new(),
                })
            }
            KeyCode::Char('n') => {
                self.prompt = Some(Prompt {
                    kind: PromptKind::Limit,
                    buf: String::new(),
                })
            }
            KeyCode::Char('s') => self.show_subs = !self.show_subs,
            KeyCode::Char('d') => self.lookup = !self.lookup,
            KeyCode::Char('b') => self.raw = !self.raw,
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('c') => {
                self.view = match self.view {
                    View::Main => View::Cluster,
                    View::Cluster => View::Main,
                }
            }
            KeyCode::Enter if self.view == View::Cluster => {
                if let Some(&idx) = self.cluster_rows().get(self.cluster_sel) {
                    self.active = idx;
                    self.scroll = 0;
                    self.view = View::Main;
                }
            }
            KeyCode::Up => self.move_by(-1),
            KeyCode::Down => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(self.page.max(1) as i64)),
            KeyCode::PageDown => self.move_by(self.page.max(1) as i64),
            KeyCode::Home => self.move_by(i64::MIN / 2),
            KeyCode::End => self.move_by(i64::MAX / 2),
            _ => {}
        }
    }

    fn move_by(&mut self, delta: i64) {
        let len = match self.view {
            View::Cluster => self.cluster_rows().len(),
            View::Main => {
                let n = self
                    .active_server()
                    .connz
                    .as_ref()
                    .map_or(0, |c| c.connections.len());
                // Scrolling stops once the last row is at the bottom of the page.
                n.saturating_sub(self.page.max(1)) + 1
            }
        };
        let pos = match self.view {
            View::Cluster => &mut self.cluster_sel,
            View::Main => &mut self.scroll,
        };
        let max = len.saturating_sub(1) as i64;
        *pos = (*pos as i64).saturating_add(delta).clamp(0, max.max(0)) as usize;
    }

    fn prompt_key(&mut self, code: KeyCode) {
        let Some(p) = self.prompt.as_mut() else {
            return;
        };
        match code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                p.buf.pop();
            }
            KeyCode::Char(c) => p.buf.push(c),
            KeyCode::Enter => {
                let kind = p.kind;
                let text = p.buf.trim().to_string();
                self.prompt = None;
                if text.is_empty() {
                    return;
                }
                match kind {
                    PromptKind::Sort => match SortKey::parse(&text) {
                        Some(k) => self.sort = k,
                        None => self.set_flash(format!("invalid order: {text}")),
                    },
                    PromptKind::Limit => match text.parse::<usize>() {
                        Ok(n) => {
                            self.limit = n;
                            self.scroll = 0;
                        }
                        Err(_) => self.set_flash(format!("invalid limit: {text}")),
                    },
                }
            }
            _ => {}
        }
    }

    /// The prompt line as shown, e.g. `sort by [cid]: byt`.
    pub fn prompt_text(&self) -> Option<String> {
        self.prompt.as_ref().map(|p| match p.kind {
            PromptKind::Sort => format!("sort by [{}]: {}", self.sort.as_str(), p.buf),
            PromptKind::Limit => format!("limit   [{}]: {}", self.limit, p.buf),
        })
    }
}

/// The host part of `host:port` / `[v6]:port` / `nats://host:port`.
fn host_of(url: &str) -> Option<String> {
    let u = url.split_once("://").map_or(url, |(_, rest)| rest);
    let u = u.split('/').next().unwrap_or(u);
    if let Some(rest) = u.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(rest[..end].to_string());
    }
    let host = match u.rsplit_once(':') {
        Some((h, _)) => h,
        None => u,
    };
    if host.is_empty() {
        None
    } else {
        Some(host.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_common::monitor::RouteInfo;

    fn target(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
            https: false,
            origin: Origin::Given,
        }
    }

    pub(crate) fn settings(targets: Vec<Target>) -> Settings {
        Settings {
            targets,
            monitor_port: 8222,
            https: false,
            sort: SortKey::Cid,
            limit: 1024,
            show_subs: false,
            lookup: false,
            raw: false,
        }
    }

    fn varz(id: &str, now: &str, in_msgs: i64) -> Varz {
        Varz {
            server_id: id.into(),
            server_name: id.into(),
            now: now.into(),
            in_msgs,
            in_bytes: in_msgs * 10,
            ..Default::default()
        }
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn rates_use_server_clock() {
        let t0 = Instant::now();
        let mut app = App::new(settings(vec![target("127.0.0.1", 8222)]), t0);
        let ok = |v: Varz, at| PollResult {
            target: 0,
            at,
            outcome: Ok(Snapshot {
                varz: v,
                ..Default::default()
            }),
        };
        app.apply(ok(varz("A", "2026-01-01T00:00:00Z", 100), t0));
        assert_eq!(app.servers[0].rates.in_msgs, 0.0);
        // Two seconds of server time, whatever the local clock says.
        app.apply(ok(
            varz("A", "2026-01-01T00:00:02Z", 300),
            t0 + Duration::from_millis(100),
        ));
        assert_eq!(app.servers[0].rates.in_msgs, 100.0);
        assert_eq!(app.servers[0].rates.in_bytes, 1000.0);
        // Counter reset after a restart gives 0, not a negative rate.
        app.apply(ok(
            varz("A", "2026-01-01T00:00:03Z", 5),
            t0 + Duration::from_millis(200),
        ));
        assert_eq!(app.servers[0].rates.in_msgs, 0.0);
        assert_eq!(app.servers[0].history.len(), 3);
    }

    #[test]
    fn errors_mark_down_and_recover() {
        let t0 = Instant::now();
        let mut app = App::new(settings(vec![target("127.0.0.1", 8222)]), t0);
        app.apply(PollResult {
            target: 0,
            at: t0,
            outcome: Err("connection refused".into()),
        });
        assert_eq!(app.servers[0].status, Status::Down);
        assert_eq!(app.servers[0].down_since, Some(t0));
        app.apply(PollResult {
            target: 0,
            at: t0 + Duration::from_secs(1),
            outcome: Err("still refused".into()),
        });
        assert_eq!(app.servers[0].down_since, Some(t0));
        assert_eq!(app.servers[0].last_error.as_deref(), Some("still refused"));
        app.apply(PollResult {
            target: 0,
            at: t0 + Duration::from_secs(2),
            outcome: Ok(Snapshot::default()),
        });
        assert_eq!(app.servers[0].status, Status::Up);
        assert!(app.servers[0].last_error.is_none());
        // A bogus index is ignored, not a panic.
        app.apply(PollResult {
            target: 99,
            at: t0,
            outcome: Err("x".into()),
        });
    }

    #[test]
    fn sort_and_reverse() {
        let mk = |cid, out_bytes, uptime: &str| ConnInfo {
            cid,
            out_bytes,
            uptime: uptime.into(),
            ..Default::default()
        };
        let mut v = vec![mk(1, 10, "1m0s"), mk(2, 30, "5s"), mk(3, 20, "1h0m0s")];
        sort_conns(&mut v, SortKey::BytesTo, false);
        assert_eq!(v.iter().map(|c| c.cid).collect::<Vec<_>>(), [2, 3, 1]);
        sort_conns(&mut v, SortKey::BytesTo, true);
        assert_eq!(v.iter().map(|c| c.cid).collect::<Vec<_>>(), [1, 3, 2]);
        sort_conns(&mut v, SortKey::Uptime, false);
        assert_eq!(v.iter().map(|c| c.cid).collect::<Vec<_>>(), [2, 1, 3]);
        sort_conns(&mut v, SortKey::Cid, false);
        assert_eq!(v.iter().map(|c| c.cid).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(SortKey::parse("msgs_from"), Some(SortKey::MsgsFrom));
        assert_eq!(SortKey::parse("rtt"), None);
    }

    #[test]
    fn keys_and_prompts() {
        let t0 = Instant::now();
        let mut app = App::new(settings(vec![target("h", 1)]), t0);
        app.handle_key(key('s'));
        assert!(app.show_subs);
        app.handle_key(key('o'));
        for c in "bytes_to".chars() {
            app.handle_key(key(c));
        }
        assert_eq!(
            app.prompt_text().as_deref(),
            Some("sort by [cid]: bytes_to")
        );
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(app.sort, SortKey::BytesTo);
        app.handle_key(key('o'));
        app.handle_key(key('x'));
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(app.sort, SortKey::BytesTo);
        assert_eq!(app.flash_text(), Some("invalid order: x"));
        app.handle_key(key('n'));
        app.handle_key(key('5'));
        app.handle_key(key('0'));
        app.handle_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
        assert_eq!(app.prompt_text().as_deref(), Some("limit   [1024]: 5"));
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(app.limit, 5);
        assert_eq!(app.query().limit, 5);
        app.handle_key(key('?'));
        assert!(app.help);
        app.handle_key(key('q'));
        assert!(!app.help && !app.quit);
        app.handle_key(key('r'));
        assert!(app.reverse);
        app.handle_key(key('c'));
        assert_eq!(app.view, View::Cluster);
        app.handle_key(key('q'));
        assert!(app.quit);
    }

    #[test]
    fn discovery_from_routes_and_connect_urls() {
        let t0 = Instant::now();
        let mut app = App::new(settings(vec![target("127.0.0.1", 8222)]), t0);
        let mut v = varz("A", "2026-01-01T00:00:00Z", 0);
        v.connect_urls = vec!["10.0.0.9:4222".into(), "[fd00::2]:4222".into()];
        let routez = Routez {
            routes: vec![
                RouteInfo {
                    remote_id: "B".into(),
                    ip: "10.0.0.2".into(),
                    ..Default::default()
                },
                RouteInfo {
                    remote_id: "C".into(),
                    ip: "127.0.0.1".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let added = app.apply(PollResult {
            target: 0,
            at: t0,
            outcome: Ok(Snapshot {
                varz: v,
                routez: Some(routez),
                ..Default::default()
            }),
        });
        let addrs: Vec<String> = added
            .iter()
            .map(|&i| app.servers[i].target.addr())
            .collect();
        assert_eq!(addrs, ["10.0.0.2:8222", "10.0.0.9:8222", "[fd00::2]:8222"]);
        // C shares the seed's address, so its monitor endpoint is unknown.
        assert_eq!(
            app.unknown_peers.get("C").map(String::as_str),
            Some("127.0.0.1")
        );
        // connect_urls hosts are not listed until they answer.
        assert_eq!(app.cluster_rows(), vec![0, 1]);
        // 10.0.0.9 turns out to be the seed itself: hidden as an alias.
        app.apply(PollResult {
            target: 2,
            at: t0,
            outcome: Ok(Snapshot {
                varz: varz("A", "2026-01-01T00:00:00Z", 0),
                ..Default::default()
            }),
        });
        assert_eq!(app.servers[2].alias_of, Some(0));
        assert_eq!(app.cluster_rows(), vec![0, 1]);
        // Enter in the cluster view switches the main view to the selected server.
        app.handle_key(key('c'));
        app.handle_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(app.active, 1);
        assert_eq!(app.view, View::Main);
    }

    #[test]
    fn dns_names_follow_the_connection_list() {
        let t0 = Instant::now();
        let mut app = App::new(settings(vec![target("h", 1)]), t0);
        let snap = |names: &[(&str, &str)]| Snapshot {
            connz: Some(Connz::default()),
            names: names
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        };
        let ok = |s| PollResult {
            target: 0,
            at: t0,
            outcome: Ok(s),
        };
        app.apply(ok(snap(&[("127.0.0.1", "localhost")])));
        assert_eq!(app.servers[0].names.len(), 1);
        // Lookups switched off: the next connection list comes without names.
        app.apply(ok(snap(&[])));
        assert!(app.servers[0].names.is_empty());
    }

    #[test]
    fn host_parsing() {
        assert_eq!(host_of("1.2.3.4:4222").as_deref(), Some("1.2.3.4"));
        assert_eq!(host_of("[::1]:4222").as_deref(), Some("::1"));
        assert_eq!(host_of("nats://h:1").as_deref(), Some("h"));
        assert_eq!(host_of(":1"), None);
        assert_eq!(host_of("[bad"), None);
    }
}
