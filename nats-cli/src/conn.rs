//! Turning the global flags and context into a client connection, and logging the
//! connection's events the way the reference CLI does.

use crate::output::{log, parse_duration};
use crate::{context, Global};
use anyhow::Result;
use nats_common::client::{Client, Event, Options};
use std::path::PathBuf;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub fn options(g: &Global) -> Result<Options> {
    let c = context::effective(g)?;
    let timeout = parse_duration(&g.timeout)?;
    let mut o = Options::new(non_empty(&c.url).unwrap_or_else(|| "nats://127.0.0.1:4222".into()));
    // A user without a password is a token, as in the reference.
    match (non_empty(&c.user), non_empty(&c.password)) {
        (Some(u), None) => o.token = Some(u),
        (u, p) => {
            o.user = u;
            o.password = p;
        }
    }
    if let Some(t) = non_empty(&c.token) {
        o.token = Some(t);
    }
    o.creds_file = non_empty(&c.creds).map(PathBuf::from);
    o.nkey_file = non_empty(&c.nkey).map(PathBuf::from);
    if let Some(cert) = non_empty(&c.cert) {
        if !std::path::Path::new(&cert).exists() {
            anyhow::bail!("client certificate file {cert} does not exist");
        }
        o.tls_cert = Some(cert.into());
    }
    o.tls_key = non_empty(&c.key).map(PathBuf::from);
    o.tls_ca = non_empty(&c.ca).map(PathBuf::from);
    if let Some(p) = non_empty(&c.inbox_prefix) {
        o.inbox_prefix = p;
    }
    o.name = Some(
        g.connection_name
            .clone()
            .unwrap_or_else(|| format!("NATS CLI Version {VERSION}")),
    );
    o.max_reconnects = None;
    if !timeout.is_zero() {
        o.connect_timeout = timeout;
        o.request_timeout = timeout;
    }
    Ok(o)
}

pub async fn connect(g: &Global) -> Result<Client> {
    connect_with(options(g)?).await
}

pub async fn connect_with(o: Options) -> Result<Client> {
    let client = Client::connect(o).await?;
    let mut events = client.events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(e) => log_event(&e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    });
    Ok(client)
}

fn log_event(e: &Event) {
    match e {
        Event::Disconnected { reason } => {
            log(format!("Disconnected due to: {reason}, will attempt reconnect"))
        }
        Event::Reconnected { url } => log(format!("Reconnected [{url}]")),
        Event::ServerError { url, text } => {
            log(format!("Unexpected NATS error from server {url}: nats: {text}"))
        }
        Event::SlowConsumer { subject, .. } => log(format!(
            "Unexpected NATS error: nats: slow consumer, messages dropped on subscription on \"{subject}\""
        )),
        Event::Dropped { msgs, bytes } => log(format!(
            "Dropped {msgs} messages ({bytes} bytes) published while disconnected: reconnect buffer full"
        )),
        _ => {}
    }
}
