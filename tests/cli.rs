//! The `nats` CLI end to end: real processes against a server binary. Every scenario is a
//! function taking the server executable, so the same body runs against the Go reference
//! now and against our own server later.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REFERENCE_SERVER: &str = "/usr/sbin/nats-server";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn reference_server() -> PathBuf {
    let p = PathBuf::from(REFERENCE_SERVER);
    assert!(p.exists(), "reference server missing at {REFERENCE_SERVER}");
    p
}

/// target/<profile>, from target/<profile>/deps/integration-xxx.
fn nats_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let p = dir.join("nats");
    assert!(
        p.exists(),
        "{} not built (cargo build -p nats-cli)",
        p.display()
    );
    p
}

use crate::support::free_port;

fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch directory removed on drop (used as XDG_CONFIG_HOME so contexts are private).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "nats-cli-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process, killed on drop.
struct Server {
    child: Child,
    port: u16,
    cluster_port: u16,
}

impl Server {
    fn start(exe: &Path, extra: &[String]) -> Server {
        Self::start_on(exe, free_port(), 0, extra)
    }

    fn start_on(exe: &Path, port: u16, cluster_port: u16, extra: &[String]) -> Server {
        let child = Command::new(exe)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server");
        let s = Server {
            child,
            port,
            cluster_port,
        };
        assert!(
            poll(WAIT, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "server on {port} did not start"
        );
        s
    }

    /// A member of a cluster whose routes all point at `seed`'s cluster port.
    fn start_clustered(exe: &Path, seed_cluster_port: u16, own_cluster_port: u16) -> Server {
        let extra = vec![
            "-cluster".to_string(),
            format!("nats://127.0.0.1:{own_cluster_port}"),
            "-routes".to_string(),
            format!("nats://127.0.0.1:{seed_cluster_port}"),
            "--cluster_name".to_string(),
            "t".to_string(),
        ];
        Self::start_on(exe, free_port(), own_cluster_port, &extra)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn three_node_cluster(exe: &Path) -> Vec<Server> {
    let seed = free_port();
    let a = Server::start_clustered(exe, seed, seed);
    let b = Server::start_clustered(exe, seed, free_port());
    let c = Server::start_clustered(exe, seed, free_port());
    let _ = (a.cluster_port, b.cluster_port, c.cluster_port);
    vec![a, b, c]
}

fn nats_cmd(cfg: &TempDir) -> Command {
    let mut c = Command::new(nats_bin());
    for k in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_CERT",
        "NATS_KEY",
        "NATS_CA",
        "NATS_TIMEOUT",
        "NATS_CONTEXT",
    ] {
        c.env_remove(k);
    }
    c.env("XDG_CONFIG_HOME", &cfg.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `nats` to completion (killed after the wait limit).
pub(crate) fn nats(cfg: &TempDir, args: &[&str]) -> Output {
    let mut child = nats_cmd(cfg).args(args).spawn().expect("spawn nats");
    let end = Instant::now() + WAIT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "nats {args:?} did not finish; stdout={:?} stderr={:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A long-running `nats` process whose output is collected as it arrives; killed on drop.
pub(crate) struct Bg {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    args: Vec<String>,
}

impl Bg {
    pub(crate) fn start(cfg: &TempDir, args: &[&str]) -> Bg {
        let mut child = nats_cmd(cfg).args(args).spawn().expect("spawn nats");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        for (pipe, sink) in [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                out.clone(),
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                err.clone(),
            ),
        ] {
            if let Some(mut p) = pipe {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = p.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if let Ok(mut s) = sink.lock() {
                            s.push_str(&String::from_utf8_lossy(&buf[..n]));
                        }
                    }
                });
            }
        }
        Bg {
            child,
            out,
            err,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn stdout(&self) -> String {
        self.out.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        self.err.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn wait_stdout(&self, needle: &str) {
        assert!(
            poll(WAIT, || self.stdout().contains(needle)),
            "nats {:?}: {needle:?} never appeared on stdout; stdout={:?} stderr={:?}",
            self.args,
            self.stdout(),
            self.stderr()
        );
    }

    pub(crate) fn wait_stderr(&self, needle: &str) {
        assert!(
            poll(WAIT, || self.stderr().contains(needle)),
            "nats {:?}: {needle:?} never appeared on stderr; stdout={:?} stderr={:?}",
            self.args,
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits for the process to exit and returns its code.
    fn wait_exit(&mut self) -> Option<i32> {
        let end = Instant::now() + WAIT;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return st.code();
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `HH:MM:SS message`.
fn is_log_line(line: &str, message: &str) -> bool {
    let b = line.as_bytes();
    line.len() == message.len() + 9
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' '
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && &line[9..] == message
}

/// Starts `nats sub` and waits until it is subscribed.
fn subscribed(cfg: &TempDir, args: &[&str], subject: &str) -> Bg {
    let bg = Bg::start(cfg, args);
    bg.wait_stderr(&format!("Subscribing on {subject} "));
    bg
}

/// Publishes `body` through `server_url` until `sub` shows it, to ride out interest
/// propagation between cluster members.
fn publish_until_seen(cfg: &TempDir, server_url: &str, subject: &str, body: &str, sub: &Bg) {
    let seen = poll(WAIT, || {
        let o = nats(cfg, &["pub", "-s", server_url, subject, body]);
        o.status.success() && poll(Duration::from_millis(500), || sub.stdout().contains(body))
    });
    assert!(
        seen,
        "{body:?} via {server_url} never reached the subscriber: {:?}",
        sub.stdout()
    );
}

// ---------------------------------------------------------------------------------------
// Scenarios (each takes the server executable)
// ---------------------------------------------------------------------------------------

fn pub_sub_counts(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let mut sub = subscribed(&cfg, &["sub", "-s", &url, "hello", "--count", "5"], "hello");
    let out = nats(
        &cfg,
        &["pub", "-s", &url, "hello", "msg {{Count}}", "--count", "5"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "{err}");
    assert!(
        lines
            .iter()
            .all(|l| is_log_line(l, "Published 5 bytes to \"hello\"")),
        "{err}"
    );
    assert_eq!(sub.wait_exit(), Some(0), "sub --count 5 should exit 0");
    let expected: String = (1..=5)
        .map(|i| format!("[#{i}] Received on \"hello\"\nmsg {i}\n\n"))
        .collect();
    assert_eq!(sub.stdout(), expected);
    assert!(sub
        .stderr()
        .lines()
        .next()
        .is_some_and(|l| is_log_line(l, "Subscribing on hello ")));
}

fn headers_reply_and_raw(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let mut sub = subscribed(&cfg, &["sub", "-s", &url, "h.one", "--count", "1"], "h.one");
    let out = nats(
        &cfg,
        &[
            "pub", "-s", &url, "h.one", "body", "-H", "X-Key:v1", "--reply", "r.1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(sub.wait_exit(), Some(0));
    assert_eq!(
        sub.stdout(),
        "[#1] Received on \"h.one\" with reply \"r.1\"\nX-Key: v1\n\nbody\n\n"
    );
    // --raw prints no start line: publish until the first message ends it (--count 1).
    let mut raw = Bg::start(&cfg, &["sub", "-s", &url, "h.raw", "--count", "1", "--raw"]);
    assert!(poll(WAIT, || {
        let o = nats(&cfg, &["pub", "-s", &url, "h.raw", "rawbody", "-H", "K:v"]);
        o.status.success() && poll(Duration::from_millis(300), || !raw.stdout().is_empty())
    }));
    assert_eq!(raw.wait_exit(), Some(0));
    assert_eq!(raw.stdout(), "rawbody\n");
    assert_eq!(raw.stderr(), "");
    let bad = nats(&cfg, &["pub", "-s", &url, "h.one", "x", "-H", "nocolon"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        text(&bad.stderr),
        "nats: error: invalid header \"nocolon\"\n"
    );
}

fn request_reply(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let mut rep = Bg::start(
        &cfg,
        &[
            "reply",
            "-s",
            &url,
            "svc",
            "pong {{.Request}}",
            "--count",
            "1",
        ],
    );
    // The replier logs nothing until a request arrives: retry while nobody listens yet.
    let mut last = None;
    assert!(poll(WAIT, || {
        let o = nats(&cfg, &["request", "-s", &url, "svc", "hi"]);
        let ok = text(&o.stdout).contains("pong hi");
        last = Some(o);
        ok
    }));
    let o = last.expect("request output");
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "\npong hi\n\n".trim_start_matches('\n'));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(is_log_line(lines[0], "Sending request on \"svc\""), "{err}");
    assert!(lines[1].contains(" Received with rtt "), "{err}");
    assert_eq!(rep.wait_exit(), Some(0));
    assert!(
        rep.stderr().contains("[#0] Received on subject \"svc\":"),
        "{}",
        rep.stderr()
    );
    assert!(rep.stdout().contains("\nhi\n"));
}

fn reply_echo_and_command(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let echo = Bg::start(&cfg, &["reply", "-s", &url, "echo.svc"]);
    echo.wait_stderr("No body or command supplied, enabling echo mode");
    let mut last = String::new();
    assert!(
        poll(WAIT, || {
            let o = nats(&cfg, &["req", "-s", &url, "echo.svc", "hello", "-H", "A:1"]);
            last = text(&o.stderr);
            text(&o.stdout) == "\nhello\n\n"
        }),
        "{last}"
    );
    assert!(last.contains(" A: 1\n"), "{last}");
    assert!(last.contains(" NATS-Reply-Counter: "), "{last}");

    let cmd = Bg::start(
        &cfg,
        &[
            "reply",
            "-s",
            &url,
            "cmd.svc",
            "--command",
            "sh -c 'echo {{1}}:$NATS_REQUEST_BODY'",
        ],
    );
    let mut got = String::new();
    assert!(
        poll(WAIT, || {
            let o = nats(&cfg, &["req", "-s", &url, "cmd.svc", "data", "--raw"]);
            got = text(&o.stdout);
            got == "svc:data\n\n"
        }),
        "{got:?} {}",
        cmd.stderr()
    );
}

fn no_responders_and_timeout(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let o = nats(&cfg, &["request", "-s", &url, "nobody.home", "x"]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(
        err.lines()
            .any(|l| is_log_line(l, "No responders are available")),
        "{err}"
    );

    // A subscriber that never answers: the request times out.
    let _silent = subscribed(&cfg, &["sub", "-s", &url, "silent"], "silent");
    let o = nats(
        &cfg,
        &["request", "-s", &url, "--timeout", "300ms", "silent", "x"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).ends_with("nats: error: nats: timeout\n"),
        "{}",
        text(&o.stderr)
    );
}

fn connection_errors(server: &Path) {
    let cfg = TempDir::new();
    let (p1, p2) = (free_port(), free_port());
    let list = format!("nats://127.0.0.1:{p1},127.0.0.1:{p2}");
    let o = nats(&cfg, &["pub", "-s", &list, "x", "y"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("nats: error: could not connect to any server: "),
        "{err}"
    );
    assert!(
        err.contains(&format!("nats://127.0.0.1:{p1}: "))
            && err.contains(&format!("nats://127.0.0.1:{p2}: ")),
        "{err}"
    );

    // Users with a publish deny rule.
    let conf = cfg.0.join("auth.conf");
    std::fs::write(
        &conf,
        "authorization {\n  users = [\n    {user: a, password: b, permissions: {publish: {deny: [\"secret.>\"]}}}\n  ]\n}\n",
    )
    .expect("write config");
    let s = Server::start(server, &["-c".to_string(), conf.display().to_string()]);
    let url = s.url();
    let bad = format!("nats://a:wrong@127.0.0.1:{}", s.port);
    let o = nats(&cfg, &["pub", "-s", &bad, "x", "y"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "nats: error: nats: Authorization Violation\n"
    );
    let o = nats(
        &cfg,
        &[
            "pub",
            "-s",
            &url,
            "--user",
            "a",
            "--password",
            "b",
            "open",
            "y",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = nats(
        &cfg,
        &[
            "pub",
            "-s",
            &url,
            "--user",
            "a",
            "--password",
            "b",
            "secret.x",
            "y",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.ends_with("nats: error: nats: Permissions Violation for Publish to \"secret.x\"\n"),
        "{err}"
    );
    // Usage errors are one line too.
    let o = nats(&cfg, &["pub"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("nats: error: "));
}

fn bench_pub_sub(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let csv = cfg.0.join("bench.csv");
    let csv_s = csv.display().to_string();
    let o = nats(
        &cfg,
        &[
            "bench",
            "-s",
            &url,
            "bench.t",
            "--pub",
            "2",
            "--sub",
            "2",
            "--msgs",
            "20000",
            "--size",
            "64",
            "--no-progress",
            "--csv",
            &csv_s,
        ],
    );
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.lines().next().is_some_and(|l| is_log_line(
        l,
        "Starting Core NATS pub/sub benchmark [subject=bench.t, multisubject=false, multisubjectmax=0, msgs=20,000, msgsize=64 B, pubs=2, subs=2, pubsleep=0s, subsleep=0s]"
    )), "{err}");
    assert_eq!(
        err.matches("Starting subscriber, expecting 20,000 messages")
            .count(),
        2
    );
    assert_eq!(
        err.matches("Starting publisher, publishing 10,000 messages")
            .count(),
        2
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "", "{out}");
    assert!(
        lines[1].starts_with("NATS Pub/Sub stats: ") && lines[1].ends_with(" MB/sec")
            || lines[1].ends_with(" KB/sec"),
        "{out}"
    );
    assert!(lines[2].starts_with(" Pub stats: "), "{out}");
    assert!(
        lines[3].starts_with("  [1] ") && lines[3].ends_with(" (10000 msgs)"),
        "{out}"
    );
    assert!(lines[5].starts_with("  min "), "{out}");
    assert!(lines[6].starts_with(" Sub stats: "), "{out}");
    assert!(
        lines[7].ends_with(" (20000 msgs)") && lines[8].ends_with(" (20000 msgs)"),
        "{out}"
    );
    assert!(err.contains(&format!("Saved metric data in csv file {csv_s}")));
    let data = std::fs::read_to_string(&csv).expect("csv written");
    let rows: Vec<Vec<&str>> = data.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(
        rows[0].join(","),
        "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs"
    );
    assert_eq!(rows.len(), 5, "{data}");
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[1]).collect();
    assert_eq!(ids, vec!["S0", "S1", "P0", "P1"]);
    let sent: u64 = rows[3..]
        .iter()
        .map(|r| r[2].parse::<u64>().expect("count"))
        .sum();
    for r in &rows[1..] {
        assert_eq!(r.len(), 7);
        assert_eq!(r[0], rows[1][0], "one run id");
        let n: u64 = r[2].parse().expect("count");
        assert_eq!(r[3].parse::<u64>().expect("bytes"), n * 64);
        r[5].parse::<f64>().expect("bytes/sec");
        r[6].parse::<f64>().expect("duration");
    }
    assert_eq!(sent, 20000);
    for r in &rows[1..3] {
        assert_eq!(r[2], "20000", "each subscriber received everything sent");
    }

    // Request/reply mode with latency percentiles.
    let o = nats(
        &cfg,
        &[
            "bench",
            "-s",
            &url,
            "bench.rr",
            "--pub",
            "1",
            "--sub",
            "1",
            "--msgs",
            "300",
            "--request",
            "--reply",
            "--no-progress",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("\nPub stats: "), "{out}");
    assert!(out.contains("Request latency: p50 "), "{out}");

    let o = nats(&cfg, &["bench", "-s", &url, "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("You must have at least one publisher or at least one subscriber")
    );
    let o = nats(
        &cfg,
        &["bench", "-s", &url, "x", "--pub", "1", "--msgs", "0"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "nats: error: number of messages should be greater than 0\n"
    );
}

fn cluster_docs_example(server: &Path) {
    let nodes = three_node_cluster(server);
    let cfg = TempDir::new();
    let (a, b, c) = (nodes[0].url(), nodes[1].url(), nodes[2].url());
    let sub = subscribed(&cfg, &["sub", "-s", &a, "hello"], "hello");
    // Interest reaches the other members asynchronously: probe until it has.
    publish_until_seen(&cfg, &b, "hello", "probe_b", &sub);
    publish_until_seen(&cfg, &c, "hello", "probe_c", &sub);
    for (i, url) in [&a, &b, &c].iter().enumerate() {
        let o = nats(&cfg, &["pub", "-s", url, "hello", &format!("world_{i}")]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let all = format!("{a},{b},{c}");
    let o = nats(
        &cfg,
        &[
            "pub",
            "-s",
            &all,
            "hello",
            "world_all_{{Count}}",
            "--count",
            "10",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for body in (0..3)
        .map(|i| format!("world_{i}\n"))
        .chain((1..=10).map(|i| format!("world_all_{i}\n")))
    {
        sub.wait_stdout(&body);
    }
}

fn failover_to_learned_server(server: &Path) {
    let mut nodes = three_node_cluster(server);
    let cfg = TempDir::new();
    let (a, b) = (nodes[0].url(), nodes[1].url());
    // Make sure the cluster is formed before the subscriber connects, so its first INFO
    // already lists the peers.
    {
        let probe = subscribed(&cfg, &["sub", "-s", &a, "probe"], "probe");
        publish_until_seen(&cfg, &b, "probe", "ready_b", &probe);
        publish_until_seen(&cfg, &nodes[2].url(), "probe", "ready_c", &probe);
    }
    let sub = subscribed(&cfg, &["sub", "-s", &a, "fo"], "fo");
    publish_until_seen(&cfg, &b, "fo", "before", &sub);
    nodes[0].kill();
    sub.wait_stderr("Disconnected due to: ");
    sub.wait_stderr("will attempt reconnect");
    sub.wait_stderr("Reconnected [nats://127.0.0.1:");
    publish_until_seen(&cfg, &b, "fo", "after_failover", &sub);
    let err = sub.stderr();
    assert!(
        err.lines()
            .any(|l| l.len() > 9 && l[9..].starts_with("Reconnected [nats://127.0.0.1:")),
        "{err}"
    );
}

fn contexts(server: &Path) {
    let s = Server::start(server, &[]);
    let cfg = TempDir::new();
    let url = s.url();
    let o = nats(
        &cfg,
        &[
            "context",
            "save",
            "local",
            "--server",
            &url,
            "--description",
            "Local",
            "--select",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let file = cfg.0.join("nats/context/local.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("context file")).expect("json");
    assert_eq!(json["url"], url.as_str());
    assert_eq!(json["description"], "Local");
    assert_eq!(
        std::fs::read_to_string(cfg.0.join("nats/context.txt")).expect("selected"),
        "local"
    );
    let o = nats(&cfg, &["context", "ls"]);
    assert!(text(&o.stdout).contains("local*"), "{}", text(&o.stdout));
    let o = nats(&cfg, &["context", "info", "--json"]);
    assert!(text(&o.stdout).contains(&format!("\"url\": \"{url}\"")));
    // No -s: the selected context supplies the server.
    let sub = subscribed(&cfg, &["sub", "ctx.subj", "--count", "1"], "ctx.subj");
    let o = nats(&cfg, &["pub", "ctx.subj", "via context"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    sub.wait_stdout("via context\n");
    // The selected context cannot be removed; another one can.
    let o = nats(&cfg, &["context", "rm", "local", "-f"]);
    assert_eq!(o.status.code(), Some(1));
    let o = nats(
        &cfg,
        &["context", "add", "other", "--server", "nats://127.0.0.1:1"],
    );
    assert!(o.status.success());
    let o = nats(&cfg, &["--context", "other", "pub", "x", "y"]);
    assert_eq!(o.status.code(), Some(1), "flags pick the named context");
    let o = nats(&cfg, &["context", "rm", "other", "-f"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!cfg.0.join("nats/context/other.json").exists());
}

// ---------------------------------------------------------------------------------------
// Against the reference server
// ---------------------------------------------------------------------------------------

macro_rules! against_reference {
    ($($name:ident => $body:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $body(&reference_server());
            }
        )*
    };
}

against_reference! {
    cli_pub_sub_counts_go => pub_sub_counts,
    cli_headers_reply_raw_go => headers_reply_and_raw,
    cli_request_reply_go => request_reply,
    cli_reply_echo_command_go => reply_echo_and_command,
    cli_no_responders_timeout_go => no_responders_and_timeout,
    cli_connection_errors_go => connection_errors,
    cli_bench_go => bench_pub_sub,
    cli_cluster_docs_example_go => cluster_docs_example,
    cli_failover_go => failover_to_learned_server,
    cli_contexts_go => contexts,
}

/// Each subcommand's help describes what its arguments are for.
#[test]
fn cli_subcommand_help_describes_the_subject() {
    let help = |cmd: &str| {
        let out = Command::new(nats_bin())
            .args([cmd, "--help"])
            .output()
            .expect("run nats");
        assert!(out.status.success(), "nats {cmd} --help");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let subject_line = |text: &str| {
        text.lines()
            .find(|l| {
                l.trim_start().starts_with("<SUBJECT>") || l.trim_start().starts_with("[SUBJECT]")
            })
            .unwrap_or_default()
            .to_string()
    };
    for (cmd, want) in [
        ("pub", "Subject to publish to"),
        ("sub", "Subject to subscribe to"),
        ("request", "The subject to send the request to"),
        ("reply", "Subject to receive requests on"),
        ("bench", "Subject to use for the benchmark"),
    ] {
        let line = subject_line(&help(cmd));
        assert!(line.contains(want), "nats {cmd}: {line:?}");
    }
}
