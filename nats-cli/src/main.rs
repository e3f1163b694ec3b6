//! `nats`: a drop-in for the NATS CLI's core commands (pub, sub, request, reply, bench,
//! context, server) and its JetStream commands (stream, consumer, kv, object).

mod bench;
mod conn;
mod consumer;
mod context;
mod headers;
mod js;
mod kv;
mod object;
mod output;
mod publish;
mod reply;
mod request;
mod server;
mod stream;
mod subscribe;
mod table;
mod template;

use clap::{Args, Parser, Subcommand};

/// Connection flags, valid before or after the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// NATS server urls
    #[arg(
        short = 's',
        long = "server",
        env = "NATS_URL",
        global = true,
        value_name = "URL"
    )]
    pub server: Option<String>,
    /// Username or Token
    #[arg(long, env = "NATS_USER", global = true)]
    pub user: Option<String>,
    /// Password
    #[arg(long, env = "NATS_PASSWORD", global = true)]
    pub password: Option<String>,
    /// Nickname for this connection
    #[arg(long = "connection-name", global = true)]
    pub connection_name: Option<String>,
    /// User credentials
    #[arg(long, env = "NATS_CREDS", global = true, value_name = "FILE")]
    pub creds: Option<String>,
    /// User NKEY
    #[arg(long, env = "NATS_NKEY", global = true, value_name = "FILE")]
    pub nkey: Option<String>,
    /// TLS client certificate file
    #[arg(long, env = "NATS_CERT", global = true, value_name = "FILE")]
    pub tlscert: Option<String>,
    /// TLS client private key file
    #[arg(long, env = "NATS_KEY", global = true, value_name = "FILE")]
    pub tlskey: Option<String>,
    /// TLS certificate authority chain file
    #[arg(long, env = "NATS_CA", global = true, value_name = "FILE")]
    pub tlsca: Option<String>,
    /// Time to wait on responses from NATS
    #[arg(long, env = "NATS_TIMEOUT", global = true, default_value = "5s")]
    pub timeout: String,
    /// Configuration context
    #[arg(long, env = "NATS_CONTEXT", global = true)]
    pub context: Option<String>,
    /// Custom inbox prefix to use for inboxes
    #[arg(long = "inbox-prefix", global = true)]
    pub inbox_prefix: Option<String>,
    /// Subject prefix to the JetStream API
    #[arg(long = "js-api-prefix", global = true)]
    pub js_api_prefix: Option<String>,
    /// Subject prefix to the JetStream Advisories
    #[arg(long = "js-event-prefix", global = true)]
    pub js_event_prefix: Option<String>,
    /// JetStream domain to access
    #[arg(long = "js-domain", global = true)]
    pub js_domain: Option<String>,
    /// Trace API interactions
    #[arg(long, global = true)]
    pub trace: bool,
}

#[derive(Parser, Debug)]
#[command(
    name = "nats",
    version,
    about = "NATS Utility",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generic data publish utility
    #[command(name = "publish", visible_alias = "pub")]
    Pub(publish::PubArgs),
    /// Generic subscription client
    #[command(name = "subscribe", visible_alias = "sub")]
    Sub(subscribe::SubArgs),
    /// Generic request-reply request utility
    #[command(visible_alias = "req")]
    Request(request::ReqArgs),
    /// Generic service reply utility
    Reply(reply::ReplyArgs),
    /// Benchmark utility
    Bench(Box<bench::BenchArgs>),
    /// Manage nats configuration contexts
    #[command(visible_alias = "ctx")]
    Context {
        #[command(subcommand)]
        cmd: context::Cmd,
    },
    /// Server information
    #[command(visible_aliases = ["srv", "sys", "system"])]
    Server {
        #[command(subcommand)]
        cmd: server::Cmd,
    },
    /// JetStream Stream management
    #[command(visible_aliases = ["str", "st", "ms", "s"])]
    Stream {
        #[command(subcommand)]
        cmd: stream::Cmd,
    },
    /// JetStream Consumer management
    #[command(visible_aliases = ["con", "obs", "c"])]
    Consumer {
        #[command(subcommand)]
        cmd: consumer::Cmd,
    },
    /// Interacts with a JetStream based Key-Value store
    Kv {
        #[command(subcommand)]
        cmd: kv::Cmd,
    },
    /// Interacts with a JetStream based Object store
    #[command(visible_alias = "obj")]
    Object {
        #[command(subcommand)]
        cmd: object::Cmd,
    },
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("nats: error: {msg}");
    std::process::exit(1);
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    std::process::exit(0);
                }
                _ => {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or("invalid arguments");
                    let first = first.strip_prefix("error: ").unwrap_or(first);
                    fail(format_args!("{first}, try --help"));
                }
            }
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(e),
    };
    let g = cli.global;
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Pub(a) => publish::run(a, &g).await,
            Cmd::Sub(a) => subscribe::run(a, &g).await,
            Cmd::Request(a) => request::run(a, &g).await,
            Cmd::Reply(a) => reply::run(a, &g).await,
            Cmd::Bench(a) => bench::run(*a, &g).await,
            Cmd::Context { cmd } => context::run(cmd, &g).await,
            Cmd::Server { cmd } => server::run(cmd, &g).await,
            Cmd::Stream { cmd } => stream::run(cmd, &g).await,
            Cmd::Consumer { cmd } => consumer::run(cmd, &g).await,
            Cmd::Kv { cmd } => kv::run(cmd, &g).await,
            Cmd::Object { cmd } => object::run(cmd, &g).await,
        }
    });
    // Do not wait for background tasks (event loggers, readers) on the way out.
    rt.shutdown_background();
    match result {
        Ok(()) => {}
        Err(e) => fail(e),
    }
}
