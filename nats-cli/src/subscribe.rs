//! `nats sub SUBJECT`.

use crate::{conn, headers, logf, Global};
use anyhow::{bail, Result};
use clap::Args;
use nats_common::client::Message;
use std::io::Write;

#[derive(Args, Debug)]
pub struct SubArgs {
    /// Subject to subscribe to
    pub subject: Option<String>,
    /// Subscribe to a named queue group
    #[arg(long)]
    pub queue: Option<String>,
    /// Show the raw data received
    #[arg(short = 'r', long)]
    pub raw: bool,
    /// Quit after receiving this many messages
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Do not render any message data, show only headers
    #[arg(long = "headers-only")]
    pub headers_only: bool,
    /// Use a unique inbox subject
    #[arg(short = 'i', long)]
    pub inbox: bool,
    /// Subjects to ignore
    #[arg(short = 'I', long = "ignore-subject", value_name = "SUBJECT")]
    pub ignore: Vec<String>,
    /// Only show messages with replies (not supported)
    #[arg(long = "match-replies", hide = true)]
    pub match_replies: bool,
    /// Dump received messages to files (not supported)
    #[arg(long, hide = true)]
    pub dump: Option<String>,
}

/// The default rendering of one message: `[#n] Received on "subj"`, headers, body.
pub fn render(n: u64, m: &Message, headers_only: bool) -> String {
    let mut out = match &m.reply {
        Some(r) => format!("[#{n}] Received on {:?} with reply {:?}\n", m.subject, r),
        None => format!("[#{n}] Received on {:?}\n", m.subject),
    };
    if let Some(h) = &m.headers {
        let lines = headers::lines(h);
        if !lines.is_empty() {
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
            out.push('\n');
        }
    }
    if !headers_only {
        let body = String::from_utf8_lossy(&m.payload);
        out.push_str(&body);
        out.push('\n');
        if !body.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

pub async fn run(a: SubArgs, g: &Global) -> Result<()> {
    if a.dump.is_some() || a.match_replies {
        bail!("--dump and --match-replies are not supported");
    }
    let client = conn::connect(g).await?;
    let subject = match (&a.subject, a.inbox) {
        (_, true) => client.new_inbox(),
        (Some(s), false) => s.clone(),
        (None, false) => bail!("subject is required"),
    };
    let mut sub = client
        .queue_subscribe_opt(&subject, a.queue.as_deref())
        .await?;
    if a.count > 0 {
        sub.unsubscribe_after(a.count)?;
    }
    client.flush().await?;
    if !a.raw {
        let mut line = format!("Subscribing on {subject} ");
        if !a.ignore.is_empty() {
            line.push_str(&format!("\nIgnored subjects: {}", a.ignore.join(", ")));
        }
        logf!("{line}");
    }
    let mut n = 0u64;
    while let Some(m) = sub.next().await {
        if a.ignore
            .iter()
            .any(|i| nats_common::subject::matches(i.as_bytes(), m.subject.as_bytes()))
        {
            continue;
        }
        // Flow control from JetStream push consumers: answer and move on.
        if m.status() == Some(100) && m.payload.is_empty() {
            if let Some(r) = &m.reply {
                client.publish(r, b"").await?;
                logf!("Responding to Flow Control message");
            }
            continue;
        }
        n += 1;
        let text = if a.raw {
            let mut s = String::from_utf8_lossy(&m.payload).into_owned();
            s.push('\n');
            s
        } else {
            render(n, &m, a.headers_only)
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .is_err()
        {
            // stdout went away (closed pipe): nothing left to do.
            break;
        }
        if a.count > 0 && n >= a.count {
            break;
        }
    }
    client.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_common::headers::Headers;

    #[test]
    fn message_layout() {
        let mut m = Message {
            subject: "foo".into(),
            reply: None,
            headers: None,
            payload: "hello".into(),
        };
        assert_eq!(render(1, &m, false), "[#1] Received on \"foo\"\nhello\n\n");
        m.payload = "line\n".into();
        assert_eq!(render(2, &m, false), "[#2] Received on \"foo\"\nline\n\n");
        let mut h = Headers::new();
        h.insert("X-Key", "v1");
        m.headers = Some(h);
        m.reply = Some("_INBOX.abc".into());
        m.payload = "hello".into();
        assert_eq!(
            render(1, &m, false),
            "[#1] Received on \"foo\" with reply \"_INBOX.abc\"\nX-Key: v1\n\nhello\n\n"
        );
        assert_eq!(
            render(1, &m, true),
            "[#1] Received on \"foo\" with reply \"_INBOX.abc\"\nX-Key: v1\n\n"
        );
    }
}
