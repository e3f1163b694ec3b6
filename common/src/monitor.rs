//! JSON shapes of the HTTP monitoring endpoints (`/varz`, `/connz`, `/routez`, `/subsz`, `/healthz`).
//!
//! Field names, order and omission rules follow the reference server 2.9.10 so that our server can
//! serialize these types and any client (nats-top, tests) can deserialize what either server sends.
//! Every struct is `#[serde(default)]` so that a missing field never fails a decode.
//!
//! Times are kept as the RFC3339-with-nanoseconds strings the reference prints; helpers below
//! format and parse them, and format/parse Go duration strings.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// Go's encoding/json prints whole floats without a fraction (`2`, not `2.0`); mirror that.
pub fn go_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

// ---------------------------------------------------------------------------------------------
// /varz
// ---------------------------------------------------------------------------------------------

/// `GET /varz`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub git_commit: String,
    pub go: String,
    pub host: String,
    pub port: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ws_connect_urls: Vec<String>,
    pub max_connections: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_subscriptions: i64,
    /// Nanoseconds.
    pub ping_interval: i64,
    pub ping_max: i64,
    pub http_host: String,
    pub http_port: i64,
    pub http_base_path: String,
    pub https_port: i64,
    /// Seconds.
    #[serde(serialize_with = "go_float")]
    pub auth_timeout: f64,
    pub max_control_line: i64,
    pub max_payload: i64,
    pub max_pending: i64,
    pub cluster: ClusterOptsVarz,
    pub gateway: GatewayOptsVarz,
    pub leaf: LeafNodeOptsVarz,
    pub mqtt: MqttOptsVarz,
    pub websocket: WebsocketOptsVarz,
    pub jetstream: JetStreamVarz,
    /// Seconds.
    #[serde(serialize_with = "go_float")]
    pub tls_timeout: f64,
    /// Nanoseconds.
    pub write_deadline: i64,
    pub start: String,
    pub now: String,
    /// Compact form, see [`uptime_string`].
    pub uptime: String,
    pub mem: i64,
    pub cores: i64,
    pub gomaxprocs: i64,
    /// Percent.
    #[serde(serialize_with = "go_float")]
    pub cpu: f64,
    pub connections: i64,
    pub total_connections: u64,
    pub routes: i64,
    pub remotes: i64,
    pub leafnodes: i64,
    pub in_msgs: i64,
    pub out_msgs: i64,
    pub in_bytes: i64,
    pub out_bytes: i64,
    pub slow_consumers: i64,
    pub subscriptions: u32,
    pub http_req_stats: BTreeMap<String, u64>,
    pub config_load_time: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_operators_jwt: Vec<String>,
    /// Operator JWT claims; kept opaque.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_operators_claim: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_account: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub pinned_account_fails: u64,
}

/// `cluster` in /varz; `{}` when not clustered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterOptsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub cluster_port: i64,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
}

/// `gateway` in /varz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GatewayOptsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub port: i64,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub advertise: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub connect_retries: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<RemoteGatewayOptsVarz>,
    #[serde(skip_serializing_if = "is_false")]
    pub reject_unknown: bool,
}

/// One configured remote gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteGatewayOptsVarz {
    pub name: String,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// `leaf` in /varz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafNodeOptsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub port: i64,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteLeafOptsVarz>,
}

/// One configured remote leafnode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteLeafOptsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_account: String,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny: Option<DenyRules>,
}

/// Leafnode deny rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DenyRules {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<String>,
}

/// `mqtt` in /varz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttOptsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub port: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_auth_user: String,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_map: bool,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub tls_timeout: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_pinned_certs: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub js_domain: String,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ack_wait: i64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub max_ack_pending: u64,
}

/// `websocket` in /varz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebsocketOptsVarz {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub port: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub advertise: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_auth_user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwt_cookie: String,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub handshake_timeout: i64,
    #[serde(skip_serializing_if = "is_zero_f64", serialize_with = "go_float")]
    pub auth_timeout: f64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_tls: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tls_map: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_pinned_certs: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub same_origin: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub compression: bool,
}

/// `jetstream` in /varz; `{}` without JetStream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamVarz {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<JetStreamVarzConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<JetStreamVarzStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// `jetstream.config` in /varz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamVarzConfig {
    pub max_memory: i64,
    pub max_storage: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub store_dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(skip_serializing_if = "is_false")]
    pub compress_ok: bool,
}

/// `jetstream.stats` in /varz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamVarzStats {
    pub memory: u64,
    pub storage: u64,
    pub reserved_memory: u64,
    pub reserved_storage: u64,
    pub accounts: u64,
    pub ha_assets: u64,
    pub api: JetStreamApiStats,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamApiStats {
    pub total: u64,
    pub errors: u64,
}

// ---------------------------------------------------------------------------------------------
// /connz
// ---------------------------------------------------------------------------------------------

/// `GET /connz`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Connz {
    pub server_id: String,
    pub now: String,
    /// Entries returned in `connections`.
    pub num_connections: i64,
    /// All matching connections before paging.
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
    /// `[]` (never null) when empty.
    pub connections: Vec<ConnInfo>,
}

/// One connection in /connz.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnInfo {
    pub cid: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub conn_type: String,
    pub ip: String,
    pub port: i64,
    pub start: String,
    pub last_activity: String,
    /// Closed connections only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Go duration string (`263µs`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_bytes: i64,
    pub in_msgs: i64,
    pub out_msgs: i64,
    pub in_bytes: i64,
    pub out_bytes: i64,
    pub subscriptions: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tls_cipher_suite: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tls_peer_certs: Vec<TlsPeerCert>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub authorized_user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwt: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name_tag: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// MQTT client id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
}

/// A TLS peer certificate summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsPeerCert {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub spki_sha256: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cert_sha256: String,
}

/// One subscription in `subscriptions_list_detail` (/connz, /routez) or `subscriptions_list` (/subsz).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubDetail {
    /// Present in /subsz only.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub qgroup: String,
    pub sid: String,
    pub msgs: i64,
    /// Auto-unsubscribe limit.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max: i64,
    pub cid: u64,
}

// ---------------------------------------------------------------------------------------------
// /routez
// ---------------------------------------------------------------------------------------------

/// `GET /routez`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Routez {
    pub server_id: String,
    pub now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    pub num_routes: i64,
    /// `[]` (never null) when empty.
    pub routes: Vec<RouteInfo>,
}

/// One route connection in /routez.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteInfo {
    pub rid: u64,
    pub remote_id: String,
    pub did_solicit: bool,
    pub is_configured: bool,
    pub ip: String,
    pub port: i64,
    pub start: String,
    pub last_activity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    pub pending_size: i64,
    pub in_msgs: i64,
    pub out_msgs: i64,
    pub in_bytes: i64,
    pub out_bytes: i64,
    pub subscriptions: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
}

/// Allow/deny subject lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectPermission {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// /subsz
// ---------------------------------------------------------------------------------------------

/// Sublist statistics; this alone is the body of `/subsz` without `subs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SublistStats {
    pub num_subscriptions: u32,
    pub num_cache: u32,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    #[serde(serialize_with = "go_float")]
    pub cache_hit_rate: f64,
    pub max_fanout: u32,
    #[serde(serialize_with = "go_float")]
    pub avg_fanout: f64,
}

/// `GET /subsz?subs=1`: the statistics embedded between `now` and `total`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Subsz {
    pub server_id: String,
    pub now: String,
    #[serde(flatten)]
    pub stats: SublistStats,
    pub total: i64,
    pub offset: i64,
    pub limit: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<SubDetail>,
}

// ---------------------------------------------------------------------------------------------
// /healthz
// ---------------------------------------------------------------------------------------------

/// `GET /healthz`: `{"status":"ok"}` or, with HTTP 503, a status plus `error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthz {
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Healthz {
    pub fn ok() -> Self {
        Healthz {
            status: "ok".to_string(),
            error: String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Time helpers
// ---------------------------------------------------------------------------------------------

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// Nanoseconds since the Unix epoch (negative before 1970).
fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Formats a time as UTC RFC3339 with nanoseconds the way Go's `time.RFC3339Nano` does:
/// trailing zeros of the fraction are dropped, and so is the dot when the fraction is zero.
pub fn format_rfc3339_nanos(t: SystemTime) -> String {
    format_unix_nanos(unix_nanos(t))
}

/// Same as [`format_rfc3339_nanos`] from nanoseconds since the Unix epoch.
pub fn format_unix_nanos(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y,
        m,
        d,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    push_fraction(&mut out, frac);
    out.push('Z');
    out
}

fn push_fraction(out: &mut String, frac: u32) {
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// A parsed RFC3339 timestamp: instant as Unix nanoseconds plus the zone offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub unix_nanos: i128,
    pub offset_secs: i32,
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an RFC3339 timestamp (`2026-11-22T02:02:53.877534788Z`, or with a `+hh:mm` offset).
/// Returns `None` for anything malformed.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.len() < 20 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&date[0..4])? as i64;
    let mo = digits(&date[5..7])?;
    let d = digits(&date[8..10])?;
    let (clock, rest) = rest.split_at(9);
    let cb = clock.as_bytes();
    if !(cb[0] == b'T' || cb[0] == b't' || cb[0] == b' ') || cb[3] != b':' || cb[6] != b':' {
        return None;
    }
    let h = digits(&clock[1..3])?;
    let mi = digits(&clock[4..6])?;
    let se = digits(&clock[7..9])?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = rest;
    let mut frac: u64 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if end == 0 {
            return None;
        }
        // Only nanosecond precision is kept; extra digits are truncated.
        for (i, c) in r[..end].bytes().enumerate() {
            if i < 9 {
                frac = frac * 10 + (c - b'0') as u64;
            }
        }
        for _ in end..9 {
            frac *= 10;
        }
        rest = &r[end..];
    }
    let offset_secs: i32 = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !(rb[0] == b'+' || rb[0] == b'-') || rb[3] != b':' {
                return None;
            }
            let oh = digits(&rest[1..3])? as i32;
            let om = digits(&rest[4..6])? as i32;
            let v = oh * 3600 + om * 60;
            if rb[0] == b'-' {
                -v
            } else {
                v
            }
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + se) as i64 - offset_secs as i64;
    Some(Timestamp {
        unix_nanos: secs as i128 * 1_000_000_000 + frac as i128,
        offset_secs,
    })
}

impl Timestamp {
    /// Go's `time.Time.String()` form: `2026-11-22 02:02:53.877534788 +0000 UTC`.
    /// Without zone names, a non-UTC offset is printed as its own name (`+0100 +0100`), as Go
    /// does for a fixed zone parsed from text.
    pub fn go_string(&self) -> String {
        let local = self.unix_nanos + self.offset_secs as i128 * 1_000_000_000;
        let secs = local.div_euclid(1_000_000_000) as i64;
        let frac = local.rem_euclid(1_000_000_000) as u32;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let mut out = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            y,
            m,
            d,
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        );
        push_fraction(&mut out, frac);
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let off = self.offset_secs.unsigned_abs();
        let zone = format!("{}{:02}{:02}", sign, off / 3600, (off / 60) % 60);
        if self.offset_secs == 0 {
            out.push_str(" +0000 UTC");
        } else {
            out.push_str(&format!(" {zone} {zone}"));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Duration helpers
// ---------------------------------------------------------------------------------------------

/// Formats a duration like Go's `time.Duration.String()`: `0s`, `100ns`, `263µs`, `1.859817ms`,
/// `1.5s`, `1m2s`, `1h0m0s`.
pub fn go_duration_string(d: Duration) -> String {
    let total = d.as_nanos();
    if total == 0 {
        return "0s".to_string();
    }
    if total < 1_000_000_000 {
        // Below one second a single unit is used, with a fraction.
        let (unit, scale) = if total < 1_000 {
            ("ns", 1u128)
        } else if total < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{}", fixed_fraction(total, scale), unit);
    }
    let secs_total = total / 1_000_000_000;
    let frac_ns = total % 1_000_000_000;
    let h = secs_total / 3600;
    let m = (secs_total / 60) % 60;
    let s = secs_total % 60;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}"));
    push_fraction(&mut out, frac_ns as u32);
    out.push('s');
    out
}

/// `value / scale` with the remainder as a trimmed decimal fraction.
fn fixed_fraction(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let rem = value % scale;
    if rem == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let frac = format!("{rem:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses a Go duration string (`1h2m3.5s`, `263µs`, `1.5ms`, `0`). Units: `ns`, `us`, `µs`, `μs`,
/// `ms`, `s`, `m`, `h`. Negative durations are rejected since `std::time::Duration` cannot hold them.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let orig = s;
    let bad = || format!("invalid duration \"{orig}\"");
    let mut s = s;
    if let Some(r) = s.strip_prefix('+') {
        s = r;
    } else if let Some(r) = s.strip_prefix('-') {
        if r == "0" {
            return Ok(Duration::ZERO);
        }
        return Err(format!("negative duration \"{orig}\""));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    parse_units(s, false).ok_or_else(bad)
}

/// Parses the compact `uptime`/`idle` form of the monitoring endpoints (`1y2d3h4m5s`), which also
/// accepts everything [`parse_go_duration`] does.
pub fn parse_uptime(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("invalid duration \"\"".to_string());
    }
    parse_units(s, true).ok_or_else(|| format!("invalid duration \"{s}\""))
}

fn parse_units(mut s: &str, allow_days: bool) -> Option<Duration> {
    let mut total: u128 = 0;
    while !s.is_empty() {
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num = &s[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        s = &s[num_end..];
        let unit_end = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let unit = &s[..unit_end];
        s = &s[unit_end..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" if allow_days => 86_400_000_000_000,
            "y" if allow_days => 365 * 86_400_000_000_000,
            _ => return None,
        };
        let (whole, frac) = match num.split_once('.') {
            Some((w, f)) => (w, f),
            None => (num, ""),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        // Fractional part: accumulate digit by digit at decreasing scale (exact for ≤ ns).
        let mut place = scale;
        for c in frac.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            value += (c - b'0') as u128 * place;
        }
        total = total.checked_add(value)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// The compact duration used for `uptime`/`idle`: whole seconds, largest unit first, zeros kept
/// inside (`1y2d3h4m5s`, `2d0h0m1s`, `1m2s`, `5s`).
pub fn uptime_string(d: Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    let hours = mins / 60;
    let days = hours / 24;
    let years = days / 365;
    if years > 0 {
        format!(
            "{}y{}d{}h{}m{}s",
            years,
            days % 365,
            hours % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{}d{}h{}m{}s", days, hours % 24, mins % 60, secs % 60)
    } else if hours > 0 {
        format!("{}h{}m{}s", hours, mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{}m{}s", mins, secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARZ: &str = r#"{
  "server_id": "NCVB",
  "server_name": "R1",
  "version": "2.9.10",
  "proto": 1,
  "go": "go1.19.8",
  "host": "0.0.0.0",
  "port": 24230,
  "connect_urls": ["192.0.2.2:24230", "[fd00::2]:24230"],
  "max_connections": 65536,
  "ping_interval": 120000000000,
  "ping_max": 2,
  "http_host": "0.0.0.0",
  "http_port": 24830,
  "http_base_path": "",
  "https_port": 0,
  "auth_timeout": 2,
  "max_control_line": 4096,
  "max_payload": 1048576,
  "max_pending": 67108864,
  "cluster": {"name": "test", "addr": "127.0.0.1", "cluster_port": 24231, "auth_timeout": 2, "tls_timeout": 2},
  "gateway": {}, "leaf": {}, "mqtt": {}, "websocket": {}, "jetstream": {},
  "tls_timeout": 2,
  "write_deadline": 10000000000,
  "start": "2026-11-22T02:01:53.163326957Z",
  "now": "2026-11-22T02:02:55.39148863Z",
  "uptime": "1m2s",
  "mem": 13639680,
  "cores": 2,
  "gomaxprocs": 2,
  "cpu": 0,
  "connections": 1,
  "total_connections": 3,
  "routes": 1,
  "remotes": 1,
  "leafnodes": 0,
  "in_msgs": 21,
  "out_msgs": 28,
  "in_bytes": 4738,
  "out_bytes": 9507,
  "slow_consumers": 0,
  "subscriptions": 85,
  "http_req_stats": {"/": 1, "/varz": 1},
  "config_load_time": "2026-11-22T02:01:53.163326957Z",
  "system_account": "$SYS"
}"#;

    fn compact(s: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(s).expect("valid json");
        serde_json::to_string(&v).expect("serializes")
    }

    #[test]
    fn varz_round_trips_in_reference_order() {
        let v: Varz = serde_json::from_str(VARZ).expect("decodes");
        assert_eq!(v.server_name, "R1");
        assert_eq!(v.cluster.cluster_port, 24231);
        assert_eq!(v.in_bytes, 4738);
        let out = serde_json::to_string(&v).expect("encodes");
        // serde_json::Value sorts keys, so compare text produced in struct order with the input
        // compacted by hand instead.
        let want: String = VARZ.split_whitespace().collect::<Vec<_>>().join("");
        let got: String = out.split_whitespace().collect::<Vec<_>>().join("");
        assert_eq!(got, want);
    }

    #[test]
    fn standalone_varz_omits_empty_fields() {
        let v = Varz::default();
        let out = serde_json::to_string(&v).expect("encodes");
        assert!(!out.contains("connect_urls"));
        assert!(!out.contains("auth_required"));
        assert!(out.contains("\"cluster\":{}"));
        assert!(out.contains("\"jetstream\":{}"));
        assert!(out.contains("\"auth_timeout\":0,"));
        assert!(!out.contains("system_account"));
    }

    #[test]
    fn varz_tolerates_missing_fields() {
        let v: Varz = serde_json::from_str(r#"{"version":"2.9.10","cpu":1.5}"#).expect("decodes");
        assert_eq!(v.version, "2.9.10");
        assert_eq!(v.cpu, 1.5);
        assert_eq!(serde_json::to_value(&v).expect("encodes")["cpu"], 1.5);
    }

    #[test]
    fn connz_detail_matches_reference() {
        let text = r#"{"server_id":"NCVB","now":"2026-11-22T02:02:59.376067376Z","num_connections":1,"total":1,"offset":0,"limit":1024,"connections":[{"cid":15,"kind":"Client","type":"nats","ip":"127.0.0.1","port":43182,"start":"2026-11-22T02:02:53.877151678Z","last_activity":"2026-11-22T02:02:53.877534788Z","rtt":"263µs","uptime":"5s","idle":"5s","pending_bytes":0,"in_msgs":1,"out_msgs":1,"in_bytes":5,"out_bytes":5,"subscriptions":2,"name":"mon-test","lang":"python","version":"0.1","subscriptions_list_detail":[{"subject":"foo","sid":"1","msgs":1,"cid":15},{"subject":"bar.*","qgroup":"q1","sid":"2","msgs":0,"cid":15}]}]}"#;
        let c: Connz = serde_json::from_str(text).expect("decodes");
        assert_eq!(c.connections[0].conn_type, "nats");
        assert_eq!(c.connections[0].subscriptions_list_detail[1].qgroup, "q1");
        assert_eq!(serde_json::to_string(&c).expect("encodes"), text);
        let empty = serde_json::to_string(&Connz::default()).expect("encodes");
        assert!(empty.ends_with("\"connections\":[]}"));
    }

    #[test]
    fn closed_conn_has_stop_and_reason_in_place() {
        let ci = ConnInfo {
            stop: Some("2026-11-22T02:00:01.664058305Z".into()),
            reason: "Authentication Failure".into(),
            rtt: "0s".into(),
            ..Default::default()
        };
        let out = serde_json::to_string(&ci).expect("encodes");
        assert!(out.contains(r#""last_activity":"","stop":"2026-11-22T02:00:01.664058305Z","reason":"Authentication Failure","rtt":"0s","uptime""#));
    }

    #[test]
    fn routez_and_subsz_round_trip() {
        let text = r#"{"server_id":"A","now":"2026-11-22T02:03:09.440604063Z","num_routes":1,"routes":[{"rid":4,"remote_id":"B","did_solicit":false,"is_configured":false,"ip":"127.0.0.1","port":55898,"start":"2026-11-22T02:01:53.676131489Z","last_activity":"2026-11-22T02:02:55.430096874Z","rtt":"357µs","uptime":"1m15s","idle":"14s","pending_size":0,"in_msgs":9,"out_msgs":18,"in_bytes":5215,"out_bytes":9425,"subscriptions":39,"subscriptions_list":["foo"]}]}"#;
        let r: Routez = serde_json::from_str(text).expect("decodes");
        assert_eq!(serde_json::to_string(&r).expect("encodes"), text);

        let text = r#"{"server_id":"A","now":"2026-11-22T02:03:12.643457861Z","num_subscriptions":85,"num_cache":9,"num_inserts":91,"num_removes":6,"num_matches":19,"cache_hit_rate":0.25,"max_fanout":2,"avg_fanout":1.5,"total":1,"offset":0,"limit":1024,"subscriptions_list":[{"account":"$G","subject":"bar.*","qgroup":"q1","sid":"2","msgs":0,"cid":15}]}"#;
        let s: Subsz = serde_json::from_str(text).expect("decodes");
        assert_eq!(s.stats.num_inserts, 91);
        assert_eq!(serde_json::to_string(&s).expect("encodes"), text);
        let stats = r#"{"num_subscriptions":85,"num_cache":9,"num_inserts":91,"num_removes":6,"num_matches":19,"cache_hit_rate":0,"max_fanout":2,"avg_fanout":1}"#;
        let st: SublistStats = serde_json::from_str(stats).expect("decodes");
        assert_eq!(serde_json::to_string(&st).expect("encodes"), stats);
        assert_eq!(
            compact(stats),
            compact(&serde_json::to_string(&st).unwrap())
        );
    }

    #[test]
    fn healthz_forms() {
        assert_eq!(
            serde_json::to_string(&Healthz::ok()).expect("encodes"),
            r#"{"status":"ok"}"#
        );
        let h: Healthz = serde_json::from_str(r#"{"status":"unavailable","error":"x"}"#).unwrap();
        assert_eq!(h.error, "x");
    }

    #[test]
    fn go_duration_formatting() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_000), "1µs"),
            (Duration::from_nanos(263_000), "263µs"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_nanos(1_859_817), "1.859817ms"),
            (Duration::from_millis(100), "100ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(62), "1m2s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::new(3723, 4_000_000), "1h2m3.004s"),
            (Duration::from_secs(100 * 3600), "100h0m0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration_string(d), want, "{d:?}");
            assert_eq!(parse_go_duration(want), Ok(d), "{want}");
        }
    }

    #[test]
    fn go_duration_parsing() {
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("2us"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_go_duration("2μs"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_go_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("+1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "1", "s", "1x", "1.2.3s", "-1s", "1d", ".s", "1s2"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uptime_compact_form() {
        assert_eq!(uptime_string(Duration::from_millis(5900)), "5s");
        assert_eq!(uptime_string(Duration::from_secs(62)), "1m2s");
        assert_eq!(uptime_string(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(
            uptime_string(Duration::from_secs(2 * 86400 + 1)),
            "2d0h0m1s"
        );
        assert_eq!(
            uptime_string(Duration::from_secs(366 * 86400 + 3723)),
            "1y1d1h2m3s"
        );
        assert_eq!(
            parse_uptime("1y1d1h2m3s"),
            Ok(Duration::from_secs(366 * 86400 + 3723))
        );
        assert_eq!(parse_uptime("5s"), Ok(Duration::from_secs(5)));
        assert!(parse_uptime("abc").is_err());
    }

    #[test]
    fn rfc3339_round_trip() {
        let s = "2026-11-22T02:02:55.39148863Z";
        let t = parse_rfc3339(s).expect("parses");
        assert_eq!(format_unix_nanos(t.unix_nanos), s);
        assert_eq!(t.go_string(), "2026-11-22 02:02:55.39148863 +0000 UTC");
        let z = parse_rfc3339("1970-01-01T00:00:00Z").expect("parses");
        assert_eq!(z.unix_nanos, 0);
        assert_eq!(z.go_string(), "1970-01-01 00:00:00 +0000 UTC");
        let off = parse_rfc3339("2026-11-22T03:00:00.5+01:00").expect("parses");
        assert_eq!(format_unix_nanos(off.unix_nanos), "2026-11-22T02:00:00.5Z");
        assert_eq!(off.go_string(), "2026-11-22 03:00:00.5 +0100 +0100");
        let zero = parse_rfc3339("0001-01-01T00:00:00Z").expect("parses");
        assert_eq!(format_unix_nanos(zero.unix_nanos), "0001-01-01T00:00:00Z");
        for bad in [
            "",
            "x",
            "2026-11-22",
            "2026-13-22T02:02:55Z",
            "2026-11-22T02:02:55",
            "2026-11-22T02:02:55.Z",
            "2026-11-22T02:02:5é.1Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
        let now = SystemTime::now();
        let txt = format_rfc3339_nanos(now);
        assert_eq!(
            parse_rfc3339(&txt).map(|t| t.unix_nanos),
            Some(unix_nanos(now))
        );
    }
}
