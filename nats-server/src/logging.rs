//! Log lines in the reference format: `[pid] yyyy/mm/dd hh:mm:ss.uuuuuu [INF] message`.
//!
//! Built as a tracing layer so the rest of the server logs with the usual `tracing`
//! macros. Levels and the destination can change at run time (reload, SIGUSR1 reopen).

use parking_lot::Mutex;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Target used for fatal lines (`[FTL]`), which tracing has no level for.
pub const FATAL: &str = "fatal";

const LVL_ERR: u8 = 1;
const LVL_INF: u8 = 3;
const LVL_DBG: u8 = 4;
const LVL_TRC: u8 = 5;

struct Logger {
    level: AtomicU8,
    logtime: AtomicBool,
    color: AtomicBool,
    out: Mutex<Sink>,
    pid: u32,
    /// Rotate the log file past this many bytes; 0 = never.
    size_limit: AtomicU64,
}

enum Sink {
    Stderr,
    /// Path, open file, bytes in it.
    File(PathBuf, File, u64),
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        level: AtomicU8::new(LVL_INF),
        logtime: AtomicBool::new(true),
        color: AtomicBool::new(false),
        out: Mutex::new(Sink::Stderr),
        pid: std::process::id(),
        size_limit: AtomicU64::new(0),
    })
}

/// Settings that decide what is logged and where.
pub struct LogConfig<'a> {
    pub debug: bool,
    pub trace: bool,
    pub logtime: bool,
    pub file: Option<&'a Path>,
    /// `log_size_limit`: rotate the file past this size (0 = never).
    pub size_limit: u64,
}

/// Installs the logger. Safe to call once; later changes go through `configure`.
pub fn init(cfg: &LogConfig) -> std::io::Result<()> {
    configure(cfg)?;
    let _ = tracing_subscriber::registry().with(NatsLayer).try_init();
    Ok(())
}

/// Applies new settings (used at start and on reload).
pub fn configure(cfg: &LogConfig) -> std::io::Result<()> {
    let l = logger();
    let level = if cfg.trace {
        LVL_TRC
    } else if cfg.debug {
        LVL_DBG
    } else {
        LVL_INF
    };
    l.level.store(level, Ordering::Relaxed);
    l.logtime.store(cfg.logtime, Ordering::Relaxed);
    l.size_limit.store(cfg.size_limit, Ordering::Relaxed);
    let mut out = l.out.lock();
    match cfg.file {
        Some(path) => {
            let f = open_log(path)?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            *out = Sink::File(path.to_path_buf(), f, len);
            l.color.store(false, Ordering::Relaxed);
        }
        None => {
            *out = Sink::Stderr;
            l.color
                .store(std::io::stderr().is_terminal(), Ordering::Relaxed);
        }
    }
    Ok(())
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Reopens the log file (SIGUSR1, for logrotate).
pub fn reopen() -> std::io::Result<()> {
    let mut out = logger().out.lock();
    if let Sink::File(path, _, _) = &*out {
        let path = path.clone();
        let f = open_log(&path)?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        *out = Sink::File(path, f, len);
    }
    Ok(())
}

/// Whether protocol tracing is on; checked before formatting trace lines.
#[inline]
pub fn trace_enabled() -> bool {
    logger().level.load(Ordering::Relaxed) >= LVL_TRC
}

fn rank(meta: &Metadata) -> u8 {
    match *meta.level() {
        Level::ERROR => LVL_ERR,
        Level::WARN => 2,
        Level::INFO => LVL_INF,
        Level::DEBUG => LVL_DBG,
        Level::TRACE => LVL_TRC,
    }
}

struct NatsLayer;

struct MessageVisitor<'a>(&'a mut String);

impl Visit for MessageVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for NatsLayer {
    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Levels change at run time, so every callsite is asked each time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // Only our own crate logs; dependencies (hyper, rustls) stay quiet.
        meta.target().starts_with("nats_server") || meta.target() == FATAL
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let l = logger();
        let meta = event.metadata();
        if rank(meta) > l.level.load(Ordering::Relaxed) {
            return;
        }
        let tag = if meta.target() == FATAL {
            "FTL"
        } else {
            match *meta.level() {
                Level::ERROR => "ERR",
                Level::WARN => "WRN",
                Level::INFO => "INF",
                Level::DEBUG => "DBG",
                Level::TRACE => "TRC",
            }
        };
        let mut line = String::with_capacity(128);
        let _ = write!(line, "[{}] ", l.pid);
        if l.logtime.load(Ordering::Relaxed) {
            line.push_str(&local_timestamp());
            line.push(' ');
        }
        if l.color.load(Ordering::Relaxed) {
            let color = match tag {
                "ERR" | "FTL" => "31",
                "WRN" => "33",
                "DBG" => "36",
                "TRC" => "33",
                _ => "32",
            };
            let _ = write!(line, "[\x1b[{color}m{tag}\x1b[0m] ");
        } else {
            let _ = write!(line, "[{tag}] ");
        }
        event.record(&mut MessageVisitor(&mut line));
        line.push('\n');
        let mut out = l.out.lock();
        let _ = match &mut *out {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(path, f, written) => {
                let r = f.write_all(line.as_bytes());
                *written += line.len() as u64;
                let limit = l.size_limit.load(Ordering::Relaxed);
                if limit > 0 && *written > limit {
                    rotate(path, f, written, l.pid);
                }
                r
            }
        };
    }
}

/// Moves a full log file aside as `<file>.<yyyy.mm.dd.hh.mm.ss.nnnnnnnnn>` and starts a new
/// one that says where the old lines went, as the reference does.
fn rotate(path: &Path, f: &mut File, written: &mut u64, pid: u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let stamp = local_timestamp_at(now, '.', '.', true);
    let backup = PathBuf::from(format!("{}.{stamp}", path.display()));
    if std::fs::rename(path, &backup).is_err() {
        return;
    }
    if let Ok(nf) = open_log(path) {
        *f = nf;
        let note = format!(
            "[{pid}] {} [INF] Rotated log, backup saved as {}\n",
            local_timestamp(),
            backup.display()
        );
        let _ = f.write_all(note.as_bytes());
        *written = note.len() as u64;
    }
}

/// `yyyy/mm/dd hh:mm:ss.uuuuuu` in local time, as the reference prints it.
pub fn local_timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    local_timestamp_at(now, '/', ' ', false)
}

/// Local time as `y<d>m<d>d<t>H:M:S.frac` (microseconds, or nanoseconds with `nanos`);
/// with `t` = '.' the time's colons become dots too (for file names).
fn local_timestamp_at(now: std::time::Duration, d: char, t: char, nanos: bool) -> String {
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into the tm we pass and reads the given time_t.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    let c = if t == '.' { '.' } else { ':' };
    let frac = if nanos {
        format!("{:09}", now.subsec_nanos())
    } else {
        format!("{:06}", now.subsec_micros())
    };
    format!(
        "{:04}{d}{:02}{d}{:02}{t}{:02}{c}{:02}{c}{:02}.{frac}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
    )
}

/// The bytes a parser error quotes, as the reference's log shows them: up to 32 from where
/// parsing failed, and when fewer remain, all but the last (`'"FOO\r"...'` for `FOO\r\n`).
pub fn proto_snippet(rest: &[u8]) -> String {
    const MAX: usize = 32;
    if rest.is_empty() {
        return "\"\"".to_string();
    }
    let stop = if rest.len() >= MAX {
        MAX
    } else {
        rest.len() - 1
    };
    format!("{:?}", String::from_utf8_lossy(&rest[..stop]))
}

/// Renders protocol bytes for a trace line the way the reference does (`"hello"`).
pub fn quote_bytes(b: &[u8], max: usize) -> String {
    let cut = if max > 0 && b.len() > max {
        &b[..max]
    } else {
        b
    };
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if cut.len() < b.len() {
        s.push_str("...");
    }
    s
}
