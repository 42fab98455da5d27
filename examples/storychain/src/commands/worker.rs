//! `storychain worker`: the background consumers in a process of their own.

use super::{shutdown_signal, CliResult};
use crate::http::{workers, WebhookOptions};
use recount::projection::Supervisor;
use std::path::Path;

/// Runs every consumer (projections, process managers, webhook delivery) until SIGINT or
/// SIGTERM, then stops them cleanly: batches finished, leases released at once so another
/// process takes over without waiting for them to expire. With `partition`, the process
/// managers and webhook delivery take only that share of the streams.
pub async fn worker(db: &Path, partition: Option<(u32, u32)>) -> CliResult {
    crate::http::metrics::install();
    let app = super::open_app(db).await?;
    let webhooks = WebhookOptions::from_env();
    let app = app.with_webhook_hosts(webhooks.allowed_hosts.clone());
    let supervisor = Supervisor::start(workers(&app, &webhooks, partition).await?);
    let (i, n) = partition.unwrap_or((0, 1));
    tracing::info!(
        engine = super::database(db)?.engine(),
        partition = %format!("{i}/{n}"),
        consumers = supervisor.runners().len(),
        "storychain worker running"
    );
    shutdown_signal().await;
    supervisor.shutdown().await;
    tracing::info!("storychain worker stopped");
    Ok(())
}
