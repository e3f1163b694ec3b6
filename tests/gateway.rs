//! Gateways: clusters joined into a super-cluster, with our server and the Go reference in
//! every role. Pub/sub, request/reply and queue groups across clusters with exact counts,
//! implicit gateway discovery, bad input on the gateway port, the `gateway {}` errors, and
//! kill -9 of a gateway server under load.

use crate::config::TempDir;
use crate::monitor::try_get;
use crate::support::{free_port, ours, reference, run_bounded, wait_until, Raw, ServerProc};
use futures::StreamExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(30);

/// One server of a cluster that has a gateway.
struct Gw {
    srv: ServerProc,
    exe: PathBuf,
    cluster: String,
    gport: u16,
    cport: u16,
    http: u16,
    _dir: TempDir,
}

impl Gw {
    /// Starts `exe` in cluster `cluster` (routes to `routes`, cluster ports), with a gateway
    /// on `gport` dialling `remotes` (name, gateway port).
    fn start(exe: &Path, cluster: &str, gport: u16, routes: &[u16], remotes: &[(&str, u16)]) -> Gw {
        Self::start_on(
            exe,
            free_port(),
            cluster,
            gport,
            free_port(),
            routes,
            remotes,
        )
    }

    fn start_on(
        exe: &Path,
        port: u16,
        cluster: &str,
        gport: u16,
        cport: u16,
        routes: &[u16],
        remotes: &[(&str, u16)],
    ) -> Gw {
        Self::start_full(exe, port, cluster, gport, cport, routes, remotes, "")
    }

    /// `extra` goes into the gateway block.
    #[allow(clippy::too_many_arguments)]
    fn start_full(
        exe: &Path,
        port: u16,
        cluster: &str,
        gport: u16,
        cport: u16,
        routes: &[u16],
        remotes: &[(&str, u16)],
        extra: &str,
    ) -> Gw {
        let http = free_port();
        let routes: Vec<String> = routes
            .iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect();
        let remotes: Vec<String> = remotes
            .iter()
            .map(|(n, p)| format!("{{name: {n}, url: \"nats://127.0.0.1:{p}\"}}"))
            .collect();
        let text = format!(
            "http: \"127.0.0.1:{http}\"\n\
             cluster {{ name: {cluster}, listen: \"127.0.0.1:{cport}\", routes: [{}] }}\n\
             gateway {{ name: {cluster}, listen: \"127.0.0.1:{gport}\", gateways: [{}]\n {extra} }}\n",
            routes.join(", "),
            remotes.join(", ")
        );
        let dir = TempDir::new("gw");
        let f = dir.write("s.conf", &text);
        let srv = ServerProc::start_on(exe, port, &["-c", f.to_str().unwrap(), "-D"]);
        Gw {
            srv,
            exe: exe.to_path_buf(),
            cluster: cluster.to_string(),
            gport,
            cport,
            http,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.srv.url()
    }

    fn gatewayz(&self) -> Option<Value> {
        let r = try_get(self.http, "/gatewayz")?;
        serde_json::from_str(&r.body).ok()
    }

    /// The remote clusters this server has a registered outbound connection to.
    fn outbound(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .gatewayz()
            .and_then(|z| {
                z["outbound_gateways"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn kill9(&mut self) {
        self.srv.proc.signal(libc::SIGKILL);
        let _ = self.srv.proc.wait_exit(T);
    }

    fn name(&self) -> String {
        let who = if self.exe == reference() {
            "ref"
        } else {
            "ours"
        };
        format!("{who} {} :{}", self.cluster, self.srv.port)
    }
}

/// Waits until every server has an outbound connection to every other cluster.
fn wait_full_mesh(nodes: &[&Gw]) {
    let mut clusters: Vec<String> = nodes.iter().map(|n| n.cluster.clone()).collect();
    clusters.sort();
    clusters.dedup();
    let ok = wait_until(LONG, || {
        nodes.iter().all(|n| {
            let want: Vec<String> = clusters
                .iter()
                .filter(|c| **c != n.cluster)
                .cloned()
                .collect();
            n.outbound() == want
        })
    });
    if !ok {
        let mut msg = String::new();
        for n in nodes {
            msg.push_str(&format!(
                "--- {} outbound {:?}\n{}\n",
                n.name(),
                n.outbound(),
                n.srv.proc.log_text()
            ));
        }
        panic!("gateways never formed a full mesh:\n{msg}");
    }
}

async fn connect(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect")
}

fn is_probe(m: &async_nats::Message) -> bool {
    m.payload.starts_with(b"probe")
}

/// Publishes probes from `publisher` until `sub` sees one: its interest has crossed.
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
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(300), sub.next()).await
            {}
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "interest on {subject} never arrived"
        );
    }
}

/// Counts what arrives (probes aside) until `quiet` passes without a message.
async fn drain_count(sub: &mut async_nats::Subscriber, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
        if !is_probe(&m) {
            n += 1;
        }
    }
    n
}

/// Pub/sub, request/reply and queue groups across every pair of servers of `nodes`.
async fn exercise(nodes: &[&Gw]) {
    const N: usize = 50;
    let clients: Vec<async_nats::Client> = {
        let mut v = Vec::new();
        for n in nodes {
            v.push(connect(&n.url()).await);
        }
        v
    };
    // Pub/sub: a subscriber on every server gets what every server publishes, once.
    let mut subs = Vec::new();
    for c in &clients {
        let s = c.subscribe("gw.ps").await.unwrap();
        c.flush().await.unwrap();
        subs.push(s);
    }
    for (i, s) in subs.iter_mut().enumerate() {
        for (j, p) in clients.iter().enumerate() {
            if i != j {
                await_interest(p, "gw.ps", s).await;
            }
        }
    }
    // Probes may have reached other subscribers: drain them all.
    for s in subs.iter_mut() {
        drain_count(s, Duration::from_millis(300)).await;
    }
    for p in &clients {
        for k in 0..N {
            p.publish("gw.ps", format!("m{k}").into()).await.unwrap();
        }
        p.flush().await.unwrap();
    }
    for (i, s) in subs.iter_mut().enumerate() {
        let got = drain_count(s, Duration::from_millis(1500)).await;
        assert_eq!(
            got,
            N * nodes.len(),
            "subscriber on {} got {got}",
            nodes[i].name()
        );
    }
    drop(subs);

    // Request/reply: a responder on each server answers requests from every other.
    for (i, n) in nodes.iter().enumerate() {
        let subject = format!("gw.svc.{i}");
        let mut responder = clients[i].subscribe(subject.clone()).await.unwrap();
        clients[i].flush().await.unwrap();
        let rc = clients[i].clone();
        let task = tokio::spawn(async move {
            while let Some(m) = responder.next().await {
                if let Some(r) = m.reply {
                    let _ = rc.publish(r, m.payload.clone()).await;
                    let _ = rc.flush().await;
                }
            }
        });
        for (j, c) in clients.iter().enumerate() {
            if j == i {
                continue;
            }
            // The responder's interest must have crossed before the first request.
            let deadline = tokio::time::Instant::now() + LONG;
            let mut k = 0;
            loop {
                let body = format!("req{j}-{k}");
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    c.request(subject.clone(), body.clone().into()),
                )
                .await
                {
                    Ok(Ok(resp)) => {
                        assert_eq!(&resp.payload[..], body.as_bytes());
                        k += 1;
                        if k == 5 {
                            break;
                        }
                    }
                    _ => assert!(
                        k == 0 && tokio::time::Instant::now() < deadline,
                        "request from {} to {} failed after {k} answers",
                        nodes[j].name(),
                        n.name()
                    ),
                }
            }
        }
        task.abort();
    }

    // Queue groups: members only in the last cluster; every message is served once.
    let last = &nodes[nodes.len() - 1].cluster;
    let mut members = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if &n.cluster == last {
            let s = clients[i]
                .queue_subscribe("gw.q", "workers".into())
                .await
                .unwrap();
            clients[i].flush().await.unwrap();
            members.push(s);
        }
    }
    let first = &clients[0];
    // Until the group's interest reached the first cluster, messages may be dropped:
    // probe until one arrives somewhere.
    let deadline = tokio::time::Instant::now() + LONG;
    'probe: loop {
        first.publish("gw.q", "probe".into()).await.unwrap();
        first.flush().await.unwrap();
        for m in members.iter_mut() {
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), m.next()).await {
                break 'probe;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "queue interest never crossed"
        );
    }
    for m in members.iter_mut() {
        drain_count(m, Duration::from_millis(300)).await;
    }
    for k in 0..N {
        first.publish("gw.q", format!("q{k}").into()).await.unwrap();
    }
    first.flush().await.unwrap();
    let mut total = 0;
    for m in members.iter_mut() {
        total += drain_count(m, Duration::from_millis(1500)).await;
    }
    assert_eq!(
        total, N,
        "queue group across gateways served {total} of {N}"
    );

    // A member in the publisher's own cluster takes everything (local cluster first).
    let mut local = first
        .queue_subscribe("gw.q", "workers".into())
        .await
        .unwrap();
    first.flush().await.unwrap();
    // Give the new member's interest time to reach the other servers of its cluster.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for k in 0..N {
        first.publish("gw.q", format!("l{k}").into()).await.unwrap();
    }
    first.flush().await.unwrap();
    let here = drain_count(&mut local, Duration::from_millis(1500)).await;
    let mut remote = 0;
    for m in members.iter_mut() {
        remote += drain_count(m, Duration::from_millis(300)).await;
    }
    assert_eq!((here, remote), (N, 0), "local member must take all");
}

/// Two clusters of two servers each; `kinds` gives each server's binary (A1, A2, B1, B2).
/// Only A1 is told about B; the rest is discovered.
fn two_clusters(kinds: [&Path; 4]) -> Vec<Gw> {
    let (ga1, ga2, gb1, gb2) = (free_port(), free_port(), free_port(), free_port());
    let b1 = Gw::start(kinds[2], "B", gb1, &[], &[]);
    let b2 = Gw::start(kinds[3], "B", gb2, &[b1.cport], &[]);
    let a1 = Gw::start(kinds[0], "A", ga1, &[], &[("B", gb1)]);
    let a2 = Gw::start(kinds[1], "A", ga2, &[a1.cport], &[]);
    vec![a1, a2, b1, b2]
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_of_ours() {
    let o = ours();
    let nodes = two_clusters([&o, &o, &o, &o]);
    let refs: Vec<&Gw> = nodes.iter().collect();
    wait_full_mesh(&refs);
    for n in &nodes {
        let log = n.srv.proc.log_text();
        assert!(
            log.contains(&format!("Gateway name is {}", n.cluster)),
            "{log}"
        );
        assert!(
            log.contains("Listening for gateways connections on 127.0.0.1:"),
            "{log}"
        );
        // The gateway listens before clients, as the reference.
        assert!(
            log.find("Listening for gateways").unwrap()
                < log.find("Listening for client connections").unwrap(),
            "{log}"
        );
    }
    exercise(&refs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn our_cluster_with_a_reference_cluster() {
    let (o, r) = (ours(), reference());
    // Ours dials the reference...
    let nodes = two_clusters([&o, &o, &r, &r]);
    let refs: Vec<&Gw> = nodes.iter().collect();
    wait_full_mesh(&refs);
    exercise(&refs).await;
    drop(nodes);
    // ...and the reference dials ours.
    let nodes = two_clusters([&r, &r, &o, &o]);
    let refs: Vec<&Gw> = nodes.iter().collect();
    wait_full_mesh(&refs);
    exercise(&refs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_clusters_mixing_both_servers() {
    let (o, r) = (ours(), reference());
    let (ga1, ga2, gb1, gb2, gc1) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    // A = ours + reference, B = reference + ours, C = ours; C knows A, A knows B: the rest
    // is discovered through gateway gossip and routes.
    let a1 = Gw::start(&o, "A", ga1, &[], &[("B", gb1)]);
    let a2 = Gw::start(&r, "A", ga2, &[a1.cport], &[]);
    let b1 = Gw::start(&r, "B", gb1, &[], &[]);
    let b2 = Gw::start(&o, "B", gb2, &[b1.cport], &[]);
    let c1 = Gw::start(&o, "C", gc1, &[], &[("A", ga1)]);
    let refs = [&a1, &a2, &b1, &b2, &c1];
    wait_full_mesh(&refs);
    exercise(&refs).await;
}

/// Whether the peer closes within `t` (whatever it sends first is skipped).
fn eof_within(r: &mut Raw, t: Duration) -> bool {
    r.stream.set_read_timeout(Some(t)).ok();
    let start = std::time::Instant::now();
    while r.try_line().is_some() {
        if start.elapsed() > t {
            return false;
        }
    }
    start.elapsed() < t
}

/// Raw bytes on a gateway port: the same answers from both servers.
#[test]
fn bad_input_on_the_gateway_port_as_the_reference() {
    let cases: &[(&str, &str)] = &[
        ("GARBAGE\r\n", "-ERR 'Authorization Violation'\r\n"),
        (
            "CONNECT {}\r\n",
            "-ERR 'attempted to connect to gateway port'\r\n",
        ),
        (
            "CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n",
            "-ERR 'attempted to connect to gateway port'\r\n",
        ),
        (
            "CONNECT {\"gateway\":\"Z\"}\r\nCRAP\r\n",
            "-ERR 'Unknown Protocol Operation'\r\n",
        ),
    ];
    for exe in [ours(), reference()] {
        let g = Gw::start(&exe, "A", free_port(), &[], &[]);
        for (input, want) in cases {
            let mut r = Raw::connect(g.gport);
            let info = r.info();
            assert_eq!(info["gateway"], "A", "{info}");
            assert_eq!(info["gateway_nrp"], true);
            assert_eq!(info["gateway_iom"], true);
            r.send(input.as_bytes());
            let mut got = r.line();
            while got.starts_with("PING") || got.starts_with("INFO") {
                got = r.line();
            }
            assert_eq!(&got, want, "{} on {input:?}", g.name());
            assert!(eof_within(&mut r, T), "{} kept the connection", g.name());
        }
        // A remote that names itself but sends subscriptions on the inbound side (where
        // only messages may come): closed as a protocol violation.
        let mut r = Raw::connect(g.gport);
        r.info();
        r.send(
            b"CONNECT {\"gateway\":\"Z\"}\r\nINFO {\"gateway\":\"Z\",\"server_id\":\"XYZ\"}\r\n",
        );
        r.send(b"RS+ $G foo\r\n");
        assert!(eof_within(&mut r, T), "{} kept the connection", g.name());
        // Messages in an unknown account are answered with A-.
        let mut r = Raw::connect(g.gport);
        r.info();
        r.send(
            b"CONNECT {\"gateway\":\"Z\"}\r\nINFO {\"gateway\":\"Z\",\"server_id\":\"XYZ\"}\r\n",
        );
        r.send(b"RMSG NOPE foo 2\r\nhi\r\n");
        let mut got = r.line();
        while !got.starts_with("A-") {
            assert!(!got.is_empty(), "{} closed before A-", g.name());
            got = r.line();
        }
        assert_eq!(got, "A- NOPE\r\n", "{}", g.name());
        // Both still serve clients.
        let mut c = Raw::connect(g.srv.port);
        c.info();
        c.send(b"CONNECT {\"verbose\":false}\r\n");
        assert!(c.sync().is_empty());
    }
}

/// A gateway that rejects unknown clusters, and a dialled gateway that is not the one
/// configured: both sides log and close as the reference.
#[test]
fn wrong_gateway_names_are_refused() {
    for exe in [ours(), reference()] {
        let gport = free_port();
        let dir = TempDir::new("gwrej");
        let f = dir.write(
            "s.conf",
            &format!(
                "gateway {{ name: A, listen: \"127.0.0.1:{gport}\", reject_unknown_cluster: true }}\n"
            ),
        );
        let srv = ServerProc::start(&exe, &["-c", f.to_str().unwrap()]);
        let mut r = Raw::connect(gport);
        r.info();
        r.send(b"CONNECT {\"gateway\":\"Z\"}\r\n");
        let mut got = r.line();
        while got.starts_with("PING") {
            got = r.line();
        }
        assert_eq!(
            got,
            "-ERR 'Connection to gateway \"A\" rejected'\r\n",
            "{}",
            exe.display()
        );
        assert!(r.closed_within(T));
        assert!(srv
            .proc
            .wait_log("Rejecting connection from gateway \"Z\"", T));
    }
    // Ours dials "B" at a port where cluster "C" answers.
    let c = Gw::start(&reference(), "C", free_port(), &[], &[]);
    let a = Gw::start(&ours(), "A", free_port(), &[], &[("B", c.gport)]);
    assert!(
        a.srv.proc.wait_log(
            "Failing connection to gateway \"B\", remote gateway name is \"C\"",
            LONG
        ),
        "{}",
        a.srv.proc.log_text()
    );
    // The -ERR goes to a remote that expects a CONNECT first: it closes on it, as two
    // reference servers do.
    assert!(c.srv.proc.wait_log("authentication error", LONG));
}

/// The gateway block's start-up errors, word for word.
#[test]
fn gateway_config_errors_as_the_reference() {
    let cases = [
        "cluster { name: X, port: -1 }\ngateway { name: A, port: -1 }\n",
        "gateway { port: -1 }\n",
        "gateway { name: A }\n",
        "gateway { name: A, port: -1, gateways: [ {url: \"nats://127.0.0.1:1\"} ] }\n",
        "gateway { name: A, port: -1, gateways: [ {name: B} ] }\n",
        "gateway { name: A, port: -1, foo: 1, authorization { users: [{user: a, password: b}] } }\n",
        "gateway { name: A, port: -1, authorization { token: abc }, gateways: [ {name: B, url: \"foo bar://\"} ] }\n",
        "gateway { name: A, port: -1, gateways: 1 }\n",
    ];
    for text in cases {
        let dir = TempDir::new("gwcfg");
        let f = dir.write("g.conf", text);
        let f = f.to_str().unwrap();
        // The reference walks the block's keys in Go's random map order: compare the
        // reported lines as a set.
        let run = |exe: &Path| {
            let (code, _, err) = run_bounded(exe, &["-c", f, "-p", "-1"], T);
            let err = err.replace(f, "F");
            let mut lines: Vec<String> = err
                .lines()
                .map(|l| l.strip_prefix("nats-server: ").unwrap_or(l).to_string())
                .collect();
            lines.sort();
            (code, lines)
        };
        let want = run(&reference());
        let got = run(&ours());
        assert_eq!(got, want, "config:\n{text}");
    }
}

/// kill -9 of a gateway server while messages flow: subscribers on the survivors lose
/// nothing, and the killed server's links come back when it returns.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_of_a_gateway_server_under_load() {
    for kinds in [[ours(), ours()], [ours(), reference()]] {
        let (o, b_kind) = (&kinds[0], &kinds[1]);
        let (ga1, ga2, gb1, gb2) = (free_port(), free_port(), free_port(), free_port());
        let b2 = Gw::start(o, "B", gb2, &[], &[]);
        let mut b1 = Gw::start(b_kind, "B", gb1, &[b2.cport], &[]);
        // A dials B at b2 only, so the publisher's path (a1 → b2) avoids b1.
        let a1 = Gw::start(o, "A", ga1, &[], &[("B", gb2)]);
        let a2 = Gw::start(o, "A", ga2, &[a1.cport], &[]);
        wait_full_mesh(&[&a1, &a2, &b1, &b2]);
        let pc = connect(&a1.url()).await;
        let sa = connect(&a2.url()).await;
        let sb = connect(&b2.url()).await;
        let mut sub_a = sa.subscribe("load").await.unwrap();
        let mut sub_b = sb.subscribe("load").await.unwrap();
        sa.flush().await.unwrap();
        sb.flush().await.unwrap();
        await_interest(&pc, "load", &mut sub_a).await;
        await_interest(&pc, "load", &mut sub_b).await;
        const TOTAL: usize = 20_000;
        let publisher = {
            let pc = pc.clone();
            tokio::spawn(async move {
                for k in 0..TOTAL {
                    pc.publish("load", format!("{k}").into()).await.unwrap();
                    if k % 100 == 99 {
                        pc.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                pc.flush().await.unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        b1.kill9();
        let (ca, cb) = tokio::join!(
            drain_count(&mut sub_a, Duration::from_secs(3)),
            drain_count(&mut sub_b, Duration::from_secs(3))
        );
        publisher.await.unwrap();
        assert_eq!(
            (ca, cb),
            (TOTAL, TOTAL),
            "survivors lost messages ({}); logs:\n{}\n{}",
            b1.name(),
            a1.srv.proc.log_text(),
            b2.srv.proc.log_text()
        );
        // b1 comes back: its links return and it gets traffic again. It listens on fresh
        // ports: the old ones may have been taken meanwhile by a process of another test
        // (seen for its client port in a full parallel run); its peers learn the new
        // gateway URL by gossip, as they learnt the old one.
        let exe = b1.exe.clone();
        drop(b1);
        let b1 = Gw::start(&exe, "B", free_port(), &[b2.cport], &[]);
        wait_full_mesh(&[&a1, &a2, &b1, &b2]);
        let c1 = connect(&b1.url()).await;
        let mut sub_1 = c1.subscribe("load").await.unwrap();
        c1.flush().await.unwrap();
        await_interest(&pc, "load", &mut sub_1).await;
        let mut back = sa.subscribe("back").await.unwrap();
        sa.flush().await.unwrap();
        await_interest(&c1, "back", &mut back).await;
    }
}

/// Keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// /gatewayz (with its parameters) and /varz's gateway block: the same shape and values on
/// both servers for the same two-cluster setup.
#[test]
fn gatewayz_and_varz_as_the_reference() {
    let mut seen = Vec::new();
    for exe in [ours(), reference()] {
        let gb = free_port();
        let b = Gw::start(&exe, "B", gb, &[], &[]);
        let a = Gw::start(&exe, "A", free_port(), &[], &[("B", gb)]);
        wait_full_mesh(&[&a, &b]);
        let z = serde_json::from_str::<Value>(
            &try_get(a.http, "/gatewayz?accs=1").expect("gatewayz").body,
        )
        .unwrap();
        let out = &z["outbound_gateways"]["B"];
        let inb = &z["inbound_gateways"]["B"][0];
        let accounts = |v: &Value| -> Vec<(String, String)> {
            let mut a: Vec<(String, String)> = v["accounts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            (
                                x["name"].as_str().unwrap_or("").to_string(),
                                x["interest_mode"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            a.sort();
            a
        };
        let varz = serde_json::from_str::<Value>(&try_get(a.http, "/varz").unwrap().body).unwrap();
        let g = &varz["gateway"];
        let named =
            serde_json::from_str::<Value>(&try_get(a.http, "/gatewayz?gw_name=Z").unwrap().body)
                .unwrap();
        let bad = try_get(a.http, "/gatewayz?accs=x").unwrap();
        seen.push((
            keys(&z),
            (z["name"].clone(), z["host"].clone(), z["port"] == a.gport),
            (
                keys(out),
                keys(&out["connection"]),
                out["configured"].clone(),
            ),
            (
                keys(inb),
                inb["configured"].clone(),
                inb["connection"]["kind"].clone(),
            ),
            (accounts(out), accounts(inb)),
            (
                keys(g),
                g["name"].clone(),
                g["port"] == a.gport,
                g["auth_timeout"].clone(),
            ),
            (
                g["gateways"][0]["name"].clone(),
                g["gateways"][0]["urls"].clone(),
            ),
            (
                named["outbound_gateways"].clone(),
                named["inbound_gateways"].clone(),
            ),
            (bad.status, bad.body.clone()),
        ));
    }
    let (o, r) = (&seen[0], &seen[1]);
    assert_eq!(o.0, r.0, "gatewayz keys");
    assert_eq!(o.1, r.1);
    assert_eq!(o.2, r.2, "outbound entry");
    assert_eq!(o.3, r.3, "inbound entry");
    assert_eq!(o.4, r.4, "accounts and their interest modes");
    assert_eq!(o.5, r.5, "varz gateway");
    assert_eq!(o.6 .0, r.6 .0);
    assert_eq!(o.7, r.7, "gw_name of an unknown gateway");
    assert_eq!(o.8, r.8, "bad accs");
}

/// Gateway credentials (`authorization` in the gateway block): ours and the reference
/// join when both use them, and a wrong password is refused by both alike.
#[test]
fn gateway_authorization_across_both_servers() {
    let auth = "authorization { user: gw, password: s3cret }";
    let (o, r) = (ours(), reference());
    let gb = free_port();
    let b = Gw::start_full(&r, free_port(), "B", gb, free_port(), &[], &[], auth);
    let a = Gw::start_full(
        &o,
        free_port(),
        "A",
        free_port(),
        free_port(),
        &[],
        &[("B", gb)],
        auth,
    );
    wait_full_mesh(&[&a, &b]);
    for g in [&a, &b] {
        for (connect, want) in [
            (
                "CONNECT {\"gateway\":\"Z\",\"user\":\"gw\",\"pass\":\"bad\"}\r\n",
                Some("-ERR 'Authorization Violation'\r\n"),
            ),
            (
                "CONNECT {\"gateway\":\"Z\",\"user\":\"gw\",\"pass\":\"s3cret\"}\r\n",
                None,
            ),
        ] {
            let mut raw = Raw::connect(g.gport);
            let info = raw.info();
            assert_eq!(info["auth_required"], true, "{}", g.name());
            raw.send(connect.as_bytes());
            match want {
                Some(w) => {
                    let mut got = raw.line();
                    while got.starts_with("PING") {
                        got = raw.line();
                    }
                    assert_eq!(got, w, "{}", g.name());
                    assert!(eof_within(&mut raw, T), "{}", g.name());
                }
                None => {
                    raw.send(b"PING\r\n");
                    let mut got = raw.line();
                    while got.starts_with("PING") || got.starts_with("INFO") {
                        got = raw.line();
                    }
                    assert_eq!(got, "PONG\r\n", "{}", g.name());
                }
            }
        }
    }
}

/// Gateways over TLS (`tls {}` in the gateway block) between our server and the
/// reference, both ways round: the links form and a message crosses each way.
#[tokio::test(flavor = "multi_thread")]
async fn gateway_tls_with_the_reference() {
    let pki = crate::tls::pki();
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let tls = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", timeout: 3 }}",
        p(&pki.server_cert),
        p(&pki.server_key),
        p(&pki.ca)
    );
    let (o, r) = (ours(), reference());
    for (ea, eb) in [(&o, &r), (&r, &o)] {
        let gb = free_port();
        let b = Gw::start_full(eb, free_port(), "B", gb, free_port(), &[], &[], &tls);
        let a = Gw::start_full(
            ea,
            free_port(),
            "A",
            free_port(),
            free_port(),
            &[],
            &[("B", gb)],
            &tls,
        );
        wait_full_mesh(&[&a, &b]);
        let ca = connect(&a.url()).await;
        let cb = connect(&b.url()).await;
        let mut sb = cb.subscribe("over.tls").await.unwrap();
        cb.flush().await.unwrap();
        await_interest(&ca, "over.tls", &mut sb).await;
        let mut sa = ca.subscribe("back.tls").await.unwrap();
        ca.flush().await.unwrap();
        await_interest(&cb, "back.tls", &mut sa).await;
    }
}

/// A remote gateway that does not announce interest-only mode (a pre-2.9 peer, played
/// here by a raw socket): our server sends optimistically and honours `RS-`, `A-`, `A+`
/// and the switch to interest-only (INFO `gateway_cmd` 2, `RS+`, `gateway_cmd` 3).
#[test]
fn optimistic_sends_to_a_remote_follow_its_interest() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let zport = listener.local_addr().unwrap().port();
    let a = Gw::start(&ours(), "A", free_port(), &[], &[("Z", zport)]);
    listener.set_nonblocking(false).unwrap();
    let (mut z, _) = listener.accept().expect("our server dials Z");
    z.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    z.write_all(b"INFO {\"server_id\":\"FAKEZ\",\"gateway\":\"Z\",\"headers\":true}\r\n")
        .unwrap();
    let mut rd = BufReader::new(z.try_clone().unwrap());
    // Lines until a quiet period.
    let lines = |rd: &mut BufReader<std::net::TcpStream>| -> Vec<String> {
        let mut v = Vec::new();
        loop {
            let mut l = String::new();
            match rd.read_line(&mut l) {
                Ok(0) | Err(_) => return v,
                Ok(_) => {
                    if !l.starts_with("PING") && !l.starts_with("PONG") {
                        v.push(l.trim_end().to_string());
                    }
                }
            }
        }
    };
    let hello = lines(&mut rd);
    assert!(
        hello
            .iter()
            .any(|l| l.starts_with("CONNECT ") && l.contains("\"gateway\":\"A\"")),
        "{hello:?}"
    );
    let mut c = Raw::connect(a.srv.port);
    c.info();
    c.send(b"CONNECT {\"verbose\":false}\r\n");
    let mut publish = |subjects: &[&str]| {
        for s in subjects {
            c.send(format!("PUB {s} 1\r\nx\r\n").as_bytes());
        }
        c.sync();
    };
    let msgs = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|l| l.starts_with("RMSG $G "))
            .collect()
    };
    publish(&["foo", "bar"]);
    assert_eq!(msgs(lines(&mut rd)), ["RMSG $G foo 1", "RMSG $G bar 1"]);
    z.write_all(b"RS- $G foo\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    publish(&["foo", "bar"]);
    assert_eq!(msgs(lines(&mut rd)), ["RMSG $G bar 1"]);
    z.write_all(b"A- $G\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    publish(&["foo", "bar"]);
    assert!(msgs(lines(&mut rd)).is_empty());
    z.write_all(b"A+ $G\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    publish(&["foo", "bar"]);
    assert_eq!(msgs(lines(&mut rd)), ["RMSG $G foo 1", "RMSG $G bar 1"]);
    // The remote switches the account to interest-only with one subscription.
    z.write_all(
        b"INFO {\"gateway\":\"Z\",\"gateway_cmd\":2,\"gateway_cmd_payload\":\"JEc=\"}\r\n\
          RS+ $G baz.*\r\nRS+ $G q grp 1\r\n\
          INFO {\"gateway\":\"Z\",\"gateway_cmd\":3,\"gateway_cmd_payload\":\"JEc=\"}\r\n",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    publish(&["foo", "bar", "baz.1", "q"]);
    assert_eq!(
        msgs(lines(&mut rd)),
        ["RMSG $G baz.1 1", "RMSG $G q | grp 1"]
    );
    // Our server is still fine.
    assert!(c.sync().is_empty());
}

/// A server of cluster `cluster` with accounts `X` (user x) and, when `with_y`, `Y` (user y).
fn with_accounts(
    exe: &Path,
    cluster: &str,
    gport: u16,
    remotes: &[(&str, u16)],
    with_y: bool,
) -> Gw {
    let (http, cport) = (free_port(), free_port());
    let remotes: Vec<String> = remotes
        .iter()
        .map(|(n, p)| format!("{{name: {n}, url: \"nats://127.0.0.1:{p}\"}}"))
        .collect();
    let y = if with_y {
        "Y { users: [{user: y, password: y}] }"
    } else {
        ""
    };
    let text = format!(
        "http: \"127.0.0.1:{http}\"\n\
         accounts {{ X {{ users: [{{user: x, password: x}}] }}\n {y} }}\n\
         cluster {{ name: {cluster}, listen: \"127.0.0.1:{cport}\" }}\n\
         gateway {{ name: {cluster}, listen: \"127.0.0.1:{gport}\", gateways: [{}] }}\n",
        remotes.join(", ")
    );
    let dir = TempDir::new("gwacc");
    let f = dir.write("s.conf", &text);
    let srv = ServerProc::start(exe, &["-c", f.to_str().unwrap(), "-D"]);
    Gw {
        srv,
        exe: exe.to_path_buf(),
        cluster: cluster.to_string(),
        gport,
        cport,
        http,
        _dir: dir,
    }
}

/// Interest is per account across gateways: a subscriber in account X of one cluster
/// gets what X publishes in the other, and nothing of the same subject in another account;
/// an account the remote does not have is answered with `A-` and costs nothing.
#[tokio::test(flavor = "multi_thread")]
async fn accounts_stay_apart_across_gateways() {
    let (o, r) = (ours(), reference());
    for (ea, eb) in [(&o, &r), (&r, &o)] {
        let gb = free_port();
        let b = with_accounts(eb, "B", gb, &[], false);
        let a = with_accounts(ea, "A", free_port(), &[("B", gb)], true);
        wait_full_mesh(&[&a, &b]);
        let login = |g: &Gw, u: &str| {
            let url = g.url();
            let u = u.to_string();
            async move {
                async_nats::ConnectOptions::with_user_and_password(u.clone(), u)
                    .connect(url)
                    .await
                    .expect("login")
            }
        };
        let bx = login(&b, "x").await;
        let mut sub = bx.subscribe("acc.s").await.unwrap();
        bx.flush().await.unwrap();
        let ax = login(&a, "x").await;
        let ay = login(&a, "y").await;
        await_interest(&ax, "acc.s", &mut sub).await;
        for k in 0..20 {
            ay.publish("acc.s", format!("y{k}").into()).await.unwrap();
            ax.publish("acc.s", format!("x{k}").into()).await.unwrap();
        }
        ay.flush().await.unwrap();
        ax.flush().await.unwrap();
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1500), sub.next()).await
        {
            if !is_probe(&m) {
                got.push(String::from_utf8_lossy(&m.payload).into_owned());
            }
        }
        let want: Vec<String> = (0..20).map(|k| format!("x{k}")).collect();
        assert_eq!(got, want, "{} -> {}", a.name(), b.name());
        // B has no account Y: what A sent in it (if anything) was answered with A-.
        let z = serde_json::from_str::<Value>(&try_get(a.http, "/gatewayz?accs=1").unwrap().body)
            .unwrap();
        let accs: Vec<String> = z["outbound_gateways"]["B"]["accounts"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        assert!(accs.contains(&"X".to_string()), "{} {z}", a.name());
    }
}

/// `/metrics` carries the gateway connections under prometheus-nats-exporter's gatewayz
/// names, with the figures /gatewayz shows.
#[test]
fn gateway_metrics_follow_gatewayz() {
    let gb = free_port();
    let b = Gw::start(&ours(), "B", gb, &[], &[]);
    let a = Gw::start(&ours(), "A", free_port(), &[], &[("B", gb)]);
    wait_full_mesh(&[&a, &b]);
    let z = a.gatewayz().expect("gatewayz");
    let id = z["server_id"].as_str().unwrap().to_string();
    let out_cid = z["outbound_gateways"]["B"]["connection"]["cid"].clone();
    let in_cid = z["inbound_gateways"]["B"][0]["connection"]["cid"].clone();
    let r = try_get(a.http, "/metrics").expect("GET /metrics");
    assert_eq!(r.status, 200);
    let has = |line: &str| r.body.lines().any(|l| l == line);
    for (line, what) in [
        (
            format!("gnatsd_gatewayz_outbound_gateway_configured{{gateway_name=\"A\",remote_gateway_name=\"B\",server_id=\"{id}\"}} 1"),
            "configured outbound",
        ),
        (
            format!("gnatsd_gatewayz_inbound_gateway_configured{{gateway_name=\"A\",remote_gateway_name=\"B\",server_id=\"{id}\"}} 0"),
            "inbound",
        ),
    ] {
        assert!(has(&line), "{what}: {line} not in\n{}", r.body);
    }
    for (kind, cid) in [("outbound", &out_cid), ("inbound", &in_cid)] {
        for f in [
            "rtt",
            "pending_bytes",
            "in_msgs",
            "out_msgs",
            "in_bytes",
            "out_bytes",
            "subscriptions",
        ] {
            let prefix = format!(
                "gnatsd_gatewayz_{kind}_gateway_conn_{f}{{cid=\"{cid}\",gateway_name=\"A\",remote_gateway_name=\"B\",server_id=\"{id}\"}} "
            );
            assert!(
                r.body.lines().any(|l| l.starts_with(&prefix)),
                "{prefix} not in\n{}",
                r.body
            );
        }
        let info = format!("gnatsd_gatewayz_{kind}_gateway_info{{gateway_name=\"A\",idle=");
        assert!(r.body.contains(&info), "{info} not in\n{}", r.body);
    }
}
