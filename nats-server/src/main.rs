//! `nats-server`: flags → options → run.

mod accounts;
mod auth;
mod cli;
mod client;
mod cluster;
#[allow(dead_code)]
mod config;
mod deliver;
mod gateway;
mod jetstream;
mod leaf;
mod logging;
mod monitor;
mod netutil;
mod options;
mod outbound;
mod reload;
mod route;
mod server;
mod signals;
mod syslog;
mod system;
mod tls;
mod websocket;

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
    match flags.info_request() {
        Some(cli::InfoRequest::Version) => {
            println!("nats-server: v{}", cli::VERSION);
            return ExitCode::SUCCESS;
        }
        Some(cli::InfoRequest::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Some(cli::InfoRequest::TlsHelp) => {
            print!("{}", cli::tls_help());
            return ExitCode::SUCCESS;
        }
        None => {}
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
        if flags.config.is_none() {
            return cli_error(CliError::Fatal(
                "must specify [-c, --config] option to check configuration file syntax".into(),
            ));
        }
        eprintln!(
            "nats-server: configuration file {} is valid",
            flags.config.as_deref().unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    if flags.routes_without_cluster(&opts) {
        return cli_error(CliError::Fatal(
            "solicited routes require cluster capabilities, e.g. --cluster".into(),
        ));
    }
    if let Err(e) = crate::options::GatewayOptions::validate(&mut opts) {
        eprintln!("nats-server: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = opts
        .validate()
        .and_then(|_| accounts::jwt::validate_trusted_operators(&opts))
        .and_then(|_| config::apply::validate_auth(&opts))
        .and_then(|_| config::apply::validate_leaf(&opts))
        .and_then(|_| accounts::jwt::check_startup(&opts))
        .and_then(|_| config::apply::validate_websocket(&opts))
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
            println!("{}", cli::USAGE);
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
        syslog: opts.syslog,
        remote_syslog: &opts.remote_syslog,
    }) {
        e.report();
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
        if let Some(sys) = system::System::start(&server) {
            server.set_system(sys);
        }
        server.install_imports();
        server.log_banner();
        // The reference starts monitoring before the client listener.
        let mon = monitor::Monitor::new(&server);
        server.set_monitor(&mon);
        if let Err(e) = monitor::start(&mon).await {
            tracing::error!(target: logging::FATAL, "Can't start monitoring: {e}");
            return ExitCode::FAILURE;
        }
        if server.opts().jetstream {
            if let Err(e) = jetstream::enable(&server) {
                tracing::error!(target: logging::FATAL, "Can't start JetStream: {e}");
                return ExitCode::FAILURE;
            }
        }
        // The reference listens for gateways, then websocket clients, then leaf nodes,
        // before TCP clients.
        if let Err(e) = gateway::conn::start(&server).await {
            tracing::error!(target: logging::FATAL, "{e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = websocket::start(&server).await {
            tracing::error!(target: logging::FATAL, "{e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = leaf::start(&server).await {
            tracing::error!(target: logging::FATAL, "{e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = server.start_clients().await {
            tracing::error!(target: logging::FATAL, "{e}");
            return ExitCode::FAILURE;
        }
        if let Some(p) = &pid_file {
            if let Err(e) = write_pid_file(p) {
                tracing::error!(target: logging::FATAL, "Could not write pidfile: {e}");
                return ExitCode::FAILURE;
            }
        }
        tracing::info!("Server is ready");
        leaf::start_remotes(&server);
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
        // The PID file stays, as the reference leaves it.
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

/// Writes our PID as the reference does (mode 0660, truncating an old file).
fn write_pid_file(p: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o660)
        .open(p)?
        .write_all(std::process::id().to_string().as_bytes())
}
