//! A set of runners in one process: started together, restarted after a panic, stopped
//! together, their statuses in one place.

use super::{Consumer, ConsumerStatus, DeadLetter, RunState, Runner};
use crate::{Backoff, EventQuery, EventStore, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A runner seen without its types: what a [`Supervisor`] drives and what operations tools
/// (an admin API) need of every consumer alike. Every [`Runner`] is one.
#[async_trait]
pub trait Supervised: Send + Sync + 'static {
    /// Its status.
    fn status(&self) -> ConsumerStatus;
    /// Runs until `shutdown` is cancelled (see [`Runner::run`]).
    async fn run_until(&self, shutdown: CancellationToken) -> Result<()>;
    /// Notes a restart after a panic, with the panic's message.
    fn restarted(&self, panic: &str);
    /// Counts the events still to handle (see [`Runner::lag`]).
    async fn lag(&self) -> Result<u64>;
    /// Its parked events (see [`Runner::parked`]).
    async fn parked(&self) -> Result<Vec<DeadLetter>>;
    /// Hands the parked events that `pick` chooses to the consumer again (see
    /// [`Runner::retry_parked_where`]).
    async fn retry_parked_where(
        &self,
        pick: &(dyn for<'a> Fn(&'a DeadLetter) -> bool + Sync),
    ) -> Result<usize>;
    /// Hands the events `query` picks, up to the checkpoint, to the consumer again (see
    /// [`Runner::replay`]).
    async fn replay(&self, query: &EventQuery) -> Result<u64>;
}

#[async_trait]
impl<S: EventStore, C: Consumer> Supervised for Runner<S, C> {
    fn status(&self) -> ConsumerStatus {
        Runner::status(self)
    }

    async fn run_until(&self, shutdown: CancellationToken) -> Result<()> {
        self.run(shutdown.cancelled_owned()).await
    }

    async fn lag(&self) -> Result<u64> {
        Runner::lag(self).await
    }

    async fn parked(&self) -> Result<Vec<DeadLetter>> {
        Runner::parked(self).await
    }

    async fn retry_parked_where(
        &self,
        pick: &(dyn for<'a> Fn(&'a DeadLetter) -> bool + Sync),
    ) -> Result<usize> {
        Runner::retry_parked_where(self, |l: &DeadLetter| pick(l)).await
    }

    async fn replay(&self, query: &EventQuery) -> Result<u64> {
        Runner::replay(self, query).await
    }

    fn restarted(&self, panic: &str) {
        let shared = self.shared();
        shared.restarts.fetch_add(1, Ordering::Relaxed);
        shared.failed(
            RunState::BackingOff,
            &crate::Error::invalid("consumer", format!("panicked: {panic}")),
        );
    }
}

/// Runs a set of consumers' runners as tasks of one process (an application's worker, or its
/// HTTP server), restarts one whose task panicked (after a backoff), and reports all their
/// statuses. A runner that returned an error (a stop its dead-letter policy asked for) is not
/// restarted: its status says why.
///
/// ```
/// use recount::projection::{InMemoryProjection, ReadModel, Runner, RunState, Supervisor};
/// use recount::{InMemoryStore, RecordedEvent};
/// use std::sync::Arc;
///
/// #[derive(Clone, Default)]
/// struct Count(u64);
/// impl ReadModel for Count {
///     fn apply(&mut self, _: &RecordedEvent) -> recount::Result<()> { self.0 += 1; Ok(()) }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// let runner = Arc::new(Runner::new(store.clone(), InMemoryProjection::<Count>::new("count")));
/// let supervisor = Supervisor::start(vec![runner.clone()]);
/// assert_eq!(supervisor.statuses()[0].name, "count");
/// supervisor.shutdown().await;
/// assert_eq!(runner.status().state, RunState::Stopped);
/// # });
/// ```
#[derive(Debug)]
pub struct Supervisor {
    runners: Vec<Arc<dyn Supervised>>,
    token: CancellationToken,
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for dyn Supervised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervised")
            .field("name", &self.status().checkpoint_name)
            .finish_non_exhaustive()
    }
}

/// The longest pause before a panicked runner is started again.
const RESTART_CAP: Duration = Duration::from_secs(5);

impl Supervisor {
    /// Starts every runner in a task of its own on the current tokio runtime.
    pub fn start(runners: Vec<Arc<dyn Supervised>>) -> Self {
        let token = CancellationToken::new();
        let monitor = tokio::spawn(monitor(runners.clone(), token.clone()));
        Supervisor {
            runners,
            token,
            monitor: Mutex::new(Some(monitor)),
        }
    }

    /// The runners, in the order given.
    pub fn runners(&self) -> &[Arc<dyn Supervised>] {
        &self.runners
    }

    /// The status of every runner, in the order given.
    pub fn statuses(&self) -> Vec<ConsumerStatus> {
        self.runners.iter().map(|r| r.status()).collect()
    }

    /// The token that stops everything when cancelled (for a signal handler).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Stops every runner (each finishes its batch and releases its lease) and waits for
    /// them.
    pub async fn shutdown(&self) {
        self.token.cancel();
        let monitor = self
            .monitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(monitor) = monitor {
            let _ = monitor.await;
        }
    }
}

impl Supervisor {
    /// Stops every runner at once, as a crash would: batches in hand are dropped and leases
    /// are not released (they expire after their TTL). For tests of takeover.
    pub async fn abort(self) {
        let monitor = self
            .monitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(monitor) = monitor {
            monitor.abort();
            let _ = monitor.await;
        }
        // Dropping the supervisor cancels the token, which the aborted runners never see.
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Runs the runners, restarting those that panic, until `token` is cancelled and all ended.
async fn monitor(runners: Vec<Arc<dyn Supervised>>, token: CancellationToken) {
    let mut tasks = JoinSet::new();
    let mut ids = HashMap::new();
    let spawn = |tasks: &mut JoinSet<Result<()>>, i: usize, pause: Duration| {
        let (runner, token) = (runners[i].clone(), token.clone());
        tasks
            .spawn(async move {
                if !pause.is_zero() {
                    tokio::select! {
                        () = token.cancelled() => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                runner.run_until(token).await
            })
            .id()
    };
    for i in 0..runners.len() {
        ids.insert(
            spawn(&mut tasks, i, Duration::ZERO),
            (i, Backoff::new(Duration::from_millis(100), RESTART_CAP)),
        );
    }
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, Ok(outcome)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some((i, mut backoff)) = ids.remove(&id) else {
            continue;
        };
        let name = runners[i].status().checkpoint_name;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(consumer = %name, error = %e, "consumer stopped"),
            Err(e) if e.is_panic() && !token.is_cancelled() => {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                tracing::error!(consumer = %name, panic = %message, "consumer panicked; restarting it");
                runners[i].restarted(&message);
                let pause = backoff.next_pause();
                ids.insert(spawn(&mut tasks, i, pause), (i, backoff));
            }
            Err(e) => tracing::warn!(consumer = %name, error = %e, "consumer task ended"),
        }
    }
}
