//! What the JetStream commands (stream, consumer, kv, object) share: the JetStream context
//! from the global flags, confirmations, and the reference CLI's time and size renderings.

use crate::output::{go_duration, humanize_duration, local_time, rfc3339};
use crate::{conn, Global};
use anyhow::Result;
use nats_common::client::jetstream::JetStream;
use nats_common::monitor::parse_rfc3339;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Connects and returns the JetStream context (`--js-api-prefix`, `--js-domain`).
pub async fn connect(g: &Global) -> Result<JetStream> {
    let client = conn::connect(g).await?;
    Ok(JetStream::new(
        client,
        g.js_api_prefix.as_deref(),
        g.js_domain.as_deref(),
    ))
}

/// Asks `question` on the terminal; without `-f` and without a terminal the answer is no.
pub fn confirm(question: &str) -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return false;
    }
    print!("? {question} (y/N) ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if stdin.lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// An RFC3339 text as a time; `None` when unparsable or Go's zero time.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let t = parse_rfc3339(s)?;
    if t.unix_nanos <= 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_nanos(t.unix_nanos as u64))
}

/// Go `t.Local().Format(time.RFC3339)`.
pub fn local_rfc3339(s: &str) -> String {
    parse_time(s).map(rfc3339).unwrap_or_default()
}

/// Go `t.Local().Format("2006-01-02 15:04:05")`.
pub fn local_stamp(s: &str) -> String {
    match parse_time(s) {
        Some(t) => {
            let l = local_time(t);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                l.year, l.month, l.day, l.hour, l.minute, l.second
            )
        }
        None => String::new(),
    }
}

/// Go `t.Format("2006-01-02T15:04:05")` in UTC.
pub fn utc_stamp(s: &str) -> String {
    match parse_rfc3339(s) {
        Some(t) => {
            let g = nats_common::monitor::format_unix_nanos(t.unix_nanos);
            g.get(..19).unwrap_or_default().to_string()
        }
        None => String::new(),
    }
}

/// Go `t.Format(time.RFC822)` in local time: `02 Jan 06 15:04 MST`.
pub fn local_rfc822(s: &str) -> String {
    rfc822(s, false)
}

/// Go `t.Format(time.RFC822Z)` in local time: `02 Jan 06 15:04 -0700`.
pub fn local_rfc822z(s: &str) -> String {
    rfc822(s, true)
}

fn rfc822(s: &str, numeric_zone: bool) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Some(t) = parse_time(s) else {
        return String::new();
    };
    let l = local_time(t);
    let o = l.offset_secs.unsigned_abs();
    let sign = if l.offset_secs < 0 { '-' } else { '+' };
    let zone = if l.offset_secs == 0 && !numeric_zone {
        "UTC".to_string()
    } else {
        format!("{sign}{:02}{:02}", o / 3600, (o / 60) % 60)
    };
    format!(
        "{:02} {} {:02} {:02}:{:02} {zone}",
        l.day,
        MONTHS[(l.month as usize).clamp(1, 12) - 1],
        l.year % 100,
        l.hour,
        l.minute
    )
}

/// natscli's `humanizeDuration`.
pub fn humanize(d: Duration) -> String {
    humanize_duration(d)
}

/// natscli's `humanizeDuration(time.Since(t))`; `never` for the zero time.
pub fn since(s: &str) -> String {
    match parse_time(s) {
        Some(t) => humanize_duration(SystemTime::now().duration_since(t).unwrap_or_default()),
        None => "never".to_string(),
    }
}

/// A Go duration in nanoseconds as `time.Duration.String()`.
pub fn go_nanos(n: i64) -> String {
    if n < 0 {
        return format!("-{}", go_duration(Duration::from_nanos(n.unsigned_abs())));
    }
    go_duration(Duration::from_nanos(n as u64))
}

/// natscli's `parseDurationString`: Go durations plus `d`, `w`, `M` and `y` units.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Duration::ZERO);
    }
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = &s[digits.len()..];
    let long = match unit {
        "d" | "D" => Some(24 * 3600),
        "w" | "W" => Some(7 * 24 * 3600),
        "M" => Some(30 * 24 * 3600),
        "y" | "Y" => Some(365 * 24 * 3600),
        _ => None,
    };
    if let (Some(mult), false) = (long, digits.is_empty()) {
        let n: u64 = digits.parse()?;
        return Ok(Duration::from_secs(n * mult));
    }
    crate::output::parse_duration(s)
}

/// natscli's byte sizes: a plain number, or with `K`/`KB`/`KiB`, `M`, `G`, `T` (1024 based).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        anyhow::bail!("invalid size {s:?}");
    }
    let n: i64 = digits.parse()?;
    let mult: i64 = match s[digits.len()..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => anyhow::bail!("invalid size {s:?}"),
    };
    Ok(n * mult)
}

/// Go's `strings.Title` of a policy word, as jsm.go's `String()` methods print them.
pub fn title(s: &str) -> String {
    match s {
        "workqueue" => "WorkQueue".to_string(),
        "last_per_subject" => "Last Per Subject".to_string(),
        "by_start_sequence" => "By Start Sequence".to_string(),
        "by_start_time" => "By Start Time".to_string(),
        _ => {
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_words() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1K").unwrap(), 1024);
        assert_eq!(parse_bytes("2MB").unwrap(), 2 << 20);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("x").is_err());
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(title("limits"), "Limits");
        assert_eq!(title("workqueue"), "WorkQueue");
        assert_eq!(go_nanos(120_000_000_000), "2m0s");
        assert_eq!(utc_stamp("2024-01-02T03:04:05.5Z"), "2024-01-02T03:04:05");
        assert_eq!(local_rfc3339("0001-01-01T00:00:00Z"), "");
    }
}
