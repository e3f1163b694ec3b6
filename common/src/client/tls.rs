//! TLS for client connections (rustls): CA bundle, optional client certificate.

use super::error::Error;
use super::options::Options;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Whether the options ask for TLS by themselves (a CA or a client cert implies it).
pub(crate) fn configured(opts: &Options) -> bool {
    opts.tls_required || opts.tls_ca.is_some() || opts.tls_cert.is_some()
}

fn read_certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let data = std::fs::read(path)
        .map_err(|e| Error::Tls(format!("could not read {}: {e}", path.display())))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("bad certificate in {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "no certificate found in {}",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &std::path::Path) -> Result<PrivateKeyDer<'static>, Error> {
    let data = std::fs::read(path)
        .map_err(|e| Error::Tls(format!("could not read {}: {e}", path.display())))?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| Error::Tls(format!("bad key in {}: {e}", path.display())))?
        .ok_or_else(|| Error::Tls(format!("no private key found in {}", path.display())))
}

/// Builds the rustls client configuration once per client.
pub(crate) fn client_config(opts: &Options) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &opts.tls_ca {
        for c in read_certs(ca)? {
            roots
                .add(c)
                .map_err(|e| Error::Tls(format!("bad CA certificate: {e}")))?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls(e.to_string()))?
    .with_root_certificates(roots);
    let config = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| Error::Tls(e.to_string()))?,
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Tls(
                "both a client certificate and its key are needed".into(),
            ))
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

pub(crate) async fn handshake(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, Error> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| Error::Tls(format!("invalid server name {host:?}: {e}")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Tls(e.to_string()))
}
