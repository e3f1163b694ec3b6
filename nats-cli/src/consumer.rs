//! `nats consumer add|ls|info|next|rm`.

use crate::js::{self, confirm, go_nanos, local_rfc3339, local_stamp, since, title};
use crate::output::{clock, commas, indent_json, print};
use crate::table::Table;
use crate::Global;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use nats_common::client::jetstream::{ConsumerInfo, Pulled};
use serde_json::json;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Creates a new Consumer
    #[command(visible_aliases = ["create", "new"])]
    Add(Box<AddArgs>),
    /// List known Consumers
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Consumer information
    #[command(visible_aliases = ["nfo", "i"])]
    Info(InfoArgs),
    /// Retrieves messages from Pull Consumers without interactive prompts
    Next(NextArgs),
    /// Removes a Consumer
    #[command(visible_aliases = ["delete", "del"])]
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: Option<String>,
    /// Filter Stream by subjects
    #[arg(long)]
    pub filter: Option<String>,
    /// Deliver messages in 'pull' mode
    #[arg(long, conflicts_with = "target")]
    pub pull: bool,
    /// Push based delivery target subject
    #[arg(long)]
    pub target: Option<String>,
    /// Where to start consuming (all, last, new, last_per_subject, 1h, msg sequence)
    #[arg(long)]
    pub deliver: Option<String>,
    /// Acknowledgement policy (none, all, explicit)
    #[arg(long)]
    pub ack: Option<String>,
    /// Acknowledgement waiting time
    #[arg(long)]
    pub wait: Option<String>,
    /// Maximum amount of times a message will be delivered
    #[arg(long = "max-deliver", allow_hyphen_values = true)]
    pub max_deliver: Option<i64>,
    /// Maximum pending Acks before consumers are paused
    #[arg(long = "max-pending", allow_hyphen_values = true)]
    pub max_pending: Option<i64>,
    /// Replay rate (instant, original)
    #[arg(long)]
    pub replay: Option<String>,
    /// Delivery group for push consumers
    #[arg(long = "deliver-group")]
    pub deliver_group: Option<String>,
    /// Sets a contextual description for the consumer
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
    /// Stream name
    pub stream: String,
    /// Show just the consumer names
    #[arg(short = 'n', long)]
    pub names: bool,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: String,
    /// Produce JSON output
    #[arg(short = 'j', long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct NextArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: String,
    /// Acknowledge received message (the default)
    #[arg(long)]
    pub ack: bool,
    /// Do not acknowledge received messages
    #[arg(long = "no-ack")]
    pub no_ack: bool,
    /// Show only the message
    #[arg(long)]
    pub raw: bool,
    /// Number of messages to try to fetch from the pull consumer
    #[arg(long, default_value_t = 1)]
    pub count: u64,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stream name
    pub stream: String,
    /// Consumer name
    pub consumer: String,
    /// Force removal without prompting
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub async fn run(cmd: Cmd, g: &Global) -> Result<()> {
    match cmd {
        Cmd::Add(a) => add(*a, g).await,
        Cmd::Ls(a) => ls(a, g).await,
        Cmd::Info(a) => {
            let js = js::connect(g).await?;
            let info = js
                .consumer_info(&a.stream, &a.consumer)
                .await
                .map_err(|e| {
                    anyhow!("could not load Consumer {} > {}: {e}", a.stream, a.consumer)
                })?;
            show(&info, a.json);
            Ok(())
        }
        Cmd::Next(a) => next(a, g).await,
        Cmd::Rm(a) => {
            if !a.force
                && !confirm(&format!(
                    "Really delete Consumer {} > {}",
                    a.stream, a.consumer
                ))
            {
                return Ok(());
            }
            let js = js::connect(g).await?;
            js.consumer_info(&a.stream, &a.consumer)
                .await
                .map_err(|e| anyhow!("could not load Consumer: {e}"))?;
            js.delete_consumer(&a.stream, &a.consumer)
                .await
                .map_err(|e| anyhow!("could not remove Consumer: {e}"))
        }
    }
}

async fn add(a: AddArgs, g: &Global) -> Result<()> {
    crate::stream::check(&a.ack, &["none", "all", "explicit"])?;
    crate::stream::check(&a.replay, &["instant", "original"])?;
    let need = |what: &str, flag: &str| -> Result<()> {
        if a.defaults {
            Ok(())
        } else {
            bail!("{what} is required, set it with --{flag} or accept defaults with --defaults")
        }
    };
    let Some(name) = a.consumer.clone() else {
        bail!("Consumer name is required in non-interactive mode");
    };
    if a.target.is_none() && !a.pull {
        need("Delivery target or --pull", "target")?;
    }
    let mut cfg = json!({ "durable_name": name });
    if let Some(t) = &a.target {
        cfg["deliver_subject"] = json!(t);
        if let Some(q) = &a.deliver_group {
            cfg["deliver_group"] = json!(q);
        }
    }
    let deliver = match a.deliver.as_deref() {
        Some(d) => d.to_string(),
        None => {
            need("Start policy", "deliver")?;
            "all".to_string()
        }
    };
    match deliver.as_str() {
        "all" => cfg["deliver_policy"] = json!("all"),
        "last" => cfg["deliver_policy"] = json!("last"),
        "new" | "next" => cfg["deliver_policy"] = json!("new"),
        "subject" | "last_per_subject" => cfg["deliver_policy"] = json!("last_per_subject"),
        d => {
            if let Ok(seq) = d.parse::<u64>() {
                cfg["deliver_policy"] = json!("by_start_sequence");
                cfg["opt_start_seq"] = json!(seq);
            } else {
                let ago = js::parse_duration(d)
                    .map_err(|e| anyhow!("could not parse start policy {d:?}: {e}"))?;
                let t = std::time::SystemTime::now() - ago;
                cfg["deliver_policy"] = json!("by_start_time");
                cfg["opt_start_time"] = json!(nats_common::monitor::format_rfc3339_nanos(t));
            }
        }
    }
    let ack = match a.ack.as_deref() {
        Some(x) => x.to_string(),
        None => {
            need("Acknowledgement policy", "ack")?;
            if a.pull { "explicit" } else { "none" }.to_string()
        }
    };
    if a.pull && ack == "none" {
        bail!("pull consumers cannot have the none ack policy");
    }
    cfg["ack_policy"] = json!(ack);
    if let Some(w) = &a.wait {
        let d = js::parse_duration(w).map_err(|e| anyhow!("invalid ack wait: {e}"))?;
        cfg["ack_wait"] = json!(js_nanos(d));
    }
    cfg["replay_policy"] = json!(match a.replay.as_deref() {
        Some(r) => r.to_string(),
        None => {
            need("Replay policy", "replay")?;
            "instant".to_string()
        }
    });
    if let Some(f) = a.filter.as_deref().filter(|f| !f.is_empty()) {
        cfg["filter_subject"] = json!(f);
    }
    match a.max_deliver {
        Some(n) if n != 0 => cfg["max_deliver"] = json!(n),
        _ => cfg["max_deliver"] = json!(-1),
    }
    if let Some(n) = a.max_pending.filter(|n| *n != 0) {
        cfg["max_ack_pending"] = json!(n);
    }
    if let Some(d) = &a.description {
        cfg["description"] = json!(d);
    }
    let js = js::connect(g).await?;
    let info = js
        .create_consumer(&a.stream, &cfg)
        .await
        .map_err(|e| anyhow!("could not create Consumer: {e}"))?;
    show(&info, a.json);
    Ok(())
}

fn js_nanos(d: Duration) -> i64 {
    nats_common::client::jetstream::nanos(d)
}

async fn ls(a: LsArgs, g: &Global) -> Result<()> {
    let js = js::connect(g).await?;
    js.stream_info(&a.stream)
        .await
        .map_err(|e| anyhow!("could not load Consumers: {e}"))?;
    let mut list = js
        .consumers(&a.stream)
        .await
        .map_err(|e| anyhow!("could not load Consumers: {e}"))?;
    list.sort_by(|x, y| x.name.cmp(&y.name));
    if a.json {
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        print(format!("{}\n", indent_json(&json!(names).to_string())));
        return Ok(());
    }
    if a.names {
        for c in &list {
            println!("{}", c.name);
        }
        return Ok(());
    }
    if list.is_empty() {
        println!("No Consumers defined");
        return Ok(());
    }
    let mut t = Table::new("Consumers");
    t.headers(&[
        "Name",
        "Description",
        "Created",
        "Ack Pending",
        "Unprocessed",
        "Last Delivery",
    ]);
    for c in &list {
        t.row(vec![
            c.name.clone(),
            c.config.description.clone().unwrap_or_default(),
            local_stamp(&c.created),
            commas(c.num_ack_pending as i64),
            commas(c.num_pending as i64),
            c.delivered
                .last_active
                .as_deref()
                .map(since)
                .unwrap_or_else(|| "never".into()),
        ]);
    }
    print(t.render());
    Ok(())
}

async fn next(a: NextArgs, g: &Global) -> Result<()> {
    let js = js::connect(g).await?;
    let info = js
        .consumer_info(&a.stream, &a.consumer)
        .await
        .map_err(|e| anyhow!("could not load Consumer {} > {}: {e}", a.stream, a.consumer))?;
    if info
        .config
        .deliver_subject
        .as_deref()
        .is_some_and(|d| !d.is_empty())
    {
        bail!(
            "consumer {} > {} is not a pull consumer",
            a.stream,
            a.consumer
        );
    }
    let ack = a.ack || !a.no_ack;
    let wait = js.timeout();
    for _ in 0..a.count.max(1) {
        let m = match js.next(&a.stream, &a.consumer, wait).await {
            Ok(Pulled::Msg(m)) => m,
            Ok(Pulled::Status(_, _)) | Ok(Pulled::Timeout) => {
                bail!("no message received: nats: timeout")
            }
            Err(e) => bail!("no message received: {e}"),
        };
        if a.raw {
            print(format!("{}\n", String::from_utf8_lossy(&m.msg.payload)));
        } else {
            let mut out = match &m.meta {
                Some(meta) => format!(
                    "[{}] subj: {} / tries: {} / cons seq: {} / str seq: {} / pending: {}\n",
                    clock(),
                    m.msg.subject,
                    meta.delivered,
                    meta.consumer_seq,
                    meta.stream_seq,
                    commas(meta.pending as i64)
                ),
                None => format!("[{}] subj: {}\n", clock(), m.msg.subject),
            };
            if let Some(h) = &m.msg.headers {
                if !h.entries.is_empty() {
                    out.push('\n');
                    for (k, v) in &h.entries {
                        out.push_str(&format!("{k}: {v}\n"));
                    }
                }
            }
            out.push('\n');
            out.push_str(&String::from_utf8_lossy(&m.msg.payload));
            out.push('\n');
            print(out);
        }
        if ack {
            m.ack(js.client())
                .await
                .map_err(|e| anyhow!("could not Acknowledge message: {e}"))?;
            if !a.raw {
                print("\nAcknowledged message\n\n");
            }
        } else if !a.raw {
            println!();
        }
    }
    js.client().close().await;
    Ok(())
}

/// Prints a consumer's info as `nats consumer info` does (or its JSON).
pub fn show(info: &ConsumerInfo, json_out: bool) {
    if json_out {
        print(format!("{}\n", indent_json(&info.raw.to_string())));
        return;
    }
    let c = &info.config;
    let mut o = format!(
        "Information for Consumer {} > {} created {}\n\nConfiguration:\n\n",
        info.stream_name,
        info.name,
        local_rfc3339(&info.created)
    );
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>20}: {v}\n"));
    if let Some(d) = c.durable_name.as_deref().filter(|d| !d.is_empty()) {
        row("Durable Name", d.to_string());
    }
    if let Some(d) = c.description.as_deref().filter(|d| !d.is_empty()) {
        row("Description", d.to_string());
    }
    match c.deliver_subject.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => row("Delivery Subject", d.to_string()),
        None => row("Pull Mode", "true".into()),
    }
    if let Some(f) = c.filter_subject.as_deref().filter(|f| !f.is_empty()) {
        row("Filter Subject", f.to_string());
    }
    match c.deliver_policy.as_str() {
        "by_start_sequence" => row("Start Sequence", c.opt_start_seq.unwrap_or(0).to_string()),
        "by_start_time" => row("Start Time", c.opt_start_time.clone().unwrap_or_default()),
        p => row("Deliver Policy", title(p)),
    }
    if let Some(q) = c.deliver_group.as_deref().filter(|q| !q.is_empty()) {
        row("Deliver Queue Group", q.to_string());
    }
    row("Ack Policy", title(&c.ack_policy));
    if c.ack_policy != "none" {
        row("Ack Wait", go_nanos(c.ack_wait));
    }
    row("Replay Policy", title(&c.replay_policy));
    if c.max_deliver > 0 {
        row("Maximum Deliveries", c.max_deliver.to_string());
    }
    if c.max_ack_pending > 0 {
        row("Max Ack Pending", commas(c.max_ack_pending));
    }
    if c.deliver_subject.as_deref().is_some_and(|d| !d.is_empty()) {
        if c.idle_heartbeat > 0 {
            row("Idle Heartbeat", go_nanos(c.idle_heartbeat));
        }
        row("Flow Control", c.flow_control.to_string());
    } else if c.max_waiting > 0 {
        row("Max Waiting Pulls", commas(c.max_waiting));
    }
    if c.headers_only {
        row("Headers Only", "true".into());
    }
    o.push_str("\nState:\n\n");
    let mut row = |label: &str, v: String| o.push_str(&format!("{label:>25}: {v}\n"));
    let seqs = |s: &nats_common::client::jetstream::SequenceInfo, what: &str| {
        let mut t = format!(
            "Consumer sequence: {} Stream sequence: {}",
            commas(s.consumer_seq as i64),
            commas(s.stream_seq as i64)
        );
        if let Some(l) = s
            .last_active
            .as_deref()
            .filter(|l| js::parse_time(l).is_some())
        {
            t.push_str(&format!(" {what}: {} ago", since(l)));
        }
        t
    };
    row(
        "Last Delivered Message",
        seqs(&info.delivered, "Last delivery"),
    );
    row("Acknowledgment floor", seqs(&info.ack_floor, "Last Ack"));
    if c.max_ack_pending > 0 {
        row(
            "Outstanding Acks",
            format!(
                "{} out of maximum {}",
                commas(info.num_ack_pending as i64),
                commas(c.max_ack_pending)
            ),
        );
    } else {
        row("Outstanding Acks", commas(info.num_ack_pending as i64));
    }
    row("Redelivered Messages", commas(info.num_redelivered as i64));
    row("Unprocessed Messages", commas(info.num_pending as i64));
    if c.deliver_subject.as_deref().is_some_and(|d| !d.is_empty()) {
        row(
            "Active Interest",
            if info.push_bound {
                "Active"
            } else {
                "No interest"
            }
            .to_string(),
        );
    } else {
        row(
            "Waiting Pulls",
            format!(
                "{} of maximum {}",
                commas(info.num_waiting as i64),
                commas(c.max_waiting)
            ),
        );
    }
    o.push('\n');
    print(o);
}
