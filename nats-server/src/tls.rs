//! TLS for the client port, routes and the HTTPS monitor, built on rustls (ring provider,
//! TLS 1.2 and 1.3 only).
//!
//! Entry points for other modules:
//! - [`client_server_config`]: the client port (`tls {}` / `--tls*`).
//! - [`https_server_config`]: the HTTPS monitoring port (same settings as the client port).
//! - [`route_server_config`] / [`route_client_config`]: routes, always mutually verified
//!   unless `insecure` is set.
//! - [`accept`] / [`connect`]: a handshake bounded by the configured timeout.
//! - [`peer_identities`]: names from a client certificate for `verify_and_map`.

use crate::client::{Client, ClosedState};
use crate::options::TlsOptions;
use crate::server::Server;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, error};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Go's wording for file errors: `open /x: no such file or directory`.
pub(crate) fn open_error(path: &Path, e: &std::io::Error) -> String {
    let mut text = e.to_string();
    if let Some(i) = text.find(" (os error") {
        text.truncate(i);
    }
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => text,
    };
    format!("open {}: {}", path.display(), text)
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let f = std::fs::File::open(path).map_err(|e| open_error(path, &e))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(f))
        .filter_map(Result::ok)
        .collect();
    Ok(certs)
}

fn read_key(path: &Path) -> Result<Option<PrivateKeyDer<'static>>, String> {
    let f = std::fs::File::open(path).map_err(|e| open_error(path, &e))?;
    rustls_pemfile::private_key(&mut BufReader::new(f))
        .map_err(|e| format!("tls: failed to parse private key: {e}"))
}

/// The certificate chain and key of `t`, with the reference's error texts.
fn cert_and_key(
    t: &TlsOptions,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert = t
        .cert_file
        .as_deref()
        .ok_or("missing 'cert_file' in TLS configuration")?;
    let key = t
        .key_file
        .as_deref()
        .ok_or("missing 'key_file' in TLS configuration")?;
    let pair = |m: String| format!("error parsing X509 certificate/key pair: {m}");
    let certs = read_pem_certs(cert).map_err(pair)?;
    if certs.is_empty() {
        return Err(pair(
            "tls: failed to find any PEM data in certificate input".into(),
        ));
    }
    let key = read_key(key)
        .map_err(pair)?
        .ok_or_else(|| pair("tls: failed to find any PEM data in key input".into()))?;
    Ok((certs, key))
}

fn ca_roots(t: &TlsOptions) -> Result<Option<RootCertStore>, String> {
    let Some(ca) = t.ca_file.as_deref() else {
        return Ok(None);
    };
    let certs = read_pem_certs(ca)?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err("failed to parse root ca certificate".into());
    }
    Ok(Some(roots))
}

/// Loads everything `t` names, so configuration checks (`-t`) catch bad files.
pub fn check_files(t: &TlsOptions) -> Result<(), String> {
    cert_and_key(t)?;
    ca_roots(t)?;
    build_server(t, t.verify)?;
    Ok(())
}

/// [`check_files`] for a dialling side: the certificate is optional (both files or none).
pub fn check_client_files(t: &TlsOptions) -> Result<(), String> {
    if t.cert_file.is_some() || t.key_file.is_some() {
        cert_and_key(t)?;
    }
    ca_roots(t)?;
    Ok(())
}

fn build_server(t: &TlsOptions, verify_clients: bool) -> Result<ServerConfig, String> {
    let (certs, key) = cert_and_key(t)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (verify_clients, ca_roots(t)?) {
        (true, Some(roots)) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(v)
        }
        (true, None) => {
            // Verification without a CA: use the system has no store here, so no
            // client could pass. Say so plainly instead of failing every handshake.
            return Err("tls: verify requires 'ca_file' in TLS configuration".into());
        }
        (false, _) => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("error parsing X509 certificate/key pair: {e}"))
}

/// Server side of the client port.
pub fn client_server_config(t: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    build_server(t, t.verify).map(Arc::new)
}

/// Server side of the HTTPS monitoring port (the client port's settings).
pub fn https_server_config(t: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    let mut c = build_server(t, t.verify)?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// Server side of the route port: peers must present a certificate signed by the CA
/// (the reference forces this for clusters), unless `insecure`.
pub fn route_server_config(t: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    let verify = !t.insecure && t.ca_file.is_some();
    build_server(t, verify).map(Arc::new)
}

/// Client side for dialing routes: verifies the peer against the CA (or skips that when
/// `insecure`) and presents our own certificate.
pub fn route_client_config(t: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if t.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let roots = ca_roots(t)?.unwrap_or_else(RootCertStore::empty);
        builder.with_root_certificates(roots)
    };
    let cfg = match cert_and_key(t) {
        Ok((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| e.to_string())?,
        Err(_) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// Accepts a TLS handshake on an accepted socket within `timeout`.
pub async fn accept(
    cfg: Arc<ServerConfig>,
    stream: TcpStream,
    timeout: Duration,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(2)
    } else {
        timeout
    };
    match tokio::time::timeout(timeout, TlsAcceptor::from(cfg).accept(stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timeout".into()),
    }
}

/// Dials TLS over a connected socket; `host` is the name checked in the peer certificate.
pub async fn connect(
    cfg: Arc<ClientConfig>,
    host: &str,
    stream: TcpStream,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(host.trim_matches(|c| c == '[' || c == ']').to_string())
        .map_err(|e| e.to_string())?;
    let timeout = if timeout.is_zero() {
        Duration::from_secs(2)
    } else {
        timeout
    };
    match tokio::time::timeout(timeout, TlsConnector::from(cfg).connect(name, stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timeout".into()),
    }
}

/// Protocol version and cipher suite names for monitoring (`1.3`, `TLS13_AES_128_GCM_SHA256`).
pub fn session_info(conn: &rustls::ServerConnection) -> (String, String) {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
        _ => "",
    };
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    (version.to_string(), suite)
}

/// The client-port config for `t`, built once and rebuilt only when the settings change
/// (a reload may replace them).
fn cached_client_config(t: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
    static CACHE: parking_lot::Mutex<Option<(TlsOptions, Arc<ServerConfig>)>> =
        parking_lot::Mutex::new(None);
    let mut g = CACHE.lock();
    if let Some((k, cfg)) = &*g {
        if k == t {
            return Ok(cfg.clone());
        }
    }
    let cfg = client_server_config(t)?;
    *g = Some((t.clone(), cfg.clone()));
    Ok(cfg)
}

/// Serves a client on a TLS-enabled port: the INFO goes out in plaintext, then the
/// handshake (unless `allow_non_tls` and the client starts in plaintext), then the usual
/// read loop over the encrypted stream.
pub async fn serve_client(
    server: Arc<Server>,
    client: Arc<Client>,
    mut stream: TcpStream,
    info: Vec<u8>,
    too_many: bool,
    t: &TlsOptions,
) {
    use tokio::io::AsyncWriteExt;
    let fail = |server: &Server, client: &Arc<Client>, reason: ClosedState| {
        client.close(reason);
        server.client_closed(client);
    };
    if stream.write_all(&info).await.is_err() {
        fail(&server, &client, ClosedState::WriteError);
        return;
    }
    if too_many {
        let _ = stream
            .write_all(b"-ERR 'maximum connections exceeded'\r\n")
            .await;
        fail(&server, &client, ClosedState::MaxConnectionsExceeded);
        return;
    }
    if server.opts().allow_non_tls {
        // A TLS ClientHello starts with record type 22; anything else is plaintext.
        let mut first = [0u8; 1];
        let peek = tokio::time::timeout(
            t.timeout.max(Duration::from_secs(1)),
            stream.peek(&mut first),
        )
        .await;
        if let Ok(Ok(1)) = peek {
            if first[0] != 0x16 {
                let (rd, wr) = stream.into_split();
                crate::client::run(server, client, rd, wr).await;
                return;
            }
        }
    }
    let cfg = match cached_client_config(t) {
        Ok(c) => c,
        Err(e) => {
            error!("{} - TLS configuration error: {e}", client.prefix());
            fail(&server, &client, ClosedState::TlsHandshakeError);
            return;
        }
    };
    let tls = match accept(cfg, stream, t.timeout).await {
        Ok(s) => s,
        Err(e) => {
            error!("{} - TLS handshake error: {e}", client.prefix());
            fail(&server, &client, ClosedState::TlsHandshakeError);
            return;
        }
    };
    {
        let (_, conn) = tls.get_ref();
        let (version, cipher) = session_info(conn);
        let names = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| peer_identities(c.as_ref()))
            .unwrap_or_default();
        debug!("{} - TLS handshake complete", client.prefix());
        debug!(
            "{} - TLS version {version}, cipher suite {cipher}",
            client.prefix()
        );
        let mut meta = client.meta.lock();
        meta.tls_version = version;
        meta.tls_cipher = cipher;
        meta.auth.tls_names = names;
    }
    let (rd, wr) = tokio::io::split(tls);
    crate::client::run(server, client, rd, wr).await;
}

/// Route-side TLS, started before any protocol byte (as the reference does for routes):
/// the dialling side is the TLS client and checks the peer's certificate against the
/// CA for the peer's IP address; the accepting side requires a client certificate.
pub async fn secure_route(
    stream: TcpStream,
    solicited: bool,
    t: &TlsOptions,
) -> std::io::Result<(
    std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
)> {
    let io_err = std::io::Error::other;
    if solicited {
        let host = stream.peer_addr()?.ip().to_string();
        let cfg = route_client_config(t).map_err(io_err)?;
        let s = connect(cfg, &host, stream, t.timeout)
            .await
            .map_err(|e| io_err(format!("TLS route handshake error: {e}")))?;
        let (rd, wr) = tokio::io::split(s);
        Ok((Box::pin(rd), Box::pin(wr)))
    } else {
        let cfg = route_server_config(t).map_err(io_err)?;
        let s = accept(cfg, stream, t.timeout)
            .await
            .map_err(|e| io_err(format!("TLS route handshake error: {e}")))?;
        let (rd, wr) = tokio::io::split(s);
        Ok((Box::pin(rd), Box::pin(wr)))
    }
}

/// Accepts any server certificate (route `insecure`), still checking signatures.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---- certificate names for verify_and_map ----

/// One DER element: tag, contents, and what follows it.
fn der_next(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, mut rest) = rest.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &x in &rest[..n] {
            len = (len << 8) | x as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn der_items(mut b: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((t, c, rest)) = der_next(b) {
        out.push((t, c));
        b = rest;
    }
    out
}

const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

fn attr_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "SERIALNUMBER",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x11] => "POSTALCODE",
        _ => return None,
    })
}

/// RFC 4514 escaping of an attribute value.
fn escape_dn(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject as Go prints it (RFC 2253 order: last RDN first), e.g.
/// `CN=alice,OU=eng,O=acme`.
fn subject_string(name: &[u8]) -> String {
    let mut rdns = Vec::new();
    for (_, set) in der_items(name) {
        let mut parts = Vec::new();
        for (_, atv) in der_items(set) {
            let items = der_items(atv);
            if items.len() < 2 {
                continue;
            }
            let (oid, (_, val)) = (items[0].1, items[1]);
            let value = String::from_utf8_lossy(val);
            match attr_name(oid) {
                Some(n) => parts.push(format!("{n}={}", escape_dn(&value))),
                None => {
                    let hex: String = atv[..]
                        .iter()
                        .skip(2 + oid.len())
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    parts.push(format!("{}=#{hex}", oid_dotted(oid)));
                }
            }
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn oid_dotted(oid: &[u8]) -> String {
    let Some((&first, rest)) = oid.split_first() else {
        return String::new();
    };
    let mut parts = vec![(first / 40) as u64, (first % 40) as u64];
    let mut acc = 0u64;
    for &b in rest {
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            parts.push(acc);
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Names a client certificate can map to, in the order the reference tries them: SAN
/// e-mail addresses, SAN DNS names, then the RFC 2253 subject.
pub fn peer_identities(cert: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, certificate, _)) = der_next(cert) else {
        return out;
    };
    let Some((_, tbs, _)) = der_next(certificate) else {
        return out;
    };
    let mut fields = der_items(tbs);
    // Skip the optional explicit version [0].
    if fields.first().is_some_and(|(t, _)| *t == 0xa0) {
        fields.remove(0);
    }
    // serial, signature, issuer, validity, subject, spki, then optional [1] [2] [3].
    let subject = fields.get(4).map(|(_, s)| *s);
    let mut emails = Vec::new();
    let mut dns = Vec::new();
    for (tag, content) in fields.iter().skip(6) {
        if *tag != 0xa3 {
            continue;
        }
        let Some((_, exts, _)) = der_next(content) else {
            continue;
        };
        for (_, ext) in der_items(exts) {
            let items = der_items(ext);
            if items.first().map(|(_, o)| *o) != Some(OID_SAN) {
                continue;
            }
            let Some((_, octets)) = items.last() else {
                continue;
            };
            let Some((_, names, _)) = der_next(octets) else {
                continue;
            };
            for (t, v) in der_items(names) {
                let v = String::from_utf8_lossy(v).into_owned();
                match t {
                    0x81 => emails.push(v),
                    0x82 => dns.push(v),
                    _ => {}
                }
            }
        }
    }
    out.extend(emails);
    out.extend(dns);
    if let Some(s) = subject {
        out.push(subject_string(s));
    }
    out
}

/// Cipher suite names the reference accepts in `cipher_suites` (listed by `--help_tls`).
pub const CIPHER_SUITE_NAMES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Curve names the reference accepts in `curve_preferences` (listed by `--help_tls`).
pub const CURVE_NAMES: &[&str] = &["X25519", "CurveP256", "CurveP384", "CurveP521"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_garbage_certificates_give_no_names() {
        assert!(peer_identities(b"").is_empty());
        assert!(peer_identities(&[0x30, 0x82, 0xff]).is_empty());
        assert!(peer_identities(&[0x30, 0x03, 0x30, 0x01, 0x00]).is_empty());
    }

    #[test]
    fn dn_escaping() {
        assert_eq!(escape_dn("a,b"), "a\\,b");
        assert_eq!(escape_dn("#x"), "\\#x");
        assert_eq!(oid_dotted(&[0x2a, 0x86, 0x48]), "1.2.840");
    }
}
