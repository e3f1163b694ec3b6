//! Shared test plumbing: finds the built binaries, picks free ports, starts and always stops
//! servers (ours and the reference), waits on conditions, and speaks raw protocol.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Go reference server from the Debian package.
pub const REFERENCE: &str = "/usr/sbin/nats-server";

/// Directory holding the workspace binaries (target/<profile>), found from this test
/// executable (target/<profile>/deps/integration-…).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("NATS_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Path of a workspace binary; fails loudly when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built; run the README's test command (it builds all binaries first)",
        p.display()
    );
    p
}

/// Our server binary.
pub fn ours() -> PathBuf {
    bin("nats-server")
}

/// The reference server; the test command installs it, so its absence is a failure.
pub fn reference() -> PathBuf {
    let p = PathBuf::from(REFERENCE);
    assert!(
        p.exists(),
        "reference server missing at {REFERENCE}: run the README's test command, which installs it"
    );
    p
}

/// Compares a transcript with the reference's line by line; fails listing every line that
/// differs (`who` names the other server).
pub fn assert_same_transcript(reference: &[String], who: &str, other: &[String]) {
    let mut diffs = Vec::new();
    for i in 0..reference.len().max(other.len()) {
        let a = reference.get(i).map(String::as_str).unwrap_or("<missing>");
        let b = other.get(i).map(String::as_str).unwrap_or("<missing>");
        if a != b {
            diffs.push(format!("reference: {a}\n{who}:      {b}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n\n")
    );
}

/// A single-threaded runtime for a test's async part.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A port nobody listens on right now, handed out once per test run.
///
/// Taken below the kernel's range for outgoing connections' local ports (32768–60999 on
/// Linux), from a counter that starts at a random place: a port the kernel picked for us
/// (bind to 0) can be given to any outgoing connection of another test before our server
/// binds it (seen in full parallel runs), and no two tests of this run get the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        let _ = NEXT.compare_exchange(0, 1 + seed % SPAN, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + n % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("0.0.0.0", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. libc::SIGHUP).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit, returning its status code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_text().contains(needle))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // NATS_KEEP_LOGS=1 keeps process logs for debugging a failure.
        if std::env::var_os("NATS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn log_path(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("nats-it-{}-{tag}-{n}.log", std::process::id()))
}

/// Starts `exe` with `args`, stdout and stderr into a log file.
pub fn spawn(exe: &Path, args: &[&str]) -> Proc {
    let log = log_path(exe.file_name().and_then(|n| n.to_str()).unwrap_or("proc"));
    let f = std::fs::File::create(&log).expect("log file");
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().expect("dup"))
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
    Proc { child, log }
}

/// A running server (ours or the reference) on a free client port.
pub struct ServerProc {
    pub proc: Proc,
    pub port: u16,
}

impl ServerProc {
    /// Starts `exe -a 127.0.0.1 -p <free> <args>` and waits until it accepts connections.
    pub fn start(exe: &Path, args: &[&str]) -> ServerProc {
        let port = free_port();
        Self::start_on(exe, port, args)
    }

    pub fn start_on(exe: &Path, port: u16, args: &[&str]) -> ServerProc {
        let p = port.to_string();
        let mut all = vec!["-a", "127.0.0.1", "-p", &p];
        all.extend_from_slice(args);
        let proc = spawn(exe, &all);
        let s = ServerProc { proc, port };
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "server {} did not start; log:\n{}",
            exe.display(),
            s.proc.log_text()
        );
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A raw protocol connection for exact-bytes tests.
pub struct Raw {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Raw { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one line including its CRLF; empty string at EOF.
    pub fn line(&mut self) -> String {
        let mut s = String::new();
        match self.reader.read_line(&mut s) {
            Ok(_) => s,
            Err(e) => panic!("read line: {e}"),
        }
    }

    /// Reads one line, or `None` on EOF, timeout or error.
    pub fn try_line(&mut self) -> Option<String> {
        let mut s = String::new();
        match self.reader.read_line(&mut s) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(s),
        }
    }

    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        self.reader.read_exact(&mut b).expect("read bytes");
        b
    }

    /// Reads the INFO line and returns its JSON.
    pub fn info(&mut self) -> serde_json::Value {
        let l = self.line();
        let json = l
            .strip_prefix("INFO ")
            .unwrap_or_else(|| panic!("expected INFO, got {l:?}"));
        serde_json::from_str(json.trim_end()).expect("INFO json")
    }

    /// Whether the server closed the connection (EOF) within `timeout`, skipping nothing.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        self.stream.set_read_timeout(Some(timeout)).ok();
        let mut b = [0u8; 1];
        let r = matches!(self.reader.read(&mut b), Ok(0));
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .ok();
        r
    }

    /// Sends PING and reads lines until PONG, returning the lines before it.
    pub fn sync(&mut self) -> Vec<String> {
        self.send(b"PING\r\n");
        let mut out = Vec::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "EOF before PONG; got {out:?}");
            if l == "PONG\r\n" {
                return out;
            }
            out.push(l);
        }
    }
}

/// Runs `exe args` to completion and returns (exit code, stdout, stderr). A process still
/// running after `timeout` is killed and reported with code `None`, so a binary that starts
/// a server where it should have exited fails the test instead of hanging it.
pub fn run_bounded(exe: &Path, args: &[&str], timeout: Duration) -> (Option<i32>, String, String) {
    let out = log_path("out");
    let err = log_path("err");
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
    let mut p = Proc {
        child,
        log: err.clone(),
    };
    let code = p.wait_exit(timeout);
    if code.is_none() {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    drop(p);
    let _ = std::fs::remove_file(&err);
    (code, stdout, stderr)
}

/// Starts `exe` with the configuration `text` (and `extra` flags); the directory holding the
/// file lives as long as the returned guard.
pub fn start_with_config(
    exe: &Path,
    tag: &str,
    text: &str,
    extra: &[&str],
) -> (ServerProc, crate::config::TempDir) {
    let dir = crate::config::TempDir::new(tag);
    let f = dir.write("s.conf", text);
    let mut args = vec!["-c", f.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let s = ServerProc::start(exe, &args);
    (s, dir)
}

/// A raw client logged in as `user` (password: the user name) with headers on; `extra` adds
/// CONNECT fields (`,"name":"x"`). Panics unless the server accepts it.
pub fn login(port: u16, user: &str, extra: &str) -> Raw {
    let mut r = Raw::connect(port);
    r.info();
    r.send(
        format!(
            "CONNECT {{\"verbose\":false,\"headers\":true,\"user\":\"{user}\",\"pass\":\"{user}\"{extra}}}\r\n"
        )
        .as_bytes(),
    );
    let got = r.sync();
    assert!(got.is_empty(), "login {user}: {got:?}");
    r
}
