//! `nats bench --js`: the JetStream benchmark of our CLI, small counts, against the
//! reference and our server (publishing; consuming against the reference, consumers being
//! the lead's work on ours): banner and report lines as the reference CLI, and the stream
//! then holds exactly what was published.

use crate::config::TempDir;
use crate::support::{bin, ours, reference, run_bounded, Raw, ServerProc};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn js_server(exe: &Path, dir: &TempDir) -> ServerProc {
    let store = dir.0.join("store");
    ServerProc::start(exe, &["-js", "-sd", store.to_str().expect("utf-8 path")])
}

/// `nats bench` with the server's URL; fails the test if it does not exit in time.
fn bench(s: &ServerProc, args: &[&str]) -> (i32, String, String) {
    let url = s.url();
    let mut all = vec!["-s", url.as_str(), "bench"];
    all.extend_from_slice(args);
    all.push("--no-progress");
    let (code, out, err) = run_bounded(&bin("nats"), &all, LIMIT);
    let code = code.unwrap_or_else(|| panic!("nats {all:?} did not exit; stderr:\n{err}"));
    (code, out, err)
}

/// The stream's `state.messages`, asked over the raw protocol.
fn stream_msgs(s: &ServerProc, stream: &str) -> u64 {
    let mut c = Raw::connect(s.port);
    c.info();
    c.send(
        format!(
            "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.t 1\r\nPUB $JS.API.STREAM.INFO.{stream} _INBOX.t 0\r\n\r\n"
        )
        .as_bytes(),
    );
    let head = loop {
        let l = c.line();
        assert!(!l.is_empty(), "EOF before the stream info");
        if l.starts_with("MSG _INBOX.t ") {
            break l;
        }
    };
    let n: usize = head
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .expect("MSG size");
    let body = c.bytes(n);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("stream info json");
    v["state"]["messages"]
        .as_u64()
        .unwrap_or_else(|| panic!("no state.messages in {v}"))
}

/// The log line's text after its `HH:MM:SS ` time.
fn logged(err: &str) -> Vec<&str> {
    err.lines()
        .map(|l| {
            let b = l.as_bytes();
            if b.len() > 9 && b[2] == b':' && b[5] == b':' && b[8] == b' ' {
                &l[9..]
            } else {
                l
            }
        })
        .collect()
}

fn publish(exe: &Path) {
    let dir = TempDir::new("bench-js");
    let s = js_server(exe, &dir);

    // Asynchronous batches, two publishers, a file stream defined by the bench.
    let (code, out, err) = bench(
        &s,
        &[
            "js.t",
            "--js",
            "--storage",
            "file",
            "--pub",
            "2",
            "--msgs",
            "3000",
            "--size",
            "64",
            "--pubbatch",
            "50",
            "--purge",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines = logged(&err);
    assert_eq!(
        lines[0],
        "Starting JetStream benchmark [subject=js.t, multisubject=false, multisubjectmax=0, js=true, msgs=3,000, msgsize=64 B, pubs=2, subs=0, stream=benchstream, maxbytes=1.0 GiB, storage=file, syncpub=false, pubbatch=50, jstimeout=30s, pull=false, consumerbatch=100, push=false, consumername=natscli-bench, replicas=1, purge=true, pubsleep=0s, subsleep=0s, dedup=false, dedupwindow=2m0s]",
        "{err}"
    );
    assert_eq!(lines[1], "Purging the stream", "{err}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "Starting publisher, publishing 1,500 messages")
            .count(),
        2,
        "{err}"
    );
    let rep: Vec<&str> = out.lines().collect();
    assert_eq!(rep[0], "", "{out}");
    assert!(rep[1].starts_with("Pub stats: "), "{out}");
    assert!(
        rep[2].starts_with(" [1] ") && rep[2].ends_with(" (1500 msgs)"),
        "{out}"
    );
    assert!(rep[4].starts_with(" min "), "{out}");
    assert_eq!(stream_msgs(&s, "benchstream"), 3000);

    // Each publish waiting for its PubAck, with message ids; the same stream settings
    // are accepted again, and without --purge the stream keeps what it had.
    let (code, out, err) = bench(
        &s,
        &[
            "js.t",
            "--js",
            "--storage",
            "file",
            "--pub",
            "1",
            "--msgs",
            "200",
            "--size",
            "64",
            "--syncpub",
            "--dedup",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\nPub stats: "), "{out}");
    assert!(!err.contains("Purging"), "{err}");
    assert_eq!(stream_msgs(&s, "benchstream"), 3200);

    // Other settings for the existing stream: the reference CLI's fatal error.
    let (code, _, err) = bench(
        &s,
        &[
            "js.t",
            "--js",
            "--storage",
            "memory",
            "--pub",
            "1",
            "--msgs",
            "10",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        logged(&err).last().copied(),
        Some("nats: stream name already in use with a different configuration. If you want to delete and re-define the stream use `nats stream delete benchstream`."),
        "{err}"
    );
    assert_eq!(stream_msgs(&s, "benchstream"), 3200);

    // A request-reply flag is refused in JetStream mode.
    let (code, _, err) = bench(&s, &["js.t", "--js", "--pub", "1", "--request"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Request-reply mode is not applicable to JetStream benchmarking"),
        "{err}"
    );
}

fn pull_consume(exe: &Path) {
    let dir = TempDir::new("bench-js");
    let s = js_server(exe, &dir);
    let (code, _, err) = bench(
        &s,
        &[
            "js.c", "--js", "--pub", "1", "--msgs", "2000", "--size", "32",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = bench(
        &s,
        &[
            "js.c",
            "--js",
            "--sub",
            "2",
            "--pull",
            "--msgs",
            "2000",
            "--size",
            "32",
            "--consumerbatch",
            "64",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines = logged(&err);
    assert_eq!(
        lines[0],
        "JetStream durable pull consumer mode, subscriber(s) will explicitly acknowledge the consumption of messages",
        "{err}"
    );
    assert!(
        lines.contains(&"Defined durable explicitly acked pull consumer: natscli-bench"),
        "{err}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "Starting subscriber, expecting 1,000 messages")
            .count(),
        2,
        "{err}"
    );
    assert_eq!(
        lines.last().copied(),
        Some("Deleted durable consumer: natscli-bench"),
        "{err}"
    );
    assert!(!err.contains("received only"), "{err}");
    let rep: Vec<&str> = out.lines().collect();
    assert!(rep[1].starts_with("Sub stats: "), "{out}");
    assert!(
        rep[2].ends_with(" (1000 msgs)") && rep[3].ends_with(" (1000 msgs)"),
        "{out}"
    );
    // Every message acked: the stream still holds them all (limits retention).
    assert_eq!(stream_msgs(&s, "benchstream"), 2000);
}

#[test]
fn bench_js_publish_go() {
    publish(&reference());
}

#[test]
fn bench_js_publish_ours() {
    publish(&ours());
}

#[test]
fn bench_js_pull_consume_go() {
    pull_consume(&reference());
}

#[test]
fn bench_js_pull_consume_ours() {
    pull_consume(&ours());
}
