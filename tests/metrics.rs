//! `/metrics`: a real Prometheus (Debian's `prometheus` package) scrapes our server and its
//! query API answers with prometheus-nats-exporter's names and /varz's figures; `promtool
//! check metrics` finds only the `_total` naming lints the exporter's names trip; bad input,
//! HEAD, HTTPS and a scrape during shutdown are answered cleanly.

use crate::monitor::try_get;
use crate::support::{free_port, ours, spawn, wait_until, Proc, Raw, ServerProc};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

fn need(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} missing: run the README's test command, which installs Debian's prometheus package"
    );
}

/// One HTTP exchange with any method and extra headers; the raw head and the body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head, raw[split + 4..].to_vec()))
}

/// A server with the monitor on a free port, up and answering /healthz.
fn server(extra: &[&str]) -> (ServerProc, u16) {
    let http = free_port();
    let hp = http.to_string();
    let mut args = vec!["-m", hp.as_str()];
    args.extend_from_slice(extra);
    let srv = ServerProc::start(&ours(), &args);
    assert!(
        wait_until(T, || try_get(http, "/healthz")
            .is_some_and(|r| r.status == 200)),
        "monitor did not come up; log:\n{}",
        srv.proc.log_text()
    );
    (srv, http)
}

fn varz(http: u16) -> Value {
    let r = try_get(http, "/varz").expect("GET /varz");
    serde_json::from_str(&r.body).expect("varz json")
}

/// `conns` idle clients (kept open by the caller) and `msgs` messages from one of them to a
/// subscriber on another.
fn traffic(port: u16, conns: usize, msgs: usize) -> Vec<Raw> {
    let mut out = Vec::new();
    for _ in 0..conns {
        let mut c = Raw::connect(port);
        c.info();
        c.send(b"CONNECT {\"verbose\":false}\r\n");
        c.sync();
        out.push(c);
    }
    out[0].send(b"SUB metrics.test 1\r\n");
    out[0].sync();
    let mut batch = Vec::new();
    for i in 0..msgs {
        batch.extend_from_slice(format!("PUB metrics.test 4\r\nm{:03}\r\n", i % 1000).as_bytes());
    }
    out[1].send(&batch);
    out[1].sync();
    let mut got = 0;
    assert!(
        wait_until(T, || {
            got += out[0]
                .sync()
                .iter()
                .filter(|l| l.starts_with("MSG "))
                .count();
            got == msgs
        }),
        "subscriber got {got} of {msgs}"
    );
    out
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "nats-it-{}-{tag}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Prometheus scraping `targets` (job name, metrics path with query, port) every 500 ms,
/// its storage in a temp dir; killed (with its storage removed) when dropped.
struct Prometheus {
    proc: Proc,
    port: u16,
    _dir: TempDir,
}

impl Prometheus {
    fn start(targets: &[(&str, &str, u16)]) -> Prometheus {
        need(PROMETHEUS);
        let dir = TempDir::new("prometheus");
        let mut cfg = String::from(
            "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\n  evaluation_interval: 500ms\nscrape_configs:\n",
        );
        for (job, path, port) in targets {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            cfg.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            ));
            if let Some((k, v)) = query.split_once('=') {
                cfg.push_str(&format!("    params:\n      {k}: ['{v}']\n"));
            }
        }
        let cfg_path = dir.0.join("prometheus.yml");
        std::fs::write(&cfg_path, cfg).expect("config");
        let port = free_port();
        let proc = spawn(
            Path::new(PROMETHEUS),
            &[
                &format!("--config.file={}", cfg_path.display()),
                &format!("--storage.tsdb.path={}", dir.0.join("data").display()),
                &format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn",
            ],
        );
        let p = Prometheus {
            proc,
            port,
            _dir: dir,
        };
        assert!(
            wait_until(T, || try_get(port, "/-/ready")
                .is_some_and(|r| r.status == 200)),
            "prometheus did not become ready; log:\n{}",
            p.proc.log_text()
        );
        p
    }

    /// The instant vector of `expr`: (labels, value) per series.
    fn query(&self, expr: &str) -> Vec<(Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent(expr));
        let Some(r) = try_get(self.port, &path) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&r.body).unwrap_or_default();
        v["data"]["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let val = s["value"][1].as_str().and_then(|x| x.parse().ok());
                        (s["metric"].clone(), val.unwrap_or(f64::NAN))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `expr` has exactly one series with value `want`.
    fn wait_value(&self, expr: &str, want: f64) -> Value {
        let mut last = Vec::new();
        let ok = wait_until(T, || {
            last = self.query(expr);
            last.len() == 1 && last[0].1 == want
        });
        assert!(
            ok,
            "{expr}: wanted {want}, Prometheus says {last:?}; log:\n{}",
            self.proc.log_text()
        );
        last[0].0.clone()
    }
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn prometheus_scrapes_the_exporters_names_with_varz_figures() {
    let (srv, http) = server(&[]);
    let _clients = traffic(srv.port, 5, 37);
    let v = varz(http);
    let (conns, in_msgs) = (
        v["connections"].as_f64().unwrap(),
        v["in_msgs"].as_f64().unwrap(),
    );
    assert_eq!((conns, in_msgs), (5.0, 37.0), "{v:#}");
    let id = v["server_id"].as_str().unwrap().to_string();

    let prom = Prometheus::start(&[
        ("nats", "/metrics", http),
        ("nats_prefixed", "/metrics?prefix=nats", http),
    ]);
    // The figures /varz gives, under the exporter's names, labelled with our server id.
    let labels = prom.wait_value("gnatsd_varz_connections{job=\"nats\"}", conns);
    assert_eq!(labels["server_id"], id.as_str(), "{labels}");
    prom.wait_value("gnatsd_varz_in_msgs{job=\"nats\"}", in_msgs);
    prom.wait_value(
        "gnatsd_varz_out_msgs{job=\"nats\"}",
        v["out_msgs"].as_f64().unwrap(),
    );
    prom.wait_value("nats_varz_in_msgs", in_msgs);
    prom.wait_value("gnatsd_connz_num_connections", conns);
    prom.wait_value("gnatsd_connz_total", conns);
    // A counter keeps its name although Prometheus negotiates OpenMetrics.
    prom.wait_value("gnatsd_connz_in_msgs", in_msgs);
    prom.wait_value("gnatsd_routez_num_routes", 0.0);
    let subsz: Value = serde_json::from_str(&try_get(http, "/subsz").unwrap().body).unwrap();
    prom.wait_value(
        "gnatsd_subsz_num_subscriptions",
        subsz["num_subscriptions"].as_f64().unwrap(),
    );
    prom.wait_value("gnatsd_healthz_status", 0.0);
    prom.wait_value("gnatsd_healthz_status_value{value=\"ok\"}", 1.0);
    prom.wait_value("gnatsd_accstatz_current_connections{account=\"$G\"}", conns);
    prom.wait_value("gnatsd_leafz_conn_nodes_total", 0.0);
    prom.wait_value("jetstream_server_jetstream_disabled", 1.0);
    prom.wait_value("nats_server_jetstream_disabled", 1.0);
    prom.wait_value(&format!("gnatsd_varz_server_id{{value=\"{id}\"}}"), 1.0);
    prom.wait_value("up{job=\"nats\"}", 1.0);
    prom.wait_value("up{job=\"nats_prefixed\"}", 1.0);
    // Prometheus negotiated OpenMetrics (the counters arrive typed `unknown`, see above) and
    // kept the gauges' types.
    for (metric, want) in [
        ("gnatsd_connz_in_msgs", "unknown"),
        ("gnatsd_varz_in_msgs", "gauge"),
    ] {
        let path = format!("/api/v1/targets/metadata?metric={metric}");
        let mut last = String::new();
        assert!(
            wait_until(T, || {
                last = try_get(prom.port, &path)
                    .map(|r| r.body)
                    .unwrap_or_default();
                let v: Value = serde_json::from_str(&last).unwrap_or_default();
                v["data"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|m| m["type"] == want))
            }),
            "{metric} metadata: {last}"
        );
    }

    // The queries of the exporter's example Grafana dashboard (walkthrough/grafana-nats-dash.json)
    // all return data for this server alone.
    for q in [
        "gnatsd_varz_cpu",
        "gnatsd_varz_mem",
        "rate(gnatsd_varz_in_bytes[1m])",
        "rate(gnatsd_varz_in_msgs[1m])",
        "rate(gnatsd_varz_out_bytes[1m])",
        "rate(gnatsd_varz_out_msgs[1m])",
        "gnatsd_varz_connections",
        "gnatsd_varz_subscriptions",
        "gnatsd_varz_slow_consumers",
    ] {
        let mut last = Vec::new();
        assert!(
            wait_until(T, || {
                last = prom.query(q);
                last.iter().any(|(l, _)| l["server_id"] == id.as_str())
            }),
            "dashboard query {q} returned {last:?}"
        );
    }
    drop(prom);
    drop(srv);
}

#[test]
fn promtool_finds_only_the_exporters_total_lints() {
    need(PROMTOOL);
    let (srv, http) = server(&["--cluster_name", "c1"]);
    let _clients = traffic(srv.port, 2, 3);
    let (status, head, body) = request(http, "GET", "/metrics", &[]).expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for p in &problems {
        assert!(
            p.contains("\"_total\" suffix"),
            "promtool found a problem other than the _total lints: {p}\n{text}"
        );
    }
    // The ones the exporter's own names trip are there.
    for name in [
        "gnatsd_connz_in_msgs",
        "gnatsd_connz_total",
        "gnatsd_leafz_conn_nodes_total",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(name)),
            "no lint for {name}: {text}"
        );
    }
}

#[test]
fn metrics_formats_and_bad_input() {
    let (srv, http) = server(&[]);
    let id = varz(http)["server_id"].as_str().unwrap().to_string();

    // Unknown parameters are ignored, as on the other endpoints.
    let (st, _, body) = request(http, "GET", "/metrics?foo=bar&callback=x&prefix=", &[]).unwrap();
    assert_eq!(st, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains(&format!(
            "gnatsd_varz_connections{{server_id=\"{id}\"}} 0\n"
        )),
        "{body}"
    );
    assert!(
        body.contains("# TYPE gnatsd_connz_in_msgs counter\n"),
        "{body}"
    );

    // The prefix replaces both namespaces; a bad one is a 400, not a broken exposition.
    let (st, _, body) = request(http, "GET", "/metrics?prefix=nats", &[]).unwrap();
    assert_eq!(st, 200);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("\nnats_varz_in_msgs{"), "{body}");
    assert!(body.contains("\nnats_server_jetstream_disabled{"), "{body}");
    assert!(!body.contains("gnatsd_"), "{body}");
    for bad in ["9x", "a-b", "a%20b", "%FF"] {
        let (st, _, body) = request(http, "GET", &format!("/metrics?prefix={bad}"), &[]).unwrap();
        assert_eq!(st, 400, "prefix {bad}: {}", String::from_utf8_lossy(&body));
    }

    // OpenMetrics when asked for it.
    let (st, head, body) = request(
        http,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
    )
    .unwrap();
    assert_eq!(st, 200);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let body = String::from_utf8(body).unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE gnatsd_varz_in_msgs gauge\n"),
        "{body}"
    );
    // Garbage in Accept gets the classic format.
    let (st, head, _) = request(http, "GET", "/metrics", &[("Accept", ";;q=z,,/")]).unwrap();
    assert_eq!(st, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );

    // HEAD: headers only; other methods are answered as GET, as on every endpoint.
    let (st, head, body) = request(http, "HEAD", "/metrics", &[]).unwrap();
    assert_eq!(st, 200, "{head}");
    assert!(body.is_empty(), "HEAD got a body");
    let (st, _, body) = request(http, "POST", "/metrics", &[("Content-Length", "0")]).unwrap();
    assert_eq!(st, 200);
    assert!(!body.is_empty());

    // Listed on the index page; counted in /varz like the other endpoints.
    assert!(try_get(http, "/")
        .unwrap()
        .body
        .contains("<a href=./metrics>"));
    assert!(varz(http)["http_req_stats"]["/metrics"].as_u64().unwrap() >= 5);
    drop(srv);
}

#[test]
fn scrapes_during_shutdown_never_panic() {
    let (srv, http) = server(&[]);
    let _clients = traffic(srv.port, 3, 10);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut scrapers = Vec::new();
    for _ in 0..4 {
        let stop = stop.clone();
        scrapers.push(std::thread::spawn(move || {
            let mut ok = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some((st, _, _)) = request(http, "GET", "/metrics", &[]) {
                    assert!(st == 200 || st == 503, "status {st}");
                    ok += 1;
                }
            }
            ok
        }));
    }
    assert!(wait_until(T, || varz(http)["http_req_stats"]["/metrics"]
        .as_u64()
        .unwrap_or(0)
        >= 20));
    let mut srv = srv;
    srv.proc.signal(libc::SIGTERM);
    let code = srv.proc.wait_exit(T);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: usize = scrapers
        .into_iter()
        .map(|t| t.join().expect("scraper"))
        .sum();
    let log = srv.proc.log_text();
    assert_eq!(code, Some(0), "exit; log:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(answered >= 20);
}

#[test]
fn https_monitor_serves_metrics() {
    let pki = crate::tls::pki();
    let https = free_port();
    let hp = https.to_string();
    let cert = pki.server_cert.to_string_lossy().into_owned();
    let key = pki.server_key.to_string_lossy().into_owned();
    let srv = ServerProc::start(
        &ours(),
        &["-ms", &hp, "--tls", "--tlscert", &cert, "--tlskey", &key],
    );
    let url = format!("https://127.0.0.1:{https}/metrics");
    let ca = pki.ca.to_string_lossy().into_owned();
    let mut body = String::new();
    let ok = wait_until(T, || {
        Command::new("curl")
            .args(["-s", "--max-time", "5", "--cacert", &ca, &url])
            .output()
            .is_ok_and(|o| {
                body = String::from_utf8_lossy(&o.stdout).into_owned();
                o.status.success() && !body.is_empty()
            })
    });
    assert!(ok, "no HTTPS answer; log:\n{}", srv.proc.log_text());
    assert!(body.contains("gnatsd_varz_https_port{server_id="), "{body}");
}
