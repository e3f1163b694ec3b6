//! Text formatting shared by the terminal UI and the `-o` snapshot: human sizes, the header lines
//! and the connection table, laid out like the original nats-top.

use std::collections::HashMap;
use std::time::Duration;

use nats_common::monitor::{parse_rfc3339, ConnInfo, Varz};

/// Message counts: below 1000 as is, else one decimal with a 1000-based K/M/B/T suffix.
pub fn nsize(raw: bool, n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")];
    if raw || n < 1000 {
        return n.to_string();
    }
    let v = n as f64;
    for (scale, suffix) in UNITS {
        if v >= scale {
            return format!("{:.1}{}", v / scale, suffix);
        }
    }
    n.to_string()
}

/// Byte sizes: below 1024 as is, else one decimal with a 1024-based K/M/G suffix.
pub fn psize(raw: bool, n: i64) -> String {
    const K: f64 = 1024.0;
    if raw || n < 1024 {
        return n.to_string();
    }
    let v = n as f64;
    if v < K * K {
        format!("{:.1}K", v / K)
    } else if v < K * K * K {
        format!("{:.1}M", v / (K * K))
    } else {
        format!("{:.1}G", v / (K * K * K))
    }
}

/// Counters from the server are signed in JSON; negative values make no sense for display.
fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `LAST_ACTIVITY` is shown as Go's `time.Time.String()`; unparsable text is shown as sent.
pub fn last_activity(ts: &str) -> String {
    parse_rfc3339(ts)
        .map(|t| t.go_string())
        .unwrap_or_else(|| ts.to_string())
}

/// Rates between two polls of one server.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub in_msgs: f64,
    pub out_msgs: f64,
    pub in_bytes: f64,
    pub out_bytes: f64,
}

/// The six lines above the connection table (line 1 carries the last poll error, if any).
pub fn header_lines(varz: &Varz, rates: &Rates, err: &str, raw: bool) -> Vec<String> {
    let mut lines = Vec::with_capacity(6);
    lines.push(format!(
        "NATS server version {} (uptime: {}) {}",
        varz.version, varz.uptime, err
    ));
    if varz.server_name != varz.server_id {
        lines.push(format!("Server: {}", varz.server_name));
    } else {
        lines.push("Server: ".to_string());
    }
    lines.push(format!("  ID:   {}", varz.server_id));
    lines.push(format!(
        "  Load: CPU:  {:.1}%  Memory: {}  Slow Consumers: {}",
        varz.cpu,
        // Memory is always shown 1024-based, whatever the raw toggle says.
        psize(false, varz.mem),
        varz.slow_consumers
    ));
    lines.push(format!(
        "  In:   Msgs: {}  Bytes: {}  Msgs/Sec: {:.1}  Bytes/Sec: {}",
        nsize(raw, unsigned(varz.in_msgs)),
        psize(raw, varz.in_bytes),
        rates.in_msgs,
        psize(raw, rates.in_bytes as i64)
    ));
    lines.push(format!(
        "  Out:  Msgs: {}  Bytes: {}  Msgs/Sec: {:.1}  Bytes/Sec: {}",
        nsize(raw, unsigned(varz.out_msgs)),
        psize(raw, varz.out_bytes),
        rates.out_msgs,
        psize(raw, rates.out_bytes as i64)
    ));
    lines
}

/// Options for the connection table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableOpts {
    pub raw: bool,
    pub show_subs: bool,
}

/// The `HOST` cell: `ip:port`, or `name:port` when a reverse lookup gave a name.
pub fn host_cell(c: &ConnInfo, names: &HashMap<String, String>) -> String {
    let host = names.get(&c.ip).map(String::as_str).unwrap_or(&c.ip);
    if host.contains(':') {
        // An IPv6 literal needs brackets to keep the port readable.
        format!("[{}]:{}", host, c.port)
    } else {
        format!("{}:{}", host, c.port)
    }
}

/// The connection table: a header line and one line per connection, columns as in the original
/// (HOST at least 15 wide plus 2, NAME only when some connection has one).
pub fn conn_table(
    conns: &[ConnInfo],
    names: &HashMap<String, String>,
    opts: TableOpts,
) -> (String, Vec<String>) {
    let hosts: Vec<String> = conns.iter().map(|c| host_cell(c, names)).collect();
    let host_w = hosts
        .iter()
        .map(|h| h.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(15);
    let longest_name = conns
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let name_w = if longest_name > 0 {
        Some((longest_name + 2).max(4))
    } else {
        None
    };

    let row = |host: &str,
               cid: &str,
               name: &str,
               cells: [&str; 6],
               tail: [&str; 4],
               subs: &str|
     -> String {
        let mut s = format!("  {host:<host_w$}{cid:<6} ");
        if let Some(w) = name_w {
            s.push_str(&format!("{name:<w$} "));
        }
        s.push_str(&format!("{:<6}  ", cells[0]));
        for c in &cells[1..] {
            s.push_str(&format!("{c:<10}  "));
        }
        for c in &tail[..3] {
            s.push_str(&format!("{c:<7}  "));
        }
        s.push_str(&format!("{:<40}", tail[3]));
        if opts.show_subs {
            s.push_str(&format!("  {subs:>13}"));
        }
        s
    };

    let header = row(
        "HOST",
        "CID",
        "NAME",
        [
            "SUBS",
            "PENDING",
            "MSGS_TO",
            "MSGS_FROM",
            "BYTES_TO",
            "BYTES_FROM",
        ],
        ["LANG", "VERSION", "UPTIME", "LAST_ACTIVITY"],
        "SUBSCRIPTIONS",
    );
    let raw = opts.raw;
    let lines = conns
        .iter()
        .zip(hosts.iter())
        .map(|(c, host)| {
            let subs = c.subscriptions_list.join(", ");
            row(
                host,
                &c.cid.to_string(),
                &c.name,
                [
                    &c.subscriptions.to_string(),
                    &nsize(raw, unsigned(c.pending_bytes)),
                    &nsize(raw, unsigned(c.out_msgs)),
                    &nsize(raw, unsigned(c.in_msgs)),
                    &psize(raw, c.out_bytes),
                    &psize(raw, c.in_bytes),
                ],
                [
                    &c.lang,
                    &c.version,
                    &c.uptime,
                    &last_activity(&c.last_activity),
                ],
                &subs,
            )
        })
        .collect();
    (header, lines)
}

/// The whole `-o` snapshot in the grid layout.
pub fn snapshot_text(
    varz: &Varz,
    num_connections: i64,
    conns: &[ConnInfo],
    names: &HashMap<String, String>,
    opts: TableOpts,
) -> String {
    let mut out = String::new();
    for l in header_lines(varz, &Rates::default(), "", opts.raw) {
        out.push_str(&l);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&format!("Connections Polled: {num_connections}\n"));
    let (header, rows) = conn_table(conns, names, opts);
    out.push_str(&header);
    out.push('\n');
    for r in rows {
        out.push_str(&r);
        out.push('\n');
    }
    out
}

/// The `-o FILE -l DELIM` form: the same information as delimiter-separated fields.
pub fn snapshot_delimited(
    varz: &Varz,
    num_connections: i64,
    conns: &[ConnInfo],
    names: &HashMap<String, String>,
    delim: &str,
    opts: TableOpts,
) -> String {
    let raw = opts.raw;
    let join = |fields: &[String]| fields.join(delim) + "\n";
    let mut out = String::new();
    out.push_str(&join(&[
        "NATS server version".into(),
        varz.version.clone(),
        format!("(uptime: {})", varz.uptime),
        String::new(),
    ]));
    out.push_str(&join(&["Server:".into(), varz.server_name.clone()]));
    out.push_str(&join(&["ID:".into(), varz.server_id.clone()]));
    out.push_str(&join(&[
        "Load:".into(),
        "CPU:".into(),
        format!("{:.1}%", varz.cpu),
        "Memory:".into(),
        psize(false, varz.mem),
        "Slow Consumers:".into(),
        varz.slow_consumers.to_string(),
    ]));
    for (dir, msgs, bytes) in [
        ("In:", varz.in_msgs, varz.in_bytes),
        ("Out:", varz.out_msgs, varz.out_bytes),
    ] {
        out.push_str(&join(&[
            dir.into(),
            "Msgs:".into(),
            nsize(raw, unsigned(msgs)),
            "Bytes:".into(),
            psize(raw, bytes),
            "Msgs/Sec:".into(),
            "0.0".into(),
            "Bytes/Sec:".into(),
            "0".into(),
        ]));
    }
    out.push('\n');
    out.push_str(&join(&[
        "Connections Polled:".into(),
        num_connections.to_string(),
    ]));
    let mut header: Vec<String> = [
        "HOST",
        "CID",
        "NAME",
        "SUBS",
        "PENDING",
        "MSGS_TO",
        "MSGS_FROM",
        "BYTES_TO",
        "BYTES_FROM",
        "LANG",
        "VERSION",
        "UPTIME",
        "LAST_ACTIVITY",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if opts.show_subs {
        header.push("SUBSCRIPTIONS".into());
    }
    out.push_str(&join(&header));
    for c in conns {
        let mut f = vec![
            host_cell(c, names),
            c.cid.to_string(),
            c.name.clone(),
            c.subscriptions.to_string(),
            nsize(raw, unsigned(c.pending_bytes)),
            nsize(raw, unsigned(c.out_msgs)),
            nsize(raw, unsigned(c.in_msgs)),
            psize(raw, c.out_bytes),
            psize(raw, c.in_bytes),
            c.lang.clone(),
            c.version.clone(),
            c.uptime.clone(),
            last_activity(&c.last_activity),
        ];
        if opts.show_subs {
            f.push(c.subscriptions_list.join(", "));
        }
        out.push_str(&join(&f));
    }
    out
}

/// A rate with a 1000-based suffix and one decimal (`34.2K`), for the cluster table.
pub fn rate(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "0".into();
    }
    if v < 1000.0 {
        return format!("{v:.1}");
    }
    nsize(false, v as u64)
}

/// A one-line sparkline of `(age, value)` samples over `window`, `width` cells wide, newest on
/// the right. Each cell shows the largest sample that fell into its time slice; cells without
/// samples stay blank so gaps (a down server) are visible.
pub fn sparkline(samples: &[(Duration, f64)], window: Duration, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if width == 0 {
        return String::new();
    }
    let mut cells: Vec<Option<f64>> = vec![None; width];
    let win = window.as_secs_f64().max(f64::EPSILON);
    for (age, v) in samples {
        let a = age.as_secs_f64();
        if a > win || !v.is_finite() {
            continue;
        }
        // age 0 → rightmost cell.
        let from_right = ((a / win) * width as f64) as usize;
        let idx = width - 1 - from_right.min(width - 1);
        let cur = cells[idx].get_or_insert(0.0);
        if *v > *cur {
            *cur = *v;
        }
    }
    let max = cells.iter().flatten().cloned().fold(0.0_f64, f64::max);
    cells
        .iter()
        .map(|c| match c {
            None => ' ',
            Some(v) if max <= 0.0 || *v <= 0.0 => BARS[0],
            Some(v) => {
                let level = ((v / max) * (BARS.len() - 1) as f64).round() as usize;
                BARS[level.min(BARS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(nsize(false, 0), "0");
        assert_eq!(nsize(false, 999), "999");
        assert_eq!(nsize(false, 1000), "1.0K");
        assert_eq!(nsize(false, 34_200), "34.2K");
        assert_eq!(nsize(false, 3_000_000), "3.0M");
        assert_eq!(nsize(false, 7_500_000_000), "7.5B");
        assert_eq!(nsize(false, 2_000_000_000_000), "2.0T");
        assert_eq!(nsize(true, 3_000_000), "3000000");
        assert_eq!(psize(false, 1023), "1023");
        assert_eq!(psize(false, 4738), "4.6K");
        assert_eq!(psize(false, 9507), "9.3K");
        assert_eq!(psize(false, 13_639_680), "13.0M");
        assert_eq!(psize(false, 3 * 1024 * 1024 * 1024), "3.0G");
        assert_eq!(psize(true, 4738), "4738");
        assert_eq!(psize(false, -5), "-5");
    }

    #[test]
    fn last_activity_like_go() {
        assert_eq!(
            last_activity("2026-11-22T02:02:53.877534788Z"),
            "2026-11-22 02:02:53.877534788 +0000 UTC"
        );
        assert_eq!(last_activity("garbage"), "garbage");
    }

    #[test]
    fn table_matches_reference_columns() {
        let c = ConnInfo {
            cid: 15,
            ip: "127.0.0.1".into(),
            port: 43182,
            name: "mon-test".into(),
            subscriptions: 2,
            in_msgs: 1,
            out_msgs: 1,
            in_bytes: 5,
            out_bytes: 5,
            lang: "python".into(),
            version: "0.1".into(),
            uptime: "5s".into(),
            last_activity: "2026-11-22T02:02:53.877534788Z".into(),
            ..Default::default()
        };
        let (h, rows) = conn_table(&[c], &HashMap::new(), TableOpts::default());
        assert_eq!(h, "  HOST             CID    NAME       SUBS    PENDING     MSGS_TO     MSGS_FROM   BYTES_TO    BYTES_FROM  LANG     VERSION  UPTIME   LAST_ACTIVITY                           ");
        assert_eq!(rows[0], "  127.0.0.1:43182  15     mon-test   2       0           1           1           5           5           python   0.1      5s       2026-11-22 02:02:53.877534788 +0000 UTC ");
    }

    #[test]
    fn sparkline_scales_and_shows_gaps() {
        let s = sparkline(
            &[
                (Duration::from_secs(0), 10.0),
                (Duration::from_secs(30), 5.0),
                (Duration::from_secs(59), 0.0),
                (Duration::from_secs(120), 99.0),
            ],
            Duration::from_secs(60),
            6,
        );
        assert_eq!(s.chars().count(), 6);
        assert!(s.ends_with('█'));
        assert!(s.starts_with('▁'));
        assert!(s.contains(' '));
        assert_eq!(sparkline(&[], Duration::from_secs(60), 3), "   ");
    }
}
