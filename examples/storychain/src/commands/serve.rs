//! `storychain serve`.

use super::CliResult;
use crate::http::ServeOptions;
use crate::StoryChain;
use std::net::SocketAddr;
use std::path::Path;

/// Serves the API until SIGINT or SIGTERM; logs go to stderr (`RUST_LOG`, default `info`).
pub async fn serve(db: &Path, addr: SocketAddr, workers: bool) -> CliResult {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let app = StoryChain::open(db).await?;
    let options = ServeOptions {
        addr,
        workers,
        admin_token: std::env::var("STORYCHAIN_ADMIN_TOKEN").ok(),
    };
    crate::http::serve(app, options, shutdown_signal(), |bound| {
        tracing::info!(%bound, workers, "storychain serving");
    })
    .await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
