//! Log lines in the reference format: `[pid] yyyy/mm/dd hh:mm:ss.uuuuuu [INF] message`.
//!
//! Built as a tracing layer so the rest of the server logs with the usual `tracing`
//! macros. Levels and the destination can change at run time (reload, SIGUSR1 reopen).

use parking_lot::Mutex;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Target used for fatal lines (`[FTL]`), which tracing has no level for.
pub const FATAL: &str = "fatal";

struct Logger {
    /// `[DBG]` lines; independent of `trace`, as in the reference.
    debug: AtomicBool,
    /// `[TRC]` lines.
    trace: AtomicBool,
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
    /// Local or remote syslog.
    Syslog(crate::syslog::Writer),
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn logger() -> &'static Logger {
    LOGGER.get_or_init(|| Logger {
        debug: AtomicBool::new(false),
        trace: AtomicBool::new(false),
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
    /// `-s`: log to the local syslog daemon.
    pub syslog: bool,
    /// `-r URL`: log to a remote syslog.
    pub remote_syslog: &'a str,
}

/// Why the logger could not be set up.
#[derive(Debug)]
pub enum LogError {
    /// The log file could not be opened.
    File(std::io::Error),
    /// Syslog could not be reached; the text is the reference's fatal message.
    Syslog(String),
}

impl LogError {
    /// Reports the error the way the reference does and returns the exit code: file
    /// errors as `nats-server: …`, syslog errors through Go's standard logger
    /// (`yyyy/mm/dd hh:mm:ss message`), both exit 1.
    pub fn report(&self) {
        match self {
            LogError::File(e) => eprintln!("nats-server: error opening log file: {e}"),
            LogError::Syslog(msg) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let ts = local_timestamp_at(now, '/', ' ', false);
                // Go's log package prints seconds only.
                eprintln!("{} {msg}", &ts[..19]);
            }
        }
    }
}

/// Installs the logger. Safe to call once; later changes go through `configure`.
pub fn init(cfg: &LogConfig) -> Result<(), LogError> {
    configure(cfg)?;
    let _ = tracing_subscriber::registry().with(NatsLayer).try_init();
    Ok(())
}

/// Applies new settings (used at start and on reload). As on the reference, a log file
/// wins over remote syslog, which wins over local syslog; otherwise stderr.
pub fn configure(cfg: &LogConfig) -> Result<(), LogError> {
    let l = logger();
    let sink = match cfg.file {
        Some(path) => {
            let f = open_log(path).map_err(LogError::File)?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            Sink::File(path.to_path_buf(), f, len)
        }
        None if !cfg.remote_syslog.is_empty() => Sink::Syslog(
            crate::syslog::Writer::remote(cfg.remote_syslog).map_err(LogError::Syslog)?,
        ),
        None if cfg.syslog => {
            Sink::Syslog(crate::syslog::Writer::local().map_err(LogError::Syslog)?)
        }
        None => Sink::Stderr,
    };
    l.debug.store(cfg.debug, Ordering::Relaxed);
    l.trace.store(cfg.trace, Ordering::Relaxed);
    l.logtime.store(cfg.logtime, Ordering::Relaxed);
    l.size_limit.store(cfg.size_limit, Ordering::Relaxed);
    let color = matches!(sink, Sink::Stderr) && std::io::stderr().is_terminal();
    l.color.store(color, Ordering::Relaxed);
    *l.out.lock() = sink;
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
    logger().trace.load(Ordering::Relaxed)
}

/// Whether a line of this level is written under the current settings.
fn wanted(l: &Logger, level: &Level) -> bool {
    match *level {
        Level::DEBUG => l.debug.load(Ordering::Relaxed),
        Level::TRACE => l.trace.load(Ordering::Relaxed),
        _ => true,
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
        if !wanted(l, meta.level()) {
            return;
        }
        let fatal = meta.target() == FATAL;
        let tag = if fatal {
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
        let mut out = l.out.lock();
        if let Sink::Syslog(w) = &mut *out {
            // Syslog gets the bare message; the daemon adds time and process.
            let mut msg = String::with_capacity(96);
            event.record(&mut MessageVisitor(&mut msg));
            let severity = match tag {
                "FTL" => crate::syslog::CRIT,
                "ERR" => crate::syslog::ERR,
                "WRN" => crate::syslog::WARNING,
                "DBG" => crate::syslog::DEBUG,
                // Notices and traces alike, as the reference's syslog logger sends them.
                _ => crate::syslog::NOTICE,
            };
            w.send(severity, &msg);
            return;
        }
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
            Sink::Syslog(_) => Ok(()),
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

/// Which protocol a connection speaks, for the trace lines of the ops it receives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OpDialect {
    /// A route or a gateway: `RS+ acc subj`, `RMSG acc subj`, (routes) `LS+ origin acc ...`.
    Route,
    /// A leaf node connection: `LS+ subj`, `LMSG subj` (no account).
    Leaf,
    /// A client: `SUB`, `UNSUB` (a client's `PUB` is traced with its payload by the client).
    Client,
}

/// The text of a `<<- [...]` trace line for an op received, as the reference writes it;
/// `None` for what the reference does not trace (INFO, and ops foreign to the dialect).
pub fn inbound_op_line(op: &nats_common::proto::Op<'_>, dialect: OpDialect) -> Option<String> {
    use nats_common::proto::Op;
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // `LS+`/`LMSG` name no account on a leaf connection; on a route they carry the origin.
    let acc = |a: &[u8]| {
        if dialect == OpDialect::Leaf {
            String::new()
        } else {
            format!("{} ", s(a))
        }
    };
    Some(match op {
        Op::Ping => "PING".to_string(),
        Op::Pong => "PONG".to_string(),
        Op::Ok => "OK".to_string(),
        Op::Connect(j) => format!("CONNECT {}", crate::auth::redact_connect(j)),
        Op::Info(_) => return None,
        Op::Err(t) => format!("-ERR '{}'", s(t)),
        Op::Sub {
            subject,
            queue,
            sid,
        } if dialect == OpDialect::Client => match queue {
            Some(q) => format!("SUB {} {} {}", s(subject), s(q), s(sid)),
            None => format!("SUB {} {}", s(subject), s(sid)),
        },
        Op::Unsub { sid, max } if dialect == OpDialect::Client => match max {
            Some(m) => format!("UNSUB {} {m}", s(sid)),
            None => format!("UNSUB {}", s(sid)),
        },
        Op::RouteSub {
            account,
            subject,
            queue,
            weight,
            origin,
        } if dialect != OpDialect::Client => {
            let head = match (dialect, origin) {
                (OpDialect::Leaf, _) => "LS+".to_string(),
                (_, Some(o)) => format!("LS+ {}", s(o)),
                _ => "RS+".to_string(),
            };
            match queue {
                Some(q) => format!("{head} {}{} {} {weight}", acc(account), s(subject), s(q)),
                None => format!("{head} {}{}", acc(account), s(subject)),
            }
        }
        Op::RouteUnsub {
            account,
            subject,
            queue,
        } if dialect != OpDialect::Client => {
            let head = if dialect == OpDialect::Leaf {
                "LS-"
            } else {
                "RS-"
            };
            match queue {
                Some(q) => format!("{head} {}{} {}", acc(account), s(subject), s(q)),
                None => format!("{head} {}{}", acc(account), s(subject)),
            }
        }
        Op::AccountSub(a) if dialect == OpDialect::Route => format!("A+ {}", s(a)),
        Op::AccountUnsub(a) if dialect == OpDialect::Route => format!("A- {}", s(a)),
        Op::RouteMsg {
            account,
            msg,
            queues,
            origin,
        } if dialect != OpDialect::Client => {
            let head = match (dialect, origin) {
                (OpDialect::Leaf, _) if msg.headers.is_some() => "HMSG".to_string(),
                (OpDialect::Leaf, _) => "LMSG".to_string(),
                (_, Some(o)) => format!("LMSG {}", s(o)),
                _ if msg.headers.is_some() => "HMSG".to_string(),
                _ => "RMSG".to_string(),
            };
            let mut l = format!("{head} {}{}", acc(account), s(msg.subject));
            if !queues.is_empty() {
                match msg.reply {
                    Some(r) => l.push_str(&format!(" + {}", s(r))),
                    None => l.push_str(" |"),
                }
                l.push_str(&format!(" {}", s(queues.0)));
            } else if let Some(r) = msg.reply {
                l.push_str(&format!(" {}", s(r)));
            }
            if let Some(h) = msg.headers {
                l.push_str(&format!(" {}", h.len()));
            }
            l.push_str(&format!(" {}", msg.size()));
            l
        }
        _ => return None,
    })
}
