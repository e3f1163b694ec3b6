//! nats-top: a top-like monitor for NATS servers, polling their HTTP monitoring endpoints.

mod app;
mod format;
mod poll;
mod ui;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::{App, Origin, Settings, SortKey, Target};
use format::TableOpts;
use poll::TlsOpts;

const USAGE: &str = "\
usage: nats-top [-s server] [-m http_port] [-ms https_port] [-n num_connections] [-d delay_secs] [-r max] [-o FILE] [-l DELIMITER] [-sort by]
                [-cert FILE] [-key FILE] [-cacert FILE] [-k] [-b] [-v|--version] [-u|--display-subscriptions-column]
                (-s also takes a comma-separated list of host or host:monitor_port)";

/// Command-line settings.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    servers: String,
    port: u16,
    https_port: u16,
    conns: usize,
    delay: u64,
    sort: SortKey,
    lookup: bool,
    output: Option<String>,
    delimiter: Option<String>,
    raw: bool,
    max_refresh: i64,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    cacert: Option<PathBuf>,
    insecure: bool,
    show_subs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: "127.0.0.1".into(),
            port: 8222,
            https_port: 0,
            conns: 1024,
            delay: 1,
            sort: SortKey::Cid,
            lookup: false,
            output: None,
            delimiter: None,
            raw: false,
            max_refresh: -1,
            cert: None,
            key: None,
            cacert: None,
            insecure: false,
            show_subs: false,
        }
    }
}

#[derive(Debug, PartialEq)]
enum Cmd {
    Run(Box<Config>),
    Version,
    Help,
}

/// A command-line error: the message line and the exit code (2 like Go's flag package, 1 for a
/// bad sort key as in the original).
#[derive(Debug, PartialEq)]
struct ArgError {
    msg: String,
    code: i32,
}

fn flag_err(msg: String) -> ArgError {
    ArgError { msg, code: 2 }
}

/// Go's strconv.ParseBool.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses arguments the way Go's `flag` package does: `-name`, `--name`, `-name=value`,
/// `-name value` (not for booleans); parsing stops at `--` or the first non-flag.
fn parse_args(args: &[String]) -> Result<Cmd, ArgError> {
    const BOOLS: [&str; 8] = [
        "lookup",
        "k",
        "b",
        "u",
        "display-subscriptions-column",
        "v",
        "version",
        "h",
    ];
    const VALUES: [&str; 12] = [
        "s", "m", "ms", "n", "d", "sort", "o", "l", "r", "cert", "key", "cacert",
    ];
    let mut c = Config::default();
    let mut version = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            return Err(flag_err(format!("nats-top: unexpected argument: {a}")));
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(flag_err(format!("bad flag syntax: {a}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        if name == "help" || name == "h" {
            return Ok(Cmd::Help);
        }
        if BOOLS.contains(&name) {
            let val = match &inline {
                Some(v) => parse_bool(v).ok_or_else(|| {
                    flag_err(format!(
                        "invalid boolean value \"{v}\" for -{name}: parse error"
                    ))
                })?,
                None => true,
            };
            match name {
                "lookup" => c.lookup = val,
                "k" => c.insecure = val,
                "b" => c.raw = val,
                "u" | "display-subscriptions-column" => c.show_subs = val,
                _ => version = val,
            }
            continue;
        }
        if !VALUES.contains(&name) {
            return Err(flag_err(format!("flag provided but not defined: -{name}")));
        }
        let val = match inline {
            Some(v) => v,
            None => {
                let v = args
                    .get(i)
                    .ok_or_else(|| flag_err(format!("flag needs an argument: -{name}")))?;
                i += 1;
                v.clone()
            }
        };
        let bad = || {
            flag_err(format!(
                "invalid value \"{val}\" for flag -{name}: parse error"
            ))
        };
        match name {
            "s" => c.servers = val.clone(),
            "m" => c.port = val.parse().map_err(|_| bad())?,
            "ms" => c.https_port = val.parse().map_err(|_| bad())?,
            "n" => c.conns = val.parse().map_err(|_| bad())?,
            "d" => {
                c.delay = val.parse().map_err(|_| bad())?;
                if c.delay == 0 {
                    return Err(bad());
                }
            }
            "sort" => {
                c.sort = SortKey::parse(&val).ok_or(ArgError {
                    msg: format!("nats-top: invalid option to sort by: {val}"),
                    code: 1,
                })?
            }
            "o" => c.output = Some(val.clone()),
            "l" => c.delimiter = Some(val.clone()),
            "r" => c.max_refresh = val.parse().map_err(|_| bad())?,
            "cert" => c.cert = Some(PathBuf::from(&val)),
            "key" => c.key = Some(PathBuf::from(&val)),
            _ => c.cacert = Some(PathBuf::from(&val)),
        }
    }
    if let Some(extra) = args.get(i) {
        return Err(flag_err(format!("nats-top: unexpected argument: {extra}")));
    }
    if version {
        return Ok(Cmd::Version);
    }
    Ok(Cmd::Run(Box::new(c)))
}

/// The `-s` list: `host`, `host:port` or `[v6]:port`, comma-separated. A bare host uses the
/// `-m`/`-ms` port.
fn parse_targets(c: &Config) -> Result<Vec<Target>, String> {
    let https = c.https_port != 0;
    let default_port = if https { c.https_port } else { c.port };
    let mut out = Vec::new();
    for item in c
        .servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let bad = || format!("nats-top: invalid server: {item}");
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None if after.is_empty() => (h.to_string(), default_port),
                None => return Err(bad()),
            }
        } else if item.matches(':').count() == 1 {
            let (h, p) = item.split_once(':').ok_or_else(bad)?;
            (h.to_string(), p.parse().map_err(|_| bad())?)
        } else {
            // A bare host, or an IPv6 literal without brackets.
            (item.to_string(), default_port)
        };
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        out.push(Target {
            host,
            port,
            https,
            origin: Origin::Given,
        });
    }
    if out.is_empty() {
        return Err("nats-top: no server given with -s".into());
    }
    Ok(out)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse_args(&args) {
        Ok(Cmd::Run(c)) => c,
        Ok(Cmd::Version) => {
            println!("nats-top v{}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Ok(Cmd::Help) => {
            eprintln!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("{}", e.msg);
            eprintln!("{USAGE}");
            std::process::exit(e.code);
        }
    };
    if let Err(e) = run(*cfg) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run(cfg: Config) -> Result<(), String> {
    let targets = parse_targets(&cfg)?;
    let tls = TlsOpts {
        cert: cfg.cert.clone(),
        key: cfg.key.clone(),
        cacert: cfg.cacert.clone(),
        insecure: cfg.insecure,
    };
    // Requests must finish well within a refresh so one slow server does not pile up polls.
    let timeout = Duration::from_secs(cfg.delay.clamp(2, 5));
    let client = poll::build_client(&tls, timeout).map_err(|e| format!("nats-top: {e:#}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("nats-top: cannot start runtime: {e}"))?;
    let settings = Settings {
        monitor_port: targets[0].port,
        https: targets[0].https,
        targets,
        sort: cfg.sort,
        limit: cfg.conns,
        show_subs: cfg.show_subs,
        lookup: cfg.lookup,
        raw: cfg.raw,
    };
    match &cfg.output {
        Some(path) => rt.block_on(snapshot(&cfg, &settings, &client, path)),
        None => interactive(&cfg, settings, client, &rt),
    }
}

/// `-o FILE`: one poll of the first server, written as text (or delimited with `-l`).
async fn snapshot(
    cfg: &Config,
    settings: &Settings,
    client: &reqwest::Client,
    path: &str,
) -> Result<(), String> {
    let target = &settings.targets[0];
    let q = app::Query {
        limit: cfg.conns,
        sort: cfg.sort,
        subs: cfg.show_subs,
        lookup: cfg.lookup,
        active: 0,
    };
    let mut dns = Default::default();
    let snap = poll::poll_server(client, &target.base_url(), &q, true, &mut dns)
        .await
        .map_err(|e| {
            format!("nats-top: /varz smoke test failed: could not get stats from server: {e}")
        })?;
    let connz = snap.connz.unwrap_or_default();
    let mut conns = connz.connections;
    app::sort_conns(&mut conns, cfg.sort, false);
    let opts = TableOpts {
        raw: cfg.raw,
        show_subs: cfg.show_subs,
    };
    let text = match &cfg.delimiter {
        Some(d) => format::snapshot_delimited(
            &snap.varz,
            connz.num_connections,
            &conns,
            &snap.names,
            d,
            opts,
        ),
        None => format::snapshot_text(&snap.varz, connz.num_connections, &conns, &snap.names, opts),
    };
    if path == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| format!("nats-top: writing to stdout: {e}"))
    } else {
        std::fs::write(path, text).map_err(|e| format!("nats-top: unable to write {path}: {e}"))
    }
}

/// Puts the terminal back: cursor visible, cooked mode, main screen.
fn restore_terminal() {
    ratatui::restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
}

fn interactive(
    cfg: &Config,
    settings: Settings,
    client: reqwest::Client,
    rt: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let mut app = App::new(settings, Instant::now());
    let (tx, rx) = mpsc::channel();
    let (query_tx, query_rx) = tokio::sync::watch::channel(app.query());
    let delay = Duration::from_secs(cfg.delay);
    let mut stops: Vec<Arc<AtomicBool>> = Vec::new();
    let poller = poll::Poller {
        client,
        query: query_rx,
        delay,
        tx,
    };
    let start = |idx: usize, app: &App, stops: &mut Vec<Arc<AtomicBool>>| {
        let stop = Arc::new(AtomicBool::new(false));
        stops.push(stop.clone());
        poller.spawn(rt.handle(), idx, app.servers[idx].target.base_url(), stop);
    };
    for idx in 0..app.servers.len() {
        start(idx, &app, &mut stops);
    }

    // ratatui::init installs a panic hook that restores the terminal; add the cursor on top.
    let mut terminal = ratatui::init();
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev_hook(info);
    }));

    let mut refreshes: i64 = 0;
    let result = loop {
        app.now = Instant::now();
        while let Ok(res) = rx.try_recv() {
            let is_active = res.target == app.active;
            for idx in app.apply(res) {
                start(idx, &app, &mut stops);
            }
            if is_active {
                refreshes += 1;
            }
        }
        // Endpoints found to be another name of a watched server need no polling.
        for (i, s) in app.servers.iter().enumerate() {
            if s.alias_of.is_some() {
                if let Some(stop) = stops.get(i) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
        }
        if cfg.max_refresh >= 0 && refreshes >= cfg.max_refresh {
            break Ok(());
        }
        if let Ok(size) = terminal.size() {
            app.page = ui::page_rows(size.height).max(1);
        }
        if let Err(e) = terminal.draw(|f| ui::draw(f, &app)) {
            break Err(format!("nats-top: drawing failed: {e}"));
        }
        match crossterm::event::poll(Duration::from_millis(100)) {
            Ok(true) => match crossterm::event::read() {
                Ok(crossterm::event::Event::Key(k)) => app.handle_key(k),
                Ok(_) => {}
                Err(e) => break Err(format!("nats-top: reading the terminal failed: {e}")),
            },
            Ok(false) => {}
            Err(e) => break Err(format!("nats-top: reading the terminal failed: {e}")),
        }
        if app.quit {
            break Ok(());
        }
        let q = app.query();
        if *query_tx.borrow() != q {
            // Wakes every poller so a new sort or limit shows at once.
            let _ = query_tx.send(q);
        }
    };
    restore_terminal();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run_cfg(s: &str) -> Config {
        match parse_args(&args(s)) {
            Ok(Cmd::Run(c)) => *c,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn go_style_flags() {
        let c = run_cfg(
            "-s 10.0.0.1 -m 8000 --n=10 -d 2 -sort bytes_to -u -b=true -r 3 -o out.txt -l ,",
        );
        assert_eq!(c.servers, "10.0.0.1");
        assert_eq!(c.port, 8000);
        assert_eq!(c.conns, 10);
        assert_eq!(c.delay, 2);
        assert_eq!(c.sort, SortKey::BytesTo);
        assert!(c.show_subs && c.raw);
        assert_eq!(c.max_refresh, 3);
        assert_eq!(c.output.as_deref(), Some("out.txt"));
        assert_eq!(c.delimiter.as_deref(), Some(","));
        let c = run_cfg("-ms 8443 -cert c.pem -key k.pem -cacert ca.pem -k -lookup");
        assert_eq!(c.https_port, 8443);
        assert!(c.insecure && c.lookup);
        assert_eq!(run_cfg(""), Config::default());
        assert_eq!(parse_args(&args("-v")), Ok(Cmd::Version));
        assert_eq!(parse_args(&args("--version")), Ok(Cmd::Version));
        assert_eq!(parse_args(&args("-h")), Ok(Cmd::Help));
    }

    #[test]
    fn bad_flags_are_errors() {
        let err = |s: &str| parse_args(&args(s)).expect_err(s);
        assert_eq!(err("-x").msg, "flag provided but not defined: -x");
        assert_eq!(err("-x").code, 2);
        assert_eq!(err("-n").msg, "flag needs an argument: -n");
        assert_eq!(
            err("-n abc").msg,
            "invalid value \"abc\" for flag -n: parse error"
        );
        assert_eq!(err("-m 70000").code, 2);
        assert_eq!(err("-d 0").code, 2);
        let e = err("-sort rtt");
        assert_eq!(e.msg, "nats-top: invalid option to sort by: rtt");
        assert_eq!(e.code, 1);
        assert_eq!(
            err("-b=maybe").msg,
            "invalid boolean value \"maybe\" for -b: parse error"
        );
        assert!(err("stray").msg.contains("unexpected argument"));
        assert!(err("---x").msg.contains("bad flag syntax"));
    }

    #[test]
    fn server_lists() {
        let mut c = Config {
            servers: "a, b:9000,[::1]:7000,::1".into(),
            port: 8222,
            ..Default::default()
        };
        let t = parse_targets(&c).expect("valid");
        let addrs: Vec<String> = t.iter().map(Target::addr).collect();
        assert_eq!(addrs, ["a:8222", "b:9000", "[::1]:7000", "[::1]:8222"]);
        c.https_port = 8443;
        let t = parse_targets(&c).expect("valid");
        assert_eq!(t[0].base_url(), "https://a:8443");
        c.servers = "a:notaport".into();
        assert!(parse_targets(&c).is_err());
        c.servers = ",".into();
        assert!(parse_targets(&c).is_err());
        c.servers = "http://x".into();
        assert!(parse_targets(&c).is_err());
    }
}
