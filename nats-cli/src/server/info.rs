//! `nats server info [ID|NAME]`: one server's `VARZ`, as sections of aligned lines.

use super::{go_json, Filter, NO_RESULTS};
use crate::output::{commas, go_duration, iec_bytes, log, print};
use crate::{conn, Global};
use anyhow::{anyhow, Result};
use clap::Args;
use nats_common::monitor::parse_rfc3339;
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Server ID or Name to inspect
    #[arg(value_name = "SERVER")]
    pub id: Option<String>,
}

/// The `/varz` fields shown (the server's `Varz`).
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct Varz {
    server_id: String,
    server_name: String,
    version: String,
    git_commit: String,
    go: String,
    host: String,
    port: i64,
    ip: String,
    auth_required: bool,
    tls_required: bool,
    connect_urls: Vec<String>,
    ws_connect_urls: Vec<String>,
    max_connections: i64,
    max_subscriptions: i64,
    max_payload: i64,
    tls_timeout: f64,
    write_deadline: i64,
    start: String,
    uptime: String,
    mem: i64,
    cores: i64,
    cpu: f64,
    connections: i64,
    subscriptions: u32,
    in_msgs: i64,
    out_msgs: i64,
    in_bytes: i64,
    out_bytes: i64,
    slow_consumers: i64,
    tags: Vec<String>,
    cluster: ClusterVarz,
    gateway: GatewayVarz,
    jetstream: JetStreamVarz,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct ClusterVarz {
    name: String,
    addr: String,
    cluster_port: i64,
    urls: Vec<String>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct GatewayVarz {
    name: String,
    host: String,
    port: i64,
    gateways: Vec<RemoteGateway>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct RemoteGateway {
    name: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct JetStreamVarz {
    config: Option<JsConfig>,
    stats: JsStats,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct JsConfig {
    max_memory: i64,
    max_storage: i64,
    store_dir: String,
    domain: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct JsStats {
    memory: u64,
    storage: u64,
    accounts: i64,
    api: JsApi,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct JsApi {
    total: i64,
    errors: i64,
}

/// A 56-character upper-case argument is a server id; anything else is a name filter.
fn target(id: &str) -> (String, Vec<u8>) {
    if id.len() == 56 && id.to_uppercase() == id {
        (format!("$SYS.REQ.SERVER.{id}.VARZ"), b"{}".to_vec())
    } else {
        let filter = Filter {
            name: id.to_string(),
            ..Filter::default()
        };
        let body = go_json(&filter).unwrap_or_else(|_| b"{}".to_vec());
        ("$SYS.REQ.SERVER.PING.VARZ".to_string(), body)
    }
}

pub async fn run(a: InfoArgs, g: &Global) -> Result<()> {
    let id = a.id.unwrap_or_default();
    let (subject, body) = target(&id);
    let client = conn::connect(g).await?;
    if g.trace {
        log(format!(">>> {subject}: {}", String::from_utf8_lossy(&body)));
    }
    let timeout = client.options().request_timeout;
    let reply = client.request_full(&subject, None, &body, timeout).await;
    client.close().await;
    let reply = reply.map_err(|_| anyhow!(NO_RESULTS))?;
    if g.trace {
        log(format!("<<< {:?}", String::from_utf8_lossy(&reply.payload)));
    }
    let resp: serde_json::Map<String, Value> = serde_json::from_slice(&reply.payload)?;
    if let Some(e) = resp.get("error") {
        return Err(anyhow!(
            "invalid response received: json.RawMessage{{{}}}",
            go_bytes(&e.to_string())
        ));
    }
    let data = resp.get("data").ok_or_else(|| {
        let mut keys: Vec<_> = resp.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        let fields: Vec<String> = keys
            .iter()
            .map(|(k, v)| format!("{k:?}:json.RawMessage{{{}}}", go_bytes(&v.to_string())))
            .collect();
        anyhow!(
            "no data received in response: map[string]json.RawMessage{{{}}}",
            fields.join(", ")
        )
    })?;
    let varz: Varz = serde_json::from_value(data.clone())?;
    print(render(&varz, bold_enabled()));
    Ok(())
}

/// Go's `%#v` of a byte slice: `0x7b, 0x22, …`.
fn go_bytes(s: &str) -> String {
    s.bytes()
        .map(|b| format!("{b:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// fatih/color's rule: colours only on a terminal, never with `NO_COLOR` or `TERM=dumb`.
fn bold_enabled() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(1) == 1 };
    tty && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

fn render(v: &Varz, color: bool) -> String {
    let bold = |s: &str| {
        if color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut o = String::new();
    if v.server_id == v.server_name {
        let _ = writeln!(o, "Server information for {}\n", bold(&v.server_id));
    } else {
        let _ = writeln!(
            o,
            "Server information for {} ({})\n",
            bold(&v.server_name),
            bold(&v.server_id)
        );
    }
    let start = parse_rfc3339(&v.start).map_or_else(|| v.start.clone(), |t| t.go_string());
    let _ = writeln!(o, "{}\n", bold("Process Details:"));
    let _ = writeln!(o, "         Version: {}", v.version);
    let _ = writeln!(o, "      Git Commit: {}", v.git_commit);
    let _ = writeln!(o, "      Go Version: {}", v.go);
    let _ = writeln!(o, "      Start Time: {start}");
    let _ = writeln!(o, "          Uptime: {}", v.uptime);
    let _ = writeln!(o);
    let _ = writeln!(o, "{}\n", bold("Connection Details:"));
    let _ = writeln!(o, "   Auth Required: {}", v.auth_required);
    let _ = writeln!(o, "    TLS Required: {}", v.tls_required);
    if v.ip.is_empty() {
        let _ = writeln!(o, "            Host: {}:{}", v.host, v.port);
    } else {
        let _ = writeln!(o, "            Host: {}:{} ({})", v.host, v.port, v.ip);
    }
    let sep = "\n                  ";
    let _ = writeln!(o, "     Client URLs: {}", v.connect_urls.join(sep));
    if !v.ws_connect_urls.is_empty() {
        let _ = writeln!(o, "  WebSocket URLs: {}", v.ws_connect_urls.join(sep));
    }
    let _ = writeln!(o);
    if let Some(c) = v
        .jetstream
        .config
        .as_ref()
        .filter(|c| !c.store_dir.is_empty())
    {
        let s = &v.jetstream.stats;
        let _ = writeln!(o, "{}\n", bold("JetStream:"));
        if !v.tags.is_empty() {
            let _ = writeln!(o, "         Server Tags: {}", v.tags.join(", "));
        }
        let _ = writeln!(o, "              Domain: {}", c.domain);
        let _ = writeln!(o, "   Storage Directory: {}", c.store_dir);
        let _ = writeln!(
            o,
            "          Max Memory: {}",
            iec_bytes(c.max_memory as u64)
        );
        let _ = writeln!(
            o,
            "            Max File: {}",
            iec_bytes(c.max_storage as u64)
        );
        let _ = writeln!(o, "      Active Acconts: {}", commas(s.accounts));
        let _ = writeln!(o, "       Memory In Use: {}", iec_bytes(s.memory));
        let _ = writeln!(o, "         File In Use: {}", iec_bytes(s.storage));
        let _ = writeln!(o, "        API Requests: {}", commas(s.api.total));
        let _ = writeln!(o, "          API Errors: {}", commas(s.api.errors));
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "{}\n", bold("Limits:"));
    let _ = writeln!(o, "        Max Conn: {}", v.max_connections);
    let _ = writeln!(o, "        Max Subs: {}", v.max_subscriptions);
    let _ = writeln!(
        o,
        "     Max Payload: {}",
        iec_bytes(v.max_payload.max(0) as u64)
    );
    let tls = Duration::from_secs(v.tls_timeout.max(0.0) as u64);
    let _ = writeln!(o, "     TLS Timeout: {}", go_duration(tls));
    let wd_ms = (v.write_deadline.max(0) as u128 + 500_000) / 1_000_000;
    let _ = writeln!(
        o,
        "  Write Deadline: {}",
        go_duration(Duration::from_millis(wd_ms as u64))
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "{}\n", bold("Statistics:"));
    let _ = writeln!(o, "       CPU Cores: {} {:.2}%", v.cores, v.cpu);
    let _ = writeln!(o, "          Memory: {}", iec_bytes(v.mem.max(0) as u64));
    let _ = writeln!(o, "     Connections: {}", commas(v.connections));
    let _ = writeln!(
        o,
        "   Subscriptions: {}",
        commas(i64::from(v.subscriptions))
    );
    let _ = writeln!(
        o,
        "            Msgs: {} in {} out",
        commas(v.in_msgs),
        commas(v.out_msgs)
    );
    let _ = writeln!(
        o,
        "           Bytes: {} in {} out",
        iec_bytes(v.in_bytes.max(0) as u64),
        iec_bytes(v.out_bytes.max(0) as u64)
    );
    let _ = writeln!(o, "  Slow Consumers: {}", commas(v.slow_consumers));
    if !v.cluster.urls.is_empty() {
        let c = &v.cluster;
        let _ = writeln!(o);
        let _ = writeln!(o, "{}\n", bold("Cluster:"));
        let _ = writeln!(o, "            Name: {}", c.name);
        let _ = writeln!(o, "            Host: {}:{}", c.addr, c.cluster_port);
        let _ = writeln!(o, "            URLs: {}", c.urls.join(sep));
    }
    if !v.gateway.gateways.is_empty() {
        let gw = &v.gateway;
        let mut names: Vec<&str> = gw.gateways.iter().map(|g| g.name.as_str()).collect();
        names.sort_unstable();
        let _ = writeln!(o);
        let _ = writeln!(o, "{}\n", bold("Super Cluster:"));
        let _ = writeln!(o, "            Name: {}", gw.name);
        let _ = writeln!(o, "            Host: {}:{}", gw.host, gw.port);
        let _ = writeln!(o, "        Clusters: {}", names.join(sep));
    }
    let _ = writeln!(o);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_subject_by_argument() {
        let id = "NDGDLVFBFRGXQH5HJP22MNU5FD3LWSM6BM3FIJUN7AGTPVK6UKM37YWA";
        assert_eq!(target(id).0, format!("$SYS.REQ.SERVER.{id}.VARZ"));
        assert_eq!(target(id).1, b"{}");
        let (s, b) = target("n1");
        assert_eq!(s, "$SYS.REQ.SERVER.PING.VARZ");
        assert_eq!(b, br#"{"server_name":"n1"}"#);
        assert_eq!(target("").1, b"{}");
        assert_eq!(target(&id.to_lowercase()).0, "$SYS.REQ.SERVER.PING.VARZ");
    }
}
