//! `storychain serve`.

use super::{shutdown_signal, CliResult};
use crate::http::{ServeOptions, WebhookOptions};
use crate::StoryChain;
use std::net::SocketAddr;
use std::path::Path;

/// Serves the API until SIGINT or SIGTERM; logs go to the installed subscriber (the binary
/// installs [`init_logs`](super::init_logs)).
pub async fn serve(db: &Path, addr: SocketAddr, workers: bool) -> CliResult {
    let app = StoryChain::open(db).await?;
    let options = ServeOptions {
        addr,
        workers,
        admin_token: std::env::var("STORYCHAIN_ADMIN_TOKEN").ok(),
        webhooks: WebhookOptions {
            allowed_hosts: std::env::var("STORYCHAIN_WEBHOOK_HOSTS").ok().map(|hosts| {
                hosts
                    .split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .collect()
            }),
            ..WebhookOptions::default()
        },
    };
    crate::http::serve(app, options, shutdown_signal(), |bound| {
        tracing::info!(%bound, workers, "storychain serving");
    })
    .await
}
