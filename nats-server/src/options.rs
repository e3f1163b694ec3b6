//! One `Options` struct for everything the server can be told. The config file and the
//! command line both fill it; flags given on the command line win.

use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 4222;
pub const DEFAULT_HOST: &str = "0.0.0.0";
pub const MAX_PAYLOAD: usize = 1024 * 1024;
pub const MAX_CONTROL_LINE: usize = 4096;
pub const MAX_PENDING: usize = 64 * 1024 * 1024;
pub const MAX_CONNECTIONS: usize = 64 * 1024;
pub const PING_INTERVAL: Duration = Duration::from_secs(120);
pub const PING_MAX: u32 = 2;
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
pub const LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
pub const LAME_DUCK_GRACE: Duration = Duration::from_secs(10);

/// A user from `--user/--pass` or the `authorization` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub username: String,
    /// Plain text or a bcrypt hash (`$2a$...`).
    pub password: String,
    pub permissions: Option<Permissions>,
    /// The account the user belongs to; empty for the global account.
    pub account: String,
}

/// An NKey user from the `authorization { users = [{nkey: ...}] }` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NkeyUser {
    pub nkey: String,
    pub permissions: Option<Permissions>,
    /// The account the user belongs to; empty for the global account.
    pub account: String,
}

/// The global account: clients not bound to a configured account.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The default system account.
pub const SYSTEM_ACCOUNT: &str = "$SYS";

/// How a service export answers one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseType {
    #[default]
    Singleton,
    Streamed,
    Chunked,
}

/// A stream or service an account offers to others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportOptions {
    pub subject: String,
    pub service: bool,
    /// Accounts allowed to import it; `None` for a public export.
    pub accounts: Option<Vec<String>>,
    pub response_type: ResponseType,
    /// How long a service's responses may take (the reference's default: 2 minutes).
    pub response_threshold: Option<Duration>,
    /// The token (1-based) of the subject that must name the importing account.
    pub account_token_position: u32,
}

/// A stream or service an account takes from another one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportOptions {
    pub service: bool,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// Stream imports: prepended to delivered subjects.
    pub prefix: String,
    /// The subject in the importing account (services: what its clients publish to).
    pub to: String,
    pub share: bool,
}

/// One destination of a subject mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapDest {
    pub subject: String,
    /// Percent of the messages (1-100); 100 when only one destination is given.
    pub weight: u8,
    /// Applies only in this cluster when set.
    pub cluster: String,
}

/// `mappings { source: destination(s) }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    pub source: String,
    pub dests: Vec<MapDest>,
}

/// An account from the `accounts {}` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountOptions {
    pub name: String,
    pub nkey: String,
    pub exports: Vec<ExportOptions>,
    pub imports: Vec<ImportOptions>,
    pub mappings: Vec<Mapping>,
    pub jetstream: AccountJetStream,
}

/// An account's `jetstream` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccountJetStream {
    #[default]
    Off,
    /// `enabled`, `true`, or a block (its limits; -1: none).
    On(JsLimits),
}

impl AccountJetStream {
    pub fn limits(&self) -> Option<JsLimits> {
        match self {
            AccountJetStream::Off => None,
            AccountJetStream::On(l) => Some(*l),
        }
    }
}

/// An account's JetStream limits (the reference's JetStreamAccountLimits; -1: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsLimits {
    pub max_memory: i64,
    pub max_store: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
    pub max_ack_pending: i64,
    pub memory_max_stream_bytes: i64,
    pub store_max_stream_bytes: i64,
    pub max_bytes_required: bool,
}

impl Default for JsLimits {
    fn default() -> Self {
        JsLimits {
            max_memory: -1,
            max_store: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            store_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubjectPermission {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponsePermission {
    pub max_msgs: usize,
    pub expires: Duration,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    pub publish: Option<SubjectPermission>,
    pub subscribe: Option<SubjectPermission>,
    pub response: Option<ResponsePermission>,
}

/// `resolver`: where operator mode finds account JWTs.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolverOptions {
    /// `MEMORY`: the JWTs of `resolver_preload`.
    Memory,
    /// `URL(...)`, or the operator's account server.
    Url(String),
    /// `{ type: full | cache, dir: ... }`.
    Dir { full: bool, dir: String },
}

/// TLS settings of one listener (clients, routes or monitoring).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub verify: bool,
    pub verify_and_map: bool,
    pub insecure: bool,
    pub timeout: Duration,
}

/// One entry of `gateway.gateways`: a remote cluster to connect to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteGatewayOptions {
    pub name: String,
    pub urls: Vec<String>,
    pub tls: Option<TlsOptions>,
}

/// The `gateway {}` block: this cluster's gateway and the remote ones it dials.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayOptions {
    pub name: String,
    pub host: String,
    /// 0 means gateways are off; -1 picks a random port.
    pub port: i32,
    pub advertise: String,
    pub username: String,
    pub password: String,
    pub auth_timeout: Duration,
    pub tls: Option<TlsOptions>,
    pub connect_retries: u32,
    pub reject_unknown: bool,
    pub gateways: Vec<RemoteGatewayOptions>,
}

impl GatewayOptions {
    /// The reference's start-up checks of the gateway block (after flags): a name and a
    /// port go together, each remote needs a name and a URL, and the cluster takes the
    /// gateway's name (a different configured cluster name is an error).
    pub fn validate(opts: &mut Options) -> Result<(), String> {
        let g = &opts.gateway;
        if !(g.name.is_empty() && g.port == 0) {
            if g.name.is_empty() {
                return Err("gateway has no name".into());
            }
            if g.port == 0 {
                return Err(format!(
                    "gateway {:?} has no port specified (select -1 for random port)",
                    g.name
                ));
            }
            for (i, r) in g.gateways.iter().enumerate() {
                if r.name.is_empty() {
                    return Err(format!("gateway in the list {i} has no name"));
                }
                if r.urls.is_empty() {
                    return Err(format!("gateway {:?} has no URL", r.name));
                }
            }
        }
        if !opts.gateway.name.is_empty() && opts.gateway.name != opts.cluster.name {
            if !opts.cluster.name.is_empty() {
                return Err(
                    "cluster name conflicts between cluster and gateway definitions".into(),
                );
            }
            opts.cluster.name = opts.gateway.name.clone();
        }
        Ok(())
    }
}

/// Cluster (route) settings, filled by `--cluster/--routes/--cluster_name` and by the
/// config file's `cluster {}` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterOptions {
    pub name: String,
    pub host: String,
    /// 0 means clustering is off; -1 picks a random port.
    pub port: i32,
    pub advertise: String,
    pub no_advertise: bool,
    pub connect_retries: u32,
    pub username: String,
    pub password: String,
    pub auth_timeout: Duration,
    pub routes: Vec<String>,
    pub tls: Option<TlsOptions>,
    pub import: Option<SubjectPermission>,
    pub export: Option<SubjectPermission>,
}

/// A user of the `leafnodes { authorization { users: [...] } }` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeafUser {
    pub username: String,
    pub password: String,
    /// The account a leaf node logging in as this user is bound to (empty: global).
    pub account: String,
}

/// One `leafnodes { remotes: [...] }` entry: a hub this server dials as a leaf node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteLeafOptions {
    pub urls: Vec<String>,
    /// The local account the connection is bound to (empty: global).
    pub account: String,
    pub credentials: Option<PathBuf>,
    pub tls: Option<TlsOptions>,
    pub deny_imports: Vec<String>,
    pub deny_exports: Vec<String>,
    pub no_randomize: bool,
    pub hub: bool,
}

/// The `leafnodes {}` block.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafNodeOptions {
    pub host: String,
    /// 0: no leaf node listener; -1 picks a random port.
    pub port: i32,
    pub advertise: String,
    pub no_advertise: bool,
    pub username: String,
    pub password: String,
    /// The account of the single `user` (empty: global).
    pub account: String,
    pub users: Vec<LeafUser>,
    pub auth_timeout: Duration,
    pub tls: Option<TlsOptions>,
    pub reconnect: Duration,
    pub remotes: Vec<RemoteLeafOptions>,
    pub min_version: String,
}

impl Default for LeafNodeOptions {
    fn default() -> Self {
        LeafNodeOptions {
            host: String::new(),
            port: 0,
            advertise: String::new(),
            no_advertise: false,
            username: String::new(),
            password: String::new(),
            account: String::new(),
            users: Vec::new(),
            auth_timeout: Duration::ZERO,
            tls: None,
            reconnect: Duration::from_secs(1),
            remotes: Vec::new(),
            min_version: String::new(),
        }
    }
}

/// The `websocket {}` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebsocketOptions {
    pub host: String,
    /// 0: no websocket listener; -1 picks a random port.
    pub port: i32,
    pub advertise: String,
    pub no_tls: bool,
    pub tls: Option<TlsOptions>,
    pub same_origin: bool,
    pub allowed_origins: Vec<String>,
    /// Zero: none.
    pub handshake_timeout: Duration,
    pub compression: bool,
    pub username: String,
    pub password: String,
    pub token: String,
    pub auth_timeout: Option<Duration>,
    pub jwt_cookie: String,
    pub no_auth_user: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub config_file: Option<PathBuf>,
    pub server_name: String,
    pub host: String,
    /// -1 picks a random port.
    pub port: i32,
    pub client_advertise: String,
    pub http_host: String,
    pub http_port: i32,
    pub https_port: i32,
    pub http_base_path: String,

    pub debug: bool,
    pub trace: bool,
    pub trace_verbose: bool,
    pub logtime: bool,
    pub log_file: Option<PathBuf>,
    pub log_size_limit: u64,
    pub syslog: bool,
    pub remote_syslog: String,
    pub pid_file: Option<PathBuf>,
    pub ports_file_dir: Option<PathBuf>,
    pub max_traced_msg_len: usize,

    pub max_connections: usize,
    pub max_subscriptions: usize,
    pub max_control_line: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    pub write_deadline: Duration,
    pub ping_interval: Duration,
    pub ping_max: u32,
    pub lame_duck_duration: Duration,
    pub lame_duck_grace_period: Duration,
    pub no_header_support: bool,
    pub no_sublist_cache: bool,

    // Authorization.
    pub username: String,
    pub password: String,
    pub token: String,
    pub users: Vec<User>,
    pub nkeys: Vec<NkeyUser>,
    pub default_permissions: Option<Permissions>,
    pub no_auth_user: String,
    pub auth_timeout: Duration,

    // Accounts.
    pub accounts: Vec<AccountOptions>,
    /// The system account's name (`$SYS` unless configured).
    pub system_account: String,
    pub no_system_account: bool,

    // JetStream (`-js`, `-sd`, the `jetstream` block).
    pub jetstream: bool,
    /// The directory given (`-sd`, `store_dir`); JetStream keeps its files in
    /// `<store_dir>/jetstream`. Empty: the system's temporary directory + `nats`.
    pub store_dir: String,
    /// `max_memory_store` / `max_file_store`; -1: not set (the reference's defaults apply).
    pub jetstream_max_memory: i64,
    pub jetstream_max_store: i64,
    /// Server-level mappings, which apply to the global account.
    pub mappings: Vec<Mapping>,

    pub tls: Option<TlsOptions>,
    pub allow_non_tls: bool,

    pub cluster: ClusterOptions,
    pub leaf: LeafNodeOptions,
    pub websocket: WebsocketOptions,
    pub gateway: GatewayOptions,

    // Operator mode (JWT).
    /// Decoded `operator` JWTs.
    pub trusted_operators: Vec<crate::accounts::claims::OperatorClaims>,
    /// `trusted_keys`: operator public keys.
    pub trusted_keys: Vec<String>,
    pub resolver: Option<ResolverOptions>,
    /// `resolver_preload`: account public key and JWT, sorted by key.
    pub resolver_preload: Vec<(String, String)>,
    pub resolver_pinned_accounts: Option<Vec<String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config_file: None,
            server_name: String::new(),
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT as i32,
            client_advertise: String::new(),
            http_host: String::new(),
            http_port: 0,
            https_port: 0,
            http_base_path: String::new(),
            debug: false,
            trace: false,
            trace_verbose: false,
            logtime: true,
            log_file: None,
            log_size_limit: 0,
            syslog: false,
            remote_syslog: String::new(),
            pid_file: None,
            ports_file_dir: None,
            max_traced_msg_len: 0,
            max_connections: MAX_CONNECTIONS,
            max_subscriptions: 0,
            max_control_line: MAX_CONTROL_LINE,
            max_payload: MAX_PAYLOAD,
            max_pending: MAX_PENDING,
            write_deadline: WRITE_DEADLINE,
            ping_interval: PING_INTERVAL,
            ping_max: PING_MAX,
            lame_duck_duration: LAME_DUCK_DURATION,
            lame_duck_grace_period: LAME_DUCK_GRACE,
            no_header_support: false,
            no_sublist_cache: false,
            username: String::new(),
            password: String::new(),
            token: String::new(),
            users: Vec::new(),
            nkeys: Vec::new(),
            default_permissions: None,
            no_auth_user: String::new(),
            auth_timeout: Duration::ZERO,
            accounts: Vec::new(),
            system_account: String::new(),
            no_system_account: false,
            jetstream: false,
            store_dir: String::new(),
            jetstream_max_memory: -1,
            jetstream_max_store: -1,
            mappings: Vec::new(),
            tls: None,
            allow_non_tls: false,
            cluster: ClusterOptions::default(),
            leaf: LeafNodeOptions::default(),
            websocket: WebsocketOptions::default(),
            gateway: GatewayOptions::default(),
            trusted_operators: Vec::new(),
            trusted_keys: Vec::new(),
            resolver: None,
            resolver_preload: Vec::new(),
            resolver_pinned_accounts: None,
        }
    }
}

impl Options {
    /// Whether clients must authenticate.
    pub fn auth_required(&self) -> bool {
        !self.username.is_empty()
            || !self.token.is_empty()
            || !self.users.is_empty()
            || !self.nkeys.is_empty()
            || crate::accounts::jwt::trusted_mode(self)
    }

    /// The auth timeout in force: configured, else 2 s, or the TLS timeout plus 1 s.
    pub fn effective_auth_timeout(&self) -> Duration {
        if !self.auth_timeout.is_zero() {
            return self.auth_timeout;
        }
        match &self.tls {
            Some(t) if !t.timeout.is_zero() => t.timeout + Duration::from_secs(1),
            _ => AUTH_TIMEOUT,
        }
    }

    /// Checks that the options can run together, with the reference's messages.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_payload > self.max_pending {
            return Err(format!(
                "max_payload ({}) cannot be higher than max_pending ({})",
                self.max_payload, self.max_pending
            ));
        }
        Ok(())
    }
}
