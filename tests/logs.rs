//! The same scenarios on our server and the reference, their logs compared line by line
//! with pids, times, ids, ports and connection numbers masked: start-up, a client at -DV,
//! a route forming and breaking, auth failures, a slow consumer, listen failures.
//!
//! Lines only the reference can write are left out of the comparison: its system account
//! (`$SYS` interest and traffic, `SYSTEM` connection), Go runtime lines (`Go build`,
//! `maxprocs`) against our `Rust build` line, and its fast-producer stalls (flow control,
//! handled separately). Lines are compared as multisets: concurrent events (a dial failing
//! while a route forms, shutdown of listeners and connections) log in varying order on
//! both servers.

use crate::config::TempDir;
use crate::support::{free_port, ours, reference, spawn, wait_until, Proc, Raw};
use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Masks one log line; `None` for lines left out of the comparison.
fn mask(line: &str) -> Option<String> {
    // `[pid] yyyy/mm/dd hh:mm:ss.uuuuuu [LVL] message`
    let body = line.splitn(4, ' ').nth(3)?;
    const SKIP: &[&str] = &[
        "$SYS",
        "SYSTEM",
        "maxprocs",
        "Go build:",
        "Rust build:",
        "fast producer stall",
        "Readloop processing time",
        "Client Ping Timer",
    ];
    if SKIP.iter().any(|s| body.contains(s)) {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Server ids: N and 55 more base32 characters.
        if b[i] == b'N'
            && b.len() - i >= 56
            && b[i..i + 56]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            out.push_str("<ID>");
            i += 56;
            continue;
        }
        // Ports and connection numbers: digits after `:`.
        if b[i] == b':' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push_str(":<N>");
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    Some(out)
}

/// The masked lines of a log up to (not including) the first line containing `stop`,
/// without route keep-alives and the payloads of system-account messages.
fn masked(log: &str, stop: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_payload_of: Vec<String> = Vec::new();
    for line in log.lines() {
        if stop.is_some_and(|s| line.contains(s)) {
            break;
        }
        // A routed system-account message: its payload line follows on the same
        // connection.
        if line.contains("<<- [RMSG $SYS") {
            if let Some(p) = line.split(" - ").next().and_then(|h| h.rsplit(' ').next()) {
                skip_payload_of.push(p.to_string());
            }
        }
        if line.contains("MSG_PAYLOAD") {
            if let Some(pos) = skip_payload_of
                .iter()
                .position(|p| line.contains(p.as_str()))
            {
                skip_payload_of.remove(pos);
                continue;
            }
        }
        if line.contains("rid:") && (line.ends_with("[PING]") || line.ends_with("[PONG]")) {
            continue;
        }
        if let Some(m) = mask(line) {
            // A peer killed outright is seen as EOF or as a reset, depending on whether it
            // had unread bytes (the reference's peer always has some of its own traffic).
            out.push(m.replace(
                "Router connection closed: Read Error",
                "Router connection closed: Client Closed",
            ));
        }
    }
    out.sort();
    out
}

fn assert_same_lines(what: &str, ours: &str, refr: &str, stop: Option<&str>) {
    let (a, b) = (masked(ours, stop), masked(refr, stop));
    if a != b {
        let only_ours: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
        let only_ref: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
        panic!(
            "{what}: logs differ\nonly ours:\n  {}\nonly reference:\n  {}\n\nours:\n{ours}\nreference:\n{refr}",
            only_ours
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  "),
            only_ref
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

/// Starts a server and waits for "Server is ready" (no probe connection, which would log).
fn start(exe: &Path, port: u16, args: &[&str]) -> Proc {
    let p = port.to_string();
    let mut all = vec!["-a", "127.0.0.1", "-p", &p];
    all.extend_from_slice(args);
    let s = spawn(exe, &all);
    assert!(s.wait_log("Server is ready", T), "{}", s.log_text());
    s
}

fn stop(mut p: Proc) -> String {
    p.signal(libc::SIGINT);
    assert!(p.wait_exit(T).is_some());
    p.log_text()
}

/// A raw client with a name, language and version; returns after its first PONG.
fn tagged_client(port: u16, extra: &str) -> Raw {
    let mut r = Raw::connect(port);
    r.info();
    r.send(
        format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"name\":\"cli\",\"lang\":\"raw\",\"version\":\"1.0\"{extra}}}\r\n"
        )
        .as_bytes(),
    );
    r
}

/// A's log: a client's whole life at -DV, then a route from B forming (B's client
/// subscribes once the route is up) and breaking when B stops. B's log up to its stop.
fn client_and_route(exe: &Path) -> (String, String) {
    let (pa, ca, pb, cb) = (free_port(), free_port(), free_port(), free_port());
    let (la, lb) = (
        format!("nats://127.0.0.1:{ca}"),
        format!("nats://127.0.0.1:{cb}"),
    );
    let a = start(
        exe,
        pa,
        &["-n", "A", "--cluster", &la, "--cluster_name", "t", "-DV"],
    );
    assert!(a.wait_log("Listening for route connections", T));
    let mut c = tagged_client(pa, "");
    c.send(b"SUB foo 1\r\nPUB foo 2\r\nhi\r\n");
    c.sync();
    c.stream.shutdown(Shutdown::Both).ok();
    assert!(a.wait_log("Client connection closed", T));
    // B dials A by name; its dial lines show the resolved address.
    let route = format!("nats://localhost:{ca}");
    let b = start(
        exe,
        pb,
        &[
            "-n",
            "B",
            "--cluster",
            &lb,
            "--cluster_name",
            "t",
            "--routes",
            &route,
            "-DV",
        ],
    );
    assert!(a.wait_log("Sent local subscriptions to route", T));
    assert!(b.wait_log("Sent local subscriptions to route", T));
    let mut bc = tagged_client(pb, "");
    bc.send(b"SUB bar 1\r\n");
    bc.sync();
    assert!(a.wait_log("<<- [RS+ $G bar]", T), "{}", a.log_text());
    // B dies at once, so the route breaks with B's interest still registered on A (a
    // clean stop would withdraw it first).
    let mut b = b;
    b.signal(libc::SIGKILL);
    b.child.wait().expect("wait");
    let b_log = b.log_text();
    drop(bc);
    assert!(
        a.wait_log("Removing 1 subscriptions for account", T),
        "{}",
        a.log_text()
    );
    (stop(a), b_log)
}

#[test]
fn client_and_route_at_debug_trace_log_as_the_reference() {
    let (ours_a, ours_b) = client_and_route(&ours());
    let (ref_a, ref_b) = client_and_route(&reference());
    let trapped = Some("Trapped \"interrupt\" signal");
    assert_same_lines("accepting server", &ours_a, &ref_a, trapped);
    assert_same_lines("soliciting server", &ours_b, &ref_b, None);
}

/// Failed logins: with --user/--pass, with a user list, and an op before CONNECT.
fn auth_failures(exe: &Path, dir: &TempDir) -> Vec<String> {
    let mut logs = Vec::new();
    let conf = dir.write(
        "users.conf",
        "authorization { users = [{user: alice, password: pw}] }\n",
    );
    for args in [
        vec!["--user", "u", "--pass", "p", "-D"],
        vec!["-c", conf.to_str().unwrap(), "-D"],
    ] {
        let port = free_port();
        let s = start(exe, port, &args);
        let mut r = tagged_client(port, ",\"user\":\"bob\",\"pass\":\"bad\"");
        assert_eq!(r.line(), "-ERR 'Authorization Violation'\r\n");
        let mut r2 = Raw::connect(port);
        r2.info();
        r2.send(b"PING\r\n");
        assert_eq!(r2.line(), "-ERR 'Authorization Violation'\r\n");
        assert!(wait_until(T, || s
            .log_text()
            .matches("Client connection closed")
            .count()
            == 2));
        logs.push(stop(s));
    }
    logs
}

#[test]
fn auth_failures_log_as_the_reference() {
    let dir = TempDir::new("logs-auth");
    let ours_logs = auth_failures(&ours(), &dir);
    let ref_logs = auth_failures(&reference(), &dir);
    for (o, r) in ours_logs.iter().zip(&ref_logs) {
        assert_same_lines("auth failure", o, r, None);
    }
    // The tag names the client even though it never got in.
    assert!(ours_logs[0].contains("\"v1.0:raw:cli\" - authentication error\n"));
    assert!(ours_logs[1].contains("authentication error - User \"bob\""));
}

/// A subscriber that stops reading while a publisher floods it.
fn slow_consumer(exe: &Path, dir: &TempDir) -> String {
    // Messages over half of max_pending: once the socket is full, the second one queued
    // exceeds it (the reference stalls the producer only while pending is under it).
    let conf = dir.write("slow.conf", "max_payload: 65536\nmax_pending: 65536\n");
    let port = free_port();
    let s = start(exe, port, &["-c", conf.to_str().unwrap()]);
    let mut sub = tagged_client(port, "");
    shrink_receive_buffer(&sub.stream);
    sub.send(b"SUB foo 1\r\n");
    sub.sync();
    let mut publ = Raw::connect(port);
    publ.info();
    publ.send(b"CONNECT {\"verbose\":false,\"name\":\"pub\"}\r\n");
    let mut msg = b"PUB foo 40000\r\n".to_vec();
    msg.extend_from_slice(&[b'x'; 40000]);
    msg.extend_from_slice(b"\r\n");
    let batch: Vec<u8> = msg.repeat(4);
    assert!(
        wait_until(T, || {
            if publ.stream.write_all(&batch).is_err() {
                return true;
            }
            s.log_text().contains("Slow Consumer Detected")
        }),
        "{}",
        s.log_text()
    );
    stop(s)
}

fn shrink_receive_buffer(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on a socket we own, with a correctly sized int argument.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[test]
fn slow_consumer_logs_as_the_reference() {
    let dir = TempDir::new("logs-slow");
    let o = slow_consumer(&ours(), &dir);
    let r = slow_consumer(&reference(), &dir);
    assert_same_lines("slow consumer", &o, &r, Some("Trapped"));
    assert!(
        o.contains("\"v1.0:raw:cli\" - Slow Consumer Detected"),
        "{o}"
    );
}

/// Start-up that fails on a busy client port, and on a busy route port.
#[test]
fn listen_failures_log_as_the_reference() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let route = format!("nats://127.0.0.1:{port}");
    for args in [
        vec!["-a", "127.0.0.1", "-p", port.as_str()],
        vec![
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "--cluster",
            &route,
            "--cluster_name",
            "t",
        ],
        vec!["-a", "127.0.0.1", "-p", "-1", "-m", port.as_str()],
    ] {
        let run = |exe: &Path| {
            let (code, out, err) = crate::support::run_bounded(exe, &args, T);
            (code, out + &err)
        };
        let (co, lo) = run(&ours());
        let (cr, lr) = run(&reference());
        assert_eq!((co, cr), (Some(1), Some(1)), "{args:?}\n{lo}\n{lr}");
        assert_same_lines(&format!("{args:?}"), &lo, &lr, None);
        assert!(lo.contains("bind: address already in use"), "{lo}");
    }
}

/// A route to ourselves and one to a dead address given by name: the self-detection line
/// and the dial errors with the resolved address.
#[test]
fn route_to_self_and_dead_route_log_as_the_reference() {
    let run = |exe: &Path| {
        let (p, c, dead) = (free_port(), free_port(), free_port());
        let listen = format!("nats://127.0.0.1:{c}");
        let routes = format!("nats://127.0.0.1:{c},nats://localhost:{dead}");
        let s = start(
            exe,
            p,
            &[
                "--cluster",
                &listen,
                "--cluster_name",
                "t",
                "--routes",
                &routes,
                "-D",
            ],
        );
        assert!(s.wait_log("Detected route to self", T), "{}", s.log_text());
        assert!(s.wait_log("(attempt 2)", T), "{}", s.log_text());
        stop(s)
    };
    let (o, r) = (run(&ours()), run(&reference()));
    assert_same_lines("self route", &o, &r, Some("(attempt 2)"));
}

/// Keep-alive at -D with a short ping interval: the first PING measures the round trip,
/// later timers are put off while the client is active. Distinct lines are compared (how
/// many timers fire depends on timing).
#[test]
fn ping_timers_log_as_the_reference() {
    let dir = TempDir::new("logs-ping");
    let conf = dir.write("ping.conf", "ping_interval: \"3s\"\n");
    let run = |exe: &Path| {
        let port = free_port();
        let s = start(exe, port, &["-c", conf.to_str().unwrap(), "-D"]);
        let mut c = tagged_client(port, "");
        c.stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Publishing every 200 ms (answering the server's PINGs) until a timer was put
        // off for that activity, then only pinging until one was put off for our PINGs.
        for (send, needle) in [
            (
                &b"PUB x 1\r\na\r\n"[..],
                "Delaying PING due to client activity",
            ),
            (&b"PING\r\n"[..], "Delaying PING due to remote ping"),
        ] {
            assert!(
                wait_until(T, || {
                    c.send(send);
                    while let Some(l) = c.try_line() {
                        if l == "PING\r\n" {
                            c.send(b"PONG\r\n");
                        }
                    }
                    s.log_text().contains(needle)
                }),
                "{}",
                s.log_text()
            );
        }
        stop(s)
    };
    let distinct = |log: &str| {
        let mut v = masked(log, Some("Trapped"));
        v.dedup();
        v.join("\n")
    };
    let (o, r) = (run(&ours()), run(&reference()));
    assert_eq!(distinct(&o), distinct(&r), "\nours:\n{o}\nreference:\n{r}");
}
