//! The one runner: drives any [`Consumer`] over the global log.

use super::deadletter::{DeadLetterPolicy, DeadLetters};
use super::lease::random_holder;
use super::poison::{Attempts, Failure, Next, Stage};
use super::status::{ConsumerStatus, RunState, Shared};
use super::{partition_of, CheckpointMove, Consumer, DeadLetter, Lease};
use crate::{Backoff, Cursor, Error, EventQuery, EventStore, LogFilter, RecordedEvent, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

/// How a runner reads, waits and retries.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events read per batch (default 1,000).
    pub batch_size: usize,
    /// This worker's partition `(index, count)`: it takes the streams whose hash falls in
    /// `index`, with a checkpoint (and lease) of its own. `None`: every stream.
    pub partition: Option<(u32, u32)>,
    /// The shortest and longest wait between polls when caught up (default 5 ms to 500 ms,
    /// doubling while nothing arrives; a store wake-up cuts the wait short).
    pub idle_wait: (Duration, Duration),
    /// The lease's time to live when running live (default 5 s). A runner renews it every
    /// third of that; another runner takes it over at most one TTL after the holder died.
    pub lease_ttl: Duration,
    /// Attempts at a failing batch, then at its failing event alone, before the event is
    /// poison and the dead-letter policy applies (default 5, at least 1).
    pub max_attempts: u32,
    /// The first and the longest pause between retries (default 10 ms and 5 s; doubling,
    /// jittered). Retriable store errors are retried with it without limit by
    /// [`Runner::run`].
    pub retry_backoff: (Duration, Duration),
    /// Overrides the consumer's [`Consumer::dead_letter_policy`].
    pub dead_letters: Option<DeadLetterPolicy>,
    /// After a full batch, read the next one while the consumer commits this one, and hand
    /// it to [`Consumer::prepare`] meanwhile (default `true`): reading and decoding then
    /// overlap the commit's I/O. It holds two batches in memory instead of one.
    pub read_ahead: bool,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            batch_size: 1000,
            partition: None,
            idle_wait: (Duration::from_millis(5), Duration::from_millis(500)),
            lease_ttl: Duration::from_secs(5),
            max_attempts: 5,
            retry_backoff: (Duration::from_millis(10), Duration::from_secs(5)),
            dead_letters: None,
            read_ahead: true,
        }
    }
}

/// Events read for one batch: this runner's (its partition's) events after `after`, and how
/// far the read saw.
#[derive(Debug)]
struct Read {
    after: Cursor,
    limit: usize,
    events: Vec<RecordedEvent>,
    last_seen: Cursor,
    /// The store returned `limit` events: the log may hold more right away.
    full: bool,
}

/// Outcome of one step.
pub(super) enum Step {
    /// A batch was committed; `full` when the log may hold more right away.
    Committed {
        full: bool,
    },
    CaughtUp,
}

/// Open dead letters as this runner knows them: event id → stream.
#[derive(Debug, Default)]
struct Parked {
    open: Option<BTreeMap<Uuid, String>>,
    loaded: Option<Instant>,
}

/// How often a sequenced runner reloads its dead letters, to see retries made elsewhere.
const RELOAD_PARKED: Duration = Duration::from_secs(5);

/// Drives one consumer (or one partition of it) from a store's global log: catch up in
/// batches, follow live, one active runner per consumer across processes, retries, dead
/// letters, status. See the [module docs](super).
///
/// A runner is shared by reference: wrap it in an `Arc` to run it in a task and, at the same
/// time, read its [`status`](Runner::status), [`wait_for`](Runner::wait_for) a cursor, or
/// [`retry_parked`](Runner::retry_parked) events.
#[derive(Debug)]
pub struct Runner<S, C> {
    store: S,
    consumer: C,
    options: RunnerOptions,
    filter: LogFilter,
    checkpoint: String,
    policy: DeadLetterPolicy,
    letters: DeadLetters,
    holder: u64,
    shared: Arc<Shared>,
    position: watch::Sender<Option<Cursor>>,
    /// The committed checkpoint as this runner last saw it (`None`: load it from the
    /// consumer). It spares a checkpoint read per batch; a stale value costs nothing worse
    /// than one refused commit, since every commit is a compare-and-set, after which it is
    /// loaded again.
    known: Mutex<Option<Option<Cursor>>>,
    parked: Mutex<Parked>,
    /// The next batch, read while the last one committed ([`RunnerOptions::read_ahead`]);
    /// used only by a step that starts exactly where it starts.
    ahead: Mutex<Option<Read>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: EventStore, C: Consumer> Runner<S, C> {
    /// A runner with default options.
    pub fn new(store: S, consumer: C) -> Self {
        Self::with_options(store, consumer, RunnerOptions::default())
    }

    /// A runner with `options`.
    ///
    /// # Panics
    ///
    /// When the consumer's checkpoint name cannot name its dead-letter stream (longer than
    /// 200 bytes or with control characters): a consumer name is the program's, not input.
    pub fn with_options(store: S, consumer: C, mut options: RunnerOptions) -> Self {
        options.batch_size = options.batch_size.max(1);
        options.max_attempts = options.max_attempts.max(1);
        let checkpoint = consumer.checkpoint(options.partition);
        let letters = DeadLetters::new(consumer.name(), &consumer.checkpoint(None))
            .unwrap_or_else(|e| panic!("consumer `{}` has an unusable name: {e}", consumer.name()));
        Runner {
            filter: consumer.filter(),
            policy: options
                .dead_letters
                .unwrap_or_else(|| consumer.dead_letter_policy()),
            store,
            consumer,
            options,
            checkpoint,
            letters,
            holder: random_holder(),
            shared: Arc::new(Shared::new()),
            position: watch::channel(None).0,
            known: Mutex::new(None),
            parked: Mutex::default(),
            ahead: Mutex::new(None),
        }
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The checkpoint's name.
    pub fn checkpoint_name(&self) -> &str {
        &self.checkpoint
    }

    /// The options.
    pub fn options(&self) -> &RunnerOptions {
        &self.options
    }

    /// The status: state, checkpoint, lag, rate, lease, last error, parked count, counters.
    /// Cheap: it reads what the runner already knows and never touches the store.
    pub fn status(&self) -> ConsumerStatus {
        self.shared.snapshot(ConsumerStatus {
            name: self.consumer.name().to_owned(),
            kind: self.consumer.kind(),
            version: self.consumer.version(),
            partition: self.options.partition,
            checkpoint_name: self.checkpoint.clone(),
            checkpoint: None,
            lag: None,
            per_sec: 0.0,
            lease_holder: None,
            holder: self.holder,
            state: RunState::Idle,
            last_error: None,
            parked: 0,
            events: 0,
            batches: 0,
            failures: 0,
            fenced: 0,
            restarts: 0,
        })
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// How many wanted events the consumer has still to handle (all partitions' events, for
    /// a partitioned runner).
    pub async fn lag(&self) -> Result<u64> {
        let at = self.committed().await?.unwrap_or(Cursor::START);
        let lag = self.store.count_after(at, &self.filter).await?;
        self.shared.set_lag(lag);
        crate::telemetry::lag(&self.checkpoint, lag);
        Ok(lag)
    }

    /// The committed checkpoint: as last seen, or loaded from the consumer.
    async fn committed(&self) -> Result<Option<Cursor>> {
        let cached = *lock(&self.known);
        match cached {
            Some(at) => Ok(at),
            None => {
                let at = self.consumer.position(&self.checkpoint).await?;
                *lock(&self.known) = Some(at);
                Ok(at)
            }
        }
    }

    fn forget_checkpoint(&self) {
        *lock(&self.known) = None;
        *lock(&self.ahead) = None;
    }

    /// Reads at most `limit` events after `after`, keeping this runner's partition.
    async fn read(&self, after: Cursor, limit: usize) -> Result<Read> {
        let batch = self.store.read_all(after, &self.filter, limit).await?;
        let full = batch.events.len() >= limit;
        let mut events = batch.events;
        if let Some((index, count)) = self.options.partition {
            events.retain(|e| partition_of(e.stream.as_str(), count) == index);
        }
        Ok(Read {
            after,
            limit,
            events,
            last_seen: batch.last_seen,
            full,
        })
    }

    /// The batch read ahead, if it starts at `after` and was read with `limit`.
    fn take_ahead(&self, after: Cursor, limit: usize) -> Option<Read> {
        lock(&self.ahead)
            .take()
            .filter(|r| r.after == after && r.limit == limit)
    }

    /// Reads the batch after `after` and hands it to [`Consumer::prepare`]; `None` when
    /// there is nothing yet (a later step reads afresh) or the read failed (the step will
    /// read again and report it).
    async fn read_ahead(&self, after: Cursor, limit: usize) -> Option<Read> {
        let read = self.read(after, limit).await.ok()?;
        if read.events.is_empty() {
            return None;
        }
        self.consumer.prepare(&read.events);
        Some(read)
    }

    /// Handles one batch (at most `limit` events) after the committed checkpoint.
    pub(super) async fn step(&self, limit: usize) -> Result<Step, Failure> {
        let expected = self.committed().await.map_err(Failure::read)?;
        let after = expected.unwrap_or(Cursor::START);
        let read = match self.take_ahead(after, limit) {
            Some(read) => read,
            None => self.read(after, limit).await.map_err(Failure::read)?,
        };
        if read.events.is_empty() && read.last_seen == after {
            self.position.send_replace(expected);
            self.shared.caught_up(expected);
            crate::telemetry::lag(&self.checkpoint, 0);
            return Ok(Step::CaughtUp);
        }
        let Read {
            mut events,
            last_seen,
            full,
            ..
        } = read;
        if self.policy == DeadLetterPolicy::Sequenced {
            events = self.hold_back(events).await.map_err(Failure::park)?;
        }
        let handed = events.len();
        let single = (handed == 1).then(|| events[0].clone());
        // Kept to count what a consumer that is not atomic (side effects) did before failing.
        let cursors: Vec<Cursor> = events.iter().map(|e| e.cursor).collect();
        let span = tracing::debug_span!("consumer batch", consumer = %self.checkpoint, events = handed, after = %after);
        let checkpoint = CheckpointMove {
            name: self.checkpoint.clone(),
            expected,
            new: last_seen,
        };
        let started = Instant::now();
        let commit = self.consumer.commit(events, checkpoint).instrument(span);
        let outcome = if full && self.options.read_ahead {
            // The next batch is read (and prepared) while this one commits; it is kept only
            // if this one is committed.
            let (outcome, ahead) = tokio::join!(commit, self.read_ahead(last_seen, limit));
            if outcome.is_ok() {
                *lock(&self.ahead) = ahead;
            }
            outcome
        } else {
            commit.await
        };
        match outcome {
            Ok(()) => {
                crate::telemetry::batch(&self.checkpoint, handed as u64, started.elapsed());
                *lock(&self.known) = Some(Some(last_seen));
                self.position.send_replace(Some(last_seen));
                self.shared.committed(last_seen, handed as u64, !full);
                Ok(Step::Committed { full })
            }
            Err(error) => {
                // The outcome of a failed commit may be unknown: load the checkpoint again.
                self.forget_checkpoint();
                let counter = match error {
                    Error::CheckpointConflict { .. } => &self.shared.fenced,
                    _ => {
                        crate::telemetry::failure(&self.checkpoint);
                        &self.shared.failures
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Err(Failure {
                    error,
                    stage: Stage::Commit,
                    handed,
                    single,
                    cursors,
                    expected,
                    end: last_seen,
                })
            }
        }
    }

    /// One step with the failure policy applied: what the caller does next.
    pub(super) async fn advance(&self, attempts: &mut Attempts) -> Next {
        let limit = if attempts.isolating() {
            1
        } else {
            self.options.batch_size
        };
        match self.step(limit).await {
            Ok(Step::CaughtUp) => {
                attempts.succeeded(None);
                Next::Idle
            }
            Ok(Step::Committed { full }) => {
                attempts.succeeded(*lock(&self.known));
                if full && self.shared.lag_due() {
                    // Only for the status: a failed count changes nothing.
                    let _ = self.lag().await;
                }
                Next::Busy
            }
            Err(failure) => self.failed(failure, attempts).await,
        }
    }

    /// Decides what a failure leads to: a fence, a retry, isolating the batch's events one by
    /// one, parking a poison event, or a stop.
    async fn failed(&self, f: Failure, attempts: &mut Attempts) -> Next {
        if let Error::CheckpointConflict { .. } = f.error {
            tracing::info!(consumer = %self.checkpoint, "another runner moved the checkpoint; batch dropped");
            return Next::Fenced(f.error);
        }
        self.shared.failed(RunState::BackingOff, &f.error);
        if f.stage == Stage::Commit {
            self.count_partial(&f).await;
        }
        if f.error.is_retriable() {
            tracing::warn!(consumer = %self.checkpoint, error = %f.error, "store unavailable; retrying");
            return Next::Retry(f.error);
        }
        let count = attempts.failed(f.expected);
        tracing::warn!(consumer = %self.checkpoint, error = %f.error, attempt = count, "batch failed; nothing of it was kept");
        if count < self.options.max_attempts {
            return Next::Retry(f.error);
        }
        if f.stage != Stage::Commit {
            return Next::Stop(self.stopped(None, f.error));
        }
        if f.handed > 1 {
            tracing::info!(consumer = %self.checkpoint, "looking for the failing event, one at a time");
            attempts.isolate(f.end);
            return Next::Busy;
        }
        let Some(event) = f.single.as_ref() else {
            return Next::Stop(self.stopped(None, f.error));
        };
        if self.policy == DeadLetterPolicy::Stop {
            return Next::Stop(self.stopped(Some(event.id), f.error));
        }
        match self.park_and_pass(event, &f, count).await {
            Ok(()) => {
                attempts.parked();
                Next::Busy
            }
            Err(e @ Error::CheckpointConflict { .. }) => Next::Fenced(e),
            Err(e) if e.is_retriable() => Next::Retry(e),
            Err(e) => Next::Stop(self.stopped(Some(event.id), e)),
        }
    }

    /// A consumer that is not atomic may have moved its checkpoint past some of a failed
    /// batch's events (the effects done before the one that failed): count them as handled.
    async fn count_partial(&self, f: &Failure) {
        let Ok(Some(at)) = self.committed().await else {
            return;
        };
        if f.expected.is_some_and(|e| at <= e) {
            return;
        }
        let done = f.cursors.iter().filter(|c| **c <= at).count() as u64;
        self.shared.progressed(at, done);
        self.position.send_replace(Some(at));
    }

    fn stopped(&self, event_id: Option<Uuid>, source: Error) -> Error {
        let error = match source {
            e @ Error::ConsumerStopped { .. } => e,
            source => Error::ConsumerStopped {
                consumer: self.checkpoint.clone(),
                event_id,
                source: Box::new(source),
            },
        };
        tracing::error!(consumer = %self.checkpoint, error = %error, "consumer stopped");
        self.shared.failed(RunState::Stopped, &error);
        error
    }

    /// Parks a poison event, then moves the checkpoint past it.
    async fn park_and_pass(&self, event: &RecordedEvent, f: &Failure, attempts: u32) -> Result<()> {
        self.letters
            .park(&self.store, event, f.error.to_string(), attempts)
            .await?;
        crate::telemetry::parked(&self.checkpoint);
        self.remember_parked(event);
        let pass = CheckpointMove {
            name: self.checkpoint.clone(),
            expected: f.expected,
            new: f.end,
        };
        let done = self.consumer.commit(Vec::new(), pass).await;
        match done {
            Ok(()) => {
                *lock(&self.known) = Some(Some(f.end));
                self.position.send_replace(Some(f.end));
                Ok(())
            }
            Err(e) => {
                self.forget_checkpoint();
                Err(e)
            }
        }
    }

    /// Open dead letters, loaded once (and again every few seconds under `Sequenced`, to see
    /// retries made by another process).
    async fn open_letters(&self) -> Result<BTreeMap<Uuid, String>> {
        {
            let parked = lock(&self.parked);
            let fresh = self.policy != DeadLetterPolicy::Sequenced
                || parked.loaded.is_some_and(|at| at.elapsed() < RELOAD_PARKED);
            if let (Some(open), true) = (&parked.open, fresh) {
                return Ok(open.clone());
            }
        }
        let open: BTreeMap<Uuid, String> = self
            .letters
            .open(&self.store)
            .await?
            .into_iter()
            .map(|l| (l.event_id, l.stream))
            .collect();
        self.shared.set_parked(open.len() as u64);
        let mut parked = lock(&self.parked);
        parked.open = Some(open.clone());
        parked.loaded = Some(Instant::now());
        Ok(open)
    }

    fn remember_parked(&self, event: &RecordedEvent) {
        let mut parked = lock(&self.parked);
        if let Some(open) = parked.open.as_mut() {
            if open.insert(event.id, event.stream.to_string()).is_none() {
                self.shared.add_parked(1);
            }
        } else {
            self.shared.add_parked(1);
        }
    }

    fn forget_parked(&self, letter: &DeadLetter) {
        let mut parked = lock(&self.parked);
        if let Some(open) = parked.open.as_mut() {
            if open.remove(&letter.event_id).is_some() {
                self.shared.add_parked(-1);
            }
        }
    }

    /// Under [`DeadLetterPolicy::Sequenced`]: parks the events of streams that have a parked
    /// event, and returns the others.
    async fn hold_back(&self, events: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>> {
        let open = self.open_letters().await?;
        if open.is_empty() {
            return Ok(events);
        }
        let blocked: std::collections::HashSet<&str> = open.values().map(String::as_str).collect();
        let mut kept = Vec::with_capacity(events.len());
        for event in events {
            if open.contains_key(&event.id) {
                continue; // parked already
            }
            if !blocked.contains(event.stream.as_str()) {
                kept.push(event);
                continue;
            }
            let why = format!(
                "waiting behind an earlier parked event of `{}`",
                event.stream
            );
            self.letters.park(&self.store, &event, why, 0).await?;
            self.remember_parked(&event);
        }
        Ok(kept)
    }

    /// Handles batches until the consumer has seen everything committed; returns the number
    /// of events handled.
    ///
    /// Failures are handled as by [`Runner::run`] (attempts, then the dead-letter policy),
    /// except that a retriable store error ends it after `max_attempts` tries in a row, and a
    /// checkpoint moved by another runner is returned as
    /// [`Error::CheckpointConflict`]. No lease is taken: for jobs and tests, not for running
    /// beside a live runner of the same consumer.
    pub async fn catch_up(&self) -> Result<u64> {
        self.catch_up_with(|_| {}).await
    }

    /// Like [`Runner::catch_up`], calling `after_batch` with the events handled so far.
    pub async fn catch_up_with(&self, mut after_batch: impl FnMut(u64) + Send) -> Result<u64> {
        let start = self.shared.events.load(Ordering::Relaxed);
        let done = || self.shared.events.load(Ordering::Relaxed) - start;
        let mut attempts = Attempts::new(self.options.retry_backoff);
        let mut unavailable = 0;
        self.shared.set_state(RunState::Running);
        let outcome = loop {
            match self.advance(&mut attempts).await {
                Next::Busy => {
                    unavailable = 0;
                    after_batch(done());
                }
                Next::Idle => break Ok(done()),
                Next::Wait(pause) => tokio::time::sleep(pause).await,
                Next::Retry(e) => {
                    if e.is_retriable() {
                        unavailable += 1;
                        if unavailable >= self.options.max_attempts {
                            break Err(e);
                        }
                    }
                    tokio::time::sleep(attempts.pause()).await;
                }
                Next::Fenced(e) | Next::Stop(e) => break Err(e),
            }
        };
        if self.shared.state() != RunState::Stopped {
            self.shared.set_state(RunState::Idle);
        }
        outcome
    }

    /// Runs live until `shutdown` completes: takes the consumer's lease (waiting while another
    /// runner holds it), catches up, then follows new events, renewing the lease.
    ///
    /// It returns `Ok` on shutdown, after finishing the batch in hand and releasing the
    /// lease, and an [`Error::ConsumerStopped`] only for what retrying cannot fix (a poison
    /// event under [`DeadLetterPolicy::Stop`], a store that refuses permanently). Retriable
    /// store errors anywhere (reads, commits, lease calls) are retried with backoff for as
    /// long as they last; a lease lost meanwhile is taken again, and no batch is committed
    /// without it (and every commit is fenced by the checkpoint's compare-and-set).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let mut lease = Lease::with_holder(&self.checkpoint, self.options.lease_ttl, self.holder);
        tokio::pin!(shutdown);
        let (min_wait, max_wait) = self.options.idle_wait;
        let mut idle = min_wait;
        let mut attempts = Attempts::new(self.options.retry_backoff);
        let mut renewed = Instant::now();
        self.shared.set_state(RunState::WaitingForLease);
        let outcome = loop {
            let after = self.position.borrow().unwrap_or(Cursor::START);
            let next = if !lease.is_held() {
                self.acquire(&mut lease, &mut renewed).await
            } else if renewed.elapsed() > lease.ttl() / 3 {
                self.renew(&mut lease, &mut renewed).await
            } else {
                self.advance(&mut attempts).await
            };
            let (pause, follow) = match next {
                Next::Busy | Next::Fenced(_) => {
                    idle = min_wait;
                    (Duration::ZERO, false)
                }
                Next::Idle => {
                    let pause = idle;
                    idle = (idle * 2).min(max_wait);
                    (pause, true)
                }
                Next::Wait(pause) => (pause, false),
                Next::Retry(_) => (attempts.pause(), false),
                Next::Stop(e) => break Err(e),
            };
            if pause.is_zero() {
                // Still give shutdown a chance between busy batches.
                if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                    break Ok(());
                }
                continue;
            }
            let wake = async {
                if follow {
                    self.store.wait_for_append(after, pause).await
                } else {
                    tokio::time::sleep(pause).await
                }
            };
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = wake => {}
            }
        };
        self.release(&mut lease).await;
        if outcome.is_ok() {
            self.shared.set_state(RunState::Stopped);
        }
        outcome
    }

    async fn acquire(&self, lease: &mut Lease, renewed: &mut Instant) -> Next {
        match lease.try_acquire(&self.store).await {
            Ok(true) => {
                // Another runner may have moved the checkpoint while this one waited.
                self.forget_checkpoint();
                *renewed = Instant::now();
                self.shared.set_lease_holder(Some(self.holder));
                self.shared.set_state(RunState::Running);
                tracing::info!(consumer = %self.checkpoint, holder = self.holder, "lease taken");
                Next::Busy
            }
            Ok(false) => {
                self.shared.set_lease_holder(lease.last_seen_holder());
                self.shared.set_state(RunState::WaitingForLease);
                Next::Wait(lease.ttl() / 4)
            }
            Err(e) => self.store_trouble(e),
        }
    }

    async fn renew(&self, lease: &mut Lease, renewed: &mut Instant) -> Next {
        match lease.renew(&self.store).await {
            Ok(true) => {
                *renewed = Instant::now();
                Next::Busy
            }
            Ok(false) => {
                tracing::warn!(consumer = %self.checkpoint, "lease lost; taking it again");
                self.forget_checkpoint();
                self.shared.set_state(RunState::WaitingForLease);
                Next::Busy
            }
            Err(e) => self.store_trouble(e),
        }
    }

    /// A lease call failed: retry what is retriable, stop on the rest.
    fn store_trouble(&self, e: Error) -> Next {
        if e.is_retriable() {
            tracing::warn!(consumer = %self.checkpoint, error = %e, "lease call failed; retrying");
            self.shared.failed(RunState::BackingOff, &e);
            Next::Retry(e)
        } else {
            Next::Stop(self.stopped(None, e))
        }
    }

    /// Gives the lease up so another runner can take it at once; a few retries, then the
    /// lease is left to expire.
    async fn release(&self, lease: &mut Lease) {
        let mut backoff = Backoff::new(self.options.retry_backoff.0, Duration::from_millis(200));
        for _ in 0..5 {
            match lease.release(&self.store).await {
                Ok(()) => {
                    self.shared.set_lease_holder(None);
                    return;
                }
                Err(e) if e.is_retriable() => tokio::time::sleep(backoff.next_pause()).await,
                Err(e) => {
                    tracing::warn!(consumer = %self.checkpoint, error = %e, "lease not released; it expires by itself");
                    return;
                }
            }
        }
        tracing::warn!(consumer = %self.checkpoint, "lease not released; it expires by itself");
    }

    /// Waits until the consumer has passed `cursor` (read-your-writes: pass the cursor an
    /// append returned), or `timeout`. Returns whether it got there. Only a running runner
    /// (or one catching up) moves its position.
    pub async fn wait_for(&self, cursor: Cursor, timeout: Duration) -> bool {
        let mut rx = self.position.subscribe();
        let reached = async move {
            rx.wait_for(|p| p.is_some_and(|p| p >= cursor))
                .await
                .is_ok()
        };
        matches!(tokio::time::timeout(timeout, reached).await, Ok(true))
    }

    /// The parked events not yet resolved, oldest first.
    pub async fn parked(&self) -> Result<Vec<DeadLetter>> {
        let letters = self.letters.open(&self.store).await?;
        self.shared.set_parked(letters.len() as u64);
        Ok(letters)
    }

    /// Hands every parked event to the consumer again (one stream's in order, stopping at its
    /// first that still fails); those that succeed are resolved. Returns how many were
    /// resolved. The checkpoint stays where it is.
    pub async fn retry_parked(&self) -> Result<usize> {
        self.retry_parked_where(|_| true).await
    }

    /// Like [`Runner::retry_parked`], for the parked events `pick` chooses (one by its event
    /// id, those of one type, …).
    pub async fn retry_parked_where(
        &self,
        pick: impl Fn(&DeadLetter) -> bool + Send + Sync,
    ) -> Result<usize> {
        let mut failed_streams = std::collections::HashSet::new();
        let mut resolved = 0;
        for letter in self.parked().await?.into_iter().filter(|l| pick(l)) {
            if failed_streams.contains(&letter.stream) {
                continue;
            }
            match self.redeliver(&letter).await {
                Ok(()) => {
                    self.letters.resolve(&self.store, &letter).await?;
                    self.forget_parked(&letter);
                    resolved += 1;
                }
                Err(e) => {
                    tracing::info!(consumer = %self.checkpoint, event = %letter.event_id, error = %e, "parked event still fails");
                    failed_streams.insert(letter.stream.clone());
                }
            }
        }
        if resolved > 0 {
            lock(&self.parked).loaded = None;
        }
        Ok(resolved)
    }

    /// Hands the events `query` picks to the consumer again, up to its committed checkpoint,
    /// in log order, with the checkpoint staying where it is: a webhook delivered again, a
    /// relay's messages published again. Events after the checkpoint are left to the live
    /// runner. Returns the events handed over.
    ///
    /// An event is replayed when it passes both the consumer's filter and every condition of
    /// `query` (its start `after`, its types, stream, correlation id and time range), and, on
    /// a partitioned runner, falls in this runner's partition. The first failure stops the
    /// replay and is returned; what was replayed before it stays done.
    ///
    /// Refused with [`Error::InvalidInput`] for a projection: handing a read model an event
    /// it already applied would count it twice (rebuild a projection instead).
    ///
    /// ```
    /// use async_trait::async_trait;
    /// use recount::projection::{Effects, Runner, SideEffect};
    /// use recount::{BoxError, EventQuery, EventStore, ExpectedVersion, InMemoryStore, LogFilter};
    /// use recount::{NewEvent, RecordedEvent, StreamId};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// #[derive(Default)]
    /// struct Hook(AtomicUsize);
    ///
    /// #[async_trait]
    /// impl SideEffect for Hook {
    ///     fn name(&self) -> &str { "hook" }
    ///     fn filter(&self) -> LogFilter { LogFilter::all() }
    ///     async fn handle(&self, _: &RecordedEvent) -> Result<(), BoxError> {
    ///         self.0.fetch_add(1, Ordering::SeqCst);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let store = InMemoryStore::new();
    /// let s = StreamId::new("note", "1").unwrap();
    /// let e = |t: &str| NewEvent::new(t, &serde_json::json!({})).unwrap();
    /// store.append(&s, ExpectedVersion::Any, vec![e("note.written"), e("note.read")]).await.unwrap();
    /// let runner = Runner::new(store.clone(), Effects::new(store, Hook::default()));
    /// runner.catch_up().await.unwrap();
    ///
    /// let only_written = EventQuery::default().filter(LogFilter::all().event_type("note.written"));
    /// assert_eq!(runner.replay(&only_written).await.unwrap(), 1);
    /// assert_eq!(runner.consumer().handler().0.load(Ordering::SeqCst), 3);
    /// # });
    /// ```
    pub async fn replay(&self, query: &EventQuery) -> Result<u64> {
        if self.consumer.kind() == super::ConsumerKind::Projection {
            return Err(Error::invalid(
                "replay",
                format!(
                    "`{}` is a projection: it is rebuilt, not replayed",
                    self.consumer.name()
                ),
            ));
        }
        let Some(until) = self.consumer.position(&self.checkpoint).await? else {
            return Ok(0);
        };
        let mut read = query.clone();
        if read.filter.is_all() {
            read.filter = self.filter.clone();
        }
        let mut replayed = 0;
        while read.after < until {
            let batch = self.store.query(&read, self.options.batch_size).await?;
            if batch.events.is_empty() && batch.last_seen == read.after {
                break;
            }
            read.after = batch.last_seen;
            let events: Vec<RecordedEvent> = batch
                .events
                .into_iter()
                .filter(|e| {
                    e.cursor <= until
                        && self.filter.matches(e.stream.category(), &e.event_type)
                        && query.filter.matches(e.stream.category(), &e.event_type)
                        && self.options.partition.is_none_or(|(index, count)| {
                            partition_of(e.stream.as_str(), count) == index
                        })
                })
                .collect();
            if events.is_empty() {
                continue;
            }
            let n = events.len() as u64;
            self.hand_over(events).await?;
            replayed += n;
        }
        Ok(replayed)
    }

    /// Hands one parked event to the consumer with a checkpoint move that stays in place.
    async fn redeliver(&self, letter: &DeadLetter) -> Result<()> {
        let stream = crate::StreamId::parse(&letter.stream)?;
        let event = self
            .store
            .read_stream(&stream, letter.version, 1)
            .await?
            .pop()
            .filter(|e| e.id == letter.event_id)
            .ok_or_else(|| {
                Error::invalid(
                    "dead letter",
                    format!("event {} is no longer in `{stream}`", letter.event_id),
                )
            })?;
        self.hand_over(vec![event]).await
    }

    /// Hands `events` (already handled once) to the consumer with a checkpoint move that
    /// stays in place.
    async fn hand_over(&self, events: Vec<RecordedEvent>) -> Result<()> {
        let mut tries = 0;
        loop {
            // A live runner may move the checkpoint meanwhile: then read it again.
            let at = self.consumer.position(&self.checkpoint).await?;
            let stay = CheckpointMove {
                name: self.checkpoint.clone(),
                expected: at,
                new: at.unwrap_or(Cursor::START),
            };
            match self.consumer.commit(events.clone(), stay).await {
                Err(Error::CheckpointConflict { .. }) if tries < 10 => tries += 1,
                done => {
                    self.forget_checkpoint();
                    return done;
                }
            }
        }
    }
}
