//! Side-effect handlers: at-least-once, retries with backoff, dead letters.

use crate::{
    BoxError, Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, RecordedEvent,
    Result, StreamId,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use uuid::Uuid;

/// A handler with effects outside the store (email, webhook, notification).
///
/// It runs at least once per event: after a crash, events since the last checkpoint run
/// again, so it should be idempotent by event id. Rebuilds never run it.
#[async_trait]
pub trait SideEffect: Send + Sync + 'static {
    /// Stable name (checkpoint and dead-letter stream).
    fn name(&self) -> &str;
    /// Which events it wants.
    fn filter(&self) -> LogFilter;
    /// Does the effect for one event.
    async fn handle(&self, event: &RecordedEvent) -> std::result::Result<(), BoxError>;
}

/// What happens to an event that keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterPolicy {
    /// Park it and move on (right for notifications).
    Skip,
    /// Park it and every later event of the same stream until it is retried (right for
    /// handlers that need per-stream order).
    Sequenced,
}

/// A parked event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event's id.
    pub event_id: Uuid,
    /// Its stream.
    pub stream: String,
    /// Its stream version.
    pub version: u64,
    /// Its type.
    pub event_type: String,
    /// The last error (or the event it waits behind, under [`DeadLetterPolicy::Sequenced`]).
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
}

const PARKED: &str = "deadletter.parked";
const RESOLVED: &str = "deadletter.resolved";

/// Runs a [`SideEffect`] over the global log from its checkpoint.
///
/// Dead letters are themselves events, in the stream `deadletter-<handler>`: parking and
/// resolving are appends, so they are durable on every store and visible in the log.
#[derive(Debug)]
pub struct EffectRunner<S, H> {
    store: S,
    handler: H,
    policy: DeadLetterPolicy,
    max_attempts: u32,
    backoff: Duration,
    batch_size: usize,
}

impl<S: EventStore, H: SideEffect> EffectRunner<S, H> {
    /// A runner: 5 attempts, backoff from 10 ms doubling, [`DeadLetterPolicy::Skip`].
    pub fn new(store: S, handler: H) -> Self {
        EffectRunner {
            store,
            handler,
            policy: DeadLetterPolicy::Skip,
            max_attempts: 5,
            backoff: Duration::from_millis(10),
            batch_size: 500,
        }
    }

    /// Sets the dead-letter policy.
    pub fn with_policy(mut self, policy: DeadLetterPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the attempts per event (at least 1) and the first backoff (doubling).
    pub fn with_retries(mut self, max_attempts: u32, backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.backoff = backoff;
        self
    }

    fn checkpoint(&self) -> String {
        format!("effect:{}", self.handler.name())
    }

    fn dead_letter_stream(&self) -> Result<StreamId> {
        StreamId::new("deadletter", self.handler.name())
    }

    /// Runs the handler with retries and backoff; the last error if every attempt failed.
    async fn attempt(&self, event: &RecordedEvent) -> std::result::Result<(), (String, u32)> {
        let mut wait = self.backoff;
        for attempt in 1..=self.max_attempts {
            match self.handler.handle(event).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt == self.max_attempts => return Err((e.to_string(), attempt)),
                Err(e) => {
                    tracing::debug!(handler = self.handler.name(), event = %event.id, attempt, error = %e, "side effect failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        Err(("no attempt made".into(), 0))
    }

    async fn park(&self, event: &RecordedEvent, error: String, attempts: u32) -> Result<()> {
        let letter = DeadLetter {
            event_id: event.id,
            stream: event.stream.to_string(),
            version: event.version,
            event_type: event.event_type.clone(),
            error,
            attempts,
        };
        tracing::warn!(handler = self.handler.name(), event = %event.id, error = %letter.error, "event parked as a dead letter");
        // The id derives from the event, so parking the same event twice writes once.
        let id = Uuid::new_v5(
            &event.id,
            format!("park:{}", self.handler.name()).as_bytes(),
        );
        let e = NewEvent::new(PARKED, &letter)?.with_id(id);
        match self
            .store
            .append(&self.dead_letter_stream()?, ExpectedVersion::Any, vec![e])
            .await
        {
            Ok(_) | Err(Error::DuplicateEvent { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Handles events after the checkpoint until caught up; returns how many were handled
    /// (parked ones included). The checkpoint moves after each batch.
    pub async fn catch_up(&self) -> Result<u64> {
        let name = self.checkpoint();
        let mut blocked: HashSet<String> =
            self.parked().await?.into_iter().map(|l| l.stream).collect();
        let mut n = 0;
        loop {
            let expected = self.store.load_checkpoint(&name).await?;
            let after = expected.unwrap_or(Cursor::START);
            let batch = self
                .store
                .read_all(after, &self.handler.filter(), self.batch_size)
                .await?;
            if batch.events.is_empty() && batch.last_seen == after {
                return Ok(n);
            }
            for event in &batch.events {
                n += 1;
                let stream = event.stream.to_string();
                if self.policy == DeadLetterPolicy::Sequenced && blocked.contains(&stream) {
                    self.park(
                        event,
                        format!("waiting behind an earlier parked event of `{stream}`"),
                        0,
                    )
                    .await?;
                    continue;
                }
                if let Err((error, attempts)) = self.attempt(event).await {
                    self.park(event, error, attempts).await?;
                    blocked.insert(stream);
                }
            }
            self.store
                .save_checkpoint(&name, expected, batch.last_seen)
                .await?;
        }
    }

    /// The parked events not yet resolved, oldest first.
    pub async fn parked(&self) -> Result<Vec<DeadLetter>> {
        let stream = self.dead_letter_stream()?;
        let mut open: BTreeMap<u64, DeadLetter> = BTreeMap::new();
        let mut order: BTreeMap<Uuid, u64> = BTreeMap::new();
        for e in self.store.read_stream(&stream, 1, usize::MAX).await? {
            let letter: DeadLetter = e.payload_as()?;
            match e.event_type.as_str() {
                PARKED => {
                    order.insert(letter.event_id, e.version);
                    open.insert(e.version, letter);
                }
                RESOLVED => {
                    if let Some(v) = order.remove(&letter.event_id) {
                        open.remove(&v);
                    }
                }
                _ => {}
            }
        }
        Ok(open.into_values().collect())
    }

    /// Runs the handler again for every parked event (of one stream in order under
    /// [`DeadLetterPolicy::Sequenced`]); those that succeed are resolved. Returns how many
    /// were resolved. A stream stops at its first event that still fails.
    pub async fn retry_parked(&self) -> Result<usize> {
        let mut failed_streams = HashSet::new();
        let mut resolved = 0;
        for letter in self.parked().await? {
            if self.policy == DeadLetterPolicy::Sequenced && failed_streams.contains(&letter.stream)
            {
                continue;
            }
            let stream = StreamId::parse(&letter.stream)?;
            let Some(event) = self
                .store
                .read_stream(&stream, letter.version, 1)
                .await?
                .pop()
            else {
                continue;
            };
            match self.attempt(&event).await {
                Ok(()) => {
                    let id = Uuid::new_v5(
                        &event.id,
                        format!("resolve:{}:{}", self.handler.name(), Uuid::now_v7()).as_bytes(),
                    );
                    let e = NewEvent::new(RESOLVED, &letter)?.with_id(id);
                    self.store
                        .append(&self.dead_letter_stream()?, ExpectedVersion::Any, vec![e])
                        .await?;
                    resolved += 1;
                }
                Err(_) => {
                    failed_streams.insert(letter.stream.clone());
                }
            }
        }
        Ok(resolved)
    }

    /// Runs the handler again, on purpose, over the events after `from` (optionally only
    /// those recorded at or after `since`) that pass `filter`; the checkpoint does not move.
    /// For an operator re-sending, say, the emails of one event type.
    pub async fn replay(
        &self,
        from: Cursor,
        filter: &LogFilter,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<u64> {
        let mut after = from;
        let mut n = 0;
        loop {
            let batch = self.store.read_all(after, filter, self.batch_size).await?;
            if batch.events.is_empty() && batch.last_seen == after {
                return Ok(n);
            }
            for event in batch
                .events
                .iter()
                .filter(|e| since.is_none_or(|t| e.recorded_at >= t))
            {
                if let Err((error, attempts)) = self.attempt(event).await {
                    self.park(event, error, attempts).await?;
                }
                n += 1;
            }
            after = batch.last_seen;
        }
    }
}
