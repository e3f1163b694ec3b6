//! Drawing only: turns an [`App`] into ratatui widgets.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::app::{App, ServerState, Status, View, HISTORY};
use crate::format::{self, TableOpts};

/// Lines above the connection rows in the main view (6 header lines, 1 status line,
/// `Connections Polled`, the column header).
pub const MAIN_HEADER_LINES: u16 = 9;
/// Width of the cluster sparklines.
const SPARK_WIDTH: usize = 30;

/// Connection rows that fit in a terminal of `height` lines (one line is the status bar).
pub fn page_rows(height: u16) -> usize {
    height.saturating_sub(MAIN_HEADER_LINES + 1) as usize
}

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [body, bar] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(area);
    if app.help {
        draw_help(f, body);
    } else {
        match app.view {
            View::Main => draw_main(f, app, body),
            View::Cluster => draw_cluster(f, app, body),
        }
    }
    draw_bar(f, app, bar);
}

fn down_style() -> Style {
    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
}

fn clock_ago(app: &App, s: &ServerState) -> String {
    match s.down_since {
        Some(t) => format!("{}s", app.now.saturating_duration_since(t).as_secs()),
        None => String::new(),
    }
}

fn draw_main(f: &mut Frame, app: &App, area: Rect) {
    let s = app.active_server();
    let err = s.last_error.clone().unwrap_or_default();
    let mut lines: Vec<Line> = Vec::new();
    match &s.varz {
        Some(v) => {
            for l in format::header_lines(v, &s.rates, &err, app.raw) {
                lines.push(Line::raw(l));
            }
        }
        None => {
            lines.push(Line::raw(format!("NATS server version  (uptime: ) {err}")));
            lines.push(Line::raw(format!("Server: {}", s.target.addr())));
            for _ in 0..4 {
                lines.push(Line::raw(""));
            }
        }
    }
    // The line between the header and the table says whether the server is answering.
    match s.status {
        Status::Down => lines.push(Line::styled(
            format!(
                "  DOWN: {} not answering for {}: {}",
                s.target.base_url(),
                clock_ago(app, s),
                err
            ),
            down_style(),
        )),
        Status::Pending => lines.push(Line::raw(format!(
            "  Connecting to {} ...",
            s.target.base_url()
        ))),
        Status::Up => lines.push(Line::raw("")),
    }
    let conns = app.sorted_conns();
    let polled = s.connz.as_ref().map_or(0, |c| c.num_connections);
    lines.push(Line::raw(format!("Connections Polled: {polled}")));
    let (header, rows) = format::conn_table(
        &conns,
        &s.names,
        TableOpts {
            raw: app.raw,
            show_subs: app.show_subs,
        },
    );
    lines.push(Line::styled(
        header,
        Style::default().add_modifier(Modifier::REVERSED),
    ));
    let room = area.height.saturating_sub(lines.len() as u16) as usize;
    let first = app.scroll.min(rows.len());
    for r in rows.into_iter().skip(first).take(room) {
        lines.push(Line::raw(r));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_cluster(f: &mut Frame, app: &App, area: Rect) {
    let [title, table_area] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    let rows_idx = app.cluster_rows();
    let up = rows_idx
        .iter()
        .filter(|&&i| app.servers[i].status == Status::Up)
        .count();
    f.render_widget(
        Paragraph::new(format!(
            "Cluster: {} servers ({} up)   msgs/sec over the last {}s   [Enter] show server  [c] back",
            rows_idx.len() + app.unknown_peers.len(),
            up,
            HISTORY.as_secs()
        )),
        title,
    );
    let header = Row::new([
        "",
        "SERVER",
        "MONITOR",
        "VERSION",
        "STATUS",
        "HEALTH",
        "ROUTES",
        "GWS",
        "LEAFS",
        "CONNS",
        "IN MSGS/S",
        "OUT MSGS/S",
        "IN BYTES/S",
        "OUT BYTES/S",
        "MSGS/SEC (1m)",
        "LAST ERROR",
    ])
    .style(Style::default().add_modifier(Modifier::REVERSED));
    let mut rows: Vec<Row> = Vec::new();
    for (n, &i) in rows_idx.iter().enumerate() {
        let s = &app.servers[i];
        let v = s.varz.as_ref();
        let status = match s.status {
            Status::Up => "up".to_string(),
            Status::Pending => "...".to_string(),
            Status::Down => format!("DOWN {}", clock_ago(app, s)),
        };
        let health = match (&s.status, &s.healthz) {
            (Status::Down, _) => "-".to_string(),
            (_, Some(h)) if h.error.is_empty() => h.status.clone(),
            (_, Some(h)) => format!("{}: {}", h.status, h.error),
            (_, None) => "?".to_string(),
        };
        let marker = match (n == app.cluster_sel, i == app.active) {
            (true, true) => ">*",
            (true, false) => "> ",
            (false, true) => " *",
            (false, false) => "  ",
        };
        let cells = vec![
            Cell::from(marker),
            Cell::from(s.label()),
            Cell::from(s.target.addr()),
            Cell::from(v.map(|v| v.version.clone()).unwrap_or_default()),
            Cell::from(status),
            Cell::from(health),
            Cell::from(v.map(|v| v.routes.to_string()).unwrap_or_default()),
            Cell::from(gateway_count(s)),
            Cell::from(v.map(|v| v.leafnodes.to_string()).unwrap_or_default()),
            Cell::from(v.map(|v| v.connections.to_string()).unwrap_or_default()),
            Cell::from(format::rate(s.rates.in_msgs)),
            Cell::from(format::rate(s.rates.out_msgs)),
            Cell::from(format::psize(app.raw, s.rates.in_bytes as i64)),
            Cell::from(format::psize(app.raw, s.rates.out_bytes as i64)),
            Cell::from(format::sparkline(
                &s.history_ages(app.now),
                HISTORY,
                SPARK_WIDTH,
            )),
            Cell::from(s.last_error.clone().unwrap_or_default()),
        ];
        let mut row = Row::new(cells);
        if s.status == Status::Down {
            row = row.style(down_style());
        }
        rows.push(row);
    }
    for (id, ip) in &app.unknown_peers {
        rows.push(Row::new(vec![
            Cell::from("  "),
            Cell::from(id.clone()),
            Cell::from(format!("{ip}:?")),
            Cell::from(""),
            Cell::from("unknown"),
            Cell::from("-"),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from("monitor port unknown; name it with -s host:port"),
        ]));
    }
    let widths = [
        Constraint::Length(2),
        Constraint::Length(20),
        Constraint::Length(21),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(SPARK_WIDTH as u16),
        Constraint::Min(10),
    ];
    // The selected server's gateway and leaf node links, when it has any, under the table.
    let links = rows_idx
        .get(app.cluster_sel)
        .map(|&i| link_lines(&app.servers[i]))
        .unwrap_or_default();
    let table_h = (rows.len() as u16 + 2).min(table_area.height);
    let [table_area, links_area] =
        Layout::vertical([Constraint::Length(table_h), Constraint::Min(0)]).areas(table_area);
    f.render_widget(Table::new(rows, widths).header(header), table_area);
    if !links.is_empty() {
        f.render_widget(Paragraph::new(links), links_area);
    }
}

/// Outbound gateway connections of a server (the remote clusters it reaches); empty without
/// gateways.
fn gateway_count(s: &ServerState) -> String {
    match &s.links.gatewayz {
        Some(g) => g
            .outbound_gateways
            .values()
            .filter(|l| l.connection.is_some())
            .count()
            .to_string(),
        None => String::new(),
    }
}

/// One line per gateway and leaf node connection of `s`, headed by the server's name.
fn link_lines(s: &ServerState) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(g) = &s.links.gatewayz {
        for (name, l) in &g.outbound_gateways {
            let (addr, state) = match &l.connection {
                Some(c) => (format!("{}:{}", c.ip, c.port), "connected"),
                None => (String::new(), "not connected"),
            };
            let how = if l.configured {
                "configured"
            } else {
                "implicit"
            };
            lines.push(Line::raw(format!(
                "  gateway  -> {name:<16} {addr:<22} {state}, {how}"
            )));
        }
        for (name, ls) in &g.inbound_gateways {
            for l in ls {
                let addr = l
                    .connection
                    .as_ref()
                    .map(|c| format!("{}:{}", c.ip, c.port))
                    .unwrap_or_default();
                lines.push(Line::raw(format!("  gateway  <- {name:<16} {addr:<22}")));
            }
        }
    }
    if let Some(lz) = &s.links.leafz {
        for l in &lz.leafs {
            let rtt = if l.rtt.is_empty() { "-" } else { &l.rtt };
            lines.push(Line::raw(format!(
                "  leafnode    {:<16} {:<22} subs {}  msgs in {}  out {}  rtt {rtt}",
                l.account,
                format!("{}:{}", l.ip, l.port),
                l.subscriptions,
                l.in_msgs,
                l.out_msgs,
            )));
        }
    }
    if !lines.is_empty() {
        let title = format!(
            "Links of {} (gateways: cluster name, leaf nodes: account)",
            s.label()
        );
        lines.insert(
            0,
            Line::styled(title, Style::default().add_modifier(Modifier::BOLD)),
        );
    }
    lines
}

const HELP: &str = "\
nats-top keys

  o   set the sort key (cid start subs pending msgs_to msgs_from
      bytes_to bytes_from last idle uptime stop reason)
  r   reverse the sort order
  n   set how many connections to request
  s   show or hide the SUBSCRIPTIONS column
  d   toggle reverse DNS of client addresses
  b   toggle raw numbers instead of K/M/G
  c   cluster view: every server found through /routez, with rates,
      routes, gateways, leaf nodes, health and msgs/sec over the last
      minute, and the selected server's gateway and leaf node links
      (Up/Down select a server, Enter shows it in the main view)
  Up/Down, PgUp/PgDn, Home/End   scroll
  ?   this help
  q   quit (also Ctrl-C)

Press any key to continue.";

fn draw_help(f: &mut Frame, area: Rect) {
    f.render_widget(Paragraph::new(HELP), area);
}

fn draw_bar(f: &mut Frame, app: &App, area: Rect) {
    let line = if let Some(p) = app.prompt_text() {
        Line::raw(p)
    } else if let Some(msg) = app.flash_text() {
        Line::styled(msg.to_string(), down_style())
    } else {
        let order = if app.reverse { " (reversed)" } else { "" };
        Line::from(vec![
            Span::raw(format!(
                "sort: {}{}  limit: {}  ",
                app.sort.as_str(),
                order,
                app.limit
            )),
            Span::styled(
                "[?] help  [c] cluster  [q] quit",
                Style::default().add_modifier(Modifier::DIM),
            ),
        ])
    };
    f.render_widget(Paragraph::new(line), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::{Origin, PollResult, Settings, Snapshot, SortKey, Target};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use nats_common::monitor::{Connz, Healthz, Varz};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::{Duration, Instant};

    const VARZ: &str = r#"{"server_id":"NCVB6BZ2YLVUOZHZBI3LAO3KNM6VRVP3C75SX3YEO2TINCBJWUBNXJB3","server_name":"R1","version":"2.9.10","uptime":"1m2s","now":"2026-11-22T02:02:55Z","mem":13639680,"cpu":0,"connections":3,"routes":1,"in_msgs":21,"out_msgs":28,"in_bytes":4738,"out_bytes":9507,"slow_consumers":0}"#;

    fn connz() -> Connz {
        serde_json::from_str(r#"{"num_connections":3,"total":3,"connections":[
            {"cid":15,"ip":"127.0.0.1","port":43182,"start":"2026-11-22T02:02:53Z","last_activity":"2026-11-22T02:02:53.877534788Z","uptime":"5s","idle":"5s","pending_bytes":0,"in_msgs":1,"out_msgs":1,"in_bytes":5,"out_bytes":5,"subscriptions":2,"name":"mon-test","lang":"python","version":"0.1","subscriptions_list":["foo","bar.*"]},
            {"cid":16,"ip":"127.0.0.1","port":43183,"start":"2026-11-22T02:02:53Z","last_activity":"2026-11-22T02:02:54Z","uptime":"4s","idle":"1s","pending_bytes":0,"in_msgs":34200,"out_msgs":3000000,"in_bytes":2048,"out_bytes":3145728,"subscriptions":1,"lang":"go","version":"1.2","subscriptions_list":["big"]},
            {"cid":17,"ip":"10.1.2.3","port":5000,"start":"2026-11-22T02:02:53Z","last_activity":"2026-11-22T02:02:54Z","uptime":"3s","idle":"1s","in_msgs":7,"out_msgs":9,"in_bytes":70,"out_bytes":90,"subscriptions":0,"lang":"rust","version":"0.1"}
        ]}"#).expect("valid connz")
    }

    fn settings() -> Settings {
        Settings {
            targets: vec![Target {
                host: "127.0.0.1".into(),
                port: 8222,
                https: false,
                origin: Origin::Given,
            }],
            monitor_port: 8222,
            https: false,
            sort: SortKey::Cid,
            limit: 1024,
            show_subs: false,
            lookup: false,
            raw: false,
        }
    }

    fn app_with_data(t0: Instant) -> App {
        let mut app = App::new(settings(), t0);
        let varz: Varz = serde_json::from_str(VARZ).expect("valid varz");
        app.apply(PollResult {
            target: 0,
            at: t0,
            outcome: Ok(Snapshot {
                varz: varz.clone(),
                connz: Some(connz()),
                healthz: Some(Healthz::ok()),
                ..Default::default()
            }),
        });
        // Second poll two seconds later: 200 more messages in, 2 KiB more bytes in.
        let mut v2 = varz;
        v2.now = "2026-11-22T02:02:57Z".into();
        v2.in_msgs += 200;
        v2.in_bytes += 2048;
        app.apply(PollResult {
            target: 0,
            at: t0 + Duration::from_secs(2),
            outcome: Ok(Snapshot {
                varz: v2,
                connz: Some(connz()),
                healthz: Some(Healthz::ok()),
                ..Default::default()
            }),
        });
        app.now = t0 + Duration::from_secs(2);
        app
    }

    fn render(app: &App, w: u16, h: u16) -> Vec<String> {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        term.draw(|f| draw(f, app)).expect("draw");
        let buf = term.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn key(app: &mut App, c: char) {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }

    #[test]
    fn main_view_layout_and_numbers() {
        let app = app_with_data(Instant::now());
        let s = render(&app, 200, 20);
        assert_eq!(s[0], "NATS server version 2.9.10 (uptime: 1m2s)");
        assert_eq!(s[1], "Server: R1");
        assert_eq!(
            s[2],
            "  ID:   NCVB6BZ2YLVUOZHZBI3LAO3KNM6VRVP3C75SX3YEO2TINCBJWUBNXJB3"
        );
        assert_eq!(s[3], "  Load: CPU:  0.0%  Memory: 13.0M  Slow Consumers: 0");
        assert_eq!(
            s[4],
            "  In:   Msgs: 221  Bytes: 6.6K  Msgs/Sec: 100.0  Bytes/Sec: 1.0K"
        );
        assert_eq!(
            s[5],
            "  Out:  Msgs: 28  Bytes: 9.3K  Msgs/Sec: 0.0  Bytes/Sec: 0"
        );
        assert_eq!(s[6], "");
        assert_eq!(s[7], "Connections Polled: 3");
        assert!(s[8].starts_with("  HOST             CID    NAME       SUBS    PENDING"));
        assert!(!s[8].contains("SUBSCRIPTIONS"));
        assert!(s[9].starts_with("  127.0.0.1:43182  15     mon-test   2       0           1 "));
        assert!(s[9].ends_with("2026-11-22 02:02:53.877534788 +0000 UTC"));
        // Human numbers: 3,000,000 msgs → 3.0M, 34,200 → 34.2K, 3 MiB → 3.0M.
        assert!(
            s[10].contains("  3.0M        34.2K       3.0M        2.0K  "),
            "{}",
            s[10]
        );
        assert!(s[11].starts_with("  10.1.2.3:5000    17"));
        assert!(s[19].contains("sort: cid  limit: 1024"));
    }

    #[test]
    fn sorting_and_reverse_change_row_order() {
        let mut app = app_with_data(Instant::now());
        app.sort = SortKey::MsgsTo;
        let s = render(&app, 200, 20);
        assert!(s[9].contains(" 16 "), "{}", s[9]);
        assert!(s[10].contains(" 17 "));
        assert!(s[11].contains(" 15 "));
        key(&mut app, 'r');
        let s = render(&app, 200, 20);
        assert!(s[9].contains(" 15 "));
        assert!(s[11].contains(" 16 "));
        assert!(s[19].contains("sort: msgs_to (reversed)"));
    }

    #[test]
    fn subscriptions_toggle_and_raw_numbers() {
        let mut app = app_with_data(Instant::now());
        key(&mut app, 's');
        key(&mut app, 'b');
        let s = render(&app, 240, 20);
        assert!(
            s[8].ends_with("LAST_ACTIVITY                             SUBSCRIPTIONS"),
            "{}",
            s[8]
        );
        assert!(s[9].ends_with("foo, bar.*"));
        assert!(s[10].contains("3000000"));
        assert!(s[10].contains("3145728"));
        assert!(s[10].ends_with("big"));
    }

    #[test]
    fn scrolling_moves_the_first_row() {
        let mut app = app_with_data(Instant::now());
        app.page = 1;
        app.handle_key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        let s = render(&app, 200, 11);
        assert!(s[9].contains(" 16 "), "{}", s[9]);
        app.handle_key(KeyEvent::new(KeyCode::End, KeyModifiers::NONE));
        let s = render(&app, 200, 11);
        assert!(s[9].contains(" 17 "));
        app.handle_key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
        let s = render(&app, 200, 11);
        assert!(s[9].contains(" 16 "));
    }

    #[test]
    fn help_screen_and_prompt() {
        let mut app = app_with_data(Instant::now());
        key(&mut app, '?');
        let s = render(&app, 100, 25).join("\n");
        assert!(s.contains("o   set the sort key"));
        assert!(s.contains("c   cluster view"));
        assert!(s.contains("q   quit"));
        key(&mut app, 'x');
        key(&mut app, 'o');
        key(&mut app, 'b');
        let s = render(&app, 100, 25);
        assert_eq!(s[24], "sort by [cid]: b");
        assert!(s[0].starts_with("NATS server version"));
    }

    #[test]
    fn down_server_keeps_last_numbers_and_shows_error() {
        let t0 = Instant::now();
        let mut app = app_with_data(t0);
        app.apply(PollResult {
            target: 0,
            at: t0 + Duration::from_secs(3),
            outcome: Err("http://127.0.0.1:8222/varz: Connection refused (os error 111)".into()),
        });
        app.now = t0 + Duration::from_secs(8);
        let s = render(&app, 200, 20);
        assert_eq!(
            s[0],
            "NATS server version 2.9.10 (uptime: 1m2s) http://127.0.0.1:8222/varz: Connection refused (os error 111)"
        );
        assert!(
            s[6].starts_with("  DOWN: http://127.0.0.1:8222 not answering for 5s: "),
            "{}",
            s[6]
        );
        // Never polled at all: a placeholder instead of numbers.
        let mut fresh = App::new(settings(), t0);
        fresh.apply(PollResult {
            target: 0,
            at: t0,
            outcome: Err("boom".into()),
        });
        let s = render(&fresh, 120, 12);
        assert_eq!(s[0], "NATS server version  (uptime: ) boom");
        assert!(s[6].contains("DOWN"));
    }

    #[test]
    fn cluster_view_rows_rates_and_down_peer() {
        let t0 = Instant::now();
        let mut app = app_with_data(t0);
        let mut routez: nats_common::monitor::Routez = Default::default();
        routez.routes.push(nats_common::monitor::RouteInfo {
            remote_id: "PEER".into(),
            ip: "10.9.9.9".into(),
            ..Default::default()
        });
        let mut varz: Varz = serde_json::from_str(VARZ).expect("valid varz");
        varz.now = "2026-11-22T02:02:59Z".into();
        varz.in_msgs += 600;
        let added = app.apply(PollResult {
            target: 0,
            at: t0 + Duration::from_secs(4),
            outcome: Ok(Snapshot {
                varz,
                routez: Some(routez),
                healthz: Some(Healthz::ok()),
                ..Default::default()
            }),
        });
        assert_eq!(added, vec![1]);
        app.apply(PollResult {
            target: 1,
            at: t0 + Duration::from_secs(4),
            outcome: Err("http://10.9.9.9:8222/varz: timed out".into()),
        });
        app.now = t0 + Duration::from_secs(4);
        key(&mut app, 'c');
        let s = render(&app, 220, 10);
        assert!(s[0].starts_with("Cluster: 2 servers (1 up)"), "{}", s[0]);
        assert!(s[2].contains("SERVER") && s[2].contains("HEALTH") && s[2].contains("ROUTES"));
        let r1 = &s[3];
        assert!(r1.starts_with(">* R1"), "{r1}");
        assert!(r1.contains("127.0.0.1:8222"));
        assert!(r1.contains(" up "));
        assert!(r1.contains(" ok "));
        // (621 - 221 msgs in) / 2 s of server time.
        assert!(r1.contains("200.0"), "{r1}");
        assert!(r1.contains('█'), "{r1}");
        let r2 = &s[4];
        assert!(r2.contains("10.9.9.9:8222"), "{r2}");
        assert!(r2.contains("DOWN 0s"));
        assert!(r2.contains("timed out"));
        // Back to the main view.
        key(&mut app, 'c');
        let s = render(&app, 200, 10);
        assert!(s[0].starts_with("NATS server version 2.9.10"));
    }

    #[test]
    fn cluster_view_shows_gateway_and_leaf_links() {
        let t0 = Instant::now();
        let mut app = app_with_data(t0);
        let mut varz: Varz = serde_json::from_str(VARZ).expect("valid varz");
        varz.now = "2026-11-22T02:02:59Z".into();
        varz.leafnodes = 1;
        varz.gateway.name = "A".into();
        let gatewayz: crate::app::Gatewayz = serde_json::from_str(
            r#"{"server_id":"X","name":"A","outbound_gateways":{"B":{"configured":true,
               "connection":{"cid":7,"ip":"10.0.0.2","port":7222}}},
               "inbound_gateways":{"B":[{"configured":false,"connection":{"cid":8,"ip":"10.0.0.2","port":51000}}]}}"#,
        )
        .expect("gatewayz");
        let leafz: crate::app::Leafz = serde_json::from_str(
            r#"{"server_id":"X","leafnodes":1,"leafs":[{"account":"$G","ip":"10.0.0.3","port":40000,
               "rtt":"1.2ms","in_msgs":5,"out_msgs":9,"in_bytes":0,"out_bytes":0,"subscriptions":3}]}"#,
        )
        .expect("leafz");
        app.apply(PollResult {
            target: 0,
            at: t0 + Duration::from_secs(4),
            outcome: Ok(Snapshot {
                varz,
                healthz: Some(Healthz::ok()),
                links: crate::app::Links {
                    gatewayz: Some(gatewayz),
                    leafz: Some(leafz),
                },
                ..Default::default()
            }),
        });
        key(&mut app, 'c');
        let s = render(&app, 220, 12);
        assert!(s[2].contains("GWS") && s[2].contains("LEAFS"), "{}", s[2]);
        let cols: Vec<&str> = s[3].split_whitespace().collect();
        let at = cols.iter().position(|c| *c == "ok").expect("health column");
        // ROUTES, GWS, LEAFS after HEALTH.
        assert_eq!(&cols[at + 1..at + 4], &["1", "1", "1"], "{}", s[3]);
        let text = s.join("\n");
        assert!(text.contains("Links of R1"), "{text}");
        assert!(
            text.contains("gateway  -> B")
                && text.contains("10.0.0.2:7222          connected, configured"),
            "{text}"
        );
        assert!(
            text.contains("gateway  <- B") && text.contains("10.0.0.2:51000"),
            "{text}"
        );
        assert!(
            text.contains("leafnode    $G")
                && text.contains("10.0.0.3:40000         subs 3  msgs in 5  out 9  rtt 1.2ms"),
            "{text}"
        );
    }
}
