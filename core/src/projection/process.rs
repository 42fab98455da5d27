//! Process managers (sagas): react to events by sending commands to other aggregates.

use crate::{
    BoxError, CommandContext, Cursor, Error, EventStore, LogFilter, RecordedEvent, Result,
    Snapshot, StreamId,
};
use async_trait::async_trait;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

/// Hands out the command contexts of one triggering event: correlation id kept, causation id
/// set to the event, and a command id derived from the event and the step number, so a
/// restarted process manager re-sending a step writes nothing twice.
#[derive(Debug)]
pub struct Steps {
    base: CommandContext,
    event_id: Uuid,
    manager: String,
    next: u32,
}

impl Steps {
    fn new(manager: &str, event: &RecordedEvent) -> Result<Self> {
        Ok(Steps {
            base: CommandContext::caused_by(event)?,
            event_id: event.id,
            manager: manager.to_owned(),
            next: 0,
        })
    }

    /// The context for the next step's command.
    pub fn next_step(&mut self) -> CommandContext {
        let step = self.next;
        self.next += 1;
        self.named(&format!("step-{step}"))
    }

    /// The context for a named command (a compensation, say), stable across restarts.
    pub fn named(&self, name: &str) -> CommandContext {
        let id = Uuid::new_v5(
            &self.event_id,
            format!("{}:{name}", self.manager).as_bytes(),
        );
        self.base.clone().with_command_id(id)
    }
}

/// A process manager: keeps state across events and sends commands through repositories.
///
/// A step that fails after earlier steps succeeded should run its compensation (with a
/// context from [`Steps::named`]) and return `Ok`: the saga then ends in a consistent state.
/// Returning `Err` stops the runner at this event, to be retried.
#[async_trait]
pub trait ProcessManager: Send + Sync + 'static {
    /// Its state, saved with its position after every event.
    type State: Default + Serialize + DeserializeOwned + Send + Sync;

    /// Stable name.
    fn name(&self) -> &str;

    /// Which events it reacts to.
    fn filter(&self) -> LogFilter;

    /// Reacts to one event.
    async fn handle(
        &self,
        state: &mut Self::State,
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> std::result::Result<(), BoxError>;
}

#[derive(Serialize, Deserialize)]
struct Saved<T> {
    cursor: Cursor,
    state: T,
}

/// Runs a [`ProcessManager`] over the global log.
///
/// Its state and position are saved together, in one snapshot row of the stream
/// `processmanager-<name>`, after each batch, so they always agree. Commands are sent before
/// that save: after a crash the batch is handled again from the saved state, and its commands,
/// carrying the same command ids, are recognised as already done
/// ([`CommandContext::command_id`](crate::CommandContext::command_id)).
#[derive(Debug)]
pub struct ProcessRunner<S, M> {
    store: S,
    manager: M,
    batch_size: usize,
}

impl<S: EventStore, M: ProcessManager> ProcessRunner<S, M> {
    /// A runner over `store`.
    pub fn new(store: S, manager: M) -> Self {
        ProcessRunner {
            store,
            manager,
            batch_size: 200,
        }
    }

    /// Events per batch (default 200): the state is saved after each batch, and a crash
    /// handles at most one batch again.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    fn stream(&self) -> Result<StreamId> {
        StreamId::new("processmanager", self.manager.name())
    }

    /// The saved state and position.
    pub async fn state(&self) -> Result<(M::State, Cursor, u64)> {
        match self.store.load_snapshot(&self.stream()?).await? {
            Some(s) => {
                let saved: Saved<M::State> = serde_json::from_str(&s.state)
                    .map_err(|e| Error::invalid("process manager state", e.to_string()))?;
                Ok((saved.state, saved.cursor, s.version))
            }
            None => Ok((M::State::default(), Cursor::START, 0)),
        }
    }

    /// Handles events after the saved position until caught up; returns how many.
    pub async fn catch_up(&self) -> Result<u64> {
        let (mut state, mut after, mut handled) = self.state().await?;
        let stream = self.stream()?;
        let mut n = 0;
        loop {
            let batch = self
                .store
                .read_all(after, &self.manager.filter(), self.batch_size)
                .await?;
            if batch.events.is_empty() && batch.last_seen == after {
                return Ok(n);
            }
            for event in &batch.events {
                let mut steps = Steps::new(self.manager.name(), event)?;
                self.manager.handle(&mut state, event, &mut steps).await.map_err(|e| {
                    tracing::warn!(manager = self.manager.name(), event = %event.id, error = %e, "process manager step failed");
                    Error::Store { source: e, retriable: true }
                })?;
                handled += 1;
                n += 1;
            }
            after = batch.last_seen;
            self.save(&stream, &state, after, handled).await?;
        }
    }

    async fn save(
        &self,
        stream: &StreamId,
        state: &M::State,
        cursor: Cursor,
        handled: u64,
    ) -> Result<()> {
        let text = serde_json::to_string(&Saved { cursor, state })
            .map_err(|e| Error::invalid("process manager state", e.to_string()))?;
        let snapshot = Snapshot {
            stream: stream.clone(),
            version: handled,
            tag: "process-manager".into(),
            state: text,
        };
        self.store.save_snapshot(snapshot).await
    }
}
