//! `storychain serve`: the API on a socket, the background consumers beside it.

use super::{app, ApiState};
use crate::process::{AwardsManager, MergeManager, MilestoneManager};
use crate::readmodel::{projection, PROJECTIONS};
use crate::webhooks::WebhookDelivery;
use crate::{AppError, StoryChain};
use recount::live::{Fanout, FanoutOptions};
use recount::projection::{
    ActiveVersion, Effects, Process, Runner, RunnerOptions, Supervised, Supervisor,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Run the consumers (projections, process managers) in this process.
    pub workers: bool,
    /// The operator's token (`None`: admin routes off).
    pub admin_token: Option<String>,
    /// How webhooks are delivered.
    pub webhooks: WebhookOptions,
}

impl Default for ServeOptions {
    /// `127.0.0.1:8080`, with workers, admin routes off, default webhook delivery.
    fn default() -> Self {
        ServeOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: true,
            admin_token: None,
            webhooks: WebhookOptions::default(),
        }
    }
}

/// How webhooks are delivered: each attempt's timeout, the attempts before an event is
/// parked as a dead letter, and the pause between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOptions {
    /// How long one attempt may take (default 10 s).
    pub timeout: Duration,
    /// Attempts before the event is parked (default 5).
    pub attempts: u32,
    /// The first and the longest pause between attempts (default 1 s and 60 s; doubling,
    /// jittered).
    pub backoff: (Duration, Duration),
    /// The hosts webhooks may be registered for and delivered to (`None`, the default: any;
    /// `storychain serve` takes them from `STORYCHAIN_WEBHOOK_HOSTS`, comma-separated). A
    /// registration for another host is refused; a delivery to one (registered before the
    /// list changed) fails and is parked.
    pub allowed_hosts: Option<Vec<String>>,
}

impl WebhookOptions {
    /// The defaults, with the allowed hosts from `STORYCHAIN_WEBHOOK_HOSTS` (comma-separated).
    pub fn from_env() -> Self {
        WebhookOptions {
            allowed_hosts: std::env::var("STORYCHAIN_WEBHOOK_HOSTS").ok().map(|hosts| {
                hosts
                    .split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
                    .collect()
            }),
            ..WebhookOptions::default()
        }
    }
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions {
            timeout: Duration::from_secs(10),
            attempts: 5,
            backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            allowed_hosts: None,
        }
    }
}

/// Runners for every consumer StoryChain has: its projections (each following its active
/// version, so a rebuild switches them with no restart), its process managers and webhook
/// delivery. A [`Supervisor`] runs them (in `serve`, or in a worker process).
///
/// With `partition` `(i, n)`, the process managers and webhook delivery take only the
/// streams of partition `i` of `n`, each with a checkpoint and lease of its own; projections
/// read the whole log in order (a story's counts follow events of other streams) and are
/// never partitioned.
pub async fn workers(
    app: &StoryChain,
    webhooks: &WebhookOptions,
    partition: Option<(u32, u32)>,
) -> Result<Vec<Arc<dyn Supervised>>, AppError> {
    let store = app.store();
    let mut runners: Vec<Arc<dyn Supervised>> = Vec::new();
    for name in PROJECTIONS {
        let at = store.clone();
        let slot = ActiveVersion::new(store.clone(), name, move |version| {
            let p = projection(&at, name, version)?;
            Ok(Arc::new(Runner::new(at.clone(), p)) as Arc<dyn Supervised>)
        })
        .await?;
        runners.push(Arc::new(slot));
    }
    let shared = RunnerOptions {
        partition,
        ..RunnerOptions::default()
    };
    let merges = Process::new(store.clone(), MergeManager::new(app.clone()));
    runners.push(Arc::new(Runner::with_options(
        store.clone(),
        merges,
        shared.clone(),
    )));
    let milestones = Process::new(store.clone(), MilestoneManager::new(app.clone()).await?);
    runners.push(Arc::new(Runner::with_options(
        store.clone(),
        milestones,
        shared.clone(),
    )));
    let awards = Process::new(store.clone(), AwardsManager::new(app.clone()).await?);
    runners.push(Arc::new(Runner::with_options(
        store.clone(),
        awards,
        shared.clone(),
    )));
    let delivery =
        WebhookDelivery::load(store, webhooks.timeout, webhooks.allowed_hosts.clone()).await?;
    let options = RunnerOptions {
        max_attempts: webhooks.attempts,
        retry_backoff: webhooks.backoff,
        ..shared
    };
    let delivery = Effects::new(store.clone(), delivery);
    runners.push(Arc::new(Runner::with_options(
        store.clone(),
        delivery,
        options,
    )));
    Ok(runners)
}

/// Serves the API on `options.addr` until `shutdown` completes (or SIGINT/SIGTERM from
/// `main`), with the consumers running beside it unless `options.workers` is off; stops them
/// cleanly (batches finished, leases released) before returning. `on_bound` is told the
/// address actually bound (port 0 picks one).
pub async fn serve(
    app_service: StoryChain,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    super::metrics::install();
    let app_service = app_service.with_webhook_hosts(options.webhooks.allowed_hosts.clone());
    let consumers = workers(&app_service, &options.webhooks, None).await?;
    let supervisor = options
        .workers
        .then(|| Supervisor::start(consumers.clone()));
    // One follower of the log for every live stream of this process.
    let live = Fanout::start(app_service.store().clone(), FanoutOptions::default()).await?;
    let state = ApiState::new(
        app_service,
        options.admin_token.as_deref(),
        consumers,
        options.workers,
    )
    .with_live(live.clone());
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    on_bound(listener.local_addr()?);
    // Live streams never end by themselves: stop them first, or the graceful shutdown would
    // wait for their clients for ever.
    let shutdown = async move {
        shutdown.await;
        live.shutdown().await;
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    if let Some(supervisor) = supervisor {
        supervisor.shutdown().await;
    }
    Ok(())
}
