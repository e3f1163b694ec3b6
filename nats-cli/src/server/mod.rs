//! `nats server`: questions to the system account (`$SYS.REQ.SERVER.…`), as the reference
//! CLI of the NATS 2.9 era asks them.

mod info;
mod list;
mod ping;
mod request;

use crate::output::log;
use crate::Global;
use anyhow::{anyhow, Result};
use clap::Subcommand;
use nats_common::client::Client;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Show information about a single server
    #[command(visible_alias = "i")]
    Info(info::InfoArgs),
    /// List known servers
    #[command(visible_alias = "ls")]
    List(list::ListArgs),
    /// Ping all servers
    Ping(ping::PingArgs),
    /// Request monitoring data from a specific server
    #[command(visible_alias = "req")]
    Request(Box<request::RequestArgs>),
}

pub async fn run(cmd: Cmd, g: &Global) -> Result<()> {
    match cmd {
        Cmd::Info(a) => info::run(a, g).await,
        Cmd::List(a) => list::run(a, g).await,
        Cmd::Ping(a) => ping::run(a, g).await,
        Cmd::Request(a) => request::run(*a, g).await,
    }
}

/// The server's `EventFilterOptions`: which servers answer.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Filter {
    #[serde(rename = "server_name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

/// Go's encoder escapes `<`, `>` and `&`; they only occur inside strings.
fn go_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let s = serde_json::to_string(v)?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    Ok(s.into_bytes())
}

/// The parts of a `$SYS.REQ.SERVER.PING` reply (the server's `ServerStatsMsg`) shown here.
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct StatsMsg {
    server: StatsServer,
    statsz: Stats,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct StatsServer {
    name: String,
    host: String,
    id: String,
    cluster: String,
    domain: String,
    ver: String,
    jetstream: bool,
    time: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct Stats {
    start: String,
    mem: i64,
    cores: i64,
    cpu: f64,
    connections: i64,
    subscriptions: u32,
    slow_consumers: i64,
    routes: Option<Vec<serde_json::Value>>,
    gateways: Option<Vec<GatewayStat>>,
    active_servers: u32,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
struct GatewayStat {
    inbound_connections: i64,
}

impl StatsMsg {
    /// Decodes a reply, or ends the process as the reference does for a reply it can't read.
    fn decode_or_exit(data: &[u8]) -> StatsMsg {
        match serde_json::from_slice(data) {
            Ok(m) => m,
            Err(e) => {
                log(format!("Could not decode response: {e}"));
                std::process::exit(1);
            }
        }
    }

    fn routes(&self) -> usize {
        self.statsz.routes.as_ref().map_or(0, Vec::len)
    }

    fn gateways(&self) -> &[GatewayStat] {
        self.statsz.gateways.as_deref().unwrap_or(&[])
    }
}

/// The request every server answers with its statistics.
const PING_SUBJECT: &str = "$SYS.REQ.SERVER.PING";

/// What the reference says when nothing came back.
const NO_RESULTS: &str =
    "no results received, ensure the account used has system privileges and appropriate permissions";

/// An error shown as a command-line mistake (`nats: error: …, try --help`).
fn usage(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{msg}, try --help")
}

/// A flag value checked against its allowed values, with the reference's message.
pub(crate) fn one_of(value: &str, allowed: &[&str]) -> Result<String> {
    if allowed.contains(&value) {
        return Ok(value.to_string());
    }
    Err(usage(format_args!(
        "enum value must be one of {}, got '{value}'",
        allowed.join(",")
    )))
}

/// Go's `strconv.ParseUint(s, 0, bits)` as the reference parses numeric arguments: decimal,
/// `0x`/`0o`/`0b` prefixes, a leading `0` for octal, `_` between digits only with a prefix.
fn parse_go_uint(s: &str, bits: u32) -> Result<u64> {
    let err = |why: &str| usage(format_args!("strconv.ParseUint: parsing {s:?}: {why}"));
    let lower = s.to_ascii_lowercase();
    let (digits, radix, prefixed) = if let Some(r) = lower.strip_prefix("0x") {
        (r.to_string(), 16, true)
    } else if let Some(r) = lower.strip_prefix("0o") {
        (r.to_string(), 8, true)
    } else if let Some(r) = lower.strip_prefix("0b") {
        (r.to_string(), 2, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (lower[1..].to_string(), 8, true)
    } else {
        (lower.clone(), 10, false)
    };
    let digits = if prefixed {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(err("invalid syntax"));
    }
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match u64::from_str_radix(&digits, radix) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(err("value out of range")),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, for integer flags.
fn parse_go_int(s: &str) -> Result<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let err = |why: &str| usage(format_args!("strconv.ParseInt: parsing {s:?}: {why}"));
    let v = match parse_go_uint(body, 64) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("out of range") => return Err(err("value out of range")),
        Err(_) => return Err(err("invalid syntax")),
    };
    let limit = if neg {
        i64::MIN.unsigned_abs()
    } else {
        i64::MAX as u64
    };
    if v > limit {
        return Err(err("value out of range"));
    }
    Ok(if neg {
        (v as i128).wrapping_neg() as i64
    } else {
        v as i64
    })
}

/// The reference's `doReqAsync`: publishes `body` to `subject` with a fresh inbox and hands
/// each reply body to `on_reply`. With `wait_for` 0 it stops 300ms after the last reply
/// (the first may take the whole timeout); otherwise after that many replies; always by
/// the timeout. A no-responders status ends it with the reference's error.
async fn collect(
    client: &Client,
    g: &Global,
    subject: &str,
    body: &[u8],
    wait_for: u32,
    mut on_reply: impl FnMut(&[u8]),
) -> Result<()> {
    if g.trace {
        log(format!(">>> {subject}: {}", String::from_utf8_lossy(body)));
    }
    let timeout = client.options().request_timeout;
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(&inbox).await?;
    client
        .publish_full(subject, Some(&inbox), None, body)
        .await?;
    let deadline = Instant::now() + timeout;
    let mut idle_until = deadline;
    let mut count = 0u32;
    loop {
        let until = if wait_for == 0 {
            idle_until.min(deadline)
        } else {
            deadline
        };
        let m = match tokio::time::timeout_at(until, sub.next()).await {
            Ok(Some(m)) => m,
            _ => break,
        };
        if g.trace {
            log(format!(
                "<<< ({}B) {}",
                m.payload.len(),
                String::from_utf8_lossy(&m.payload)
            ));
            if let Some(h) = &m.headers {
                log(format!("<<< Header: {}", go_header_map(h)));
            }
        }
        idle_until = Instant::now() + Duration::from_millis(300);
        if m.status() == Some(503) {
            // Every subject asked here is a `$SYS` one.
            return Err(anyhow!(
                "server request failed, ensure the account used has system privileges and appropriate permissions"
            ));
        }
        on_reply(&m.payload);
        count += 1;
        if wait_for > 0 && count == wait_for {
            break;
        }
    }
    if g.trace {
        log(format!("=== Received {count} responses"));
    }
    Ok(())
}

/// A header block as Go prints a `nats.Header` with `%+v`: `map[Key:[value]]`.
fn go_header_map(h: &nats_common::headers::Headers) -> String {
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(code) = h.status {
        keys.push(("Status".into(), vec![code.to_string()]));
        if let Some(d) = &h.description {
            keys.push(("Description".into(), vec![d.clone()]));
        }
    }
    for (k, v) in &h.entries {
        match keys.iter_mut().find(|(kk, _)| kk == k) {
            Some((_, vs)) => vs.push(v.clone()),
            None => keys.push((k.clone(), vec![v.clone()])),
        }
    }
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = keys
        .iter()
        .map(|(k, v)| format!("{k}:[{}]", v.join(" ")))
        .collect();
    format!("map[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_parsing() {
        assert_eq!(parse_go_uint("12", 32).ok(), Some(12));
        assert_eq!(parse_go_uint("0x10", 32).ok(), Some(16));
        assert_eq!(parse_go_uint("010", 32).ok(), Some(8));
        assert_eq!(
            parse_go_uint("abc", 32).map_err(|e| e.to_string()).err(),
            Some("strconv.ParseUint: parsing \"abc\": invalid syntax, try --help".into())
        );
        assert_eq!(
            parse_go_uint("4294967296", 32)
                .map_err(|e| e.to_string())
                .err(),
            Some(
                "strconv.ParseUint: parsing \"4294967296\": value out of range, try --help".into()
            )
        );
        assert_eq!(parse_go_int("-5").ok(), Some(-5));
        assert_eq!(
            parse_go_int("x").map_err(|e| e.to_string()).err(),
            Some("strconv.ParseInt: parsing \"x\": invalid syntax, try --help".into())
        );
        assert_eq!(
            one_of("foo", &["a", "b"]).map_err(|e| e.to_string()).err(),
            Some("enum value must be one of a,b, got 'foo', try --help".into())
        );
    }
}
