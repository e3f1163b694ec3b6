//! JWT operator mode with the memory resolver, against the reference: operator, account
//! and user keys and JWTs are made here (as the Go JWT library encodes them), the server
//! gets them through `operator`/`resolver_preload`, and clients log in with user JWTs.

use crate::config::TempDir;
use crate::support::{ours, reference, rt, run_bounded, wait_until, Raw, ServerProc};
use nkeys::KeyPair;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Base64url without padding.
fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT of `claims` (registered claims and `nats`), issued and signed by `signer`.
fn encode(mut claims: Value, signer: &KeyPair) -> String {
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let c = claims.as_object_mut().unwrap();
    c.insert("iss".into(), json!(signer.public_key()));
    c.entry("iat").or_insert(json!(now()));
    c.entry("jti").or_insert(json!(format!("{:x}", rand_u64())));
    let payload = b64(&serde_json::to_vec(&claims).unwrap());
    let signed = format!("{header}.{payload}");
    let sig = signer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&sig))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now() as u64);
    h.finish()
}

/// Merges `extra` into `base` (objects, one level).
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn operator_jwt(op: &KeyPair) -> String {
    encode(
        json!({"sub": op.public_key(), "name": "O", "nats": {"type": "operator", "version": 2}}),
        op,
    )
}

/// An account JWT as the Go library writes a new one (every limit -1), with `nats` extras.
fn account_jwt(name: &str, acc: &KeyPair, op: &KeyPair, nats: Value) -> String {
    let base = json!({
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": true, "conn": -1, "leaf": -1},
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account", "version": 2
    });
    encode(
        json!({"sub": acc.public_key(), "name": name, "nats": merged(base, nats)}),
        op,
    )
}

/// A user JWT as the Go library writes a new one, signed by `signer`.
pub(crate) fn user_jwt(
    name: &str,
    user: &KeyPair,
    signer: &KeyPair,
    nats: Value,
    top: Value,
) -> String {
    let base = json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                      "type": "user", "version": 2});
    let claims = merged(
        json!({"sub": user.public_key(), "name": name, "nats": merged(base, nats)}),
        top,
    );
    encode(claims, signer)
}

fn creds(jwt: &str, user: &KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        user.seed().unwrap()
    )
}

/// An operator with a system account and accounts preloaded, in a config file.
pub(crate) struct Setup {
    dir: TempDir,
    op: KeyPair,
    sys: KeyPair,
    accounts: Vec<(KeyPair, String)>,
}

impl Setup {
    pub(crate) fn new(tag: &str) -> Setup {
        let op = KeyPair::new_operator();
        let sys = KeyPair::new_account();
        let sys_jwt = account_jwt("SYS", &sys, &op, json!({}));
        let accounts = vec![(clone(&sys), sys_jwt)];
        Setup {
            dir: TempDir::new(tag),
            op,
            sys,
            accounts,
        }
    }

    /// Adds an account with `nats` extras; returns its key pair.
    pub(crate) fn account(&mut self, name: &str, nats: Value) -> KeyPair {
        let kp = KeyPair::new_account();
        let jwt = account_jwt(name, &kp, &self.op, nats);
        self.accounts.push((clone(&kp), jwt));
        kp
    }

    pub(crate) fn conf(&self, extra: &str) -> PathBuf {
        let op_file = self.dir.write("op.jwt", &operator_jwt(&self.op));
        // The system account's JWT is the first entry, under the system key.
        let mut preload = format!("  {}: {}\n", self.sys.public_key(), self.accounts[0].1);
        for (kp, jwt) in &self.accounts[1..] {
            preload.push_str(&format!("  {}: {}\n", kp.public_key(), jwt));
        }
        self.dir.write(
            "op.conf",
            &format!(
                "operator: {:?}\nresolver: MEMORY\nsystem_account: {}\nresolver_preload: {{\n{preload}}}\n{extra}\n",
                op_file.display().to_string(),
                self.sys.public_key()
            ),
        )
    }

    fn creds_file(&self, name: &str, jwt: &str, user: &KeyPair) -> PathBuf {
        self.dir.write(&format!("{name}.creds"), &creds(jwt, user))
    }
}

fn clone(kp: &KeyPair) -> KeyPair {
    KeyPair::from_seed(&kp.seed().unwrap()).unwrap()
}

/// Both servers with the same configuration.
fn both(conf: &Path) -> [ServerProc; 2] {
    let c = conf.to_str().unwrap();
    [
        ServerProc::start(&ours(), &["-c", c]),
        ServerProc::start(&reference(), &["-c", c]),
    ]
}

/// Logs in over raw protocol with `jwt` (signing the nonce with `user` when given) and
/// returns the connection and what came before PONG, or before EOF ("EOF" last).
fn login(port: u16, jwt: &str, user: Option<&KeyPair>) -> (Raw, Vec<String>) {
    let mut r = Raw::connect(port);
    let info = r.info();
    let nonce = info["nonce"].as_str().unwrap_or_default().to_string();
    let mut connect = json!({"verbose": false, "pedantic": false, "protocol": 1,
                             "headers": true, "jwt": jwt});
    if let Some(u) = user {
        connect["sig"] = json!(b64(&u.sign(nonce.as_bytes()).unwrap()));
    }
    r.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes());
    let lines = until_pong(&mut r);
    (r, lines)
}

/// Lines up to PONG (not included), or to EOF (then "EOF" is the last entry).
fn until_pong(r: &mut Raw) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match r.try_line() {
            None => {
                out.push("EOF".into());
                return out;
            }
            Some(l) if l == "PONG\r\n" => return out,
            Some(l) => out.push(l),
        }
    }
}

const VIOLATION: &[&str] = &["-ERR 'Authorization Violation'\r\n", "EOF"];

#[test]
fn creds_login_and_pub_sub() {
    let mut s = Setup::new("jwt-creds");
    let a = s.account("A", json!({}));
    let u = KeyPair::new_user();
    let creds = s.creds_file("u", &user_jwt("u", &u, &a, json!({}), json!({})), &u);
    let conf = s.conf("");
    for srv in both(&conf) {
        let info = Raw::connect(srv.port).info();
        assert_eq!(info["auth_required"], json!(true));
        assert!(info["nonce"].as_str().is_some_and(|n| !n.is_empty()));
        rt().block_on(async {
            let opts = async_nats::ConnectOptions::with_credentials_file(&creds)
                .await
                .unwrap();
            let nc = opts.connect(srv.url()).await.expect("connect with creds");
            let mut sub = nc.subscribe("greet").await.unwrap();
            nc.flush().await.unwrap();
            nc.publish("greet", "hi".into()).await.unwrap();
            let m =
                tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut sub))
                    .await
                    .expect("message")
                    .unwrap();
            assert_eq!(&m.payload[..], b"hi");
        });
    }
}

#[test]
fn refused_logins_answer_as_the_reference() {
    let mut s = Setup::new("jwt-refused");
    let a = s.account("A", json!({}));
    let u = KeyPair::new_user();
    let rev = KeyPair::new_user();
    let b = s.account(
        "B",
        json!({"revocations": {rev.public_key(): now() + 10}, "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1, "disallow_bearer": true}}),
    );
    let rogue = KeyPair::new_account();
    let good = user_jwt("u", &u, &a, json!({}), json!({}));
    let mut tampered = good.clone();
    // Flip one character of the payload: the signature no longer matches.
    let at = tampered.find('.').unwrap() + 5;
    let ch = if &tampered[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(at..at + 1, ch);
    let cases: Vec<(&str, String, Option<&KeyPair>)> = vec![
        ("no jwt", String::new(), Some(&u)),
        ("malformed", "abc".into(), Some(&u)),
        ("bad json", "eyJ.x.y".into(), Some(&u)),
        ("garbage base64", "e!J.x.y".into(), Some(&u)),
        ("tampered", tampered, Some(&u)),
        (
            "unknown account",
            user_jwt("u", &u, &rogue, json!({}), json!({})),
            Some(&u),
        ),
        (
            "expired",
            user_jwt("u", &u, &a, json!({}), json!({"exp": now() - 10})),
            Some(&u),
        ),
        (
            "not yet valid",
            user_jwt("u", &u, &a, json!({}), json!({"nbf": now() + 3600})),
            Some(&u),
        ),
        (
            "revoked",
            user_jwt("r", &rev, &b, json!({}), json!({"iat": now()})),
            Some(&rev),
        ),
        ("no signature", good.clone(), None),
        ("wrong signer of nonce", good.clone(), Some(&rev)),
        (
            "account jwt",
            account_jwt("X", &rogue, &s.op, json!({})),
            Some(&u),
        ),
        (
            "bearer refused by account",
            user_jwt("b", &u, &b, json!({"bearer_token": true}), json!({})),
            None,
        ),
        (
            "signing key not declared",
            user_jwt(
                "u",
                &u,
                &KeyPair::new_account(),
                json!({}),
                json!({"nats": {
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2, "issuer_account": a.public_key()}}),
            ),
            Some(&u),
        ),
    ];
    let conf = s.conf("");
    let servers = both(&conf);
    for (what, jwt, signer) in &cases {
        let ours_lines = login(servers[0].port, jwt, *signer).1;
        let ref_lines = login(servers[1].port, jwt, *signer).1;
        assert_eq!(ref_lines, VIOLATION, "reference, {what}");
        assert_eq!(ours_lines, ref_lines, "{what}");
    }
    // A bearer token needs no signature where the account allows it.
    let bearer = user_jwt("b", &u, &a, json!({"bearer_token": true}), json!({}));
    for srv in &servers {
        assert!(login(srv.port, &bearer, None).1.is_empty());
    }
    for srv in &servers {
        assert!(
            srv.proc
                .wait_log(" - authentication error", Duration::from_secs(5)),
            "log:\n{}",
            srv.proc.log_text()
        );
    }
    // And the async client is refused as well.
    let cf = s.creds_file(
        "exp",
        &user_jwt("u", &u, &a, json!({}), json!({"exp": now() - 10})),
        &u,
    );
    for srv in &servers {
        rt().block_on(async {
            let o = async_nats::ConnectOptions::with_credentials_file(&cf)
                .await
                .unwrap();
            let r = tokio::time::timeout(Duration::from_secs(5), o.connect(srv.url())).await;
            assert!(!matches!(r, Ok(Ok(_))), "expired creds connected");
        });
    }
}

#[test]
fn user_permissions_as_the_reference() {
    let mut s = Setup::new("jwt-perms");
    let a = s.account("A", json!({}));
    let u = KeyPair::new_user();
    let jwt = user_jwt(
        "u",
        &u,
        &a,
        json!({"pub": {"deny": ["x"]}, "sub": {"deny": ["secret"]}}),
        json!({}),
    );
    let conf = s.conf("");
    let mut transcripts = Vec::new();
    for srv in both(&conf) {
        let (mut r, pre) = login(srv.port, &jwt, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        r.send(b"PUB x 1\r\na\r\nSUB secret 1\r\nSUB ok 2\r\nPUB ok 2\r\nhi\r\n");
        let got = r.sync();
        assert!(
            srv.proc.wait_log(
                &format!(
                    "Publish Violation - JWT User {:?}, Subject \"x\"",
                    u.public_key()
                ),
                Duration::from_secs(5)
            ),
            "log:\n{}",
            srv.proc.log_text()
        );
        transcripts.push(got);
    }
    assert_eq!(
        transcripts[1],
        [
            "-ERR 'Permissions Violation for Publish to \"x\"'\r\n",
            "-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n",
            "MSG ok 2 2\r\n",
            "hi\r\n"
        ]
    );
    assert_eq!(transcripts[0], transcripts[1]);
}

#[test]
fn account_limits_as_the_reference() {
    let mut s = Setup::new("jwt-limits");
    let limits = |conn: i64, subs: i64, payload: i64| {
        json!({"limits": {"subs": subs, "data": -1, "payload": payload, "imports": -1,
                          "exports": -1, "wildcards": true, "conn": conn, "leaf": -1}})
    };
    let one = s.account("ONE", limits(1, -1, -1));
    let small = s.account("SMALL", limits(-1, 2, 10));
    // An account JWT without limits: every limit is zero, as the library reads it.
    let bare = KeyPair::new_account();
    let bare_jwt = encode(
        json!({"sub": bare.public_key(), "name": "BARE", "nats": {"type": "account", "version": 2}}),
        &s.op,
    );
    s.accounts.push((clone(&bare), bare_jwt));
    let u = KeyPair::new_user();
    let one_jwt = user_jwt("u", &u, &one, json!({}), json!({}));
    let small_jwt = user_jwt("u", &u, &small, json!({}), json!({}));
    let bare_user = user_jwt("u", &u, &bare, json!({}), json!({}));
    let conf = s.conf("");
    let mut seen = Vec::new();
    for srv in both(&conf) {
        // conn: 1 — the second connection is refused.
        let (_first, pre) = login(srv.port, &one_jwt, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        let second = login(srv.port, &one_jwt, Some(&u)).1;
        // subs: 2 and payload: 10 — the client learns its payload limit after PONG.
        let (mut r, pre) = login(srv.port, &small_jwt, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        let info: Value =
            serde_json::from_str(r.line().strip_prefix("INFO ").unwrap().trim_end()).unwrap();
        assert_eq!(info["max_payload"], json!(10));
        assert!(info.get("nonce").is_none());
        r.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB a 10\r\n0123456789\r\n");
        let mut t = r.sync();
        r.send(b"PUB a 11\r\n01234567890\r\n");
        t.push(r.line());
        assert!(r.closed_within(Duration::from_secs(5)));
        let bare_lines = login(srv.port, &bare_user, Some(&u)).1;
        seen.push((second, t, bare_lines));
    }
    let want_second = vec![
        "-ERR 'maximum account active connections exceeded'\r\n".to_string(),
        "EOF".into(),
    ];
    assert_eq!(seen[1].0, want_second);
    assert_eq!(
        seen[1].1,
        [
            "-ERR 'maximum subscriptions exceeded'\r\n",
            "MSG a 1 10\r\n",
            "0123456789\r\n",
            "-ERR 'Maximum Payload Violation'\r\n"
        ]
    );
    assert_eq!(seen[1].2, want_second);
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn account_exports_and_imports_cross_accounts() {
    let mut s = Setup::new("jwt-imports");
    let a = s.account(
        "A",
        json!({"exports": [
            {"name": "feed", "subject": "feed.>", "type": "stream"},
            {"name": "help", "subject": "help", "type": "service"},
            {"name": "private", "subject": "private", "type": "stream", "token_req": true}
        ]}),
    );
    let b_nats = json!({"imports": [
        {"name": "feed", "subject": "feed.>", "account": a.public_key(), "type": "stream"},
        {"name": "help", "subject": "help", "account": a.public_key(), "type": "service",
         "local_subject": "a.help"},
        {"name": "private", "subject": "private", "account": a.public_key(), "type": "stream"}
    ]});
    let b = s.account("B", b_nats);
    let ua = KeyPair::new_user();
    let ub = KeyPair::new_user();
    let ja = user_jwt("ua", &ua, &a, json!({}), json!({}));
    let jb = user_jwt("ub", &ub, &b, json!({}), json!({}));
    let conf = s.conf("");
    let mut seen = Vec::new();
    for srv in both(&conf) {
        let (mut rb, pre) = login(srv.port, &jb, Some(&ub));
        assert!(pre.is_empty(), "{pre:?}");
        let (mut ra, pre) = login(srv.port, &ja, Some(&ua));
        assert!(pre.is_empty(), "{pre:?}");
        rb.send(b"SUB feed.* 1\r\nSUB private 2\r\n");
        rb.sync();
        ra.send(b"SUB help 9\r\n");
        ra.sync();
        // Interest reaches the exporting account before the publishes.
        ra.send(b"PUB feed.x 3\r\none\r\nPUB private 3\r\ntwo\r\n");
        ra.sync();
        let mut got = Vec::new();
        assert!(wait_until(Duration::from_secs(5), || {
            got.extend(rb.sync());
            got.len() >= 2
        }));
        // The service: B requests on its local subject, A answers.
        rb.send(b"SUB inbox 5\r\nPUB a.help inbox 3\r\nreq\r\n");
        rb.sync();
        // The request crosses accounts with a Nats-Request-Info header.
        let req = ra.line();
        let parts: Vec<&str> = req.split_whitespace().collect();
        assert_eq!(parts[..3], ["HMSG", "help", "9"], "{req:?}");
        let reply = parts[3].to_string();
        let total: usize = parts[5].parse().unwrap();
        let body = ra.bytes(total + 2);
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(text.contains("Nats-Request-Info: {\"acc\":"), "{text:?}");
        assert!(text.ends_with("\r\n\r\nreq\r\n"), "{text:?}");
        ra.send(format!("PUB {reply} 3\r\nans\r\n").as_bytes());
        ra.sync();
        let mut ans = Vec::new();
        assert!(wait_until(Duration::from_secs(5), || {
            ans.extend(rb.sync());
            ans.len() >= 2
        }));
        seen.push((got, ans));
    }
    // The stream arrives; the token-required export is not delivered without a token.
    assert_eq!(seen[1].0, ["MSG feed.x 1 3\r\n", "one\r\n"]);
    assert_eq!(seen[1].1, ["MSG inbox 5 3\r\n", "ans\r\n"]);
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn signing_keys_and_scopes() {
    let mut s = Setup::new("jwt-signing");
    let sk = KeyPair::new_account();
    let scoped = KeyPair::new_account();
    let a_kp = KeyPair::new_account();
    let a_jwt = account_jwt(
        "A",
        &a_kp,
        &s.op,
        json!({"signing_keys": [sk.public_key(), {
            "kind": "user_scope", "key": scoped.public_key(), "role": "r",
            "template": {"pub": {"deny": ["nope"]}, "sub": {}, "subs": -1, "data": -1, "payload": -1}
        }]}),
    );
    s.accounts.push((clone(&a_kp), a_jwt));
    let u = KeyPair::new_user();
    let issuer = json!({"issuer_account": a_kp.public_key()});
    let by_sk = user_jwt("u", &u, &sk, issuer.clone(), json!({}));
    let by_scope_bare = encode(
        json!({"sub": u.public_key(), "name": "u",
               "nats": {"type": "user", "version": 2, "issuer_account": a_kp.public_key()}}),
        &scoped,
    );
    let by_scope_with_perms = user_jwt("u", &u, &scoped, issuer, json!({}));
    let conf = s.conf("");
    let mut seen = Vec::new();
    for srv in both(&conf) {
        let (mut r1, pre) = login(srv.port, &by_sk, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        r1.send(b"PUB nope 1\r\na\r\n");
        let t1 = r1.sync();
        let (mut r2, pre) = login(srv.port, &by_scope_bare, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        r2.send(b"PUB nope 1\r\na\r\n");
        let t2 = r2.sync();
        // A scoped key's users must not carry permissions or limits of their own.
        let t3 = login(srv.port, &by_scope_with_perms, Some(&u)).1;
        seen.push((t1, t2, t3));
    }
    assert!(seen[1].0.is_empty());
    assert_eq!(
        seen[1].1,
        ["-ERR 'Permissions Violation for Publish to \"nope\"'\r\n"]
    );
    assert_eq!(seen[1].2, VIOLATION);
    assert_eq!(seen[0], seen[1]);
}

#[test]
fn user_jwt_expiry_closes_the_connection() {
    let mut s = Setup::new("jwt-expiry");
    let a = s.account("A", json!({}));
    let u = KeyPair::new_user();
    let conf = s.conf("");
    for srv in both(&conf) {
        // Made per server: it expires two seconds after the login.
        let jwt = user_jwt("u", &u, &a, json!({}), json!({"exp": now() + 2}));
        let (mut r, pre) = login(srv.port, &jwt, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        r.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(r.line(), "-ERR 'User Authentication Expired'\r\n");
        assert!(r.closed_within(Duration::from_secs(5)));
    }
}

/// Runs `exe` on `file` in `dir`: with `-t`, or for real (bounded) when `run`.
fn outcome(exe: &Path, dir: &Path, file: &str, run: bool) -> (Option<i32>, String) {
    let path = dir.join(file);
    let p = path.to_str().unwrap();
    let args: Vec<&str> = if run {
        vec!["-c", p, "-a", "127.0.0.1", "-p", "-1", "-m", "0"]
    } else {
        vec!["-c", p, "-t"]
    };
    let (code, _, err) = run_bounded(exe, &args, Duration::from_secs(10));
    (code, err.replace(&format!("{}/", dir.display()), ""))
}

#[test]
fn operator_configs_fail_as_the_reference() {
    let s = Setup::new("jwt-cfg");
    let op_file = s.dir.write("op.jwt", &operator_jwt(&s.op));
    let op = op_file.display().to_string();
    let sys = s.sys.public_key();
    let sys_jwt = &s.accounts[0].1;
    let inline = operator_jwt(&s.op);
    let preload = format!("resolver_preload: {{ {sys}: {sys_jwt} }}");
    let checked: Vec<String> = vec![
        "operator: \"/nonexistent/op.jwt\"\nresolver: MEMORY\n".into(),
        "operator: \"eyJhbGciOi\"\nresolver: MEMORY\n".into(),
        format!("operator: {inline:?}\nresolver: FOO\n"),
        format!("operator: [{op:?}]\nresolver: MEMORY\n"),
        format!("operator: {op:?}\nresolver: {{ type: full }}\n"),
        format!(
            "operator: {op:?}\nresolver: {{ type: cache, dir: {:?}, interval: \"2m\" }}\n",
            s.dir.0.display().to_string()
        ),
        format!("operator: {op:?}\nresolver: {{ type: bogus, dir: \"/tmp\" }}\n"),
        format!("operator: {op:?}\nresolver: 5\n"),
        format!("operator: {op:?}\nresolver: MEMORY\nresolver_preload: {{ {sys}: \"abc\" }}\n"),
        format!("operator: {op:?}\nresolver: MEMORY\nresolver_preload: 5\n"),
        format!("operator: {op:?}\nresolver: MEMORY\ntrusted_keys: [\"OXX\"]\n"),
        format!("operator: {op:?}\nresolver: MEMORY\n{preload}\n"),
    ];
    let started: Vec<String> = vec![
        format!("operator: {op:?}\nresolver: MEMORY\nsystem_account: {sys}\n"),
        format!("operator: {op:?}\nresolver: MEMORY\nauthorization {{ users = [{{user: a, password: b}}] }}\n"),
        format!("operator: {op:?}\nresolver: MEMORY\naccounts {{ X: {{}} }}\n"),
        format!("operator: {op:?}\nresolver: MEMORY\ntrusted_keys: {:?}\n", s.op.public_key()),
        format!("operator: {op:?}\nsystem_account: {sys}\n"),
        format!("operator: {op:?}\nresolver: URL(\"ftp://x\")\n{preload}\n"),
        format!("operator: {op:?}\nresolver: URL(\"/x\")\n"),
    ];
    for (i, text) in checked.iter().enumerate() {
        let f = format!("c{i}.conf");
        s.dir.write(&f, text);
        let o = outcome(&ours(), &s.dir.0, &f, false);
        let r = outcome(&reference(), &s.dir.0, &f, false);
        assert_eq!(o, r, "-t of:\n{text}");
    }
    for (i, text) in started.iter().enumerate() {
        let f = format!("s{i}.conf");
        s.dir.write(&f, text);
        let o = outcome(&ours(), &s.dir.0, &f, true);
        let r = outcome(&reference(), &s.dir.0, &f, true);
        assert_eq!(r.0, Some(1), "reference started with:\n{text}\n{}", r.1);
        assert_eq!(o, r, "start of:\n{text}");
    }
}

/// Our leaf logs in to a reference hub in operator mode with a `credentials` file (the user
/// JWT and the signed nonce in its CONNECT) and is bound to the user's account.
#[test]
fn leaf_credentials_to_an_operator_mode_reference_hub() {
    leaf_credentials(&reference(), &ours());
}

#[test]
fn leaf_credentials_to_an_operator_mode_hub_of_ours() {
    leaf_credentials(&ours(), &ours());
    leaf_credentials(&ours(), &reference());
}

/// A leaf (`leaf_exe`) logs in to an operator-mode hub (`hub_exe`) with a credentials file
/// and is bound to the user's account; a wrong seed is refused.
fn leaf_credentials(hub_exe: &Path, leaf_exe: &Path) {
    let mut s = Setup::new("jwt-leaf");
    let a = s.account("A", json!({}));
    let u = KeyPair::new_user();
    let ujwt = user_jwt("u", &u, &a, json!({}), json!({}));
    let creds = s.creds_file("u", &ujwt, &u);
    let lport = crate::support::free_port();
    let conf = s.conf(&format!("leafnodes {{ listen: \"127.0.0.1:{lport}\" }}"));
    let hub = ServerProc::start(hub_exe, &["-c", conf.to_str().unwrap()]);
    let leaf_conf = s.dir.write(
        "leaf.conf",
        &format!(
            "leafnodes {{ reconnect: 1, remotes [ {{ url: \"nats://127.0.0.1:{lport}\", credentials: {:?} }} ] }}\n",
            creds.display().to_string()
        ),
    );
    let leaf = ServerProc::start(leaf_exe, &["-c", leaf_conf.to_str().unwrap()]);
    rt().block_on(async {
        let hc = async_nats::ConnectOptions::with_credentials_file(&creds)
            .await
            .unwrap()
            .connect(hub.url())
            .await
            .expect("hub client");
        let lc = async_nats::connect(leaf.url()).await.expect("leaf client");
        let mut sub = lc.subscribe("via.leaf").await.unwrap();
        lc.flush().await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                hc.publish("via.leaf", "hi".into()).await.unwrap();
                hc.flush().await.unwrap();
                if let Ok(Some(m)) = tokio::time::timeout(
                    Duration::from_millis(200),
                    futures::StreamExt::next(&mut sub),
                )
                .await
                {
                    return m;
                }
            }
        })
        .await;
        assert!(
            got.is_ok(),
            "no message through the leaf; hub:\n{}\nleaf:\n{}",
            hub.proc.log_text(),
            leaf.proc.log_text()
        );
    });
    // Signed with another key: refused.
    let other = KeyPair::new_user();
    let bad = s.creds_file("bad", &ujwt, &other);
    let bad_conf = s.dir.write(
        "bad.conf",
        &format!(
            "leafnodes {{ reconnect: 1, remotes [ {{ url: \"nats://127.0.0.1:{lport}\", credentials: {:?} }} ] }}\n",
            bad.display().to_string()
        ),
    );
    let bad_leaf = ServerProc::start(leaf_exe, &["-c", bad_conf.to_str().unwrap()]);
    assert!(
        bad_leaf
            .proc
            .wait_log("Authorization Violation", Duration::from_secs(10)),
        "{}",
        bad_leaf.proc.log_text()
    );
}

/// JetStream for accounts from JWTs: an account whose JWT grants storage gets JetStream
/// with the JWT's limits; one without is told JetStream is not enabled for it.
#[test]
fn jetstream_limits_from_account_jwts() {
    let mut s = Setup::new("jwt-js");
    let js = s.account(
        "JS",
        json!({"limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                          "wildcards": true, "conn": -1, "leaf": -1, "mem_storage": -1,
                          "disk_storage": 1048576, "streams": 1, "consumer": 2,
                          "max_ack_pending": 40}}),
    );
    let plain = s.account("PLAIN", json!({}));
    let u = KeyPair::new_user();
    let js_user = user_jwt("u", &u, &js, json!({}), json!({}));
    let plain_user = user_jwt("u", &u, &plain, json!({}), json!({}));
    let conf = s.conf("");
    let c = conf.to_str().unwrap();
    let ask = |r: &mut Raw, subject: &str, body: &str| -> String {
        r.send(format!("PUB {subject} reply {}\r\n{body}\r\nPING\r\n", body.len()).as_bytes());
        let mut out = String::new();
        loop {
            let l = r.line();
            if l == "PONG\r\n" {
                // The answer may come after the PONG of this PING: one more round.
                if out.is_empty() {
                    r.send(b"PING\r\n");
                    continue;
                }
                return out;
            }
            if l.starts_with("MSG reply") {
                let mut v: Value = serde_json::from_str(r.line().trim_end()).unwrap();
                for k in ["created", "first_ts", "last_ts"] {
                    if let Some(x) = v.get_mut(k) {
                        *x = json!("<t>");
                    }
                    if let Some(x) = v.get_mut("state").and_then(|s| s.get_mut(k)) {
                        *x = json!("<t>");
                    }
                }
                out = v.to_string();
            }
        }
    };
    let mut seen = Vec::new();
    for exe in [reference(), ours()] {
        let store = TempDir::new("jwt-js-store");
        let srv = ServerProc::start(&exe, &["-c", c, "-js", "-sd", store.0.to_str().unwrap()]);
        let mut got = Vec::new();
        let (mut r, pre) = login(srv.port, &js_user, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        r.send(b"SUB reply 1\r\n");
        for (subject, body) in [
            ("$JS.API.INFO", ""),
            (
                "$JS.API.STREAM.CREATE.A",
                r#"{"name":"A","subjects":["a"]}"#,
            ),
            (
                "$JS.API.STREAM.CREATE.B",
                r#"{"name":"B","subjects":["b"]}"#,
            ),
            (
                "$JS.API.CONSUMER.DURABLE.CREATE.A.d",
                r#"{"stream_name":"A","config":{"durable_name":"d","ack_policy":"explicit","max_ack_pending":100}}"#,
            ),
        ] {
            got.push(ask(&mut r, subject, body));
        }
        let (mut p, pre) = login(srv.port, &plain_user, Some(&u));
        assert!(pre.is_empty(), "{pre:?}");
        p.send(b"SUB reply 1\r\n");
        got.push(ask(&mut p, "$JS.API.INFO", ""));
        seen.push(got);
    }
    assert_eq!(seen[1], seen[0]);
    assert!(
        seen[0][0].contains("\"max_storage\":1048576"),
        "{:?}",
        seen[0]
    );
}
