//! HTTP monitoring: /varz, /connz, /routez, /subsz, /healthz on our server, checked after
//! known traffic and side by side with the Go reference (same traffic, same answers, same
//! JSON keys).

use crate::support::{free_port, ours, reference, wait_until, Raw, ServerProc};
use nats_common::monitor::{parse_rfc3339, parse_uptime};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// One HTTP reply.
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.body))
    }
}

/// A GET over a plain TCP socket (HTTP/1.1, `Connection: close`, chunked bodies decoded).
pub fn try_get(port: u16, path: &str) -> Option<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(Reply {
        status,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).ok()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

fn get(port: u16, path: &str) -> Reply {
    try_get(port, path).unwrap_or_else(|| panic!("GET {path} on port {port} failed"))
}

pub(crate) fn get_json(port: u16, path: &str) -> Value {
    let r = get(port, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// A server with the monitor on a free port.
struct Mon {
    srv: ServerProc,
    http: u16,
    name: &'static str,
}

impl Mon {
    fn start(exe: &Path, extra: &[&str]) -> Mon {
        let http = free_port();
        let hp = http.to_string();
        let mut args = vec!["-m", hp.as_str()];
        args.extend_from_slice(extra);
        let srv = ServerProc::start(exe, &args);
        let name = if exe == reference().as_path() {
            "reference"
        } else {
            "ours"
        };
        assert!(
            wait_until(T, || try_get(http, "/healthz")
                .is_some_and(|r| r.status == 200)),
            "{name}: monitor did not come up; log:\n{}",
            srv.proc.log_text()
        );
        Mon { srv, http, name }
    }

    fn json(&self, path: &str) -> Value {
        get_json(self.http, path)
    }

    /// Polls `path` until `cond` holds on its JSON.
    fn wait_json(&self, path: &str, mut cond: impl FnMut(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(T, || {
            last = self.json(path);
            cond(&last)
        });
        assert!(ok, "{}: {path} never matched; last: {last:#}", self.name);
        last
    }
}

fn both() -> [PathBuf; 2] {
    [ours(), reference()]
}

/// A raw client past INFO and CONNECT.
fn client(port: u16, connect: &str) -> Raw {
    let mut r = Raw::connect(port);
    r.info();
    r.send(format!("CONNECT {connect}\r\n").as_bytes());
    r
}

/// Reads lines until one contains `needle` (skipping the server's PINGs and the like).
fn line_with(r: &mut Raw, needle: &str) -> String {
    for _ in 0..50 {
        let l = r.line();
        assert!(!l.is_empty(), "EOF while waiting for {needle:?}");
        if l.contains(needle) {
            return l;
        }
    }
    panic!("no line with {needle:?}");
}

fn cids(connz: &Value) -> Vec<u64> {
    connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| c["cid"].as_u64().expect("cid"))
        .collect()
}

fn conn<'a>(connz: &'a Value, name: &str) -> &'a Value {
    connz["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no connection named {name} in {connz:#}"))
}

fn nanos(v: &Value) -> i128 {
    parse_rfc3339(v.as_str().expect("time string"))
        .unwrap_or_else(|| panic!("not RFC3339: {v}"))
        .unix_nanos
}

/// Publishes known traffic: `sub` holds foo and bar.* (queue q1); `pubber` sends three
/// 5-byte messages to foo and one 3-byte message to bar.x, so each side moves 4 msgs, 18 bytes.
fn known_traffic(port: u16) -> (Raw, Raw) {
    let mut sub = client(
        port,
        r#"{"name":"sub","lang":"raw","version":"1.0","verbose":false}"#,
    );
    sub.send(b"SUB foo 1\r\nSUB bar.* q1 2\r\n");
    sub.sync();
    let mut pubber = client(
        port,
        r#"{"name":"pubber","lang":"raw","version":"2.0","verbose":false}"#,
    );
    pubber.send(
        b"PUB foo 5\r\nhello\r\nPUB foo 5\r\nhello\r\nPUB foo 5\r\nhello\r\nPUB bar.x 3\r\nabc\r\n",
    );
    pubber.sync();
    let got = sub.sync();
    assert_eq!(
        got.iter().filter(|l| l.starts_with("MSG ")).count(),
        4,
        "{got:?}"
    );
    (sub, pubber)
}

#[test]
fn varz_and_connz_count_known_traffic_like_the_reference() {
    for exe in both() {
        let m = Mon::start(&exe, &[]);
        // The start-up probe was a connection too.
        let before = m.json("/varz")["total_connections"]
            .as_u64()
            .expect("total");
        let (_sub, _pubber) = known_traffic(m.srv.port);
        // The reference publishes a read's inbound counters after delivering it: wait for both.
        let v = m.wait_json("/varz", |v| v["out_msgs"] == 4 && v["in_msgs"] == 4);
        let who = m.name;
        assert_eq!(v["in_msgs"], 4, "{who} {v:#}");
        assert_eq!(v["in_bytes"], 18, "{who}");
        assert_eq!(v["out_bytes"], 18, "{who}");
        assert_eq!(v["connections"], 2, "{who}");
        assert_eq!(v["total_connections"], before + 2, "{who}");
        assert_eq!(v["slow_consumers"], 0, "{who}");
        assert_eq!(v["port"], m.srv.port, "{who}");
        assert_eq!(v["http_port"], m.http, "{who}");
        assert_eq!(v["http_host"], "127.0.0.1", "{who}");
        assert_eq!(v["max_payload"], 1_048_576, "{who}");
        assert_eq!(v["ping_interval"], 120_000_000_000i64, "{who}");
        assert_eq!(v["write_deadline"], 10_000_000_000i64, "{who}");
        assert_eq!(v["auth_timeout"], 2, "{who}");
        assert_eq!(v["cluster"], serde_json::json!({}), "{who}");
        assert!(v["mem"].as_i64().unwrap_or(0) > 0, "{who}");
        assert!(v["cores"].as_i64().unwrap_or(0) >= 1, "{who}");
        assert!(v["cpu"].is_number(), "{who}");
        assert!(
            parse_uptime(v["uptime"].as_str().unwrap_or("")).is_ok(),
            "{who}"
        );
        assert!(nanos(&v["now"]) >= nanos(&v["start"]), "{who}");
        let seen = v["http_req_stats"]["/varz"].as_u64().expect("/varz count");
        let again = m.json("/varz");
        assert_eq!(again["http_req_stats"]["/varz"], seen + 1, "{who}");
        assert!(
            v["http_req_stats"]["/healthz"].as_u64().unwrap_or(0) >= 1,
            "{who}"
        );
        // Our sublist has no internal subscriptions; the reference adds its $SYS ones.
        assert!(v["subscriptions"].as_u64().unwrap_or(0) >= 2, "{who}");

        let c = m.wait_json("/connz?subs=detail", |c| {
            c["connections"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["in_msgs"] == 4))
        });
        assert_eq!(c["num_connections"], 2, "{who}");
        assert_eq!(c["total"], 2, "{who}");
        assert_eq!(c["limit"], 1024, "{who}");
        assert_eq!(c["offset"], 0, "{who}");
        let s = conn(&c, "sub");
        assert_eq!(s["kind"], "Client");
        assert_eq!(s["type"], "nats");
        assert_eq!(s["ip"], "127.0.0.1");
        assert_eq!(s["lang"], "raw");
        assert_eq!(s["version"], "1.0");
        assert_eq!(s["out_msgs"], 4, "{who}: {s:#}");
        assert_eq!(s["out_bytes"], 18, "{who}");
        assert_eq!(s["in_msgs"], 0, "{who}");
        assert_eq!(s["subscriptions"], 2, "{who}");
        assert_eq!(s["pending_bytes"], 0, "{who}");
        let detail = s["subscriptions_list_detail"].as_array().expect("detail");
        let foo = detail.iter().find(|d| d["subject"] == "foo").expect("foo");
        assert_eq!(foo["msgs"], 3, "{who}");
        assert_eq!(foo["sid"], "1", "{who}");
        assert_eq!(foo["cid"], s["cid"], "{who}");
        let bar = detail
            .iter()
            .find(|d| d["subject"] == "bar.*")
            .expect("bar");
        assert_eq!(bar["qgroup"], "q1", "{who}");
        assert_eq!(bar["msgs"], 1, "{who}");
        let p = conn(&c, "pubber");
        assert_eq!(p["in_msgs"], 4, "{who}");
        assert_eq!(p["in_bytes"], 18, "{who}");
        assert_eq!(p["out_msgs"], 0, "{who}");
        assert_eq!(p["subscriptions"], 0, "{who}");
        assert!(p.get("subscriptions_list_detail").is_none(), "{who}");
        assert!(nanos(&p["last_activity"]) >= nanos(&p["start"]), "{who}");

        let c = m.json("/connz?subs=1");
        let mut names: Vec<&str> = conn(&c, "sub")["subscriptions_list"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        names.sort();
        assert_eq!(names, ["bar.*", "foo"], "{who}");
    }
}

/// Extracts the value a sort key orders by.
type SortKey = Box<dyn Fn(&Value) -> i128>;

/// Checks that `conns` is ordered by `key` (descending unless `asc`).
fn assert_ordered(who: &str, sort: &str, conns: &[Value], key: impl Fn(&Value) -> i128, asc: bool) {
    for w in conns.windows(2) {
        let (a, b) = (key(&w[0]), key(&w[1]));
        let ok = if asc { a <= b } else { a >= b };
        assert!(
            ok,
            "{who}: sort={sort} out of order: {a} then {b}\n{conns:#?}"
        );
    }
}

#[test]
fn connz_sorts_by_every_key_and_pages() {
    for exe in both() {
        let m = Mon::start(&exe, &[]);
        let who = m.name;
        // Four clients with distinct subscription counts and traffic.
        let mut cs: Vec<Raw> = Vec::new();
        for i in 0..4u32 {
            let mut c = client(m.srv.port, &format!(r#"{{"name":"c{i}","verbose":false}}"#));
            for s in 0..i {
                c.send(format!("SUB s{i}.{s} {s}\r\n").as_bytes());
            }
            c.sync();
            std::thread::sleep(Duration::from_millis(20));
            cs.push(c);
        }
        // c3 publishes to c1's and c2's subjects so in/out counts differ.
        cs[3].send(b"PUB s1.0 2\r\nhi\r\nPUB s2.1 4\r\nabcd\r\nPUB s2.0 1\r\nx\r\n");
        cs[3].sync();
        for c in cs.iter_mut() {
            c.sync();
        }
        m.wait_json("/connz", |c| c["total"] == 4);

        let field = |f: &'static str| move |c: &Value| i128::from(c[f].as_i64().unwrap_or(0));
        let cases: Vec<(&str, SortKey, bool)> = vec![
            ("cid", Box::new(field("cid")), true),
            ("start", Box::new(field("cid")), true),
            ("subs", Box::new(field("subscriptions")), false),
            ("pending", Box::new(field("pending_bytes")), false),
            ("msgs_to", Box::new(field("out_msgs")), false),
            ("msgs_from", Box::new(field("in_msgs")), false),
            ("bytes_to", Box::new(field("out_bytes")), false),
            ("bytes_from", Box::new(field("in_bytes")), false),
            (
                "last",
                Box::new(|c: &Value| nanos(&c["last_activity"])),
                false,
            ),
            // 2.9.10 orders `idle` by last activity minus start, longest first.
            (
                "idle",
                Box::new(|c: &Value| nanos(&c["last_activity"]) - nanos(&c["start"])),
                false,
            ),
            // Ascending uptime: the most recently started first.
            ("uptime", Box::new(|c: &Value| -nanos(&c["start"])), true),
        ];
        for (sort, key, asc) in &cases {
            let c = m.json(&format!("/connz?sort={sort}"));
            let conns = c["connections"].as_array().expect("connections");
            assert_eq!(conns.len(), 4, "{who} sort={sort}");
            assert_ordered(who, sort, conns, key, *asc);
        }
        let subs = m.json("/connz?sort=subs");
        let order: Vec<&str> = subs["connections"]
            .as_array()
            .expect("conns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(order, ["c3", "c2", "c1", "c0"], "{who}");
        let from = m.json("/connz?sort=msgs_from&limit=1");
        assert_eq!(conn(&from, "c3")["in_msgs"], 3, "{who}");

        // Paging happens after sorting; total counts everything.
        let all = cids(&m.json("/connz"));
        let page = m.json("/connz?offset=1&limit=2");
        assert_eq!(cids(&page), all[1..3].to_vec(), "{who}");
        assert_eq!(page["total"], 4, "{who}");
        assert_eq!(page["num_connections"], 2, "{who}");
        assert_eq!(page["offset"], 1, "{who}");
        assert_eq!(page["limit"], 2, "{who}");
        let past = m.json("/connz?offset=10");
        assert_eq!(past["connections"], serde_json::json!([]), "{who}");
        assert_eq!(past["num_connections"], 0, "{who}");
        assert_eq!(past["total"], 4, "{who}");
        let one = m.json(&format!("/connz?cid={}", all[2]));
        assert_eq!(cids(&one), vec![all[2]], "{who}");
        assert_eq!(one["limit"], 1, "{who}");
        let neg = m.json("/connz?offset=-5&limit=0");
        assert_eq!(neg["offset"], 0, "{who}");
        assert_eq!(neg["limit"], 1024, "{who}");
    }
}

#[test]
fn closed_connections_keep_reason_and_subs() {
    let mut reasons = Vec::new();
    for exe in both() {
        let m = Mon::start(&exe, &[]);
        let who = m.name;
        // A clean close: everything read, then the socket shut.
        let mut good = client(m.srv.port, r#"{"name":"good","verbose":false}"#);
        good.send(b"SUB keep.me 7\r\n");
        good.sync();
        good.stream.shutdown(std::net::Shutdown::Both).ok();
        drop(good);
        // An unknown operation.
        let mut bad = client(m.srv.port, r#"{"name":"bad","verbose":false}"#);
        bad.sync();
        bad.send(b"FOO\r\n");
        line_with(&mut bad, "Unknown Protocol Operation");
        assert!(bad.closed_within(T), "{who}");
        let named = |c: &Value, n: &str| {
            c["connections"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["name"] == n))
        };
        let c = m.wait_json("/connz?state=closed&subs=1", |c| {
            named(c, "good") && named(c, "bad")
        });
        let closed_total = c["total"].as_u64().expect("total");
        let g = conn(&c, "good");
        assert_eq!(g["reason"], "Client Closed", "{who}: {g:#}");
        assert_eq!(g["subscriptions"], 1, "{who}");
        assert_eq!(
            g["subscriptions_list"],
            serde_json::json!(["keep.me"]),
            "{who}"
        );
        assert!(nanos(&g["stop"]) >= nanos(&g["start"]), "{who}");
        let b = conn(&c, "bad");
        reasons.push(b["reason"].as_str().unwrap_or("").to_string());
        assert!(b["stop"].is_string(), "{who}");
        // Closed ones are not open, and `all` has both kinds.
        let open = m.json("/connz");
        assert_eq!(open["total"], 0, "{who}");
        let mut keep = client(m.srv.port, r#"{"name":"keep","verbose":false}"#);
        keep.sync();
        let all = m.json("/connz?state=all");
        assert_eq!(all["total"], closed_total + 1, "{who}");
        let by_reason = m.json("/connz?state=closed&sort=reason");
        let rs: Vec<&str> = by_reason["connections"]
            .as_array()
            .expect("conns")
            .iter()
            .filter_map(|c| c["reason"].as_str())
            .collect();
        let mut sorted = rs.clone();
        sorted.sort();
        assert_eq!(rs, sorted, "{who}");
        let by_stop = m.json("/connz?state=closed&sort=stop");
        let stops: Vec<i128> = by_stop["connections"]
            .as_array()
            .expect("conns")
            .iter()
            .map(|c| nanos(&c["stop"]))
            .collect();
        assert!(stops.windows(2).all(|w| w[0] >= w[1]), "{who}: {stops:?}");
        // cid selects within the asked state.
        let gcid = g["cid"].as_u64().expect("cid");
        let one = m.json(&format!("/connz?state=closed&cid={gcid}"));
        assert_eq!(cids(&one), vec![gcid], "{who}");
        let none = m.json(&format!("/connz?cid={gcid}"));
        assert_eq!(cids(&none), Vec::<u64>::new(), "{who}");
        let detail = m.json(&format!("/connz?state=closed&cid={gcid}&subs=detail"));
        let d = &detail["connections"][0]["subscriptions_list_detail"][0];
        assert_eq!(d["subject"], "keep.me", "{who}");
        assert_eq!(d["sid"], "7", "{who}");
    }
    assert_eq!(
        reasons[0], reasons[1],
        "ours vs reference reason for an unknown op"
    );
    assert_eq!(reasons[0], "Protocol Violation");
}

#[test]
fn bad_parameters_get_400_with_the_reference_text() {
    let cases = [
        "/connz?limit=abc",
        "/connz?offset=x1",
        "/connz?limit=99999999999999999999",
        "/connz?subs=maybe",
        "/connz?auth=x",
        "/connz?cid=abc",
        "/connz?cid=-1",
        "/connz?state=bogus",
        "/connz?sort=foo",
        "/connz?sort=rtt",
        "/connz?sort=CID",
        "/connz?sort=stop",
        "/connz?sort=reason&state=all",
        "/connz?sort=foo&limit=x",
        "/routez?subs=zz",
        "/subsz?limit=zz",
        "/subsz?subs=2",
        "/subsz?subs=1&test=bar.*",
        "/subsz?test=foo.%3E",
        "/healthz?js-enabled-only=zz",
    ];
    let ours = Mon::start(&ours(), &[]);
    let refr = Mon::start(&reference(), &[]);
    for path in cases {
        let a = get(ours.http, path);
        let b = get(refr.http, path);
        assert_eq!(b.status, 400, "reference {path}: {}", b.body);
        assert_eq!(a.status, 400, "ours {path}: {}", a.body);
        assert_eq!(a.body, b.body, "{path}");
        assert_eq!(
            a.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
    }
    assert_eq!(
        get(ours.http, "/connz?limit=abc").body,
        "Error decoding int for 'limit': strconv.Atoi: parsing \"abc\": invalid syntax"
    );
    // Decoding failures are not counted as requests; errors found later are.
    let a = ours.json("/varz");
    let b = refr.json("/varz");
    for key in ["/connz", "/subsz", "/routez", "/healthz"] {
        assert_eq!(
            a["http_req_stats"][key], b["http_req_stats"][key],
            "http_req_stats[{key}]: ours {:#} reference {:#}",
            a["http_req_stats"], b["http_req_stats"]
        );
    }
}

#[test]
fn jsonp_headers_index_and_not_found_match_the_reference() {
    let ours = Mon::start(&ours(), &[]);
    let refr = Mon::start(&reference(), &[]);
    for m in [&ours, &refr] {
        let who = m.name;
        let r = get(m.http, "/varz?callback=cb");
        assert_eq!(r.status, 200, "{who}");
        assert_eq!(
            r.header("content-type"),
            Some("application/javascript"),
            "{who}"
        );
        assert!(
            r.body.starts_with("cb({") && r.body.ends_with("})"),
            "{who}"
        );
        let inner: Value = serde_json::from_str(&r.body[3..r.body.len() - 1]).expect("json");
        assert!(inner["server_id"].is_string(), "{who}");

        let r = get(m.http, "/healthz?callback=x");
        assert_eq!(r.body, r#"x({"status":"ok"})"#, "{who}");
        let r = get(m.http, "/healthz");
        assert_eq!(r.body, r#"{"status":"ok"}"#, "{who}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{who}");

        // Pretty JSON, two-space indent, no trailing newline; no CORS headers at all.
        let r = get(m.http, "/connz");
        assert_eq!(r.header("content-type"), Some("application/json"), "{who}");
        assert!(
            r.body.starts_with("{\n  \"server_id\": "),
            "{who}: {}",
            r.body
        );
        assert!(r.body.ends_with("\n}"), "{who}");
        for path in [
            "/varz",
            "/connz?callback=c",
            "/subsz",
            "/routez",
            "/healthz",
        ] {
            let r = get(m.http, path);
            assert!(
                !r.headers
                    .iter()
                    .any(|(k, _)| k.starts_with("access-control-")),
                "{who} {path}: {:?}",
                r.headers
            );
            assert!(r.header("date").is_some(), "{who} {path}");
        }

        let r = get(m.http, "/nope");
        assert_eq!(r.status, 404, "{who}");
        assert_eq!(r.body, "404 page not found\n", "{who}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{who}"
        );
        assert_eq!(get(m.http, "/varz/").status, 404, "{who}");

        let r = get(m.http, "/");
        assert_eq!(r.status, 200, "{who}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{who}"
        );
        for link in ["./varz", "./connz", "./routez", "./subsz", "./healthz"] {
            assert!(r.body.contains(link), "{who}: index lacks {link}");
        }
        assert!(r.body.contains("v2.9.10"), "{who}");
        // The alias counts as /subsz.
        let alias = m.json("/subscriptionsz");
        assert!(alias["num_subscriptions"].is_number(), "{who}");
        let v = m.json("/varz");
        assert_eq!(v["http_req_stats"]["/"], 1, "{who}");
        assert!(
            v["http_req_stats"].get("/subscriptionsz").is_none(),
            "{who}"
        );
    }
    // Subjects print with Go's HTML-safe escapes.
    for m in [&ours, &refr] {
        let mut c = client(m.srv.port, r#"{"name":"esc","verbose":false}"#);
        c.send(b"SUB foo.> 1\r\nSUB a&b<c 2\r\n");
        c.sync();
        let r = get(m.http, "/connz?subs=1");
        assert!(r.body.contains(r#""foo.\u003e""#), "{}: {}", m.name, r.body);
        assert!(r.body.contains(r#""a\u0026b\u003cc""#), "{}", m.name);
    }
}

#[test]
fn subsz_filters_by_test_subject_and_pages() {
    for exe in both() {
        let m = Mon::start(&exe, &[]);
        let who = m.name;
        let mut c = client(m.srv.port, r#"{"name":"s","verbose":false}"#);
        c.send(b"SUB foo 1\r\nSUB bar.* q1 2\r\nSUB baz.> 3\r\nSUB other 4\r\n");
        c.sync();
        let stats = m.json("/subsz");
        for k in [
            "num_subscriptions",
            "num_cache",
            "num_inserts",
            "num_removes",
            "num_matches",
            "cache_hit_rate",
            "max_fanout",
            "avg_fanout",
        ] {
            assert!(stats[k].is_number(), "{who}: {k} in {stats:#}");
        }
        assert!(
            stats.get("server_id").is_none(),
            "{who}: stats only without subs"
        );

        let s = m.json("/subsz?subs=1&test=bar.x");
        assert_eq!(s["total"], 1, "{who}: {s:#}");
        let l = &s["subscriptions_list"][0];
        assert_eq!(l["subject"], "bar.*", "{who}");
        assert_eq!(l["qgroup"], "q1", "{who}");
        assert_eq!(l["account"], "$G", "{who}");
        assert_eq!(l["sid"], "2", "{who}");
        let s = m.json("/subsz?subs=1&test=baz.a.b");
        assert_eq!(s["subscriptions_list"][0]["subject"], "baz.>", "{who}");
        let s = m.json("/subsz?subs=1&test=foo");
        assert_eq!(s["subscriptions_list"][0]["subject"], "foo", "{who}");
        // Nothing matched: the statistics alone.
        let s = m.json("/subsz?subs=1&test=nothing.here");
        assert!(s.get("subscriptions_list").is_none(), "{who}: {s:#}");
        assert!(s["num_subscriptions"].is_number(), "{who}");

        // Paging; `total` is the size of the page.
        let all = m.json("/subsz?subs=1");
        let n = all["subscriptions_list"].as_array().expect("list").len();
        assert!(n >= 4, "{who}");
        let page = m.json("/subsz?subs=1&offset=1&limit=2");
        assert_eq!(page["total"], 2, "{who}");
        assert_eq!(page["offset"], 1, "{who}");
        assert_eq!(page["limit"], 2, "{who}");
        let page_list = page["subscriptions_list"].as_array().expect("page");
        let all_list = all["subscriptions_list"].as_array().expect("list");
        assert!(page_list.iter().all(|x| all_list.contains(x)), "{who}");
        // The reference walks a Go map, whose order changes between calls; ours is stable.
        if who == "ours" {
            assert_eq!(page_list, &all_list[1..3], "{who}");
        }
    }
}

/// Keys of a JSON value, recursively: objects as `path.key`, array elements as `path[]`.
fn key_paths(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{path}.{k}");
                out.insert(p.clone());
                // A map keyed by data, not a struct.
                if k != "http_req_stats" {
                    key_paths(v, &p, out);
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                key_paths(v, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

pub fn keys(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    key_paths(v, "", &mut out);
    out
}

fn assert_same_keys(what: &str, ours: &Value, refr: &Value) {
    let (a, b) = (keys(ours), keys(refr));
    let missing: Vec<&String> = b.difference(&a).collect();
    let extra: Vec<&String> = a.difference(&b).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: keys missing in ours {missing:?}, extra in ours {extra:?}\nours: {ours:#}\nreference: {refr:#}"
    );
}

/// The same traffic on a server: an open client with details, a closed one, a user.
fn key_traffic(m: &Mon) -> Vec<Raw> {
    let mut a = client(
        m.srv.port,
        r#"{"name":"keys","lang":"raw","version":"1","verbose":false,"user":"alice","pass":"pw"}"#,
    );
    a.send(b"SUB k.one 1\r\nSUB k.* kq 2\r\nUNSUB 2 10\r\nPUB k.one 2\r\nhi\r\n");
    a.sync();
    let mut gone = client(
        m.srv.port,
        r#"{"name":"gone","lang":"raw","version":"1","verbose":false,"user":"alice","pass":"pw"}"#,
    );
    gone.send(b"SUB g.one 1\r\n");
    gone.sync();
    gone.stream.shutdown(std::net::Shutdown::Both).ok();
    m.wait_json("/connz?state=closed", |c| {
        c["connections"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == "gone"))
    });
    vec![a]
}

#[test]
fn endpoint_keys_match_the_reference() {
    let args = ["--user", "alice", "--pass", "pw"];
    let ours = Mon::start(&ours(), &args);
    let refr = Mon::start(&reference(), &args);
    let _keep = (key_traffic(&ours), key_traffic(&refr));
    for path in [
        "/varz",
        "/connz",
        "/connz?subs=1",
        "/connz?subs=detail&auth=1",
        "/connz?state=closed&subs=1&auth=1",
        "/connz?state=all&subs=detail",
        "/routez",
        "/routez?subs=1",
        "/subsz",
        "/subsz?subs=1&test=k.one",
        "/healthz",
    ] {
        assert_same_keys(path, &ours.json(path), &refr.json(path));
    }
}

/// A clustered server with the monitor on.
fn cluster_node(exe: &Path, cport: u16, routes: &[u16]) -> Mon {
    let listen = format!("nats://127.0.0.1:{cport}");
    let routes: Vec<String> = routes
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    let routes = routes.join(",");
    let mut args = vec!["--cluster", listen.as_str(), "--cluster_name", "mon"];
    if !routes.is_empty() {
        args.push("--routes");
        args.push(&routes);
    }
    Mon::start(exe, &args)
}

#[test]
fn clustered_varz_and_routez_keys_match_the_reference() {
    for_pair(|ours, refr| {
        for path in ["/varz", "/routez", "/routez?subs=1", "/routez?subs=detail"] {
            let a = ours.json(path);
            let b = refr.json(path);
            assert_same_keys(path, &a, &b);
        }
    });
}

/// A route with no client interest still lists the system account's subscriptions its
/// peer announced, so `subscriptions_list` is there on both servers (the key is omitted
/// only when a route carries no interest at all).
#[test]
fn routez_lists_system_interest_without_client_subscriptions() {
    for exe in both() {
        let (c1, c2) = (free_port(), free_port());
        let a = cluster_node(&exe, c1, &[]);
        let _b = cluster_node(&exe, c2, &[c1]);
        let r = a.wait_json("/routez?subs=1", |r| {
            r["num_routes"] == 1
                && r["routes"][0]["subscriptions_list"]
                    .as_array()
                    .is_some_and(|l| {
                        l.iter()
                            .any(|s| s.as_str().is_some_and(|s| s.starts_with("$SYS.")))
                    })
        });
        assert!(
            r["routes"][0]["subscriptions"].as_u64() > Some(0),
            "{}: {r:#}",
            exe.display()
        );
    }
}

/// Runs `f` on a two-node cluster of ours and one of the reference, each with interest
/// on both sides and a route up.
fn for_pair(f: impl Fn(&Mon, &Mon)) {
    let mut pairs = Vec::new();
    for exe in both() {
        let (c1, c2) = (free_port(), free_port());
        let a = cluster_node(&exe, c1, &[]);
        let b = cluster_node(&exe, c2, &[c1]);
        for m in [&a, &b] {
            m.wait_json("/routez", |r| r["num_routes"] == 1);
        }
        // Interest on both sides, so both routes list subscriptions.
        let mut subs = Vec::new();
        for (here, there) in [(&a, &b), (&b, &a)] {
            let mut sub = client(here.srv.port, r#"{"name":"rsub","verbose":false}"#);
            sub.send(b"SUB r.foo 1\r\nSUB r.q rq 2\r\n");
            sub.sync();
            there.wait_json("/routez?subs=1", |r| {
                r["routes"][0]["subscriptions_list"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|s| s == "r.foo"))
            });
            subs.push(sub);
        }
        pairs.push((a, b, subs));
    }
    f(&pairs[0].0, &pairs[1].0);
    f(&pairs[0].1, &pairs[1].1);
}

#[test]
fn routez_on_a_three_node_cluster() {
    let (c1, c2, c3) = (free_port(), free_port(), free_port());
    let a = cluster_node(&ours(), c1, &[]);
    let b = cluster_node(&ours(), c2, &[c1]);
    let c = cluster_node(&ours(), c3, &[c1]);
    let nodes = [&a, &b, &c];
    let ids: Vec<String> = nodes
        .iter()
        .map(|m| {
            m.json("/varz")["server_id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    for (i, m) in nodes.iter().enumerate() {
        let r = m.wait_json("/routez", |r| r["num_routes"] == 2);
        assert_eq!(r["server_id"], ids[i]);
        let mut remotes: Vec<String> = r["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .map(|x| x["remote_id"].as_str().expect("remote_id").to_string())
            .collect();
        remotes.sort();
        let mut want: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, id)| id.clone())
            .collect();
        want.sort();
        assert_eq!(remotes, want, "node {i}");
        for route in r["routes"].as_array().expect("routes") {
            assert!(route["rid"].as_u64().is_some());
            assert_eq!(route["ip"], "127.0.0.1");
            assert!(route["rtt"].is_string());
            assert!(parse_uptime(route["uptime"].as_str().unwrap_or("")).is_ok());
        }
        let v = m.json("/varz");
        assert_eq!(v["routes"], 2, "node {i}");
        assert_eq!(v["remotes"], 2, "node {i}");
        assert_eq!(v["cluster"]["name"], "mon", "node {i}");
        assert_eq!(v["cluster"]["cluster_port"], [c1, c2, c3][i], "node {i}");
        // Routes are not client connections.
        assert_eq!(m.json("/connz")["total"], 0, "node {i}");
    }
    // b dialled a from its configured routes.
    let rb = b.json("/routez");
    let to_a = rb["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|r| r["remote_id"] == ids[0])
        .expect("route to a");
    assert_eq!(to_a["did_solicit"], true, "{rb:#}");
    assert_eq!(to_a["is_configured"], true, "{rb:#}");
    let ra = a.json("/routez");
    for r in ra["routes"].as_array().expect("routes") {
        assert_eq!(r["is_configured"], false, "{ra:#}");
    }
    assert_eq!(
        b.json("/varz")["cluster"]["urls"],
        serde_json::json!([format!("127.0.0.1:{c1}")])
    );

    // Interest on c shows on a's route to c, and a message from a reaches it through the route.
    let mut sub = client(c.srv.port, r#"{"name":"csub","verbose":false}"#);
    sub.send(b"SUB three.foo 1\r\n");
    sub.sync();
    let route_to_c = |r: &Value| -> Value {
        r["routes"]
            .as_array()
            .and_then(|rs| rs.iter().find(|x| x["remote_id"] == ids[2]).cloned())
            .unwrap_or(Value::Null)
    };
    a.wait_json("/routez?subs=1", |r| {
        route_to_c(r)["subscriptions_list"]
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s == "three.foo"))
    });
    let d = a.json("/routez?subs=detail");
    let detail = route_to_c(&d)["subscriptions_list_detail"].clone();
    let three = detail
        .as_array()
        .expect("detail")
        .iter()
        .find(|x| x["subject"] == "three.foo")
        .cloned()
        .expect("three.foo detail");
    assert_eq!(three["sid"], "$G three.foo", "{d:#}");
    // The system account's events cross the routes too: count from here.
    let route_to_a = |r: &Value| -> Value {
        r["routes"]
            .as_array()
            .and_then(|rs| rs.iter().find(|x| x["remote_id"] == ids[0]).cloned())
            .unwrap_or(Value::Null)
    };
    let out_before = route_to_c(&a.json("/routez"))["out_bytes"]
        .as_u64()
        .unwrap_or(0);
    let in_before = route_to_a(&c.json("/routez"))["in_bytes"]
        .as_u64()
        .unwrap_or(0);
    let mut p = client(a.srv.port, r#"{"name":"apub","verbose":false}"#);
    p.send(b"PUB three.foo 3\r\nabc\r\n");
    p.sync();
    line_with(&mut sub, "MSG three.foo 1 3");
    a.wait_json("/routez", |r| {
        route_to_c(r)["out_bytes"].as_u64().unwrap_or(0) >= out_before + 3
    });
    c.wait_json("/routez", |r| {
        route_to_a(r)["in_bytes"].as_u64().unwrap_or(0) >= in_before + 3
    });
}

#[test]
fn monitor_port_in_use_is_fatal_and_https_needs_tls() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    for exe in both() {
        let mut p = crate::support::spawn(
            &exe,
            &[
                "-a",
                "127.0.0.1",
                "-p",
                &free_port().to_string(),
                "-m",
                &port,
            ],
        );
        assert_eq!(p.wait_exit(T), Some(1), "{}", exe.display());
        let log = p.log_text();
        assert!(
            log.contains(&format!(
                "[FTL] Can't start monitoring: can't listen to the monitor port: listen tcp 127.0.0.1:{port}: bind: address already in use"
            )),
            "{log}"
        );
        let mut p = crate::support::spawn(
            &exe,
            &[
                "-a",
                "127.0.0.1",
                "-p",
                &free_port().to_string(),
                "-ms",
                &free_port().to_string(),
            ],
        );
        assert_eq!(p.wait_exit(T), Some(1), "{}", exe.display());
        // Ours currently refuses this earlier, at option validation (config/apply.rs), with
        // "TLS Config is required for HTTPS"; the reference fails when monitoring starts.
        let want = if exe == reference() {
            "[FTL] Can't start monitoring: TLS cert and key required for HTTPS"
        } else {
            "HTTPS"
        };
        assert!(p.log_text().contains(want), "{}", p.log_text());
    }
    // The monitor's log line comes before the client listener's, as in the reference.
    let m = Mon::start(&ours(), &[]);
    let log = m.srv.proc.log_text();
    let mon = log
        .find(&format!("Starting http monitor on 127.0.0.1:{}", m.http))
        .expect("monitor line");
    let cl = log
        .find("Listening for client connections")
        .expect("client line");
    assert!(mon < cl, "{log}");
}

#[test]
fn https_monitor_serves_varz_over_tls() {
    // curl is the TLS client here; the test command installs it.
    let has_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_curl,
        "curl missing: run the README's test command, which installs it"
    );
    let pki = crate::tls::pki();
    let https = free_port();
    let hp = https.to_string();
    let cert = pki.server_cert.to_string_lossy().into_owned();
    let key = pki.server_key.to_string_lossy().into_owned();
    let srv = ServerProc::start(
        &ours(),
        &["-ms", &hp, "--tls", "--tlscert", &cert, "--tlskey", &key],
    );
    assert!(srv
        .proc
        .wait_log(&format!("Starting https monitor on 127.0.0.1:{https}"), T));
    let url = format!("https://127.0.0.1:{https}/varz");
    let ca = pki.ca.to_string_lossy().into_owned();
    let mut body = String::new();
    let ok = wait_until(T, || {
        std::process::Command::new("curl")
            .args(["-s", "--max-time", "5", "--cacert", &ca, &url])
            .output()
            .is_ok_and(|o| {
                body = String::from_utf8_lossy(&o.stdout).into_owned();
                o.status.success() && !body.is_empty()
            })
    });
    assert!(ok, "no HTTPS answer; log:\n{}", srv.proc.log_text());
    let v: Value = serde_json::from_str(&body).expect("varz json");
    assert_eq!(v["https_port"], https);
    assert_eq!(v["http_port"], 0);
    assert_eq!(v["tls_required"], true);
    // Plain HTTP on the HTTPS port gets nothing useful.
    assert!(try_get(https, "/varz").is_none_or(|r| r.status != 200));
}

/// Endpoints of subsystems this server lacks, the reference's debugging endpoints, and
/// unclean paths: the same status, content type, JSON keys and parameter errors as the
/// reference on a server where those subsystems are not configured.
#[test]
fn unconfigured_subsystem_endpoints_answer_as_the_reference() {
    let ours = Mon::start(&ours(), &[]);
    let refr = Mon::start(&reference(), &[]);
    // One connected client, so /accstatz lists the global account on both.
    let _clients = (
        client(ours.srv.port, r#"{"verbose":false}"#),
        client(refr.srv.port, r#"{"verbose":false}"#),
    );
    for path in [
        "/jsz",
        "/jsz?accounts=1&streams=true&consumers=1&config=1&offset=2&limit=3&leader-only=0",
        "/accountz",
        "/accountz?acc=$G",
        "/accstatz",
        "/accstatz?unused=1",
        "/leafz",
        "/leafz?subs=1&acc=x",
        "/gatewayz",
        "/gatewayz?accs=1&gw_name=x",
        "/ipqueuesz",
        "/jsz?callback=cb",
        "/stacksz",
        "/jsz?accounts=x",
        "/jsz?offset=x",
        "/jsz?leader-only=x",
        "/accountz?acc=nope",
        "/accstatz?unused=x",
        "/leafz?subs=x",
        "/gatewayz?accs=x",
        "/ipqueuesz?all=x",
    ] {
        let (a, b) = (get(ours.http, path), get(refr.http, path));
        assert_eq!(a.status, b.status, "{path}: {}", a.body);
        assert_eq!(a.header("content-type"), b.header("content-type"), "{path}");
        if b.status != 200 {
            assert_eq!(a.body, b.body, "{path}");
            continue;
        }
        if path == "/stacksz" {
            assert!(!a.body.is_empty());
            continue;
        }
        let unwrap = |s: &str| {
            let s = s
                .strip_prefix("cb(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or(s);
            serde_json::from_str::<Value>(s).unwrap_or_else(|e| panic!("{path}: {e}: {s}"))
        };
        let (ja, jb) = (unwrap(&a.body), unwrap(&b.body));
        assert_same_keys(path, &ja, &jb);
        // Beyond the ids and times, the values are those of the unconfigured reference,
        // except the account details (update times, sublist counters, the order of the
        // imports) and the order of the account lists.
        if !path.starts_with("/accountz") {
            let strip = |mut v: Value| {
                if let Some(o) = v.as_object_mut() {
                    o.remove("server_id");
                    o.remove("now");
                    // /accstatz lists the accounts in Go map order on the reference.
                    if let Some(Value::Array(list)) = o.get_mut("account_statz") {
                        list.sort_by_key(|a| a["acc"].as_str().unwrap_or("").to_owned());
                    }
                }
                v
            };
            assert_eq!(strip(ja), strip(jb), "{path}");
        }
    }
    // Counted in /varz like the reference's own endpoints.
    let (a, b) = (ours.json("/varz"), refr.json("/varz"));
    for p in ["/jsz", "/accountz", "/accstatz", "/leafz", "/gatewayz"] {
        assert_eq!(
            a["http_req_stats"][p], b["http_req_stats"][p],
            "http_req_stats {p}"
        );
    }
    // Unclean paths are redirected to their clean form, as Go's ServeMux does.
    for path in ["//", "//varz?x=1", "/./connz", "/a/../subsz", "/varz//"] {
        let (a, b) = (get(ours.http, path), get(refr.http, path));
        assert_eq!(b.status, 301, "{path}");
        assert_eq!(
            (
                a.status,
                a.header("location"),
                a.header("content-type"),
                &a.body
            ),
            (
                b.status,
                b.header("location"),
                b.header("content-type"),
                &b.body
            ),
            "{path}"
        );
    }
}

/// A message delivered to a client is activity: its `last_activity` moves (and `idle`
/// restarts) though it sent nothing, as on the reference (nats-top's LAST_ACTIVITY).
#[test]
fn delivery_moves_last_activity() {
    for exe in both() {
        let m = Mon::start(&exe, &[]);
        let mut sub = client(m.srv.port, r#"{"name":"quiet","verbose":false}"#);
        sub.send(b"SUB news 1\r\n");
        sub.sync();
        let before = nanos(&conn(&m.json("/connz"), "quiet")["last_activity"]);
        let mut p = client(m.srv.port, r#"{"name":"talker","verbose":false}"#);
        p.send(b"PUB news 2\r\nhi\r\n");
        p.sync();
        line_with(&mut sub, "MSG news 1 2");
        let v = m.wait_json("/connz", |v| {
            nanos(&conn(v, "quiet")["last_activity"]) > before
        });
        assert!(
            nanos(&conn(&v, "quiet")["last_activity"]) > before,
            "{}",
            m.name
        );
    }
}
