//! `nats pub SUBJECT [BODY]`.

use crate::output::{log, parse_duration};
use crate::template::{self, Ctx};
use crate::{conn, headers, logf, Global};
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read};

#[derive(Args, Debug)]
pub struct PubArgs {
    /// Subject to publish to
    pub subject: String,
    /// Message body
    pub body: Option<String>,
    /// Sets a custom reply to subject
    #[arg(long)]
    pub reply: Option<String>,
    /// Adds headers to the message using K:V format
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub header: Vec<String>,
    /// Publish multiple messages
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub count: i64,
    /// When publishing multiple messages, sleep between publishes
    #[arg(long)]
    pub sleep: Option<String>,
    /// Force reading from stdin
    #[arg(long = "force-stdin")]
    pub force_stdin: bool,
}

/// Reads the body from stdin when none was given, under the reference's conditions.
pub fn body_or_stdin(body: Option<String>, force_stdin: bool) -> Result<String> {
    if let Some(b) = body {
        return Ok(b);
    }
    if std::io::stdout().is_terminal() || force_stdin {
        log("Reading payload from STDIN");
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(s);
    }
    Ok(String::new())
}

/// Expands a template, falling back to the raw text with the reference's log line.
pub fn render_or_raw(text: &str, ctx: &Ctx<'_>) -> String {
    match template::render(text, ctx) {
        Ok(s) => s,
        Err(e) => {
            logf!("Could not parse body template: {e}");
            text.to_string()
        }
    }
}

pub async fn run(a: PubArgs, g: &Global) -> Result<()> {
    let body = body_or_stdin(a.body, a.force_stdin)?;
    let sleep = match &a.sleep {
        Some(s) => Some(parse_duration(s)?),
        None => None,
    };
    let count: u64 = if a.count <= 0 { 32767 } else { a.count as u64 };
    // Validate header syntax before connecting.
    headers::from_flags(&a.header, &Ctx::default())?;
    let client = conn::connect(g).await?;
    let bar = (count > 20).then(|| {
        let width = count.to_string().len();
        let pb = ProgressBar::new(count);
        let tmpl = format!("{{pos:>{width}}} / {{len}} [{{bar:50.green}}] {{elapsed}}");
        if let Ok(style) = ProgressStyle::with_template(&tmpl) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    });
    for i in 1..=count {
        let ctx = Ctx {
            count: i,
            request: None,
        };
        let payload = render_or_raw(&body, &ctx);
        let hdrs = headers::from_flags(&a.header, &ctx)?;
        client
            .publish_full(
                &a.subject,
                a.reply.as_deref(),
                hdrs.as_ref(),
                payload.as_bytes(),
            )
            .await?;
        client.flush().await?;
        match &bar {
            Some(pb) => pb.inc(1),
            None => logf!("Published {} bytes to {:?}", payload.len(), a.subject),
        }
        if let Some(d) = sleep {
            if i < count {
                tokio::time::sleep(d).await;
            }
        }
    }
    if let Some(pb) = bar {
        pb.finish();
    }
    client.close().await;
    Ok(())
}
