//! `/metrics`: the monitoring data in the Prometheus exposition formats, under the names,
//! types and labels prometheus-nats-exporter (v0.20) gives them, so its dashboards and alert
//! rules work against this server without the exporter.
//!
//! Each scrape reads the same builders the JSON endpoints use and converts their answers the
//! way the exporter converts the JSON it polls:
//! - `/varz`, `/routez` and `/subsz` (the exporter's generic collector): every JSON number,
//!   nested objects flattened with `_`, becomes a gauge `<prefix>_<endpoint>_<field>`; the
//!   strings `server_id`, `server_name`, `version`, `domain`, `leader`, `name`, `start` and
//!   `config_load_time` become a gauge of 1 with the text in a `value` label, or, when they
//!   are RFC 3339 times, a gauge of milliseconds since the epoch; booleans and arrays are
//!   left out, as are the fields the exporter skips.
//! - `/connz` (default page: 1024 connections by cid): `num_connections`, `total`, `offset`,
//!   `limit` and the page's summed `pending_bytes` and `subscriptions` as gauges, its summed
//!   `in_msgs`, `out_msgs`, `in_bytes`, `out_bytes` as counters.
//! - `/healthz`: `status` (0 when ok) and `status_value{value="ok"}` (1 when ok).
//! - `/accstatz?unused=1`: nine gauges per account labelled `account`, `account_id`,
//!   `account_name` (the last empty and `subscriptions` 0, as the exporter reads 2.9's JSON).
//! - `/gatewayz`: per outbound and inbound gateway connection, `info` (its times in labels),
//!   `configured` and the connection's rtt, pending bytes, messages, bytes, subscriptions.
//! - `/leafz`: `conn_nodes_total`, and per leaf node connection `info`, rtt, messages,
//!   bytes and `conn_subscriptions_total`; `/jsz`: the
//!   exporter's seven JetStream server gauges under `jetstream_server_*` (disabled = 1).
//!
//! Every series carries `server_id` with the server's own ID (the exporter's
//! `-use_internal_server_id`). `?prefix=nats` replaces the `gnatsd` and `jetstream`
//! namespaces, as the exporter's `-prefix` does.
//!
//! The classic text format (`text/plain; version=0.0.4`, what the exporter serves) is written
//! by the `prometheus` crate; OpenMetrics, when the scraper's `Accept` prefers it, by the
//! Prometheus project's `prometheus-client`. OpenMetrics requires a counter's samples to end
//! in `_total`, which would rename the four `/connz` counters for every Prometheus (they ask
//! for OpenMetrics first), so in that format they are typed `unknown` and keep their names.
//!
//! A scrape runs on a blocking thread: it never holds a runtime worker that delivers messages.

use super::query::Params;
use super::{bad_request, Mon, Monitor};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nats_common::monitor::parse_rfc3339;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The exporter's core namespace.
pub const DEFAULT_PREFIX: &str = "gnatsd";
/// The exporter's JetStream namespace.
const JETSTREAM_PREFIX: &str = "jetstream";

/// Content types of the two formats.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a family is typed (the exporter only uses these two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One sample: its labels (sorted by name, as the Go client prints them) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// One metric family.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// Collects families by name, keeping them sorted (as the Go registry gathers them).
#[derive(Default)]
struct Families(BTreeMap<String, Family>);

impl Families {
    fn add(&mut self, name: String, help: &str, kind: Kind, labels: &[(&str, &str)], value: f64) {
        if !valid_name(&name) {
            return;
        }
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        let fam = self.0.entry(name.clone()).or_insert_with(|| Family {
            name,
            help: help.to_string(),
            kind,
            samples: Vec::new(),
        });
        fam.samples.push(Sample { labels, value });
    }

    fn into_vec(self) -> Vec<Family> {
        self.0.into_values().collect()
    }
}

/// A Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A `prefix` parameter: a name part without colons (`nats`, `gnatsd`, …).
fn valid_prefix(p: &str) -> bool {
    valid_name(p) && !p.contains(':')
}

// ---------------------------------------------------------------------------------------------
// The exporter's generic collector
// ---------------------------------------------------------------------------------------------

/// Flattened names the exporter drops.
const SKIP_FQN: &[&str] = &[
    "leaf",
    "trusted_operators_claim",
    "cluster_tls_timeout",
    "cluster_cluster_port",
    "cluster_auth_timeout",
    "gateway_port",
    "gateway_auth_timeout",
    "gateway_tls_timeout",
    "gateway_connect_retries",
];

/// String fields the exporter keeps (as a `value` label, or as a time).
const LABEL_KEYS: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "domain",
    "leader",
    "name",
    "start",
    "config_load_time",
];

/// What one flattened field becomes.
#[derive(Debug, PartialEq)]
enum Field {
    Number(f64),
    Label(String),
}

/// The exporter's name for a nested field: parts joined with `_`, `/` read as `_`, outer
/// underscores trimmed and runs of them collapsed.
fn fq_name(path: &[&str]) -> String {
    let joined = path.join("_").replace('/', "_");
    let mut s = joined.trim_matches('_').to_string();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    s
}

fn flatten<'a>(
    obj: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
    out: &mut BTreeMap<String, Field>,
) {
    for (k, v) in obj {
        path.push(k.as_str());
        let fqn = fq_name(path);
        if !SKIP_FQN.contains(&fqn.as_str()) && !out.contains_key(&fqn) {
            match v {
                Value::Number(n) => {
                    if let Some(f) = n.as_f64() {
                        out.insert(fqn, Field::Number(f));
                    }
                }
                Value::String(s) if LABEL_KEYS.contains(&k.as_str()) => {
                    let field = match parse_rfc3339(s) {
                        Some(t) => Field::Number(t.unix_nanos.div_euclid(1_000_000) as f64),
                        None => Field::Label(s.clone()),
                    };
                    out.insert(fqn, field);
                }
                Value::Object(m) => flatten(m, path, out),
                _ => {}
            }
        }
        path.pop();
    }
}

/// The series the generic collector makes of one endpoint's JSON.
fn generic(fams: &mut Families, ns: &str, endpoint: &str, json: &Value, id: &str) {
    let Value::Object(obj) = json else {
        return;
    };
    let mut fields = BTreeMap::new();
    flatten(obj, &mut Vec::new(), &mut fields);
    for (fqn, field) in fields {
        let name = format!("{ns}_{endpoint}_{fqn}");
        match field {
            Field::Number(v) => fams.add(name, &fqn, Kind::Gauge, &[("server_id", id)], v),
            Field::Label(s) => fams.add(
                name,
                &fqn,
                Kind::Gauge,
                &[("server_id", id), ("value", &s)],
                1.0,
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Collection
// ---------------------------------------------------------------------------------------------

/// One number of a /connz entry.
type ConnField = fn(&nats_common::monitor::ConnInfo) -> f64;

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return 0.0,
        }
    }
    cur.as_f64().unwrap_or(0.0)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Every family a scrape returns; `prefix` "" means the exporter's default namespaces.
pub fn collect(mon: &Monitor, prefix: &str) -> Vec<Family> {
    let core = if prefix.is_empty() {
        DEFAULT_PREFIX
    } else {
        prefix
    };
    let js = if prefix.is_empty() {
        JETSTREAM_PREFIX
    } else {
        prefix
    };
    let s = &mon.server;
    let id = s.id.as_str();
    let mut fams = Families::default();
    let idl = [("server_id", id)];

    // /varz
    let varz = super::varz_data(mon);
    let server_name = varz.server_name.clone();
    generic(
        &mut fams,
        core,
        "varz",
        &serde_json::to_value(&varz).unwrap_or_default(),
        id,
    );

    // /connz with the exporter's request: no parameters.
    let opts = super::ConnzOptions::from_json(&Value::Null);
    if let Ok(c) = super::connz_data(mon, &opts) {
        let g = |fams: &mut Families, f: &str, v: f64| {
            fams.add(format!("{core}_connz_{f}"), f, Kind::Gauge, &idl, v)
        };
        g(&mut fams, "num_connections", c.num_connections as f64);
        g(&mut fams, "total", c.total as f64);
        g(&mut fams, "offset", c.offset as f64);
        g(&mut fams, "limit", c.limit as f64);
        // Folded from +0 (`sum()` of no floats is -0, which would print as `-0`).
        let sum = |f: ConnField| -> f64 { c.connections.iter().fold(0.0, |acc, c| acc + f(c)) };
        g(&mut fams, "pending_bytes", sum(|c| c.pending_bytes as f64));
        g(
            &mut fams,
            "subscriptions",
            sum(|c| f64::from(c.subscriptions)),
        );
        let counters: [(&str, ConnField); 4] = [
            ("in_bytes", |c| c.in_bytes as f64),
            ("out_bytes", |c| c.out_bytes as f64),
            ("in_msgs", |c| c.in_msgs as f64),
            ("out_msgs", |c| c.out_msgs as f64),
        ];
        for (f, get) in counters {
            fams.add(
                format!("{core}_connz_{f}"),
                f,
                Kind::Counter,
                &idl,
                sum(get),
            );
        }
    }

    // /routez and /subsz (the statistics alone, as /subsz answers without `subs`).
    generic(
        &mut fams,
        core,
        "routez",
        &serde_json::to_value(super::routez_data(mon, false, false)).unwrap_or_default(),
        id,
    );
    if let Ok(subsz) = super::subsz_data(mon, false, 0, 0, "", "") {
        generic(
            &mut fams,
            core,
            "subsz",
            &serde_json::to_value(&subsz.stats).unwrap_or_default(),
            id,
        );
    }

    // /healthz: this server is healthy whenever it answers.
    let health = nats_common::monitor::Healthz::ok();
    let ok = health.status == "ok";
    fams.add(
        format!("{core}_healthz_status"),
        "status",
        Kind::Gauge,
        &idl,
        if ok { 0.0 } else { 1.0 },
    );
    fams.add(
        format!("{core}_healthz_status_value"),
        "status",
        Kind::Gauge,
        &[("server_id", id), ("value", &health.status)],
        if ok { 1.0 } else { 0.0 },
    );

    // /accstatz?unused=1, read by JSON name as the exporter decodes it.
    let statz = serde_json::to_value(super::account_statz(s, &[], true)).unwrap_or_default();
    if let Some(list) = statz.get("account_statz").and_then(Value::as_array) {
        for acc in list {
            let name = text(acc, "acc");
            let labels = [
                ("server_id", id),
                ("account", name),
                ("account_id", name),
                ("account_name", text(acc, "name")),
            ];
            let series: [(&str, &[&str]); 9] = [
                ("current_connections", &["conns"]),
                ("total_connections", &["total_conns"]),
                ("subscriptions", &["num_subscriptions"]),
                ("leaf_nodes", &["leafnodes"]),
                ("sent_messages", &["sent", "msgs"]),
                ("sent_bytes", &["sent", "bytes"]),
                ("received_messages", &["received", "msgs"]),
                ("received_bytes", &["received", "bytes"]),
                ("slow_consumers", &["slow_consumers"]),
            ];
            for (f, path) in series {
                fams.add(
                    format!("{core}_accstatz_{f}"),
                    f,
                    Kind::Gauge,
                    &labels,
                    num(acc, path),
                );
            }
        }
    }

    // /leafz (asked without `subs`, as the exporter asks): the count, and per leaf node
    // connection `info` and its figures, labelled as the exporter labels them (2.9 has no
    // leaf `name`, so that label is empty; `account_id` repeats the account).
    let leafz = serde_json::to_value(super::leafz_data(s)).unwrap_or_default();
    for l in leafz
        .get("leafs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let port = num(l, &["port"]).to_string();
        let labels = [
            ("server_id", id),
            ("account", text(l, "account")),
            ("account_id", text(l, "account")),
            ("ip", text(l, "ip")),
            ("port", port.as_str()),
            ("name", text(l, "name")),
        ];
        fams.add(
            format!("{core}_leafz_info"),
            "info",
            Kind::Gauge,
            &labels,
            1.0,
        );
        let rtt = go_duration_secs(text(l, "rtt"));
        fams.add(
            format!("{core}_leafz_conn_rtt"),
            "rtt",
            Kind::Gauge,
            &labels,
            rtt,
        );
        for (f, key) in [
            ("in_msgs", "in_msgs"),
            ("out_msgs", "out_msgs"),
            ("in_bytes", "in_bytes"),
            ("out_bytes", "out_bytes"),
            ("subscriptions_total", "subscriptions"),
        ] {
            fams.add(
                format!("{core}_leafz_conn_{f}"),
                f,
                Kind::Gauge,
                &labels,
                num(l, &[key]),
            );
        }
    }
    fams.add(
        format!("{core}_leafz_conn_nodes_total"),
        "nodes_total",
        Kind::Gauge,
        &idl,
        num(&leafz, &["leafnodes"]),
    );

    // /gatewayz: per gateway connection, outbound and inbound, as the exporter's gatewayz
    // collector (all gauges; `rtt` in seconds).
    let gwz = serde_json::to_value(super::gatewayz_data(s)).unwrap_or_default();
    let local = text(&gwz, "name").to_string();
    let mut gw_links: Vec<(&str, &str, &Value)> = Vec::new();
    if let Some(m) = gwz.get("outbound_gateways").and_then(Value::as_object) {
        gw_links.extend(m.iter().map(|(n, g)| ("outbound_gateway", n.as_str(), g)));
    }
    if let Some(m) = gwz.get("inbound_gateways").and_then(Value::as_object) {
        for (n, list) in m {
            for g in list.as_array().into_iter().flatten() {
                gw_links.push(("inbound_gateway", n.as_str(), g));
            }
        }
    }
    for (kind, remote, g) in gw_links {
        let conn = g.get("connection").cloned().unwrap_or_default();
        let base = format!("{core}_gatewayz_{kind}");
        let (start, last) = (
            go_time_string(text(&conn, "start")),
            go_time_string(text(&conn, "last_activity")),
        );
        fams.add(
            format!("{base}_info"),
            "info",
            Kind::Gauge,
            &[
                ("gateway_name", local.as_str()),
                ("remote_gateway_name", remote),
                ("server_id", id),
                ("start", start.as_str()),
                ("last_activity", last.as_str()),
                ("uptime", text(&conn, "uptime")),
                ("idle", text(&conn, "idle")),
            ],
            0.0,
        );
        let configured = g.get("configured").and_then(Value::as_bool) == Some(true);
        fams.add(
            format!("{base}_configured"),
            "configured",
            Kind::Gauge,
            &[
                ("gateway_name", local.as_str()),
                ("remote_gateway_name", remote),
                ("server_id", id),
            ],
            if configured { 1.0 } else { 0.0 },
        );
        let cid = num(&conn, &["cid"]).to_string();
        let labels = [
            ("gateway_name", local.as_str()),
            ("cid", cid.as_str()),
            ("remote_gateway_name", remote),
            ("server_id", id),
        ];
        let rtt = go_duration_secs(text(&conn, "rtt"));
        fams.add(format!("{base}_conn_rtt"), "rtt", Kind::Gauge, &labels, rtt);
        for (f, key) in [
            ("pending_bytes", "pending_bytes"),
            ("in_msgs", "in_msgs"),
            ("out_msgs", "out_msgs"),
            ("in_bytes", "in_bytes"),
            ("out_bytes", "out_bytes"),
            ("subscriptions", "subscriptions"),
        ] {
            fams.add(
                format!("{base}_conn_{f}"),
                f,
                Kind::Gauge,
                &labels,
                num(&conn, &[key]),
            );
        }
    }

    // /jsz: the server-level series (`disabled` is 1 without JetStream).
    let jsz = serde_json::to_value(super::jsz_data(s)).unwrap_or_default();
    let labels = [
        ("server_id", id),
        ("server_name", server_name.as_str()),
        ("cluster", ""),
        ("domain", ""),
        ("meta_leader", ""),
        ("is_meta_leader", "true"),
    ];
    let disabled = jsz
        .get("disabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let js_series: [(&str, &str, f64); 7] = [
        (
            "jetstream_disabled",
            "JetStream disabled or not",
            if disabled { 1.0 } else { 0.0 },
        ),
        (
            "max_memory",
            "JetStream Max Memory",
            num(&jsz, &["config", "max_memory"]),
        ),
        (
            "max_storage",
            "JetStream Max Storage",
            num(&jsz, &["config", "max_storage"]),
        ),
        (
            "total_streams",
            "Total number of streams in JetStream",
            num(&jsz, &["streams"]),
        ),
        (
            "total_consumers",
            "Total number of consumers in JetStream",
            num(&jsz, &["consumers"]),
        ),
        (
            "total_messages",
            "Total number of stored messages in JetStream",
            num(&jsz, &["messages"]),
        ),
        (
            "total_message_bytes",
            "Total number of bytes stored in JetStream",
            num(&jsz, &["bytes"]),
        ),
    ];
    for (f, help, v) in js_series {
        fams.add(format!("{js}_server_{f}"), help, Kind::Gauge, &labels, v);
    }

    fams.into_vec()
}

/// An RFC 3339 time as Go's `time.Time.String()` prints it after parsing it (the exporter
/// puts that text in labels): `2026-12-02 10:50:32.123456 +0000 UTC`.
fn go_time_string(t: &str) -> String {
    let Some((date, rest)) = t.split_once('T') else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let (clock, zone) = match rest.find(['Z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => (rest, "Z"),
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let zone = if zone == "Z" {
        "+0000 UTC".to_string()
    } else {
        // A fixed offset without a zone name: Go prints the offset twice.
        let off = zone.replace(':', "");
        format!("{off} {off}")
    };
    format!("{date} {hms}{frac} {zone}")
}

/// A Go duration string (`1.234ms`, `2m3.5s`, `150µs`) in seconds; 0 when it does not parse,
/// as the exporter's `time.ParseDuration` error is ignored.
fn go_duration_secs(d: &str) -> f64 {
    let mut total = 0.0;
    let mut rest = d;
    if rest.is_empty() {
        return 0.0;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let Ok(v) = rest[..n].parse::<f64>() else {
            return 0.0;
        };
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return 0.0,
        };
        total += v * scale;
        rest = &rest[u..];
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// The classic text format, as the exporter (Go's client library) writes it.
pub fn encode_text(fams: &[Family]) -> Result<String, String> {
    use prometheus::proto;
    use prometheus::Encoder;
    let mut out_fams = Vec::with_capacity(fams.len());
    for f in fams.iter().filter(|f| !f.samples.is_empty()) {
        let mut mf = proto::MetricFamily::default();
        mf.set_name(f.name.clone());
        mf.set_help(f.help.clone());
        mf.set_field_type(match f.kind {
            Kind::Gauge => proto::MetricType::GAUGE,
            Kind::Counter => proto::MetricType::COUNTER,
        });
        let mut metrics = Vec::with_capacity(f.samples.len());
        for s in &f.samples {
            let mut m = proto::Metric::default();
            let labels: Vec<proto::LabelPair> = s
                .labels
                .iter()
                .map(|(k, v)| {
                    let mut lp = proto::LabelPair::default();
                    lp.set_name(k.clone());
                    lp.set_value(v.clone());
                    lp
                })
                .collect();
            m.set_label(labels);
            match f.kind {
                Kind::Gauge => {
                    let mut g = proto::Gauge::default();
                    g.set_value(s.value);
                    m.set_gauge(g);
                }
                Kind::Counter => {
                    let mut c = proto::Counter::default();
                    c.set_value(s.value);
                    m.set_counter(c);
                }
            }
            metrics.push(m);
        }
        mf.set_metric(metrics);
        out_fams.push(mf);
    }
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&out_fams, &mut buf)
        .map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|e| e.to_string())
}

/// The families as one scrape's OpenMetrics collector.
#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl prometheus_client::collector::Collector for Snapshot {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        for f in self.0.iter().filter(|f| !f.samples.is_empty()) {
            // Counters as `unknown`: their samples keep the exporter's names (see the module
            // documentation).
            let ty = match f.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Unknown,
            };
            let mut family = encoder.encode_descriptor(&f.name, &f.help, None, ty)?;
            for s in &f.samples {
                let metric = family.encode_family(&s.labels)?;
                ConstGauge::new(s.value).encode(metric)?;
            }
        }
        Ok(())
    }
}

/// OpenMetrics 1.0 text.
pub fn encode_openmetrics(fams: Vec<Family>) -> Result<String, String> {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Snapshot(fams)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Whether `Accept` prefers OpenMetrics to the classic text format (by quality; on a tie the
/// more specific OpenMetrics range wins, as in HTTP content negotiation).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let (mut om, mut other) = (0f64, 0f64);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text" => om = om.max(q),
            "text/plain" | "text/*" | "*/*" => other = other.max(q),
            _ => {}
        }
    }
    om > 0.0 && om >= other
}

/// The body and content type of one scrape.
pub fn render(
    mon: &Monitor,
    prefix: &str,
    openmetrics: bool,
) -> Result<(&'static str, String), String> {
    let fams = collect(mon, prefix);
    if openmetrics {
        Ok((OPENMETRICS_CONTENT_TYPE, encode_openmetrics(fams)?))
    } else {
        Ok((TEXT_CONTENT_TYPE, encode_text(&fams)?))
    }
}

pub async fn handle(State(mon): Mon, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let params = Params::parse(q.as_deref());
    let prefix = params.get("prefix").to_string();
    if !prefix.is_empty() && !valid_prefix(&prefix) {
        return bad_request(format!(
            "invalid prefix {:?}: must match [a-zA-Z_][a-zA-Z0-9_]*",
            prefix
        ));
    }
    mon.count("/metrics");
    let openmetrics = wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    // Built off the runtime's workers: with many connections the /connz page takes a while.
    let job = tokio::task::spawn_blocking(move || render(&mon, &prefix, openmetrics)).await;
    match job {
        Ok(Ok((ctype, body))) => {
            let mut resp = body.into_response();
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            resp
        }
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("error encoding metrics: {e}\n"),
        )
            .into_response(),
        // The runtime is shutting down.
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "server is shutting down\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> BTreeMap<String, Field> {
        let mut out = BTreeMap::new();
        flatten(v.as_object().unwrap(), &mut Vec::new(), &mut out);
        out
    }

    #[test]
    fn flattens_like_the_exporter() {
        let f = fields(json!({
            "server_id": "NABC",
            "version": "2.9.10",
            "go": "rust-1",
            "now": "2026-12-02T09:00:00.5Z",
            "start": "2026-12-02T09:00:00.123456789Z",
            "in_msgs": 5,
            "cpu": 1.5,
            "auth_required": true,
            "connect_urls": ["a"],
            "cluster": {"name": "c1", "cluster_port": 6222, "urls": [], "tls_timeout": 2, "pool": 3},
            "leaf": {"port": 7422},
            "gateway": {"name": "g", "port": 7222},
            "http_req_stats": {"/": 2, "/varz": 3},
        }));
        assert_eq!(f["in_msgs"], Field::Number(5.0));
        assert_eq!(f["cpu"], Field::Number(1.5));
        assert_eq!(f["server_id"], Field::Label("NABC".into()));
        assert_eq!(f["version"], Field::Label("2.9.10".into()));
        assert_eq!(f["start"], Field::Number(1_796_202_000_123.0));
        assert_eq!(f["cluster_name"], Field::Label("c1".into()));
        assert_eq!(f["cluster_pool"], Field::Number(3.0));
        assert_eq!(f["gateway_name"], Field::Label("g".into()));
        assert_eq!(f["http_req_stats"], Field::Number(2.0));
        assert_eq!(f["http_req_stats_varz"], Field::Number(3.0));
        for gone in [
            "go",
            "now",
            "auth_required",
            "connect_urls",
            "cluster_cluster_port",
            "cluster_tls_timeout",
            "cluster_urls",
            "leaf_port",
            "gateway_port",
        ] {
            assert!(!f.contains_key(gone), "{gone} should be left out");
        }
    }

    #[test]
    fn names_collapse_like_the_exporter() {
        assert_eq!(fq_name(&["http_req_stats", "/"]), "http_req_stats");
        assert_eq!(
            fq_name(&["http_req_stats", "/connz"]),
            "http_req_stats_connz"
        );
        assert_eq!(fq_name(&["a__b", "c"]), "a_b_c");
    }

    #[test]
    fn accept_negotiation() {
        // Prometheus 2.x.
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0.2, text/plain"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
        assert!(!wants_openmetrics(Some("garbage;;;q=x,,")));
    }

    fn sample_families() -> Vec<Family> {
        let mut fams = Families::default();
        fams.add(
            "gnatsd_varz_in_msgs".into(),
            "in_msgs",
            Kind::Gauge,
            &[("server_id", "NABC")],
            1048576.0,
        );
        fams.add(
            "gnatsd_connz_in_msgs".into(),
            "in_msgs",
            Kind::Counter,
            &[("server_id", "NABC")],
            7.0,
        );
        fams.add(
            "gnatsd_varz_version".into(),
            "version",
            Kind::Gauge,
            &[("value", "2.9.10"), ("server_id", "NABC")],
            1.0,
        );
        fams.add("bad name".into(), "x", Kind::Gauge, &[], 1.0);
        fams.into_vec()
    }

    #[test]
    fn text_format_keeps_names_and_types() {
        let out = encode_text(&sample_families()).unwrap();
        assert!(
            out.contains("# TYPE gnatsd_connz_in_msgs counter\n"),
            "{out}"
        );
        assert!(
            out.contains("gnatsd_connz_in_msgs{server_id=\"NABC\"} 7\n"),
            "{out}"
        );
        assert!(
            out.contains("# HELP gnatsd_varz_in_msgs in_msgs\n"),
            "{out}"
        );
        assert!(out.contains("# TYPE gnatsd_varz_in_msgs gauge\n"), "{out}");
        assert!(
            out.contains("gnatsd_varz_version{server_id=\"NABC\",value=\"2.9.10\"} 1\n"),
            "{out}"
        );
        assert!(!out.contains("bad name"), "{out}");
    }

    #[test]
    fn openmetrics_keeps_names() {
        let out = encode_openmetrics(sample_families()).unwrap();
        assert!(
            out.contains("# TYPE gnatsd_connz_in_msgs unknown\n"),
            "{out}"
        );
        assert!(
            out.contains("gnatsd_connz_in_msgs{server_id=\"NABC\"} 7"),
            "{out}"
        );
        assert!(!out.contains("gnatsd_connz_in_msgs_total"), "{out}");
        assert!(out.contains("# TYPE gnatsd_varz_in_msgs gauge\n"), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
    }

    #[test]
    fn prefixes() {
        assert!(valid_prefix("nats"));
        assert!(valid_prefix("_x9"));
        assert!(!valid_prefix("9x"));
        assert!(!valid_prefix("a-b"));
        assert!(!valid_prefix("a:b"));
    }

    #[test]
    fn go_times_and_durations_as_the_exporter_reads_them() {
        assert_eq!(
            go_time_string("2026-12-02T10:50:32.123450Z"),
            "2026-12-02 10:50:32.12345 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2026-12-02T10:50:32Z"),
            "2026-12-02 10:50:32 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2026-12-02T10:50:32.5+01:00"),
            "2026-12-02 10:50:32.5 +0100 +0100"
        );
        assert_eq!(go_duration_secs("1.5ms"), 0.0015);
        assert_eq!(go_duration_secs("2m3s"), 123.0);
        assert!((go_duration_secs("150µs") - 0.00015).abs() < 1e-12);
        assert_eq!(go_duration_secs(""), 0.0);
        assert_eq!(go_duration_secs("bogus"), 0.0);
    }
}
