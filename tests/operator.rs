//! What an operator meets on day one, side by side with the reference: help texts, command
//! line refusals, the PID file, independent debug/trace switches, `max_connections` in a
//! cluster, and a generated cluster name in the banner and /varz.

use crate::config::TempDir;
use crate::support::{free_port, ours, reference, spawn, wait_until, Raw, ServerProc};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// Runs a binary to completion: (exit code, stdout, stderr).
fn run(exe: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    crate::support::run_bounded(exe, args, T)
}

#[test]
fn help_texts_match_the_reference() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let want = run(&reference(), args);
        let got = run(&ours(), args);
        assert_eq!(got, want, "{args:?}");
        assert!(got.1.starts_with("\nUsage: nats-server [options]\n"));
        assert!(got.1.ends_with("TLS help\n\n"));
        assert!(got.1.contains("--cluster_listen <url>"));
    }
    // A bad flag prints the same usage after the error.
    assert_eq!(run(&ours(), &["-bogus"]), run(&reference(), &["-bogus"]));
}

/// The reference lists cipher suites and curves in Go map order (random); compare the text
/// and the sets of names.
#[test]
fn help_tls_prints_and_exits() {
    let (code, want, _) = run(&reference(), &["--help_tls"]);
    assert_eq!(code, Some(0));
    let (code, got, err) = run(&ours(), &["--help_tls"]);
    assert_eq!(code, Some(0), "{err}");
    let sorted = |s: &str| {
        let (head, rest) = s.split_once("Available cipher suites include:\n").unwrap();
        let (ciphers, curves) = rest
            .split_once("\nAvailable curve preferences include:\n")
            .unwrap();
        let set = |t: &str| {
            let mut v: Vec<String> = t.lines().map(str::to_string).collect();
            v.sort();
            v
        };
        (head.to_string(), set(ciphers), set(curves))
    };
    assert_eq!(sorted(&got), sorted(&want));
}

#[test]
fn routes_need_a_cluster_listener() {
    let args = ["-p", "-1", "-routes", "nats://127.0.0.1:1"];
    let want = run(&reference(), &args);
    assert_eq!(
        want,
        (
            Some(1),
            String::new(),
            "nats-server: solicited routes require cluster capabilities, e.g. --cluster\n"
                .to_string()
        )
    );
    assert_eq!(run(&ours(), &args), want);
    // -t without a file to check.
    assert_eq!(run(&ours(), &["-t"]), run(&reference(), &["-t"]));
}

/// The reference leaves its PID file behind on exit, written with mode 0660 (less umask).
#[test]
fn pid_file_stays_after_exit() {
    use std::os::unix::fs::PermissionsExt;
    let mut modes = Vec::new();
    for exe in [reference(), ours()] {
        let dir = TempDir::new("pid");
        let pid = dir.0.join("srv.pid");
        let mut s = ServerProc::start(&exe, &["-P", pid.to_str().unwrap()]);
        assert!(wait_until(T, || std::fs::read_to_string(&pid)
            .is_ok_and(|t| t == s.proc.pid().to_string())));
        modes.push(std::fs::metadata(&pid).unwrap().permissions().mode() & 0o777);
        s.proc.signal(libc::SIGINT);
        assert!(s.proc.wait_exit(T).is_some());
        assert!(pid.exists(), "{}: PID file removed", exe.display());
    }
    assert_eq!(modes[0], modes[1], "modes {:o} {:o}", modes[0], modes[1]);
}

/// Tags of the log lines after a client subscribed.
fn log_tags(exe: &Path, args: &[&str]) -> (bool, bool) {
    let s = ServerProc::start(exe, args);
    let mut r = Raw::connect(s.port);
    r.info();
    r.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n");
    r.sync();
    drop(r);
    let log = || s.proc.log_text();
    let trace = log().contains("[TRC]");
    // Closing the client logs at DBG on both servers when debug is on.
    let _ = s
        .proc
        .wait_log("Client connection closed", Duration::from_secs(2));
    (trace, log().contains("[DBG]"))
}

#[test]
fn trace_and_debug_are_independent_switches() {
    let dir = TempDir::new("trc");
    let conf = dir.write("t.conf", "trace: true\ndebug: false\n");
    let c = conf.to_str().unwrap();
    for (args, want) in [
        (&["-V"][..], (true, false)),
        (&["-c", c][..], (true, false)),
        (&["-D"][..], (false, true)),
        (&["-DV"][..], (true, true)),
    ] {
        assert_eq!(log_tags(&reference(), args), want, "reference {args:?}");
        assert_eq!(log_tags(&ours(), args), want, "ours {args:?}");
    }
}

/// How many of `n` clients opened one after another get `maximum connections exceeded`.
fn refused_of(port: u16, n: usize) -> usize {
    let mut keep = Vec::new();
    let mut refused = 0;
    for _ in 0..n {
        let mut r = Raw::connect(port);
        r.info();
        r.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        let l = r.line();
        if l.starts_with("-ERR 'maximum connections exceeded'") {
            refused += 1;
        } else {
            assert_eq!(l, "PONG\r\n");
        }
        keep.push(r);
    }
    refused
}

fn varz(mport: u16) -> serde_json::Value {
    crate::monitor::try_get(mport, "/varz")
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Routes do not count toward `max_connections`: with two routes and a limit of 5, the
/// sixth client is the only one refused.
#[test]
fn max_connections_counts_clients_only() {
    for exe in [reference(), ours()] {
        let dir = TempDir::new("maxconn");
        let (ca, mport) = (free_port(), free_port());
        let conf = dir.write(
            "a.conf",
            &format!(
                "max_connections: 5\nhttp_port: {mport}\ncluster {{ name: mc, listen: \"127.0.0.1:{ca}\" }}\n"
            ),
        );
        let a = ServerProc::start(&exe, &["-c", conf.to_str().unwrap()]);
        let route = format!("nats://127.0.0.1:{ca}");
        let peers: Vec<ServerProc> = (0..2)
            .map(|_| {
                let listen = format!("nats://127.0.0.1:{}", free_port());
                ServerProc::start(
                    &exe,
                    &[
                        "--cluster",
                        &listen,
                        "--cluster_name",
                        "mc",
                        "--routes",
                        &route,
                    ],
                )
            })
            .collect();
        assert!(
            wait_until(T, || varz(mport)["routes"] == 2),
            "{}",
            a.proc.log_text()
        );
        assert_eq!(refused_of(a.port, 6), 1, "{}", exe.display());
        drop(peers);
    }
}

/// The `  Cluster:  <name>` banner line of a log.
fn banner_cluster(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        l.split_once("[INF]   Cluster:  ")
            .map(|(_, n)| n.to_string())
    })
}

fn info_cluster(port: u16) -> String {
    let mut r = Raw::connect(port);
    r.info()["cluster"].as_str().unwrap_or_default().to_string()
}

/// A server without `--cluster_name` shows its generated name in the banner, INFO and /varz;
/// when two such servers meet they agree on one (the higher-sorting name wins) and show that.
/// (The reference builds its /varz object once, at the first /varz request, so /varz is read
/// here only after the agreement, where both servers answer alike.)
#[test]
fn generated_cluster_name_in_banner_and_varz() {
    for exe in [reference(), ours()] {
        let (ca, cb, ma, mb) = (free_port(), free_port(), free_port(), free_port());
        let (la, lb) = (
            format!("nats://127.0.0.1:{ca}"),
            format!("nats://127.0.0.1:{cb}"),
        );
        let (ma_s, mb_s) = (ma.to_string(), mb.to_string());
        let a = ServerProc::start(&exe, &["--cluster", &la, "-m", &ma_s]);
        assert!(a.proc.wait_log("Server is ready", T));
        let name_a = banner_cluster(&a.proc.log_text()).expect("banner Cluster: line");
        assert_eq!(name_a.len(), 22);
        assert_eq!(info_cluster(a.port), name_a);
        assert!(a
            .proc
            .wait_log(&format!("[INF] Cluster name is {name_a}"), T));
        let b = ServerProc::start(&exe, &["--cluster", &lb, "-m", &mb_s, "--routes", &la]);
        assert!(b.proc.wait_log("Server is ready", T));
        let name_b = banner_cluster(&b.proc.log_text()).expect("banner Cluster: line");
        let agreed = name_a.clone().max(name_b.clone());
        assert!(
            wait_until(T, || info_cluster(a.port) == agreed
                && info_cluster(b.port) == agreed),
            "{}: {name_a} {name_b}\n{}\n{}",
            exe.display(),
            a.proc.log_text(),
            b.proc.log_text()
        );
        let loser = if agreed == name_a { &b } else { &a };
        assert!(loser
            .proc
            .wait_log(&format!("[INF] Cluster name updated to {agreed}"), T));
        assert_eq!(varz(ma)["cluster"]["name"], agreed.as_str());
        assert_eq!(varz(mb)["cluster"]["name"], agreed.as_str());
    }
}

/// /varz names the generated cluster name of a server that has no peers yet.
#[test]
fn generated_cluster_name_in_varz() {
    for exe in [reference(), ours()] {
        let (c, m) = (free_port(), free_port());
        let (l, ms) = (format!("nats://127.0.0.1:{c}"), m.to_string());
        let s = ServerProc::start(&exe, &["--cluster", &l, "-m", &ms]);
        assert!(s.proc.wait_log("Server is ready", T));
        let name = banner_cluster(&s.proc.log_text()).expect("banner Cluster: line");
        assert!(wait_until(T, || varz(m)["cluster"]["name"] == name.as_str()));
    }
}

/// The generated name is also in INFO from the start; a configured name without a cluster
/// listener is shown alike.
#[test]
fn cluster_name_without_listener() {
    for exe in [reference(), ours()] {
        let m = free_port();
        let ms = m.to_string();
        let s = spawn(&exe, &["-p", "-1", "-m", &ms, "--cluster_name", "solo"]);
        assert!(s.wait_log("Server is ready", T));
        assert_eq!(banner_cluster(&s.log_text()).as_deref(), Some("solo"));
        assert_eq!(varz(m)["cluster"], serde_json::json!({"name": "solo"}));
    }
}
