//! The command line, read the way the reference reads it: Go's `flag` rules (one or two
//! dashes for every long flag, `-DV`/`-ms` as single flags, booleans only take `=value`,
//! parsing stops at the first positional argument), then clap maps the normalised
//! arguments onto `Flags`.

use crate::options::{Options, TlsOptions};
use clap::Parser as _;
use std::path::PathBuf;
use std::time::Duration;

pub const VERSION: &str = "2.9.10";

/// Every flag the reference accepts: names (the first is canonical) and whether it is a
/// boolean (takes no separate value).
const FLAGS: &[(&[&str], bool)] = &[
    (&["addr", "a", "net"], false),
    (&["port", "p"], false),
    (&["name", "n", "server_name"], false),
    (&["pid", "P"], false),
    (&["http_port", "m"], false),
    (&["https_port", "ms"], false),
    (&["config", "c"], false),
    (&["t"], true),
    (&["signal", "sl"], false),
    (&["client_advertise"], false),
    (&["ports_file_dir"], false),
    (&["log", "l"], false),
    (&["logtime", "T"], true),
    (&["syslog", "s"], true),
    (&["remote_syslog", "r"], false),
    (&["debug", "D"], true),
    (&["trace", "V"], true),
    (&["VV"], true),
    (&["DV"], true),
    (&["DVV"], true),
    (&["log_size_limit"], false),
    (&["max_traced_msg_len"], false),
    (&["jetstream", "js"], true),
    (&["store_dir", "sd"], false),
    (&["user"], false),
    (&["pass"], false),
    (&["auth"], false),
    (&["tls"], true),
    (&["tlsverify"], true),
    (&["tlscert"], false),
    (&["tlskey"], false),
    (&["tlscacert"], false),
    (&["routes"], false),
    (&["cluster", "cluster_listen"], false),
    (&["cluster_name"], false),
    (&["cluster_advertise"], false),
    (&["no_advertise"], true),
    (&["connect_retries"], false),
    (&["profile"], false),
    (&["help_tls"], true),
    (&["help", "h"], true),
    (&["version", "v"], true),
];

/// What was given on the command line; `None` means not given, so the config file's
/// value (or the default) stands.
#[derive(clap::Parser, Debug, Default)]
#[command(
    name = "nats-server",
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Flags {
    #[arg(long)]
    pub addr: Option<String>,
    #[arg(long)]
    pub port: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub pid: Option<String>,
    #[arg(long = "http_port")]
    pub http_port: Option<String>,
    #[arg(long = "https_port")]
    pub https_port: Option<String>,
    #[arg(long)]
    pub config: Option<String>,
    #[arg(long = "t")]
    pub test_config: Option<String>,
    #[arg(long)]
    pub signal: Option<String>,
    #[arg(long = "client_advertise")]
    pub client_advertise: Option<String>,
    #[arg(long = "ports_file_dir")]
    pub ports_file_dir: Option<String>,
    #[arg(long)]
    pub log: Option<String>,
    #[arg(long)]
    pub logtime: Option<String>,
    #[arg(long)]
    pub syslog: Option<String>,
    #[arg(long = "remote_syslog")]
    pub remote_syslog: Option<String>,
    #[arg(long)]
    pub debug: Option<String>,
    #[arg(long)]
    pub trace: Option<String>,
    #[arg(long = "VV")]
    pub trace_verbose: Option<String>,
    #[arg(long = "DV")]
    pub debug_trace: Option<String>,
    #[arg(long = "DVV")]
    pub debug_trace_verbose: Option<String>,
    #[arg(long = "log_size_limit")]
    pub log_size_limit: Option<String>,
    #[arg(long = "max_traced_msg_len")]
    pub max_traced_msg_len: Option<String>,
    #[arg(long)]
    pub jetstream: Option<String>,
    #[arg(long = "store_dir")]
    pub store_dir: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub pass: Option<String>,
    #[arg(long)]
    pub auth: Option<String>,
    #[arg(long)]
    pub tls: Option<String>,
    #[arg(long)]
    pub tlsverify: Option<String>,
    #[arg(long)]
    pub tlscert: Option<String>,
    #[arg(long)]
    pub tlskey: Option<String>,
    #[arg(long)]
    pub tlscacert: Option<String>,
    #[arg(long)]
    pub routes: Option<String>,
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long = "cluster_name")]
    pub cluster_name: Option<String>,
    #[arg(long = "cluster_advertise")]
    pub cluster_advertise: Option<String>,
    #[arg(long = "no_advertise")]
    pub no_advertise: Option<String>,
    #[arg(long = "connect_retries")]
    pub connect_retries: Option<String>,
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long = "help_tls")]
    pub help_tls: Option<String>,
    #[arg(long)]
    pub help: Option<String>,
    #[arg(long)]
    pub version: Option<String>,
    /// The first positional argument, if any.
    #[arg(num_args = 0..)]
    pub command: Vec<String>,
}

/// Something printed instead of running the server (exit 0).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum InfoRequest {
    Version,
    Help,
    TlsHelp,
}

/// A command-line problem, reported the way the reference reports it.
#[derive(Debug, PartialEq)]
pub enum CliError {
    /// Printed to stderr, then the usage to stdout, exit 0 (as the reference does).
    Usage(String),
    /// Printed as `nats-server: <msg>` to stderr, exit 1.
    Fatal(String),
}

fn lookup(name: &str) -> Option<(&'static str, bool)> {
    FLAGS
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(names, is_bool)| (names[0], *is_bool))
}

/// Rewrites Go-style arguments into `--canonical=value` pairs for clap.
fn normalise(args: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = vec!["nats-server".to_string()];
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            out.push("--".to_string());
            out.extend(args[i + 1..].iter().cloned());
            break;
        }
        let Some(stripped) = arg.strip_prefix('-').filter(|s| !s.is_empty()) else {
            // Go stops at the first positional argument; the rest are positional too.
            out.push("--".to_string());
            out.extend(args[i..].iter().cloned());
            break;
        };
        let stripped = stripped.strip_prefix('-').unwrap_or(stripped);
        let (name, value) = match stripped.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (stripped, None),
        };
        let (canonical, is_bool) = lookup(name)
            .ok_or_else(|| CliError::Usage(format!("flag provided but not defined: -{name}")))?;
        let value = match (value, is_bool) {
            (Some(v), true) => {
                parse_bool(&v).ok_or_else(|| {
                    CliError::Usage(format!(
                        "invalid boolean value {v:?} for -{name}: parse error"
                    ))
                })?;
                v
            }
            (None, true) => "true".to_string(),
            (Some(v), false) => v,
            (None, false) => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| CliError::Usage(format!("flag needs an argument: -{name}")))?
            }
        };
        out.push(format!("--{canonical}={value}"));
        i += 1;
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl Flags {
    pub fn parse_args(args: &[String]) -> Result<Flags, CliError> {
        let normalised = normalise(args)?;
        Flags::try_parse_from(normalised).map_err(|e| CliError::Usage(e.to_string()))
    }

    fn flag(&self, v: &Option<String>) -> bool {
        v.as_deref().and_then(parse_bool).unwrap_or(false)
    }

    /// What to print instead of running, in the reference's order of precedence: the
    /// `-v`, `-h` and `--help_tls` flags, then the `version` and `help` commands.
    pub fn info_request(&self) -> Option<InfoRequest> {
        if self.flag(&self.version) {
            return Some(InfoRequest::Version);
        }
        if self.flag(&self.help) {
            return Some(InfoRequest::Help);
        }
        if self.flag(&self.help_tls) {
            return Some(InfoRequest::TlsHelp);
        }
        match self.command.first().map(String::as_str) {
            Some("version") => Some(InfoRequest::Version),
            Some("help") => Some(InfoRequest::Help),
            _ => None,
        }
    }

    /// `--routes` given without any cluster listener (flag or config file): the reference
    /// refuses to start.
    pub fn routes_without_cluster(&self, opts: &Options) -> bool {
        self.routes.as_deref().is_some_and(|r| !r.is_empty())
            && self.cluster.as_deref().unwrap_or_default().is_empty()
            && opts.cluster.host.is_empty()
            && opts.cluster.port == 0
    }

    pub fn test_only(&self) -> bool {
        self.flag(&self.test_config)
    }

    /// Rejects positional arguments other than `version` and `help`.
    pub fn check_command(&self) -> Result<(), CliError> {
        match self.command.first().map(String::as_str) {
            None | Some("version") | Some("help") => Ok(()),
            Some(other) => Err(CliError::Fatal(format!("unrecognized command: {other:?}"))),
        }
    }

    /// Applies every given flag on top of `opts` (which may hold config-file values).
    pub fn apply(&self, opts: &mut Options) -> Result<(), CliError> {
        fn int(v: &str, flag: &str) -> Result<i64, CliError> {
            v.parse().map_err(|_| {
                CliError::Usage(format!("invalid value {v:?} for flag -{flag}: parse error"))
            })
        }
        let b = |v: &Option<String>| v.as_deref().and_then(parse_bool);
        if let Some(v) = &self.addr {
            opts.host = v.clone();
        }
        if let Some(v) = &self.port {
            opts.port = int(v, "p")? as i32;
        }
        if let Some(v) = &self.name {
            opts.server_name = v.clone();
        }
        if let Some(v) = &self.pid {
            opts.pid_file = Some(PathBuf::from(v));
        }
        if let Some(v) = &self.http_port {
            opts.http_port = int(v, "m")? as i32;
        }
        if let Some(v) = &self.https_port {
            opts.https_port = int(v, "ms")? as i32;
        }
        if let Some(v) = &self.client_advertise {
            opts.client_advertise = v.clone();
        }
        if let Some(v) = &self.ports_file_dir {
            opts.ports_file_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = &self.log {
            opts.log_file = Some(PathBuf::from(v));
        }
        if let Some(v) = b(&self.logtime) {
            opts.logtime = v;
        }
        if let Some(v) = b(&self.syslog) {
            opts.syslog = v;
        }
        if let Some(v) = &self.remote_syslog {
            opts.remote_syslog = v.clone();
        }
        if let Some(v) = b(&self.jetstream) {
            opts.jetstream = v;
        }
        if let Some(v) = &self.store_dir {
            opts.store_dir = v.clone();
        }
        if let Some(v) = b(&self.debug) {
            opts.debug = v;
        }
        if let Some(v) = b(&self.trace) {
            opts.trace = v;
        }
        if let Some(v) = b(&self.trace_verbose) {
            opts.trace = v;
            opts.trace_verbose = v;
        }
        if let Some(v) = b(&self.debug_trace) {
            opts.debug = v;
            opts.trace = v;
        }
        if let Some(v) = b(&self.debug_trace_verbose) {
            opts.debug = v;
            opts.trace = v;
            opts.trace_verbose = v;
        }
        if let Some(v) = &self.log_size_limit {
            opts.log_size_limit = int(v, "log_size_limit")?.max(0) as u64;
        }
        if let Some(v) = &self.max_traced_msg_len {
            opts.max_traced_msg_len = int(v, "max_traced_msg_len")?.max(0) as usize;
        }
        if let Some(v) = &self.user {
            opts.username = v.clone();
        }
        if let Some(v) = &self.pass {
            opts.password = v.clone();
        }
        if let Some(v) = &self.auth {
            opts.token = v.clone();
        }
        let tls_on = b(&self.tls).unwrap_or(false);
        let tls_verify = b(&self.tlsverify).unwrap_or(false);
        if tls_on
            || tls_verify
            || self.tlscert.is_some()
            || self.tlskey.is_some()
            || self.tlscacert.is_some()
        {
            let t = opts.tls.get_or_insert_with(|| TlsOptions {
                timeout: Duration::from_secs(2),
                ..Default::default()
            });
            if let Some(v) = &self.tlscert {
                t.cert_file = Some(PathBuf::from(v));
            }
            if let Some(v) = &self.tlskey {
                t.key_file = Some(PathBuf::from(v));
            }
            if let Some(v) = &self.tlscacert {
                t.ca_file = Some(PathBuf::from(v));
            }
            if tls_verify {
                t.verify = true;
            }
        }
        if let Some(v) = &self.routes {
            opts.cluster.routes = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = &self.cluster {
            apply_cluster_url(opts, v).map_err(CliError::Fatal)?;
        }
        if let Some(v) = &self.cluster_name {
            opts.cluster.name = v.clone();
        }
        if let Some(v) = &self.cluster_advertise {
            opts.cluster.advertise = v.clone();
        }
        if let Some(v) = b(&self.no_advertise) {
            opts.cluster.no_advertise = v;
        }
        if let Some(v) = &self.connect_retries {
            opts.cluster.connect_retries = int(v, "connect_retries")?.max(0) as u32;
        }
        Ok(())
    }
}

/// `--cluster nats://[user:pass@]host:port`: the listen address, with optional route
/// credentials.
pub fn apply_cluster_url(opts: &mut Options, url: &str) -> Result<(), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .trim_end_matches('/');
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host, port) = split_host_port(hostport)
        .ok_or_else(|| format!("error parsing cluster url {url:?}: missing port"))?;
    let port: i32 = port
        .parse()
        .map_err(|_| format!("error parsing cluster url {url:?}: invalid port {port:?}"))?;
    opts.cluster.host = host.to_string();
    opts.cluster.port = port;
    if let Some(u) = userinfo {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        opts.cluster.username = user.to_string();
        opts.cluster.password = pass.to_string();
    }
    Ok(())
}

/// Splits `host:port`, `[v6]:port`.
pub fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        return Some((h, p));
    }
    s.rsplit_once(':')
}

/// The reference prints this with a newline after it, so a blank line leads and ends it.
pub const USAGE: &str = "
Usage: nats-server [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to nats-server process (ldm, stop, quit, term, reopen, reload)
                                     pid> can be either a PID (e.g. 1) or the path to a PID file (e.g. /var/run/nats-server.pid)
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
    -s, --syslog                     Log to syslog or windows event log
    -r, --remote_syslog <addr>       Syslog server addr (udp://localhost:514)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (traces system account as well)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace (traces system account as well)
        --log_size_limit <limit>     Logfile size limit (default: auto)
        --max_traced_msg_len <len>   Maximum printable length for traced messages (default: unlimited)

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_listen <url>       Cluster url from which members can solicit routes

Profiling Options:
        --profile <port>             Profiling HTTP port

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
        --help_tls                   TLS help
";

/// `--help_tls`: the reference's text, then the cipher suite and curve names it accepts
/// (Go prints them in random map order; here in a fixed one).
pub fn tls_help() -> String {
    let mut s = String::from(TLS_USAGE);
    for c in crate::tls::CIPHER_SUITE_NAMES {
        s.push_str("    ");
        s.push_str(c);
        s.push('\n');
    }
    s.push_str("\nAvailable curve preferences include:\n");
    for c in crate::tls::CURVE_NAMES {
        s.push_str("    ");
        s.push_str(c);
        s.push('\n');
    }
    s
}

const TLS_USAGE: &str = r#"
TLS configuration is specified in the tls section of a configuration file:

e.g.

    tls {
        cert_file:      "./certs/server-cert.pem"
        key_file:       "./certs/server-key.pem"
        ca_file:        "./certs/ca.pem"
        verify:         true
        verify_and_map: true

        cipher_suites: [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
        curve_preferences: [
            "CurveP256",
            "CurveP384",
            "CurveP521"
        ]
    }

Available cipher suites include:
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, CliError> {
        Flags::parse_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn go_style_dashes() {
        let f = parse(&[
            "-port",
            "5222",
            "--addr=127.0.0.1",
            "-DV",
            "-routes",
            "nats://a:1,nats://b:2",
        ])
        .unwrap();
        let mut o = Options::default();
        f.apply(&mut o).unwrap();
        assert_eq!(o.port, 5222);
        assert_eq!(o.host, "127.0.0.1");
        assert!(o.debug && o.trace);
        assert_eq!(o.cluster.routes, vec!["nats://a:1", "nats://b:2"]);
    }

    #[test]
    fn negative_port_and_bools() {
        let f = parse(&["-p", "-1", "-T=false", "-ms", "8443"]).unwrap();
        let mut o = Options::default();
        f.apply(&mut o).unwrap();
        assert_eq!(o.port, -1);
        assert!(!o.logtime);
        assert_eq!(o.https_port, 8443);
    }

    #[test]
    fn errors_like_the_reference() {
        assert_eq!(
            parse(&["-bogus"]).unwrap_err(),
            CliError::Usage("flag provided but not defined: -bogus".into())
        );
        let f = parse(&["-p", "abc"]).unwrap();
        assert_eq!(
            f.apply(&mut Options::default()).unwrap_err(),
            CliError::Usage("invalid value \"abc\" for flag -p: parse error".into())
        );
        let f = parse(&["--no_advertise", "false"]).unwrap();
        assert_eq!(
            f.check_command().unwrap_err(),
            CliError::Fatal("unrecognized command: \"false\"".into())
        );
        assert_eq!(
            parse(&["version"]).unwrap().info_request(),
            Some(InfoRequest::Version)
        );
        assert_eq!(
            parse(&["--help_tls"]).unwrap().info_request(),
            Some(InfoRequest::TlsHelp)
        );
        assert_eq!(
            parse(&["-h", "-v"]).unwrap().info_request(),
            Some(InfoRequest::Version)
        );
    }

    #[test]
    fn cluster_url_with_credentials() {
        let f = parse(&[
            "-cluster",
            "nats://ruser:T0p@127.0.0.1:6222",
            "--cluster_name",
            "x",
        ])
        .unwrap();
        let mut o = Options::default();
        f.apply(&mut o).unwrap();
        assert_eq!(o.cluster.host, "127.0.0.1");
        assert_eq!(o.cluster.port, 6222);
        assert_eq!(o.cluster.username, "ruser");
        assert_eq!(o.cluster.password, "T0p");
        assert_eq!(o.cluster.name, "x");
    }
}
