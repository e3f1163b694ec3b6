//! Accounts: nothing crosses an account boundary without an import; stream and service
//! imports, mappings, and the same across a cluster mixed with the reference. Each
//! scenario runs against both servers and the transcripts are compared.

use crate::config::TempDir;
use crate::support::{free_port, ours, reference, start_with_config, wait_until, Raw, ServerProc};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

const TWO_ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [{user: a, password: a}]
    exports: [
      {stream: "foo.>"}
      {service: "req.*"}
      {service: "stream.req", response: "stream"}
    ]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [
      {stream: {account: A, subject: "foo.>"}, prefix: "from_a"}
      {service: {account: A, subject: "req.x"}, to: "ask"}
      {service: {account: A, subject: "stream.req"}}
    ]
  }
  C: { users: [{user: c, password: c}] }
}
authorization { users: [{user: g, password: g}] }
mappings: { "m.*": "n.$1" }
"#;

fn start(exe: &Path, conf: &str) -> (ServerProc, TempDir) {
    start_with_config(exe, "accounts", conf, &[])
}

/// A raw client logged in as `user` (password = user name), with headers on.
fn login(port: u16, user: &str) -> Raw {
    crate::support::login(port, user, "")
}

/// Everything `r` received until a round trip, as sorted lines (the order among one
/// connection's own matching subscriptions is not fixed).
fn received(r: &mut Raw) -> Vec<String> {
    let mut v = r.sync();
    v.sort();
    v
}

/// Publishes as `user` on a connection of its own and waits until the server handled it.
fn publish(port: u16, user: &str, bytes: &[u8]) {
    let mut p = login(port, user);
    p.send(bytes);
    let got = p.sync();
    assert!(got.is_empty(), "publishing as {user}: {got:?}");
}

fn isolation(exe: &Path) -> Vec<Vec<String>> {
    let (s, _d) = start(exe, TWO_ACCOUNTS);
    let mut a = login(s.port, "a");
    let mut b = login(s.port, "b");
    let mut c = login(s.port, "c");
    let mut g = login(s.port, "g");
    for (r, sid) in [(&mut b, "1"), (&mut c, "2"), (&mut g, "3"), (&mut a, "4")] {
        r.send(format!("SUB > {sid}\r\n").as_bytes());
        r.sync();
    }
    publish(s.port, "a", b"PUB bar 2\r\nhi\r\nPUB foo.x 2\r\nhi\r\n");
    publish(s.port, "c", b"PUB bar 2\r\nhi\r\n");
    publish(s.port, "g", b"PUB foo.y 2\r\nhi\r\n");
    vec![
        received(&mut a),
        received(&mut b),
        received(&mut c),
        received(&mut g),
    ]
}

/// The issue's example: a subscriber on `>` in one account gets nothing another account
/// publishes, except the stream it imports (with the import's prefix).
#[test]
fn nothing_crosses_accounts_without_an_import() {
    let theirs = isolation(&reference());
    let ours = isolation(&ours());
    assert_eq!(
        theirs[1],
        ["MSG from_a.foo.x 1 2\r\n", "hi\r\n"],
        "reference"
    );
    // C hears only itself.
    assert_eq!(theirs[2], ["MSG bar 2 2\r\n", "hi\r\n"], "reference");
    assert_eq!(ours, theirs);
}

fn stream_import(exe: &Path) -> Vec<Vec<String>> {
    let (s, _d) = start(exe, TWO_ACCOUNTS);
    let mut b = login(s.port, "b");
    b.send(b"SUB from_a.foo.* 1\r\nSUB from_a.> 2\r\nSUB foo.x 3\r\nSUB from_a.foo.x q 4\r\n");
    b.sync();
    publish(
        s.port,
        "a",
        b"PUB foo.x r 2\r\nhi\r\nPUB foo.y.z 3\r\nabc\r\nHPUB foo.h 18 20\r\nNATS/1.0\r\nX: 1\r\n\r\nhi\r\n",
    );
    let first = received(&mut b);
    // Unsubscribing removes the copies in the exporting account too.
    b.send(b"UNSUB 1\r\nUNSUB 2\r\nUNSUB 4\r\n");
    b.sync();
    publish(s.port, "a", b"PUB foo.x 2\r\nhi\r\n");
    vec![first, received(&mut b)]
}

#[test]
fn stream_import_with_prefix() {
    let theirs = stream_import(&reference());
    let ours = stream_import(&ours());
    assert!(
        theirs[0].contains(&"MSG from_a.foo.x 1 r 2\r\n".to_string()),
        "{theirs:?}"
    );
    assert_eq!(ours, theirs);
}

/// The reply subject a service import gave a request, and its transcript with that
/// subject and the measured RTT masked.
fn mask_reply(lines: &[String]) -> (Option<String>, Vec<String>) {
    let mut reply = None;
    let masked = lines
        .iter()
        .map(|l| {
            let mut out = Vec::new();
            for w in l.split(' ') {
                if w.starts_with("_R_.") {
                    reply = Some(w.trim_end().to_string());
                    out.push(
                        if w.ends_with("\r\n") {
                            "_R_\r\n"
                        } else {
                            "_R_"
                        }
                        .to_string(),
                    );
                } else {
                    out.push(w.to_string());
                }
            }
            // The header carries the measured RTT, so its size varies.
            if out[0] == "HMSG" && out.len() >= 2 {
                let n = out.len();
                out[n - 2] = "#".into();
                out[n - 1] = "#\r\n".into();
            }
            let joined = out.join(" ");
            match joined.find(",\"rtt\":") {
                Some(i) => format!("{}}}\r\n", &joined[..i]),
                None => joined,
            }
        })
        .collect();
    (reply, masked)
}

fn service_import(exe: &Path) -> Vec<Vec<String>> {
    let (s, _d) = start(exe, TWO_ACCOUNTS);
    let mut a = login(s.port, "a");
    let mut b = login(s.port, "b");
    a.send(b"SUB req.* 1\r\nSUB stream.req 2\r\n");
    a.sync();
    b.send(b"SUB inbox.> 9\r\n");
    b.sync();
    // A request through the import: the responder sees it on the exported subject, with
    // a private reply subject and the requester's account in a header.
    publish(s.port, "b", b"PUB ask inbox.1 2\r\nhi\r\n");
    let (reply, at_a) = mask_reply(&received(&mut a));
    let reply = reply.expect("request with a reply subject");
    publish(s.port, "a", format!("PUB {reply} 2\r\nok\r\n").as_bytes());
    let first = received(&mut b);
    // A singleton's reply subject is used up.
    publish(s.port, "a", format!("PUB {reply} 4\r\nmore\r\n").as_bytes());
    let second = received(&mut b);
    // A streamed service answers many times.
    publish(s.port, "b", b"PUB stream.req inbox.2 1\r\n?\r\n");
    let (reply2, at_a2) = mask_reply(&received(&mut a));
    let reply2 = reply2.expect("streamed request");
    publish(
        s.port,
        "a",
        format!("PUB {reply2} 1\r\n1\r\nPUB {reply2} 1\r\n2\r\n").as_bytes(),
    );
    let streamed = received(&mut b);
    // Without a reply subject, and to a subject the import does not cover.
    publish(s.port, "b", b"PUB ask 1\r\nx\r\nPUB req.x 1\r\ny\r\n");
    let (_, at_a3) = mask_reply(&received(&mut a));
    vec![at_a, first, second, at_a2, streamed, at_a3]
}

#[test]
fn service_import_request_and_replies() {
    let theirs = service_import(&reference());
    let ours = service_import(&ours());
    assert_eq!(theirs[1], ["MSG inbox.1 9 2\r\n", "ok\r\n"], "reference");
    assert_eq!(ours, theirs);
}

fn mapping(exe: &Path) -> Vec<String> {
    let (s, _d) = start(exe, TWO_ACCOUNTS);
    let mut g2 = login(s.port, "g");
    g2.send(b"SUB n.* 1\r\nSUB m.* 2\r\n");
    g2.sync();
    publish(s.port, "g", b"PUB m.x 2\r\nhi\r\nPUB n.y 2\r\nyo\r\n");
    received(&mut g2)
}

#[test]
fn server_mappings_apply_to_the_global_account() {
    let theirs = mapping(&reference());
    let ours = mapping(&ours());
    assert!(
        theirs.contains(&"MSG n.x 1 2\r\n".to_string()),
        "{theirs:?}"
    );
    assert_eq!(ours, theirs);
}

/// Two clustered servers with the same accounts, one ours and one the reference, in both
/// roles: each account's traffic crosses the route, and only within its account (and
/// through imports).
fn mixed_cluster(first: &Path, second: &Path) -> Vec<Vec<String>> {
    let dir = TempDir::new("acc-cluster");
    let (r1, r2) = (free_port(), free_port());
    let c1 = dir.write(
        "1.conf",
        &format!("{TWO_ACCOUNTS}\ncluster {{ name: t, listen: \"127.0.0.1:{r1}\" }}\n"),
    );
    let c2 = dir.write(
        "2.conf",
        &format!(
            "{TWO_ACCOUNTS}\ncluster {{ name: t, listen: \"127.0.0.1:{r2}\", routes: [\"nats://127.0.0.1:{r1}\"] }}\n"
        ),
    );
    let n1 = ServerProc::start(first, &["-c", c1.to_str().unwrap()]);
    let n2 = ServerProc::start(second, &["-c", c2.to_str().unwrap()]);
    let mut b2 = login(n2.port, "b");
    let mut c2 = login(n2.port, "c");
    let mut a2 = login(n2.port, "a");
    b2.send(b"SUB > 1\r\n");
    b2.sync();
    c2.send(b"SUB > 1\r\n");
    c2.sync();
    a2.send(b"SUB req.x 1\r\n");
    a2.sync();
    let mut a1 = login(n1.port, "a");
    // Interest crosses the route: wait until a message from node 1 reaches node 2.
    let mut probe = login(n2.port, "a");
    probe.send(b"SUB probe 1\r\n");
    probe.sync();
    assert!(
        wait_until(T, || {
            a1.send(b"PUB probe 0\r\n\r\n");
            a1.sync();
            probe
                .stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .ok();
            probe.try_line().is_some_and(|l| l.starts_with("MSG probe"))
        }),
        "interest in account A did not cross the route"
    );
    probe
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    publish(n1.port, "a", b"PUB foo.x 2\r\nhi\r\nPUB bar 2\r\nhi\r\n");
    // A request from node 1's B account reaches the responder in A on node 2 and the
    // reply comes back across the route.
    let mut b1 = login(n1.port, "b");
    b1.send(b"SUB inbox.> 5\r\n");
    b1.sync();
    b1.send(b"PUB ask inbox.7 2\r\nhi\r\n");
    let mut req = String::new();
    assert!(wait_until(T, || {
        a2.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .ok();
        if let Some(l) = a2.try_line() {
            if l.starts_with("HMSG req.x 1 _R_.") {
                req = l;
                return true;
            }
        }
        false
    }));
    let reply = req.split(' ').nth(3).unwrap().to_string();
    a2.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .ok();
    a2.sync();
    publish(n2.port, "a", format!("PUB {reply} 2\r\nok\r\n").as_bytes());
    let mut answer = Vec::new();
    assert!(wait_until(T, || {
        b1.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .ok();
        while let Some(l) = b1.try_line() {
            answer.push(l);
        }
        answer.len() >= 2
    }));
    vec![received(&mut b2), received(&mut c2), answer]
}

#[test]
fn a_mixed_cluster_keeps_accounts_apart_both_ways() {
    let want = mixed_cluster(&reference(), &reference());
    // B on node 2 hears A's stream through its import, and B's own request to `ask`.
    assert_eq!(
        want[0],
        [
            "MSG ask 1 inbox.7 2\r\n",
            "MSG from_a.foo.x 1 2\r\n",
            "hi\r\n",
            "hi\r\n"
        ],
        "reference"
    );
    assert!(want[1].is_empty(), "reference: {want:?}");
    assert_eq!(want[2], ["MSG inbox.7 5 2\r\n", "ok\r\n"], "reference");
    assert_eq!(mixed_cluster(&ours(), &reference()), want, "ours first");
    assert_eq!(
        mixed_cluster(&reference(), &ours()),
        want,
        "reference first"
    );
}

/// SIGHUP reload adds an import (a client's existing subscription starts receiving the
/// stream), and removes an account with its user (whose client is closed).
fn reload_accounts(exe: &Path) -> Vec<Vec<String>> {
    let dir = TempDir::new("acc-reload");
    let before = r#"
accounts {
  A: { users: [{user: a, password: a}], exports: [{stream: "foo.>"}] }
  B: { users: [{user: b, password: b}] }
}
"#;
    let f = dir.write("s.conf", before);
    let s = ServerProc::start(exe, &["-c", f.to_str().unwrap()]);
    let mut b = login(s.port, "b");
    b.send(b"SUB foo.> 1\r\n");
    b.sync();
    publish(s.port, "a", b"PUB foo.x 2\r\nhi\r\n");
    let first = received(&mut b);
    let reload = |text: &str, n: usize| {
        dir.write("s.conf", text);
        s.proc.signal(libc::SIGHUP);
        assert!(
            wait_until(T, || {
                s.proc
                    .log_text()
                    .matches("Reloaded server configuration")
                    .count()
                    >= n
            }),
            "{}",
            s.proc.log_text()
        );
    };
    reload(
        r#"
accounts {
  A: { users: [{user: a, password: a}], exports: [{stream: "foo.>"}] }
  B: { users: [{user: b, password: b}], imports: [{stream: {account: A, subject: "foo.>"}}] }
}
"#,
        1,
    );
    publish(s.port, "a", b"PUB foo.y 2\r\nhi\r\n");
    let second = received(&mut b);
    reload(
        r#"
accounts {
  A: { users: [{user: a, password: a}], exports: [{stream: "foo.>"}] }
}
"#,
        2,
    );
    let mut third = Vec::new();
    while let Some(l) = b.try_line() {
        third.push(l);
    }
    if b.closed_within(T) {
        third.push("<EOF>".into());
    }
    vec![first, second, third]
}

#[test]
fn reload_adds_imports_and_removes_accounts() {
    let theirs = reload_accounts(&reference());
    assert_eq!(theirs[1], ["MSG foo.y 1 2\r\n", "hi\r\n"], "reference");
    assert_eq!(reload_accounts(&ours()), theirs);
}
