//! `nats kv add|put|get|del|watch|ls|info`.

use crate::js::{self, confirm, local_rfc3339, local_rfc822, local_stamp, since};
use crate::output::{commas, iec_bytes, print};
use crate::table::Table;
use crate::Global;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use nats_common::client::jetstream::kv::{self, Operation, Store};
use nats_common::client::jetstream::StreamInfo;
use std::io::{IsTerminal, Read};

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Adds a new KV Store Bucket
    #[command(visible_alias = "new")]
    Add(AddArgs),
    /// Puts a value into a key
    Put(PutArgs),
    /// Gets a value for a key
    Get(GetArgs),
    /// Deletes a key or the entire bucket
    #[command(visible_alias = "rm")]
    Del(DelArgs),
    /// Watch the bucket or a specific key for updated
    Watch(WatchArgs),
    /// List available buckets or the keys in a bucket
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// View the status of a KV store
    #[command(visible_aliases = ["status", "view"])]
    Info(BucketArg),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The bucket to act on
    pub bucket: String,
    /// How many historic values to keep per key
    #[arg(long, default_value_t = 1)]
    pub history: u64,
    /// How long to keep values for
    #[arg(long)]
    pub ttl: Option<String>,
    /// How many replicas of the data to store
    #[arg(long, default_value_t = 1)]
    pub replicas: u64,
    /// Maximum size for any single value
    #[arg(long = "max-value-size", value_name = "BYTES")]
    pub max_value_size: Option<String>,
    /// Maximum size for the bucket
    #[arg(long = "max-bucket-size", value_name = "BYTES")]
    pub max_bucket_size: Option<String>,
    /// A description for the bucket
    #[arg(long)]
    pub description: Option<String>,
    /// Storage backend to use (file, memory)
    #[arg(long)]
    pub storage: Option<String>,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    pub key: String,
    /// The value to store, when empty reads STDIN
    pub value: Option<String>,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    pub key: String,
    /// Gets a specific revision
    #[arg(long)]
    pub revision: Option<u64>,
    /// Show only the value string
    #[arg(long)]
    pub raw: bool,
}

#[derive(Args, Debug)]
pub struct DelArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    pub key: Option<String>,
    /// Act without confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The key to act on
    #[arg(default_value = ">")]
    pub key: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// The bucket to list the keys
    pub bucket: Option<String>,
    /// Show just the bucket names
    #[arg(short = 'n', long)]
    pub names: bool,
}

#[derive(Args, Debug)]
pub struct BucketArg {
    /// The bucket to act on
    pub bucket: String,
}

pub async fn run(cmd: Cmd, g: &Global) -> Result<()> {
    match cmd {
        Cmd::Add(a) => add(a, g).await,
        Cmd::Put(a) => {
            let store = open(g, &a.bucket).await?;
            let value = match a.value.clone().filter(|v| !v.is_empty()) {
                Some(v) => v.into_bytes(),
                None if !std::io::stdin().is_terminal() => {
                    let mut b = Vec::new();
                    std::io::stdin().read_to_end(&mut b)?;
                    b
                }
                None => Vec::new(),
            };
            store.put(&a.key, &value).await?;
            println!("{}", a.value.unwrap_or_default());
            Ok(())
        }
        Cmd::Get(a) => {
            let store = open(g, &a.bucket).await?;
            let e = match a.revision.filter(|r| *r > 0) {
                Some(r) => store.get_revision(&a.key, r).await?,
                None => store.get(&a.key).await?,
            };
            if a.raw {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&e.value);
                let _ = out.flush();
                return Ok(());
            }
            let mut o = format!(
                "{} > {} created @ {}\n\n",
                e.bucket,
                e.key,
                local_rfc822(&e.created)
            );
            let v = printable(&e.value);
            if v.len() > 120 {
                o.push_str(&format!(
                    "Showing first 120 bytes of {}, use --raw for full data\n\n",
                    commas(v.len() as i64)
                ));
                o.push_str(&v.chars().take(120).collect::<String>());
            } else {
                o.push_str(&v);
            }
            o.push_str("\n\n");
            print(o);
            Ok(())
        }
        Cmd::Del(a) => match &a.key {
            None => {
                if !a.force && !confirm(&format!("Delete bucket {}?", a.bucket)) {
                    println!("Skipping delete");
                    return Ok(());
                }
                let js = js::connect(g).await?;
                js.delete_kv(&a.bucket).await?;
                Ok(())
            }
            Some(key) => {
                let store = open(g, &a.bucket).await?;
                if !a.force && !confirm(&format!("Delete key {} > {key}?", a.bucket)) {
                    println!("Skipping delete");
                    return Ok(());
                }
                store.delete(key).await?;
                Ok(())
            }
        },
        Cmd::Watch(a) => {
            let store = open(g, &a.bucket).await?;
            let mut w = store.watch(&a.key).await?;
            while let Some(e) = w.next().await {
                let line = match e.operation {
                    Operation::Put => format!(
                        "[{}] PUT {} > {}: {}\n",
                        local_stamp(&e.created),
                        e.bucket,
                        e.key,
                        String::from_utf8_lossy(&e.value)
                    ),
                    op => format!(
                        "[{}] {} {} > {}\n",
                        local_stamp(&e.created),
                        op.as_str(),
                        e.bucket,
                        e.key
                    ),
                };
                print(line);
            }
            Ok(())
        }
        Cmd::Ls(a) => match &a.bucket {
            Some(b) => {
                let store = open(g, b).await?;
                let keys = store.keys().await?;
                if keys.is_empty() {
                    println!("No keys found in bucket");
                }
                for k in keys {
                    println!("{k}");
                }
                Ok(())
            }
            None => ls_buckets(a.names, g).await,
        },
        Cmd::Info(a) => {
            let store = open(g, &a.bucket).await?;
            show(&store.status().await?, &a.bucket);
            Ok(())
        }
    }
}

/// The value as text, or base64 when it is not printable (natscli's `base64IfNotPrintable`).
fn printable(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c.is_whitespace()) => s.to_string(),
        _ => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(v)
        }
    }
}

async fn open(g: &Global, bucket: &str) -> Result<Store> {
    let js = js::connect(g).await?;
    Ok(js.kv(bucket).await?)
}

async fn add(a: AddArgs, g: &Global) -> Result<()> {
    crate::stream::check(&a.storage, &["file", "f", "memory", "m"])?;
    let size = |s: &Option<String>| -> Result<i64> {
        match s {
            Some(s) => js::parse_bytes(s),
            None => Ok(0),
        }
    };
    let max_value_size = size(&a.max_value_size)?;
    if max_value_size > i32::MAX as i64 {
        bail!(
            "max value size {} is too big maximum is {}",
            commas(max_value_size),
            commas(i32::MAX as i64)
        );
    }
    let ttl = match &a.ttl {
        Some(t) => crate::output::parse_duration(t).map_err(|e| anyhow!("{e}"))?,
        None => std::time::Duration::ZERO,
    };
    let cfg = kv::Config {
        bucket: a.bucket.clone(),
        description: a.description.clone().unwrap_or_default(),
        history: a.history,
        ttl,
        max_value_size,
        max_bytes: size(&a.max_bucket_size)?,
        storage_memory: a.storage.as_deref().is_some_and(|s| s.starts_with('m')),
        replicas: a.replicas,
    };
    let js = js::connect(g).await?;
    let store = js.create_kv(&cfg).await?;
    show(&store.status().await?, &a.bucket);
    Ok(())
}

async fn ls_buckets(names: bool, g: &Global) -> Result<()> {
    let js = js::connect(g).await?;
    let mut found: Vec<StreamInfo> = js
        .streams()
        .await?
        .into_iter()
        .filter(|s| kv::is_kv_stream(&s.raw))
        .collect();
    if found.is_empty() {
        println!("No Key-Value buckets found");
        return Ok(());
    }
    if names {
        for s in &found {
            println!("{}", kv::bucket_of(&s.config.name).unwrap_or_default());
        }
        return Ok(());
    }
    found.sort_by_key(|s| s.state.bytes);
    let mut t = Table::new("Key-Value Buckets");
    t.headers(&[
        "Bucket",
        "Description",
        "Created",
        "Size",
        "Values",
        "Last Update",
    ]);
    for s in &found {
        t.row(vec![
            kv::bucket_of(&s.config.name)
                .unwrap_or_default()
                .to_string(),
            s.config.description.clone().unwrap_or_default(),
            local_stamp(&s.created),
            iec_bytes(s.state.bytes),
            commas(s.state.messages as i64),
            since(&s.state.last_ts),
        ]);
    }
    print(t.render());
    Ok(())
}

/// Prints a bucket's status as `nats kv info` does.
fn show(info: &StreamInfo, bucket: &str) {
    let c = &info.config;
    let mut o = format!(
        "Information for Key-Value Store Bucket {bucket} created {}\n\nConfiguration:\n\n",
        local_rfc3339(&info.created)
    );
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>21}: {v}\n"));
    row("Bucket Name", bucket.to_string());
    row("History Kept", c.max_msgs_per_subject.to_string());
    row("Values Stored", info.state.messages.to_string());
    row("Backing Store Kind", "JetStream".into());
    if let Some(d) = c.description.as_deref().filter(|d| !d.is_empty()) {
        row("Description", d.to_string());
    }
    row("Bucket Size", iec_bytes(info.state.bytes));
    let limit = |n: i64| {
        if n <= 0 {
            "unlimited".to_string()
        } else {
            iec_bytes(n as u64)
        }
    };
    row("Maximum Bucket Size", limit(c.max_bytes));
    row("Maximum Value Size", limit(c.max_msg_size));
    if c.max_age <= 0 {
        row("Maximum Age", "unlimited".into());
    } else {
        row("Maximum Age", js::go_nanos(c.max_age));
    }
    row("JetStream Stream", c.name.clone());
    row("Storage", js::title(&c.storage));
    print(o);
}
