//! Loading aggregates and executing commands against them.

mod events;

pub use events::command_event_id;

use crate::{
    Aggregate, AppendResult, CommandContext, Cursor, Error, EventStore, ExpectedVersion, NewEvent,
    Snapshot, StreamId,
};
use events::{check_next, encode, Watch};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

/// Why a command failed: the aggregate rejected it, or the store did.
///
/// The rejection stays the aggregate's own error type, so callers match on it:
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use recount::{aggregate, CommandContext, CommandError, InMemoryStore, Repository};
///
/// #[derive(Debug, Default)]
/// struct Seat { taken: bool }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("the seat is taken")]
/// struct Taken;
///
/// #[aggregate(category = "seat", error = Taken)]
/// impl Seat {
///     /// The seat was booked.
///     #[event]
///     fn booked(&mut self) { self.taken = true; }
///
///     fn book(&self) -> Result<Vec<SeatEvent>, Taken> {
///         if self.taken { Err(Taken) } else { Ok(vec![SeatEvent::Booked]) }
///     }
/// }
///
/// let repo = Repository::<Seat, _>::new(InMemoryStore::new());
/// let ctx = CommandContext::new();
/// repo.execute("12A", &ctx, |s| s.book()).await.unwrap();
/// match repo.execute("12A", &ctx, |s| s.book()).await {
///     Err(CommandError::Rejected(Taken)) => {} // the aggregate said no
///     Err(CommandError::Store(e)) => panic!("the store failed: {e}"),
///     Ok(_) => panic!("booked twice"),
/// }
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The aggregate's own rejection.
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The store failed, or conflicts outlasted the retry bound. The store's error is the
    /// source, so code that walks an error's sources (a runner deciding whether a failed
    /// handler may succeed on retry) finds it.
    #[error("{0}")]
    Store(
        #[from]
        #[source]
        Error,
    ),
}

/// An aggregate as loaded: its state and the stream version that state includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The stream version (0 for a stream never written).
    pub version: u64,
}

/// The outcome of a command that was accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<A> {
    /// The state after the command's events.
    pub state: A,
    /// The stream version after the command.
    pub version: u64,
    /// Where the command's last event sits in the global log (`None` when it decided nothing).
    pub cursor: Option<Cursor>,
    /// The ids of the events written, in order.
    pub event_ids: Vec<Uuid>,
}

/// Counters of a [`Repository`], shared by its clones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepositoryStats {
    /// Commands executed (accepted, rejected or failed).
    pub commands: u64,
    /// Times a command was decided again after a version conflict.
    pub conflict_retries: u64,
    /// Times an append was re-sent with the same event ids after an unknown outcome.
    pub unknown_outcome_retries: u64,
    /// Successful appends.
    pub appends: u64,
    /// Snapshots saved.
    pub snapshots_saved: u64,
    /// Snapshot saves that failed (logged, never fatal).
    pub snapshot_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commands: AtomicU64,
    conflict_retries: AtomicU64,
    unknown_outcome_retries: AtomicU64,
    appends: AtomicU64,
    snapshots_saved: AtomicU64,
    snapshot_failures: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Loads aggregates of type `A` from a store and executes commands against them.
///
/// Cloning is cheap and clones share the counters ([`Repository::stats`]). See the crate
/// docs for a complete aggregate.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use recount::{aggregate, CommandContext, InMemoryStore, Repository};
///
/// #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
/// struct Tally { total: u64 }
///
/// #[aggregate(category = "tally", error = std::convert::Infallible, snapshot_every = 2)]
/// impl Tally {
///     /// The total went up.
///     #[event]
///     fn added(&mut self, by: u64) { self.total += by; }
/// }
///
/// let repo = Repository::<Tally, _>::new(InMemoryStore::new()).with_max_conflict_retries(10);
/// let ctx = CommandContext::new().with_user("ada");
/// for by in 1..=3 {
///     repo.execute("t1", &ctx, |_| Ok(vec![TallyEvent::Added { by }])).await.unwrap();
/// }
/// let loaded = repo.load("t1").await.unwrap();
/// assert_eq!((loaded.state.total, loaded.version), (6, 3));
/// // `snapshot_every = 2`: the append that reached version 2 saved a snapshot.
/// assert_eq!(repo.stats().snapshots_saved, 1);
/// # });
/// ```
#[derive(Debug)]
pub struct Repository<A, S> {
    store: S,
    max_conflict_retries: u32,
    max_unknown_outcome_retries: u32,
    conflict_backoff: (Duration, Duration),
    counters: Arc<Counters>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Repository {
            store: self.store.clone(),
            max_conflict_retries: self.max_conflict_retries,
            max_unknown_outcome_retries: self.max_unknown_outcome_retries,
            conflict_backoff: self.conflict_backoff,
            counters: self.counters.clone(),
            _aggregate: PhantomData,
        }
    }
}

/// Events read per page when replaying a stream: most streams fit in one round trip (a page
/// that comes back full costs one more read to find the end).
const REPLAY_PAGE: usize = 4096;

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository over `store`: up to 100 decisions again after conflicts (each costs a
    /// reload; under heavy contention on one stream a writer may lose many rounds in a row),
    /// the first at once and the others after a pause of 1 ms doubling up to 50 ms, jittered
    /// ([`with_conflict_backoff`](Self::with_conflict_backoff)); 3 re-sends of an append
    /// whose outcome is unknown.
    pub fn new(store: S) -> Self {
        Repository {
            store,
            max_conflict_retries: 100,
            max_unknown_outcome_retries: 3,
            conflict_backoff: (Duration::from_millis(1), Duration::from_millis(50)),
            counters: Arc::default(),
            _aggregate: PhantomData,
        }
    }

    /// How many times a command is decided again after a version conflict before the
    /// conflict is returned.
    pub fn with_max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// The pauses before deciding again after a conflict: none before the first retry (one
    /// conflict is usually one other writer, already done), then from `first`, doubling up
    /// to `cap`, each drawn from the upper half ([`Backoff`](crate::Backoff)), so writers
    /// that keep colliding on one stream spread out instead of retrying in step. `first` of
    /// zero retries at once every time.
    pub fn with_conflict_backoff(mut self, first: Duration, cap: Duration) -> Self {
        self.conflict_backoff = (first, cap);
        self
    }

    /// How many times an append whose outcome is unknown is sent again with the same ids.
    pub fn with_max_unknown_outcome_retries(mut self, retries: u32) -> Self {
        self.max_unknown_outcome_retries = retries;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The stream id of aggregate `id`.
    pub fn stream_id(&self, id: &str) -> Result<StreamId, Error> {
        StreamId::new(A::CATEGORY, id)
    }

    /// The counters, shared by all clones of this repository.
    pub fn stats(&self) -> RepositoryStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RepositoryStats {
            commands: get(&c.commands),
            conflict_retries: get(&c.conflict_retries),
            unknown_outcome_retries: get(&c.unknown_outcome_retries),
            appends: get(&c.appends),
            snapshots_saved: get(&c.snapshots_saved),
            snapshot_failures: get(&c.snapshot_failures),
        }
    }

    /// Loads aggregate `id`: the newest snapshot whose tag matches, then the events after it.
    /// A stream never written loads as `A::default()` at version 0.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, Error> {
        let stream = self.stream_id(id)?;
        self.load_stream(&stream).await
    }

    async fn load_stream(&self, stream: &StreamId) -> Result<Loaded<A>, Error> {
        Ok(self.load_watching(stream, None).await?.0)
    }

    /// Loads, noting where the events of command `command` are if the replayed tail holds
    /// them (their ids derive from the command id): the command already ran.
    async fn load_watching(
        &self,
        stream: &StreamId,
        command: Option<Uuid>,
    ) -> Result<(Loaded<A>, Option<Executed<()>>), Error> {
        if let Some((state, version)) = self.snapshot_state(stream).await {
            if let Some(loaded) = self.replay(stream, state, version, command).await? {
                return Ok(loaded);
            }
            // A snapshot is a cache (store contract, item 9): one that claims more events
            // than the stream holds is wrong, and believing it would make every command
            // conflict for ever.
            tracing::warn!(%stream, snapshot_version = version, "snapshot is beyond the stream's version; replaying from the start");
        }
        let replayed = self.replay(stream, A::default(), 0, command).await?;
        replayed.ok_or_else(|| Error::store("a replay from version 0 always fits the stream"))
    }

    /// Applies the events after version `at` to `state` (a snapshot's state at `at`, or the
    /// default state at 0). `None` when the stream has no event at version `at`: the snapshot
    /// does not fit it.
    async fn replay(
        &self,
        stream: &StreamId,
        mut state: A,
        at: u64,
        command: Option<Uuid>,
    ) -> Result<Option<(Loaded<A>, Option<Executed<()>>)>, Error> {
        let mut version = at;
        let mut watch = Watch::new(command);
        // From a snapshot, the first page starts at the snapshot's own version: the event
        // there proves the stream reaches it, at the cost of one more row in the same round
        // trip instead of a second query.
        let (mut from, mut check_first) = (at.max(1), at > 0);
        loop {
            let page = self.store.read_stream(stream, from, REPLAY_PAGE).await?;
            let n = page.len();
            let mut page = page.into_iter();
            if std::mem::take(&mut check_first) && page.next().is_none_or(|e| e.version != at) {
                return Ok(None);
            }
            for recorded in page {
                check_next(&recorded, version)?;
                watch.see(&recorded);
                state.apply(recorded.decode::<A::Event>()?);
                version = recorded.version;
            }
            if n < REPLAY_PAGE {
                return Ok(Some((Loaded { state, version }, watch.done)));
            }
            // At u64::MAX this reads the last event again, which `check_next` then reports.
            from = version.saturating_add(1);
        }
    }

    /// A snapshot is a cache (store contract, item 9): anything wrong with it means replay.
    async fn snapshot_state(&self, stream: &StreamId) -> Option<(A, u64)> {
        A::snapshot_every()?;
        let snapshot = match self.store.load_snapshot(stream).await {
            Ok(s) => s?,
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot load failed; replaying");
                return None;
            }
        };
        if snapshot.tag != A::snapshot_tag() {
            tracing::debug!(%stream, stored = %snapshot.tag, wanted = A::snapshot_tag(), "snapshot tag differs; replaying");
            return None;
        }
        if snapshot.version == 0 {
            tracing::warn!(%stream, "snapshot at version 0 describes no event; replaying");
            return None;
        }
        match A::decode_snapshot(&snapshot.state)? {
            Ok(state) => Some((state, snapshot.version)),
            Err(e) => {
                tracing::warn!(%stream, error = %e, "snapshot does not decode; replaying");
                None
            }
        }
    }

    /// Executes a command on aggregate `id`: load, `decide`, append with
    /// `Exact(version)`. On a conflict it reloads and decides again (up to the bound); when the
    /// append's outcome is unknown it re-sends the same events with the same ids.
    ///
    /// Snapshots: when the aggregate has `snapshot_every = n`, an append that moves the stream
    /// into a new multiple of `n` (from version `v` to `w` with `v / n < w / n`) saves a
    /// snapshot of the state at `w`, after the append committed. A failed save is logged and
    /// counted ([`RepositoryStats::snapshot_failures`]), never returned: the command stands.
    /// A command that decides no events, or whose events a previous execution with the same
    /// command id already wrote, saves none.
    pub async fn execute<F>(
        &self,
        id: &str,
        ctx: &CommandContext,
        decide: F,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        F: FnMut(&A) -> Result<Vec<A::Event>, A::Error>,
    {
        bump(&self.counters.commands);
        let stream = self.stream_id(id)?;
        let correlation_id = ctx.correlation_id.unwrap_or_else(Uuid::now_v7);
        let span = tracing::info_span!(
            "command",
            category = stream.category(),
            stream = %stream,
            correlation_id = %correlation_id,
        );
        self.execute_in(&stream, ctx, correlation_id, decide)
            .instrument(span)
            .await
    }

    /// [`Repository::execute`] inside its span.
    async fn execute_in<F>(
        &self,
        stream: &StreamId,
        ctx: &CommandContext,
        correlation_id: Uuid,
        mut decide: F,
    ) -> Result<Executed<A>, CommandError<A::Error>>
    where
        F: FnMut(&A) -> Result<Vec<A::Event>, A::Error>,
    {
        let stream = stream.clone();
        let mut conflicts = 0;
        let mut backoff = crate::Backoff::new(self.conflict_backoff.0, self.conflict_backoff.1);
        // After a conflict: the state decided on, and its version. The retry reads only the
        // events written since (the ones that won), not the whole stream again.
        let mut stale: Option<(A, u64)> = None;
        loop {
            if conflicts > 1 && !self.conflict_backoff.0.is_zero() {
                tokio::time::sleep(backoff.next_pause()).await;
            }
            let caught_up = match stale.take() {
                Some((state, at)) => self.replay(&stream, state, at, ctx.command_id).await?,
                None => None,
            };
            let (loaded, already) = match caught_up {
                Some(loaded) => loaded,
                None => self.load_watching(&stream, ctx.command_id).await?,
            };
            let Loaded { mut state, version } = loaded;
            if let Some(done) = already {
                // This command id already wrote its events: deciding again against the newer
                // state could decide differently (or be refused). It is done; say so.
                return Ok(Executed {
                    state,
                    version,
                    cursor: done.cursor,
                    event_ids: done.event_ids,
                });
            }
            let events = decide(&state).map_err(CommandError::Rejected)?;
            if events.is_empty() {
                return Ok(Executed {
                    state,
                    version,
                    cursor: None,
                    event_ids: Vec::new(),
                });
            }
            let new_events = encode(&events, ctx, correlation_id)?;
            let event_ids: Vec<Uuid> = new_events.iter().map(|e| e.id).collect();
            match self
                .append(&stream, ExpectedVersion::Exact(version), new_events)
                .await
            {
                Ok(done) => {
                    bump(&self.counters.appends);
                    let expected_version = version.checked_add(events.len() as u64);
                    if expected_version != Some(done.version) {
                        // An earlier execution of this command id already wrote these events:
                        // the state to return is the stored one, not ours plus them again.
                        let loaded = self.load_stream(&stream).await?;
                        return Ok(Executed {
                            state: loaded.state,
                            version: loaded.version,
                            cursor: Some(done.cursor),
                            event_ids,
                        });
                    }
                    for e in events {
                        state.apply(e);
                    }
                    self.maybe_snapshot(&stream, &state, version, done.version)
                        .await;
                    return Ok(Executed {
                        state,
                        version: done.version,
                        cursor: Some(done.cursor),
                        event_ids,
                    });
                }
                Err(Error::Conflict { .. }) if conflicts < self.max_conflict_retries => {
                    conflicts += 1;
                    stale = Some((state, version));
                    bump(&self.counters.conflict_retries);
                    crate::telemetry::conflict(stream.category());
                    crate::telemetry::command_retry(stream.category());
                    tracing::debug!(%stream, attempt = conflicts, "version conflict; deciding again");
                }
                Err(e) => {
                    if matches!(e, Error::Conflict { .. }) {
                        crate::telemetry::conflict(stream.category());
                    }
                    return Err(e.into());
                }
            }
        }
    }

    /// Appends, re-sending the same events after an unknown outcome (store contract, item 4
    /// makes that safe: a committed append is recognised by its ids).
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, Error> {
        let mut attempt = 0;
        loop {
            match self.store.append(stream, expected, events.clone()).await {
                Err(e) if e.is_retriable() && attempt < self.max_unknown_outcome_retries => {
                    attempt += 1;
                    bump(&self.counters.unknown_outcome_retries);
                    tracing::warn!(%stream, attempt, error = %e, "append outcome unknown; re-sending the same events");
                    tokio::time::sleep(Duration::from_millis(10u64 << attempt.min(6))).await;
                }
                other => return other,
            }
        }
    }

    async fn maybe_snapshot(&self, stream: &StreamId, state: &A, before: u64, after: u64) {
        let Some(every) = A::snapshot_every().filter(|n| *n > 0) else {
            return;
        };
        if before / every == after / every {
            return;
        }
        let Some(encoded) = state.encode_snapshot() else {
            return;
        };
        let result = match encoded {
            Ok(state) => {
                let snapshot = Snapshot {
                    stream: stream.clone(),
                    version: after,
                    tag: A::snapshot_tag().to_owned(),
                    state,
                };
                self.store.save_snapshot(snapshot).await
            }
            Err(e) => Err(Error::invalid("snapshot", e.to_string())),
        };
        match result {
            Ok(()) => bump(&self.counters.snapshots_saved),
            Err(e) => {
                bump(&self.counters.snapshot_failures);
                tracing::warn!(%stream, version = after, error = %e, "snapshot save failed; the command stands");
            }
        }
    }
}
