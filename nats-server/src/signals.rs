//! POSIX signals and `--signal`.
//!
//! INT and TERM stop (exit 0; TERM is ignored in lame duck mode), HUP reloads the
//! configuration, USR1 reopens the log file, USR2 enters lame duck mode.
//!
//! The reference exits 1 after TERM; the product's issue asks for a clean exit 0 on both,
//! which is also what service managers expect from a graceful stop.

use crate::cli::Flags;
use crate::client::{Client, ClosedState};
use crate::server::Server;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, error, info};

/// Handles signals until the server has stopped; returns the process exit code.
pub async fn run(server: Arc<Server>, flags: Flags) -> std::io::Result<ExitCode> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let (ldm_done_tx, mut ldm_done) = tokio::sync::mpsc::channel::<()>(1);
    let mut in_ldm = false;
    loop {
        tokio::select! {
            _ = int.recv() => {
                debug!("Trapped \"interrupt\" signal");
                server.shutdown().await;
                return Ok(ExitCode::SUCCESS);
            }
            _ = term.recv() => {
                debug!("Trapped \"terminated\" signal");
                if !in_ldm {
                    server.shutdown().await;
                    return Ok(ExitCode::SUCCESS);
                }
            }
            _ = hup.recv() => {
                debug!("Trapped \"hangup\" signal");
                match crate::reload::reload(&server, &flags) {
                    Ok(()) => info!("Reloaded server configuration"),
                    Err(e) => error!("Failed to reload server configuration: {e}"),
                }
            }
            _ = usr1.recv() => {
                debug!("Trapped \"user defined signal 1\" signal");
                if server.opts().log_file.is_some() {
                    match crate::logging::reopen() {
                        Ok(()) => info!("File log re-opened"),
                        Err(e) => error!("Unable to re-open log file: {e}"),
                    }
                } else {
                    info!("File log re-open ignored, not a file logger");
                }
            }
            _ = usr2.recv() => {
                debug!("Trapped \"user defined signal 2\" signal");
                if !in_ldm {
                    in_ldm = true;
                    let s = server.clone();
                    let done = ldm_done_tx.clone();
                    tokio::spawn(async move {
                        lame_duck(s).await;
                        let _ = done.send(()).await;
                    });
                }
            }
            _ = ldm_done.recv() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Lame duck mode: stop accepting, tell clients, wait the grace period, then close the
/// clients spread over the rest of `lame_duck_duration`, and shut down.
async fn lame_duck(server: Arc<Server>) {
    let opts = server.opts();
    info!("Entering lame duck mode, stop accepting new clients");
    server.stop_accepting();
    server.cluster.announce_lame_duck(&server);
    let clients = server.client_conns();
    if clients.is_empty() {
        server.shutdown().await;
        return;
    }
    send_ldm_info(&server, &clients);
    tokio::time::sleep(opts.lame_duck_grace_period).await;
    info!("Closing existing clients");
    let span = opts
        .lame_duck_duration
        .saturating_sub(opts.lame_duck_grace_period)
        .max(Duration::from_secs(1));
    let step = (span / clients.len() as u32).min(Duration::from_secs(1));
    for c in &clients {
        c.close(ClosedState::ServerShutdown);
        if !step.is_zero() {
            tokio::time::sleep(step).await;
        }
    }
    server.shutdown().await;
}

/// An INFO with `ldm: true` to every client that takes async INFO.
fn send_ldm_info(server: &Server, clients: &[Arc<Client>]) {
    for c in clients {
        if !c.info_ready.load(std::sync::atomic::Ordering::Acquire) {
            continue;
        }
        let mut info = server.base_info();
        info.ldm = true;
        // Clients are pointed at the other servers only (websocket clients at their
        // websocket URLs).
        if c.ws.get().is_some() {
            let own = server.own_ws_urls();
            info.connect_urls = server.ws_connect_urls.read().clone();
            info.connect_urls.retain(|u| !own.contains(u));
        } else {
            let own = server.own_client_urls();
            info.connect_urls.retain(|u| !own.contains(u));
        }
        info.client_id = c.cid;
        info.client_ip = c.addr.ip().to_string();
        let json = serde_json::to_vec(&info).unwrap_or_default();
        let mut out = Vec::with_capacity(json.len() + 8);
        nats_common::proto::info(&mut out, &json);
        c.out.send(&out);
    }
}

// ---- `nats-server --signal <cmd>[=<pid|pidfile>]` ----

/// Sends a signal to a running server the way the reference does; silent on success.
pub fn send_command(arg: &str) -> ExitCode {
    match send(arg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nats-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn send(arg: &str) -> Result<(), String> {
    let (cmd, target) = match arg.split_once('=') {
        Some((c, t)) => (c, Some(t)),
        None => (arg, None),
    };
    // The reference looks for running servers before it checks the command name.
    let pids = match target {
        Some(t) if !t.is_empty() => vec![resolve_pid(t)?],
        _ => {
            let pids = running_servers();
            match pids.len() {
                0 => return Err("no nats-server processes running".into()),
                1 => pids,
                _ => {
                    let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
                    return Err(format!(
                        "multiple nats-server processes running:\n{}",
                        list.join("\n")
                    ));
                }
            }
        }
    };
    let sig = match cmd {
        "stop" => libc::SIGKILL,
        "quit" => libc::SIGINT,
        "term" => libc::SIGTERM,
        "reopen" => libc::SIGUSR1,
        "reload" => libc::SIGHUP,
        "ldm" => libc::SIGUSR2,
        _ => return Err(format!("unknown signal {cmd:?}")),
    };
    for pid in pids {
        // SAFETY: kill(2) with a pid and a signal number has no memory effects.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ESRCH) => "no such process".into(),
                Some(libc::EPERM) => "operation not permitted".into(),
                _ => e.to_string(),
            });
        }
    }
    Ok(())
}

/// A pid, or a pid file holding one.
fn resolve_pid(t: &str) -> Result<i32, String> {
    if let Ok(p) = t.parse::<i32>() {
        return Ok(p);
    }
    let text = std::fs::read_to_string(t).map_err(|_| format!("invalid pid: {t}"))?;
    text.trim()
        .parse::<i32>()
        .map_err(|_| format!("invalid pid: {}", text.trim()))
}

/// Pids of processes named like nats-server (what `pgrep nats-server` finds), minus us.
fn running_servers() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(ent.path().join("comm")) {
            if comm.trim_end().contains("nats-server") {
                out.push(pid);
            }
        }
    }
    out.sort_unstable();
    out
}
