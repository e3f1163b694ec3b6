//! Typed client errors. Each variant renders as one line a CLI can print after `nats: error: `.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No server could be reached. Every URL tried is listed with the reason it failed.
    Connect(Vec<(String, String)>),
    /// The server rejected our credentials (`-ERR 'Authorization Violation'`).
    Authorization(String),
    /// A `-ERR 'Permissions Violation ...'` reported for something we sent.
    Permission(String),
    /// A request reached no subscriber (status 503 without a body).
    NoResponders,
    /// A request, flush or connect did not complete in time.
    Timeout,
    /// The client was closed or drained.
    Closed,
    /// The subject (or reply subject) cannot be sent.
    InvalidSubject(String),
    /// Headers plus payload exceed the server's `max_payload`.
    MaxPayload { size: usize, max: usize },
    /// TLS setup or handshake failed.
    Tls(String),
    /// Bad option value (unreadable creds file, bad URL, ...).
    Config(String),
    /// Any other `-ERR` from the server.
    Server(String),
    /// Transport or protocol failure.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Connect(tried) => {
                f.write_str("could not connect to any server")?;
                for (i, (url, why)) in tried.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { "; " })?;
                    write!(f, "{url}: {why}")?;
                }
                Ok(())
            }
            Error::Authorization(t) => write!(f, "nats: {t}"),
            Error::Permission(t) => write!(f, "nats: {t}"),
            Error::NoResponders => f.write_str("nats: no responders available for request"),
            Error::Timeout => f.write_str("nats: timeout"),
            Error::Closed => f.write_str("nats: connection closed"),
            Error::InvalidSubject(s) => write!(f, "nats: invalid subject {s:?}"),
            Error::MaxPayload { size, max } => {
                write!(f, "nats: maximum payload exceeded ({size} > {max})")
            }
            Error::Tls(t) => write!(f, "tls: {t}"),
            Error::Config(t) => f.write_str(t),
            Error::Server(t) => write!(f, "nats: {t}"),
            Error::Io(t) => f.write_str(t),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(io_reason(&e))
    }
}

/// Short reason text for an I/O error; a clean close reads as `EOF` like the Go client says.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "EOF".to_string(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".to_string(),
        std::io::ErrorKind::BrokenPipe => "broken pipe".to_string(),
        _ => e.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_error_lists_every_url() {
        let e = Error::Connect(vec![
            ("nats://a:1".into(), "connection refused".into()),
            ("nats://b:2".into(), "timeout".into()),
        ]);
        assert_eq!(
            e.to_string(),
            "could not connect to any server: nats://a:1: connection refused; nats://b:2: timeout"
        );
    }
}
