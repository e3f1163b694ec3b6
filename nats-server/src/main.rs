//! `nats-server`: flags → options → run.

mod accounts;
mod auth;
mod cli;
mod client;
mod cluster;
#[allow(dead_code)]
mod config;
mod deliver;
mod logging;
mod monitor;
mod netutil;
mod options;
mod outbound;
mod reload;
mod route;
mod server;
mod signals;
mod tls;

use cli::{CliError, Flags};
use options::Options;
use std::process::ExitCode;

fn main() -> ExitCode {
    fixed_mmap_threshold();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match Flags::parse_args(&args) {
        Ok(f) => f,
        Err(e) => return cli_error(e),
    };
    if flags.wants_help() {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    if flags.wants_version() {
        println!("nats-server: v{}", cli::VERSION);
        return ExitCode::SUCCESS;
    }
    if let Err(e) = flags.check_command() {
        return cli_error(e);
    }
    if let Some(cmd) = &flags.signal {
        return signals::send_command(cmd);
    }
    let mut opts = Options::default();
    if let Some(path) = &flags.config {
        match config::apply::load_file(std::path::Path::new(path), &mut opts) {
            Ok(warnings) if warnings.is_empty() => {}
            // Under -t a warning is as bad as an error.
            Ok(warnings) if flags.test_only() => {
                eprintln!("nats-server: {}\n", warnings.join("\n"));
                return ExitCode::FAILURE;
            }
            Ok(warnings) => eprintln!("{}", warnings.join("\n")),
            Err(e) => {
                eprintln!("nats-server: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = flags.apply(&mut opts) {
        return cli_error(e);
    }
    if flags.test_only() {
        eprintln!(
            "nats-server: configuration file {} is valid",
            flags.config.as_deref().unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = opts
        .validate()
        .and_then(|_| config::apply::validate_auth(&opts))
    {
        eprintln!("nats-server: {e}");
        return ExitCode::FAILURE;
    }
    run(opts, flags)
}

fn cli_error(e: CliError) -> ExitCode {
    match e {
        CliError::Usage(msg) => {
            eprintln!("{msg}");
            print!("{}", cli::USAGE);
            // The reference exits 0 after a flag error.
            ExitCode::SUCCESS
        }
        CliError::Fatal(msg) => {
            eprintln!("nats-server: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: Options, flags: Flags) -> ExitCode {
    if let Err(e) = logging::init(&logging::LogConfig {
        debug: opts.debug,
        trace: opts.trace,
        logtime: opts.logtime,
        file: opts.log_file.as_deref(),
        size_limit: opts.log_size_limit,
    }) {
        eprintln!("nats-server: error opening log file: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nats-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let pid_file = opts.pid_file.clone();
        let server = server::Server::new(opts);
        server.install_imports();
        server.log_banner();
        // The reference starts monitoring before the client listener.
        if let Err(e) = monitor::start(&server).await {
            tracing::error!(target: logging::FATAL, "Can't start monitoring: {e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = server.start_clients().await {
            tracing::error!(target: logging::FATAL, "{e}");
            return ExitCode::FAILURE;
        }
        if let Some(p) = &pid_file {
            if let Err(e) = std::fs::write(p, std::process::id().to_string()) {
                tracing::error!(target: logging::FATAL, "Could not write pidfile: {e}");
                return ExitCode::FAILURE;
            }
        }
        tracing::info!("Server is ready");
        if let Err(e) = cluster::start(&server).await {
            tracing::error!(target: logging::FATAL, "{e}");
            return ExitCode::FAILURE;
        }
        let code = match signals::run(server, flags).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!("signal handling failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(p) = &pid_file {
            let _ = std::fs::remove_file(p);
        }
        code
    })
}

/// Large buffers (a connection's pending output can reach tens of megabytes) are mapped
/// and unmapped whole. glibc otherwise raises its mmap threshold after the first such
/// free and serves later ones from the heap, which keeps their memory after a burst.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
