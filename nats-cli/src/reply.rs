//! `nats reply SUBJECT [BODY]`: answer requests with a body, an echo or a command's output.

use crate::output::{log, parse_duration};
use crate::template::{self, Ctx};
use crate::{conn, headers, logf, Global};
use anyhow::Result;
use clap::Args;
use nats_common::client::Message;
use nats_common::headers::Headers;
use rand::Rng;
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ReplyArgs {
    /// Subject to receive requests on (subscribes to it and replies to each request)
    pub subject: String,
    /// Reply body
    pub body: Option<String>,
    /// Echo back what is received
    #[arg(long)]
    pub echo: bool,
    /// Runs a command and responds with the output if exit code was 0
    #[arg(long)]
    pub command: Option<String>,
    /// Queue group name
    #[arg(short = 'q', long, default_value = "NATS-RPLY-22")]
    pub queue: String,
    /// Inject a random sleep delay between replies up to this duration max
    #[arg(long)]
    pub sleep: Option<String>,
    /// Adds headers to the message using K:V format
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub header: Vec<String>,
    /// Quit after receiving this many messages
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

/// Splits a command line like a POSIX shell would for simple cases: whitespace separates
/// words; single quotes, double quotes and backslashes group.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single-quoted string".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated double-quoted string".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double-quoted string".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Replaces `{{0}}`, `{{1}}`... with the subject's tokens.
pub fn subject_tokens(cmd: &str, subject: &str) -> String {
    let mut out = cmd.to_string();
    for (i, tok) in subject.split('.').enumerate() {
        out = out.replace(&format!("{{{{{i}}}}}"), tok);
    }
    out
}

async fn run_command(cmd: &str, m: &Message, ctx: &Ctx<'_>) -> Vec<u8> {
    let expanded = subject_tokens(cmd, &m.subject);
    let expanded = template::render(&expanded, ctx).unwrap_or(expanded);
    let parts = match shell_split(&expanded) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            logf!("Command {cmd:?} failed to run: empty command");
            return Vec::new();
        }
        Err(e) => {
            logf!("Command {cmd:?} failed to run: {e}");
            return Vec::new();
        }
    };
    let body = String::from_utf8_lossy(&m.payload).into_owned();
    let res = tokio::process::Command::new(&parts[0])
        .args(&parts[1..])
        .env("NATS_REQUEST_SUBJECT", &m.subject)
        .env("NATS_REQUEST_BODY", body)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match res {
        Ok(out) => {
            if !out.status.success() {
                logf!("Command {cmd:?} failed to run: {}", out.status);
            }
            let mut combined = out.stdout;
            combined.extend_from_slice(&out.stderr);
            combined
        }
        Err(e) => {
            logf!("Command {cmd:?} failed to run: {e}");
            Vec::new()
        }
    }
}

pub async fn run(a: ReplyArgs, g: &Global) -> Result<()> {
    let sleep = match &a.sleep {
        Some(s) => Some(parse_duration(s)?),
        None => None,
    };
    headers::from_flags(&a.header, &Ctx::default())?;
    let mut echo = a.echo;
    if a.body.is_none() && a.command.is_none() && !echo {
        log("No body or command supplied, enabling echo mode");
        echo = true;
    }
    let client = conn::connect(g).await?;
    let mut sub = client.queue_subscribe(&a.subject, &a.queue).await?;
    if a.count > 0 {
        sub.unsubscribe_after(a.count)?;
    }
    client.flush().await?;
    let mut i: u64 = 0;
    while let Some(m) = sub.next().await {
        logf!("[#{i}] Received on subject {:?}:", m.subject);
        if let Some(h) = &m.headers {
            for l in headers::lines(h) {
                log(l);
            }
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", String::from_utf8_lossy(&m.payload));
            let _ = out.flush();
        }
        let request = String::from_utf8_lossy(&m.payload).into_owned();
        let ctx = Ctx {
            count: i,
            request: Some(&request),
        };
        let mut hdrs = headers::from_flags(&a.header, &ctx)?;
        let payload: Vec<u8> = if echo {
            let mut h = m.headers.clone().unwrap_or_default();
            // A status line in the request is not ours to repeat.
            h.status = None;
            h.description = None;
            if let Some(extra) = hdrs.take() {
                h.entries.extend(extra.entries);
            }
            h.insert("NATS-Reply-Counter", i.to_string());
            hdrs = Some(h);
            m.payload.to_vec()
        } else if let Some(cmd) = &a.command {
            run_command(cmd, &m, &ctx).await
        } else {
            let body = a.body.as_deref().unwrap_or_default();
            crate::publish::render_or_raw(body, &ctx).into_bytes()
        };
        if let Some(max) = sleep {
            if !max.is_zero() {
                let ns = rand::thread_rng().gen_range(0..max.as_nanos().max(1)) as u64;
                tokio::time::sleep(Duration::from_nanos(ns)).await;
            }
        }
        if let Some(reply) = &m.reply {
            let h: Option<&Headers> = hdrs.as_ref();
            client.publish_full(reply, None, h, &payload).await?;
        }
        i += 1;
        if a.count > 0 && i >= a.count {
            break;
        }
    }
    client.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands() {
        assert_eq!(
            shell_split(r#"echo 'a b' "c \"d\"" e\ f"#).unwrap(),
            vec!["echo", "a b", "c \"d\"", "e f"]
        );
        assert!(shell_split("echo 'oops").is_err());
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(
            subject_tokens("echo {{1}}-{{0}}", "svc.time"),
            "echo time-svc"
        );
    }
}
