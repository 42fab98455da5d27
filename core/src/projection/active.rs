//! A projection that follows its active version: when a rebuild (in this process or another)
//! switches readers to a new version, the runner of the old one stops and the new one runs.

use super::{active_version, ConsumerStatus, DeadLetter, Supervised};
use crate::{EventQuery, EventStore, Result};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Makes the runner of version `v` of a projection.
pub type MakeRunner = dyn Fn(u32) -> Result<Arc<dyn Supervised>> + Send + Sync;

/// Runs projection `name` at its active version ([`active_version`], 1 when never switched),
/// and follows switches: every `check_every` it reads the active version, and when it has
/// changed it stops the running version's runner (the batch in hand finished, its lease
/// released) and starts the new version's. A [`Supervisor`](super::Supervisor) runs it like
/// any runner; its status, lag and dead letters are the current runner's.
///
/// With every process running its projections this way, [`rebuild`](super::rebuild) of a
/// new version needs no restart anywhere: the new version is built beside the old, readers
/// switch, and within `check_every` the old version's runners stop.
/// [`ActiveVersion::wait_until_stopped`] tells when no process runs a version any more, so
/// its storage can be dropped.
pub struct ActiveVersion<S> {
    store: S,
    name: String,
    make: Box<MakeRunner>,
    current: Mutex<(u32, Arc<dyn Supervised>)>,
    check_every: Duration,
}

impl<S> std::fmt::Debug for ActiveVersion<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveVersion")
            .field("name", &self.name)
            .field("version", &self.current.lock().map(|c| c.0).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

impl<S: EventStore + Clone> ActiveVersion<S> {
    /// Projection `name`, whose version `v` runs on `make(v)`, starting at the active version
    /// now; checks for a switch every second.
    pub async fn new(
        store: S,
        name: impl Into<String>,
        make: impl Fn(u32) -> Result<Arc<dyn Supervised>> + Send + Sync + 'static,
    ) -> Result<Self> {
        let name = name.into();
        let version = active_version(&store, &name).await?.unwrap_or(1);
        let runner = make(version)?;
        Ok(ActiveVersion {
            store,
            name,
            make: Box::new(make),
            current: Mutex::new((version, runner)),
            check_every: Duration::from_secs(1),
        })
    }

    /// Checks for a switch every `every` instead.
    pub fn check_every(mut self, every: Duration) -> Self {
        self.check_every = every.max(Duration::from_millis(10));
        self
    }

    /// The version running now.
    pub fn version(&self) -> u32 {
        self.lock().0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u32, Arc<dyn Supervised>)> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn runner(&self) -> Arc<dyn Supervised> {
        self.lock().1.clone()
    }

    /// Waits until the active version is not `version`, or `shutdown` is cancelled.
    async fn switched_from(&self, version: u32, shutdown: &CancellationToken) -> Option<u32> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(self.check_every) => {}
            }
            match active_version(&self.store, &self.name).await {
                Ok(Some(v)) if v != version => return Some(v),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(projection = %self.name, error = %e, "active version unreadable; checking again")
                }
            }
        }
    }

    /// Waits until no runner holds the lease of the checkpoint `checkpoint` (the old
    /// version's, after a switch), up to `timeout`; `true` when it is free. A runner that
    /// stopped released it; one that died lets it expire after its TTL.
    pub async fn wait_until_stopped(
        store: &S,
        checkpoint: &str,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if super::Lease::holder_of(store, checkpoint).await?.is_none() {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[async_trait]
impl<S: EventStore + Clone> Supervised for ActiveVersion<S> {
    fn status(&self) -> ConsumerStatus {
        self.runner().status()
    }

    async fn run_until(&self, shutdown: CancellationToken) -> Result<()> {
        loop {
            let (version, runner) = self.lock().clone();
            let stop = shutdown.child_token();
            let run = runner.run_until(stop.clone());
            tokio::pin!(run);
            let next = tokio::select! {
                done = &mut run => return done,
                next = self.switched_from(version, &shutdown) => next,
            };
            // Shutdown, or a switch: either way the running version finishes its batch.
            stop.cancel();
            run.await?;
            let Some(next) = next else {
                return Ok(());
            };
            tracing::info!(projection = %self.name, from = version, to = next, "active version switched; following it");
            *self.lock() = (next, (self.make)(next)?);
        }
    }

    fn restarted(&self, panic: &str) {
        self.runner().restarted(panic);
    }

    async fn lag(&self) -> Result<u64> {
        self.runner().lag().await
    }

    async fn parked(&self) -> Result<Vec<DeadLetter>> {
        self.runner().parked().await
    }

    async fn retry_parked_where(
        &self,
        pick: &(dyn for<'a> Fn(&'a DeadLetter) -> bool + Sync),
    ) -> Result<usize> {
        self.runner().retry_parked_where(pick).await
    }

    async fn replay(&self, query: &EventQuery) -> Result<u64> {
        self.runner().replay(query).await
    }
}
