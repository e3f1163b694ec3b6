//! Leaf nodes: our hub with a reference leaf and the reverse, ours with ours, a leaf of a
//! leaf, a leaf bound to a non-default account, queue groups across the link with exact
//! counts, request/reply, kill -9 of a leaf under load, loop detection, bad input on the
//! leaf port and `leafnodes {}` configuration errors answered as the reference answers.

use crate::config::TempDir;
use crate::monitor::get_json;
use crate::support::{free_port, ours, reference, run_bounded, wait_until, Raw, ServerProc};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(20);

/// A server started from a configuration file, with its leaf and monitoring ports.
struct Srv {
    srv: ServerProc,
    lport: u16,
    http: u16,
    conf: PathBuf,
    exe: PathBuf,
    _dir: TempDir,
}

impl Srv {
    /// Starts `exe` with `leafnodes { <leaf> }` (and `extra` top-level text); a leaf
    /// listener on a free port is added when `listen` is set.
    fn start(exe: &Path, listen: bool, leaf: &str, extra: &str) -> Srv {
        let port = free_port();
        let lport = if listen { free_port() } else { 0 };
        let http = free_port();
        let listen_line = if listen {
            format!("listen: \"127.0.0.1:{lport}\"\n")
        } else {
            String::new()
        };
        let text = format!(
            "http: \"127.0.0.1:{http}\"\n{extra}\nleafnodes {{\n{listen_line}reconnect: 1\n{leaf}\n}}\n"
        );
        let dir = TempDir::new("leaf");
        let conf = dir.write("s.conf", &text);
        let srv = ServerProc::start_on(exe, port, &["-c", conf.to_str().unwrap()]);
        Srv {
            srv,
            lport,
            http,
            conf,
            exe: exe.to_path_buf(),
            _dir: dir,
        }
    }

    fn hub(exe: &Path) -> Srv {
        Self::start(exe, true, "", "")
    }

    fn leaf_of(exe: &Path, hub: &Srv) -> Srv {
        Self::start(exe, false, &remote(hub, "", ""), "")
    }

    fn url(&self) -> String {
        self.srv.url()
    }

    fn url_as(&self, user: &str) -> String {
        format!("nats://{user}:{user}@127.0.0.1:{}", self.srv.port)
    }

    fn num_leafs(&self) -> i64 {
        get_json(self.http, "/leafz")["leafnodes"]
            .as_i64()
            .unwrap_or(-1)
    }

    fn wait_leafs(&self, n: i64) {
        assert!(
            wait_until(LONG, || self.num_leafs() == n),
            "expected {n} leaf connections; /leafz {}\nlog:\n{}",
            get_json(self.http, "/leafz"),
            self.srv.proc.log_text()
        );
    }

    fn kill9(&mut self) {
        self.srv.proc.signal(libc::SIGKILL);
        let _ = self.srv.proc.wait_exit(T);
    }

    /// Starts the same configuration again on the same ports.
    fn restart(&mut self) {
        let srv = ServerProc::start_on(
            &self.exe,
            self.srv.port,
            &["-c", self.conf.to_str().unwrap()],
        );
        self.srv = srv;
    }
}

/// A `remotes` entry pointing at `hub`'s leaf port.
fn remote(hub: &Srv, creds: &str, extra: &str) -> String {
    format!(
        "remotes [ {{ url: \"nats://{creds}127.0.0.1:{}\" {extra} }} ]",
        hub.lport
    )
}

async fn connect(url: &str) -> async_nats::Client {
    // Credentials in the URL are given as options (`nats://user:pass@host:port`).
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.rsplit_once('@') {
            let (u, p) = cred.split_once(':').unwrap_or((cred, ""));
            return async_nats::ConnectOptions::with_user_and_password(u.into(), p.into())
                .connect(format!("{scheme}://{host}"))
                .await
                .expect("connect");
        }
    }
    async_nats::connect(url).await.expect("connect")
}

/// Publishes probes on `publisher` until `sub` sees one: the interest crossed the link.
async fn await_interest(
    publisher: &async_nats::Client,
    subject: &str,
    sub: &mut async_nats::Subscriber,
) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        publisher
            .publish(subject.to_string(), "probe".into())
            .await
            .expect("publish");
        publisher.flush().await.expect("flush");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(200), sub.next()).await
            {}
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "interest on {subject} never arrived"
        );
    }
}

fn is_probe(m: &async_nats::Message) -> bool {
    &m.payload[..] == b"probe"
}

/// Receives exactly `n` (non-probe) messages, then nothing more for a short while.
async fn expect_count(sub: &mut async_nats::Subscriber, n: usize) -> Vec<async_nats::Message> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(T, sub.next()).await {
            Ok(Some(m)) if is_probe(&m) => {}
            Ok(Some(m)) => got.push(m),
            _ => panic!("expected {n} messages, got {}", got.len()),
        }
    }
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        assert!(is_probe(&m), "unexpected extra message on {}", m.subject);
    }
    got
}

/// Counts what arrives until `quiet` passes without a message.
async fn drain_count(sub: &mut async_nats::Subscriber, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
        if !is_probe(&m) {
            n += 1;
        }
    }
    n
}

/// Plain messages both ways, headers, request/reply both ways and queue groups across
/// the link with exact counts, between clients of `a` and `b` (linked by leaf nodes,
/// possibly through other servers).
async fn exchange(a_url: &str, b_url: &str) {
    let a = connect(a_url).await;
    let b = connect(b_url).await;
    for (p, s, tag) in [(&a, &b, "ab"), (&b, &a, "ba")] {
        let subject = format!("x.{tag}");
        let mut sub = s.subscribe(subject.clone()).await.unwrap();
        s.flush().await.unwrap();
        await_interest(p, &subject, &mut sub).await;
        for i in 0..50 {
            p.publish(subject.clone(), format!("m{i}").into())
                .await
                .unwrap();
        }
        let mut h = async_nats::HeaderMap::new();
        h.insert("X-Tag", tag);
        p.publish_with_headers(subject.clone(), h, "hdr".into())
            .await
            .unwrap();
        p.flush().await.unwrap();
        let got = expect_count(&mut sub, 51).await;
        for (i, m) in got.iter().take(50).enumerate() {
            assert_eq!(
                m.payload,
                format!("m{i}").as_bytes(),
                "order across the link"
            );
        }
        let last = &got[50];
        assert_eq!(
            last.headers
                .as_ref()
                .and_then(|h| h.get("X-Tag"))
                .map(|v| v.to_string()),
            Some(tag.to_string())
        );
        // Request/reply: the responder on the subscribing side.
        let svc = format!("svc.{tag}");
        let mut rsub = s.subscribe(svc.clone()).await.unwrap();
        s.flush().await.unwrap();
        await_interest(p, &svc, &mut rsub).await;
        let responder = s.clone();
        let task = tokio::spawn(async move {
            while let Some(m) = rsub.next().await {
                if let Some(r) = m.reply {
                    let mut body = b"re:".to_vec();
                    body.extend_from_slice(&m.payload);
                    responder.publish(r, body.into()).await.unwrap();
                    responder.flush().await.unwrap();
                }
            }
        });
        for i in 0..10 {
            let r = tokio::time::timeout(T, p.request(svc.clone(), format!("q{i}").into()))
                .await
                .expect("request timed out")
                .expect("request");
            assert_eq!(r.payload, format!("re:q{i}").as_bytes());
        }
        task.abort();
    }
    // Queue group with members on b only: a's messages cross the link, each once.
    let mut bonly = Vec::new();
    for _ in 0..2 {
        bonly.push(
            b.queue_subscribe("work", "workers".to_string())
                .await
                .unwrap(),
        );
    }
    let mut plain = b.subscribe("work").await.unwrap();
    b.flush().await.unwrap();
    await_interest(&a, "work", &mut plain).await;
    // Probes went to the group too: drain them.
    for s in bonly.iter_mut() {
        drain_count(s, Duration::from_millis(300)).await;
    }
    for i in 0..100 {
        a.publish("work", format!("w{i}").into()).await.unwrap();
    }
    a.flush().await.unwrap();
    assert_eq!(expect_count(&mut plain, 100).await.len(), 100);
    let mut total = 0;
    for s in bonly.iter_mut() {
        total += drain_count(s, Duration::from_millis(500)).await;
    }
    assert_eq!(total, 100, "each message once to the group across the link");
    // Members on both sides again; publish from b: still one delivery per message.
    let mut amembers = Vec::new();
    for _ in 0..2 {
        amembers.push(
            a.queue_subscribe("work", "workers".to_string())
                .await
                .unwrap(),
        );
    }
    a.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..100 {
        b.publish("work", format!("v{i}").into()).await.unwrap();
    }
    b.flush().await.unwrap();
    let mut total = 0;
    for s in bonly.iter_mut().chain(amembers.iter_mut()) {
        total += drain_count(s, Duration::from_millis(500)).await;
    }
    assert_eq!(
        total, 100,
        "one delivery per message with members on both sides"
    );
    assert_eq!(
        drain_count(&mut plain, Duration::from_millis(300)).await,
        100
    );
}

async fn hub_and_leaf(hub_exe: &Path, leaf_exe: &Path) {
    let hub = Srv::hub(hub_exe);
    let leaf = Srv::leaf_of(leaf_exe, &hub);
    hub.wait_leafs(1);
    leaf.wait_leafs(1);
    exchange(&hub.url(), &leaf.url()).await;
    // /leafz on the hub lists the leaf's interest with `subs`.
    let lz = get_json(hub.http, "/leafz?subs=1");
    let list = lz["leafs"][0]["subscriptions_list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        list.iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("$LDS."))),
        "{lz}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ours_hub_ours_leaf() {
    hub_and_leaf(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ours_hub_reference_leaf() {
    hub_and_leaf(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_hub_ours_leaf() {
    hub_and_leaf(&reference(), &ours()).await;
}

/// A -> B -> C: B is a leaf of A and the hub of C.
async fn leaf_of_leaf(a_exe: &Path, b_exe: &Path, c_exe: &Path) {
    let a = Srv::hub(a_exe);
    let b = Srv::start(b_exe, true, &remote(&a, "", ""), "");
    let c = Srv::leaf_of(c_exe, &b);
    a.wait_leafs(1);
    b.wait_leafs(2);
    c.wait_leafs(1);
    let ca = connect(&a.url()).await;
    let cc = connect(&c.url()).await;
    for (p, s, subj) in [(&ca, &cc, "chain.down"), (&cc, &ca, "chain.up")] {
        let mut sub = s.subscribe(subj).await.unwrap();
        s.flush().await.unwrap();
        await_interest(p, subj, &mut sub).await;
        for i in 0..50 {
            p.publish(subj, format!("{i}").into()).await.unwrap();
        }
        p.flush().await.unwrap();
        expect_count(&mut sub, 50).await;
    }
    exchange(&a.url(), &c.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_of_leaf_ours() {
    leaf_of_leaf(&ours(), &ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_of_leaf_ours_between_references() {
    leaf_of_leaf(&reference(), &ours(), &reference()).await;
}

const ACCOUNTS: &str = "accounts {\n  A { users [ { user: a, password: a } ] }\n  B { users [ { user: b, password: b } ] }\n}\n";

/// The hub binds the leaf (user `l`) to account A: A's clients and the leaf's share
/// traffic; B's see none of it.
async fn bound_account(hub_exe: &Path, leaf_exe: &Path) {
    let hub = Srv::start(
        hub_exe,
        true,
        "authorization { users [ { user: l, password: l, account: A } ] }",
        ACCOUNTS,
    );
    let leaf = Srv::start(leaf_exe, false, &remote(&hub, "l:l@", ""), "");
    hub.wait_leafs(1);
    assert_eq!(get_json(hub.http, "/leafz")["leafs"][0]["account"], "A");
    let ha = connect(&hub.url_as("a")).await;
    let hb = connect(&hub.url_as("b")).await;
    let l = connect(&leaf.url()).await;
    let mut lsub = l.subscribe("acc.x").await.unwrap();
    l.flush().await.unwrap();
    await_interest(&ha, "acc.x", &mut lsub).await;
    for _ in 0..5 {
        hb.publish("acc.x", "from-b".into()).await.unwrap();
    }
    hb.flush().await.unwrap();
    for _ in 0..5 {
        ha.publish("acc.x", "from-a".into()).await.unwrap();
    }
    ha.flush().await.unwrap();
    let got = expect_count(&mut lsub, 5).await;
    assert!(got.iter().all(|m| &m.payload[..] == b"from-a"));
    let mut asub = ha.subscribe("acc.y").await.unwrap();
    let mut bsub = hb.subscribe("acc.y").await.unwrap();
    ha.flush().await.unwrap();
    hb.flush().await.unwrap();
    await_interest(&l, "acc.y", &mut asub).await;
    for _ in 0..7 {
        l.publish("acc.y", "up".into()).await.unwrap();
    }
    l.flush().await.unwrap();
    expect_count(&mut asub, 7).await;
    assert_eq!(drain_count(&mut bsub, Duration::from_millis(300)).await, 0);
    exchange(&hub.url_as("a"), &leaf.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bound_account_ours() {
    bound_account(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bound_account_ours_hub_reference_leaf() {
    bound_account(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bound_account_reference_hub_ours_leaf() {
    bound_account(&reference(), &ours()).await;
}

/// kill -9 of one leaf while the hub publishes steadily: the hub's own subscriber and the
/// other leaf's get every message; the killed leaf comes back and gets traffic again.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_leaf_under_load() {
    let hub = Srv::hub(&ours());
    let mut l1 = Srv::leaf_of(&ours(), &hub);
    let l2 = Srv::leaf_of(&reference(), &hub);
    hub.wait_leafs(2);
    let p = connect(&hub.url()).await;
    let c_hub = connect(&hub.url()).await;
    let c2 = connect(&l2.url()).await;
    let c1 = connect(&l1.url()).await;
    let mut s_hub = c_hub.subscribe("load").await.unwrap();
    let mut s2 = c2.subscribe("load").await.unwrap();
    let mut s1 = c1.subscribe("load").await.unwrap();
    for c in [&c_hub, &c2, &c1] {
        c.flush().await.unwrap();
    }
    await_interest(&p, "load", &mut s2).await;
    await_interest(&p, "load", &mut s1).await;
    drain_count(&mut s_hub, Duration::from_millis(200)).await;
    const N: usize = 20_000;
    let publisher = tokio::spawn(async move {
        for i in 0..N {
            p.publish("load", format!("{i}").into()).await.unwrap();
            if i % 200 == 199 {
                p.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        p.flush().await.unwrap();
        p
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    l1.kill9();
    drop(s1);
    let p = publisher.await.unwrap();
    assert_eq!(drain_count(&mut s_hub, Duration::from_secs(2)).await, N);
    assert_eq!(drain_count(&mut s2, Duration::from_secs(2)).await, N);
    // The killed leaf returns; the link comes back and carries traffic.
    l1.restart();
    hub.wait_leafs(2);
    let c1 = connect(&l1.url()).await;
    let mut s1 = c1.subscribe("load").await.unwrap();
    c1.flush().await.unwrap();
    await_interest(&p, "load", &mut s1).await;
    for i in 0..100 {
        p.publish("load", format!("{i}").into()).await.unwrap();
    }
    p.flush().await.unwrap();
    expect_count(&mut s1, 100).await;
}

/// Two servers that are each other's leaf: the loop is found and reported.
fn leaf_loop(a_exe: &Path, b_exe: &Path) {
    let a_l = free_port();
    let b_l = free_port();
    let mk = |exe: &Path, own: u16, other: u16| {
        let dir = TempDir::new("leafloop");
        let text = format!(
            "leafnodes {{\n listen: \"127.0.0.1:{own}\"\n reconnect: 1\n remotes [ {{ url: \"nats://127.0.0.1:{other}\" }} ]\n}}\n"
        );
        let conf = dir.write("s.conf", &text);
        (ServerProc::start(exe, &["-c", conf.to_str().unwrap()]), dir)
    };
    let (a, _da) = mk(a_exe, a_l, b_l);
    let (b, _db) = mk(b_exe, b_l, a_l);
    let needle = "Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s";
    assert!(
        wait_until(LONG, || a.proc.log_text().contains(needle)
            || b.proc.log_text().contains(needle)),
        "no loop detected:\n{}\n---\n{}",
        a.proc.log_text(),
        b.proc.log_text()
    );
}

#[test]
fn loop_detected_ours() {
    leaf_loop(&ours(), &ours());
}

#[test]
fn loop_detected_with_reference() {
    leaf_loop(&ours(), &reference());
}

/// What the leaf port answers to `input` (after its INFO): the -ERR lines, and whether
/// the connection was closed.
fn leaf_port_answer(exe: &Path, leaf: &str, input: &[u8]) -> (Vec<String>, bool) {
    // `top|leaf`: top-level text before the bar.
    let (top, leaf) = leaf.split_once('|').unwrap_or(("", leaf));
    let s = Srv::start(exe, true, leaf, top);
    let mut r = Raw::connect(s.lport);
    let info = r.info();
    assert!(info["leafnode_urls"].is_array(), "{info}");
    assert!(info["client_id"].as_u64().unwrap_or(0) > 0, "{info}");
    r.send(input);
    let mut errs = Vec::new();
    r.stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    while let Some(l) = r.try_line() {
        if l.starts_with("-ERR") {
            errs.push(l);
        }
    }
    // EOF (closed) or a timeout (still open).
    (errs, r.closed_within(Duration::from_millis(300)))
}

#[test]
fn bad_input_on_the_leaf_port_answered_as_the_reference() {
    let cases: &[(&str, &[u8])] = &[
        ("", b"garbage\r\n"),
        ("", b"PUB foo 2\r\nhi\r\n"),
        ("", b"CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n"),
        (
            "",
            b"CONNECT {\"server_id\":\"X\",\"name\":\"x\"}\r\nLMSG\r\n",
        ),
        (
            "",
            b"CONNECT {\"server_id\":\"X\",\"name\":\"x\"}\r\nLMSG foo 2\r\nhiXX\r\n",
        ),
        (
            "authorization { user: leaf, password: s3cret }",
            b"CONNECT {\"user\":\"leaf\",\"pass\":\"wrong\"}\r\n",
        ),
        (
            "authorization { users [ { user: u1, password: p1 } ] }",
            b"CONNECT {\"user\":\"nobody\",\"pass\":\"p1\"}\r\n",
        ),
        ("", b"CONNECT {not json\r\n"),
        // No leaf authorization: the client users apply.
        (
            "authorization { users [ { user: u, password: p } ] }|",
            b"CONNECT {\"user\":\"u\",\"pass\":\"bad\"}\r\n",
        ),
        (
            "authorization { users [ { user: u, password: p } ] }|",
            b"CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\nPING\r\n",
        ),
        ("authorization { token: t0k }|", b"CONNECT {}\r\n"),
        // Authentication comes before the wrong-port check.
        (
            "authorization { user: leaf, password: s3cret }",
            b"CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n",
        ),
        (
            "min_version: \"2.9.0\"",
            b"CONNECT {\"version\":\"2.8.4\",\"name\":\"old\"}\r\n",
        ),
        (
            "min_version: \"2.9.0\"",
            b"CONNECT {\"version\":\"2.9.1\",\"name\":\"new\"}\r\nPING\r\n",
        ),
    ];
    for (leaf, input) in cases {
        let want = leaf_port_answer(&reference(), leaf, input);
        let got = leaf_port_answer(&ours(), leaf, input);
        assert_eq!(
            got,
            want,
            "input {:?} with {leaf:?}",
            String::from_utf8_lossy(input)
        );
    }
}

/// `nats-server -t` on bad `leafnodes` blocks: the same errors as the reference.
#[test]
fn leafnodes_config_errors_match_the_reference() {
    let cases = [
        "leafnodes: 5",
        "leafnodes { remotes: 5 }",
        "leafnodes { remotes: [ 5 ] }",
        "leafnodes { remotes: [ { url: 5 } ] }",
        "leafnodes { remotes: [ { url: \"nats://a b:1\" } ] }",
        "leafnodes { remotes: [ { url: \"nats://h:1\", bogus: 1 } ] }",
        "leafnodes { authorization { user: a, password: b, users: [ { user: c, password: d } ] } }",
        "leafnodes { authorization { users: [ { user: c, password: d }, { user: c, password: e } ] } }",
        "leafnodes { authorization { users: 5 } }",
        "leafnodes { authorization { users: [ 5 ] } }",
        "leafnodes { authorization { bogus: 1 } }",
        "leafnodes { port: \"x\" }",
        "leafnodes { bogus: 1 }",
        "leafnodes { min_version: \"2.7.0\" }",
        "leafnodes { reconnect: \"1s\" }",
    ];
    for c in cases {
        let dir = TempDir::new("leafconf");
        let f = dir.write("s.conf", &format!("{c}\n"));
        let f = f.to_str().unwrap();
        let (want_code, _, want_err) = run_bounded(&reference(), &["-t", "-c", f], T);
        let (got_code, _, got_err) = run_bounded(&ours(), &["-t", "-c", f], T);
        assert_eq!((got_code, got_err), (want_code, want_err), "config {c:?}");
    }
}

/// Start-up checks: a remote or leaf user naming an account that does not exist.
#[test]
fn leafnodes_unknown_accounts_refused_at_start() {
    let cases = [
        "leafnodes { port: -1 }\ngateway { name: A, port: -1 }",
        "leafnodes { remotes: [ { url: \"nats://127.0.0.1:1\", account: NOPE } ] }",
        "leafnodes { port: -1, authorization { users: [ { user: u, password: p, account: NOPE } ] } }",
        "leafnodes { port: -1, authorization { user: u, password: p, account: NOPE } }",
    ];
    for c in cases {
        let dir = TempDir::new("leafacc");
        let f = dir.write("s.conf", &format!("port: -1\n{c}\n"));
        let f = f.to_str().unwrap();
        let (want_code, _, want_err) = run_bounded(&reference(), &["-c", f], T);
        let (got_code, _, got_err) = run_bounded(&ours(), &["-c", f], T);
        assert_eq!(got_code, want_code, "config {c:?}: {got_err}");
        let last = |s: &str| s.lines().last().unwrap_or_default().to_string();
        assert_eq!(last(&got_err), last(&want_err), "config {c:?}");
    }
}

/// /varz `leaf` block: the listener's settings and the remotes, as the reference shows them.
#[test]
fn varz_leaf_block_matches_the_reference() {
    let hub_leaf = "authorization { timeout: 3 }";
    let shape = |exe: &Path| {
        let hub = Srv::start(exe, true, hub_leaf, "");
        let leaf = Srv::start(
            exe,
            false,
            &remote(
                &hub,
                "",
                ", deny_imports: [\"x.>\"], deny_exports: [\"y.>\"]",
            ),
            "",
        );
        hub.wait_leafs(1);
        let mut hv = get_json(hub.http, "/varz")["leaf"].clone();
        hv["port"] = serde_json::Value::from(0);
        let mut lv = get_json(leaf.http, "/varz")["leaf"].clone();
        lv["remotes"][0]["urls"] = serde_json::Value::Null;
        (hv, lv, get_json(hub.http, "/varz")["leafnodes"].clone())
    };
    assert_eq!(shape(&ours()), shape(&reference()));
}

/// A hub cluster of two: the leaf, configured with the first hub only, learns the second
/// from `leafnode_urls` and moves there when the first is killed.
async fn hub_cluster_failover(hub_exe: &Path, leaf_exe: &Path) {
    let (c1, c2) = (free_port(), free_port());
    let cluster = |own: u16, other: u16| {
        format!(
            "cluster {{ name: hubc, listen: \"127.0.0.1:{own}\", routes: [\"nats://127.0.0.1:{other}\"] }}"
        )
    };
    let mut h1 = Srv::start(hub_exe, true, "", &cluster(c1, c2));
    let h2 = Srv::start(hub_exe, true, "", &cluster(c2, c1));
    assert!(
        wait_until(LONG, || get_json(h1.http, "/routez")["num_routes"] == 1
            && get_json(h2.http, "/routez")["num_routes"] == 1),
        "hub cluster did not form"
    );
    let leaf = Srv::leaf_of(leaf_exe, &h1);
    h1.wait_leafs(1);
    // Traffic from the other hub server reaches the leaf through the route.
    exchange(&h2.url(), &leaf.url()).await;
    // Give the async INFO with both leaf URLs time to arrive, then lose the first hub.
    tokio::time::sleep(Duration::from_millis(500)).await;
    h1.kill9();
    h2.wait_leafs(1);
    exchange(&h2.url(), &leaf.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leafnode_urls_gossip_ours() {
    hub_cluster_failover(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leafnode_urls_gossip_ours_hub_reference_leaf() {
    hub_cluster_failover(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leafnode_urls_gossip_reference_hub_ours_leaf() {
    hub_cluster_failover(&reference(), &ours()).await;
}

/// `deny_exports` keeps the leaf's messages on those subjects from the hub and
/// `deny_imports` keeps the hub's from the leaf; everything else flows.
async fn deny_rules(hub_exe: &Path, leaf_exe: &Path) {
    let hub = Srv::hub(hub_exe);
    let leaf = Srv::start(
        leaf_exe,
        false,
        &remote(
            &hub,
            "",
            ", deny_exports: [\"secret.>\"], deny_imports: [\"private.>\"]",
        ),
        "",
    );
    hub.wait_leafs(1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    // Hub -> leaf: private.> is not imported.
    let mut lsub = l.subscribe(">").await.unwrap();
    l.flush().await.unwrap();
    await_interest(&h, "open.down", &mut lsub).await;
    h.publish("private.x", "no".into()).await.unwrap();
    h.publish("open.down", "yes".into()).await.unwrap();
    h.flush().await.unwrap();
    let got = expect_count(&mut lsub, 1).await;
    assert_eq!(got[0].subject.as_str(), "open.down");
    drop(lsub);
    // Leaf -> hub: secret.> is not exported.
    let mut hsub = h.subscribe(">").await.unwrap();
    h.flush().await.unwrap();
    await_interest(&l, "open.up", &mut hsub).await;
    l.publish("secret.x", "no".into()).await.unwrap();
    l.publish("open.up", "yes".into()).await.unwrap();
    l.flush().await.unwrap();
    let got = expect_count(&mut hsub, 1).await;
    assert_eq!(got[0].subject.as_str(), "open.up");
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_rules_ours() {
    deny_rules(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_rules_ours_hub_reference_leaf() {
    deny_rules(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_rules_reference_hub_ours_leaf() {
    deny_rules(&reference(), &ours()).await;
}

/// The hub goes away and comes back on the same ports: the leaf redials (every
/// `reconnect` second) and traffic flows again.
async fn hub_restart(hub_exe: &Path, leaf_exe: &Path) {
    let mut hub = Srv::hub(hub_exe);
    let leaf = Srv::leaf_of(leaf_exe, &hub);
    hub.wait_leafs(1);
    hub.kill9();
    leaf.wait_leafs(0);
    hub.restart();
    hub.wait_leafs(1);
    leaf.wait_leafs(1);
    exchange(&hub.url(), &leaf.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_restart_ours() {
    hub_restart(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_restart_reference_hub_ours_leaf() {
    hub_restart(&reference(), &ours()).await;
}

/// A TLS leaf port and a remote with `tls { ca_file }`.
async fn leaf_tls(hub_exe: &Path, leaf_exe: &Path) {
    let pki = crate::tls::pki();
    let p = |x: &PathBuf| x.to_str().unwrap().to_string();
    let hub = Srv::start(
        hub_exe,
        true,
        &format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
            p(&pki.server_cert),
            p(&pki.server_key)
        ),
        "",
    );
    let leaf = Srv::start(
        leaf_exe,
        false,
        &remote(
            &hub,
            "",
            &format!(", tls: {{ ca_file: \"{}\" }}", p(&pki.ca)),
        ),
        "",
    );
    hub.wait_leafs(1);
    let v = get_json(hub.http, "/varz");
    assert_eq!(v["leaf"]["tls_required"], true, "{}", v["leaf"]);
    exchange(&hub.url(), &leaf.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_leaf_ours() {
    leaf_tls(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_leaf_ours_hub_reference_leaf() {
    leaf_tls(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_leaf_reference_hub_ours_leaf() {
    leaf_tls(&reference(), &ours()).await;
}

/// A leaf cluster of two servers, each with its own remote to the hub: messages between
/// the two leaf servers travel once (over their route, not back through the hub), and the
/// hub gets each once.
async fn leaf_cluster(hub_exe: &Path, leaf_exe: &Path) {
    let hub = Srv::hub(hub_exe);
    let (c1, c2) = (free_port(), free_port());
    let cluster = |own: u16, other: u16| {
        format!(
            "cluster {{ name: leafc, listen: \"127.0.0.1:{own}\", routes: [\"nats://127.0.0.1:{other}\"] }}"
        )
    };
    let l1 = Srv::start(leaf_exe, false, &remote(&hub, "", ""), &cluster(c1, c2));
    let l2 = Srv::start(leaf_exe, false, &remote(&hub, "", ""), &cluster(c2, c1));
    hub.wait_leafs(2);
    assert!(
        wait_until(LONG, || get_json(l1.http, "/routez")["num_routes"] == 1),
        "leaf cluster did not form"
    );
    let h = connect(&hub.url()).await;
    let a = connect(&l1.url()).await;
    let b = connect(&l2.url()).await;
    let mut sb = b.subscribe("lc.x").await.unwrap();
    let mut sh = h.subscribe("lc.x").await.unwrap();
    b.flush().await.unwrap();
    h.flush().await.unwrap();
    await_interest(&a, "lc.x", &mut sb).await;
    await_interest(&a, "lc.x", &mut sh).await;
    drain_count(&mut sb, Duration::from_millis(300)).await;
    for i in 0..100 {
        a.publish("lc.x", format!("{i}").into()).await.unwrap();
    }
    a.flush().await.unwrap();
    expect_count(&mut sb, 100).await;
    expect_count(&mut sh, 100).await;
    // And from the hub: each leaf server's subscriber gets each message once.
    let mut sa = a.subscribe("lc.y").await.unwrap();
    let mut sb = b.subscribe("lc.y").await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    await_interest(&h, "lc.y", &mut sa).await;
    await_interest(&h, "lc.y", &mut sb).await;
    drain_count(&mut sa, Duration::from_millis(300)).await;
    for i in 0..100 {
        h.publish("lc.y", format!("{i}").into()).await.unwrap();
    }
    h.flush().await.unwrap();
    expect_count(&mut sa, 100).await;
    expect_count(&mut sb, 100).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_ours() {
    leaf_cluster(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_ours_hub_reference_leafs() {
    leaf_cluster(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_reference_hub_ours_leafs() {
    leaf_cluster(&reference(), &ours()).await;
}

/// Which account a leaf's CONNECT binds it to (the hub's `remote_account`), or the -ERR.
fn binding(exe: &Path, top: &str, leaf: &str, connect: &str) -> String {
    let s = Srv::start(exe, true, leaf, top);
    let mut r = Raw::connect(s.lport);
    r.info();
    r.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
    loop {
        match r.try_line() {
            None => return "EOF".into(),
            Some(l) if l.starts_with("-ERR") => return l,
            Some(l) if l.starts_with("INFO ") => {
                let v: serde_json::Value = serde_json::from_str(l[5..].trim_end()).unwrap();
                return format!("bound to {}", v["remote_account"]);
            }
            Some(l) if l == "PONG\r\n" => return "PONG".into(),
            Some(_) => {}
        }
    }
}

#[test]
fn leaf_account_binding_matches_the_reference() {
    let accs = "accounts { A { users [ { user: a, password: a } ] }, B { users [ { user: b, password: b } ] } }";
    let cases: &[(&str, &str, &str)] = &[
        ("", "", "{}"),
        ("accounts { A {} }", "authorization { account: A }", "{}"),
        (accs, "authorization { account: A }", "{}"),
        (
            accs,
            "authorization { account: A }",
            r#"{"user":"b","pass":"b"}"#,
        ),
        (
            accs,
            "authorization { account: A }",
            r#"{"user":"b","pass":"x"}"#,
        ),
        (
            accs,
            "authorization { account: A }",
            r#"{"user":"zz","pass":"b"}"#,
        ),
        (
            accs,
            "authorization { user: l, password: l, account: B }",
            r#"{"user":"l","pass":"l"}"#,
        ),
        (
            accs,
            "authorization { user: l, password: l, account: B }",
            r#"{"user":"b","pass":"b"}"#,
        ),
        (
            accs,
            "authorization { users [ { user: l, password: l, account: B } ] }",
            r#"{"user":"l","pass":"l"}"#,
        ),
        (
            accs,
            "authorization { users [ { user: l, password: l } ] }",
            r#"{"user":"l","pass":"l"}"#,
        ),
        ("authorization { token: t0k }", "", "{}"),
        (
            "authorization { users [ { user: u, password: p } ] }\nno_auth_user: u",
            "",
            "{}",
        ),
    ];
    for (top, leaf, connect) in cases {
        let want = binding(&reference(), top, leaf, connect);
        let got = binding(&ours(), top, leaf, connect);
        assert_eq!(got, want, "top {top:?} leaf {leaf:?} connect {connect}");
    }
}

/// A leaf bound to an account that imports a stream gets the exporter's messages, under
/// the import's subject.
async fn stream_import(hub_exe: &Path, leaf_exe: &Path) {
    let accs = "accounts {\n  A { users [ { user: a, password: a } ]\n      imports [ { stream: { account: B, subject: \"feed.>\" }, prefix: imp } ] }\n  B { users [ { user: b, password: b } ]\n      exports [ { stream: \"feed.>\" } ] }\n}\n";
    let hub = Srv::start(
        hub_exe,
        true,
        "authorization { users [ { user: l, password: l, account: A } ] }",
        accs,
    );
    let leaf = Srv::start(leaf_exe, false, &remote(&hub, "l:l@", ""), "");
    hub.wait_leafs(1);
    let hb = connect(&hub.url_as("b")).await;
    let l = connect(&leaf.url()).await;
    let mut sub = l.subscribe("imp.feed.>").await.unwrap();
    l.flush().await.unwrap();
    await_interest(&hb, "feed.probe", &mut sub).await;
    for i in 0..20 {
        hb.publish(format!("feed.{i}"), "f".into()).await.unwrap();
    }
    hb.flush().await.unwrap();
    let got = expect_count(&mut sub, 20).await;
    assert_eq!(got[3].subject.as_str(), "imp.feed.3");
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_import_ours() {
    stream_import(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_import_ours_hub_reference_leaf() {
    stream_import(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_import_reference_hub_ours_leaf() {
    stream_import(&reference(), &ours()).await;
}

/// A leaf bound to an account that imports a service: requests from the leaf reach the
/// exporter's responder and the replies come back.
async fn service_import(hub_exe: &Path, leaf_exe: &Path) {
    let accs = "accounts {\n  A { users [ { user: a, password: a } ]\n      imports [ { service: { account: B, subject: \"help.>\" } } ] }\n  B { users [ { user: b, password: b } ]\n      exports [ { service: \"help.>\" } ] }\n}\n";
    let hub = Srv::start(
        hub_exe,
        true,
        "authorization { users [ { user: l, password: l, account: A } ] }",
        accs,
    );
    let leaf = Srv::start(leaf_exe, false, &remote(&hub, "l:l@", ""), "");
    hub.wait_leafs(1);
    let hb = connect(&hub.url_as("b")).await;
    let l = connect(&leaf.url()).await;
    let mut rsub = hb.subscribe("help.>").await.unwrap();
    hb.flush().await.unwrap();
    let responder = hb.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = rsub.next().await {
            if let Some(r) = m.reply {
                responder.publish(r, "ok".into()).await.unwrap();
                responder.flush().await.unwrap();
            }
        }
    });
    // The leaf learns the import's subject when it connects; retry until it answers.
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), l.request("help.me", "q".into()))
            .await
        {
            Ok(Ok(m)) => {
                assert_eq!(&m.payload[..], b"ok");
                break;
            }
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "no reply through the leaf"
            ),
        }
    }
    for i in 0..10 {
        let m = tokio::time::timeout(T, l.request(format!("help.{i}"), "q".into()))
            .await
            .expect("timeout")
            .expect("request");
        assert_eq!(&m.payload[..], b"ok");
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn service_import_ours() {
    service_import(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_import_ours_hub_reference_leaf() {
    service_import(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_import_reference_hub_ours_leaf() {
    service_import(&reference(), &ours()).await;
}

/// A second connection from the same leaf server (same name, cluster and account) replaces
/// the first, which is told so.
fn duplicate_answer(exe: &Path) -> (Vec<String>, bool, i64) {
    let s = Srv::hub(exe);
    let connect = b"CONNECT {\"server_id\":\"NX\",\"name\":\"leafX\",\"headers\":true}\r\nPING\r\n";
    let mut first = Raw::connect(s.lport);
    first.info();
    first.send(connect);
    while let Some(l) = first.try_line() {
        if l == "PONG\r\n" {
            break;
        }
    }
    let mut second = Raw::connect(s.lport);
    second.info();
    second.send(connect);
    let mut errs = Vec::new();
    first
        .stream
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    while let Some(l) = first.try_line() {
        if l.starts_with("-ERR") {
            errs.push(l);
        }
    }
    let closed = first.closed_within(Duration::from_millis(300));
    assert!(wait_until(T, || s.num_leafs() == 1));
    (errs, closed, s.num_leafs())
}

#[test]
fn duplicate_leaf_connection_replaces_the_old_one() {
    let (got, want) = (duplicate_answer(&ours()), duplicate_answer(&reference()));
    assert_eq!(want.0.len(), 1, "{want:?}");
    assert_eq!(got, want);
}

/// A hub cluster of a reference server and ours, with a clustered leaf on the reference
/// one: the reference forwards the leaf's messages to ours as `LMSG <origin> ...`, which
/// must arrive intact (headers included), once; and ours sends to the leaf through it.
async fn mixed_hub_cluster(leaf_exe: &Path) {
    let (c1, c2) = (free_port(), free_port());
    let cluster = |own: u16, other: u16| {
        format!(
            "cluster {{ name: hubc, listen: \"127.0.0.1:{own}\", routes: [\"nats://127.0.0.1:{other}\"] }}"
        )
    };
    let r = Srv::start(&reference(), true, "", &cluster(c1, c2));
    let o = Srv::start(&ours(), true, "", &cluster(c2, c1));
    assert!(
        wait_until(LONG, || get_json(o.http, "/routez")["num_routes"] == 1),
        "hub cluster did not form"
    );
    let lc = free_port();
    let leaf = Srv::start(
        leaf_exe,
        false,
        &remote(&r, "", ""),
        &format!("cluster {{ name: leafc, listen: \"127.0.0.1:{lc}\" }}"),
    );
    r.wait_leafs(1);
    exchange(&o.url(), &leaf.url()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_hub_cluster_ours_leaf() {
    mixed_hub_cluster(&ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_hub_cluster_reference_leaf() {
    mixed_hub_cluster(&reference()).await;
}

/// A leaf cluster whose two servers connect to different servers of one hub cluster:
/// interest and messages carry their origin cluster across the hub's route, so nothing
/// comes back into the leaf cluster twice.
async fn leaf_cluster_across_hubs(h1_exe: &Path, h2_exe: &Path, leaf_exe: &Path) {
    let cluster = |name: &str, own: u16, other: u16| {
        format!(
            "cluster {{ name: {name}, listen: \"127.0.0.1:{own}\", routes: [\"nats://127.0.0.1:{other}\"] }}"
        )
    };
    let (c1, c2) = (free_port(), free_port());
    let h1 = Srv::start(h1_exe, true, "", &cluster("hubc", c1, c2));
    let h2 = Srv::start(h2_exe, true, "", &cluster("hubc", c2, c1));
    assert!(
        wait_until(LONG, || get_json(h2.http, "/routez")["num_routes"] == 1
            && get_json(h1.http, "/routez")["num_routes"] == 1),
        "hub cluster did not form"
    );
    let (d1, d2) = (free_port(), free_port());
    let l1 = Srv::start(
        leaf_exe,
        false,
        &remote(&h1, "", ""),
        &cluster("leafc", d1, d2),
    );
    let l2 = Srv::start(
        leaf_exe,
        false,
        &remote(&h2, "", ""),
        &cluster("leafc", d2, d1),
    );
    h1.wait_leafs(1);
    h2.wait_leafs(1);
    assert!(
        wait_until(LONG, || get_json(l1.http, "/routez")["num_routes"] == 1),
        "leaf cluster did not form"
    );
    let ch1 = connect(&h1.url()).await;
    let ch2 = connect(&h2.url()).await;
    let a = connect(&l1.url()).await;
    let b = connect(&l2.url()).await;
    // Leaf server 1 -> hub server 2 and leaf server 2. The hub's subscriber comes first:
    // a hub server aggregates its interest toward routes, so when a leaf's subscription
    // is the first for a subject it goes out as that leaf cluster's (`LS+ origin`), and the
    // hub's own later subscriber stays unknown to the other leaf cluster server (the
    // reference behaves alike).
    let mut sh = ch2.subscribe("x.up").await.unwrap();
    ch2.flush().await.unwrap();
    await_interest(&a, "x.up", &mut sh).await;
    let mut sb = b.subscribe("x.up").await.unwrap();
    b.flush().await.unwrap();
    await_interest(&a, "x.up", &mut sb).await;
    // Let every path settle, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain_count(&mut sb, Duration::from_millis(300)).await;
    drain_count(&mut sh, Duration::from_millis(300)).await;
    for i in 0..100 {
        a.publish("x.up", format!("{i}").into()).await.unwrap();
    }
    a.flush().await.unwrap();
    expect_count(&mut sb, 100).await;
    expect_count(&mut sh, 100).await;
    // Hub server 1 -> both leaf servers, once each.
    let mut sa = a.subscribe("x.down").await.unwrap();
    let mut sb = b.subscribe("x.down").await.unwrap();
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    await_interest(&ch1, "x.down", &mut sa).await;
    await_interest(&ch1, "x.down", &mut sb).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drain_count(&mut sa, Duration::from_millis(300)).await;
    drain_count(&mut sb, Duration::from_millis(300)).await;
    for i in 0..100 {
        ch1.publish("x.down", format!("{i}").into()).await.unwrap();
    }
    ch1.flush().await.unwrap();
    expect_count(&mut sa, 100).await;
    expect_count(&mut sb, 100).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_across_hubs_ours() {
    leaf_cluster_across_hubs(&ours(), &ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_across_mixed_hubs_ours_leafs() {
    leaf_cluster_across_hubs(&reference(), &ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_across_hubs_ours_reference_leafs() {
    leaf_cluster_across_hubs(&ours(), &ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_cluster_across_reference_hubs_ours_leafs() {
    leaf_cluster_across_hubs(&reference(), &reference(), &ours()).await;
}

/// `/metrics` on a hub carries each leaf connection under prometheus-nats-exporter's leafz
/// names, with the figures /leafz shows.
#[test]
fn leaf_metrics_follow_leafz() {
    let hub = Srv::hub(&ours());
    let _leaf = Srv::leaf_of(&ours(), &hub);
    hub.wait_leafs(1);
    let z = get_json(hub.http, "/leafz");
    let l = &z["leafs"][0];
    let id = z["server_id"].as_str().unwrap();
    let labels = format!(
        "{{account=\"$G\",account_id=\"$G\",ip=\"{}\",name=\"\",port=\"{}\",server_id=\"{id}\"}}",
        l["ip"].as_str().unwrap(),
        l["port"]
    );
    let r = crate::monitor::try_get(hub.http, "/metrics").expect("GET /metrics");
    assert_eq!(r.status, 200);
    let has = |line: String| {
        assert!(
            r.body.lines().any(|x| x == line),
            "{line} not in\n{}",
            r.body
        )
    };
    has(format!("gnatsd_leafz_info{labels} 1"));
    has(format!(
        "gnatsd_leafz_conn_nodes_total{{server_id=\"{id}\"}} 1"
    ));
    for f in [
        "rtt",
        "in_msgs",
        "out_msgs",
        "in_bytes",
        "out_bytes",
        "subscriptions_total",
    ] {
        let prefix = format!("gnatsd_leafz_conn_{f}{labels} ");
        assert!(
            r.body.lines().any(|x| x.starts_with(&prefix)),
            "{prefix} not in\n{}",
            r.body
        );
    }
}

/// Accounts for a hub and a cluster joined by gateways: the system account the reference
/// requires with both leaf nodes and gateways, and APP for everyone else.
const GW_ACCOUNTS: &str = "accounts { SYS { users [{user: sys, password: sys}] }, \
     APP { users [{user: a, password: a}] } }\nsystem_account: SYS\nno_auth_user: a\n";

/// Waits until `srv` has a registered outbound gateway connection to `cluster`.
fn wait_gateway(srv: &Srv, cluster: &str) {
    let ok = wait_until(LONG, || {
        crate::monitor::try_get(srv.http, "/gatewayz")
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .is_some_and(|z| z["outbound_gateways"].get(cluster).is_some())
    });
    assert!(
        ok,
        "no outbound gateway to {cluster}; log:\n{}",
        srv.srv.proc.log_text()
    );
}

/// Sends `n` requests to `subject` from `from` with the reply `inbox`, answered by a
/// responder on `to`: exactly `n` answers arrive.
async fn requests_across(
    from: &async_nats::Client,
    to: &async_nats::Client,
    subject: &str,
    inbox: &str,
    n: usize,
) {
    let mut svc = to.subscribe(subject.to_string()).await.expect("subscribe");
    to.flush().await.expect("flush");
    await_interest(from, subject, &mut svc).await;
    let responder = to.clone();
    let task = tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(r) = m.reply {
                let mut answer = b"re:".to_vec();
                answer.extend_from_slice(&m.payload);
                responder.publish(r, answer.into()).await.expect("answer");
                responder.flush().await.expect("flush");
            }
        }
    });
    let mut answers = from.subscribe(inbox.to_string()).await.expect("subscribe");
    from.flush().await.expect("flush");
    // The answers' way back: the inbox interest reaches the responder's side.
    await_interest(to, inbox, &mut answers).await;
    for i in 0..n {
        from.publish_with_reply(
            subject.to_string(),
            inbox.to_string(),
            format!("q{i}").into(),
        )
        .await
        .expect("request");
    }
    from.flush().await.expect("flush");
    let got = expect_count(&mut answers, n).await;
    let mut bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    bodies.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("re:q{i}")).collect();
    want.sort();
    assert_eq!(bodies, want);
    task.abort();
}

/// A leaf of a hub that has a gateway to another cluster exchanges messages with that
/// cluster: plain messages both ways and requests both ways, with exact counts.
async fn leaf_behind_a_gateway(hub_exe: &Path, leaf_exe: &Path) {
    let (ga, gb) = (free_port(), free_port());
    let gw = |name: &str, port: u16, other: &str, oport: u16| {
        format!(
            "{GW_ACCOUNTS}gateway {{ name: {name}, listen: \"127.0.0.1:{port}\", \
             gateways: [{{name: {other}, url: \"nats://127.0.0.1:{oport}\"}}] }}\n"
        )
    };
    let hub = Srv::start(hub_exe, true, "", &gw("A", ga, "B", gb));
    let other = Srv::start(&ours(), false, "", &gw("B", gb, "A", ga));
    let leaf = Srv::start(leaf_exe, false, &remote(&hub, "a:a@", ""), "");
    wait_gateway(&hub, "B");
    wait_gateway(&other, "A");
    hub.wait_leafs(1);
    leaf.wait_leafs(1);
    let l = connect(&leaf.url()).await;
    let b = connect(&other.url()).await;

    // (1) Leaf -> other cluster.
    let mut sub_b = b.subscribe("lg.to_b").await.expect("subscribe");
    b.flush().await.expect("flush");
    await_interest(&l, "lg.to_b", &mut sub_b).await;
    for i in 0..10 {
        l.publish("lg.to_b", format!("m{i}").into()).await.unwrap();
    }
    l.flush().await.unwrap();
    expect_count(&mut sub_b, 10).await;

    // (2) Other cluster -> leaf.
    let mut sub_l = l.subscribe("lg.to_l").await.expect("subscribe");
    l.flush().await.expect("flush");
    await_interest(&b, "lg.to_l", &mut sub_l).await;
    for i in 0..10 {
        b.publish("lg.to_l", format!("m{i}").into()).await.unwrap();
    }
    b.flush().await.unwrap();
    expect_count(&mut sub_l, 10).await;

    // (3) Requests both ways.
    requests_across(&b, &l, "lg.svc_l", "lg.inbox_b", 5).await;
    requests_across(&l, &b, "lg.svc_b", "lg.inbox_l", 5).await;
    // And with the client library's own request (reply mapped across the gateway).
    let svc = l.subscribe("lg.svc2").await.expect("subscribe");
    let responder = l.clone();
    let task = tokio::spawn(async move {
        let mut svc = svc;
        while let Some(m) = svc.next().await {
            if let Some(r) = m.reply {
                responder.publish(r, "ok".into()).await.unwrap();
                responder.flush().await.unwrap();
            }
        }
    });
    l.flush().await.unwrap();
    let deadline = tokio::time::Instant::now() + LONG;
    let mut answered = 0;
    while answered < 5 {
        match tokio::time::timeout(Duration::from_secs(2), b.request("lg.svc2", "q".into())).await {
            Ok(Ok(m)) => {
                assert_eq!(&m.payload[..], b"ok");
                answered += 1;
            }
            _ => assert!(
                answered == 0 && tokio::time::Instant::now() < deadline,
                "request from the other cluster to the leaf timed out after {answered} answers"
            ),
        }
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_behind_a_gateway_ours() {
    leaf_behind_a_gateway(&ours(), &ours()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_behind_a_gateway_reference_leaf() {
    leaf_behind_a_gateway(&ours(), &reference()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaf_behind_a_gateway_reference_hub() {
    leaf_behind_a_gateway(&reference(), &ours()).await;
}

/// A queue group of another cluster, known to a hub through its gateway, is announced to a
/// leaf that connects later, counted by the weight the gateway announced (the reference's
/// `initLeafNodeSmapAndSendSubs`), which is 1 whatever the members: gateways, ours as the
/// reference's, announce a queue group once, with weight 1.
#[tokio::test(flavor = "multi_thread")]
async fn leaf_learns_remote_queue_group_at_connect() {
    let (ga, gb) = (free_port(), free_port());
    let gw = |name: &str, port: u16, other: &str, oport: u16| {
        format!(
            "{GW_ACCOUNTS}gateway {{ name: {name}, listen: \"127.0.0.1:{port}\", \
             gateways: [{{name: {other}, url: \"nats://127.0.0.1:{oport}\"}}] }}\n"
        )
    };
    let hub = Srv::start(
        &ours(),
        true,
        "",
        &format!("trace: true\n{}", gw("A", ga, "B", gb)),
    );
    let other = Srv::start(&ours(), false, "", &gw("B", gb, "A", ga));
    wait_gateway(&hub, "B");
    wait_gateway(&other, "A");
    let b = connect(&other.url()).await;
    let _subs = [
        b.queue_subscribe("lgq.work", "workers".into())
            .await
            .unwrap(),
        b.queue_subscribe("lgq.work", "workers".into())
            .await
            .unwrap(),
        b.queue_subscribe("lgq.work", "workers".into())
            .await
            .unwrap(),
    ];
    b.flush().await.unwrap();
    assert!(
        hub.srv.proc.wait_log("[RS+ APP lgq.work workers 1]", LONG),
        "{}",
        hub.srv.proc.log_text()
    );
    let _leaf = Srv::start(&ours(), false, &remote(&hub, "a:a@", ""), "");
    hub.wait_leafs(1);
    assert!(
        hub.srv.proc.wait_log("->> [LS+ lgq.work workers 1]", LONG),
        "{}",
        hub.srv.proc.log_text()
    );
}
