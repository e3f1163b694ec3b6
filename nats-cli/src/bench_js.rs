//! `nats bench SUBJECT --js`: the reference CLI's JetStream benchmark (single-command form).
//!
//! The "benchstream" stream is defined (or checked to have the same settings) over the
//! `$JS.API` and optionally purged; publishers publish into it waiting for each PubAck
//! (`--syncpub`) or in batches of `--pubbatch` messages whose PubAcks are awaited together;
//! subscribers consume with a shared durable pull consumer (`--pull`: fetches of
//! `--consumerbatch`, every message acked), a shared durable push consumer delivering to a
//! queue group (`--push`, acked) or each with its own ephemeral ordered push consumer (the
//! default, no acks). The report has the same layout as the core benchmark.

use super::{csv, parse_size, report, split, BenchArgs, Progress, Sample};
use crate::output::{commas, go_duration, iec_bytes, log, parse_duration};
use crate::{conn, logf, Global};
use anyhow::{anyhow, Result};
use nats_common::client::{Client, Error};
use nats_common::headers::Headers;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

const DEFAULT_STREAM: &str = "benchstream";
const DEFAULT_CONSUMER: &str = "natscli-bench";

/// The reference logs and exits with status 1 on any JetStream failure (`log.Fatal`).
fn fatal(msg: impl AsRef<str>) -> ! {
    log(msg);
    std::process::exit(1);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SubMode {
    /// Shared durable pull consumer, explicit acks.
    Pull,
    /// Shared durable push consumer delivering to a queue group, explicit acks.
    Push,
    /// One ephemeral ordered push consumer per subscriber, no acks.
    Ordered,
}

/// The settings every client task needs.
struct Run {
    subject: String,
    multisubject: bool,
    multisubjectmax: i64,
    size: usize,
    stream: String,
    consumer: String,
    syncpub: bool,
    pubbatch: u64,
    consumerbatch: u64,
    jstimeout: Duration,
    pubsleep: Duration,
    subsleep: Duration,
    dedup: bool,
    run_id: String,
    mode: SubMode,
}

impl Run {
    fn publish_subject(&self, n: u64) -> String {
        if !self.multisubject {
            return self.subject.clone();
        }
        let n = if self.multisubjectmax > 0 {
            n % self.multisubjectmax as u64
        } else {
            n
        };
        format!("{}.{n}", self.subject)
    }

    fn subscribe_subject(&self) -> String {
        if self.multisubject {
            format!("{}.*", self.subject)
        } else {
            self.subject.clone()
        }
    }
}

/// A `$JS.API` request: the JSON answer, or the error text the reference CLI prints
/// (`nats: <description>`).
async fn api(
    c: &Client,
    subject: &str,
    body: Option<Value>,
    timeout: Duration,
) -> std::result::Result<Value, String> {
    let payload = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    match c.request_full(subject, None, &payload, timeout).await {
        Ok(m) => {
            let v: Value = serde_json::from_slice(&m.payload).map_err(|e| format!("nats: {e}"))?;
            if let Some(e) = v.get("error") {
                let d = e
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown JetStream error");
                return Err(format!("nats: {d}"));
            }
            Ok(v)
        }
        Err(Error::NoResponders) => Err("nats: jetstream not enabled".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn storage_name(s: &str) -> &'static str {
    if s == "file" {
        "file"
    } else {
        "memory"
    }
}

pub async fn run(a: BenchArgs, g: &Global) -> Result<()> {
    let size = match parse_size(&a.size) {
        Ok(s) if s > 0 => s,
        _ => fatal(format!(
            "Can not parse or invalid the value specified for the message size: {}",
            a.size
        )),
    };
    let mode = if a.pull {
        SubMode::Pull
    } else if a.push {
        SubMode::Push
    } else {
        SubMode::Ordered
    };
    if a.subs > 0 && a.pull {
        log("JetStream durable pull consumer mode, subscriber(s) will explicitly acknowledge the consumption of messages");
    }
    if a.subs > 0 && a.push {
        if a.pull {
            fatal("The durable consumer must be either pull or push, it can not be both");
        }
        log("JetStream durable push consumer mode, subscriber(s) will explicitly acknowledge the consumption of messages");
    }
    if a.subs > 0 && !a.pull {
        log("JetStream ephemeral ordered push consumer mode, subscribers will not acknowledge the consumption of messages");
    }
    if a.pubs == 0 && a.subs == 0 {
        fatal("You must have at least one publisher or at least one subscriber... try adding --pub 1 and/or --sub 1 to the arguments");
    }
    if a.request || a.reply {
        fatal("Request-reply mode is not applicable to JetStream benchmarking");
    }
    let max_bytes = match parse_size(&a.maxbytes) {
        Ok(s) if s > 0 => s as u64,
        _ => fatal(format!(
            "Can not parse or invalid the value specified for the max stream/bucket size: {}",
            a.maxbytes
        )),
    };
    let jstimeout = parse_duration(&a.jstimeout)?;
    let dedupwindow = parse_duration(&a.dedupwindow)?;
    let pubsleep = parse_duration(&a.pubsleep)?;
    let subsleep = parse_duration(&a.subsleep)?;
    if a.pubbatch <= 0 || a.consumerbatch <= 0 {
        return Err(anyhow!(
            "--pubbatch and --consumerbatch must be greater than 0"
        ));
    }
    let msgs = a.msgs as u64;
    let storage = storage_name(&a.storage);
    let default_stream = a.stream == DEFAULT_STREAM;
    let common = format!(
        "subject={}, multisubject={}, multisubjectmax={}, js=true, msgs={}, msgsize={}, pubs={}, subs={}, stream={}, maxbytes={}",
        a.subject,
        a.multisubject,
        a.multisubjectmax,
        commas(msgs as i64),
        iec_bytes(size as u64),
        a.pubs,
        a.subs,
        a.stream,
        iec_bytes(max_bytes)
    );
    let tail = format!(
        "syncpub={}, pubbatch={}, jstimeout={}, pull={}, consumerbatch={}, push={}, consumername={}",
        a.syncpub,
        commas(a.pubbatch),
        go_duration(jstimeout),
        a.pull,
        commas(a.consumerbatch),
        a.push,
        a.consumer
    );
    let sleeps = format!(
        "pubsleep={}, subsleep={}, dedup={}, dedupwindow={}",
        go_duration(pubsleep),
        go_duration(subsleep),
        a.dedup,
        go_duration(dedupwindow)
    );
    if default_stream {
        logf!(
            "Starting JetStream benchmark [{common}, storage={storage}, {tail}, replicas={}, purge={}, {sleeps}]",
            a.replicas,
            a.purge
        );
    } else {
        logf!(
            "Starting JetStream benchmark [{common}, {tail}, purge={}, {sleeps}]",
            a.purge
        );
    }

    let opts = conn::options(g)?;
    let run = Arc::new(Run {
        subject: a.subject.clone(),
        multisubject: a.multisubject,
        multisubjectmax: a.multisubjectmax,
        size,
        stream: a.stream.clone(),
        consumer: a.consumer.clone(),
        syncpub: a.syncpub,
        pubbatch: a.pubbatch as u64,
        consumerbatch: a.consumerbatch as u64,
        jstimeout,
        pubsleep,
        subsleep,
        dedup: a.dedup,
        run_id: nats_common::nuid::next(),
        mode,
    });

    // Define the stream (the same settings again are accepted), purge it, create the
    // durable consumer.
    let admin = match conn::connect_with(opts.clone()).await {
        Ok(c) => c,
        Err(e) => fatal(format!("NATS connection failed: {e}")),
    };
    if default_stream {
        let mut cfg = json!({
            "name": a.stream,
            "subjects": [run.subscribe_subject()],
            "retention": "limits",
            "max_consumers": 0,
            "max_msgs": 0,
            "max_bytes": max_bytes,
            "discard": "new",
            "max_age": 0,
            "max_msgs_per_subject": 0,
            "storage": storage,
            "num_replicas": a.replicas,
        });
        if a.dedup {
            cfg["duplicate_window"] = json!(dedupwindow.as_nanos() as u64);
        }
        let subj = format!("$JS.API.STREAM.CREATE.{}", a.stream);
        if let Err(e) = api(&admin, &subj, Some(cfg), jstimeout).await {
            fatal(format!(
                "{e}. If you want to delete and re-define the stream use `nats stream delete {}`.",
                a.stream
            ));
        }
    } else if (a.pull || a.push) && a.subs > 0 {
        logf!("Using stream: {}", a.stream);
    }
    if a.purge {
        log("Purging the stream");
        let subj = format!("$JS.API.STREAM.PURGE.{}", a.stream);
        if let Err(e) = api(&admin, &subj, None, jstimeout).await {
            fatal(format!("Error purging stream {}: {e}", a.stream));
        }
    }
    let mut delete_durable = false;
    if a.subs > 0 && mode != SubMode::Ordered {
        let mut cfg = json!({
            "durable_name": a.consumer,
            "deliver_policy": "all",
            "ack_policy": "explicit",
            "replay_policy": "instant",
        });
        let batch = a.subs as i64 * a.consumerbatch;
        if mode == SubMode::Pull {
            cfg["max_ack_pending"] = json!(batch.max(10_000));
        } else {
            cfg["deliver_subject"] = json!(format!("{}-DELIVERY", a.consumer));
            cfg["deliver_group"] = json!(format!("{}-GROUP", a.consumer));
            cfg["max_ack_pending"] = json!(batch);
        }
        let subj = format!("$JS.API.CONSUMER.CREATE.{}.{}", a.stream, a.consumer);
        let body = json!({"stream_name": a.stream, "config": cfg});
        if let Err(e) = api(&admin, &subj, Some(body), jstimeout).await {
            if mode == SubMode::Pull {
                fatal(format!("Error creating the pull consumer: {e}"));
            }
            fatal(format!("Error creating the durable push consumer: {e}"));
        }
        delete_durable = a.consumer == DEFAULT_CONSUMER;
        if mode == SubMode::Pull {
            logf!(
                "Defined durable explicitly acked pull consumer: {}",
                a.consumer
            );
        } else {
            logf!(
                "Defined durable explicitly acked push consumer: {}",
                a.consumer
            );
        }
    }

    let progress = Progress::new(!a.no_progress);
    let ticker = progress.spawn_ticker();

    // Subscribers: set up (their clocks start then, as in the reference), then publishers.
    let sub_shares = if a.subs > 0 {
        split(msgs, a.subs)
    } else {
        Vec::new()
    };
    let mut sub_tasks = Vec::new();
    let fetch_timeout = Arc::new(AtomicBool::new(false));
    for (i, share) in sub_shares.into_iter().enumerate() {
        // Ordered consumers each get every message; durable ones share them.
        let expect = if mode == SubMode::Ordered {
            msgs
        } else {
            share
        };
        let client = match conn::connect_with(opts.clone()).await {
            Ok(c) => c,
            Err(e) => return Err(anyhow!("nats connection {i} failed: {e}")),
        };
        logf!(
            "Starting subscriber, expecting {} messages",
            commas(expect as i64)
        );
        let (bar, done) = progress.add("Setup     ", expect);
        let run = run.clone();
        let ft = fetch_timeout.clone();
        let task = match mode {
            SubMode::Pull => {
                let start = Instant::now();
                let inbox = client.new_inbox();
                let sub = client.subscribe(&inbox).await?;
                client.flush().await?;
                tokio::spawn(async move {
                    let r =
                        pull_subscriber(&client, sub, &inbox, &run, expect, start, bar, ft).await;
                    done.store(true, Ordering::Relaxed);
                    client.close().await;
                    r
                })
            }
            SubMode::Push | SubMode::Ordered => {
                let p = PushSub::start(&client, &run, expect, bar, jstimeout).await;
                tokio::spawn(async move {
                    let r = p.wait(&client, &run, expect).await;
                    done.store(true, Ordering::Relaxed);
                    client.close().await;
                    r
                })
            }
        };
        sub_tasks.push(task);
    }

    let pub_shares = if a.pubs > 0 {
        split(msgs, a.pubs)
    } else {
        Vec::new()
    };
    let gate = Arc::new(tokio::sync::Barrier::new(a.pubs + 1));
    let mut pub_tasks = Vec::new();
    let mut offset = 0u64;
    for share in pub_shares {
        let client = match conn::connect_with(opts.clone()).await {
            Ok(c) => c,
            Err(e) => return Err(anyhow!("nats connection failed: {e}")),
        };
        logf!(
            "Starting publisher, publishing {} messages",
            commas(share as i64)
        );
        let (bar, done) = progress.add("Publishing", share);
        let gate = gate.clone();
        let run = run.clone();
        let first = offset;
        offset += share;
        pub_tasks.push(tokio::spawn(async move {
            gate.wait().await;
            let start = Instant::now();
            if run.syncpub {
                sync_publisher(&client, &run, share, first, &bar).await;
            } else {
                async_publisher(&client, &run, share, first, &bar).await?;
            }
            if let Err(e) = client.flush_timeout(Duration::from_secs(60)).await {
                fatal(format!("Could not flush the connection: {e}"));
            }
            let end = Instant::now();
            bar.store(share, Ordering::Relaxed);
            done.store(true, Ordering::Relaxed);
            client.close().await;
            Ok::<Sample, anyhow::Error>(Sample {
                msgs: share,
                bytes: share * size as u64,
                start,
                end,
            })
        }));
    }
    gate.wait().await;
    let mut pub_samples = Vec::new();
    for t in pub_tasks {
        pub_samples.push(t.await.map_err(|e| anyhow!("publisher failed: {e}"))??);
    }
    let mut sub_samples = Vec::new();
    for (i, t) in sub_tasks.into_iter().enumerate() {
        let (s, expected) = t.await.map_err(|e| anyhow!("subscriber failed: {e}"))??;
        if s.msgs < expected {
            logf!(
                "Subscriber {} received only {} of {} messages",
                i + 1,
                commas(s.msgs as i64),
                commas(expected as i64)
            );
        }
        sub_samples.push(s);
    }
    progress.tick();
    ticker.abort();
    let _ = progress.multi.clear();
    if fetch_timeout.load(Ordering::Relaxed) {
        log("WARNING: at least one of the pull consumer Fetch operation timed out, the results may not be accurate!");
    }
    println!();
    print!("{}", report(&pub_samples, &sub_samples));
    println!();
    if let Some(path) = &a.csv {
        let data = csv(&nats_common::nuid::next(), &pub_samples, &sub_samples);
        std::fs::write(path, data).map_err(|e| anyhow!("could not write {path}: {e}"))?;
        logf!("Saved metric data in csv file {path}");
    }
    if delete_durable {
        let subj = format!("$JS.API.CONSUMER.DELETE.{}.{}", a.stream, a.consumer);
        if let Err(e) = api(&admin, &subj, None, jstimeout).await {
            if mode == SubMode::Push {
                fatal(format!(
                    "Error deleting the durable push consumer on stream {}: {e}",
                    a.stream
                ));
            }
            logf!(
                "Error deleting the pull consumer on stream {}: {e}",
                a.stream
            );
        }
        logf!("Deleted durable consumer: {}", a.consumer);
    }
    admin.close().await;
    Ok(())
}

fn msg_id_headers(run: &Run, n: u64) -> Option<Headers> {
    run.dedup.then(|| {
        let mut h = Headers::new();
        h.insert("Nats-Msg-Id", format!("{}.{n}", run.run_id));
        h
    })
}

/// A PubAck's error text, if it is one.
fn puback_error(payload: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let e = v.get("error")?;
    Some(format!(
        "nats: {}",
        e.get("description")
            .and_then(Value::as_str)
            .unwrap_or("unknown JetStream error")
    ))
}

/// Each publish waits for its PubAck.
async fn sync_publisher(client: &Client, run: &Run, share: u64, first: u64, bar: &AtomicU64) {
    let payload = vec![0u8; run.size];
    for i in 0..share {
        let subject = run.publish_subject(i);
        let hdr = msg_id_headers(run, first + i);
        match client
            .request_full(&subject, hdr.as_ref(), &payload, run.jstimeout)
            .await
        {
            Ok(m) => {
                if let Some(e) = puback_error(&m.payload) {
                    fatal(format!("Publish: {e}"));
                }
            }
            Err(Error::NoResponders) => fatal("Publish: nats: no response from stream"),
            Err(e) => fatal(format!("Publish: {e}")),
        }
        bar.store(i + 1, Ordering::Relaxed);
        if !run.pubsleep.is_zero() {
            tokio::time::sleep(run.pubsleep).await;
        }
    }
}

/// Batches of `--pubbatch` publishes, then every PubAck of the batch is awaited.
async fn async_publisher(
    client: &Client,
    run: &Run,
    share: u64,
    first: u64,
    bar: &AtomicU64,
) -> Result<()> {
    let acked = Arc::new(AtomicU64::new(0));
    let failed: Arc<Mutex<Option<(u64, String)>>> = Arc::new(Mutex::new(None));
    let wake = Arc::new(Notify::new());
    let inbox = client.new_inbox();
    let handle = {
        let (acked, failed, wake) = (acked.clone(), failed.clone(), wake.clone());
        client
            .subscribe_with(&inbox, None, move |m| {
                // A no-responders status means the subject is not in a stream.
                let err = if m.headers.is_some() && m.payload.is_empty() {
                    Some("nats: no response from stream".to_string())
                } else if m.payload.windows(8).any(|w| w == b"\"error\":") {
                    puback_error(m.payload)
                } else {
                    None
                };
                let n = acked.fetch_add(1, Ordering::Relaxed);
                if let Some(e) = err {
                    if let Ok(mut f) = failed.lock() {
                        f.get_or_insert((n, e));
                    }
                }
                wake.notify_one();
            })
            .await?
    };
    client.flush().await?;
    let payload = vec![0u8; run.size];
    let mut sent = 0u64;
    while sent < share {
        let batch_start = sent;
        // As the reference, one subject per batch in multi-subject mode.
        let subject = run.publish_subject(batch_start);
        let n = run.pubbatch.min(share - sent);
        for _ in 0..n {
            let hdr = msg_id_headers(run, first + sent);
            if let Err(e) = client
                .publish_full(&subject, Some(&inbox), hdr.as_ref(), &payload)
                .await
            {
                fatal(format!("PubAsync error: {e}"));
            }
            sent += 1;
            if sent.is_multiple_of(64) {
                bar.store(sent, Ordering::Relaxed);
            }
            if !run.pubsleep.is_zero() {
                tokio::time::sleep(run.pubsleep).await;
            }
        }
        let deadline = tokio::time::Instant::now() + run.jstimeout;
        while acked.load(Ordering::Relaxed) < sent {
            if tokio::time::timeout_at(deadline, wake.notified())
                .await
                .is_err()
            {
                fatal("JS PubAsync did not receive an ack/error");
            }
        }
        if let Some((n, e)) = failed.lock().ok().and_then(|f| f.clone()) {
            fatal(format!(
                "PubAsyncFuture for message {} in batch not OK: {e}",
                n - batch_start
            ));
        }
        bar.store(sent, Ordering::Relaxed);
    }
    let _ = handle.unsubscribe();
    Ok(())
}

/// Status code of a message's `NATS/1.0 <code>` header line, if any.
fn status_of(m: &nats_common::client::Message) -> Option<u16> {
    m.status()
}

/// Fetches of `--consumerbatch` from the durable pull consumer, acking every message.
/// Gives up after a fetch that waited the whole `--jstimeout` for nothing.
#[allow(clippy::too_many_arguments)]
async fn pull_subscriber(
    client: &Client,
    mut sub: nats_common::client::Subscriber,
    inbox: &str,
    run: &Run,
    expect: u64,
    start: Instant,
    bar: Arc<AtomicU64>,
    fetch_timeout: Arc<AtomicBool>,
) -> Result<(Sample, u64)> {
    let next = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", run.stream, run.consumer);
    let expires = run
        .jstimeout
        .saturating_sub(Duration::from_millis(10))
        .max(Duration::from_millis(1));
    let mut got = 0u64;
    let mut last = start;
    while got < expect {
        let batch = run.consumerbatch.min(expect - got);
        let req = json!({"batch": batch, "expires": expires.as_nanos() as u64}).to_string();
        client
            .publish_with_reply(&next, inbox, req.as_bytes())
            .await?;
        let deadline = tokio::time::Instant::now() + run.jstimeout;
        let mut in_batch = 0u64;
        while in_batch < batch {
            let m = match tokio::time::timeout_at(deadline, sub.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(anyhow!("pull subscription ended")),
                Err(_) => break,
            };
            match status_of(&m) {
                // Heartbeat: keep waiting.
                Some(100) => continue,
                // No messages / request timeout / request ended: this fetch is over.
                Some(_) => break,
                None => {}
            }
            if !run.subsleep.is_zero() {
                tokio::time::sleep(run.subsleep).await;
            }
            if let Some(r) = &m.reply {
                if let Err(e) = client.publish(r, b"+ACK").await {
                    fatal(format!("Error sending a reply message: {e}"));
                }
            }
            in_batch += 1;
            got += 1;
            last = Instant::now();
            bar.store(got, Ordering::Relaxed);
        }
        if in_batch < batch {
            fetch_timeout.store(true, Ordering::Relaxed);
            if in_batch == 0 {
                log("Fetch timeout!");
                break;
            }
        }
    }
    Ok((
        Sample {
            msgs: got,
            bytes: got * run.size as u64,
            start,
            end: last,
        },
        expect,
    ))
}

/// A push consumer's subscription: counts in a read-loop callback, answers flow control,
/// acks when the consumer wants acks.
struct PushSub {
    count: Arc<AtomicU64>,
    last_ns: Arc<AtomicU64>,
    start: Instant,
    handle: nats_common::client::SubHandle,
    /// The ephemeral consumer of an ordered subscriber, deleted at the end.
    ephemeral: Option<String>,
}

impl PushSub {
    async fn start(
        client: &Client,
        run: &Arc<Run>,
        expect: u64,
        bar: Arc<AtomicU64>,
        timeout: Duration,
    ) -> PushSub {
        let start = Instant::now();
        let count = Arc::new(AtomicU64::new(0));
        let last_ns = Arc::new(AtomicU64::new(0));
        let ack = run.mode == SubMode::Push;
        let (deliver, group) = if ack {
            (
                format!("{}-DELIVERY", run.consumer),
                Some(format!("{}-GROUP", run.consumer)),
            )
        } else {
            (client.new_inbox(), None)
        };
        let cb = {
            let (count, last_ns, c) = (count.clone(), last_ns.clone(), client.clone());
            move |m: &nats_common::proto::Message<'_>| {
                if let Some(h) = m.headers {
                    if let Ok(h) = Headers::parse(h) {
                        if h.status == Some(100) {
                            // Flow control asks for an answer; a heartbeat may say the
                            // consumer is stalled and where to answer.
                            let to = m
                                .reply
                                .map(|r| String::from_utf8_lossy(r).into_owned())
                                .or_else(|| h.get("Nats-Consumer-Stalled").map(str::to_string));
                            if let Some(to) = to {
                                let _ = c.publish_now(&to, None, None, b"");
                            }
                            return;
                        }
                        if h.status.is_some() {
                            return;
                        }
                    }
                }
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                last_ns.store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                bar.store(n.min(expect), Ordering::Relaxed);
                if ack {
                    if let Some(r) = m.reply {
                        if let Ok(r) = std::str::from_utf8(r) {
                            let _ = c.publish_now(r, None, None, b"+ACK");
                        }
                    }
                }
            }
        };
        let handle = match client.subscribe_with(&deliver, group.as_deref(), cb).await {
            Ok(h) => h,
            Err(e) => fatal(format!("Error push durable Subscribe: {e}")),
        };
        if ack {
            let _ = handle.unsubscribe_after(expect);
        }
        let mut ephemeral = None;
        if !ack {
            // An ordered consumer: ephemeral, flow controlled, no acks, in memory.
            let cfg = json!({
                "deliver_subject": deliver,
                "deliver_policy": "all",
                "ack_policy": "none",
                "ack_wait": 22u64 * 3600 * 1_000_000_000,
                "max_deliver": 1,
                "filter_subject": run.subscribe_subject(),
                "replay_policy": "instant",
                "flow_control": true,
                "idle_heartbeat": 5_000_000_000u64,
                "num_replicas": 1,
                "mem_storage": true,
            });
            let subj = format!("$JS.API.CONSUMER.CREATE.{}", run.stream);
            let body = json!({"stream_name": run.stream, "config": cfg});
            match api(client, &subj, Some(body), timeout).await {
                Ok(v) => {
                    ephemeral = v.get("name").and_then(Value::as_str).map(str::to_string);
                }
                Err(e) => fatal(format!("Push consumer Subscribe error: {e}")),
            }
        }
        if let Err(e) = client.flush().await {
            fatal(format!("Error flushing: {e}"));
        }
        PushSub {
            count,
            last_ns,
            start,
            handle,
            ephemeral,
        }
    }

    /// Until every expected message came, or none came for `--jstimeout`.
    async fn wait(self, client: &Client, run: &Run, expect: u64) -> Result<(Sample, u64)> {
        let mut seen = 0u64;
        let mut idle = Instant::now();
        loop {
            let n = self.count.load(Ordering::Relaxed);
            if n >= expect {
                break;
            }
            if n != seen {
                seen = n;
                idle = Instant::now();
            } else if idle.elapsed() > run.jstimeout {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = self.count.load(Ordering::Relaxed).min(expect);
        let _ = self.handle.unsubscribe();
        if let Some(name) = &self.ephemeral {
            let subj = format!("$JS.API.CONSUMER.DELETE.{}.{name}", run.stream);
            let _ = api(client, &subj, None, run.jstimeout).await;
        }
        Ok((
            Sample {
                msgs: n,
                bytes: n * run.size as u64,
                start: self.start,
                end: self.start + Duration::from_nanos(self.last_ns.load(Ordering::Relaxed)),
            },
            expect,
        ))
    }
}
