//! The system account: its internal subscriptions (counted and announced as the
//! reference's), the requests it answers, the events it publishes, and servers of a mixed
//! cluster answering for each other. Everything compared with the reference.

use crate::config::TempDir;
use crate::monitor::keys;
use crate::support::{free_port, ours, reference, start_with_config, wait_until, Raw, ServerProc};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

const CONF: &str = r#"
accounts {
  $SYS: { users: [{user: sys, password: sys}] }
  A: { users: [{user: a, password: a}], exports: [{stream: "foo.>"}, {service: "req.*"}] }
  B: { users: [{user: b, password: b}], imports: [{stream: {account: A, subject: "foo.>"}}, {service: {account: A, subject: "req.*"}}] }
}
"#;

fn start(exe: &Path, conf: &str, extra: &[&str]) -> (ServerProc, TempDir) {
    start_with_config(exe, "system", conf, extra)
}

fn login(port: u16, user: &str) -> Raw {
    crate::support::login(
        port,
        user,
        &format!(
            ",\"no_responders\":true,\"name\":\"{user}-conn\",\"lang\":\"raw\",\"version\":\"1.0\""
        ),
    )
}

/// Sends a request and collects the replies that arrive within `wait` after the first
/// (or until `want` arrived): each as (header block if any, body).
fn request(r: &mut Raw, subject: &str, body: &str, want: usize) -> Vec<(String, String)> {
    let inbox = format!("_INBOX.t{}", free_port());
    r.send(
        format!(
            "SUB {inbox} 99\r\nPUB {subject} {inbox} {}\r\n{body}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut out = Vec::new();
    r.stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    while out.len() < want {
        let Some(l) = r.try_line() else { break };
        let parts: Vec<&str> = l.trim_end().split(' ').collect();
        match parts[0] {
            "MSG" => {
                let n: usize = parts.last().unwrap().parse().unwrap();
                let b = r.bytes(n + 2);
                out.push((String::new(), String::from_utf8_lossy(&b[..n]).into_owned()));
            }
            "HMSG" => {
                let h: usize = parts[parts.len() - 2].parse().unwrap();
                let n: usize = parts.last().unwrap().parse().unwrap();
                let b = r.bytes(n + 2);
                out.push((
                    String::from_utf8_lossy(&b[..h]).into_owned(),
                    String::from_utf8_lossy(&b[h..n]).into_owned(),
                ));
            }
            _ => {}
        }
    }
    r.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    r.send(b"UNSUB 99\r\n");
    r.sync();
    out
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The shape of what a server answers to the system requests a monitoring tool makes.
fn answers(exe: &Path) -> Vec<(String, BTreeSet<String>, Value)> {
    let (s, _d) = start(exe, CONF, &[]);
    let mut sys = login(s.port, "sys");
    let mut a = login(s.port, "a");
    a.send(b"SUB foo.bar 1\r\n");
    a.sync();
    let mut out = Vec::new();
    let mut ask = |r: &mut Raw, what: &str, subject: &str, body: &str| {
        let got = request(r, subject, body, 1);
        let (hdr, body) = got.first().cloned().unwrap_or_default();
        let v = if hdr.is_empty() {
            json(&body)
        } else {
            Value::String(hdr.trim().to_string())
        };
        // Values that must match exactly (the rest varies with ids and times).
        let pick = |p: &str| v.pointer(p).cloned().unwrap_or(Value::Null);
        let fixed = serde_json::json!({
            "error": pick("/error"),
            "conns": pick("/data/num_connections"),
            "statz": pick("/data/account_statz/0/acc"),
            "acc": pick("/data/account_name"),
            "active": pick("/statsz/active_servers"),
            "status": pick("/data/status"),
            "hdr": if hdr.is_empty() { Value::Null } else { v.clone() },
        });
        out.push((what.to_string(), keys(&v), fixed));
    };
    ask(&mut sys, "ping", "$SYS.REQ.SERVER.PING", "");
    ask(&mut sys, "statsz", "$SYS.REQ.SERVER.PING.STATSZ", "{}");
    ask(&mut sys, "varz", "$SYS.REQ.SERVER.PING.VARZ", "");
    ask(
        &mut sys,
        "connz",
        "$SYS.REQ.SERVER.PING.CONNZ",
        "{\"subscriptions\":true,\"auth\":true}",
    );
    ask(&mut sys, "routez", "$SYS.REQ.SERVER.PING.ROUTEZ", "");
    ask(&mut sys, "healthz", "$SYS.REQ.SERVER.PING.HEALTHZ", "");
    ask(
        &mut sys,
        "accountz",
        "$SYS.REQ.SERVER.PING.ACCOUNTZ",
        "{\"account\":\"A\"}",
    );
    ask(
        &mut sys,
        "accountz-none",
        "$SYS.REQ.SERVER.PING.ACCOUNTZ",
        "{\"account\":\"NOPE\"}",
    );
    ask(&mut sys, "bad body", "$SYS.REQ.SERVER.PING.VARZ", "{");
    ask(&mut sys, "jsz", "$SYS.REQ.SERVER.PING.JSZ", "");
    ask(&mut sys, "unknown endpoint", "$SYS.REQ.SERVER.PING.IDZ", "");
    ask(&mut sys, "acc connz", "$SYS.REQ.ACCOUNT.A.CONNZ", "");
    ask(&mut sys, "acc info", "$SYS.REQ.ACCOUNT.A.INFO", "");
    ask(&mut sys, "acc statz", "$SYS.REQ.ACCOUNT.A.STATZ", "");
    ask(&mut sys, "acc conns", "$SYS.REQ.ACCOUNT.A.CONNS", "");
    ask(&mut sys, "acc jsz", "$SYS.REQ.ACCOUNT.A.JSZ", "");
    // An ordinary account reaches its own connections and statistics only.
    ask(&mut a, "import connz", "$SYS.REQ.SERVER.PING.CONNZ", "");
    ask(&mut a, "import statz", "$SYS.REQ.ACCOUNT.PING.STATZ", "");
    ask(&mut a, "no varz", "$SYS.REQ.SERVER.PING.VARZ", "");
    out
}

#[test]
fn system_requests_answer_like_the_reference() {
    let theirs = answers(&reference());
    let ours = answers(&ours());
    for ((what, tk, tv), (_, ok, ov)) in theirs.iter().zip(ours.iter()) {
        let missing: Vec<&String> = tk.difference(ok).collect();
        let extra: Vec<&String> = ok.difference(tk).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{what}: keys missing {missing:?}, extra {extra:?}"
        );
        assert_eq!(ov, tv, "{what}");
    }
}

/// A fresh server's internal subscriptions: the count in /varz and the interest a route
/// peer is told about.
fn fresh(exe: &Path) -> (u64, BTreeSet<String>) {
    let cport = free_port();
    let listen = format!("nats://127.0.0.1:{cport}");
    let mport = free_port().to_string();
    let s = ServerProc::start(exe, &["-m", &mport, "--cluster", &listen]);
    let varz: Value = {
        let out = std::process::Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{mport}/varz")])
            .output()
            .expect("curl");
        json(&String::from_utf8_lossy(&out.stdout))
    };
    let mut r = Raw::connect(cport);
    let info = r.info();
    let cluster = info["cluster"].as_str().unwrap_or_default().to_string();
    r.send(format!("CONNECT {{\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"NFAKE\",\"headers\":true,\"cluster\":\"{cluster}\",\"dynamic\":true}}\r\n").as_bytes());
    r.send(format!("INFO {{\"server_id\":\"NFAKE\",\"server_name\":\"fake\",\"version\":\"2.9.10\",\"proto\":1,\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,\"cluster\":\"{cluster}\",\"max_payload\":1048576}}\r\n").as_bytes());
    let mut interest = BTreeSet::new();
    let id = info["server_id"].as_str().unwrap().to_string();
    assert!(wait_until(T, || {
        match r.try_line() {
            Some(l) if l.starts_with("RS+ ") => {
                // Mask this server's id and name hash.
                let l = l.trim_end().replace(&id, "<id>");
                let masked: Vec<String> = l
                    .split(' ')
                    .map(|w| {
                        let mut t: Vec<&str> = w.split('.').collect();
                        if t.len() >= 3 && (t[1] == "_INBOX" || t[1] == "LATENCY") {
                            let n = if t[1] == "_INBOX" { 2 } else { 3 };
                            if t.len() > n {
                                t[n] = "<hash>";
                            }
                        }
                        t.join(".")
                    })
                    .collect();
                interest.insert(masked.join(" "));
                false
            }
            Some(l) => l.starts_with("PING"),
            None => true,
        }
    }));
    drop(s);
    (varz["subscriptions"].as_u64().unwrap_or(0), interest)
}

#[test]
fn a_fresh_server_holds_the_reference_internal_subscriptions() {
    let (tn, ti) = fresh(&reference());
    let (on, oi) = fresh(&ours());
    // 40 in the system account, 3 imports of the global account, and with a cluster
    // configured (and no other account) its import of the JetStream API.
    assert_eq!(tn, 44, "reference");
    assert_eq!(ti.len(), 39, "reference: {ti:#?}");
    assert_eq!(on, tn);
    assert_eq!(oi, ti);
}

/// Connect and disconnect events seen by a system account subscriber.
fn events(exe: &Path) -> Vec<(BTreeSet<String>, Value)> {
    let (s, _d) = start(exe, CONF, &[]);
    let mut sys = login(s.port, "sys");
    sys.send(b"SUB $SYS.ACCOUNT.*.CONNECT 1\r\nSUB $SYS.ACCOUNT.*.DISCONNECT 2\r\nSUB $SYS.SERVER.*.CLIENT.AUTH.ERR 3\r\n");
    sys.sync();
    let a = login(s.port, "a");
    drop(a);
    let mut bad = Raw::connect(s.port);
    bad.info();
    bad.send(b"CONNECT {\"verbose\":false,\"user\":\"a\",\"pass\":\"wrong\"}\r\n");
    assert_eq!(bad.line(), "-ERR 'Authorization Violation'\r\n");
    assert!(bad.closed_within(T));
    let mut out = Vec::new();
    sys.stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    while out.len() < 3 {
        let Some(l) = sys.try_line() else { break };
        if !l.starts_with("MSG ") {
            continue;
        }
        let n: usize = l.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
        let b = sys.bytes(n + 2);
        let v = json(&String::from_utf8_lossy(&b[..n]));
        let fixed = serde_json::json!({
            "type": v["type"],
            "acc": v["client"]["acc"],
            "user": v["client"]["user"],
            "name": v["client"]["name"],
            "reason": v["reason"],
            "subject": l.split(' ').nth(1).map(|s| {
                let t: Vec<&str> = s.split('.').collect();
                if t.len() > 2 && t[1] == "SERVER" {
                    format!("$SYS.SERVER.<id>.{}", t[3..].join("."))
                } else {
                    s.to_string()
                }
            }),
        });
        out.push((keys(&v), fixed));
    }
    // A disconnect and the next connection's auth error may be published in either order.
    out.sort_by_key(|(_, v)| v["subject"].to_string());
    out
}

#[test]
fn connect_disconnect_and_auth_error_events() {
    let theirs = events(&reference());
    assert_eq!(theirs.len(), 3, "reference: {theirs:?}");
    let ours = events(&ours());
    assert_eq!(ours.len(), theirs.len(), "{ours:?}");
    for ((tk, tv), (ok, ov)) in theirs.iter().zip(ours.iter()) {
        // Our connection closes cleanly where the reference's may see the reset.
        let mut tv = tv.clone();
        let mut ov = ov.clone();
        tv["reason"] = Value::Null;
        ov["reason"] = Value::Null;
        assert_eq!(ov, tv);
        let missing: Vec<&String> = tk.difference(ok).collect();
        let extra: Vec<&String> = ok.difference(tk).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{tv}: missing {missing:?} extra {extra:?}"
        );
    }
}

/// Every server of a mixed cluster answers a PING, and each knows the other.
#[test]
fn a_mixed_cluster_answers_ping_from_every_server() {
    let dir = TempDir::new("sys-cluster");
    let (r1, r2) = (free_port(), free_port());
    let c1 = dir.write(
        "1.conf",
        &format!("{CONF}\nserver_name: n1\ncluster {{ name: t, listen: \"127.0.0.1:{r1}\" }}\n"),
    );
    let c2 = dir.write("2.conf", &format!("{CONF}\nserver_name: n2\ncluster {{ name: t, listen: \"127.0.0.1:{r2}\", routes: [\"nats://127.0.0.1:{r1}\"] }}\n"));
    for (first, second) in [(ours(), reference()), (reference(), ours())] {
        let n1 = ServerProc::start(&first, &["-c", c1.to_str().unwrap()]);
        let _n2 = ServerProc::start(&second, &["-c", c2.to_str().unwrap()]);
        let mut sys = login(n1.port, "sys");
        let mut names = BTreeSet::new();
        let mut active = 0;
        assert!(
            wait_until(Duration::from_secs(20), || {
                let got = request(&mut sys, "$SYS.REQ.SERVER.PING", "", 2);
                names = got
                    .iter()
                    .map(|(_, b)| json(b)["server"]["name"].as_str().unwrap_or("").to_string())
                    .collect();
                active = got
                    .iter()
                    .map(|(_, b)| json(b)["statsz"]["active_servers"].as_u64().unwrap_or(0))
                    .min()
                    .unwrap_or(0);
                names.len() == 2 && active == 2
            }),
            "{}: names {names:?}, active_servers {active}",
            first.display()
        );
    }
}

/// A request's `Accept-Encoding` compresses the answer: the header and the decoded body.
fn compressed(exe: &Path) -> Vec<(String, Value)> {
    let (s, _d) = start(exe, CONF, &[]);
    let mut sys = login(s.port, "sys");
    let mut out = Vec::new();
    for enc in ["snappy", "gzip", "br", ""] {
        let inbox = format!("_INBOX.z{}", free_port());
        let hdr = if enc.is_empty() {
            "NATS/1.0\r\nX: y\r\n\r\n".to_string()
        } else {
            format!("NATS/1.0\r\nAccept-Encoding: {enc}\r\n\r\n")
        };
        sys.send(
            format!(
                "SUB {inbox} 7\r\nHPUB $SYS.REQ.SERVER.PING.HEALTHZ {inbox} {} {}\r\n{hdr}\r\n",
                hdr.len(),
                hdr.len()
            )
            .as_bytes(),
        );
        let l = sys.line();
        let parts: Vec<&str> = l.trim_end().split(' ').collect();
        let (h, n) = if parts[0] == "HMSG" {
            (
                parts[parts.len() - 2].parse().unwrap(),
                parts.last().unwrap().parse().unwrap(),
            )
        } else {
            (0usize, parts.last().unwrap().parse::<usize>().unwrap())
        };
        let b = sys.bytes(n + 2);
        let (head, body) = (
            String::from_utf8_lossy(&b[..h]).into_owned(),
            b[h..n].to_vec(),
        );
        let plain = match enc {
            "snappy" => {
                let mut d = snap::read::FrameDecoder::new(&body[..]);
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut v).expect("snappy");
                v
            }
            "gzip" => {
                let mut d = flate2::read::GzDecoder::new(&body[..]);
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut v).expect("gzip");
                v
            }
            _ => body,
        };
        let v = json(&String::from_utf8_lossy(&plain));
        out.push((head, v["data"].clone()));
        sys.send(b"UNSUB 7\r\n");
        sys.sync();
    }
    out
}

#[test]
fn system_answers_are_compressed_on_request() {
    let theirs = compressed(&reference());
    assert_eq!(
        theirs[0].0, "NATS/1.0\r\nContent-Encoding: snappy\r\n\r\n",
        "reference"
    );
    assert_eq!(compressed(&ours()), theirs);
}
