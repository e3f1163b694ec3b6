//! POSIX signals: INT/TERM stop the server gracefully.

use crate::server::Server;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

/// Waits for a stop signal, shuts the server down, and returns.
pub async fn wait_for_stop(server: Arc<Server>) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let name = tokio::select! {
        _ = int.recv() => "interrupt",
        _ = term.recv() => "terminated",
    };
    info!("Trapped {name:?} signal");
    server.shutdown().await;
    Ok(())
}
