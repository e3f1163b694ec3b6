//! `nats stream add|ls|info|rm|purge|get`.

use crate::js::{self, confirm, go_nanos, local_rfc3339, local_stamp, since, title, utc_stamp};
use crate::output::{commas, iec_bytes, indent_json, print};
use crate::table::Table;
use crate::Global;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use nats_common::client::jetstream::{JetStream, StreamInfo};
use nats_common::monitor::parse_rfc3339;
use serde_json::{json, Value};

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a new Stream
    #[command(visible_aliases = ["create", "new"])]
    Add(Box<AddArgs>),
    /// List all known Streams
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Stream information
    #[command(visible_aliases = ["nfo", "i"])]
    Info(InfoArgs),
    /// Removes a Stream
    #[command(visible_aliases = ["delete", "del"])]
    Rm(RmArgs),
    /// Purge a Stream without deleting it
    Purge(PurgeArgs),
    /// Retrieves a specific message from a Stream
    Get(GetArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Stream name
    pub stream: Option<String>,
    /// Subjects that are consumed by the Stream
    #[arg(long, value_delimiter = ',')]
    pub subjects: Vec<String>,
    /// Storage backend to use (file, memory)
    #[arg(long)]
    pub storage: Option<String>,
    /// Defines a retention policy (limits, interest, workq)
    #[arg(long)]
    pub retention: Option<String>,
    /// Defines the discard policy (new, old)
    #[arg(long)]
    pub discard: Option<String>,
    /// Maximum amount of messages to keep
    #[arg(long = "max-msgs", allow_hyphen_values = true)]
    pub max_msgs: Option<i64>,
    /// Maximum bytes to keep
    #[arg(long = "max-bytes", allow_hyphen_values = true)]
    pub max_bytes: Option<String>,
    /// Maximum age of messages to keep
    #[arg(long = "max-age", allow_hyphen_values = true)]
    pub max_age: Option<String>,
    /// Maximum size any 1 message may be
    #[arg(long = "max-msg-size", allow_hyphen_values = true)]
    pub max_msg_size: Option<String>,
    /// Maximum amount of messages to keep per subject
    #[arg(long = "max-msgs-per-subject", allow_hyphen_values = true)]
    pub max_msgs_per_subject: Option<i64>,
    /// Window size for duplicate tracking
    #[arg(long = "dupe-window")]
    pub dupe_window: Option<String>,
    /// When clustered, how many replicas of the data to create
    #[arg(long)]
    pub replicas: Option<i64>,
    /// Sets a contextual description for the stream
    #[arg(long)]
    pub description: Option<String>,
    /// Accept default values for all prompts
    #[arg(long)]
    pub defaults: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Show just the stream names
    #[arg(short = 'n', long)]
    pub names: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Stream to retrieve information for
    pub stream: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stream name
    pub stream: String,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    /// Stream name
    pub stream: String,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Only purge messages matching this subject
    #[arg(long)]
    pub subject: Option<String>,
    /// Purge up to but not including a specific message sequence
    #[arg(long)]
    pub seq: Option<u64>,
    /// Keep a certain number of messages after the purge
    #[arg(long)]
    pub keep: Option<u64>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Stream name
    pub stream: String,
    /// Message Sequence to retrieve
    pub id: Option<u64>,
    /// Retrieves the message for a specific subject
    #[arg(short = 'S', long = "last-for")]
    pub last_for: Option<String>,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

pub async fn run(cmd: Cmd, g: &Global) -> Result<()> {
    match cmd {
        Cmd::Add(a) => add(*a, g).await,
        Cmd::Ls(a) => ls(a, g).await,
        Cmd::Info(a) => {
            let js = js::connect(g).await?;
            let info = js
                .stream_info(&a.stream)
                .await
                .map_err(|e| anyhow!("could not request Stream info: {e}"))?;
            show(&info, a.json);
            if !a.json {
                println!();
            }
            Ok(())
        }
        Cmd::Rm(a) => {
            if !a.force && !confirm(&format!("Really delete Stream {}", a.stream)) {
                return Ok(());
            }
            let js = js::connect(g).await?;
            js.stream_info(&a.stream)
                .await
                .map_err(|e| anyhow!("could not remove Stream: {e}"))?;
            js.delete_stream(&a.stream)
                .await
                .map_err(|e| anyhow!("could not remove Stream: {e}"))
        }
        Cmd::Purge(a) => purge(a, g).await,
        Cmd::Get(a) => get(a, g).await,
    }
}

fn need(defaults: bool, what: &str, flag: &str) -> Result<()> {
    if defaults {
        return Ok(());
    }
    bail!("{what} is required, set it with --{flag} or accept defaults with --defaults")
}

async fn add(a: AddArgs, g: &Global) -> Result<()> {
    check(&a.storage, &["file", "f", "memory", "m"])?;
    check(&a.retention, &["limits", "interest", "workq", "work"])?;
    check(&a.discard, &["new", "old"])?;
    let Some(name) = a.stream.clone() else {
        bail!("Stream Name is required in non-interactive mode");
    };
    let mut subjects: Vec<String> = a
        .subjects
        .iter()
        .flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    if subjects.is_empty() {
        need(a.defaults, "Subjects", "subjects")?;
        subjects.push(name.clone());
    }
    let storage = match a.storage.as_deref() {
        Some("memory") | Some("m") => "memory",
        Some(_) => "file",
        None => {
            need(a.defaults, "Storage", "storage")?;
            "file"
        }
    };
    let retention = match a.retention.as_deref() {
        Some("interest") => "interest",
        Some("workq") | Some("work") => "workqueue",
        _ => "limits",
    };
    let discard = a.discard.as_deref().unwrap_or("old");
    let max_msgs = match a.max_msgs {
        Some(n) if n > 0 => n,
        _ => -1,
    };
    let max_per = match a.max_msgs_per_subject {
        Some(n) if n > 0 => n,
        _ => -1,
    };
    let max_bytes = match &a.max_bytes {
        Some(s) => js::parse_bytes(s).map(|n| if n <= 0 { -1 } else { n })?,
        None => -1,
    };
    let max_msg_size = match &a.max_msg_size {
        Some(s) => js::parse_bytes(s).map(|n| if n <= 0 { -1 } else { n })?,
        None => -1,
    };
    let max_age = match a.max_age.as_deref() {
        None | Some("-1") | Some("") => std::time::Duration::ZERO,
        Some(s) => {
            js::parse_duration(s).map_err(|e| anyhow!("invalid maximum age limit format: {e}"))?
        }
    };
    let dupe = match a.dupe_window.as_deref() {
        Some(s) => {
            js::parse_duration(s).map_err(|e| anyhow!("invalid duplicate window format: {e}"))?
        }
        None => {
            let two = std::time::Duration::from_secs(120);
            if !max_age.is_zero() && max_age < two {
                max_age
            } else {
                two
            }
        }
    };
    let replicas = a.replicas.unwrap_or(1);
    if replicas <= 0 {
        bail!("replicas should be >= 1");
    }
    let mut cfg = json!({
        "name": name,
        "subjects": subjects,
        "retention": retention,
        "max_consumers": -1,
        "max_msgs": max_msgs,
        "max_bytes": max_bytes,
        "max_age": js_nanos(max_age),
        "max_msgs_per_subject": max_per,
        "max_msg_size": max_msg_size,
        "discard": discard,
        "storage": storage,
        "num_replicas": replicas,
        "duplicate_window": js_nanos(dupe),
    });
    if let Some(d) = &a.description {
        cfg["description"] = json!(d);
    }
    let js = js::connect(g).await?;
    let info = js
        .create_stream(&cfg)
        .await
        .map_err(|e| anyhow!("could not create Stream: {e}"))?;
    if !a.json {
        print(format!("Stream {name} was created\n\n"));
    }
    show(&info, a.json);
    Ok(())
}

/// A flag limited to some values, refused with the reference's message.
pub fn check(v: &Option<String>, allowed: &[&str]) -> Result<()> {
    match v {
        Some(v) => crate::server::one_of(v, allowed).map(|_| ()),
        None => Ok(()),
    }
}

fn js_nanos(d: std::time::Duration) -> i64 {
    nats_common::client::jetstream::nanos(d)
}

async fn ls(a: LsArgs, g: &Global) -> Result<()> {
    let js = js::connect(g).await?;
    if a.names || a.json {
        let names = js
            .stream_names(None)
            .await
            .map_err(|e| anyhow!("could not list streams: {e}"))?;
        if a.json {
            print(format!("{}\n", indent_json(&json!(names).to_string())));
            return Ok(());
        }
        for n in names {
            println!("{n}");
        }
        return Ok(());
    }
    let mut streams = js
        .streams()
        .await
        .map_err(|e| anyhow!("could not list streams: {e}"))?;
    if streams.is_empty() {
        println!("No Streams defined");
        return Ok(());
    }
    // Smallest first, as the reference CLI orders them.
    streams.sort_by_key(|s| s.state.bytes);
    let mut t = Table::new("Streams");
    t.headers(&[
        "Name",
        "Description",
        "Created",
        "Messages",
        "Size",
        "Last Message",
    ]);
    for s in &streams {
        t.row(vec![
            s.config.name.clone(),
            s.config.description.clone().unwrap_or_default(),
            local_stamp(&s.created),
            commas(s.state.messages as i64),
            iec_bytes(s.state.bytes),
            since(&s.state.last_ts),
        ]);
    }
    print(t.render());
    Ok(())
}

async fn purge(a: PurgeArgs, g: &Global) -> Result<()> {
    if !a.force && !confirm(&format!("Really purge Stream {}", a.stream)) {
        return Ok(());
    }
    let js = js::connect(g).await?;
    js.stream_info(&a.stream)
        .await
        .map_err(|e| anyhow!("could not purge Stream: {e}"))?;
    let mut req = json!({});
    if a.seq.is_some() && a.keep.is_some() {
        bail!("sequence and keep cannot be combined when purghing");
    }
    if let Some(s) = &a.subject {
        req["filter"] = json!(s);
    }
    if let Some(s) = a.seq {
        req["seq"] = json!(s);
    }
    if let Some(k) = a.keep {
        req["keep"] = json!(k);
    }
    let req = if req.as_object().is_some_and(|o| o.is_empty()) {
        Value::Null
    } else {
        req
    };
    js.purge_stream(&a.stream, &req)
        .await
        .map_err(|e| anyhow!("could not purge Stream: {e}"))?;
    let info = js
        .stream_info(&a.stream)
        .await
        .map_err(|e| anyhow!("could not purge Stream: {e}"))?;
    show(&info, a.json);
    Ok(())
}

async fn get(a: GetArgs, g: &Global) -> Result<()> {
    let js: JetStream = js::connect(g).await?;
    let (req, id) = match (a.id, &a.last_for) {
        (Some(seq), _) => (json!({ "seq": seq }), seq as i64),
        (None, Some(subj)) => (json!({ "last_by_subj": subj }), -1),
        (None, None) => bail!("no ID or subject specified"),
    };
    js.stream_info(&a.stream)
        .await
        .map_err(|e| anyhow!("could not load Stream {}: {e}", a.stream))?;
    let m = js
        .get_msg(&a.stream, &req)
        .await
        .map_err(|e| anyhow!("could not retrieve {}#{id}: {e}", a.stream))?;
    if a.json {
        print(format!("{}\n", indent_json(&m.raw.to_string())));
        return Ok(());
    }
    let when = parse_rfc3339(&m.time)
        .map(|t| t.go_string())
        .unwrap_or_else(|| m.time.clone());
    let mut out = format!(
        "Item: {}#{} received {when} on Subject {}\n\n",
        a.stream, m.seq, m.subject
    );
    if let Some(h) = &m.headers {
        if !h.entries.is_empty() {
            out.push_str("Headers:\n");
            for (k, v) in &h.entries {
                out.push_str(&format!("  {k}: {v}\n"));
            }
            out.push('\n');
        }
    }
    out.push_str(&String::from_utf8_lossy(&m.data));
    out.push_str("\n\n");
    print(out);
    Ok(())
}

/// Prints a stream's info as `nats stream info` does (or its JSON).
pub fn show(info: &StreamInfo, json_out: bool) {
    if json_out {
        print(format!("{}\n", indent_json(&info.raw.to_string())));
        return;
    }
    let c = &info.config;
    let s = &info.state;
    let mut o = format!(
        "Information for Stream {} created {}\n\nConfiguration:\n\n",
        c.name,
        local_rfc3339(&info.created)
    );
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>21}: {v}\n"));
    if let Some(d) = c.description.as_deref().filter(|d| !d.is_empty()) {
        row("Description", d.to_string());
    }
    if !c.subjects.is_empty() {
        row("Subjects", c.subjects.join(", "));
    }
    row("Acknowledgements", (!c.no_ack).to_string());
    row(
        "Retention",
        format!("{} - {}", title(&c.storage), title(&c.retention)),
    );
    row("Replicas", c.num_replicas.to_string());
    row("Discard Policy", title(&c.discard));
    row("Duplicate Window", go_nanos(c.duplicate_window));
    let unlimited = |n: i64, f: &dyn Fn(i64) -> String| {
        if n <= 0 {
            "unlimited".to_string()
        } else {
            f(n)
        }
    };
    row("Maximum Messages", unlimited(c.max_msgs, &|n| commas(n)));
    if c.max_msgs_per_subject > 0 {
        row("Maximum Per Subject", commas(c.max_msgs_per_subject));
    }
    row(
        "Maximum Bytes",
        unlimited(c.max_bytes, &|n| iec_bytes(n as u64)),
    );
    row(
        "Maximum Age",
        unlimited(c.max_age, &|n| {
            crate::output::humanize_duration(std::time::Duration::from_nanos(n as u64))
        }),
    );
    row(
        "Maximum Message Size",
        unlimited(c.max_msg_size, &|n| iec_bytes(n as u64)),
    );
    row(
        "Maximum Consumers",
        unlimited(c.max_consumers, &|n| n.to_string()),
    );
    o.push_str("\n\nState:\n\n");
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>21}: {v}\n"));
    row("Messages", commas(s.messages as i64));
    row("Bytes", iec_bytes(s.bytes));
    let has_times = js::parse_time(&s.last_ts).is_some();
    let seq_at = |seq: u64, ts: &str| {
        if has_times && js::parse_time(ts).is_some() {
            format!("{} @ {} UTC", commas(seq as i64), utc_stamp(ts))
        } else {
            commas(seq as i64)
        }
    };
    row("FirstSeq", seq_at(s.first_seq, &s.first_ts));
    row("LastSeq", seq_at(s.last_seq, &s.last_ts));
    if s.num_deleted > 0 {
        row("Deleted Messages", s.num_deleted.to_string());
    }
    row("Active Consumers", s.consumer_count.to_string());
    print(o);
}
