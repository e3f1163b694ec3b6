//! nats-top against the Go reference server: `-o` snapshots, flag errors, and an interactive run
//! inside tmux that survives the server going away and coming back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const REFERENCE_SERVER: &str = "/usr/sbin/nats-server";
const WAIT: Duration = Duration::from_secs(15);

/// Directory of the built binaries: the test runs as target/<profile>/deps/<name>-<hash>.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf()
}

fn nats_top() -> PathBuf {
    let p = bin_dir().join("nats-top");
    assert!(p.exists(), "{} not built", p.display());
    p
}

use crate::support::free_port;

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `f` until it returns Some or `WAIT` passes.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A GET over a plain TCP socket, enough for the monitoring port.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// A reference server on fixed (free) ports, killed on drop.
struct RefServer {
    child: Option<Child>,
    port: u16,
    mon: u16,
}

impl RefServer {
    fn start(port: u16, mon: u16) -> RefServer {
        let child = Command::new(REFERENCE_SERVER)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &mon.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start reference nats-server");
        let s = RefServer {
            child: Some(child),
            port,
            mon,
        };
        wait_for("reference server /varz", || {
            http_get(mon, "/varz").filter(|b| b.contains("\"server_id\""))
        });
        s
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A raw protocol client: CONNECT with a name, then whatever lines the test sends.
struct RawClient {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl RawClient {
    fn connect(port: u16, name: &str) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut info = String::new();
        reader.read_line(&mut info).expect("INFO");
        assert!(info.starts_with("INFO "), "{info}");
        let mut c = RawClient { stream, reader };
        c.send(&format!(
            "CONNECT {{\"name\":\"{name}\",\"lang\":\"raw\",\"version\":\"9.9\",\"verbose\":false,\"pedantic\":false}}\r\n"
        ));
        c
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).expect("write");
    }

    /// PING and read until PONG, so everything sent before has been processed.
    fn flush(&mut self) {
        self.send("PING\r\n");
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read");
            assert!(n > 0, "server closed the connection");
            if line == "PONG\r\n" {
                return;
            }
        }
    }
}

/// Two clients: `top-sub` subscribed to `foo` and `top-pub` that published 3 × 5 bytes to it.
fn make_traffic(port: u16) -> (RawClient, RawClient) {
    let mut sub = RawClient::connect(port, "top-sub");
    sub.send("SUB foo 1\r\n");
    sub.flush();
    let mut publ = RawClient::connect(port, "top-pub");
    for _ in 0..3 {
        publ.send("PUB foo 5\r\nhello\r\n");
    }
    publ.flush();
    sub.flush();
    (sub, publ)
}

fn run_top(args: &[&str]) -> Output {
    Command::new(nats_top())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nats-top")
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(name: &str) -> TempFile {
    TempFile(std::env::temp_dir().join(unique(name)))
}

/// Whitespace-split cells of the table row for the connection named `name`.
fn row_cells(text: &str, name: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{text}"));
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn top_snapshot_against_reference_server() {
    let server = RefServer::start(free_port(), free_port());
    let _clients = make_traffic(server.port);
    let out = temp_file("top-snapshot");
    let path = out.0.to_string_lossy().to_string();
    let mon = server.mon.to_string();
    let res = run_top(&[
        "-s",
        "127.0.0.1",
        "-m",
        &mon,
        "-o",
        &path,
        "-u",
        "-sort",
        "msgs_to",
    ]);
    assert!(
        res.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("snapshot written");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("NATS server version 2.9.10 (uptime: "),
        "{text}"
    );
    assert!(lines[2].starts_with("  ID:   N"), "{text}");
    assert!(lines[3].starts_with("  Load: CPU:  "), "{text}");
    // 3 messages in from the publisher, 3 out to the subscriber.
    assert!(
        lines[4].starts_with("  In:   Msgs: 3  Bytes: 15  Msgs/Sec: 0.0"),
        "{text}"
    );
    assert!(
        lines[5].starts_with("  Out:  Msgs: 3  Bytes: 15  Msgs/Sec: 0.0"),
        "{text}"
    );
    assert_eq!(lines[7], "Connections Polled: 2");
    assert!(
        lines[8].starts_with("  HOST             CID    NAME"),
        "{text}"
    );
    assert!(lines[8]
        .trim_end()
        .ends_with("LAST_ACTIVITY                             SUBSCRIPTIONS"));
    // Sorted by msgs_to: the subscriber first.
    assert!(lines[9].contains("top-sub"), "{text}");
    let sub = row_cells(&text, "top-sub");
    // HOST CID NAME SUBS PENDING MSGS_TO MSGS_FROM BYTES_TO BYTES_FROM LANG VERSION UPTIME date time zone UTC subs
    assert_eq!(&sub[3..11], ["1", "0", "3", "0", "15", "0", "raw", "9.9"]);
    assert_eq!(sub[14], "+0000");
    assert_eq!(sub[15], "UTC");
    assert_eq!(sub[16], "foo");
    let publ = row_cells(&text, "top-pub");
    assert_eq!(&publ[3..9], ["0", "0", "0", "3", "0", "15"]);
    assert!(publ[0].starts_with("127.0.0.1:"));

    // The delimited form carries the same numbers.
    let res = run_top(&["-s", "127.0.0.1", "-m", &mon, "-o", "-", "-l", ";"]);
    assert!(res.status.success());
    let text = String::from_utf8_lossy(&res.stdout);
    assert!(
        text.starts_with("NATS server version;2.9.10;(uptime: "),
        "{text}"
    );
    assert!(text.contains("\nConnections Polled:;2\n"), "{text}");
    assert!(text.contains(";top-sub;1;0;3;0;15;0;raw;9.9;"), "{text}");
}

#[test]
fn top_snapshot_of_unreachable_server_fails_cleanly() {
    let out = temp_file("top-unreachable");
    let path = out.0.to_string_lossy().to_string();
    let port = free_port().to_string();
    let res = run_top(&["-m", &port, "-o", &path]);
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("could not get stats from server"), "{err}");
    assert!(!err.contains("panicked"));
    assert!(!out.0.exists());
}

#[test]
fn top_bad_flags_exit_non_zero() {
    for (args, want, code) in [
        (&["-bogus"][..], "flag provided but not defined: -bogus", 2),
        (
            &["-n", "many"][..],
            "invalid value \"many\" for flag -n: parse error",
            2,
        ),
        (&["-m"][..], "flag needs an argument: -m", 2),
        (
            &["-sort", "nope"][..],
            "nats-top: invalid option to sort by: nope",
            1,
        ),
    ] {
        let res = run_top(args);
        assert_eq!(res.status.code(), Some(code), "{args:?}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(err.lines().next(), Some(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
}

/// A tmux session killed on drop.
struct Tmux {
    name: String,
}

impl Tmux {
    fn tmux(args: &[&str]) -> Output {
        Command::new("tmux").args(args).output().expect("run tmux")
    }

    fn start(command: &str) -> Tmux {
        let name = unique("ntop-e2e");
        let out = Self::tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "200",
            "-y",
            "50",
            command,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = Tmux { name };
        // Keep the pane after nats-top exits so its exit status can be checked.
        Self::tmux(&["set-option", "-t", &t.name, "remain-on-exit", "on"]);
        t
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&Self::tmux(&["capture-pane", "-p", "-t", &self.name]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &str) {
        Self::tmux(&["send-keys", "-t", &self.name, keys]);
    }

    fn wait_screen(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.capture();
            if f(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// `(dead, exit status)` of the pane.
    fn pane_state(&self) -> (bool, String) {
        let out = Self::tmux(&[
            "list-panes",
            "-t",
            &self.name,
            "-F",
            "#{pane_dead} #{pane_dead_status}#{pane_dead_signal}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut parts = text.split_whitespace();
        let dead = parts.next() == Some("1");
        (dead, parts.next().unwrap_or("").to_string())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Self::tmux(&["kill-session", "-t", &self.name]);
    }
}

#[test]
fn top_interactive_in_tmux_survives_server_restart() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux missing: run the README's test command, which installs it"
    );
    let (port, mon) = (free_port(), free_port());
    let mut server = RefServer::start(port, mon);
    let clients = make_traffic(port);
    // The shell records nats-top's exit status in a file: tmux's own pane status can read
    // as empty for a moment after the pane dies.
    let status_file = std::env::temp_dir().join(unique("ntop-status"));
    let cmd = format!(
        "sh -c '{} -s 127.0.0.1 -m {mon} -d 1; echo $? > {}'",
        nats_top().display(),
        status_file.display()
    );
    let tmux = Tmux::start(&cmd);

    let screen = tmux.wait_screen("first poll", |s| {
        s.contains("NATS server version 2.9.10 (uptime: ") && s.contains("Connections Polled: 2")
    });
    assert!(
        screen.contains("top-sub") && screen.contains("top-pub"),
        "{screen}"
    );

    // Subscriptions column and the help screen.
    tmux.keys("s");
    tmux.wait_screen("SUBSCRIPTIONS column", |s| s.contains("SUBSCRIPTIONS"));
    tmux.keys("?");
    tmux.wait_screen("help", |s| {
        s.contains("cluster view") && s.contains("q   quit")
    });
    tmux.keys("x");
    tmux.wait_screen("back from help", |s| s.contains("Connections Polled: 2"));

    // Cluster view with the one server up.
    tmux.keys("c");
    tmux.wait_screen("cluster view", |s| {
        s.contains("Cluster: 1 servers (1 up)") && s.contains(&format!("127.0.0.1:{mon}"))
    });
    tmux.keys("c");
    tmux.wait_screen("main view", |s| s.contains("Connections Polled"));

    // Server gone: nats-top keeps running and says so.
    drop(clients);
    server.stop();
    let screen = tmux.wait_screen("DOWN notice", |s| s.contains("DOWN:"));
    assert!(screen.contains("not answering"), "{screen}");
    assert!(
        !tmux.pane_state().0,
        "nats-top exited while the server was down"
    );

    // Same ports again: the screen recovers.
    let _server = RefServer::start(port, mon);
    tmux.wait_screen("recovery", |s| {
        !s.contains("DOWN:")
            && s.contains("NATS server version 2.9.10 (uptime: ")
            && s.contains("Connections Polled: 0")
    });

    tmux.keys("q");
    let status = wait_for("nats-top to exit", || {
        std::fs::read_to_string(&status_file)
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    let _ = std::fs::remove_file(&status_file);
    assert_eq!(status.trim(), "0", "nats-top exit status");
}
