//! `nats stream|consumer|kv|object` end to end against both servers, and interoperability
//! with async-nats: a bucket or object written by one is read by the other.
//!
//! Consumer-based cases (consumer commands, `kv watch`, async-nats reading objects through
//! its ordered consumer) run against our server too; they need consumers there.

use crate::config::TempDir;
use crate::support::{bin, ours, reference, rt, wait_until, Proc, ServerProc};
use nats_common::client::jetstream::object;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A JetStream server with its store in a temporary directory.
struct Js {
    srv: ServerProc,
    _dir: TempDir,
}

fn start(exe: &Path) -> Js {
    let dir = TempDir::new("cli-js");
    let store = dir.0.join("store");
    let srv = ServerProc::start(exe, &["-js", "-sd", store.to_str().unwrap()]);
    Js { srv, _dir: dir }
}

/// The CLI with a private config directory (no contexts) against `url`.
fn nats_cmd(url: &str, cfg: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("nats"));
    c.args(["-s", url])
        .args(args)
        .env("XDG_CONFIG_HOME", cfg)
        .env_remove("NATS_URL")
        .env_remove("NATS_CONTEXT")
        .stdin(Stdio::null());
    c
}

/// Runs the CLI to completion (killed after 30 s): (exit code, stdout, stderr).
fn nats(js: &Js, args: &[&str]) -> (i32, String, String) {
    let out_p = js
        ._dir
        .0
        .join(format!("out-{}", crate::support::free_port()));
    let err_p = js
        ._dir
        .0
        .join(format!("err-{}", crate::support::free_port()));
    let mut child = nats_cmd(&js.srv.url(), &js._dir.0, args)
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(std::fs::File::create(&err_p).unwrap())
        .spawn()
        .expect("spawn nats");
    let end = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code().unwrap_or(-1);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nats {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = std::fs::read_to_string(&out_p).unwrap_or_default();
    let err = std::fs::read_to_string(&err_p).unwrap_or_default();
    (code, out, err)
}

fn ok(js: &Js, args: &[&str]) -> String {
    let (code, out, err) = nats(js, args);
    assert_eq!(code, 0, "nats {args:?} failed: {err}\n{out}");
    out
}

fn fails(js: &Js, args: &[&str]) -> String {
    let (code, out, err) = nats(js, args);
    assert_eq!(code, 1, "nats {args:?} should fail; out: {out} err: {err}");
    err
}

/// Lines without what differs by run (times, durations since).
fn normalise(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.contains(" created ") || l.contains(" @ ") || l.contains(" received ") {
                l.split(" created ")
                    .next()
                    .unwrap_or_default()
                    .split(" @ ")
                    .next()
                    .unwrap_or_default()
                    .split(" received ")
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything `nats stream …` prints for one scenario, times removed.
fn stream_script(js: &Js) -> Vec<String> {
    let mut out = Vec::new();
    let created = ok(
        js,
        &[
            "stream",
            "add",
            "ORDERS",
            "--subjects",
            "orders.*",
            "--storage",
            "file",
            "--retention",
            "limits",
            "--discard",
            "old",
            "--max-msgs",
            "100",
            "--max-bytes",
            "1M",
            "--max-age",
            "1h",
            "--max-msg-size",
            "1024",
            "--max-msgs-per-subject",
            "10",
            "--dupe-window",
            "1m",
            "--replicas",
            "1",
        ],
    );
    assert!(
        created.starts_with("Stream ORDERS was created\n\n"),
        "{created}"
    );
    assert!(
        created.contains("             Subjects: orders.*\n"),
        "{created}"
    );
    assert!(created.contains("            Retention: File - Limits\n"));
    assert!(created.contains("  Maximum Per Subject: 10\n"));
    assert!(created.contains("        Maximum Bytes: 1.0 MiB\n"));
    assert!(created.contains("          Maximum Age: 1h0m0s\n"));
    assert!(created.contains("     Duplicate Window: 1m0s\n"));
    out.push(normalise(&created));
    for (subj, body) in [
        ("orders.a", "one"),
        ("orders.b", "two"),
        ("orders.a", "three"),
    ] {
        let _ = ok(js, &["pub", subj, body]);
    }
    let info = ok(js, &["stream", "info", "ORDERS"]);
    assert!(info.contains("             Messages: 3\n"), "{info}");
    assert!(info.contains("             FirstSeq: 1 @ "), "{info}");
    out.push(normalise(&info));
    let json: serde_json::Value =
        serde_json::from_str(&ok(js, &["stream", "info", "ORDERS", "--json"])).unwrap();
    assert_eq!(json["config"]["name"], "ORDERS");
    assert_eq!(json["state"]["messages"], 3);
    assert_eq!(ok(js, &["stream", "ls", "--names"]), "ORDERS\n");
    let table = ok(js, &["stream", "ls"]);
    assert!(table.contains("│ ORDERS "), "{table}");
    assert!(table.contains("Streams"), "{table}");
    let got = ok(js, &["stream", "get", "ORDERS", "2"]);
    assert!(got.starts_with("Item: ORDERS#2 received "), "{got}");
    assert!(got.ends_with(" on Subject orders.b\n\ntwo\n\n"), "{got}");
    out.push(normalise(&got));
    let last = ok(js, &["stream", "get", "ORDERS", "--last-for", "orders.a"]);
    assert!(last.starts_with("Item: ORDERS#3 "), "{last}");
    out.push(normalise(&last));
    out.push(fails(js, &["stream", "get", "ORDERS", "9"]));
    out.push(fails(js, &["stream", "info", "NOPE"]));
    out.push(fails(js, &["stream", "add", "X"]));
    assert_eq!(
        fails(
            js,
            &["stream", "add", "X", "--subjects", "x", "--storage", "disk"]
        ),
        "nats: error: enum value must be one of file,f,memory,m, got 'disk', try --help\n"
    );
    let purged = ok(
        js,
        &["stream", "purge", "ORDERS", "-f", "--subject", "orders.b"],
    );
    assert!(purged.contains("             Messages: 2\n"), "{purged}");
    out.push(normalise(&purged));
    let kept = ok(js, &["stream", "purge", "ORDERS", "-f", "--keep", "1"]);
    assert!(kept.contains("             Messages: 1\n"), "{kept}");
    out.push(normalise(&kept));
    let all = ok(js, &["stream", "purge", "ORDERS", "-f"]);
    assert!(all.contains("             Messages: 0\n"), "{all}");
    out.push(fails(
        js,
        &[
            "stream", "purge", "ORDERS", "-f", "--seq", "2", "--keep", "1",
        ],
    ));
    // Without -f and without a terminal nothing is removed.
    assert_eq!(ok(js, &["stream", "rm", "ORDERS"]), "");
    assert_eq!(ok(js, &["stream", "rm", "ORDERS", "-f"]), "");
    out.push(fails(js, &["stream", "rm", "ORDERS", "-f"]));
    assert_eq!(ok(js, &["stream", "ls"]), "No Streams defined\n");
    let mem = ok(
        js,
        &[
            "stream",
            "add",
            "M",
            "--subjects",
            "m.>",
            "--storage",
            "memory",
            "--defaults",
        ],
    );
    assert!(
        mem.contains("            Retention: Memory - Limits\n"),
        "{mem}"
    );
    out.push(normalise(&mem));
    out
}

#[test]
fn stream_commands_answer_alike_on_both_servers() {
    let mut runs = Vec::new();
    for exe in [reference(), ours()] {
        eprintln!("against {}", exe.display());
        let js = start(&exe);
        runs.push(stream_script(&js));
    }
    let errs: Vec<&String> = runs[0]
        .iter()
        .filter(|l| l.starts_with("nats: error"))
        .collect();
    assert!(errs
        .iter()
        .any(|e| e.as_str()
            == "nats: error: could not request Stream info: stream not found (10059)\n"));
    assert!(errs
        .iter()
        .any(|e| e.as_str()
            == "nats: error: could not retrieve ORDERS#9: no message found (10037)\n"));
    assert_eq!(runs[0], runs[1]);
}

fn consumer_script(js: &Js) {
    ok(
        js,
        &[
            "stream",
            "add",
            "ORDERS",
            "--subjects",
            "orders.*",
            "--defaults",
        ],
    );
    for i in 1..=3 {
        ok(js, &["pub", "orders.new", &format!("m{i}")]);
    }
    let add = ok(
        js,
        &[
            "consumer",
            "add",
            "ORDERS",
            "PULL",
            "--pull",
            "--filter",
            "orders.new",
            "--deliver",
            "all",
            "--ack",
            "explicit",
            "--wait",
            "10s",
            "--max-deliver",
            "5",
            "--max-pending",
            "100",
            "--replay",
            "instant",
        ],
    );
    assert!(
        add.starts_with("Information for Consumer ORDERS > PULL created "),
        "{add}"
    );
    assert!(add.contains("           Pull Mode: true\n"), "{add}");
    assert!(add.contains("      Filter Subject: orders.new\n"), "{add}");
    assert!(add.contains("            Ack Wait: 10s\n"), "{add}");
    assert!(add.contains("     Max Ack Pending: 100\n"), "{add}");
    assert!(add.contains("     Unprocessed Messages: 3\n"), "{add}");
    let next = ok(js, &["consumer", "next", "ORDERS", "PULL", "--count", "2"]);
    assert!(next.contains("subj: orders.new / tries: 1 / cons seq: 1 / str seq: 1 / pending: 2\n\nm1\n\nAcknowledged message\n"), "{next}");
    assert!(
        next.contains("cons seq: 2 / str seq: 2 / pending: 1\n\nm2\n"),
        "{next}"
    );
    let raw = ok(
        js,
        &["consumer", "next", "ORDERS", "PULL", "--raw", "--no-ack"],
    );
    assert_eq!(raw, "m3\n");
    let info = ok(js, &["consumer", "info", "ORDERS", "PULL"]);
    assert!(
        info.contains("Acknowledgment floor: Consumer sequence: 2 Stream sequence: 2"),
        "{info}"
    );
    assert!(
        info.contains("         Outstanding Acks: 1 out of maximum 100\n"),
        "{info}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(js, &["consumer", "info", "ORDERS", "PULL", "--json"])).unwrap();
    assert_eq!(json["config"]["durable_name"], "PULL");
    let push = ok(
        js,
        &[
            "consumer",
            "add",
            "ORDERS",
            "PUSH",
            "--target",
            "out.push",
            "--deliver",
            "last",
            "--ack",
            "none",
            "--replay",
            "instant",
            "--defaults",
        ],
    );
    assert!(push.contains("    Delivery Subject: out.push\n"), "{push}");
    assert!(push.contains("      Deliver Policy: Last\n"), "{push}");
    let ls = ok(js, &["consumer", "ls", "ORDERS", "--names"]);
    assert_eq!(ls, "PULL\nPUSH\n");
    assert!(ok(js, &["consumer", "ls", "ORDERS"]).contains("│ PUSH "));
    let err = fails(js, &["consumer", "next", "ORDERS", "PUSH"]);
    assert_eq!(
        err,
        "nats: error: consumer ORDERS > PUSH is not a pull consumer\n"
    );
    ok(js, &["consumer", "rm", "ORDERS", "PUSH", "-f"]);
    let err = fails(js, &["consumer", "info", "ORDERS", "PUSH"]);
    assert_eq!(
        err,
        "nats: error: could not load Consumer ORDERS > PUSH: consumer not found (10014)\n"
    );
    let err = fails(js, &["consumer", "add", "ORDERS", "X"]);
    assert!(err.contains("--defaults"), "{err}");
}

#[test]
fn consumer_commands_add_pull_ack_and_remove() {
    for exe in [reference(), ours()] {
        eprintln!("against {}", exe.display());
        let js = start(&exe);
        consumer_script(&js);
    }
}

fn kv_interop(js: &Js) {
    let add = ok(
        js,
        &["kv", "add", "CFG", "--history", "5", "--storage", "memory"],
    );
    assert!(
        add.starts_with("Information for Key-Value Store Bucket CFG created "),
        "{add}"
    );
    assert!(add.contains("         History Kept: 5\n"), "{add}");
    assert!(add.contains("     JetStream Stream: KV_CFG\n"), "{add}");
    assert_eq!(ok(js, &["kv", "put", "CFG", "color", "red"]), "red\n");
    assert_eq!(ok(js, &["kv", "put", "CFG", "color", "blue"]), "blue\n");
    let url = js.srv.url();
    rt().block_on(async {
        let nc = async_nats::connect(&url).await.unwrap();
        let jsc = async_nats::jetstream::new(nc);
        let kv = jsc
            .get_key_value("CFG")
            .await
            .expect("bucket made by our CLI");
        let e = kv.entry("color").await.unwrap().expect("entry");
        assert_eq!((&e.value[..], e.revision), (&b"blue"[..], 2));
        assert_eq!(kv.status().await.unwrap().history(), 5);
        kv.put("size", "big".into()).await.unwrap();
        kv.put("gone", "x".into()).await.unwrap();
    });
    assert_eq!(ok(js, &["kv", "get", "CFG", "size", "--raw"]), "big");
    let got = ok(js, &["kv", "get", "CFG", "color"]);
    assert!(got.starts_with("CFG > color created @ "), "{got}");
    assert!(got.ends_with("\n\nblue\n\n"), "{got}");
    assert!(ok(js, &["kv", "get", "CFG", "color", "--revision", "1"]).ends_with("\n\nred\n\n"));
    ok(js, &["kv", "del", "CFG", "gone", "-f"]);
    assert_eq!(
        fails(js, &["kv", "get", "CFG", "gone"]),
        "nats: error: nats: key not found\n"
    );
    assert_eq!(ok(js, &["kv", "ls", "CFG"]), "color\nsize\n");
    assert_eq!(ok(js, &["kv", "ls", "--names"]), "CFG\n");
    assert!(ok(js, &["kv", "ls"]).contains("│ CFG "));
    rt().block_on(async {
        let nc = async_nats::connect(&url).await.unwrap();
        let kv = async_nats::jetstream::new(nc)
            .get_key_value("CFG")
            .await
            .unwrap();
        assert_eq!(kv.get("gone").await.unwrap(), None, "delete marker seen");
        // A bucket made by async-nats is read by our CLI.
        let js2 = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let kv2 = js2
            .create_key_value(async_nats::jetstream::kv::Config {
                bucket: "OTHER".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        kv2.put("k", "v".into()).await.unwrap();
    });
    assert_eq!(ok(js, &["kv", "get", "OTHER", "k", "--raw"]), "v");
    assert_eq!(
        fails(js, &["kv", "get", "NOPE", "k"]),
        "nats: error: nats: bucket not found\n"
    );
    ok(js, &["kv", "del", "OTHER", "-f"]);
    assert_eq!(ok(js, &["kv", "ls", "--names"]), "CFG\n");
}

#[test]
fn kv_buckets_interoperate_with_async_nats() {
    for exe in [reference(), ours()] {
        eprintln!("against {}", exe.display());
        let js = start(&exe);
        kv_interop(&js);
    }
}

fn kv_watch(js: &Js) {
    ok(js, &["kv", "add", "W"]);
    ok(js, &["kv", "put", "W", "a", "1"]);
    let out_p = js._dir.0.join("watch.out");
    let child: Child = nats_cmd(&js.srv.url(), &js._dir.0, &["kv", "watch", "W"])
        .stdout(std::fs::File::create(&out_p).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed when dropped, also when an assertion below fails.
    let watcher = Proc {
        child,
        log: js._dir.0.join("watch.log"),
    };
    let read = || std::fs::read_to_string(&out_p).unwrap_or_default();
    let first = wait_until(Duration::from_secs(20), || read().contains("PUT W > a: 1"));
    ok(js, &["kv", "put", "W", "b", "2"]);
    ok(js, &["kv", "del", "W", "a", "-f"]);
    let rest = wait_until(Duration::from_secs(20), || read().contains("DEL W > a"));
    drop(watcher);
    let text = read();
    assert!(first && rest, "watch output: {text}");
    assert!(text.contains("] PUT W > b: 2\n"), "{text}");
}

#[test]
fn kv_watch_shows_values_then_changes() {
    for exe in [reference(), ours()] {
        eprintln!("against {}", exe.display());
        let js = start(&exe);
        kv_watch(&js);
    }
}

fn object_interop(js: &Js) {
    let add = ok(js, &["object", "add", "FILES"]);
    assert!(add.starts_with("FILES Object Store Status\n\n"), "{add}");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = js._dir.0.join("blob.bin");
    std::fs::write(&file, &data).unwrap();
    let put = ok(
        js,
        &[
            "object",
            "put",
            "FILES",
            file.to_str().unwrap(),
            "--name",
            "blob.bin",
        ],
    );
    assert!(
        put.starts_with("Object information for FILES > blob.bin\n\n"),
        "{put}"
    );
    assert!(put.contains("             Chunks: 3\n"), "{put}");
    let ls = ok(js, &["object", "ls", "FILES"]);
    assert!(ls.contains("│ blob.bin │ 293 KiB │"), "{ls}");
    // Our CLI reads back what it wrote.
    let back = js._dir.0.join("back.bin");
    let got = ok(
        js,
        &[
            "object",
            "get",
            "FILES",
            "blob.bin",
            "-O",
            back.to_str().unwrap(),
        ],
    );
    assert!(got.starts_with("Wrote: 293 KiB to "), "{got}");
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let url = js.srv.url();
    let ours_digest = put
        .lines()
        .find_map(|l| l.trim().strip_prefix("Digest: SHA-256 "))
        .expect("digest line")
        .to_string();
    rt().block_on(async {
        use tokio::io::AsyncReadExt;
        let nc = async_nats::connect(&url).await.unwrap();
        let jsc = async_nats::jetstream::new(nc);
        let store = jsc
            .get_object_store("FILES")
            .await
            .expect("bucket by our CLI");
        let info = store.info("blob.bin").await.expect("info");
        assert_eq!(info.size, data.len());
        let mut obj = store.get("blob.bin").await.expect("get");
        let mut read = Vec::new();
        obj.read_to_end(&mut read).await.expect("read object");
        assert_eq!(read, data, "async-nats reads what our CLI put");
        // And the other way round.
        let mut cursor = std::io::Cursor::new(b"written by async-nats".to_vec());
        let put = store.put("theirs.txt", &mut cursor).await.expect("put");
        assert_eq!(put.digest, Some(object::digest(b"written by async-nats")));
        // The digest async-nats reads is the one our CLI wrote and showed.
        assert_eq!(info.digest, Some(object::digest(&data)));
        let shown = object::ObjectInfo {
            digest: info.digest.clone().unwrap_or_default(),
            ..Default::default()
        };
        assert_eq!(shown.digest_hex().map(|d| d.1), Some(ours_digest.clone()));
    });
    let theirs = js._dir.0.join("theirs.txt");
    ok(
        js,
        &[
            "object",
            "get",
            "FILES",
            "theirs.txt",
            "-O",
            theirs.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), b"written by async-nats");
    let info = ok(js, &["object", "info", "FILES", "theirs.txt"]);
    let theirs_digest = object::ObjectInfo {
        digest: object::digest(b"written by async-nats"),
        ..Default::default()
    }
    .digest_hex()
    .unwrap()
    .1;
    assert!(
        info.contains(&format!("Digest: SHA-256 {theirs_digest}\n")),
        "{info}"
    );
    assert_eq!(
        fails(js, &["object", "get", "FILES", "nope"]),
        "nats: error: nats: object not found\n"
    );
}

#[test]
fn objects_interoperate_with_async_nats() {
    for exe in [reference(), ours()] {
        eprintln!("against {}", exe.display());
        let js = start(&exe);
        object_interop(&js);
    }
}
