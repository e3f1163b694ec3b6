//! `nats bench SUBJECT`: the single-command benchmark of the reference CLI (core pub/sub and
//! request/reply), with the reference's banner, report and CSV, plus latency percentiles.
//!
//! Publishers queue into the client's shared output buffer, which its writer task sends in
//! large batches; subscribers count inside a read-loop callback without copying messages.

use crate::output::{commas, go_duration, human_bytes, iec_bytes, log, parse_duration};
use crate::{conn, logf, Global};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use hdrhistogram::Histogram;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nats_common::client::{Client, Error};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The JetStream mode (`--js`) lives in its own file beside this one.
#[path = "bench_js.rs"]
mod js;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Subject to use for the benchmark
    pub subject: String,
    /// Number of concurrent publishers
    #[arg(long = "pub", default_value_t = 0)]
    pub pubs: usize,
    /// Number of concurrent subscribers
    #[arg(long = "sub", default_value_t = 0)]
    pub subs: usize,
    /// Number of messages to publish
    #[arg(long, default_value_t = 100_000, allow_negative_numbers = true)]
    pub msgs: i64,
    /// Size of the test messages
    #[arg(long, default_value = "128")]
    pub size: String,
    /// Save benchmark data to CSV file
    #[arg(long)]
    pub csv: Option<String>,
    /// Disable progress bar while publishing
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Enable progress bars (the default)
    #[arg(long, hide = true)]
    pub progress: bool,
    /// Request/Reply mode: publishers send requests waits for a reply
    #[arg(long)]
    pub request: bool,
    /// Request/Reply mode: subscribers send replies
    #[arg(long)]
    pub reply: bool,
    /// Sleep for the specified interval between publications
    #[arg(long, default_value = "0s")]
    pub pubsleep: String,
    /// Sleep for the specified interval before sending a reply
    #[arg(long, default_value = "0s")]
    pub subsleep: String,
    /// Subscribers join this queue group, so each message is received by one of them
    #[arg(long, value_name = "NAME")]
    pub queue: Option<String>,
    /// Multi-subject mode, each message is published on a subject that includes the publisher's message sequence number as a token
    #[arg(long)]
    pub multisubject: bool,
    /// The maximum number of subjects to use in multi-subject mode (0 means no max)
    #[arg(long, default_value_t = 0)]
    pub multisubjectmax: i64,
    /// Use JetStream
    #[arg(long)]
    pub js: bool,
    /// KV mode, subscribers get from the bucket and publishers put in the bucket (not supported)
    #[arg(long, hide = true)]
    pub kv: bool,
    /// JetStream storage (memory/file) for the "benchstream" stream
    #[arg(long, default_value = "memory", value_parser = ["memory", "file"])]
    pub storage: String,
    /// Number of stream replicas for the "benchstream" stream
    #[arg(long, default_value_t = 1)]
    pub replicas: i64,
    /// The maximum size of the stream or KV bucket in bytes
    #[arg(long, default_value = "1GB")]
    pub maxbytes: String,
    /// When set to something else than "benchstream": use (and do not attempt to define) the specified stream when creating durable subscribers. Otherwise define and use the "benchstream" stream
    #[arg(long, default_value = "benchstream")]
    pub stream: String,
    #[arg(long, hide = true)]
    pub bucket: Option<String>,
    /// Specify the durable consumer name to use
    #[arg(long, default_value = "natscli-bench")]
    pub consumer: String,
    /// Use a shared durable explicitly acknowledged JS pull consumer rather than individual ephemeral consumers
    #[arg(long)]
    pub pull: bool,
    /// Use a shared durable explicitly acknowledged JS push consumer with a queue group rather than individual ephemeral consumers
    #[arg(long)]
    pub push: bool,
    /// Synchronously publish to the stream
    #[arg(long)]
    pub syncpub: bool,
    /// Sets the batch size for JS asynchronous publishing
    #[arg(long, default_value_t = 100)]
    pub pubbatch: i64,
    /// Sets the batch size for the JS durable pull consumer, or the max ack pending value for the JS durable push consumer
    #[arg(long, alias = "pullbatch", default_value_t = 100)]
    pub consumerbatch: i64,
    /// Timeout for JS operations
    #[arg(long, default_value = "30s")]
    pub jstimeout: String,
    /// Purge the stream before running
    #[arg(long)]
    pub purge: bool,
    /// Sets a message id in the header to use JS Publish de-duplication
    #[arg(long)]
    pub dedup: bool,
    /// Sets the duration of the stream's deduplication functionality
    #[arg(long, default_value = "2m")]
    pub dedupwindow: String,
    #[arg(long, hide = true)]
    pub history: Option<String>,
    #[arg(long, hide = true)]
    pub retries: Option<String>,
}

/// `128`, `1K`, `2KB`, `1MiB`, `1.5k`: 1024-based.
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| anyhow!("invalid size {s:?}"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        _ => bail!("invalid size {s:?}"),
    };
    Ok((n * mult) as usize)
}

/// One client's measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub msgs: u64,
    pub bytes: u64,
    pub start: Instant,
    pub end: Instant,
}

impl Sample {
    fn secs(&self) -> f64 {
        self.end
            .saturating_duration_since(self.start)
            .as_secs_f64()
            .max(1e-9)
    }
    pub fn rate(&self) -> i64 {
        (self.msgs as f64 / self.secs()) as i64
    }
    pub fn throughput(&self) -> f64 {
        self.bytes as f64 / self.secs()
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} msgs/sec ~ {}/sec",
            commas(self.rate()),
            human_bytes(self.throughput())
        )
    }
}

fn combine(samples: &[Sample]) -> Option<Sample> {
    let first = samples.first()?;
    Some(samples.iter().fold(
        Sample {
            msgs: 0,
            bytes: 0,
            start: first.start,
            end: first.end,
        },
        |acc, s| Sample {
            msgs: acc.msgs + s.msgs,
            bytes: acc.bytes + s.bytes,
            start: acc.start.min(s.start),
            end: acc.end.max(s.end),
        },
    ))
}

fn statistics(samples: &[Sample]) -> String {
    let rates: Vec<i64> = samples.iter().map(Sample::rate).collect();
    let min = rates.iter().copied().min().unwrap_or(0);
    let max = rates.iter().copied().max().unwrap_or(0);
    let n = rates.len().max(1) as f64;
    let mean = rates.iter().map(|r| *r as f64).sum::<f64>() / n;
    let var = rates
        .iter()
        .map(|r| (*r as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    format!(
        "min {} | avg {} | max {} | stddev {} msgs",
        commas(min),
        commas(mean as i64),
        commas(max),
        commas(var.sqrt() as i64)
    )
}

/// The report block in the reference layout (without the surrounding blank lines).
pub fn report(pubs: &[Sample], subs: &[Sample]) -> String {
    let mut out = String::new();
    let mut indent = "";
    if !pubs.is_empty() && !subs.is_empty() {
        let all: Vec<Sample> = pubs.iter().chain(subs).copied().collect();
        if let Some(s) = combine(&all) {
            out.push_str(&format!("NATS Pub/Sub stats: {s}\n"));
        }
        indent = " ";
    }
    for (label, group) in [("Pub", pubs), ("Sub", subs)] {
        let Some(total) = combine(group) else {
            continue;
        };
        out.push_str(&format!("{indent}{label} stats: {total}\n"));
        if group.len() > 1 {
            for (i, s) in group.iter().enumerate() {
                out.push_str(&format!("{indent} [{}] {s} ({} msgs)\n", i + 1, s.msgs));
            }
            out.push_str(&format!("{indent} {}\n", statistics(group)));
        }
    }
    out
}

pub fn csv(run_id: &str, pubs: &[Sample], subs: &[Sample]) -> String {
    let mut out =
        String::from("#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs\n");
    for (prefix, group) in [("S", subs), ("P", pubs)] {
        for (i, s) in group.iter().enumerate() {
            out.push_str(&format!(
                "{run_id},{prefix}{i},{},{},{},{:.6},{:.6}\n",
                s.msgs,
                s.bytes,
                s.rate(),
                s.throughput(),
                s.secs()
            ));
        }
    }
    out
}

fn new_hist() -> Histogram<u64> {
    // 1ns .. 1 hour with 3 significant digits; creation cannot fail with these bounds.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("3 significant figures is valid"))
}

fn percentiles(label: &str, h: &Histogram<u64>) -> String {
    let d = |q: f64| go_duration(Duration::from_nanos(h.value_at_quantile(q)));
    format!(
        "{label}: p50 {} | p90 {} | p99 {} | p99.9 {} | max {} ({} samples)",
        d(0.5),
        d(0.9),
        d(0.99),
        d(0.999),
        go_duration(Duration::from_nanos(h.max())),
        commas(h.len() as i64)
    )
}

/// Columns of the terminal on stderr, if it is one.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ only fills the winsize struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// A client's bar with its position and "finished" flag.
type Bar = (ProgressBar, Arc<AtomicU64>, Arc<AtomicBool>);

/// A progress line per client, updated from shared counters by one ticker.
struct Progress {
    multi: MultiProgress,
    bars: Mutex<Vec<Bar>>,
    width: usize,
}

impl Progress {
    fn new(enabled: bool) -> Arc<Progress> {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let width = terminal_width()
            .map(|w| w.saturating_sub(30).max(10))
            .unwrap_or(80);
        Arc::new(Progress {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(Vec::new()),
            width,
        })
    }

    fn add(&self, state: &str, total: u64) -> (Arc<AtomicU64>, Arc<AtomicBool>) {
        let pb = self.multi.add(ProgressBar::new(total));
        let tmpl = format!(
            "{{prefix}} {{elapsed:>5}} [{{bar:{}}}] {{percent:>3}}%",
            self.width
        );
        if let Ok(style) = ProgressStyle::with_template(&tmpl) {
            pb.set_style(style.progress_chars("=>-"));
        }
        pb.set_prefix(state.to_string());
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        if let Ok(mut b) = self.bars.lock() {
            b.push((pb, count.clone(), done.clone()));
        }
        (count, done)
    }

    fn tick(&self) {
        if let Ok(bars) = self.bars.lock() {
            for (pb, count, done) in bars.iter() {
                pb.set_position(count.load(Ordering::Relaxed));
                if done.load(Ordering::Relaxed) && !pb.is_finished() {
                    pb.set_prefix("Finished  ");
                    pb.finish();
                }
            }
        }
    }

    fn spawn_ticker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let p = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                p.tick();
            }
        })
    }
}

/// A subscriber's latencies, recorded without locking and merged into the shared histogram
/// in batches; whatever is left is merged when the subscription's callback is dropped.
struct LatencyBatch {
    local: Histogram<u64>,
    shared: Arc<Mutex<Histogram<u64>>>,
}

impl LatencyBatch {
    fn merge(&mut self) {
        if self.local.is_empty() {
            return;
        }
        if let Ok(mut g) = self.shared.lock() {
            let _ = g.add(&self.local);
        }
        self.local.reset();
    }
}

impl Drop for LatencyBatch {
    fn drop(&mut self) {
        self.merge();
    }
}

struct SubCounter {
    count: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

fn publish_subject(a: &BenchArgs, seq: u64) -> Option<String> {
    if !a.multisubject {
        return None;
    }
    let n = if a.multisubjectmax > 0 {
        seq % a.multisubjectmax as u64
    } else {
        seq
    };
    Some(format!("{}.{n}", a.subject))
}

fn subscribe_subject(a: &BenchArgs) -> String {
    if a.multisubject {
        format!("{}.>", a.subject)
    } else {
        a.subject.clone()
    }
}

/// Messages per publisher: the remainder goes to the first ones.
pub fn split(total: u64, pubs: usize) -> Vec<u64> {
    let pubs = pubs.max(1) as u64;
    (0..pubs)
        .map(|i| total / pubs + u64::from(i < total % pubs))
        .collect()
}

pub async fn run(a: BenchArgs, g: &Global) -> Result<()> {
    if a.kv {
        bail!("KV benchmarks are not supported by this implementation");
    }
    if a.msgs <= 0 {
        bail!("number of messages should be greater than 0");
    }
    if a.js {
        return js::run(a, g).await;
    }
    if a.pubs == 0 && a.subs == 0 {
        log("You must have at least one publisher or at least one subscriber... try adding --pub 1 and/or --sub 1 to the arguments");
        std::process::exit(1);
    }
    let size = parse_size(&a.size)?;
    let pubsleep = parse_duration(&a.pubsleep)?;
    let subsleep = parse_duration(&a.subsleep)?;
    let msgs = a.msgs as u64;
    let reqrep = a.request || a.reply;
    let settings = format!(
        "subject={}, multisubject={}, multisubjectmax={}, {}msgs={}, msgsize={}, pubs={}, subs={}, pubsleep={}, subsleep={}",
        a.subject,
        a.multisubject,
        a.multisubjectmax,
        if reqrep {
            format!("request={}, reply={}, ", a.request, a.reply)
        } else {
            String::new()
        },
        commas(msgs as i64),
        iec_bytes(size as u64),
        a.pubs,
        a.subs,
        go_duration(pubsleep),
        go_duration(subsleep)
    );
    let opts = conn::options(g)?;
    if reqrep {
        log("Benchmark in request-reply mode");
        logf!("Starting request-reply benchmark [{settings}]");
        return run_reqrep(&a, opts, size, msgs, pubsleep, subsleep).await;
    }
    logf!("Starting Core NATS pub/sub benchmark [{settings}]");
    let base = Instant::now();
    let progress = Progress::new(!a.no_progress);
    let ticker = progress.spawn_ticker();

    // Subscribers first, each on its own connection, ready before any publisher starts.
    // In a queue group each message goes to one member: the group as a whole expects `msgs`.
    let queue = a.queue.clone();
    let expected = if queue.is_some() {
        split(msgs, a.subs)
    } else {
        vec![msgs; a.subs]
    };
    let mut subs = Vec::new();
    let hist = Arc::new(Mutex::new(new_hist()));
    for &share in &expected {
        let client = conn::connect_with(opts.clone()).await?;
        match queue.as_deref() {
            Some(q) => logf!(
                "Starting subscriber in queue group {q}, expecting about {} messages",
                commas(share as i64)
            ),
            None => logf!(
                "Starting subscriber, expecting {} messages",
                commas(msgs as i64)
            ),
        }
        let (bar_count, bar_done) = progress.add("Receiving ", share);
        let counter = Arc::new(SubCounter {
            count: AtomicU64::new(0),
            first_ns: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
        });
        let subject = subscribe_subject(&a);
        let handle = if subsleep.is_zero() {
            let c = counter.clone();
            let mut batch = LatencyBatch {
                local: new_hist(),
                shared: hist.clone(),
            };
            let handle = client
                .subscribe_with(&subject, queue.as_deref(), move |m| {
                    let now = base.elapsed().as_nanos() as u64;
                    let n = c.count.fetch_add(1, Ordering::Relaxed) + 1;
                    if n == 1 {
                        c.first_ns.store(now, Ordering::Relaxed);
                    }
                    c.last_ns.store(now, Ordering::Relaxed);
                    bar_count.store(n.min(share), Ordering::Relaxed);
                    if m.payload.len() >= 8 {
                        let mut ts = [0u8; 8];
                        ts.copy_from_slice(&m.payload[..8]);
                        let sent = u64::from_le_bytes(ts);
                        if sent <= now {
                            let _ = batch.local.record(now - sent);
                        }
                    }
                    // Hand the latencies over in batches to keep the shared lock rare.
                    if n >= msgs || batch.local.len() >= 4096 {
                        batch.merge();
                    }
                    if n >= share {
                        bar_done.store(true, Ordering::Relaxed);
                    }
                })
                .await?;
            Some(handle)
        } else {
            let mut sub = client
                .queue_subscribe_opt(&subject, queue.as_deref())
                .await?;
            let c = counter.clone();
            tokio::spawn(async move {
                while let Some(_m) = sub.next().await {
                    tokio::time::sleep(subsleep).await;
                    let now = base.elapsed().as_nanos() as u64;
                    let n = c.count.fetch_add(1, Ordering::Relaxed) + 1;
                    if n == 1 {
                        c.first_ns.store(now, Ordering::Relaxed);
                    }
                    c.last_ns.store(now, Ordering::Relaxed);
                    bar_count.store(n.min(share), Ordering::Relaxed);
                    if n >= share {
                        bar_done.store(true, Ordering::Relaxed);
                    }
                }
            });
            None
        };
        client.flush().await?;
        subs.push((client, counter, handle));
    }

    // Publishers: connect all, then start together.
    let shares = if a.pubs > 0 {
        split(msgs, a.pubs)
    } else {
        Vec::new()
    };
    let mut pubs = Vec::new();
    let start_gate = Arc::new(tokio::sync::Barrier::new(a.pubs + 1));
    let args = Arc::new(a);
    for share in shares {
        let client = conn::connect_with(opts.clone()).await?;
        logf!(
            "Starting publisher, publishing {} messages",
            commas(share as i64)
        );
        let (bar_count, bar_done) = progress.add("Publishing", share);
        let gate = start_gate.clone();
        let args = args.clone();
        pubs.push(tokio::spawn(async move {
            gate.wait().await;
            let start = Instant::now();
            let mut payload = vec![0u8; size];
            for i in 0..share {
                if size >= 8 {
                    let now = base.elapsed().as_nanos() as u64;
                    payload[..8].copy_from_slice(&now.to_le_bytes());
                }
                match publish_subject(&args, i) {
                    Some(s) => client.publish(&s, &payload).await?,
                    None => client.publish(&args.subject, &payload).await?,
                }
                if i % 256 == 0 {
                    bar_count.store(i, Ordering::Relaxed);
                }
                if !pubsleep.is_zero() {
                    tokio::time::sleep(pubsleep).await;
                }
            }
            client.flush_timeout(Duration::from_secs(60)).await?;
            let end = Instant::now();
            bar_count.store(share, Ordering::Relaxed);
            bar_done.store(true, Ordering::Relaxed);
            client.close().await;
            Ok::<Sample, Error>(Sample {
                msgs: share,
                bytes: share * size as u64,
                start,
                end,
            })
        }));
    }
    start_gate.wait().await;
    let mut pub_samples = Vec::new();
    for p in pubs {
        pub_samples.push(p.await.map_err(|e| anyhow!("publisher failed: {e}"))??);
    }

    // Wait for subscribers; give up on one that stops making progress (messages lost).
    let mut last_total = u64::MAX;
    let mut idle_since = Instant::now();
    loop {
        let counts: Vec<u64> = subs
            .iter()
            .map(|(_, c, _)| c.count.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let complete = if queue.is_some() {
            total >= msgs
        } else {
            counts.iter().all(|&c| c >= msgs)
        };
        if complete {
            break;
        }
        if total != last_total {
            last_total = total;
            idle_since = Instant::now();
        } else if idle_since.elapsed() > Duration::from_secs(10) {
            if let Some(q) = &queue {
                logf!(
                    "Queue group {q} received only {} of {} messages",
                    commas(total as i64),
                    commas(msgs as i64)
                );
            }
            for (i, c) in counts.iter().enumerate() {
                if queue.is_none() && *c < msgs {
                    logf!(
                        "Subscriber {} received only {} of {} messages",
                        i + 1,
                        commas(*c as i64),
                        commas(msgs as i64)
                    );
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sub_samples: Vec<Sample> = subs
        .iter()
        .map(|(_, c, _)| {
            let n = c.count.load(Ordering::Relaxed).min(msgs);
            Sample {
                msgs: n,
                bytes: n * size as u64,
                start: base + Duration::from_nanos(c.first_ns.load(Ordering::Relaxed)),
                end: base + Duration::from_nanos(c.last_ns.load(Ordering::Relaxed)),
            }
        })
        .collect();
    for (client, _, handle) in &subs {
        // Dropping the callback merges the latencies it has not handed over yet.
        if let Some(h) = handle {
            let _ = h.unsubscribe();
        }
        client.close().await;
    }
    progress.tick();
    ticker.abort();
    let _ = progress.multi.clear();

    println!();
    print!("{}", report(&pub_samples, &sub_samples));
    println!();
    if size >= 8 && !sub_samples.is_empty() && !pub_samples.is_empty() {
        if let Ok(h) = hist.lock() {
            if !h.is_empty() {
                println!("{}", percentiles("Latency publish to receive", &h));
                println!();
            }
        }
    }
    if let Some(path) = &args.csv {
        let data = csv(&nats_common::nuid::next(), &pub_samples, &sub_samples);
        std::fs::write(path, data).map_err(|e| anyhow!("could not write {path}: {e}"))?;
        logf!("Saved metric data in csv file {path}");
    }
    Ok(())
}

async fn run_reqrep(
    a: &BenchArgs,
    opts: nats_common::client::Options,
    size: usize,
    msgs: u64,
    pubsleep: Duration,
    subsleep: Duration,
) -> Result<()> {
    let progress = Progress::new(!a.no_progress);
    let ticker = progress.spawn_ticker();
    let mut repliers: Vec<Client> = Vec::new();
    if a.reply {
        for _ in 0..a.subs {
            let client = conn::connect_with(opts.clone()).await?;
            log("Starting replier, hit control-c to stop");
            let mut sub = client
                .queue_subscribe(&subscribe_subject(a), "bench-reply")
                .await?;
            let c = client.clone();
            tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    if !subsleep.is_zero() {
                        tokio::time::sleep(subsleep).await;
                    }
                    if let Some(r) = &m.reply {
                        let _ = c.publish(r, b"").await;
                    }
                }
            });
            client.flush().await?;
            repliers.push(client);
        }
    }
    if !a.request || a.pubs == 0 {
        // Only serving: run until interrupted.
        let _ = tokio::signal::ctrl_c().await;
        return Ok(());
    }
    let mut tasks = Vec::new();
    let hist = Arc::new(Mutex::new(new_hist()));
    let args = Arc::new((a.subject.clone(), a.multisubject, a.multisubjectmax));
    for share in split(msgs, a.pubs) {
        let client = conn::connect_with(opts.clone()).await?;
        logf!(
            "Starting publisher, publishing {} messages",
            commas(share as i64)
        );
        let (bar_count, bar_done) = progress.add("Publishing", share);
        let h = hist.clone();
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let timeout = client.options().request_timeout;
            let payload = vec![0u8; size];
            let mut local = new_hist();
            let start = Instant::now();
            let mut ok = 0u64;
            for i in 0..share {
                let subject = if args.1 {
                    let n = if args.2 > 0 { i % args.2 as u64 } else { i };
                    format!("{}.{n}", args.0)
                } else {
                    args.0.clone()
                };
                let t0 = Instant::now();
                match client.request_full(&subject, None, &payload, timeout).await {
                    Ok(_) => {
                        ok += 1;
                        let _ = local.record(t0.elapsed().as_nanos() as u64);
                    }
                    Err(e @ (Error::NoResponders | Error::Closed)) => return Err(e),
                    Err(_) => {}
                }
                bar_count.store(i + 1, Ordering::Relaxed);
                if !pubsleep.is_zero() {
                    tokio::time::sleep(pubsleep).await;
                }
            }
            let end = Instant::now();
            bar_done.store(true, Ordering::Relaxed);
            if let Ok(mut g) = h.lock() {
                let _ = g.add(&local);
            }
            client.close().await;
            Ok::<Sample, Error>(Sample {
                msgs: ok,
                bytes: ok * size as u64,
                start,
                end,
            })
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.push(t.await.map_err(|e| anyhow!("requester failed: {e}"))??);
    }
    for r in &repliers {
        r.close().await;
    }
    progress.tick();
    ticker.abort();
    let _ = progress.multi.clear();
    println!();
    print!("{}", report(&samples, &[]));
    println!();
    if let Ok(h) = hist.lock() {
        if !h.is_empty() {
            println!("{}", percentiles("Request latency", &h));
            println!();
        }
    }
    if let Some(path) = &a.csv {
        let data = csv(&nats_common::nuid::next(), &samples, &[]);
        std::fs::write(path, data).map_err(|e| anyhow!("could not write {path}: {e}"))?;
        logf!("Saved metric data in csv file {path}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(msgs: u64, ms: u64, base: Instant) -> Sample {
        Sample {
            msgs,
            bytes: msgs * 128,
            start: base,
            end: base + Duration::from_millis(ms),
        }
    }

    #[test]
    fn sizes_and_split() {
        assert_eq!(parse_size("128").unwrap(), 128);
        assert_eq!(parse_size("1K").unwrap(), 1024);
        assert_eq!(parse_size("2KB").unwrap(), 2048);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("1kb").unwrap(), 1024);
        assert!(parse_size("abc").is_err());
        assert!(parse_size("1X").is_err());
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(5, 1), vec![5]);
    }

    #[test]
    fn report_layout() {
        let b = Instant::now();
        let pubs = [sample(10000, 40, b), sample(10000, 40, b)];
        let subs = [sample(20000, 40, b)];
        let r = report(&pubs, &subs);
        let lines: Vec<&str> = r.lines().collect();
        assert!(lines[0].starts_with("NATS Pub/Sub stats: 1,000,000 msgs/sec ~ "));
        assert!(lines[1].starts_with(" Pub stats: 500,000 msgs/sec ~ 61.04 MB/sec"));
        assert!(
            lines[2].starts_with("  [1] 250,000 msgs/sec ~ ")
                && lines[2].ends_with(" (10000 msgs)")
        );
        assert_eq!(
            lines[4],
            "  min 250,000 | avg 250,000 | max 250,000 | stddev 0 msgs"
        );
        assert!(lines[5].starts_with(" Sub stats: 500,000 msgs/sec"));
        assert_eq!(lines.len(), 6);
        let only = report(&pubs[..1], &[]);
        assert!(only.starts_with("Pub stats: 250,000 msgs/sec"));
        let c = csv("RUN", &pubs[..1], &subs);
        let rows: Vec<&str> = c.lines().collect();
        assert_eq!(
            rows[0],
            "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs"
        );
        assert_eq!(
            rows[1],
            "RUN,S0,20000,2560000,500000,64000000.000000,0.040000"
        );
        assert!(rows[2].starts_with("RUN,P0,10000,1280000,250000,"));
    }
}
