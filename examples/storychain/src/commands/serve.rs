//! `storychain serve`.

use super::{shutdown_signal, CliResult};
use crate::http::{ServeOptions, WebhookOptions};
use std::net::SocketAddr;
use std::path::Path;

/// Serves the API until SIGINT or SIGTERM; logs go to the installed subscriber (the binary
/// installs [`init_logs`](super::init_logs)).
pub async fn serve(db: &Path, addr: SocketAddr, workers: bool) -> CliResult {
    let app = super::open_app(db).await?;
    let options = ServeOptions {
        addr,
        workers,
        admin_token: std::env::var("STORYCHAIN_ADMIN_TOKEN").ok(),
        webhooks: WebhookOptions::from_env(),
    };
    crate::http::serve(app, options, shutdown_signal(), |bound| {
        tracing::info!(%bound, workers, "storychain serving");
    })
    .await
}
