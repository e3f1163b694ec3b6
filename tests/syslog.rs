//! Syslog output side by side with the reference: listeners inside the test (UDP, TCP and a
//! unix stream socket) receive what each server sends for the same run, and the messages
//! are compared with pids, times, ids and ports masked; start-up errors are compared as text.

use crate::config::TempDir;
use crate::support::{free_port, ours, reference, spawn, wait_until, Raw};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One syslog message taken apart: priority, whether it had the network form (with a host
/// name), and the message text with ids and ports masked.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Msg {
    pri: u8,
    network_form: bool,
    text: String,
}

fn is_rfc3339(s: &str) -> bool {
    // 2006-01-02T15:04:05Z or 2006-01-02T15:04:05+07:00
    let b = s.as_bytes();
    (s.len() == 20 && b[19] == b'Z' || s.len() == 25 && matches!(b[19], b'+' | b'-'))
        && b[4] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
}

fn is_stamp(s: &str) -> bool {
    // Jan _2 15:04:05
    s.len() == 15 && s.as_bytes()[9] == b':' && s.as_bytes()[12] == b':'
}

/// Replaces server ids (N + 55 base32 characters) and port numbers after `:`.
fn mask(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(' ') {
        if !out.is_empty() {
            out.push(' ');
        }
        if word.len() == 56 && word.starts_with('N') {
            out.push_str("<ID>");
        } else if let Some((h, p)) = word.rsplit_once(':') {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(&format!("{h}:<PORT>"));
            } else {
                out.push_str(word);
            }
        } else {
            out.push_str(word);
        }
    }
    out
}

/// Parses `<PRI>TIME [HOST ]TAG[PID]: MSG` and checks every part but the message.
fn parse(line: &str, pid: u32) -> Msg {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let rest = line.strip_prefix('<').unwrap_or_else(|| panic!("{line:?}"));
    let (pri, rest) = rest.split_once('>').unwrap();
    let tag = format!("nats-server[{pid}]: ");
    let (head, text) = rest
        .split_once(&tag)
        .unwrap_or_else(|| panic!("no tag {tag:?} in {line:?}"));
    let network_form = if let Some(ts) = head.strip_suffix(&format!(" {} ", hostname())) {
        assert!(is_rfc3339(ts), "{line:?}");
        true
    } else {
        let ts = head.strip_suffix(' ').unwrap();
        assert!(is_stamp(ts), "{line:?}");
        false
    };
    Msg {
        pri: pri.parse().unwrap(),
        network_form,
        text: mask(text),
    }
}

/// Messages collected from a listener thread.
struct Inbox(mpsc::Receiver<String>, Vec<String>);

impl Inbox {
    /// Waits until a message containing `needle` arrived.
    fn wait(&mut self, needle: &str) -> bool {
        let end = std::time::Instant::now() + T;
        while !self.1.iter().any(|m| m.contains(needle)) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.0.recv_timeout(left) {
                Ok(m) => self.1.push(m),
                Err(_) => return false,
            }
        }
        true
    }
}

fn udp_inbox() -> (Inbox, String) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}", sock.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = sock.recv(&mut buf) {
            if tx
                .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (Inbox(rx, Vec::new()), url)
}

fn stream_lines<R: std::io::Read + Send + 'static>(r: R, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { return };
            if tx.send(format!("{l}\n")).is_err() {
                return;
            }
        }
    });
}

fn tcp_inbox() -> (Inbox, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            stream_lines(s, tx.clone());
        }
    });
    (Inbox(rx, Vec::new()), url)
}

fn unix_inbox(dir: &Path) -> (Inbox, String) {
    let path = dir.join("syslog.sock");
    let l = UnixListener::bind(&path).unwrap();
    let url = format!("unix://{}", path.display());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            stream_lines(s, tx.clone());
        }
    });
    (Inbox(rx, Vec::new()), url)
}

/// Runs `exe` logging to `url` through start-up, a client at -DV, and shutdown; returns the
/// parsed messages.
fn session(exe: &Path, inbox: &mut Inbox, url: &str, extra: &[&str]) -> Vec<Msg> {
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["-a", "127.0.0.1", "-p", &p, "-r", url];
    args.extend_from_slice(extra);
    let mut s = spawn(exe, &args);
    assert!(inbox.wait("Server is ready"), "{}", s.log_text());
    // Nothing goes to stderr while syslog is in use.
    let mut r = Raw::connect(port);
    r.info();
    r.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n");
    r.sync();
    drop(r);
    if extra.contains(&"-DV") {
        assert!(inbox.wait("Client connection closed"));
    }
    s.signal(libc::SIGINT);
    assert!(
        inbox.wait("Server Exiting.."),
        "{}: no \"Server Exiting..\" in syslog; got {:?}",
        exe.display(),
        inbox.1
    );
    assert!(s.wait_exit(T).is_some());
    assert_eq!(
        s.log_text(),
        "",
        "{}: stderr while logging to syslog",
        exe.display()
    );
    let pid = s.pid();
    std::mem::take(&mut inbox.1)
        .iter()
        .map(|m| parse(m, pid))
        .collect()
}

/// Start-up and shutdown at the default level: the same messages with the same priorities.
fn compare_default(make: impl Fn() -> (Inbox, String), network_form: bool) {
    let (mut inbox, url) = make();
    let want = session(&reference(), &mut inbox, &url, &[]);
    let (mut inbox, url) = make();
    let got = session(&ours(), &mut inbox, &url, &[]);
    assert!(
        want.iter().all(|m| m.network_form == network_form),
        "{want:?}"
    );
    assert_eq!(got, want);
}

#[test]
fn remote_udp_messages_match_the_reference() {
    compare_default(udp_inbox, true);
}

#[test]
fn remote_tcp_messages_match_the_reference() {
    compare_default(tcp_inbox, true);
}

#[test]
fn remote_unix_socket_messages_match_the_reference() {
    let dir = TempDir::new("syslog-ref");
    let dir2 = TempDir::new("syslog-ours");
    let (mut inbox, url) = unix_inbox(&dir.0);
    let want = session(&reference(), &mut inbox, &url, &[]);
    let (mut inbox, url) = unix_inbox(&dir2.0);
    let got = session(&ours(), &mut inbox, &url, &[]);
    assert!(want.iter().all(|m| !m.network_form), "{want:?}");
    assert_eq!(got, want);
}

/// At -DV, debug lines go out as LOG_DEBUG (7) and protocol traces as LOG_NOTICE (5).
#[test]
fn debug_and_trace_priorities() {
    for exe in [reference(), ours()] {
        let (mut inbox, url) = udp_inbox();
        let msgs = session(&exe, &mut inbox, &url, &["-DV"]);
        let pri_of = |needle: &str| {
            msgs.iter()
                .find(|m| m.text.contains(needle))
                .unwrap_or_else(|| panic!("{}: no {needle:?} in {msgs:#?}", exe.display()))
                .pri
        };
        assert_eq!(pri_of("Client connection created"), 7);
        assert_eq!(pri_of("<<- [SUB foo 1]"), 5);
        assert_eq!(pri_of("Server is ready"), 5);
    }
}

/// `Go log` lines: `yyyy/mm/dd hh:mm:ss message`; the time is masked.
fn fatal_text(exe: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (code, _, err) = crate::support::run_bounded(exe, args, T);
    let masked = err
        .lines()
        .map(|l| {
            let b = l.as_bytes();
            if l.len() > 20 && b[4] == b'/' && b[7] == b'/' && b[13] == b':' {
                format!("<TIME> {}", &l[20..])
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    (code, masked)
}

#[test]
fn unreachable_or_invalid_syslog_exits_like_the_reference() {
    let refused = format!("tcp://127.0.0.1:{}", free_port());
    let mut cases = vec![
        vec!["-r", "syslog://127.0.0.1:514"],
        vec!["-r", refused.as_str()],
        vec!["-r", "unix:///nonexistent/syslog.sock"],
        vec!["-r", "127.0.0.1:514"],
        vec!["-r", "udp://localhost"],
    ];
    // Local syslog: only where no daemon socket exists (the test machine has none).
    let local = ["/dev/log", "/var/run/syslog", "/var/run/log"];
    let has_local = local.iter().any(|p| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
    });
    if !has_local {
        cases.push(vec!["-s"]);
        cases.push(vec!["--syslog"]);
    }
    for mut args in cases {
        args.extend_from_slice(&["-p", "-1"]);
        let want = fatal_text(&reference(), &args);
        assert_eq!(want.0, Some(1), "{args:?}: {}", want.1);
        assert_eq!(fatal_text(&ours(), &args), want, "{args:?}");
    }
    if !has_local {
        assert_eq!(
            fatal_text(&ours(), &["-s", "-p", "-1"]).1,
            "<TIME> error connecting to syslog: \"Unix syslog delivery error\""
        );
    }
}

/// A log file wins over syslog on both servers.
#[test]
fn log_file_wins_over_syslog() {
    for exe in [reference(), ours()] {
        let dir = TempDir::new("syslog-file");
        let file = dir.0.join("s.log");
        let (inbox, url) = udp_inbox();
        let port = free_port().to_string();
        let s = spawn(
            &exe,
            &["-p", &port, "-r", &url, "-l", file.to_str().unwrap()],
        );
        assert!(wait_until(T, || std::fs::read_to_string(&file)
            .is_ok_and(|t| t.contains("Server is ready"))));
        drop(s);
        // One destination at a time: what went to the file did not go to syslog.
        assert!(inbox.0.try_recv().is_err(), "{}", exe.display());
    }
}
