//! The reference CLI's output conventions: `HH:MM:SS message` log lines on stderr, number
//! and size formatting, local time.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub offset_secs: i64,
}

pub fn local_time(t: SystemTime) -> LocalTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let tt: libc::time_t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value; localtime_r only writes into the struct we
    // own and reads the time_t we pass.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if !ok {
        return utc_time(secs);
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        offset_secs: tm.tm_gmtoff,
    }
}

fn utc_time(secs: i64) -> LocalTime {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    LocalTime {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: ((sod / 60) % 60) as u32,
        second: (sod % 60) as u32,
        offset_secs: 0,
    }
}

/// `HH:MM:SS` now, local time (Go `log.Ltime`).
pub fn clock() -> String {
    let t = local_time(SystemTime::now());
    format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second)
}

/// Go's RFC3339: `2006-01-02T15:04:05Z07:00`.
pub fn rfc3339(t: SystemTime) -> String {
    let l = local_time(t);
    let zone = if l.offset_secs == 0 {
        "Z".to_string()
    } else {
        let sign = if l.offset_secs < 0 { '-' } else { '+' };
        let o = l.offset_secs.unsigned_abs();
        format!("{sign}{:02}:{:02}", o / 3600, (o / 60) % 60)
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        l.year, l.month, l.day, l.hour, l.minute, l.second
    )
}

/// Go's Kitchen layout: `3:04PM`.
pub fn kitchen(t: SystemTime) -> String {
    let l = local_time(t);
    let h = match l.hour % 12 {
        0 => 12,
        h => h,
    };
    let ampm = if l.hour < 12 { "AM" } else { "PM" };
    format!("{h}:{:02}{ampm}", l.minute)
}

/// Writes to stdout, ignoring a closed pipe (as a command piped into `head` must not fail).
pub fn print(s: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_ref().as_bytes());
    let _ = out.flush();
}

/// Writes one log line to stderr.
pub fn log(msg: impl AsRef<str>) {
    let line = format!("{} {}\n", clock(), msg.as_ref());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! logf {
    ($($arg:tt)*) => { $crate::output::log(format!($($arg)*)) };
}

/// `1234567` → `1,234,567`.
pub fn commas(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The bench report's 1024-based size: `%.2f B`, `%.2f KB`, `%.2f MB`...
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if !bytes.is_finite() || bytes < 1024.0 {
        return format!("{:.2} B", if bytes.is_finite() { bytes } else { 0.0 });
    }
    let exp = ((bytes.ln() / 1024f64.ln()) as usize).clamp(1, UNITS.len());
    format!(
        "{:.2} {}B",
        bytes / 1024f64.powi(exp as i32),
        UNITS[exp - 1]
    )
}

/// go-humanize `IBytes`: `128 B`, `1.0 KiB`, `10 KiB`, `1.5 MiB`.
pub fn iec_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 10 {
        return format!("{n} B");
    }
    let e = ((n as f64).ln() / 1024f64.ln()).floor() as usize;
    let e = e.min(UNITS.len() - 1);
    let val = ((n as f64) / 1024f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1} {}", UNITS[e])
    } else {
        format!("{val:.0} {}", UNITS[e])
    }
}

/// natscli's `humanizeDuration`: `1y2d3h4m5s`, `2d3h4m5s`, `3h4m5s`, `4m5s`, or `5.12s`.
pub fn humanize_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hrs) = (secs / 60, secs / 3600);
    let (days, yrs) = (hrs / 24, hrs / 24 / 365);
    if yrs > 0 {
        format!(
            "{yrs}y{}d{}h{}m{}s",
            days % 365,
            hrs % 24,
            mins % 60,
            secs % 60
        )
    } else if days > 0 {
        format!("{days}d{}h{}m{}s", hrs % 24, mins % 60, secs % 60)
    } else if hrs > 0 {
        format!("{hrs}h{}m{}s", mins % 60, secs % 60)
    } else if mins > 0 {
        format!("{mins}m{}s", secs % 60)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Go's `json.Indent(dst, src, "", "  ")`: re-indents JSON text without reordering it.
/// Whitespace outside strings is dropped; empty objects and arrays stay `{}` and `[]`.
pub fn indent_json(src: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

pub fn go_duration(d: Duration) -> String {
    nats_common::monitor::go_duration_string(d)
}

pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    nats_common::monitor::parse_go_duration(s.trim()).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(commas(0), "0");
        assert_eq!(commas(999), "999");
        assert_eq!(commas(1000), "1,000");
        assert_eq!(commas(1238785), "1,238,785");
        assert_eq!(commas(-12345), "-12,345");
        assert_eq!(human_bytes(57.44 * 1024.0 * 1024.0), "57.44 MB");
        assert_eq!(human_bytes(100.0), "100.00 B");
        assert_eq!(human_bytes(2048.0), "2.00 KB");
        assert_eq!(iec_bytes(128), "128 B");
        assert_eq!(iec_bytes(1024), "1.0 KiB");
        assert_eq!(iec_bytes(10 * 1024), "10 KiB");
        assert_eq!(iec_bytes(5), "5 B");
    }

    #[test]
    fn durations_and_json() {
        assert_eq!(humanize_duration(Duration::from_millis(5123)), "5.12s");
        assert_eq!(humanize_duration(Duration::from_secs(65)), "1m5s");
        assert_eq!(
            humanize_duration(Duration::from_secs(3 * 86_400 + 61)),
            "3d0h1m1s"
        );
        assert_eq!(
            indent_json(r#"[{"a":{},"b":[1,2],"c":"x,{:}\"y"}]"#),
            "[\n  {\n    \"a\": {},\n    \"b\": [\n      1,\n      2\n    ],\n    \"c\": \"x,{:}\\\"y\"\n  }\n]"
        );
    }

    #[test]
    fn times() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let u = utc_time(1_700_000_000);
        assert_eq!((u.year, u.month, u.day, u.hour), (2023, 11, 14, 22));
        assert!(rfc3339(t).starts_with("2023-11-1"));
        assert!(kitchen(t).ends_with('M'));
        assert_eq!(clock().len(), 8);
    }
}
