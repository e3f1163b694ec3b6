//! Clustering: routes between our servers and with the Go reference, gossip to a full
//! mesh, interest propagation, queue groups across servers, node loss and rejoin.

use crate::support::{free_port, ours, reference, wait_until, Raw, ServerProc};
use futures::StreamExt;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(20);

/// A clustered server process with its route port.
struct Node {
    srv: ServerProc,
    cport: u16,
}

impl Node {
    /// Starts `exe` with a cluster listener on `cport` and routes to `routes` (ports).
    fn start(exe: &Path, cport: u16, routes: &[u16]) -> Node {
        Self::start_on(exe, free_port(), cport, routes)
    }

    fn start_on(exe: &Path, port: u16, cport: u16, routes: &[u16]) -> Node {
        let listen = format!("nats://127.0.0.1:{cport}");
        let routes: Vec<String> = routes
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let routes = routes.join(",");
        let mut args = vec!["--cluster", &listen, "--cluster_name", "t", "-D"];
        if !routes.is_empty() {
            args.push("--routes");
            args.push(&routes);
        }
        let srv = ServerProc::start_on(exe, port, &args);
        Node { srv, cport }
    }

    fn url(&self) -> String {
        self.srv.url()
    }

    /// Client URLs this server advertises (own plus every registered peer's).
    fn connect_urls(&self) -> Vec<String> {
        let mut r = Raw::connect(self.srv.port);
        let info = r.info();
        info["connect_urls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this server's INFO lists exactly the given servers' client addresses.
    fn knows_exactly(&self, nodes: &[&Node]) -> bool {
        let mut got = self.connect_urls();
        got.sort();
        let mut want: Vec<String> = nodes.iter().map(|n| n.srv.addr()).collect();
        want.sort();
        got == want || (nodes.len() == 1 && got.is_empty())
    }

    fn kill9(&mut self) {
        self.srv.proc.signal(libc::SIGKILL);
        let _ = self.srv.proc.wait_exit(T);
    }
}

/// Waits until every node lists exactly all nodes as members: a full mesh.
fn wait_mesh(nodes: &[&Node]) {
    let ok = wait_until(LONG, || nodes.iter().all(|n| n.knows_exactly(nodes)));
    if !ok {
        let mut msg = String::new();
        for n in nodes {
            msg.push_str(&format!(
                "--- {} urls {:?}\n{}\n",
                n.srv.addr(),
                n.connect_urls(),
                n.srv.proc.log_text()
            ));
        }
        panic!("no full mesh:\n{msg}");
    }
}

async fn connect(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect")
}

/// Publishes `probe` on `publisher` until `sub` sees it: the subscriber's interest (and
/// everything subscribed before it on that connection) has reached the publisher's server.
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
            // Drain other probes still in flight.
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

/// Receives exactly `n` messages and then nothing more for a short while.
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

/// Counts what arrives within `quiet` of the last message.
async fn drain_count(sub: &mut async_nats::Subscriber, quiet: Duration) -> usize {
    let mut n = 0;
    while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
        if !is_probe(&m) {
            n += 1;
        }
    }
    n
}

/// Probes published by `await_interest` reach every matching subscriber; counts skip them.
fn is_probe(m: &async_nats::Message) -> bool {
    &m.payload[..] == b"probe"
}

/// Seed A, B and C point at A only (the NATS docs example).
fn docs_cluster(exe: &Path) -> (Node, Node, Node) {
    let ca = free_port();
    let a = Node::start(exe, ca, &[]);
    let b = Node::start(exe, free_port(), &[ca]);
    let c = Node::start(exe, free_port(), &[ca]);
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_servers_seed_full_mesh() {
    let (a, b, c) = docs_cluster(&ours());
    wait_mesh(&[&a, &b, &c]);
    // Each server registered exactly the two others.
    for n in [&a, &b, &c] {
        let log = n.srv.proc.log_text();
        assert!(
            log.contains("Listening for route connections on 127.0.0.1:"),
            "{log}"
        );
        assert!(log.contains("Cluster name is t"), "{log}");
        let ready = log.find("Server is ready").expect("ready");
        assert!(log.find("Cluster name is t").unwrap() > ready, "{log}");
        assert!(log.contains("Route connection created"), "{log}");
    }
    let sc = connect(&a.url()).await;
    let mut sub = sc.subscribe("hello").await.unwrap();
    sc.flush().await.unwrap();
    let pa = connect(&a.url()).await;
    let pb = connect(&b.url()).await;
    let pc = connect(&c.url()).await;
    await_interest(&pb, "hello", &mut sub).await;
    await_interest(&pc, "hello", &mut sub).await;
    for (i, p) in [&pa, &pb, &pc].iter().enumerate() {
        p.publish("hello", format!("world_{i}").into())
            .await
            .unwrap();
        p.flush().await.unwrap();
    }
    let got = expect_count(&mut sub, 3).await;
    let mut bodies: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["world_0", "world_1", "world_2"]);
    // A client given all three URLs.
    let all = vec![a.url(), b.url(), c.url()];
    let p = async_nats::connect(all).await.expect("connect all");
    for i in 0..10 {
        p.publish("hello", format!("all_{i}").into()).await.unwrap();
    }
    p.flush().await.unwrap();
    expect_count(&mut sub, 10).await;
}

/// Pub/sub and queue groups across every pair, message counts exact.
/// `local_first` is a node index running our server: its local members must be preferred
/// (Go picks among all members at random, so this is only checked on ours).
async fn check_cross_traffic(nodes: &[&Node], local_first: usize) {
    let clients: Vec<async_nats::Client> = {
        let mut v = Vec::new();
        for n in nodes {
            v.push(connect(&n.url()).await);
        }
        v
    };
    // Plain subscriptions: one per server; every message reaches each exactly once.
    let mut subs = Vec::new();
    for c in &clients {
        let s = c.subscribe("cross.>").await.unwrap();
        c.flush().await.unwrap();
        subs.push(s);
    }
    for (i, p) in clients.iter().enumerate() {
        for s in subs.iter_mut() {
            await_interest(p, &format!("cross.probe.{i}"), s).await;
        }
    }
    for p in &clients {
        for k in 0..20 {
            p.publish(format!("cross.m.{k}"), "x".into()).await.unwrap();
        }
        p.flush().await.unwrap();
    }
    for s in subs.iter_mut() {
        expect_count(s, 20 * clients.len()).await;
    }
    // Headers travel as HMSG between servers.
    for (i, p) in clients.iter().enumerate() {
        let mut h = async_nats::HeaderMap::new();
        h.insert("X-From", format!("c{i}").as_str());
        p.publish_with_headers("cross.h", h, "hb".into())
            .await
            .unwrap();
        p.flush().await.unwrap();
    }
    for s in subs.iter_mut() {
        let got = expect_count(s, clients.len()).await;
        let mut from: Vec<String> = got
            .iter()
            .map(|m| {
                assert_eq!(&m.payload[..], b"hb");
                m.headers
                    .as_ref()
                    .and_then(|h| h.get("X-From"))
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .collect();
        from.sort();
        let want: Vec<String> = (0..clients.len()).map(|i| format!("c{i}")).collect();
        assert_eq!(from, want);
    }
    // Queue group: one member per server; each message exactly once cluster-wide.
    let mut qsubs = Vec::new();
    for c in &clients {
        let q = c
            .queue_subscribe("work", "workers".to_string())
            .await
            .unwrap();
        c.flush().await.unwrap();
        qsubs.push(q);
    }
    // Interest markers subscribed after the queue members prove the members are known.
    for (i, c) in clients.iter().enumerate() {
        let mut marker = c.subscribe(format!("qready.{i}")).await.unwrap();
        c.flush().await.unwrap();
        for p in &clients {
            await_interest(p, &format!("qready.{i}"), &mut marker).await;
        }
    }
    for p in &clients {
        for k in 0..100 {
            p.publish("work", format!("{k}").into()).await.unwrap();
        }
        p.flush().await.unwrap();
    }
    let mut total = 0;
    for q in qsubs.iter_mut() {
        total += drain_count(q, Duration::from_millis(800)).await;
    }
    assert_eq!(total, 100 * clients.len(), "queue deliveries");
    // Local members are preferred: a publisher's own server's member takes everything.
    let c0 = &clients[local_first];
    for k in 0..50 {
        c0.publish("work", format!("l{k}").into()).await.unwrap();
    }
    c0.flush().await.unwrap();
    for (i, q) in qsubs.iter_mut().enumerate() {
        let want = if i == local_first { 50 } else { 0 };
        let quiet = Duration::from_millis(if i == local_first { 500 } else { 100 });
        assert_eq!(drain_count(q, quiet).await, want, "member {i}");
    }
    // Request/reply across servers.
    let mut responder = clients[1].subscribe("svc").await.unwrap();
    clients[1].flush().await.unwrap();
    await_interest(&clients[0], "svc", &mut responder).await;
    let r1 = clients[1].clone();
    let h = tokio::spawn(async move {
        if let Some(m) = responder.next().await {
            if let Some(reply) = m.reply {
                r1.publish(reply, "pong".into()).await.unwrap();
                r1.flush().await.unwrap();
            }
        }
    });
    let resp = tokio::time::timeout(T, clients[0].request("svc", "ping".into()))
        .await
        .expect("request timeout")
        .expect("request");
    assert_eq!(&resp.payload[..], b"pong");
    h.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_go_seed_with_ours() {
    let ca = free_port();
    let a = Node::start(&reference(), ca, &[]);
    let b = Node::start(&ours(), free_port(), &[ca]);
    let c = Node::start(&ours(), free_port(), &[ca]);
    wait_mesh(&[&a, &b, &c]);
    check_cross_traffic(&[&a, &b, &c], 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_ours_seed_with_go() {
    let ca = free_port();
    let a = Node::start(&ours(), ca, &[]);
    let b = Node::start(&reference(), free_port(), &[ca]);
    let c = Node::start(&reference(), free_port(), &[ca]);
    wait_mesh(&[&a, &b, &c]);
    check_cross_traffic(&[&a, &b, &c], 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ours_only_cross_traffic_with_same_route_list() {
    // The same route list on every server, self included.
    let ports = [free_port(), free_port(), free_port()];
    let a = Node::start(&ours(), ports[0], &ports);
    let b = Node::start(&ours(), ports[1], &ports);
    let c = Node::start(&ours(), ports[2], &ports);
    wait_mesh(&[&a, &b, &c]);
    check_cross_traffic(&[&a, &b, &c], 0).await;
    assert!(a.srv.proc.log_text().contains("Detected route to self"));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_loss_and_rejoin() {
    let exe = ours();
    let (a, mut b, c) = docs_cluster(&exe);
    wait_mesh(&[&a, &b, &c]);
    // A client on B that learns the other servers from INFO only.
    let on_b = async_nats::ConnectOptions::new()
        .connect(b.url())
        .await
        .expect("connect b");
    let mut sub_b = on_b.subscribe("stream").await.unwrap();
    on_b.flush().await.unwrap();
    let sa = connect(&a.url()).await;
    let sc = connect(&c.url()).await;
    let mut sub_a = sa.subscribe("stream").await.unwrap();
    sa.flush().await.unwrap();
    let mut sub_c = sc.subscribe("stream").await.unwrap();
    sc.flush().await.unwrap();
    let pa = connect(&a.url()).await;
    let pc = connect(&c.url()).await;
    for p in [&pa, &pc] {
        await_interest(p, "stream", &mut sub_a).await;
        await_interest(p, "stream", &mut sub_c).await;
        await_interest(p, "stream", &mut sub_b).await;
    }
    // A steady stream from the survivors; B dies in the middle.
    let (pa2, pc2) = (pa.clone(), pc.clone());
    let publisher = tokio::spawn(async move {
        for k in 0..400 {
            let p = if k % 2 == 0 { &pa2 } else { &pc2 };
            p.publish("stream", format!("{k}").into()).await.unwrap();
            if k % 20 == 0 {
                p.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        pa2.flush().await.unwrap();
        pc2.flush().await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.kill9();
    publisher.await.unwrap();
    expect_count(&mut sub_a, 400).await;
    expect_count(&mut sub_c, 400).await;
    // The B client fails over to A or C, which it only knows from connect_urls.
    let reconnected = wait_until(LONG, || {
        on_b.connection_state() == async_nats::connection::State::Connected
            && on_b.server_info().port != b.srv.port
    });
    assert!(reconnected, "client did not fail over");
    drop(sub_b);
    // Restart B on the same ports; it rejoins the full mesh and interest re-syncs.
    let b2 = Node::start_on(&exe, b.srv.port, b.cport, &[a.cport]);
    drop(b);
    wait_mesh(&[&a, &b2, &c]);
    let on_b2 = connect(&b2.url()).await;
    let mut sub_b2 = on_b2.subscribe("again").await.unwrap();
    on_b2.flush().await.unwrap();
    let mut sub_a2 = sa.subscribe("again").await.unwrap();
    sa.flush().await.unwrap();
    await_interest(&pc, "again", &mut sub_b2).await;
    await_interest(&on_b2, "again", &mut sub_a2).await;
    await_interest(&pa, "again", &mut sub_b2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_upgrade_walkthrough() {
    let exe = ours();
    let (ca, cb, cc) = (free_port(), free_port(), free_port());
    let (pa, pb) = (free_port(), free_port());
    let a = Node::start_on(&exe, pa, ca, &[cb]);
    let b = Node::start_on(&exe, pb, cb, &[ca]);
    wait_mesh(&[&a, &b]);
    let c = Node::start(&exe, cc, &[ca, cb]);
    wait_mesh(&[&a, &b, &c]);
    // A subscriber on C stays up through everything.
    let on_c = connect(&c.url()).await;
    let mut sub = on_c.subscribe("ru").await.unwrap();
    on_c.flush().await.unwrap();
    // Restart A, then B.
    drop(a);
    wait_mesh(&[&b, &c]);
    let a = Node::start_on(&exe, pa, ca, &[cb]);
    wait_mesh(&[&a, &b, &c]);
    let ca_client = connect(&a.url()).await;
    await_interest(&ca_client, "ru", &mut sub).await;
    drop(b);
    wait_mesh(&[&a, &c]);
    let b = Node::start_on(&exe, pb, cb, &[ca]);
    wait_mesh(&[&a, &b, &c]);
    let cb_client = connect(&b.url()).await;
    await_interest(&cb_client, "ru", &mut sub).await;
    // Remove C: A and B keep their route.
    let mut on_a = connect(&a.url()).await.subscribe("ru2").await.unwrap();
    drop(sub);
    drop(on_c);
    drop(c);
    wait_mesh(&[&a, &b]);
    await_interest(&cb_client, "ru2", &mut on_a).await;
    let _ = &ca_client;
}

#[tokio::test(flavor = "multi_thread")]
async fn interest_propagation_edge_cases() {
    for exe in [ours(), reference()] {
        // Our server publishes; the peer (ours or Go) holds the subscriptions.
        let ca = free_port();
        let a = Node::start(&ours(), ca, &[]);
        let b = Node::start(&exe, free_port(), &[ca]);
        wait_mesh(&[&a, &b]);
        let pub_a = connect(&a.url()).await;
        let on_b = connect(&b.url()).await;
        // Subscription made after the route is up.
        let mut s1 = on_b.subscribe("late").await.unwrap();
        on_b.flush().await.unwrap();
        await_interest(&pub_a, "late", &mut s1).await;
        // Unsubscribe: nothing more arrives, and no RMSG is needed (checked via a marker).
        s1.unsubscribe().await.unwrap();
        let mut marker = on_b.subscribe("marker1").await.unwrap();
        on_b.flush().await.unwrap();
        await_interest(&pub_a, "marker1", &mut marker).await;
        pub_a.publish("late", "gone".into()).await.unwrap();
        pub_a.flush().await.unwrap();
        assert!(matches!(
            tokio::time::timeout(Duration::from_millis(300), s1.next()).await,
            Ok(None) | Err(_)
        ));
        // Auto-unsubscribe after 3.
        let mut s2 = on_b.subscribe("auto").await.unwrap();
        s2.unsubscribe_after(3).await.unwrap();
        on_b.flush().await.unwrap();
        let mut marker2 = on_b.subscribe("marker2").await.unwrap();
        on_b.flush().await.unwrap();
        await_interest(&pub_a, "marker2", &mut marker2).await;
        for _ in 0..6 {
            pub_a.publish("auto", "x".into()).await.unwrap();
        }
        pub_a.flush().await.unwrap();
        let mut n = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), s2.next()).await {
            n += 1;
        }
        assert_eq!(n, 3);
        // A queue group whose last member on B leaves: A's own member takes over, and
        // nothing is lost to B.
        let mut qb = on_b.queue_subscribe("jobs", "g".to_string()).await.unwrap();
        on_b.flush().await.unwrap();
        let mut marker3 = on_b.subscribe("marker3").await.unwrap();
        on_b.flush().await.unwrap();
        await_interest(&pub_a, "marker3", &mut marker3).await;
        for k in 0..10 {
            pub_a.publish("jobs", format!("{k}").into()).await.unwrap();
        }
        pub_a.flush().await.unwrap();
        assert_eq!(expect_count(&mut qb, 10).await.len(), 10);
        qb.unsubscribe().await.unwrap();
        on_b.flush().await.unwrap();
        let mut qa = pub_a
            .queue_subscribe("jobs", "g".to_string())
            .await
            .unwrap();
        pub_a.flush().await.unwrap();
        let mut marker4 = on_b.subscribe("marker4").await.unwrap();
        on_b.flush().await.unwrap();
        await_interest(&pub_a, "marker4", &mut marker4).await;
        // Published on B now: the only member left is on A.
        for k in 0..10 {
            on_b.publish("jobs", format!("{k}").into()).await.unwrap();
        }
        on_b.flush().await.unwrap();
        assert_eq!(expect_count(&mut qa, 10).await.len(), 10);
    }
}

#[test]
fn cluster_name_mismatch_and_route_auth() {
    // Mismatched names never form a route.
    let ca = free_port();
    let a = Node::start(&ours(), ca, &[]);
    let cb = free_port();
    let listen = format!("nats://127.0.0.1:{cb}");
    let route = format!("nats://127.0.0.1:{ca}");
    let b = ServerProc::start(
        &ours(),
        &[
            "--cluster",
            &listen,
            "--cluster_name",
            "other",
            "--routes",
            &route,
            "-D",
        ],
    );
    assert!(a.srv.proc.wait_log(
        "Rejecting connection, cluster name \"other\" does not match \"t\"",
        T
    ));
    assert!(b
        .proc
        .wait_log("Router connection closed: Cluster Name Conflict", T));
    assert!(a.connect_urls().is_empty());
    // Route authorization: the wrong password is refused, the right one accepted.
    let cc = free_port();
    let guarded = format!("nats://ruser:rpass@127.0.0.1:{cc}");
    let c = ServerProc::start(&ours(), &["--cluster", &guarded, "--cluster_name", "t"]);
    let bad = format!("nats-route://ruser:wrong@127.0.0.1:{cc}");
    let d = ServerProc::start(
        &ours(),
        &[
            "--cluster",
            &format!("nats://127.0.0.1:{}", free_port()),
            "--cluster_name",
            "t",
            "--routes",
            &bad,
        ],
    );
    assert!(
        c.proc.wait_log("authentication error", T),
        "{}",
        c.proc.log_text()
    );
    let _ = d;
    let good = format!("nats-route://ruser:rpass@127.0.0.1:{cc}");
    let e = ServerProc::start(
        &reference(),
        &[
            "--cluster",
            &format!("nats://127.0.0.1:{}", free_port()),
            "--cluster_name",
            "t",
            "--routes",
            &good,
        ],
    );
    assert!(wait_until(T, || {
        let mut r = Raw::connect(c.port);
        r.info()["connect_urls"]
            .as_array()
            .is_some_and(|a| a.iter().any(|u| u.as_str() == Some(e.addr().as_str())))
    }));
}

#[test]
fn dynamic_cluster_name() {
    let ca = free_port();
    let listen = format!("nats://127.0.0.1:{ca}");
    let a = ServerProc::start(&ours(), &["--cluster", &listen]);
    assert!(a.proc.wait_log("Cluster name was dynamically generated", T));
    // A Go server with a configured name joins; ours adopts the name.
    let b = Node::start(&reference(), free_port(), &[ca]);
    assert!(
        wait_until(T, || {
            let mut r = Raw::connect(a.port);
            let info = r.info();
            info["cluster"] == "t"
                && info["connect_urls"]
                    .as_array()
                    .is_some_and(|u| u.iter().any(|x| x.as_str() == Some(b.srv.addr().as_str())))
        }),
        "{}",
        a.proc.log_text()
    );
}

/// A raw route speaking to our server: the handshake, $SYS tolerance, RS+/RMSG forms.
#[test]
fn raw_route_protocol() {
    let ca = free_port();
    let a = Node::start(&ours(), ca, &[]);
    let mut r = Raw::connect(ca);
    let info = r.info();
    assert_eq!(info["proto"], 2);
    assert_eq!(info["cluster"], "t");
    assert_eq!(info["headers"], true);
    r.send(b"CONNECT {\"echo\":true,\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"headers\":true,\"name\":\"NFAKE\",\"cluster\":\"t\"}\r\n");
    r.send(b"INFO {\"server_id\":\"NFAKE\",\"server_name\":\"fake\",\"version\":\"2.9.10\",\"proto\":2,\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,\"max_payload\":1048576,\"cluster\":\"t\",\"connect_urls\":[\"127.0.0.1:9\"]} \r\n");
    r.send(b"RS+ $SYS $SYS.REQ.SERVER.PING.VARZ\r\nRMSG $SYS $SYS.SERVER.X.STATSZ 2\r\n{}\r\n");
    r.send(b"RS+ $G pub.>\r\nRS+ $G qq grp 3\r\n");
    // Registered once the PONG is back: the interest below then arrives line by line
    // rather than aggregated in the registration dump.
    r.send(b"PING\r\n");
    assert!(wait_until(T, || r.line() == "PONG\r\n"));
    // A client on our server subscribes: the raw route is told.
    let mut c = Raw::connect(a.srv.port);
    c.info();
    c.send(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo.* 1\r\nSUB bar q1 2\r\nSUB bar q1 3\r\n");
    c.sync();
    let mut lines = Vec::new();
    assert!(wait_until(T, || {
        let l = r.line();
        if l.starts_with("RS") {
            lines.push(l);
        }
        lines.len() >= 3
    }));
    assert_eq!(lines[0], "RS+ $G foo.*\r\n");
    assert_eq!(lines[1], "RS+ $G bar q1 1\r\n");
    assert_eq!(lines[2], "RS+ $G bar q1 2\r\n");
    // Client publishes: RMSG to the route per its interest, with queue markers.
    c.send(b"PUB pub.a 5\r\nhello\r\nPUB pub.b rep.1 3\r\nabc\r\nHPUB pub.c rep.2 12 17\r\nNATS/1.0\r\n\r\nworld\r\n");
    c.send(b"PUB qq 2\r\nhi\r\nPUB qq r.x 2\r\nhi\r\nPUB nobody 1\r\nx\r\n");
    c.sync();
    let want = vec![
        "RMSG $G pub.a 5\r\n",
        "hello\r\n",
        "RMSG $G pub.b rep.1 3\r\n",
        "abc\r\n",
        "HMSG $G pub.c rep.2 12 17\r\n",
        "NATS/1.0\r\n",
        "\r\n",
        "world\r\n",
        "RMSG $G qq | grp 2\r\n",
        "hi\r\n",
        "RMSG $G qq + r.x grp 2\r\n",
        "hi\r\n",
    ];
    let mut got = Vec::new();
    while got.len() < want.len() {
        let l = r.line();
        assert!(!l.is_empty(), "route closed; got {got:?}");
        if l == "PING\r\n" {
            r.send(b"PONG\r\n");
            continue;
        }
        got.push(l);
    }
    assert_eq!(got, want);
    // Route to client: queue-listed, a plain RMSG that must skip queue subs, then a
    // plain one (delivered in order, so its arrival means the others were handled).
    r.send(b"RMSG $G bar | q1 2\r\nq!\r\nRMSG $G bar 2\r\nno\r\nRMSG $G foo.x 4\r\nlast\r\n");
    let mut out = String::new();
    while !out.ends_with("last\r\n") {
        let l = c.line();
        assert!(!l.is_empty(), "client closed; got {out}");
        out.push_str(&l);
    }
    assert!(out.contains("MSG foo.x 1 4\r\nlast\r\n"), "{out}");
    assert_eq!(out.matches("MSG bar").count(), 1, "{out}");
    assert!(out.contains("q!\r\n"), "{out}");
    assert!(!out.contains("no\r\n"), "{out}");
    // Unsubscribing one queue member lowers the weight; the last one sends RS-.
    c.send(b"UNSUB 2\r\nUNSUB 3\r\nUNSUB 1\r\n");
    c.sync();
    let mut lines = Vec::new();
    while lines.len() < 3 {
        let l = r.line();
        if l.starts_with("RS") {
            lines.push(l);
        }
    }
    assert_eq!(
        lines,
        [
            "RS+ $G bar q1 1\r\n",
            "RS- $G bar q1\r\n",
            "RS- $G foo.*\r\n"
        ]
    );
}

#[test]
fn advertise_options_reach_peers() {
    let ca = free_port();
    let seed = Node::start(&reference(), ca, &[]);
    let route = format!("nats://127.0.0.1:{ca}");
    let adv = ServerProc::start(
        &ours(),
        &[
            "--cluster",
            &format!("nats://127.0.0.1:{}", free_port()),
            "--cluster_name",
            "t",
            "--routes",
            &route,
            "--client_advertise",
            "10.1.2.3:4333",
        ],
    );
    assert!(
        wait_until(T, || seed
            .connect_urls()
            .iter()
            .any(|u| u == "10.1.2.3:4333")),
        "{}",
        adv.proc.log_text()
    );
    let mut r = Raw::connect(adv.port);
    let info = r.info();
    assert_eq!(info["host"], "10.1.2.3");
    assert_eq!(info["port"], 4333);
    // no_advertise: the peer does not learn our client URL and our clients get none.
    let quiet = ServerProc::start(
        &ours(),
        &[
            "--cluster",
            &format!("nats://127.0.0.1:{}", free_port()),
            "--cluster_name",
            "t",
            "--routes",
            &route,
            "--no_advertise",
            "-D",
        ],
    );
    assert!(quiet.proc.wait_log("Registering remote route", T));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!seed.connect_urls().contains(&quiet.addr()));
    let mut r = Raw::connect(quiet.port);
    assert!(r.info().get("connect_urls").is_none());
}

/// Reads INFO lines from a raw client until one satisfies `want`.
fn wait_info(
    r: &mut crate::support::Raw,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let Some(line) = r.try_line() else { continue };
        if let Some(json) = line.strip_prefix("INFO ") {
            let v: serde_json::Value = serde_json::from_str(json.trim_end()).expect("INFO json");
            if want(&v) {
                return v;
            }
        }
    }
    panic!("no matching INFO");
}

/// Lame duck mode on one node: its clients get `ldm:true` with only the other server's URL,
/// and the peer stops advertising it while it is still up (route INFO with `ldm`).
#[test]
fn lame_duck_is_announced_to_clients_and_peers() {
    use crate::support::{free_port, ours, Raw, ServerProc};
    let dir = crate::config::TempDir::new("ldm");
    let conf = dir.write(
        "a.conf",
        "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"4s\"\n",
    );
    let (ca, cb) = (free_port(), free_port());
    let a_cluster = format!("nats://127.0.0.1:{ca}");
    let a = ServerProc::start(
        &ours(),
        &[
            "-c",
            conf.to_str().unwrap(),
            "--cluster",
            &a_cluster,
            "--cluster_name",
            "ldm",
        ],
    );
    let b = ServerProc::start(
        &ours(),
        &[
            "--cluster",
            &format!("nats://127.0.0.1:{cb}"),
            "--cluster_name",
            "ldm",
            "--routes",
            &a_cluster,
        ],
    );
    let (a_url, b_url) = (a.addr(), b.addr());
    // Logged in once the server answered (a client it has not registered yet gets no
    // async INFO: seen once under full parallel load).
    let login = |port| {
        let mut r = Raw::connect(port);
        r.info();
        r.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\n");
        r.sync();
        r
    };
    let mut on_b = login(b.port);
    let both = |v: &serde_json::Value| {
        let urls = v["connect_urls"].as_array().cloned().unwrap_or_default();
        urls.len() == 2
    };
    // The route is up once B advertises both servers (or already did before our PONG).
    let mut on_a = login(a.port);
    assert!(crate::support::wait_until(
        std::time::Duration::from_secs(15),
        || {
            let mut r = Raw::connect(b.port);
            both(&r.info())
        }
    ));
    a.proc.signal(libc::SIGUSR2);
    let ldm = wait_info(&mut on_a, |v| v["ldm"] == true);
    assert_eq!(
        ldm["connect_urls"],
        serde_json::json!([b_url.clone()]),
        "{ldm}"
    );
    let after = wait_info(&mut on_b, |v| {
        !v["connect_urls"]
            .as_array()
            .is_some_and(|u| u.iter().any(|x| x == a_url.as_str()))
    });
    assert!(a.proc.log_text().contains("Entering lame duck mode"));
    // A is still in its grace period: the INFO came from the ldm announcement, not a drop.
    assert!(
        !a.proc.log_text().contains("Server Exiting"),
        "{after}\n{}",
        a.proc.log_text()
    );
}

/// When the last peer leaves, clients get an async INFO whose connect_urls list this
/// server alone (clients prune departed servers from it); new clients see the same.
fn last_peer_leaves(exe: &Path) -> (serde_json::Value, serde_json::Value) {
    let (c1, c2) = (free_port(), free_port());
    let a = Node::start(exe, c1, &[]);
    let mut b = Node::start(exe, c2, &[c1]);
    let mut r = Raw::connect(a.srv.port);
    let first = r.info();
    let mesh = |v: &serde_json::Value| v["connect_urls"].as_array().is_some_and(|u| u.len() == 2);
    r.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\n");
    // The PONG makes this client one that gets async INFO; INFO may come before it.
    let mut meshed = mesh(&first);
    for l in r.sync() {
        if let Some(json) = l.strip_prefix("INFO ") {
            meshed |= mesh(&serde_json::from_str(json.trim_end()).expect("INFO json"));
        }
    }
    if !meshed {
        wait_info(&mut r, mesh);
    }
    b.kill9();
    let alone = wait_info(&mut r, |v| !mesh(v));
    let fresh = Raw::connect(a.srv.port).info();
    assert_eq!(
        alone["connect_urls"],
        serde_json::json!([a.srv.addr()]),
        "{}",
        exe.display()
    );
    (
        alone.get("connect_urls").cloned().unwrap_or_default(),
        fresh.get("connect_urls").cloned().unwrap_or_default(),
    )
}

#[test]
fn connect_urls_after_the_last_peer_leaves() {
    let (ra, rf) = last_peer_leaves(&reference());
    let (oa, of) = last_peer_leaves(&ours());
    // Ports differ between the runs: compare how many URLs each carries.
    let n = |v: &serde_json::Value| v.as_array().map(|a| a.len());
    assert_eq!((n(&oa), n(&of)), (n(&ra), n(&rf)));
}

/// Client verbs on the route port and the `+ reply` routed form without queue names, as
/// the reference answers them: SUB and PUB are read and dropped (PING still answered),
/// UNSUB is read as RS- (so a lone sid is a protocol violation), HPUB before headers are
/// agreed and MSG close the connection.
fn route_port_transcripts(exe: &Path) -> Vec<String> {
    let cport = free_port();
    let n = Node::start(exe, cport, &[]);
    let sessions: &[&[u8]] = &[
        b"SUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n",
        b"UNSUB 1\r\nPING\r\n",
        b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\nPING\r\n",
        b"MSG foo 1 1\r\nx\r\nPING\r\n",
        b"RS+ $G foo\r\nPING\r\n",
        b"CONNECT {\"verbose\":false,\"name\":\"NFAKE\",\"cluster\":\"t\",\"headers\":true}\r\n\
INFO {\"server_id\":\"NFAKE\",\"server_name\":\"fake\",\"version\":\"2.9.10\",\"proto\":1,\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,\"max_payload\":1048576,\"cluster\":\"t\"}\r\n\
RMSG $G foo + bar 1\r\nx\r\nRMSG $G foo ++ bar 1\r\nx\r\n",
    ];
    let mut c = Raw::connect(n.srv.port);
    c.info();
    c.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n");
    c.sync();
    let mut out = Vec::new();
    for s in sessions {
        let mut r = Raw::connect(cport);
        r.info();
        r.send(s);
        r.stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut t = String::new();
        while let Some(l) = r.try_line() {
            // A session that forms a route is told of interest (the reference's includes
            // its system account's, compared elsewhere).
            if !l.starts_with("RS+ ") {
                t.push_str(&l);
            }
        }
        if r.closed_within(Duration::from_millis(100)) {
            t.push_str("<EOF>");
        }
        out.push(t);
    }
    // The routed message with `+ bar` and no queue reached the client with its reply.
    c.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = String::new();
    while let Some(l) = c.try_line() {
        got.push_str(&l);
    }
    out.push(got);
    out
}

#[test]
fn route_port_edges_match_the_reference() {
    let theirs = route_port_transcripts(&reference());
    let ours = route_port_transcripts(&ours());
    assert_eq!(theirs.last().unwrap(), "MSG foo 1 bar 1\r\nx\r\n");
    assert_eq!(ours, theirs);
}
