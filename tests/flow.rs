//! Flow control: a fast publisher is held back to the pace of a slower but healthy
//! subscriber instead of that subscriber being cut off; a subscriber that stops reading is
//! still cut off, and the others keep every message. Same outcome as the reference.

use crate::config::TempDir;
use crate::support::{free_port, ours, reference, Raw, ServerProc};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Shrinks a socket's receive buffer, so a client that reads little holds little in the
/// kernel and the server's own buffers fill.
fn small_rcvbuf(r: &Raw) {
    let size: libc::c_int = 64 * 1024;
    // SAFETY: setsockopt on a socket this process owns, with a correctly sized int.
    let rc = unsafe {
        libc::setsockopt(
            r.stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_RCVBUF");
}

/// A subscriber on `subject` (and on `done`) that reads every message on its own thread,
/// sleeping `pause` after each 64 KB when given (slower than the publisher, but healthy).
/// Returns how many `subject` messages arrived before `done`, or how many before it was
/// cut off.
fn subscriber(
    port: u16,
    subject: &str,
    pause: Option<Duration>,
) -> JoinHandle<Result<usize, String>> {
    let mut r = Raw::connect(port);
    r.stream.set_read_timeout(Some(T)).unwrap();
    small_rcvbuf(&r);
    r.info();
    r.send(
        format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nSUB done 2\r\n").as_bytes(),
    );
    r.sync();
    std::thread::spawn(move || {
        let mut count = 0;
        let mut since_pause = 0usize;
        loop {
            let Some(l) = r.try_line() else {
                return Err(format!("disconnected after {count} messages"));
            };
            if l == "PING\r\n" {
                r.send(b"PONG\r\n");
                continue;
            }
            let size: usize = l.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
            r.bytes(size + 2);
            if l.starts_with("MSG done") {
                return Ok(count);
            }
            count += 1;
            since_pause += size;
            if let Some(p) = pause {
                if since_pause >= 64 * 1024 {
                    since_pause = 0;
                    std::thread::sleep(p);
                }
            }
        }
    })
}

/// A subscriber to `subject` that never reads.
fn stuck(port: u16, subject: &str) -> Raw {
    let mut r = Raw::connect(port);
    small_rcvbuf(&r);
    r.info();
    r.send(format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\n").as_bytes());
    r.sync();
    r
}

/// Publishes `n` messages of `size` bytes on `subject` as fast as the server takes them,
/// then `done` (after a round trip, so it follows them everywhere).
fn publish(port: u16, subject: &str, n: usize, size: usize) {
    let mut p = Raw::connect(port);
    p.stream.set_read_timeout(Some(T)).unwrap();
    p.info();
    p.send(b"CONNECT {\"verbose\":false}\r\n");
    let mut m = format!("PUB {subject} {size}\r\n").into_bytes();
    m.extend(std::iter::repeat_n(b'x', size));
    m.extend_from_slice(b"\r\n");
    let mut batch = Vec::new();
    for _ in 0..n {
        batch.extend_from_slice(&m);
        if batch.len() >= 256 * 1024 {
            p.send(&batch);
            batch.clear();
        }
    }
    p.send(&batch);
    p.sync();
    p.send(b"PUB done 0\r\n\r\n");
    p.sync();
}

fn conf(dir: &TempDir, text: &str) -> String {
    dir.write("s.conf", text).to_str().unwrap().to_string()
}

/// Whether the server closed `r` within `timeout` (reading and dropping what it sent).
fn closed(r: &mut Raw, timeout: Duration) -> bool {
    r.stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(k) = r.stream.read(&mut buf) {
        if k == 0 {
            return true;
        }
    }
    false
}

fn slower_subscriber_keeps_everything(exe: &Path) {
    let dir = TempDir::new("flow-slow");
    // 8 MB max_pending: the publisher below sends 64 MB, far faster than it is read.
    let s = ServerProc::start(exe, &["-c", &conf(&dir, "max_pending: 8388608\n")]);
    let sub = subscriber(s.port, "big", Some(Duration::from_millis(1)));
    let n = 8192;
    publish(s.port, "big", n, 8192);
    assert_eq!(
        sub.join().unwrap(),
        Ok(n),
        "{}: messages lost",
        exe.display()
    );
    assert!(
        !s.proc.log_text().contains("Slow Consumer"),
        "{}: {}",
        exe.display(),
        s.proc.log_text()
    );
}

#[test]
fn a_slower_subscriber_keeps_every_message() {
    std::thread::scope(|t| {
        t.spawn(|| slower_subscriber_keeps_everything(&reference()));
        t.spawn(|| slower_subscriber_keeps_everything(&ours()));
    });
}

/// What happened to the stuck subscriber, from the server's log.
fn stuck_is_cut(exe: &Path) -> &'static str {
    let dir = TempDir::new("flow-stuck");
    let cfg = conf(&dir, "max_pending: 8388608\nwrite_deadline: \"2s\"\n");
    let s = ServerProc::start(exe, &["-c", &cfg]);
    let mut st = stuck(s.port, "big");
    let healthy = subscriber(s.port, "big", None);
    let n = 64; // 32 MB: four times max_pending
    publish(s.port, "big", n, 512 * 1024);
    assert_eq!(
        healthy.join().unwrap(),
        Ok(n),
        "{}: the healthy subscriber lost messages",
        exe.display()
    );
    assert!(
        closed(&mut st, T),
        "{}: the stuck one is still connected",
        exe.display()
    );
    let log = s.proc.log_text();
    if log.contains("Slow Consumer Detected: WriteDeadline of 2s exceeded") {
        "write deadline"
    } else if log.contains("Slow Consumer Detected: MaxPending of 8388608 Exceeded") {
        "max pending"
    } else {
        panic!("{}: no slow consumer in the log:\n{log}", exe.display())
    }
}

#[test]
fn a_stuck_subscriber_is_cut_off_and_the_healthy_one_keeps_everything() {
    let (ours, theirs) = std::thread::scope(|t| {
        let r = t.spawn(|| stuck_is_cut(&reference()));
        let o = t.spawn(|| stuck_is_cut(&ours()));
        (o.join().unwrap(), r.join().unwrap())
    });
    assert_eq!(ours, theirs, "why the stuck subscriber was cut off");
}

/// Two clustered servers with `extra` config; returns (node 1, node 2).
fn pair(exe: &Path, dir: &TempDir, extra: &str) -> (ServerProc, ServerProc) {
    let (r1, r2) = (free_port(), free_port());
    let c1 = dir.write(
        "n1.conf",
        &format!("{extra}\ncluster {{ name: t, listen: \"127.0.0.1:{r1}\" }}\n"),
    );
    let c2 = dir.write(
        "n2.conf",
        &format!(
            "{extra}\ncluster {{ name: t, listen: \"127.0.0.1:{r2}\", routes: [\"nats://127.0.0.1:{r1}\"] }}\n"
        ),
    );
    let n1 = ServerProc::start(exe, &["-c", c1.to_str().unwrap()]);
    let n2 = ServerProc::start(exe, &["-c", c2.to_str().unwrap()]);
    (n1, n2)
}

/// Subscriptions made on node 2 have reached node 1: a probe published there arrives.
fn wait_interest(n1: &ServerProc, n2: &ServerProc) {
    let mut sub = Raw::connect(n2.port);
    sub.info();
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB probe 1\r\n");
    sub.sync();
    let mut p = Raw::connect(n1.port);
    p.info();
    p.send(b"CONNECT {\"verbose\":false}\r\n");
    sub.stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    for _ in 0..100 {
        p.send(b"PUB probe 0\r\n\r\n");
        if sub.try_line().is_some_and(|l| l.starts_with("MSG probe")) {
            return;
        }
    }
    panic!("interest did not reach node 1");
}

/// Our routes wait for a local subscriber that is draining, so a healthy subscriber behind
/// a route keeps everything however fast the cluster feeds it (the reference's routes
/// never wait and can overrun it: not compared).
#[test]
fn a_slower_subscriber_behind_a_route_keeps_every_message() {
    let dir = TempDir::new("flow-route");
    let (n1, n2) = pair(&ours(), &dir, "max_pending: 8388608");
    let sub = subscriber(n2.port, "big", Some(Duration::from_millis(1)));
    wait_interest(&n1, &n2);
    let n = 8192;
    publish(n1.port, "big", n, 8192);
    assert_eq!(sub.join().unwrap(), Ok(n), "messages lost behind the route");
    for s in [&n1, &n2] {
        assert!(
            !s.proc.log_text().contains("Slow Consumer"),
            "{}",
            s.proc.log_text()
        );
    }
}

/// A subscriber that stops reading does not hold a route: it is cut off at max_pending,
/// as on the reference. Returns that log line's message and what a healthy subscriber on
/// the same server got.
fn stuck_behind_route(exe: &Path) -> (String, Result<usize, String>) {
    let dir = TempDir::new("flow-route-stuck");
    let (n1, n2) = pair(exe, &dir, "max_pending: 8388608");
    let mut st = stuck(n2.port, "big");
    let healthy = subscriber(n2.port, "big", None);
    wait_interest(&n1, &n2);
    let n = 64;
    publish(n1.port, "big", n, 512 * 1024);
    let got = healthy.join().unwrap();
    assert!(
        closed(&mut st, T),
        "{}: the stuck one is still connected",
        exe.display()
    );
    let log = n2.proc.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("Slow Consumer Detected"))
        .unwrap_or_else(|| panic!("{}: no slow consumer on node 2:\n{log}", exe.display()));
    (line.split(" - ").last().unwrap().to_string(), got)
}

#[test]
fn a_stuck_subscriber_does_not_hold_a_route() {
    let (ours, theirs) = std::thread::scope(|t| {
        let r = t.spawn(|| stuck_behind_route(&reference()));
        let o = t.spawn(|| stuck_behind_route(&ours()));
        (o.join().unwrap(), r.join().unwrap())
    });
    // The reference's route never waits, so on a busy machine it can overrun the healthy
    // subscriber too: only ours is held to keeping everything.
    assert_eq!(ours.1, Ok(64), "the healthy subscriber behind our route");
    assert_eq!(ours.0, theirs.0);
}
