//! `nats server list [EXPECT]`: the "Server Overview" table of every answering server and,
//! when they are clustered, the "Cluster Overview".

use super::{collect, one_of, parse_go_uint, StatsMsg, NO_RESULTS, PING_SUBJECT};
use crate::output::{commas, go_duration, humanize_duration, iec_bytes, indent_json, print};
use crate::table::Table;
use crate::{conn, Global};
use anyhow::{anyhow, Result};
use clap::Args;
use nats_common::monitor::parse_rfc3339;
use std::cmp::Ordering;
use std::time::{Duration, Instant};

const SORT_KEYS: &[&str] = &[
    "name", "conns", "conn", "subs", "sub", "routes", "route", "gw", "mem", "cpu", "slow",
    "uptime", "rtt",
];

#[derive(Args, Debug)]
pub struct ListArgs {
    /// How many servers to expect
    pub expect: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
    /// Sort servers by a specific key (name,conns,subs,routes,gws,mem,cpu,slow,uptime,rtt
    #[arg(long, default_value = "rtt")]
    pub sort: String,
    /// Reverse sort servers
    #[arg(short = 'R', long)]
    pub reverse: bool,
    /// Compact server names
    #[arg(long, overrides_with = "no_compact")]
    pub compact: bool,
    #[arg(long = "no-compact", hide = true)]
    pub no_compact: bool,
}

struct Reply {
    raw: Vec<u8>,
    msg: StatsMsg,
    rtt: Duration,
}

#[derive(Default)]
struct Cluster {
    name: String,
    nodes: usize,
    gw_out: usize,
    gw_in: i64,
    conns: i64,
}

pub async fn run(a: ListArgs, g: &Global) -> Result<()> {
    let expect = match &a.expect {
        Some(s) => parse_go_uint(s, 32)? as u32,
        None => 0,
    };
    let sort = one_of(&a.sort, SORT_KEYS)?;
    let client = conn::connect(g).await?;
    let start = Instant::now();
    let mut replies: Vec<Reply> = Vec::new();
    // As in the reference, a failed request only shows as "no results".
    let _ = collect(&client, g, PING_SUBJECT, b"{}", expect, |data| {
        replies.push(Reply {
            raw: data.to_vec(),
            msg: StatsMsg::decode_or_exit(data),
            rtt: start.elapsed(),
        });
    })
    .await;
    client.close().await;
    if replies.is_empty() {
        return Err(anyhow!(NO_RESULTS));
    }
    if a.json {
        let raws: Vec<String> = replies
            .iter()
            .map(|r| String::from_utf8_lossy(&r.raw).into_owned())
            .collect();
        print(format!(
            "{}\n",
            indent_json(&format!("[{}]", raws.join(",")))
        ));
        return Ok(());
    }
    let clusters = clusters(&replies);
    sort_replies(&mut replies, &sort, a.reverse);
    print(overview(&replies, clusters.len(), !a.no_compact));
    if !clusters.is_empty() {
        print(format!("\n{}", cluster_overview(clusters)));
    }
    Ok(())
}

/// Clusters in the order they were first seen.
fn clusters(replies: &[Reply]) -> Vec<Cluster> {
    let mut out: Vec<Cluster> = Vec::new();
    for r in replies {
        let name = &r.msg.server.cluster;
        if name.is_empty() {
            continue;
        }
        let i = match out.iter().position(|c| &c.name == name) {
            Some(i) => i,
            None => {
                out.push(Cluster {
                    name: name.clone(),
                    ..Cluster::default()
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.conns += r.msg.statsz.connections;
        c.nodes += 1;
        c.gw_out += r.msg.gateways().len();
        c.gw_in += r
            .msg
            .gateways()
            .iter()
            .map(|g| g.inbound_connections)
            .sum::<i64>();
    }
    out
}

fn start_nanos(m: &StatsMsg) -> i128 {
    parse_rfc3339(&m.statsz.start).map_or(0, |t| t.unix_nanos)
}

/// The reference sorts descending by default (`--reverse` flips it), except by name
/// (always ascending) and by rtt and uptime (shortest first).
fn sort_replies(replies: &mut [Reply], key: &str, reverse: bool) {
    replies.sort_by(|a, b| {
        let (x, y) = (&a.msg.statsz, &b.msg.statsz);
        let desc = match key {
            "name" => return a.msg.server.name.cmp(&b.msg.server.name),
            "conns" | "conn" => y.connections.cmp(&x.connections),
            "subs" | "sub" => y.subscriptions.cmp(&x.subscriptions),
            "routes" | "route" => b.msg.routes().cmp(&a.msg.routes()),
            "gw" => b.msg.gateways().len().cmp(&a.msg.gateways().len()),
            "mem" => y.mem.cmp(&x.mem),
            "cpu" => y.cpu.partial_cmp(&x.cpu).unwrap_or(Ordering::Equal),
            "slow" => y.slow_consumers.cmp(&x.slow_consumers),
            "uptime" => start_nanos(&b.msg).cmp(&start_nanos(&a.msg)),
            _ => b.rtt.cmp(&a.rtt),
        };
        let asc_by_default = matches!(key, "uptime" | "rtt");
        if reverse != asc_by_default {
            desc.reverse()
        } else {
            desc
        }
    });
}

/// natscli's `compactStrings`: drops the dot-separated suffix all names share (never the
/// first component).
fn compact_strings(names: &[String]) -> Vec<String> {
    let parts: Vec<Vec<&str>> = names.iter().map(|n| n.split('.').collect()).collect();
    let shortest = parts.iter().map(Vec::len).min().unwrap_or(0);
    let mut remove = String::new();
    for i in (1..shortest).rev() {
        let s = parts[0][i];
        if parts.iter().all(|p| p[i] == s) {
            remove = format!(".{s}{remove}");
        } else {
            break;
        }
    }
    names
        .iter()
        .map(|n| n.strip_suffix(&remove).unwrap_or(n).to_string())
        .collect()
}

fn uptime(m: &StatsMsg) -> String {
    let nanos = match (
        parse_rfc3339(&m.server.time),
        parse_rfc3339(&m.statsz.start),
    ) {
        (Some(now), Some(start)) => (now.unix_nanos - start.unix_nanos).max(0),
        _ => 0,
    };
    humanize_duration(Duration::from_nanos(nanos as u64))
}

fn overview(replies: &[Reply], clusters: usize, compact: bool) -> String {
    let mut t = Table::new("Server Overview");
    t.headers(&[
        "Name", "Cluster", "IP", "Version", "JS", "Conns", "Subs", "Routes", "GWs", "Mem", "CPU",
        "Slow", "Uptime", "RTT",
    ]);
    let names: Vec<String> = replies.iter().map(|r| r.msg.server.name.clone()).collect();
    let names = if compact {
        compact_strings(&names)
    } else {
        names
    };
    let (mut conns, mut subs, mut mem, mut slow, mut js) = (0i64, 0u32, 0i64, 0i64, 0usize);
    for (r, name) in replies.iter().zip(names) {
        let (s, st) = (&r.msg.server, &r.msg.statsz);
        conns += st.connections;
        subs = subs.wrapping_add(st.subscriptions);
        mem += st.mem;
        slow += st.slow_consumers;
        js += usize::from(s.jetstream);
        let cluster = if s.domain.is_empty() {
            s.cluster.clone()
        } else {
            format!("{} domain {}", s.cluster, s.domain)
        };
        let rtt_ms = (r.rtt.as_nanos() + 500_000) / 1_000_000;
        t.row(vec![
            name,
            cluster,
            s.host.clone(),
            s.ver.clone(),
            if s.jetstream { "yes" } else { "no" }.to_string(),
            commas(st.connections),
            commas(i64::from(st.subscriptions)),
            r.msg.routes().to_string(),
            r.msg.gateways().len().to_string(),
            iec_bytes(st.mem.max(0) as u64),
            format!("{:.1}", st.cpu),
            st.slow_consumers.to_string(),
            uptime(&r.msg),
            go_duration(Duration::from_millis(rtt_ms as u64)),
        ]);
    }
    t.separator();
    t.row(vec![
        String::new(),
        format!("{clusters} Clusters"),
        format!("{} Servers", replies.len()),
        String::new(),
        js.to_string(),
        conns.to_string(),
        commas(i64::from(subs)),
        String::new(),
        String::new(),
        iec_bytes(mem.max(0) as u64),
        String::new(),
        slow.to_string(),
        String::new(),
        String::new(),
    ]);
    t.render()
}

fn cluster_overview(mut clusters: Vec<Cluster>) -> String {
    clusters.sort_by_key(|c| c.conns);
    let mut t = Table::new("Cluster Overview");
    t.headers(&[
        "Cluster",
        "Node Count",
        "Outgoing Gateways",
        "Incoming Gateways",
        "Connections",
    ]);
    let (mut nodes, mut out, mut inb, mut conns) = (0usize, 0usize, 0i64, 0i64);
    for c in &clusters {
        nodes += c.nodes;
        out += c.gw_out;
        inb += c.gw_in;
        conns += c.conns;
        t.row(vec![
            c.name.clone(),
            c.nodes.to_string(),
            c.gw_out.to_string(),
            c.gw_in.to_string(),
            c.conns.to_string(),
        ]);
    }
    t.separator();
    t.row(vec![
        String::new(),
        nodes.to_string(),
        out.to_string(),
        inb.to_string(),
        conns.to_string(),
    ]);
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_common_suffixes() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            compact_strings(&n(&["a.example.net", "b.example.net"])),
            n(&["a", "b"])
        );
        assert_eq!(compact_strings(&n(&["n1", "n2"])), n(&["n1", "n2"]));
        assert_eq!(
            compact_strings(&n(&["a.x.net", "b.y.net"])),
            n(&["a.x", "b.y"])
        );
    }
}
