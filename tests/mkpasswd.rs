//! Process-level tests of the `mkpasswd` binary: output format, hash
//! validity, flag errors, and the `-p` prompt mode driven through a
//! pseudo-terminal.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `target/<profile>/mkpasswd`, next to the `deps` directory holding this
/// test binary. Built on demand when missing (`cargo test -p` of the tests
/// crate does not build other packages' binaries).
fn mkpasswd_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("deps dir");
        let profile_dir = deps.parent().expect("profile dir");
        let bin = profile_dir.join("mkpasswd");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-q", "-p", "mkpasswd"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build -p mkpasswd");
            assert!(status.success(), "cargo build -p mkpasswd failed");
        }
        assert!(
            bin.exists(),
            "mkpasswd binary not found at {}",
            bin.display()
        );
        bin
    })
    .clone()
}

fn run(args: &[&str]) -> Output {
    Command::new(mkpasswd_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run mkpasswd")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ALPHABET: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@$#%^&*()";

/// `$2a$` + two-digit cost + `$` + 53 characters of bcrypt base64.
fn assert_hash_shape(hash: &str, cost: u32) {
    assert_eq!(hash.len(), 60, "{hash}");
    let prefix = format!("$2a${:02}$", cost);
    assert!(
        hash.starts_with(&prefix),
        "{hash} should start with {prefix}"
    );
    assert!(
        hash[7..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'),
        "{hash}"
    );
}

#[test]
fn mkpasswd_generates_password_and_hash() {
    let out = run(&["-c", "4"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    let pass = lines[0].strip_prefix("pass: ").expect("pass line");
    let hash = lines[1].strip_prefix("bcrypt hash: ").expect("hash line");
    assert_eq!(pass.len(), 22);
    assert!(pass.chars().all(|c| ALPHABET.contains(c)), "{pass}");
    assert_hash_shape(hash, 4);
    assert!(bcrypt::verify(pass, hash).unwrap());
    assert!(text.ends_with('\n'));
    assert_eq!(stderr(&out), "");
}

#[test]
fn mkpasswd_default_cost_and_flag_forms() {
    let out = run(&[]);
    assert!(out.status.success());
    let text = stdout(&out);
    let hash = text
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("bcrypt hash: "));
    assert_hash_shape(hash.expect("hash line"), 11);

    for args in [&["--c", "5"][..], &["-c=5"][..], &["--c=5"][..]] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}");
        let text = stdout(&out);
        let hash = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("bcrypt hash: "));
        assert_hash_shape(hash.expect("hash line"), 5);
    }
}

#[test]
fn mkpasswd_passwords_differ_between_runs() {
    let a = stdout(&run(&["-c", "4"]));
    let b = stdout(&run(&["-c", "4"]));
    assert_ne!(a.lines().next(), b.lines().next());
}

#[test]
fn mkpasswd_usage_and_flag_errors() {
    let usage = "Usage: mkpasswd [-p <stdin password>] [-c COST] \n";
    let defaults = "  -c int\n    \tThe cost weight, range of 4-31 (default 11)\n  -p\tInput password via stdin\n";

    let out = run(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), usage);
    assert_eq!(stderr(&out), defaults);

    let out = run(&["-x"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), usage);
    assert_eq!(
        stderr(&out),
        format!("flag provided but not defined: -x\n{defaults}")
    );

    let out = run(&["-c", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("invalid value \"abc\" for flag -c: parse error\n"));
}

#[test]
fn mkpasswd_cost_above_range_fails() {
    let out = run(&["-c", "32"]);
    assert_eq!(out.status.code(), Some(1));
    // like the reference, the password line is already out
    assert!(stdout(&out).starts_with("pass: "));
    assert_eq!(
        stderr(&out),
        "Error producing bcrypt hash: crypto/bcrypt: cost 32 is outside allowed range (4,31)\n"
    );
}

#[test]
fn mkpasswd_prompt_needs_a_terminal() {
    let out = run(&["-p"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error reading password: inappropriate ioctl for device\n"
    );
}

/// A child process whose stdin/stdout/stderr are the slave side of a pty.
struct PtyChild {
    master: OwnedFd,
    child: std::process::Child,
    seen: String,
}

impl PtyChild {
    fn spawn(args: &[&str]) -> PtyChild {
        let mut master: libc::c_int = -1;
        let mut slave: libc::c_int = -1;
        // SAFETY: openpty writes two fds into the provided ints; the name,
        // termios and winsize pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just returned by openpty and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = Command::new(mkpasswd_bin());
        cmd.args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec. A new
        // session with the pty as controlling terminal, like a login shell.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn mkpasswd on a pty");
        // Dropping `cmd` closes our copies of the slave side, so reads on the
        // master end once the child exits.
        drop(cmd);
        PtyChild {
            master,
            child,
            seen: String::new(),
        }
    }

    /// Reads from the master until `needle` has been seen (or EOF/timeout);
    /// returns everything read so far.
    fn read_until(&mut self, needle: &str, timeout: Duration) -> &str {
        let deadline = Instant::now() + timeout;
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut pfd = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as libc::c_int) };
            if n <= 0 {
                continue;
            }
            let mut buf = [0u8; 1024];
            let mut f = std::fs::File::from(self.master.try_clone().unwrap());
            match f.read(&mut buf) {
                // EIO on Linux once the slave side is closed
                Ok(0) | Err(_) => break,
                Ok(k) => self.seen.push_str(&String::from_utf8_lossy(&buf[..k])),
            }
        }
        &self.seen
    }

    /// Waits until the child has turned terminal echo off, so typed text
    /// is known not to be echoed back.
    fn wait_for_no_echo(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: termios is plain data; tcgetattr fills it.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) };
            if rc == 0 && t.c_lflag & libc::ECHO == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "terminal echo never disabled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_line(&self, text: &str) {
        let line = format!("{text}\n");
        // SAFETY: writing a valid buffer to an open fd.
        let n = unsafe { libc::write(self.master.as_raw_fd(), line.as_ptr().cast(), line.len()) };
        assert_eq!(n, line.len() as isize);
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mkpasswd did not exit; output so far: {:?}", self.seen);
            }
            // keep draining so the child never blocks on a full pty buffer
            self.read_until("\u{0}never", Duration::from_millis(50));
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PROMPT_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn mkpasswd_prompt_matching_passwords() {
    let mut p = PtyChild::spawn(&["-p", "-c", "4"]);
    assert!(p
        .read_until("Enter Password: ", PROMPT_TIMEOUT)
        .contains("Enter Password: "));
    p.wait_for_no_echo();
    p.type_line("correct horse");
    assert!(p
        .read_until("Reenter Password: ", PROMPT_TIMEOUT)
        .contains("Reenter Password: "));
    p.wait_for_no_echo();
    p.type_line("correct horse");
    let status = p.wait();
    let out = p
        .read_until("\u{0}never", Duration::from_millis(500))
        .to_string();
    assert!(status.success(), "output: {out:?}");
    // the pty turns "\n" into "\r\n"
    let out = out.replace("\r\n", "\n");
    assert!(
        out.starts_with("Enter Password: \nReenter Password: \nbcrypt hash: "),
        "{out:?}"
    );
    assert!(
        !out.contains("correct horse"),
        "password was echoed: {out:?}"
    );
    assert!(!out.contains("pass: "), "{out:?}");
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("bcrypt hash: "))
        .expect("hash line")
        .trim();
    assert_hash_shape(hash, 4);
    assert!(bcrypt::verify("correct horse", hash).unwrap());
}

#[test]
fn mkpasswd_prompt_mismatching_passwords() {
    let mut p = PtyChild::spawn(&["-p", "-c", "4"]);
    p.read_until("Enter Password: ", PROMPT_TIMEOUT);
    p.wait_for_no_echo();
    p.type_line("first-one");
    p.read_until("Reenter Password: ", PROMPT_TIMEOUT);
    p.wait_for_no_echo();
    p.type_line("second-one");
    let status = p.wait();
    let out = p
        .read_until("do not match", Duration::from_secs(5))
        .replace("\r\n", "\n");
    assert_eq!(status.code(), Some(1), "output: {out:?}");
    assert!(out.contains("Error, passwords do not match\n"), "{out:?}");
    assert!(!out.contains("bcrypt hash"), "{out:?}");
    assert!(
        !out.contains("first-one") && !out.contains("second-one"),
        "{out:?}"
    );
}
