//! Connection options and credential loading (user/password, token, NKey seed, creds file).

use super::error::Error;
use super::servers::{parse_server_list, ServerAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything that shapes a connection. Build with [`Options::new`] and the `with_*`-style
/// public fields, then pass to [`super::Client::connect`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Comma-separated list or single URL; see [`ServerAddr::parse`].
    pub servers: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// NKey seed text (`SU...`).
    pub nkey_seed: Option<String>,
    /// A file holding an NKey seed.
    pub nkey_file: Option<PathBuf>,
    /// A `.creds` file holding a user JWT and its seed.
    pub creds_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Insist on TLS even when neither URL nor server asks for it.
    pub tls_required: bool,
    /// CONNECT `name`.
    pub name: Option<String>,
    pub no_randomize: bool,
    pub echo: bool,
    pub connect_timeout: Duration,
    pub reconnect_wait: Duration,
    pub reconnect_jitter: Duration,
    pub reconnect_jitter_tls: Duration,
    /// Attempts per server before it is dropped from the pool; `None` = retry forever.
    pub max_reconnects: Option<u32>,
    pub allow_reconnect: bool,
    pub ping_interval: Duration,
    pub max_pings_out: usize,
    /// Publishes made while disconnected are kept up to this many bytes; beyond, dropped.
    pub reconnect_buf_size: usize,
    /// Publishers wait once this many bytes are queued for the socket (backpressure).
    pub max_pending_out: usize,
    pub request_timeout: Duration,
    pub inbox_prefix: String,
    /// Messages buffered per channel subscription before the client drops (slow consumer).
    pub sub_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            servers: "nats://127.0.0.1:4222".into(),
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            nkey_file: None,
            creds_file: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_required: false,
            name: None,
            no_randomize: false,
            echo: true,
            connect_timeout: Duration::from_secs(2),
            reconnect_wait: Duration::from_secs(2),
            reconnect_jitter: Duration::from_millis(100),
            reconnect_jitter_tls: Duration::from_secs(1),
            max_reconnects: Some(60),
            allow_reconnect: true,
            ping_interval: Duration::from_secs(120),
            max_pings_out: 2,
            reconnect_buf_size: 8 * 1024 * 1024,
            max_pending_out: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(5),
            inbox_prefix: "_INBOX".into(),
            sub_capacity: 512 * 1024,
        }
    }
}

impl Options {
    pub fn new(servers: impl Into<String>) -> Self {
        Options {
            servers: servers.into(),
            ..Default::default()
        }
    }

    pub(crate) fn server_addrs(&self) -> Result<Vec<ServerAddr>, Error> {
        parse_server_list(&self.servers).map_err(Error::Config)
    }

    /// Loads the signing material once, at connect time, so a bad file fails early.
    pub(crate) fn load_auth(&self) -> Result<Auth, Error> {
        let mut auth = Auth::default();
        if let Some(path) = &self.creds_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("could not read creds file {}: {e}", path.display()))
            })?;
            let (jwt, seed) = parse_creds(&text)
                .ok_or_else(|| Error::Config(format!("invalid creds file {}", path.display())))?;
            auth.jwt = Some(jwt);
            auth.seed = Some(seed);
        }
        if let Some(path) = &self.nkey_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("could not read nkey file {}: {e}", path.display()))
            })?;
            let seed = find_seed(&text).ok_or_else(|| {
                Error::Config(format!("no nkey seed found in {}", path.display()))
            })?;
            auth.seed = Some(seed);
        }
        if let Some(seed) = &self.nkey_seed {
            auth.seed = Some(seed.trim().to_string());
        }
        if let Some(seed) = &auth.seed {
            // Validate now; signing later cannot fail on a good seed.
            let kp = nkeys::KeyPair::from_seed(seed)
                .map_err(|e| Error::Config(format!("invalid nkey seed: {e}")))?;
            auth.public_key = Some(kp.public_key());
        }
        Ok(auth)
    }
}

/// Loaded key material.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    pub jwt: Option<String>,
    pub seed: Option<String>,
    pub public_key: Option<String>,
}

impl Auth {
    /// Signs the server nonce: base64url without padding, as the server expects in `sig`.
    pub fn sign(&self, nonce: &str) -> Option<String> {
        use base64::Engine;
        let kp = nkeys::KeyPair::from_seed(self.seed.as_deref()?).ok()?;
        let sig = kp.sign(nonce.as_bytes()).ok()?;
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig))
    }
}

/// Extracts the JWT and the seed from a `.creds` file: each is the first non-empty line after
/// its `-----BEGIN ...-----` marker.
pub fn parse_creds(text: &str) -> Option<(String, String)> {
    let mut jwt = None;
    let mut seed = None;
    let mut want: Option<u8> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with("---") {
            want = if line.contains("BEGIN") && line.contains("JWT") {
                Some(b'j')
            } else if line.contains("BEGIN") && line.contains("SEED") {
                Some(b's')
            } else {
                None
            };
            continue;
        }
        match want.take() {
            Some(b'j') if jwt.is_none() => jwt = Some(line.to_string()),
            Some(b's') if seed.is_none() => seed = Some(line.to_string()),
            _ => {}
        }
    }
    Some((jwt?, seed?))
}

/// The first line of a seed file that looks like an NKey seed.
pub fn find_seed(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with('S') && l.len() >= 58 && nkeys::KeyPair::from_seed(l).is_ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_file() {
        let kp = nkeys::KeyPair::new_user();
        let seed = kp.seed().unwrap();
        let text = format!(
            "-----BEGIN NATS USER JWT-----\neyJhbGc.x.y\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        );
        let (jwt, s) = parse_creds(&text).unwrap();
        assert_eq!(jwt, "eyJhbGc.x.y");
        assert_eq!(s, seed);
        assert!(parse_creds("nothing").is_none());
        assert_eq!(find_seed(&format!("# key\n{seed}\n")), Some(seed.clone()));
        let auth = Auth {
            seed: Some(seed),
            ..Default::default()
        };
        let sig = auth.sign("nonce").unwrap();
        assert!(!sig.contains('=') && !sig.contains('+'));
    }
}
