//! `nats object add|put|get|ls|info`.

use crate::js::{self, humanize};
use crate::output::{commas, iec_bytes, print, rfc3339};
use crate::table::Table;
use crate::Global;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use nats_common::client::jetstream::object::{self, ObjectInfo, ObjectStore};
use std::io::Read;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Adds a new Object Store Bucket
    Add(AddArgs),
    /// Puts a file into the store
    Put(PutArgs),
    /// Retrieves a file from the store
    Get(GetArgs),
    /// List contents of the bucket
    #[command(visible_alias = "list")]
    Ls(BucketArg),
    /// Get information about a bucket or object
    Info(InfoArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The bucket to act on
    pub bucket: String,
    /// How long to keep objects for
    #[arg(long)]
    pub ttl: Option<String>,
    /// How many replicas of the data to store
    #[arg(long, default_value_t = 1)]
    pub replicas: u64,
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
    /// The file to put
    pub file: Option<String>,
    /// Override the name supplied to the object store
    #[arg(long)]
    pub name: Option<String>,
    /// Sets an optional description for the object
    #[arg(long)]
    pub description: Option<String>,
    /// Disables progress bars
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Act without confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The file to retrieve
    pub file: String,
    /// Override the output file name
    #[arg(short = 'O', long)]
    pub output: Option<String>,
    /// Disables progress bars
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Act without confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct BucketArg {
    /// The bucket to act on
    pub bucket: String,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The bucket to act on
    pub bucket: String,
    /// The file to retrieve
    pub file: Option<String>,
}

async fn open(g: &Global, bucket: &str) -> Result<ObjectStore> {
    let js = js::connect(g).await?;
    Ok(js.object_store(bucket).await?)
}

pub async fn run(cmd: Cmd, g: &Global) -> Result<()> {
    match cmd {
        Cmd::Add(a) => {
            crate::stream::check(&a.storage, &["file", "f", "memory", "m"])?;
            let ttl = match &a.ttl {
                Some(t) => crate::output::parse_duration(t)?,
                None => std::time::Duration::ZERO,
            };
            let js = js::connect(g).await?;
            let store = js
                .create_object_store(&object::Config {
                    bucket: a.bucket.clone(),
                    description: a.description.unwrap_or_default(),
                    ttl,
                    storage_memory: a.storage.as_deref().is_some_and(|s| s.starts_with('m')),
                    replicas: a.replicas,
                })
                .await?;
            show_bucket(&store).await
        }
        Cmd::Put(a) => {
            let store = open(g, &a.bucket).await?;
            let name = a.name.clone().or_else(|| a.file.clone());
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                bail!("--name is required when reading from stdin");
            };
            if !a.force {
                if let Ok(existing) = store.info(&name).await {
                    show_object(&existing);
                    println!();
                    if !js::confirm(&format!("Replace existing file {} > {name}", a.bucket)) {
                        return Ok(());
                    }
                }
            }
            let data = match &a.file {
                Some(f) => std::fs::read(f).map_err(|e| anyhow!("open {f}: {e}"))?,
                None => {
                    let mut b = Vec::new();
                    std::io::stdin().read_to_end(&mut b)?;
                    b
                }
            };
            let info = store
                .put(&clean(&name), a.description.as_deref().unwrap_or(""), &data)
                .await?;
            show_object(&info);
            Ok(())
        }
        Cmd::Get(a) => {
            let store = open(g, &a.bucket).await?;
            let start = Instant::now();
            let (info, data) = store.get(&a.file).await?;
            let out = match &a.output {
                Some(o) => o.clone(),
                None => std::path::Path::new(&info.name)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| info.name.clone()),
            };
            let path = std::path::absolute(&out)?;
            if !a.force
                && path.exists()
                && !js::confirm(&format!("Replace existing target file {}", path.display()))
            {
                return Ok(());
            }
            std::fs::write(&path, &data)?;
            print(format!(
                "Wrote: {} to {} in {}\n",
                iec_bytes(data.len() as u64),
                path.display(),
                humanize(start.elapsed())
            ));
            Ok(())
        }
        Cmd::Ls(a) => {
            let store = open(g, &a.bucket).await?;
            let list = store.list().await?;
            if list.is_empty() {
                println!("No entries found");
                return Ok(());
            }
            let mut t = Table::new("Bucket Contents");
            t.headers(&["Name", "Size", "Time"]);
            for i in &list {
                t.row(vec![
                    i.name.clone(),
                    iec_bytes(i.size),
                    js::parse_time(&i.mtime).map(rfc3339).unwrap_or_default(),
                ]);
            }
            print(t.render());
            Ok(())
        }
        Cmd::Info(a) => {
            let store = open(g, &a.bucket).await?;
            match &a.file {
                None => show_bucket(&store).await,
                Some(f) => {
                    show_object(&store.info(f).await?);
                    Ok(())
                }
            }
        }
    }
}

/// Go's `filepath.Clean` for the common cases: no `./`, no doubled or trailing `/`.
fn clean(name: &str) -> String {
    let abs = name.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if abs => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

async fn show_bucket(store: &ObjectStore) -> Result<()> {
    let info = store.status().await?;
    let c = &info.config;
    let mut o = format!("{} Object Store Status\n\n", store.bucket);
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>20}: {v}\n"));
    row("Bucket Name", store.bucket.clone());
    if let Some(d) = c.description.as_deref().filter(|d| !d.is_empty()) {
        row("Description", d.to_string());
    }
    row("Replicas", c.num_replicas.to_string());
    if c.max_age <= 0 {
        row("TTL", "unlimited".into());
    } else {
        row(
            "TTL",
            humanize(std::time::Duration::from_nanos(c.max_age as u64)),
        );
    }
    row("Sealed", c.sealed.to_string());
    row("Size", iec_bytes(info.state.bytes));
    if c.max_bytes <= 0 {
        row("Maximum Bucket Size", "unlimited".into());
    } else {
        row("Maximum Bucket Size", iec_bytes(c.max_bytes as u64));
    }
    row("Backing Store Kind", "JetStream".into());
    row("JetStream Stream", c.name.clone());
    print(o);
    Ok(())
}

fn show_object(i: &ObjectInfo) {
    let mut o = format!("Object information for {} > {}\n\n", i.bucket, i.name);
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>19}: {v}\n"));
    if let Some(d) = i.description.as_deref().filter(|d| !d.is_empty()) {
        row("Description", d.to_string());
    }
    row("Size", iec_bytes(i.size));
    row("Modification Time", js::local_rfc822z(&i.mtime));
    row("Chunks", commas(i.chunks as i64));
    if let Some((alg, hex)) = i.digest_hex() {
        row("Digest", format!("{alg} {hex}"));
    }
    if i.deleted {
        row("Deleted", "true".into());
    }
    print(o);
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn names_are_cleaned_like_go() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("/x/../y"), "/y");
        assert_eq!(clean("file.txt"), "file.txt");
    }
}
