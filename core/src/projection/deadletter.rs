//! Dead letters: events a consumer could not handle, parked as events of their own.

use crate::{Error, EventStore, ExpectedVersion, NewEvent, RecordedEvent, Result, StreamId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What happens to an event that keeps failing after the runner's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterPolicy {
    /// Stop the consumer at the event and report it (its status shows
    /// [`RunState::Stopped`](super::RunState::Stopped) with the error): right for read
    /// models, where a skipped event leaves the model wrong.
    Stop,
    /// Park the event and move on (right for notifications).
    Skip,
    /// Park it and every later event of the same stream until it is retried (right for
    /// handlers that need per-stream order, and for sagas).
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
    /// Attempts made (0 for an event parked only because it waits behind another).
    pub attempts: u32,
}

const PARKED: &str = "deadletter.parked";
const RESOLVED: &str = "deadletter.resolved";

/// The dead letters of one consumer: the stream `deadletter-<checkpoint>` (the consumer's
/// checkpoint name without its partition), so parking and resolving are appends, durable on
/// every store and visible in the log.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetters {
    stream: StreamId,
    consumer: String,
}

impl DeadLetters {
    pub(crate) fn new(consumer: &str, checkpoint: &str) -> Result<Self> {
        Ok(DeadLetters {
            stream: StreamId::new("deadletter", checkpoint)?,
            consumer: consumer.to_owned(),
        })
    }

    /// Parks `event`. The dead letter's id derives from the event, so parking the same event
    /// again (a retried park, a restarted runner) writes nothing more.
    pub(crate) async fn park<S: EventStore + ?Sized>(
        &self,
        store: &S,
        event: &RecordedEvent,
        error: String,
        attempts: u32,
    ) -> Result<DeadLetter> {
        let letter = DeadLetter {
            event_id: event.id,
            stream: event.stream.to_string(),
            version: event.version,
            event_type: event.event_type.clone(),
            error,
            attempts,
        };
        tracing::warn!(consumer = %self.consumer, event = %event.id, stream = %event.stream, error = %letter.error, "event parked as a dead letter");
        let id = Uuid::new_v5(&event.id, format!("park:{}", self.stream).as_bytes());
        let e = NewEvent::new(PARKED, &letter)?.with_id(id);
        match store
            .append(&self.stream, ExpectedVersion::Any, vec![e])
            .await
        {
            Ok(_) | Err(Error::DuplicateEvent { .. }) => Ok(letter),
            Err(e) => Err(e),
        }
    }

    /// Marks `letter` resolved.
    pub(crate) async fn resolve<S: EventStore + ?Sized>(
        &self,
        store: &S,
        letter: &DeadLetter,
    ) -> Result<()> {
        // A fresh id each time: an event parked, resolved and parked again is resolved again.
        let e = NewEvent::new(RESOLVED, letter)?;
        store
            .append(&self.stream, ExpectedVersion::Any, vec![e])
            .await
            .map(drop)
    }

    /// The parked events not yet resolved, oldest first.
    pub(crate) async fn open<S: EventStore + ?Sized>(&self, store: &S) -> Result<Vec<DeadLetter>> {
        let mut open: BTreeMap<u64, DeadLetter> = BTreeMap::new();
        let mut order: BTreeMap<Uuid, u64> = BTreeMap::new();
        let mut from = 1;
        loop {
            let page = store.read_stream(&self.stream, from, 1000).await?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            for e in &page {
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
        }
        Ok(open.into_values().collect())
    }
}
