//! `nats server list|info|ping|request` against the Go reference server with a system
//! account user (`sys`) and an ordinary one (`a`). Each scenario takes the server
//! executable, so the same bodies can run against our server once it has `$SYS`.

use crate::cli::{nats, text, TempDir};
use crate::support::{free_port, reference, wait_until, ServerProc};
use std::path::Path;
use std::time::{Duration, Instant};

const ACCOUNTS: &str = "accounts {\n  $SYS { users: [{user: sys, password: sys}] }\n  A { users: [{user: a, password: a}] }\n}\n";

const NOT_SYSTEM: &str =
    "no results received, ensure the account used has system privileges and appropriate permissions";

/// Writes a config file into `dir` and starts `exe` with it.
fn start(exe: &Path, dir: &TempDir, name: &str, conf: &str) -> ServerProc {
    let path = dir.0.join(format!("{name}.conf"));
    std::fs::write(&path, conf).expect("write config");
    let p = path.to_string_lossy().into_owned();
    ServerProc::start(exe, &["-c", &p])
}

/// Runs `nats -s <url> --user <user> --password <user> server <args>`.
fn server_cmd(cfg: &TempDir, url: &str, user: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["-s", url, "--user", user, "--password", user, "server"];
    all.extend_from_slice(args);
    nats(cfg, &all)
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn standalone(exe: &Path) {
    let cfg = TempDir::new();
    let s = start(exe, &cfg, "s1", &format!("server_name: s1\n{ACCOUNTS}"));
    let url = s.url();
    let run = |user: &str, args: &[&str]| server_cmd(&cfg, &url, user, args);

    // ping stops as soon as the one active server answered, well before the timeout.
    let t = Instant::now();
    let o = run("sys", &["ping", "--timeout", "10s"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out} {}", text(&o.stderr));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "ping waited for the timeout"
    );
    let first = out.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("{:<60} rtt=", "s1")), "{out}");
    assert!(
        out.contains("\n---- ping statistics ----\n1 replies max: "),
        "{out}"
    );

    // request variables: the raw VARZ reply.
    let o = run("sys", &["request", "variables"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let replies = json_lines(&text(&o.stdout));
    assert_eq!(replies.len(), 1, "{replies:?}");
    let id = replies[0]["data"]["server_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(id.len(), 56, "{replies:?}");
    assert_eq!(replies[0]["server"]["name"], "s1");

    // ping --id puts the id first.
    let o = run("sys", &["ping", "--id"]);
    assert!(text(&o.stdout).starts_with(&format!("{id} {:<60} rtt=", "s1")));

    // connections always asks for the user names; filters that match nothing give nothing.
    let o = run("sys", &["request", "connections"]);
    let replies = json_lines(&text(&o.stdout));
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0]["data"]["connections"][0]["authorized_user"], "sys",
        "{replies:?}"
    );
    let o = run("sys", &["request", "variables", "--name", "nomatch"]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "");
    let o = run("sys", &["request", "jetstream-health"]);
    let replies = json_lines(&text(&o.stdout));
    assert_eq!(replies[0]["data"]["status"], "ok", "{replies:?}");

    // list: the overview table and the JSON form.
    let o = run("sys", &["list"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("│ Server Overview │") || out.contains(" Server Overview "));
    assert!(out.contains("│ s1 "), "{out}");
    assert!(out.contains("│ 0 Clusters │ 1 Servers │"), "{out}");
    assert!(!out.contains("Cluster Overview"), "{out}");
    let o = run("sys", &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("list --json");
    assert_eq!(v[0]["server"]["name"], "s1");
    assert_eq!(v[0]["statsz"]["active_servers"], 1);

    // info by name and by id.
    for arg in ["s1", id.as_str()] {
        let o = run("sys", &["info", arg]);
        let out = text(&o.stdout);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(
            out.starts_with(&format!("Server information for s1 ({id})\n\nProcess Details:\n\n         Version: 2.9.10\n")),
            "{out}"
        );
        assert!(out.contains("\n   Auth Required: true\n"), "{out}");
    }

    // An ordinary account gets the reference's messages and exit code 1.
    let o = run("a", &["ping"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stdout),
        "503 status from $SYS.REQ.SERVER.PING, ensure a system account is used with appropriate permissions\n"
    );
    for (args, msg) in [
        (&["list"][..], NOT_SYSTEM),
        (&["info", "s1"][..], NOT_SYSTEM),
        (
            &["request", "variables"][..],
            "server request failed, ensure the account used has system privileges and appropriate permissions",
        ),
    ] {
        let o = run("a", args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&o.stderr), format!("nats: error: {msg}\n"), "{args:?}");
        assert_eq!(text(&o.stdout), "", "{args:?}");
    }

    // Bad input: the reference's parse errors.
    let o = run("sys", &["list", "--sort", "bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "nats: error: enum value must be one of name,conns,conn,subs,sub,routes,route,gw,mem,cpu,slow,uptime,rtt, got 'bogus', try --help\n"
    );
    let o = run("sys", &["ping", "two"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        "nats: error: strconv.ParseUint: parsing \"two\": invalid syntax, try --help\n"
    );
}

fn two_node_cluster(exe: &Path) {
    let cfg = TempDir::new();
    let (c1, c2) = (free_port(), free_port());
    let node = |name: &str, own: u16, peer: u16| {
        format!(
            "server_name: {name}\ncluster {{ name: C1, listen: 127.0.0.1:{own}, routes: [nats://127.0.0.1:{peer}] }}\n{ACCOUNTS}"
        )
    };
    let n1 = start(exe, &cfg, "n1", &node("n1", c1, c2));
    let _n2 = start(exe, &cfg, "n2", &node("n2", c2, c1));
    let url = n1.url();
    let run = |args: &[&str]| server_cmd(&cfg, &url, "sys", args);

    // Once both servers know each other (three pings in a row saw both, whichever answered
    // first), ping without EXPECT waits for both.
    let mut last = String::new();
    let mut streak = 0;
    let both = wait_until(Duration::from_secs(20), || {
        let o = run(&["ping", "--timeout", "2s"]);
        last = text(&o.stdout);
        streak = if last.contains("2 replies max:") {
            streak + 1
        } else {
            0
        };
        streak == 3
    });
    assert!(both, "the cluster never answered twice: {last}");
    let t = Instant::now();
    let o = run(&["ping", "--timeout", "10s"]);
    let out = text(&o.stdout);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "ping waited for the timeout: {out}"
    );
    for n in ["n1", "n2"] {
        assert!(out.contains(&format!("{n:<60} rtt=")), "{out}");
    }
    assert!(!out.contains("Missing"), "{out}");

    // list with EXPECT 2: both servers, one cluster of two nodes.
    let o = run(&["list", "2"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    for n in [
        "│ n1 ",
        "│ n2 ",
        "│ 1 Clusters │ 2 Servers │",
        "Cluster Overview",
        "│ C1 ",
    ] {
        assert!(out.contains(n), "{n:?} missing from {out}");
    }

    // request variables 2: one reply per server.
    let o = run(&["request", "variables", "2"]);
    let mut names: Vec<String> = json_lines(&text(&o.stdout))
        .iter()
        .map(|r| r["server"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["n1", "n2"]);

    // info by name reaches the other server through the route.
    let o = run(&["info", "n2"]);
    assert!(
        text(&o.stdout).starts_with("Server information for n2 ("),
        "{}",
        text(&o.stdout)
    );

    // Expecting more servers than exist: ping reports the missing one after the timeout.
    let o = run(&["ping", "3", "--timeout", "1s"]);
    assert!(
        text(&o.stdout).ends_with("\nMissing 1 server(s)\n"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn cli_server_standalone_go() {
    standalone(&reference());
}

#[test]
fn cli_server_cluster_go() {
    two_node_cluster(&reference());
}

#[test]
fn cli_server_standalone_ours() {
    standalone(&crate::support::ours());
}

#[test]
fn cli_server_cluster_ours() {
    two_node_cluster(&crate::support::ours());
}
