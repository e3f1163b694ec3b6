//! `nats request SUBJECT [BODY]`.

use crate::output::{go_duration, log, parse_duration};
use crate::publish::{body_or_stdin, render_or_raw};
use crate::template::Ctx;
use crate::{conn, headers, logf, Global};
use anyhow::{anyhow, Result};
use clap::Args;
use nats_common::client::{Error, Message};
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ReqArgs {
    /// The subject to send the request to
    pub subject: String,
    /// Message body
    pub body: Option<String>,
    /// Adds headers to the message using K:V format
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub header: Vec<String>,
    /// Send multiple requests
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Wait for this many replies; 0 waits until the timeout
    #[arg(long, default_value_t = 1)]
    pub replies: u64,
    /// Time to wait between replies when waiting for more than one
    #[arg(long = "reply-timeout", default_value = "300ms")]
    pub reply_timeout: String,
    /// Show only the reply body
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Force reading from stdin
    #[arg(long = "force-stdin")]
    pub force_stdin: bool,
}

fn show(m: &Message, rtt: Duration, raw: bool) {
    let mut out = std::io::stdout().lock();
    let body = String::from_utf8_lossy(&m.payload);
    if raw {
        let _ = writeln!(out, "{body}");
        let _ = out.flush();
        return;
    }
    logf!("Received with rtt {}", go_duration(rtt));
    if let Some(h) = &m.headers {
        let lines = headers::lines(h);
        if !lines.is_empty() {
            for l in lines {
                log(l);
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "{body}");
    if !body.ends_with('\n') {
        let _ = writeln!(out);
    }
    let _ = out.flush();
}

pub async fn run(a: ReqArgs, g: &Global) -> Result<()> {
    let body = body_or_stdin(a.body, a.force_stdin)?;
    let reply_timeout = parse_duration(&a.reply_timeout)?;
    headers::from_flags(&a.header, &Ctx::default())?;
    let client = conn::connect(g).await?;
    let timeout = client.options().request_timeout;
    for i in 1..=a.count.max(1) {
        let ctx = Ctx {
            count: i,
            request: None,
        };
        let payload = render_or_raw(&body, &ctx);
        let hdrs = headers::from_flags(&a.header, &ctx)?;
        logf!("Sending request on {:?}", a.subject);
        let start = Instant::now();
        if a.replies == 1 {
            match client
                .request_full(&a.subject, hdrs.as_ref(), payload.as_bytes(), timeout)
                .await
            {
                Ok(m) => show(&m, start.elapsed(), a.raw),
                Err(Error::NoResponders) => {
                    log("No responders are available");
                    break;
                }
                Err(e) => return Err(anyhow!(e)),
            }
            continue;
        }
        // Scatter-gather: our own inbox collects every reply.
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox).await?;
        client
            .publish_full(&a.subject, Some(&inbox), hdrs.as_ref(), payload.as_bytes())
            .await?;
        let mut got = 0u64;
        let mut nobody = false;
        let mut wait = timeout;
        let deadline = start + timeout;
        loop {
            let limit = if a.replies == 0 {
                deadline.saturating_duration_since(Instant::now())
            } else {
                wait
            };
            let m = match tokio::time::timeout(limit, sub.next()).await {
                Ok(Some(m)) => m,
                _ => break,
            };
            if m.is_no_responders() {
                log("No responders are available");
                nobody = true;
                break;
            }
            got += 1;
            let rtt = start.elapsed();
            show(&m, rtt, a.raw);
            if a.replies > 0 && got >= a.replies {
                break;
            }
            // Later replies get the average round trip plus the reply timeout.
            wait = rtt / got as u32 + reply_timeout;
        }
        drop(sub);
        if got == 0 && a.replies != 0 && !nobody {
            client.close().await;
            return Err(anyhow!(Error::Timeout));
        }
    }
    client.close().await;
    Ok(())
}
