//! The projection runner: catch up in batches, follow live, one active runner, partitions.

use super::{checkpoint_name, partition_of, CheckpointMove, Lease, Projection};
use crate::{Cursor, Error, EventStore, Result};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How a runner reads and waits.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events read per batch (default 1,000).
    pub batch_size: usize,
    /// This worker's partition `(index, count)`: it takes the streams whose hash falls in
    /// `index`, with a checkpoint of its own. `None`: every stream.
    pub partition: Option<(u32, u32)>,
    /// The shortest and longest wait between polls when caught up (default 5 ms to 500 ms,
    /// doubling while nothing arrives; a store wake-up cuts the wait short).
    pub idle_wait: (Duration, Duration),
    /// The lease's time to live when running live (default 5 s).
    pub lease_ttl: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            batch_size: 1000,
            partition: None,
            idle_wait: (Duration::from_millis(5), Duration::from_millis(500)),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

/// Counters of a runner, readable from code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectionStats {
    /// Events handled (committed).
    pub events: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batches that failed (handler or store error); nothing of them was kept.
    pub failures: u64,
    /// Commits refused because another runner had moved the checkpoint.
    pub fenced: u64,
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    batches: AtomicU64,
    failures: AtomicU64,
    fenced: AtomicU64,
}

/// Feeds one projection (or one partition of it) from a store's global log.
#[derive(Debug)]
pub struct ProjectionRunner<S, P> {
    store: S,
    projection: P,
    options: RunnerOptions,
    checkpoint: String,
    counters: Arc<Counters>,
    position: watch::Sender<Option<Cursor>>,
    /// The committed checkpoint as this runner last saw it (`None`: load it from the
    /// projection). It spares a checkpoint read per batch; a stale value costs nothing worse
    /// than one refused commit, since every commit is a compare-and-set, after which it is
    /// loaded again.
    known: std::sync::Mutex<Option<Option<Cursor>>>,
}

/// Outcome of one step.
enum Step {
    Committed,
    CaughtUp,
}

impl<S: EventStore, P: Projection> ProjectionRunner<S, P> {
    /// A runner with default options.
    pub fn new(store: S, projection: P) -> Self {
        Self::with_options(store, projection, RunnerOptions::default())
    }

    /// A runner with `options`.
    pub fn with_options(store: S, projection: P, options: RunnerOptions) -> Self {
        let checkpoint =
            checkpoint_name(projection.name(), projection.version(), options.partition);
        ProjectionRunner {
            store,
            projection,
            options,
            checkpoint,
            counters: Arc::default(),
            position: watch::channel(None).0,
            known: std::sync::Mutex::new(None),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<Option<Cursor>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The committed checkpoint: as last seen, or loaded from the projection.
    async fn committed(&self) -> Result<Option<Cursor>> {
        let cached = *self.known();
        match cached {
            Some(at) => Ok(at),
            None => {
                let at = self.projection.position(&self.checkpoint).await?;
                *self.known() = Some(at);
                Ok(at)
            }
        }
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The checkpoint's name.
    pub fn checkpoint_name(&self) -> &str {
        &self.checkpoint
    }

    /// The counters.
    pub fn stats(&self) -> ProjectionStats {
        let c = &self.counters;
        ProjectionStats {
            events: c.events.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            fenced: c.fenced.load(Ordering::Relaxed),
        }
    }

    /// How many wanted events the projection has still to handle.
    pub async fn lag(&self) -> Result<u64> {
        let at = self
            .projection
            .position(&self.checkpoint)
            .await?
            .unwrap_or(Cursor::START);
        self.store.count_after(at, &self.projection.filter()).await
    }

    /// Handles one batch after the committed checkpoint.
    async fn step(&self) -> Result<Step> {
        let expected = self.committed().await?;
        let after = expected.unwrap_or(Cursor::START);
        let batch = self
            .store
            .read_all(after, &self.projection.filter(), self.options.batch_size)
            .await?;
        if batch.events.is_empty() && batch.last_seen == after {
            self.position.send_replace(expected);
            return Ok(Step::CaughtUp);
        }
        let mut events = batch.events;
        if let Some((index, count)) = self.options.partition {
            events.retain(|e| partition_of(e.stream.as_str(), count) == index);
        }
        let n = events.len() as u64;
        let span = tracing::debug_span!("projection batch", checkpoint = %self.checkpoint, events = n, after = %after);
        let _enter = span.enter();
        let checkpoint = CheckpointMove {
            name: self.checkpoint.clone(),
            expected,
            new: batch.last_seen,
        };
        match self.projection.commit(events, checkpoint).await {
            Ok(()) => {
                *self.known() = Some(Some(batch.last_seen));
                self.counters.events.fetch_add(n, Ordering::Relaxed);
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                self.position.send_replace(Some(batch.last_seen));
                Ok(Step::Committed)
            }
            Err(e @ Error::CheckpointConflict { .. }) => {
                *self.known() = None;
                self.counters.fenced.fetch_add(1, Ordering::Relaxed);
                tracing::info!(checkpoint = %self.checkpoint, "another runner moved the checkpoint; batch dropped");
                Err(e)
            }
            Err(e) => {
                // The outcome of a failed commit may be unknown: load the checkpoint again.
                *self.known() = None;
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(checkpoint = %self.checkpoint, error = %e, "projection batch failed; nothing of it was kept");
                Err(e)
            }
        }
    }

    /// Handles batches until the projection has seen everything committed; returns the number
    /// of events handled. Errors stop it with nothing of the failed batch kept.
    pub async fn catch_up(&self) -> Result<u64> {
        self.catch_up_with(|_| {}).await
    }

    /// Like [`ProjectionRunner::catch_up`], calling `after_batch` with the events handled so far.
    pub async fn catch_up_with(&self, mut after_batch: impl FnMut(u64) + Send) -> Result<u64> {
        let start = self.counters.events.load(Ordering::Relaxed);
        while let Step::Committed = self.step().await? {
            after_batch(self.counters.events.load(Ordering::Relaxed) - start);
        }
        Ok(self.counters.events.load(Ordering::Relaxed) - start)
    }

    /// Runs live until `shutdown` completes: takes the projection's lease (waiting while
    /// another runner holds it), catches up, then follows new events, renewing the lease.
    /// A failed batch is retried after a pause; a lost lease sends it back to waiting.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let mut lease = Lease::new(&self.checkpoint, self.options.lease_ttl);
        tokio::pin!(shutdown);
        let (min_wait, max_wait) = self.options.idle_wait;
        let mut wait = min_wait;
        let mut renewed = std::time::Instant::now();
        loop {
            let after = self.position.borrow().unwrap_or(Cursor::START);
            let pause = if !lease.is_held() {
                if lease.try_acquire(&self.store).await? {
                    // Another runner may have moved the checkpoint while this one waited.
                    *self.known() = None;
                    renewed = std::time::Instant::now();
                    Duration::ZERO
                } else {
                    lease.ttl() / 4
                }
            } else if renewed.elapsed() > lease.ttl() / 3 {
                lease.renew(&self.store).await?;
                renewed = std::time::Instant::now();
                Duration::ZERO
            } else {
                match self.step().await {
                    Ok(Step::Committed) => {
                        wait = min_wait;
                        Duration::ZERO
                    }
                    Ok(Step::CaughtUp) => {
                        let w = wait;
                        wait = (wait * 2).min(max_wait);
                        w
                    }
                    Err(Error::CheckpointConflict { .. }) => Duration::ZERO,
                    Err(
                        e @ (Error::Store { .. }
                        | Error::Corrupt { .. }
                        | Error::UnknownEventType { .. }),
                    ) => {
                        tracing::warn!(checkpoint = %self.checkpoint, error = %e, "retrying after a pause");
                        max_wait
                    }
                    Err(e) => {
                        lease.release(&self.store).await.ok();
                        return Err(e);
                    }
                }
            };
            if pause.is_zero() {
                // Still give shutdown a chance between busy batches.
                if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                    lease.release(&self.store).await?;
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                () = &mut shutdown => {
                    lease.release(&self.store).await?;
                    return Ok(());
                }
                () = self.store.wait_for_append(after, pause) => {}
            }
        }
    }

    /// Waits until the projection has passed `cursor` (read-your-writes: pass the cursor an
    /// append returned), or `timeout`. Returns whether it got there.
    pub async fn wait_for(&self, cursor: Cursor, timeout: Duration) -> bool {
        let mut rx = self.position.subscribe();
        let reached = async move {
            rx.wait_for(|p| p.is_some_and(|p| p >= cursor))
                .await
                .is_ok()
        };
        matches!(tokio::time::timeout(timeout, reached).await, Ok(true))
    }
}
