//! JetStream on one server: the same `$JS.API` requests and publishes against both
//! servers with the answers compared (times and ids aside, errors exactly), the enabling
//! options and monitoring blocks, async-nats's `jetstream` API, and a `kill -9` that must
//! not lose an acknowledged message.

use crate::config::TempDir;
use crate::monitor::{keys, try_get};
use crate::support::{free_port, ours, reference, rt, wait_until, Raw, ServerProc};
use async_nats::HeaderMap;
use serde_json::Value;
use std::time::Duration;

/// A server with JetStream on, its store in a temporary directory (kept by the caller
/// across restarts), and monitoring on a free port.
struct Js {
    srv: ServerProc,
    http: u16,
}

fn start_js(exe: &std::path::Path, dir: &TempDir) -> Js {
    let http = free_port();
    let conf = dir.write(
        "js.conf",
        &format!(
            "http: \"127.0.0.1:{http}\"\njetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 1G\n  max_file_store: 2G\n}}\n",
            dir.0.join("store").display()
        ),
    );
    let srv = ServerProc::start(exe, &["-c", conf.to_str().unwrap()]);
    Js { srv, http }
}

/// Drops what differs by run: times, and the store directory's path.
fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "created",
                "first_ts",
                "last_ts",
                "time",
                "now",
                "server_id",
                "store_dir",
            ] {
                if let Some(x) = m.get_mut(k) {
                    if x.is_string() && x.as_str() != Some("0001-01-01T00:00:00Z") {
                        *x = Value::String("<t>".into());
                    }
                }
            }
            m.values_mut().for_each(normalise);
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        _ => {}
    }
}

/// One request's answer: JSON (normalised) when it is JSON, the raw text otherwise;
/// for a message with headers, its status/header lines without the time stamp.
async fn ask(
    nc: &async_nats::Client,
    subject: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, *v);
    }
    let fut = nc.request_with_headers(subject.to_string(), h, body.to_string().into());
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Err(_) => "<timeout>".into(),
        Ok(Err(e)) => format!("<error {:?}>", e.kind()),
        Ok(Ok(m)) => {
            let text = String::from_utf8_lossy(&m.payload).into_owned();
            let mut out = match serde_json::from_str::<Value>(&text) {
                // PubAcks are compared byte for byte.
                Ok(_) if !subject.starts_with("$JS.") => text,
                Ok(mut v) => {
                    normalise(&mut v);
                    // The reference's account `storage` keeps the bytes of messages that
                    // filtered purges and rollups removed (README).
                    if subject == "$JS.API.INFO" {
                        v["storage"] = Value::Null;
                    }
                    v.to_string()
                }
                Err(_) => text,
            };
            if let Some(h) = &m.headers {
                let mut lines: Vec<String> = h
                    .iter()
                    .filter(|(k, _)| k.to_string() != "Nats-Time-Stamp")
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect();
                lines.sort();
                out = format!(
                    "status={:?} {:?} {} | {out}",
                    m.status.map(|s| s.as_u16()),
                    m.description,
                    lines.join(" ")
                );
            }
            out
        }
    }
}

/// The requests and publishes every server must answer the same way, in order.
/// A request: subject, body, headers.
type Step = (&'static str, String, Vec<(&'static str, &'static str)>);

fn script() -> Vec<Step> {
    let mut s: Vec<Step> = Vec::new();
    let mut add = |subj: &'static str, body: &str, h: &[(&'static str, &'static str)]| {
        s.push((subj, body.to_string(), h.to_vec()));
    };
    add("$JS.API.INFO", "", &[]);
    add("$JS.API.STREAM.NAMES", "", &[]);
    add("$JS.API.STREAM.LIST", "", &[]);
    add(
        "$JS.API.STREAM.CREATE.ORDERS",
        r#"{"name":"ORDERS","subjects":["orders.>"],"storage":"file","allow_rollup_hdrs":true,"allow_direct":true}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.ORDERS",
        r#"{"name":"ORDERS","subjects":["orders.>"],"storage":"file","allow_rollup_hdrs":true,"allow_direct":true}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.ORDERS",
        r#"{"name":"ORDERS","subjects":["orders.>"],"max_msgs":5}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","subjects":["orders.*"]}"#,
        &[],
    );
    add("$JS.API.STREAM.CREATE.X", r#"{"name":"Y"}"#, &[]);
    add("$JS.API.STREAM.CREATE.X", "{", &[]);
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","max_age":1000}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","subjects":["a","a"]}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","subjects":["a.*","a.b"]}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","num_replicas":3}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","sealed":true}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","deny_purge":true,"allow_rollup_hdrs":true}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.X",
        r#"{"name":"X","retention":"bogus"}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.MEM",
        r#"{"name":"MEM","subjects":["mem.*"],"storage":"memory","max_msgs":3,"max_msgs_per_subject":2,"max_msg_size":16,"deny_delete":true,"deny_purge":true}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.CREATE.NEW",
        r#"{"name":"NEW","subjects":["new"],"storage":"memory","max_msgs":2,"discard":"new"}"#,
        &[],
    );
    // Publishing.
    add("orders.1", "one", &[]);
    add("orders.2", "two", &[("Nats-Msg-Id", "id-2")]);
    add("orders.2", "two again", &[("Nats-Msg-Id", "id-2")]);
    add("orders.3", "three", &[("Nats-Expected-Stream", "OTHER")]);
    add("orders.3", "three", &[("Nats-Expected-Last-Sequence", "7")]);
    add("orders.3", "three", &[("Nats-Expected-Last-Sequence", "2")]);
    add(
        "orders.3",
        "four",
        &[("Nats-Expected-Last-Subject-Sequence", "1")],
    );
    add(
        "orders.3",
        "four",
        &[("Nats-Expected-Last-Subject-Sequence", "3")],
    );
    add("orders.4", "five", &[("Nats-Expected-Last-Msg-Id", "nope")]);
    add("orders.4", "five", &[("Nats-Expected-Last-Msg-Id", "")]);
    add("orders.5", "a", &[]);
    add("orders.5", "b", &[]);
    add("orders.5", "c", &[("Nats-Rollup", "sub")]);
    add("$JS.API.STREAM.INFO.ORDERS", "", &[]);
    add("mem.a", "1", &[]);
    add("mem.a", "2", &[]);
    add("mem.a", "3", &[]);
    add("mem.b", "4", &[]);
    add("mem.b", "this is longer than sixteen", &[]);
    add("mem.b", "5", &[("Nats-Rollup", "all")]);
    add("new", "1", &[]);
    add("new", "2", &[]);
    add("new", "3", &[]);
    add("$JS.API.STREAM.INFO.MEM", "", &[]);
    add("$JS.API.STREAM.INFO.NEW", "", &[]);
    add("$JS.API.STREAM.INFO.NOPE", "", &[]);
    add("$JS.API.STREAM.NAMES", "", &[]);
    add("$JS.API.STREAM.NAMES", r#"{"subject":"mem.x"}"#, &[]);
    add("$JS.API.STREAM.NAMES", r#"{"offset":5}"#, &[]);
    add("$JS.API.STREAM.NAMES", "{bad", &[]);
    add("$JS.API.STREAM.LIST", "", &[]);
    // Getting.
    add("$JS.API.STREAM.MSG.GET.ORDERS", r#"{"seq":1}"#, &[]);
    add("$JS.API.STREAM.MSG.GET.ORDERS", r#"{"seq":2}"#, &[]);
    add(
        "$JS.API.STREAM.MSG.GET.ORDERS",
        r#"{"last_by_subj":"orders.3"}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.MSG.GET.ORDERS",
        r#"{"next_by_subj":"orders.5","seq":1}"#,
        &[],
    );
    add("$JS.API.STREAM.MSG.GET.ORDERS", r#"{"seq":99}"#, &[]);
    add("$JS.API.STREAM.MSG.GET.ORDERS", "", &[]);
    add(
        "$JS.API.STREAM.MSG.GET.ORDERS",
        r#"{"seq":1,"last_by_subj":"x"}"#,
        &[],
    );
    add("$JS.API.STREAM.MSG.GET.NOPE", r#"{"seq":1}"#, &[]);
    add("$JS.API.DIRECT.GET.ORDERS", r#"{"seq":2}"#, &[]);
    add("$JS.API.DIRECT.GET.ORDERS", r#"{"seq":99}"#, &[]);
    add("$JS.API.DIRECT.GET.ORDERS", "", &[]);
    add("$JS.API.DIRECT.GET.ORDERS", "{x", &[]);
    add("$JS.API.DIRECT.GET.ORDERS.orders.3", "", &[]);
    // Deleting and purging.
    add("$JS.API.STREAM.MSG.DELETE.ORDERS", r#"{"seq":1}"#, &[]);
    add("$JS.API.STREAM.MSG.DELETE.ORDERS", r#"{"seq":1}"#, &[]);
    add("$JS.API.STREAM.MSG.DELETE.ORDERS", r#"{"seq":99}"#, &[]);
    add("$JS.API.STREAM.MSG.DELETE.ORDERS", "", &[]);
    add("$JS.API.STREAM.MSG.DELETE.MEM", r#"{"seq":1}"#, &[]);
    add("$JS.API.STREAM.PURGE.MEM", "", &[]);
    add("$JS.API.STREAM.PURGE.ORDERS", r#"{"seq":1,"keep":1}"#, &[]);
    add(
        "$JS.API.STREAM.PURGE.ORDERS",
        r#"{"filter":"orders.3"}"#,
        &[],
    );
    add("$JS.API.STREAM.PURGE.ORDERS", r#"{"keep":1}"#, &[]);
    add("$JS.API.STREAM.INFO.ORDERS", "", &[]);
    add("$JS.API.STREAM.PURGE.ORDERS", "", &[]);
    add("$JS.API.STREAM.INFO.ORDERS", "", &[]);
    add("orders.9", "after purge", &[]);
    // Updating and deleting streams.
    add(
        "$JS.API.STREAM.UPDATE.ORDERS",
        r#"{"name":"ORDERS","subjects":["orders.>","more.*"],"storage":"file","max_msgs":10,"allow_rollup_hdrs":true}"#,
        &[],
    );
    add(
        "$JS.API.STREAM.UPDATE.ORDERS",
        r#"{"name":"ORDERS","storage":"memory"}"#,
        &[],
    );
    add("$JS.API.STREAM.UPDATE.NOPE", r#"{"name":"NOPE"}"#, &[]);
    add(
        "$JS.API.STREAM.UPDATE.NEW",
        r#"{"name":"NEW","subjects":["orders.x"],"storage":"memory","discard":"new","max_msgs":2}"#,
        &[],
    );
    add("more.x", "more", &[]);
    add("$JS.API.STREAM.DELETE.NEW", "", &[]);
    add("$JS.API.STREAM.DELETE.NEW", "", &[]);
    add("$JS.API.STREAM.INFO.ORDERS", "", &[]);
    add("$JS.API.INFO", "", &[]);
    s
}

async fn run_script(port: u16) -> Vec<String> {
    let nc = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let mut out = Vec::new();
    for (subj, body, h) in script() {
        let a = ask(&nc, subj, &body, &h).await;
        out.push(format!("{subj} {body} {h:?}\n  -> {a}"));
        if std::env::var_os("JS_TRACE_API").is_some() {
            let i = ask(&nc, "$JS.API.INFO", "", &[]).await;
            let v: Value = serde_json::from_str(&i).unwrap_or_default();
            out.push(format!("api {} storage {}", v["api"], v["storage"]));
        }
    }
    out
}

#[test]
fn api_and_publish_answers_match_the_reference() {
    let (dr, do_) = (TempDir::new("js-ref"), TempDir::new("js-ours"));
    let r = start_js(&reference(), &dr);
    let o = start_js(&ours(), &do_);
    let rt = rt();
    let ref_answers = rt.block_on(run_script(r.srv.port));
    let our_answers = rt.block_on(run_script(o.srv.port));
    if let Some(d) = std::env::var_os("JS_TRACE_API") {
        let d = std::path::PathBuf::from(d);
        let _ = std::fs::write(d.join("ref.txt"), ref_answers.join("\n"));
        let _ = std::fs::write(d.join("ours.txt"), our_answers.join("\n"));
    }
    let mut diffs = Vec::new();
    for (a, b) in ref_answers.iter().zip(&our_answers) {
        if a != b {
            diffs.push(format!("reference: {a}\nours:      {b}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n\n")
    );
}

#[test]
fn enabling_banner_varz_jsz_and_healthz_as_the_reference() {
    let (dr, do_) = (TempDir::new("js-ref"), TempDir::new("js-ours"));
    let r = start_js(&reference(), &dr);
    let o = start_js(&ours(), &do_);
    let banner = |log: &str| -> Vec<String> {
        log.lines()
            .filter_map(|l| l.split_once(" [").map(|(_, rest)| format!("[{rest}")))
            .skip_while(|l| !l.contains("Starting JetStream"))
            .take_while(|l| !l.contains("Listening for client"))
            .map(|l| {
                if l.contains("Store Directory") {
                    "[INF]   Store Directory: <dir>".to_string()
                } else {
                    l
                }
            })
            .collect()
    };
    assert!(wait_until(Duration::from_secs(5), || o
        .srv
        .proc
        .log_text()
        .contains("Server is ready")));
    let (rb, ob) = (
        banner(&r.srv.proc.log_text()),
        banner(&o.srv.proc.log_text()),
    );
    assert!(rb.len() > 10, "{rb:?}");
    assert_eq!(rb, ob);
    assert!(o.srv.proc.log_text().contains(&format!(
        "  Store Directory: \"{}\"",
        do_.0.join("store").join("jetstream").display()
    )));
    for path in [
        "/varz",
        "/jsz",
        "/jsz?accounts=true",
        "/healthz?js-enabled-only=true",
    ] {
        let get = |port| {
            let rep = try_get(port, path).expect("GET");
            (
                rep.status,
                serde_json::from_str::<Value>(&rep.body).expect("json"),
            )
        };
        let ((rs, mut rv), (os, mut ov)) = (get(r.http), get(o.http));
        assert_eq!(rs, os, "{path}");
        if path == "/varz" {
            rv = rv["jetstream"].take();
            ov = ov["jetstream"].take();
        }
        assert_eq!(keys(&rv), keys(&ov), "{path}: {rv} vs {ov}");
        normalise(&mut rv);
        normalise(&mut ov);
        if path != "/varz" {
            for v in [&mut rv, &mut ov] {
                if let Some(m) = v.as_object_mut() {
                    m.remove("now");
                }
            }
        }
        assert_eq!(rv, ov, "{path}");
    }
}

#[test]
fn async_nats_jetstream_streams_publish_and_get() {
    for exe in [reference(), ours()] {
        streams_with_async_nats(&exe);
    }
}

fn streams_with_async_nats(exe: &std::path::Path) {
    let dir = TempDir::new("js-client");
    let o = start_js(exe, &dir);
    rt().block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        let mut stream = js
            .create_stream(async_nats::jetstream::stream::Config {
                name: "EVENTS".into(),
                subjects: vec!["events.>".into()],
                allow_direct: true,
                ..Default::default()
            })
            .await
            .expect("create stream");
        for i in 0..10 {
            let ack = js
                .publish(format!("events.{}", i % 3), format!("e{i}").into())
                .await
                .expect("publish")
                .await
                .expect("ack");
            assert_eq!(ack.sequence, i + 1);
            assert_eq!(ack.stream, "EVENTS");
        }
        let info = stream.info().await.expect("info");
        assert_eq!(info.state.messages, 10);
        assert_eq!(info.state.last_sequence, 10);
        let m = stream.get_raw_message(4).await.expect("get");
        assert_eq!(m.subject.as_str(), "events.0");
        assert_eq!(&m.payload[..], b"e3");
        let m = stream
            .direct_get_last_for_subject("events.1")
            .await
            .expect("direct get");
        assert_eq!((m.sequence, &m.payload[..]), (8, &b"e7"[..]));
        assert!(stream.delete_message(8).await.expect("delete"));
        let got = js.get_or_create_stream("EVENTS").await.expect("get stream");
        assert_eq!(got.cached_info().config.name, "EVENTS");
        let account = js.query_account().await.expect("account");
        assert_eq!(account.streams, 1);
        assert!(js.delete_stream("EVENTS").await.expect("delete").success);
        assert!(js.get_stream("EVENTS").await.is_err());
    });
}

#[test]
fn kill_9_keeps_every_acknowledged_message() {
    let dir = TempDir::new("js-crash");
    let o = start_js(&ours(), &dir);
    const N: u64 = 3000;
    let rt = rt();
    let acked = rt.block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "CRASH".into(),
            subjects: vec!["crash.*".into()],
            ..Default::default()
        })
        .await
        .expect("create");
        // Many in flight, then every ack awaited.
        let mut pending = Vec::new();
        for i in 0..N {
            pending.push(
                js.publish(format!("crash.{}", i % 7), format!("m{i}").into())
                    .await
                    .expect("publish"),
            );
        }
        let mut seqs = Vec::new();
        for p in pending {
            seqs.push(p.await.expect("ack").sequence);
        }
        seqs
    });
    assert_eq!(acked.len() as u64, N);
    // kill -9: no chance to flush or sync anything.
    let port = o.srv.port;
    let http = o.http;
    drop(o);
    let _ = http;
    let conf = dir.0.join("js.conf");
    let o = ServerProc::start_on(&ours(), port, &["-c", conf.to_str().unwrap()]);
    rt.block_on(async {
        let nc = async_nats::connect(o.url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        let mut stream = js.get_stream("CRASH").await.expect("stream after restart");
        let info = stream.info().await.expect("info");
        assert_eq!(info.state.messages, N);
        assert_eq!(info.state.last_sequence, N);
        for seq in [1, N / 2, N] {
            let m = stream.get_raw_message(seq).await.expect("get");
            assert_eq!(&m.payload[..], format!("m{}", seq - 1).as_bytes());
        }
        // The stream goes on where it was.
        let ack = js
            .publish("crash.0", "next".into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(ack.sequence, N + 1);
    });
    assert!(o.proc.log_text().contains(&format!(
        "Restored {} messages for stream '$G > CRASH'",
        "3,000"
    )));
}

/// A server with accounts: `A` has JetStream, `B` does not (its requests get the
/// reference's "not enabled for account" answers in each endpoint's shape).
fn start_accounts(exe: &std::path::Path, dir: &TempDir) -> ServerProc {
    let conf = dir.write(
        "acc.conf",
        &format!(
            "jetstream {{ store_dir: \"{}\" }}\naccounts {{\n  A {{ jetstream: enabled, users: [{{user: a, password: a}}] }}\n  B {{ users: [{{user: b, password: b}}] }}\n  C {{ jetstream {{}}, users: [{{user: c, password: c}}] }}\n}}\n",
            dir.0.join("store").display()
        ),
    );
    ServerProc::start(exe, &["-c", conf.to_str().unwrap()])
}

async fn account_answers(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for user in ["a", "b", "c"] {
        let nc = async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
            .connect(format!("nats://127.0.0.1:{port}"))
            .await
            .expect("connect");
        for (subj, body) in [
            ("$JS.API.INFO", ""),
            (
                "$JS.API.STREAM.CREATE.S",
                r#"{"name":"S","subjects":["s.>"]}"#,
            ),
            ("s.1", "x"),
            ("$JS.API.STREAM.NAMES", ""),
            ("$JS.API.STREAM.LIST", ""),
            ("$JS.API.STREAM.INFO.S", ""),
            ("$JS.API.STREAM.PURGE.S", ""),
            ("$JS.API.STREAM.MSG.GET.S", r#"{"seq":1}"#),
            ("$JS.API.STREAM.MSG.DELETE.S", r#"{"seq":1}"#),
            (
                "$JS.API.STREAM.UPDATE.S",
                r#"{"name":"S","subjects":["s.>"]}"#,
            ),
            ("$JS.API.STREAM.DELETE.S", ""),
        ] {
            let a = ask(&nc, subj, body, &[]).await;
            out.push(format!("{user}: {subj} {body}\n  -> {a}"));
        }
    }
    out
}

#[test]
fn accounts_with_and_without_jetstream_answer_as_the_reference() {
    let (dr, do_) = (TempDir::new("jsacc-ref"), TempDir::new("jsacc-ours"));
    let r = start_accounts(&reference(), &dr);
    let o = start_accounts(&ours(), &do_);
    let rt = rt();
    let ra = rt.block_on(account_answers(r.port));
    let oa = rt.block_on(account_answers(o.port));
    assert_same_answers(&ra, &oa);
}

fn start_account_limits(exe: &std::path::Path, dir: &TempDir) -> ServerProc {
    let conf = dir.write(
        "l.conf",
        &format!(
            "jetstream {{ store_dir: \"{}\" }}\naccounts {{\n  A {{ jetstream {{ max_streams: 2, max_mem: 1000, max_file: 100K, max_consumers: 1, max_ack_pending: 50 }}, users: [{{user: a, password: a}}] }}\n  B {{ jetstream {{ max_bytes_required: true, store_max_stream_bytes: 2000 }}, users: [{{user: b, password: b}}] }}\n}}\n",
            dir.0.join("store").display()
        ),
    );
    ServerProc::start(exe, &["-c", conf.to_str().unwrap()])
}

async fn account_limit_answers(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    let steps: &[(&str, &str, &str)] = &[
        ("a", "$JS.API.INFO", ""),
        (
            "a",
            "$JS.API.STREAM.CREATE.S1",
            r#"{"name":"S1","subjects":["a1"],"storage":"memory","max_bytes":600}"#,
        ),
        (
            "a",
            "$JS.API.STREAM.CREATE.S2",
            r#"{"name":"S2","subjects":["a2"],"storage":"memory","max_bytes":600}"#,
        ),
        (
            "a",
            "$JS.API.STREAM.CREATE.S3",
            r#"{"name":"S3","subjects":["a3"],"max_consumers":5}"#,
        ),
        (
            "a",
            "$JS.API.STREAM.CREATE.S3",
            r#"{"name":"S3","subjects":["a3"]}"#,
        ),
        (
            "a",
            "$JS.API.STREAM.CREATE.S4",
            r#"{"name":"S4","subjects":["a4"]}"#,
        ),
        (
            "a",
            "$JS.API.CONSUMER.CREATE.S3",
            r#"{"stream_name":"S3","config":{"ack_policy":"explicit","max_ack_pending":100}}"#,
        ),
        (
            "a",
            "$JS.API.CONSUMER.DURABLE.CREATE.S3.d",
            r#"{"stream_name":"S3","config":{"durable_name":"d","ack_policy":"explicit"}}"#,
        ),
        (
            "a",
            "$JS.API.CONSUMER.DURABLE.CREATE.S3.e",
            r#"{"stream_name":"S3","config":{"durable_name":"e","ack_policy":"explicit"}}"#,
        ),
        ("a", "$JS.API.INFO", ""),
        (
            "b",
            "$JS.API.STREAM.CREATE.B1",
            r#"{"name":"B1","subjects":["b1"]}"#,
        ),
        (
            "b",
            "$JS.API.STREAM.CREATE.B1",
            r#"{"name":"B1","subjects":["b1"],"max_bytes":3000}"#,
        ),
    ];
    for (user, subj, body) in steps {
        let nc =
            async_nats::ConnectOptions::with_user_and_password(user.to_string(), user.to_string())
                .connect(format!("nats://127.0.0.1:{port}"))
                .await
                .expect("connect");
        let a = ask(&nc, subj, body, &[]).await;
        out.push(format!("{user}: {subj} {body}\n  -> {a}"));
    }
    out
}

/// Account limits from `accounts {}`: shown in account info and enforced at stream and
/// consumer creation with the reference's errors.
#[test]
fn per_account_limits_as_the_reference() {
    let (dr, do_) = (TempDir::new("jslim-ref"), TempDir::new("jslim-ours"));
    let r = start_account_limits(&reference(), &dr);
    let o = start_account_limits(&ours(), &do_);
    let rt = rt();
    let ra = rt.block_on(account_limit_answers(r.port));
    let oa = rt.block_on(account_limit_answers(o.port));
    assert_same_answers(&ra, &oa);
}

#[test]
fn memory_streams_are_gone_after_a_restart_file_streams_stay() {
    let dir = TempDir::new("js-restart");
    let o = start_js(&ours(), &dir);
    let rt = rt();
    rt.block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        for (name, storage) in [("F", "file"), ("M", "memory")] {
            let body = format!(r#"{{"name":"{name}","storage":"{storage}"}}"#);
            let a = ask(&nc, &format!("$JS.API.STREAM.CREATE.{name}"), &body, &[]).await;
            assert!(a.contains("did_create"), "{a}");
            assert!(ask(&nc, name, "x", &[]).await.contains("\"seq\":1"));
        }
    });
    let port = o.srv.port;
    drop(o);
    let conf = dir.0.join("js.conf");
    let o = ServerProc::start_on(&ours(), port, &["-c", conf.to_str().unwrap()]);
    rt.block_on(async {
        let nc = async_nats::connect(o.url()).await.unwrap();
        let names = ask(&nc, "$JS.API.STREAM.NAMES", "", &[]).await;
        assert!(names.contains(r#""streams":["F"]"#), "{names}");
    });
}

/// Limits, retention and sealing, step by step against both servers.
async fn limits_script(port: u16) -> Vec<String> {
    let nc = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let mut out = Vec::new();
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let steps: &[(&str, &str, Headers)] = &[
        (
            "$JS.API.STREAM.CREATE.B",
            r#"{"name":"B","subjects":["b.*"],"max_bytes":100}"#,
            &[],
        ),
        ("b.1", "0123456789", &[]),
        ("b.2", "0123456789", &[]),
        ("b.3", "0123456789", &[]),
        ("$JS.API.STREAM.INFO.B", "", &[]),
        (
            "$JS.API.STREAM.CREATE.BN",
            r#"{"name":"BN","subjects":["bn"],"storage":"memory","max_bytes":60,"discard":"new"}"#,
            &[],
        ),
        ("bn", "0123456789", &[]),
        ("bn", "0123456789", &[]),
        ("bn", "0123456789", &[]),
        (
            "$JS.API.STREAM.CREATE.P",
            r#"{"name":"P","subjects":["p.*"],"max_msgs_per_subject":1,"discard":"new","discard_new_per_subject":true}"#,
            &[],
        ),
        ("p.a", "1", &[]),
        ("p.a", "2", &[]),
        ("p.b", "3", &[]),
        (
            "$JS.API.STREAM.CREATE.P2",
            r#"{"name":"P2","subjects":["q.*"],"discard_new_per_subject":true}"#,
            &[],
        ),
        (
            "$JS.API.STREAM.CREATE.I",
            r#"{"name":"I","subjects":["i"],"retention":"interest"}"#,
            &[],
        ),
        ("i", "gone", &[]),
        ("i", "gone", &[]),
        ("$JS.API.STREAM.INFO.I", "", &[]),
        (
            "$JS.API.STREAM.CREATE.W",
            r#"{"name":"W","subjects":["w"],"retention":"workqueue","storage":"memory"}"#,
            &[],
        ),
        ("w", "kept", &[]),
        ("$JS.API.STREAM.INFO.W", "", &[]),
        (
            "$JS.API.STREAM.UPDATE.W",
            r#"{"name":"W","subjects":["w"],"retention":"workqueue","storage":"memory","sealed":true}"#,
            &[],
        ),
        ("w", "refused", &[]),
        ("$JS.API.STREAM.PURGE.W", "", &[]),
        ("$JS.API.STREAM.MSG.DELETE.W", r#"{"seq":1}"#, &[]),
        (
            "$JS.API.STREAM.UPDATE.W",
            r#"{"name":"W","subjects":["w"],"retention":"workqueue","storage":"memory"}"#,
            &[],
        ),
        (
            "$JS.API.STREAM.CREATE.NA",
            r#"{"name":"NA","subjects":["na"],"no_ack":true}"#,
            &[],
        ),
        ("na", "x", &[]),
        ("$JS.API.STREAM.INFO.NA", "", &[]),
        (
            "$JS.API.STREAM.CREATE.D",
            r#"{"name":"D","subjects":["d"],"duplicate_window":200000000}"#,
            &[],
        ),
        ("d", "1", &[("Nats-Msg-Id", "x")]),
        ("d", "1", &[("Nats-Msg-Id", "x")]),
        (
            "$JS.API.STREAM.CREATE.AGE",
            r#"{"name":"AGE","subjects":["age"],"max_age":500000000,"storage":"memory"}"#,
            &[],
        ),
        ("age", "old", &[]),
    ];
    for (subj, body, h) in steps {
        let a = ask(&nc, subj, body, h).await;
        out.push(format!("{subj} {body} {h:?}\n  -> {a}"));
    }
    // The duplicate window and max_age pass: the id is new again, the message expired.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = ask(&nc, "$JS.API.STREAM.INFO.AGE", "", &[]).await;
        if info.contains("\"messages\":0") || tokio::time::Instant::now() > deadline {
            out.push(format!("AGE after expiry -> {info}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = ask(&nc, "d", "1", &[("Nats-Msg-Id", "x")]).await;
    out.push(format!("d after the window -> {a}"));
    out
}

#[test]
fn limits_retention_sealing_and_expiry_as_the_reference() {
    let (dr, do_) = (TempDir::new("jslim-ref"), TempDir::new("jslim-ours"));
    let r = start_js(&reference(), &dr);
    let o = start_js(&ours(), &do_);
    let rt = rt();
    let ra = rt.block_on(limits_script(r.srv.port));
    let oa = rt.block_on(limits_script(o.srv.port));
    assert_same_answers(&ra, &oa);
}

#[test]
fn reload_keeps_the_api_and_refuses_jetstream_changes() {
    let dir = TempDir::new("js-reload");
    let o = start_js(&ours(), &dir);
    let rt = rt();
    rt.block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        let a = ask(&nc, "$JS.API.STREAM.CREATE.R", r#"{"name":"R"}"#, &[]).await;
        assert!(a.contains("did_create"), "{a}");
    });
    o.srv.proc.signal(libc::SIGHUP);
    assert!(o
        .srv
        .proc
        .wait_log("Reloaded server configuration", Duration::from_secs(10)));
    rt.block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        let a = ask(&nc, "R", "x", &[]).await;
        assert_eq!(a, r#"{"stream":"R", "seq":1}"#);
        let a = ask(&nc, "$JS.API.STREAM.NAMES", "", &[]).await;
        assert!(a.contains(r#""streams":["R"]"#), "{a}");
    });
    // Turning JetStream off is refused; the running configuration stays.
    let conf = dir.0.join("js.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        text.replace("jetstream {", "jetstream {\n  enabled: false"),
    )
    .unwrap();
    o.srv.proc.signal(libc::SIGHUP);
    assert!(o.srv.proc.wait_log(
        "config reload not supported for JetStream: old=true, new=false",
        Duration::from_secs(10)
    ));
}

#[test]
fn async_nats_key_value_put_get_delete_on_streams_alone() {
    for exe in [reference(), ours()] {
        key_value_on(&exe);
    }
}

fn key_value_on(exe: &std::path::Path) {
    let dir = TempDir::new("js-kv");
    let o = start_js(exe, &dir);
    rt().block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        let kv = js
            .create_key_value(async_nats::jetstream::kv::Config {
                bucket: "cfg".into(),
                history: 3,
                ..Default::default()
            })
            .await
            .expect("create bucket");
        let r1 = kv.put("color", "red".into()).await.expect("put");
        let r2 = kv.put("color", "blue".into()).await.expect("put");
        assert_eq!((r1, r2), (1, 2));
        assert_eq!(
            kv.get("color").await.unwrap().as_deref(),
            Some(&b"blue"[..])
        );
        let e = kv.entry("color").await.unwrap().expect("entry");
        assert_eq!(e.revision, 2);
        assert_eq!(
            kv.update("color", "green".into(), 2).await.expect("update"),
            3
        );
        assert!(kv.update("color", "nope".into(), 2).await.is_err());
        kv.delete("color").await.expect("delete");
        assert_eq!(kv.get("color").await.unwrap(), None);
        kv.purge("color").await.expect("purge");
        let mut stream = js.get_stream("KV_cfg").await.unwrap();
        // The purge marker alone is left (a rollup of the subject).
        assert_eq!(stream.info().await.unwrap().state.messages, 1);
        assert_eq!(kv.get("nothing").await.unwrap(), None);
    });
}

async fn server_limits_script(port: u16) -> Vec<String> {
    let nc = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let mut out = Vec::new();
    let big = "x".repeat(300);
    let mut steps: Vec<(&str, String)> = vec![
        (
            "$JS.API.STREAM.CREATE.TOO",
            r#"{"name":"TOO","storage":"memory","max_bytes":2000}"#.into(),
        ),
        (
            "$JS.API.STREAM.CREATE.R1",
            r#"{"name":"R1","subjects":["r1"],"storage":"memory","max_bytes":600}"#.into(),
        ),
        (
            "$JS.API.STREAM.CREATE.R2",
            r#"{"name":"R2","subjects":["r2"],"storage":"memory","max_bytes":600}"#.into(),
        ),
        ("$JS.API.STREAM.DELETE.R2", String::new()),
        (
            "$JS.API.STREAM.CREATE.M",
            r#"{"name":"M","subjects":["m"],"storage":"memory"}"#.into(),
        ),
    ];
    for _ in 0..5 {
        steps.push(("m", big.clone()));
    }
    steps.push(("$JS.API.STREAM.INFO.M", String::new()));
    for (subj, body) in steps {
        let a = ask(&nc, subj, &body, &[]).await;
        out.push(format!("{subj} {}\n  -> {a}", body.len()));
    }
    out
}

#[test]
fn server_wide_limits_as_the_reference() {
    let run = |exe: &std::path::Path, tag: &str| {
        let dir = TempDir::new(tag);
        let conf = dir.write(
            "l.conf",
            &format!(
                "jetstream {{ store_dir: \"{}\", max_memory_store: 1024, max_file_store: 1048576 }}\n",
                dir.0.join("store").display()
            ),
        );
        let s = ServerProc::start(exe, &["-c", conf.to_str().unwrap()]);
        let out = rt().block_on(server_limits_script(s.port));
        (out, s.proc.log_text())
    };
    let (ra, _) = run(&reference(), "jssl-ref");
    let (oa, olog) = run(&ours(), "jssl-ours");
    assert_same_answers(&ra, &oa);
    assert!(
        olog.contains("[ERR] JetStream resource limits exceeded for server"),
        "{olog}"
    );
    let all = oa.join("\n");
    assert!(
        all.contains("insufficient memory resources available"),
        "{all}"
    );
    assert!(all.contains("insufficient resources"), "{all}");
}

#[test]
fn kill_9_during_a_steady_publish_loses_nothing_acknowledged() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let dir = TempDir::new("js-crash-live");
    let o = start_js(&ours(), &dir);
    let pid = o.srv.proc.pid() as i32;
    let acked_count = Arc::new(AtomicU64::new(0));
    let killer = {
        let acked_count = acked_count.clone();
        std::thread::spawn(move || {
            assert!(wait_until(Duration::from_secs(60), || acked_count
                .load(Ordering::Relaxed)
                >= 2000));
            // SAFETY: kill(2) on the server we started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        })
    };
    let rt = rt();
    let acked: Vec<(u64, String)> = rt.block_on(async {
        let nc = async_nats::connect(o.srv.url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "LIVE".into(),
            subjects: vec!["live.>".into()],
            ..Default::default()
        })
        .await
        .expect("create");
        let mut acked = Vec::new();
        'outer: for batch in 0u64.. {
            let mut pending = Vec::new();
            for i in 0..50 {
                let payload = format!("b{batch}-{i}");
                match js
                    .publish(format!("live.{i}"), payload.clone().into())
                    .await
                {
                    Ok(p) => pending.push((p, payload)),
                    Err(_) => break 'outer,
                }
            }
            for (p, payload) in pending {
                match tokio::time::timeout(Duration::from_secs(2), p).await {
                    Ok(Ok(ack)) => {
                        acked.push((ack.sequence, payload));
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break 'outer,
                }
            }
        }
        acked
    });
    killer.join().unwrap();
    assert!(acked.len() >= 2000, "{}", acked.len());
    let port = o.srv.port;
    drop(o);
    let conf = dir.0.join("js.conf");
    let o = ServerProc::start_on(&ours(), port, &["-c", conf.to_str().unwrap()]);
    rt.block_on(async {
        let nc = async_nats::connect(o.url()).await.unwrap();
        let js = async_nats::jetstream::new(nc);
        let stream = js.get_stream("LIVE").await.expect("stream after restart");
        for (seq, payload) in &acked {
            let m = stream
                .get_raw_message(*seq)
                .await
                .expect("acknowledged message");
            assert_eq!(&m.payload[..], payload.as_bytes(), "seq {seq}");
        }
    });
}

/// `republish`: each stored message on the source goes out again on the destination with
/// the stream's headers (body or `Nats-Msg-Size` for headers_only), before its PubAck;
/// configurations that form a cycle or miss the subjects are refused; an update may not
/// change it. The raw lines (with the reference's empty reply slots) on both servers.
#[test]
fn republish_as_the_reference() {
    let mut seen = Vec::new();
    for exe in [reference(), ours()] {
        let dir = TempDir::new("js-republish");
        let o = start_js(&exe, &dir);
        let mut r = Raw::connect(o.srv.port);
        r.info();
        r.send(b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB rp.> 1\r\nSUB ack 2\r\n");
        let mut lines = Vec::new();
        let mut ask = |r: &mut Raw, subject: &str, hdr: Option<&str>, body: &str| {
            match hdr {
                None => {
                    r.send(format!("PUB {subject} ack {}\r\n{body}\r\n", body.len()).as_bytes())
                }
                Some(h) => r.send(
                    format!(
                        "HPUB {subject} ack {} {}\r\n{h}{body}\r\n",
                        h.len(),
                        h.len() + body.len()
                    )
                    .as_bytes(),
                ),
            }
            // Everything up to the answer on `ack` (a republished copy comes before it).
            let mut got = Vec::new();
            loop {
                let l = r.line();
                assert!(!l.is_empty(), "EOF; got {got:?}");
                let answer = l.starts_with("MSG ack ") || l.starts_with("HMSG ack ");
                got.push(l);
                if l_is_msg(&got) {
                    // The payload (headers included): its size is the line's last number.
                    let total: usize = got
                        .last()
                        .and_then(|l| l.split_whitespace().last())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    got.push(String::from_utf8_lossy(&r.bytes(total + 2)).into_owned());
                }
                if answer {
                    break;
                }
            }
            // An API answer's size follows its time stamps' digits (Go trims trailing
            // zeros of nanoseconds): not compared.
            let api = subject.starts_with("$JS.API.");
            let got: Vec<String> = got
                .into_iter()
                .map(|l| match l.strip_prefix("MSG ack ") {
                    Some(rest) if api => format!(
                        "MSG ack {} <size>",
                        rest.split_whitespace().next().unwrap_or_default()
                    ),
                    _ => l,
                })
                .map(|l| {
                    // Times and ids differ between runs.
                    let l = l.trim_end().to_string();
                    match serde_json::from_str::<Value>(&l) {
                        Ok(mut v) => {
                            normalise(&mut v);
                            v.to_string()
                        }
                        Err(_) => l,
                    }
                })
                .collect();
            lines.push(format!("{subject} {hdr:?} {body} -> {got:?}"));
        };
        for (subject, hdr, body) in [
            (
                "$JS.API.STREAM.CREATE.C",
                None,
                r#"{"name":"C","subjects":["c.>"],"republish":{"src":"c.>","dest":"c.x"}}"#,
            ),
            (
                "$JS.API.STREAM.CREATE.C",
                None,
                r#"{"name":"C","subjects":["c.>"],"republish":{"src":"d.>","dest":"x.>"}}"#,
            ),
            (
                "$JS.API.STREAM.CREATE.R",
                None,
                r#"{"name":"R","subjects":["r.>"],"republish":{"src":"r.>","dest":"rp.>"}}"#,
            ),
            ("r.a", None, "one"),
            ("r.a", Some("NATS/1.0\r\nK: v\r\n\r\n"), "two"),
            ("r.b", None, ""),
            (
                "$JS.API.STREAM.UPDATE.R",
                None,
                r#"{"name":"R","subjects":["r.>"],"republish":{"src":"r.>","dest":"rp.>","headers_only":true}}"#,
            ),
            (
                "$JS.API.STREAM.CREATE.H",
                None,
                r#"{"name":"H","subjects":["h.>"],"republish":{"dest":"rp.h.>","headers_only":true}}"#,
            ),
            ("h.1", None, "body"),
        ] {
            ask(&mut r, subject, hdr, body);
        }
        seen.push(lines);
    }
    assert_same_answers(&seen[0], &seen[1]);
}

/// Whether the last line read is a MSG/HMSG line (its payload line follows).
fn l_is_msg(lines: &[String]) -> bool {
    lines
        .last()
        .is_some_and(|l| l.starts_with("MSG ") || l.starts_with("HMSG "))
}

/// The reference's answers and ours, line by line.
fn assert_same_answers(reference: &[String], ours: &[String]) {
    crate::support::assert_same_transcript(reference, "ours", ours);
}
