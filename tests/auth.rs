//! Authentication and authorization with real clients (async-nats and raw protocol),
//! permissions, mkpasswd hashes, and reload of users.

use crate::config::{TempDir, AUTH_CONF};
use crate::support::{bin, free_port, ours, rt, Raw, ServerProc};
use std::time::Duration;

fn start_conf(text: &str) -> (ServerProc, TempDir) {
    let dir = TempDir::new("auth");
    let f = dir.write("s.conf", text);
    let s = ServerProc::start(&ours(), &["-c", f.to_str().unwrap()]);
    (s, dir)
}

/// Raw client: INFO, CONNECT with `fields`, then PING; returns the lines before PONG (or
/// everything up to EOF when the server hangs up).
fn raw_login(port: u16, fields: &str) -> (Raw, Vec<String>) {
    let mut r = Raw::connect(port);
    r.info();
    r.send(
        format!("CONNECT {{\"verbose\":false,\"pedantic\":false{fields}}}\r\nPING\r\n").as_bytes(),
    );
    let mut lines = Vec::new();
    loop {
        let l = r.line();
        if l.is_empty() || l == "PONG\r\n" {
            break;
        }
        lines.push(l);
    }
    (r, lines)
}

async fn connects(url: String, o: async_nats::ConnectOptions) -> bool {
    match tokio::time::timeout(Duration::from_secs(5), o.connect(url)).await {
        Ok(Ok(c)) => c.flush().await.is_ok(),
        _ => false,
    }
}

#[test]
fn user_pass_flags() {
    let s = ServerProc::start(&ours(), &["--user", "alice", "--pass", "secret"]);
    rt().block_on(async {
        assert!(
            connects(
                s.url(),
                async_nats::ConnectOptions::with_user_and_password("alice".into(), "secret".into())
            )
            .await
        );
        assert!(
            !connects(
                s.url(),
                async_nats::ConnectOptions::with_user_and_password("alice".into(), "nope".into())
            )
            .await
        );
    });
    let (mut r, lines) = raw_login(s.port, ",\"user\":\"alice\",\"pass\":\"bad\"");
    assert_eq!(lines, vec!["-ERR 'Authorization Violation'\r\n"]);
    assert!(r.closed_within(Duration::from_secs(2)));
    // With --user/--pass (no user list) the reference names no user.
    assert!(s
        .proc
        .wait_log(" - authentication error", Duration::from_secs(3)));
    assert!(!s.proc.log_text().contains("authentication error - User"));
    // Anything before CONNECT is a violation too.
    let mut r = Raw::connect(s.port);
    assert_eq!(r.info()["auth_required"], true);
    r.send(b"PING\r\n");
    assert_eq!(r.line(), "-ERR 'Authorization Violation'\r\n");
}

#[test]
fn token_flag_and_block() {
    let s = ServerProc::start(&ours(), &["--auth", "s3cr3t"]);
    rt().block_on(async {
        assert!(
            connects(
                s.url(),
                async_nats::ConnectOptions::with_token("s3cr3t".into())
            )
            .await
        );
        assert!(!connects(s.url(), async_nats::ConnectOptions::with_token("x".into())).await);
    });
    let hash = bcrypt::hash("tok", 4).unwrap();
    let (s, _d) = start_conf(&format!("authorization {{ token: \"{hash}\" }}\n"));
    let (_, lines) = raw_login(s.port, ",\"auth_token\":\"tok\"");
    assert!(lines.is_empty(), "{lines:?}");
    let (_, lines) = raw_login(s.port, ",\"auth_token\":\"nope\"");
    assert_eq!(lines, vec!["-ERR 'Authorization Violation'\r\n"]);
    assert!(s
        .proc
        .wait_log("authentication error", Duration::from_secs(3)));
}

#[test]
fn users_with_bcrypt_and_plaintext_warning() {
    let hash = bcrypt::hash("bobpw", 4).unwrap();
    let (s, _d) = start_conf(&format!(
        "authorization {{ users = [ {{user: alice, password: alicepw}}, {{user: bob, password: \"{hash}\"}} ] }}\n"
    ));
    assert!(s.proc.wait_log(
        "[WRN] Plaintext passwords detected, use nkeys or bcrypt",
        Duration::from_secs(3)
    ));
    for (u, p, ok) in [
        ("alice", "alicepw", true),
        ("bob", "bobpw", true),
        ("bob", "alicepw", false),
        ("carol", "x", false),
    ] {
        let (_, lines) = raw_login(s.port, &format!(",\"user\":\"{u}\",\"pass\":\"{p}\""));
        assert_eq!(lines.is_empty(), ok, "{u}/{p}: {lines:?}");
    }
}

#[test]
fn mkpasswd_hash_in_config() {
    let out = std::process::Command::new(bin("mkpasswd"))
        .output()
        .expect("mkpasswd");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pass = text
        .lines()
        .find_map(|l| l.strip_prefix("pass: "))
        .expect("pass line")
        .trim()
        .to_string();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("bcrypt hash: "))
        .expect("hash line")
        .trim()
        .to_string();
    let (s, _d) = start_conf(&format!(
        "authorization {{ user: derek, password: \"{hash}\" }}\n"
    ));
    rt().block_on(async {
        assert!(
            connects(
                s.url(),
                async_nats::ConnectOptions::with_user_and_password("derek".into(), pass.clone())
            )
            .await
        );
        assert!(
            !connects(
                s.url(),
                async_nats::ConnectOptions::with_user_and_password("derek".into(), "wrong".into())
            )
            .await
        );
    });
}

#[test]
fn nkey_users() {
    let kp = nkeys::KeyPair::new_user();
    let other = nkeys::KeyPair::new_user();
    let (s, _d) = start_conf(&format!(
        "authorization {{ users = [ {{nkey: {}}} ] }}\n",
        kp.public_key()
    ));
    let mut r = Raw::connect(s.port);
    let info = r.info();
    assert!(info["nonce"].as_str().is_some_and(|n| !n.is_empty()));
    rt().block_on(async {
        let seed = kp.seed().unwrap();
        assert!(connects(s.url(), async_nats::ConnectOptions::with_nkey(seed)).await);
        let bad = other.seed().unwrap();
        assert!(!connects(s.url(), async_nats::ConnectOptions::with_nkey(bad)).await);
    });
    // A signature of something else than the nonce is refused.
    let sig = other.sign(b"not the nonce").unwrap();
    let sig = base64_url(&sig);
    let (_, lines) = raw_login(
        s.port,
        &format!(",\"nkey\":\"{}\",\"sig\":\"{sig}\"", kp.public_key()),
    );
    assert_eq!(lines, vec!["-ERR 'Authorization Violation'\r\n"]);
}

fn base64_url(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn no_auth_user_and_auth_timeout() {
    let (s, _d) = start_conf(
        "authorization { users = [ {user: a, password: a, permissions: {publish: \"ok.>\"}} ], timeout: 0.5 }\nno_auth_user: a\n",
    );
    let mut r = Raw::connect(s.port);
    let info = r.info();
    assert!(info.get("auth_required").is_none(), "{info}");
    r.send(b"CONNECT {\"verbose\":false}\r\nPUB ok.1 1\r\nx\r\nPUB no 1\r\nx\r\n");
    assert_eq!(
        r.sync(),
        vec!["-ERR 'Permissions Violation for Publish to \"no\"'\r\n"]
    );

    let (s, _d) = start_conf("authorization { user: a, password: b, timeout: 0.5 }\n");
    let mut r = Raw::connect(s.port);
    r.info();
    let t = std::time::Instant::now();
    assert_eq!(r.line(), "-ERR 'Authentication Timeout'\r\n");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(r.closed_within(Duration::from_secs(2)));
}

#[test]
fn docs_permissions_with_variables() {
    let (s, _d) = start_conf(AUTH_CONF);
    // REQUESTOR: publish req.a/req.b, subscribe _INBOX.>
    let (mut c, lines) = raw_login(s.port, ",\"user\":\"client\",\"pass\":\"cpw\"");
    assert!(lines.is_empty());
    c.send(b"PUB req.a 1\r\nx\r\nPUB req.c 1\r\nx\r\nSUB _INBOX.abc 1\r\nSUB req.a 2\r\nSUB q.> grp 3\r\n");
    assert_eq!(
        c.sync(),
        vec![
            "-ERR 'Permissions Violation for Publish to \"req.c\"'\r\n",
            "-ERR 'Permissions Violation for Subscription to \"req.a\"'\r\n",
            "-ERR 'Permissions Violation for Subscription to \"q.>\" using queue \"grp\"'\r\n",
        ]
    );
    assert!(s.proc.wait_log(
        "Publish Violation - User \"client\", Subject \"req.c\"",
        Duration::from_secs(3)
    ));
    assert!(s.proc.wait_log(
        "Subscription Violation - User \"client\", Subject \"req.a\", SID 2",
        Duration::from_secs(3)
    ));
    // default_permissions apply to a user without its own.
    let (mut o, _) = raw_login(s.port, ",\"user\":\"other\",\"pass\":\"opw\"");
    o.send(
        b"PUB SANDBOX.x 1\r\nx\r\nPUB SANDBOX.x.y 1\r\nx\r\nSUB PUBLIC.a.b 1\r\nSUB PRIVATE 2\r\n",
    );
    assert_eq!(
        o.sync(),
        vec![
            "-ERR 'Permissions Violation for Publish to \"SANDBOX.x.y\"'\r\n",
            "-ERR 'Permissions Violation for Subscription to \"PRIVATE\"'\r\n",
        ]
    );
    // Request/reply through _INBOX.> between requestor and responder.
    rt().block_on(async {
        let svc =
            async_nats::ConnectOptions::with_user_and_password("service".into(), "spw".into())
                .connect(s.url())
                .await
                .unwrap();
        let mut sub = svc.subscribe("req.a").await.unwrap();
        svc.flush().await.unwrap();
        let svc2 = svc.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(m) = sub.next().await {
                if let Some(r) = m.reply {
                    svc2.publish(r, "pong".into()).await.unwrap();
                }
            }
        });
        let cli = async_nats::ConnectOptions::with_user_and_password("client".into(), "cpw".into())
            .connect(s.url())
            .await
            .unwrap();
        let resp = cli.request("req.a", "ping".into()).await.unwrap();
        assert_eq!(&resp.payload[..], b"pong");
    });
}

#[test]
fn allow_deny_wildcards_queues_and_responses() {
    let (s, _d) = start_conf(
        r#"
authorization {
  users = [
    {user: u, password: u, permissions: {
        publish: {allow: ["foo.>", "_INBOX.>"], deny: "foo.bar"}
        subscribe: {deny: ["secret.>", "work.* q1"]}
    }}
    {user: svc, password: svc, permissions: {subscribe: "svc.*", allow_responses: true}}
    {user: req, password: req}
  ]
}
"#,
    );
    let (mut c, _) = raw_login(s.port, ",\"user\":\"u\",\"pass\":\"u\"");
    c.send(b"PUB foo.baz 1\r\nx\r\nPUB foo.bar 1\r\nx\r\nPUB other 1\r\nx\r\nSUB secret.x 1\r\nSUB work.a q1 2\r\nSUB work.a q2 3\r\nSUB public 4\r\n");
    assert_eq!(
        c.sync(),
        vec![
            "-ERR 'Permissions Violation for Publish to \"foo.bar\"'\r\n",
            "-ERR 'Permissions Violation for Publish to \"other\"'\r\n",
            "-ERR 'Permissions Violation for Subscription to \"secret.x\"'\r\n",
            "-ERR 'Permissions Violation for Subscription to \"work.a\" using queue \"q1\"'\r\n",
        ]
    );
    assert!(s.proc.wait_log(
        "Subscription Violation - User \"u\", Subject \"work.a\", Queue: \"q1\", SID 2",
        Duration::from_secs(3)
    ));
    // allow_responses: the service may answer the reply subject once, nothing else.
    let (mut svc, _) = raw_login(s.port, ",\"user\":\"svc\",\"pass\":\"svc\"");
    svc.send(b"SUB svc.time 1\r\nPUB anything 1\r\nx\r\n");
    assert_eq!(
        svc.sync(),
        vec!["-ERR 'Permissions Violation for Publish to \"anything\"'\r\n"]
    );
    let (mut req, _) = raw_login(s.port, ",\"user\":\"req\",\"pass\":\"req\"");
    req.send(b"SUB reply.1 9\r\nPUB svc.time reply.1 2\r\nhi\r\n");
    req.sync();
    assert_eq!(svc.line(), "MSG svc.time 1 reply.1 2\r\n");
    assert_eq!(svc.line(), "hi\r\n");
    svc.send(b"PUB reply.1 2\r\nok\r\nPUB reply.1 2\r\nno\r\n");
    assert_eq!(
        svc.sync(),
        vec!["-ERR 'Permissions Violation for Publish to \"reply.1\"'\r\n"]
    );
    assert_eq!(req.line(), "MSG reply.1 9 2\r\n");
    assert_eq!(req.line(), "ok\r\n");
}

#[test]
fn reload_changes_a_password_without_dropping_others() {
    let dir = TempDir::new("reload");
    let port = free_port();
    let conf = |bob: &str| {
        format!(
            "port: {port}\nauthorization {{ users = [ {{user: alice, password: apw}}, {{user: bob, password: {bob}}} ] }}\n"
        )
    };
    let f = dir.write("r.conf", &conf("old"));
    let s = ServerProc::start_on(&ours(), port, &["-c", f.to_str().unwrap()]);
    let (mut alice, _) = raw_login(port, ",\"user\":\"alice\",\"pass\":\"apw\"");
    let (mut bob, _) = raw_login(port, ",\"user\":\"bob\",\"pass\":\"old\"");
    alice.send(b"SUB x 1\r\n");
    alice.sync();
    dir.write("r.conf", &conf("new"));
    s.proc.signal(libc::SIGHUP);
    assert!(s
        .proc
        .wait_log("Reloaded: authorization users", Duration::from_secs(5)));
    assert!(s
        .proc
        .wait_log("Reloaded server configuration", Duration::from_secs(5)));
    // Bob's old password no longer works; alice is still connected and served.
    let (_, lines) = raw_login(port, ",\"user\":\"bob\",\"pass\":\"old\"");
    assert_eq!(lines, vec!["-ERR 'Authorization Violation'\r\n"]);
    let (_, lines) = raw_login(port, ",\"user\":\"bob\",\"pass\":\"new\"");
    assert!(lines.is_empty());
    assert_eq!(bob.line(), "-ERR 'Authorization Violation'\r\n");
    alice.send(b"PUB x 2\r\nhi\r\n");
    assert_eq!(alice.line(), "MSG x 1 2\r\n");
    // A broken file keeps the old configuration.
    dir.write("r.conf", &format!("port: {port}\nbogus: 1\n"));
    s.proc.signal(libc::SIGHUP);
    assert!(s.proc.wait_log(
        "Failed to reload server configuration: ",
        Duration::from_secs(5)
    ));
    assert!(s
        .proc
        .log_text()
        .contains("r.conf:2:1: unknown field \"bogus\""));
    let (_, lines) = raw_login(port, ",\"user\":\"bob\",\"pass\":\"new\"");
    assert!(lines.is_empty());
    // Not reloadable: the whole reload is refused.
    dir.write("r.conf", &format!("{}max_subs: 10\n", conf("new")));
    s.proc.signal(libc::SIGHUP);
    assert!(s.proc.wait_log(
        "Failed to reload server configuration: config reload not supported for MaxSubs: old=0, new=10",
        Duration::from_secs(5)
    ));
}

/// A wildcard subscription must not receive subjects its user is denied, on both servers.
#[test]
fn subscribe_deny_filters_wildcard_deliveries() {
    let conf = r#"
authorization {
  users = [
    {user: limited, password: pw, permissions: {subscribe: {deny: "secret.>"}}}
    {user: admin, password: pw}
  ]
}
"#;
    let dir = TempDir::new("deny-deliver");
    let f = dir.write("s.conf", conf);
    for exe in [ours(), crate::support::reference()] {
        let s = ServerProc::start(&exe, &["-c", f.to_str().unwrap()]);
        let (mut sub, lines) = raw_login(s.port, ",\"user\":\"limited\",\"pass\":\"pw\"");
        assert!(lines.is_empty(), "{lines:?}");
        sub.send(b"SUB > 1\r\n");
        assert!(sub.sync().is_empty());
        let (mut publisher, lines) = raw_login(s.port, ",\"user\":\"admin\",\"pass\":\"pw\"");
        assert!(lines.is_empty(), "{lines:?}");
        publisher.send(b"PUB secret.x 1\r\na\r\nPUB public.x 1\r\nb\r\n");
        assert!(publisher.sync().is_empty());
        assert_eq!(sub.line(), "MSG public.x 1 1\r\n", "{}", exe.display());
        assert_eq!(sub.line(), "b\r\n");
        assert!(sub.sync().is_empty(), "{}", exe.display());
    }
}
