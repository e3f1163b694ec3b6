//! JetStream mirrors and sources against the reference: each scenario runs on the
//! reference first and then on ours, and the transcripts (times, generated names and the
//! mirrors' `active` figures normalised) must be equal. The scenarios also assert the
//! reference's figures, so they check themselves on the reference.

use crate::config::TempDir;
use crate::support::{ours, reference, ServerProc};
use async_nats::HeaderMap;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn servers() -> Vec<(&'static str, PathBuf)> {
    vec![("reference", reference()), ("ours", ours())]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn start_js(exe: &Path, dir: &TempDir) -> ServerProc {
    let sd = dir.0.join("store");
    ServerProc::start(exe, &["-js", "-sd", sd.to_str().unwrap()])
}

/// Runs `scenario` on both servers and compares the transcripts with the reference's.
fn on_all_servers(tag: &str, scenario: impl Fn(&Path, &TempDir) -> Vec<String>) {
    let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
    for (who, exe) in servers() {
        let dir = TempDir::new(&format!("mirror-{tag}-{who}"));
        runs.push((who, scenario(&exe, &dir)));
    }
    let (_, base) = &runs[0];
    for (who, t) in &runs[1..] {
        crate::support::assert_same_transcript(base, who, t);
    }
}

/// Drops what differs by run: times, `active`, `lag` (when asked) and generated names.
fn normalise(v: &mut Value, lag: bool) {
    match v {
        Value::Object(m) => {
            for k in ["created", "first_ts", "last_ts", "time", "ts"] {
                if let Some(x) = m.get_mut(k) {
                    if x.is_string() && x.as_str() != Some("0001-01-01T00:00:00Z") {
                        *x = Value::String("<t>".into());
                    }
                }
            }
            if let Some(x) = m.get_mut("active") {
                let never = x.as_i64() == Some(-1);
                *x = Value::String(if never { "never" } else { "<active>" }.into());
            }
            if lag {
                if let Some(x) = m.get_mut("lag") {
                    *x = Value::String("<lag>".into());
                }
            }
            m.remove("cluster");
            if let Some(Value::Array(a)) = m.get_mut("sources") {
                a.sort_by_key(|x| x.get("name").map(|n| n.to_string()));
            }
            m.values_mut().for_each(|x| normalise(x, lag));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalise(x, lag)),
        _ => {}
    }
}

/// One API request's answer, normalised.
async fn api(nc: &async_nats::Client, subject: &str, body: &str) -> String {
    api_value(nc, subject, body, true).await.to_string()
}

async fn api_value(nc: &async_nats::Client, subject: &str, body: &str, lag: bool) -> Value {
    let fut = nc.request(subject.to_string(), body.to_string().into());
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Err(_) => Value::String("<timeout>".into()),
        Ok(Err(e)) => Value::String(format!("<error {:?}>", e.kind())),
        Ok(Ok(m)) => match serde_json::from_slice::<Value>(&m.payload) {
            Ok(mut v) => {
                normalise(&mut v, lag);
                v
            }
            Err(_) => Value::String(String::from_utf8_lossy(&m.payload).into_owned()),
        },
    }
}

async fn connect(port: u16) -> async_nats::Client {
    async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("connect")
}

async fn create(nc: &async_nats::Client, cfg: &str) -> String {
    let v: Value = serde_json::from_str(cfg).unwrap();
    let name = v["name"].as_str().unwrap();
    api(nc, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await
}

async fn publish(nc: &async_nats::Client, subject: &str, hdrs: Option<HeaderMap>, body: String) {
    let h = hdrs.unwrap_or_default();
    let fut = nc.request_with_headers(subject.to_string(), h, body.into());
    let m = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("puback in time")
        .expect("puback");
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert!(v.get("error").is_none(), "{v}");
}

/// The account's figures, without the API counts (the polls while waiting vary).
async fn account_info(nc: &async_nats::Client) -> String {
    let mut v = api_value(nc, "$JS.API.INFO", "", true).await;
    v["api"] = Value::Null;
    v.to_string()
}

/// Waits until the stream holds `n` messages; its info then.
async fn wait_msgs(nc: &async_nats::Client, stream: &str, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = api_value(nc, &format!("$JS.API.STREAM.INFO.{stream}"), "", false).await;
        if v["state"]["messages"].as_u64() == Some(n) || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stored message: subject, sequence, data and headers (decoded).
async fn get(nc: &async_nats::Client, stream: &str, seq: u64) -> String {
    let v = api_value(
        nc,
        &format!("$JS.API.STREAM.MSG.GET.{stream}"),
        &format!(r#"{{"seq":{seq}}}"#),
        false,
    )
    .await;
    let m = &v["message"];
    if m.is_null() {
        return v.to_string();
    }
    let dec = |k: &str| {
        m[k].as_str()
            .map(|s| String::from_utf8_lossy(&b64_decode(s)).into_owned())
            .unwrap_or_default()
    };
    format!(
        "{} seq={} data={:?} hdrs={:?}",
        m["subject"].as_str().unwrap_or_default(),
        m["seq"],
        dec("data"),
        dec("hdrs")
    )
}

fn b64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let Some(v) = A.iter().position(|&x| x == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn mirror_of_a_stream_with_100_messages() {
    on_all_servers("m100", |exe, dir| {
        let srv = start_js(exe, dir);
        rt().block_on(async {
            let nc = connect(srv.port).await;
            let mut t = Vec::new();
            t.push(create(&nc, r#"{"name":"ORIGIN","subjects":["o.>"],"allow_direct":true}"#).await);
            for i in 1..=100 {
                publish(&nc, &format!("o.{}", i % 3), None, format!("m{i}")).await;
            }
            t.push(create(&nc, r#"{"name":"M","mirror":{"name":"ORIGIN"}}"#).await);
            let info = wait_msgs(&nc, "M", 100).await;
            assert_eq!(info["state"]["last_seq"], 100, "{info}");
            t.push(api(&nc, "$JS.API.STREAM.INFO.M", "").await);
            for seq in [1, 50, 100] {
                t.push(get(&nc, "M", seq).await);
            }
            // The mirror's consumer is not one clients see.
            t.push(api(&nc, "$JS.API.STREAM.INFO.ORIGIN", "").await);
            t.push(api(&nc, "$JS.API.CONSUMER.NAMES.ORIGIN", "").await);
            // Nothing listens on the mirror's name.
            let r = nc.request("M".to_string(), "x".into()).await;
            t.push(format!("publish to M: {:?}", r.map(|_| ()).map_err(|e| e.kind())));
            // More on the origin: the same sequences; a message deleted on the origin
            // stays in the mirror.
            for i in 101..=105 {
                publish(&nc, "o.1", None, format!("m{i}")).await;
            }
            wait_msgs(&nc, "M", 105).await;
            t.push(api(&nc, "$JS.API.STREAM.MSG.DELETE.ORIGIN", r#"{"seq":103}"#).await);
            publish(&nc, "o.2", None, "m106".into()).await;
            let info = wait_msgs(&nc, "M", 106).await;
            assert_eq!(info["state"]["messages"], 106, "{info}");
            t.push(format!("M state {}", info["state"]));
            t.push(get(&nc, "M", 106).await);
            // Starting sequence and filter.
            t.push(
                create(
                    &nc,
                    r#"{"name":"M50","mirror":{"name":"ORIGIN","opt_start_seq":50},"storage":"memory"}"#,
                )
                .await,
            );
            t.push(
                create(
                    &nc,
                    r#"{"name":"MF","mirror":{"name":"ORIGIN","filter_subject":"o.0"}}"#,
                )
                .await,
            );
            let info = wait_msgs(&nc, "M50", 56).await;
            assert_eq!(info["state"]["first_seq"], 50, "{info}");
            t.push(format!("M50 state {}", info["state"]));
            let info = wait_msgs(&nc, "MF", 33).await;
            assert_eq!(info["state"]["messages"], 33, "{info}");
            t.push(format!("MF state {}", info["state"]));
            t.push(get(&nc, "MF", 3).await);
            t.push(get(&nc, "MF", 4).await);
            // The mirrors' consumers count in the account's figures (and their
            // creation among its API requests).
            t.push(account_info(&nc).await);
            t
        })
    });
}

#[test]
fn sources_from_two_streams_with_a_filter() {
    on_all_servers("src", |exe, dir| {
        let srv = start_js(exe, dir);
        rt().block_on(async {
            let nc = connect(srv.port).await;
            let mut t = Vec::new();
            t.push(create(&nc, r#"{"name":"A","subjects":["a.>"]}"#).await);
            t.push(create(&nc, r#"{"name":"B","subjects":["b.>"]}"#).await);
            for i in 1..=10 {
                let sub = if i % 2 == 0 { "x" } else { "y" };
                publish(&nc, &format!("a.{sub}"), None, format!("a{i}")).await;
                let mut h = HeaderMap::new();
                h.insert("Custom", format!("h{i}").as_str());
                publish(&nc, &format!("b.{sub}"), Some(h), format!("b{i}")).await;
            }
            t.push(
                create(
                    &nc,
                    r#"{"name":"S","subjects":["s.>"],"sources":[{"name":"A","filter_subject":"a.x"},{"name":"B"}]}"#,
                )
                .await,
            );
            let info = wait_msgs(&nc, "S", 15).await;
            assert_eq!(info["state"]["messages"], 15, "{info}");
            t.push(api(&nc, "$JS.API.STREAM.INFO.S", "").await);
            // The two origins interleave in any order: the messages sorted.
            let mut msgs = Vec::new();
            for seq in 1..=15 {
                let m = get(&nc, "S", seq).await;
                msgs.push(m.split_once(" seq=").map(|(a, b)| {
                    let rest = b.split_once(' ').map_or("", |x| x.1);
                    format!("{a} {rest}")
                }).unwrap_or(m));
            }
            msgs.sort();
            t.extend(msgs);
            // Its own subjects still work, and more from an origin arrives.
            publish(&nc, "s.own", None, "own".into()).await;
            publish(&nc, "a.x", None, "a11".into()).await;
            let info = wait_msgs(&nc, "S", 17).await;
            assert_eq!(info["state"]["messages"], 17, "{info}");
            t.push(format!("S state {}", info["state"]));
            t.push(get(&nc, "S", 17).await);
            t.push(api(&nc, "$JS.API.CONSUMER.NAMES.A", "").await);
            // Start options, and a source added by an update.
            t.push(
                create(
                    &nc,
                    r#"{"name":"SS","sources":[{"name":"A","opt_start_seq":8}],"storage":"memory"}"#,
                )
                .await,
            );
            t.push(
                create(
                    &nc,
                    r#"{"name":"ST","sources":[{"name":"A","opt_start_time":"2001-01-01T00:00:00Z"}]}"#,
                )
                .await,
            );
            let info = wait_msgs(&nc, "SS", 4).await;
            assert_eq!(info["state"]["messages"], 4, "{info}");
            t.push(get(&nc, "SS", 1).await);
            let info = wait_msgs(&nc, "ST", 11).await;
            assert_eq!(info["state"]["messages"], 11, "{info}");
            let mut v = api_value(
                &nc,
                "$JS.API.STREAM.UPDATE.ST",
                r#"{"name":"ST","sources":[{"name":"A","opt_start_time":"2001-01-01T00:00:00Z"},{"name":"B"}]}"#,
                true,
            )
            .await;
            // Whether the new source was heard from yet is a race on both servers (its
            // info and the messages it may already have added).
            v["sources"] = Value::Null;
            v["state"] = Value::Null;
            t.push(v.to_string());
            let info = wait_msgs(&nc, "ST", 21).await;
            assert_eq!(info["state"]["messages"], 21, "{info}");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let info = wait_msgs(&nc, "ST", 21).await;
            t.push(format!("ST state {}", info["state"]));
            t
        })
    });
}

#[test]
fn mirror_and_source_configuration_errors() {
    on_all_servers("errs", |exe, dir| {
        let srv = start_js(exe, dir);
        rt().block_on(async {
            let nc = connect(srv.port).await;
            let mut t = Vec::new();
            for cfg in [
                r#"{"name":"O","subjects":["o.>"],"max_msg_size":1024}"#,
                r#"{"name":"M1","subjects":["m.>"],"mirror":{"name":"O"}}"#,
                r#"{"name":"M2","mirror":{"name":"O"},"sources":[{"name":"O"}]}"#,
                r#"{"name":"M3","mirror":{"name":"O"},"max_msg_size":512}"#,
                r#"{"name":"M4","mirror":{"name":"O","filter_subject":"x.>"}}"#,
                r#"{"name":"S1","sources":[{"name":"O","filter_subject":"x.>"}]}"#,
                r#"{"name":"S2","sources":[{"name":"O"}],"max_msg_size":100}"#,
                r#"{"name":"Y","sources":[{"name":"X"}]}"#,
                r#"{"name":"X","sources":[{"name":"Y"}]}"#,
                r#"{"name":"MM","mirror":{"name":"X","opt_start_seq":5}}"#,
                r#"{"name":"MD","mirror_direct":true,"subjects":["md"]}"#,
            ] {
                t.push(create(&nc, cfg).await);
            }
            t.push(
                api(
                    &nc,
                    "$JS.API.STREAM.UPDATE.MM",
                    r#"{"name":"MM","mirror":{"name":"O"}}"#,
                )
                .await,
            );
            // The mirror's origin is missing: wait until its info says so (ours notes it
            // from the mirror's task, a moment after the create answer).
            for _ in 0..100 {
                if api(&nc, "$JS.API.STREAM.INFO.MM", "")
                    .await
                    .contains("\"error\"")
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            t.push(
                api(
                    &nc,
                    "$JS.API.STREAM.UPDATE.MM",
                    r#"{"name":"MM","mirror":{"name":"X","opt_start_seq":5}}"#,
                )
                .await,
            );
            t
        })
    });
}

#[test]
fn origin_appearing_later_and_restart_recovery() {
    on_all_servers("later", |exe, dir| {
        let mut t = Vec::new();
        {
            let srv = start_js(exe, dir);
            rt().block_on(async {
                let nc = connect(srv.port).await;
                t.push(create(&nc, r#"{"name":"M","mirror":{"name":"LATER"}}"#).await);
                t.push(create(&nc, r#"{"name":"S","sources":[{"name":"LATER"}]}"#).await);
                // Tried, refused by the missing origin, retried (every 2 s or so).
                tokio::time::sleep(Duration::from_millis(3000)).await;
                t.push(api(&nc, "$JS.API.STREAM.INFO.M", "").await);
                t.push(api(&nc, "$JS.API.STREAM.INFO.S", "").await);
                t.push(create(&nc, r#"{"name":"LATER","subjects":["l.*"]}"#).await);
                for i in 1..=5 {
                    publish(&nc, "l.a", None, format!("l{i}")).await;
                }
                let info = wait_msgs(&nc, "M", 5).await;
                t.push(format!("M state {}", info["state"]));
                let info = wait_msgs(&nc, "S", 5).await;
                t.push(format!("S state {}", info["state"]));
            });
        }
        let srv = start_js(exe, dir);
        rt().block_on(async {
            let nc = connect(srv.port).await;
            for i in 6..=8 {
                publish(&nc, "l.b", None, format!("l{i}")).await;
            }
            let info = wait_msgs(&nc, "M", 8).await;
            assert_eq!(info["state"]["last_seq"], 8, "{info}");
            t.push(format!("M state {}", info["state"]));
            let info = wait_msgs(&nc, "S", 8).await;
            t.push(format!("S state {}", info["state"]));
            // Give a wrong start a chance to show (duplicates).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let info = wait_msgs(&nc, "S", 8).await;
            t.push(format!("S state {}", info["state"]));
            for seq in [5, 6, 8] {
                t.push(get(&nc, "M", seq).await);
                t.push(get(&nc, "S", seq).await);
            }
            t.push(api(&nc, "$JS.API.STREAM.INFO.M", "").await);
            // Deleting a mirror takes its consumer off the origin.
            t.push(api(&nc, "$JS.API.STREAM.DELETE.M", "").await);
            t.push(account_info(&nc).await);
            // The origin goes: the source stalls, retries and shows why.
            t.push(api(&nc, "$JS.API.STREAM.DELETE.LATER", "").await);
            tokio::time::sleep(Duration::from_millis(6000)).await;
            let mut v = api_value(&nc, "$JS.API.STREAM.INFO.S", "", true).await;
            v["state"] = Value::Null;
            t.push(v.to_string());
        });
        t
    });
}

#[test]
fn mirror_and_source_keep_up_through_flow_control() {
    on_all_servers("flow", |exe, dir| {
        let srv = start_js(exe, dir);
        rt().block_on(async {
            let nc = connect(srv.port).await;
            let mut t = Vec::new();
            t.push(create(&nc, r#"{"name":"BIG","subjects":["big"]}"#).await);
            t.push(create(&nc, r#"{"name":"BM","mirror":{"name":"BIG"}}"#).await);
            t.push(create(&nc, r#"{"name":"BS","sources":[{"name":"BIG"}]}"#).await);
            // 3000 messages of 4 KiB: past the consumers' first flow control windows.
            let body = "x".repeat(4096);
            let mut acks = Vec::new();
            for _ in 0..3000 {
                acks.push(nc.request("big".to_string(), body.clone().into()));
                if acks.len() == 100 {
                    for a in acks.drain(..) {
                        a.await.expect("puback");
                    }
                }
            }
            for a in acks.drain(..) {
                a.await.expect("puback");
            }
            for s in ["BM", "BS"] {
                let info = wait_msgs(&nc, s, 3000).await;
                assert_eq!(info["state"]["messages"], 3000, "{} {info}", exe.display());
                t.push(format!("{s} state {}", info["state"]));
            }
            t.push(get(&nc, "BS", 3000).await.replace(&body, "<4k>"));
            t
        })
    });
}
