//! Process managers (sagas): react to events by sending commands to other aggregates.

use super::{CheckpointMove, Consumer, ConsumerKind, DeadLetterPolicy};
use crate::{
    BoxError, CommandContext, Cursor, Error, EventStore, LogFilter, RecordedEvent, Result, StreamId,
};
use async_trait::async_trait;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::sync::Mutex;
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
/// Returning `Err` fails the batch: the runner retries it (the steps already sent are
/// recognised by their command ids), then parks the event under the manager's
/// [`DeadLetterPolicy`] (default [`DeadLetterPolicy::Sequenced`]: later events of the same
/// stream wait behind it).
#[async_trait]
pub trait ProcessManager: Send + Sync + 'static {
    /// Its state, saved with its position after every batch.
    type State: Default + Serialize + DeserializeOwned + Send + Sync;

    /// Stable name.
    fn name(&self) -> &str;

    /// Which events it reacts to.
    fn filter(&self) -> LogFilter;

    /// What to do with an event that keeps failing.
    fn dead_letter_policy(&self) -> DeadLetterPolicy {
        DeadLetterPolicy::Sequenced
    }

    /// Reacts to one event.
    async fn handle(
        &self,
        state: &mut Self::State,
        event: &RecordedEvent,
        steps: &mut Steps,
    ) -> std::result::Result<(), BoxError>;
}

/// How earlier versions saved a manager's state: a snapshot of `processmanager-<name>`.
#[derive(Deserialize)]
struct Saved<T> {
    cursor: Cursor,
    state: T,
}

/// A [`ProcessManager`] as a [`Consumer`].
///
/// Its state and position are saved together, in one compare-and-set of its checkpoint
/// ([`EventStore::save_checkpoint_state`]), after each batch, so they always agree and a
/// runner that lost its lease cannot save over the new holder's. Commands are sent before
/// that save: after a crash the batch is handled again from the saved state, and its
/// commands, carrying the same command ids, are recognised as already done
/// ([`CommandContext::command_id`](crate::CommandContext::command_id)).
#[derive(Debug)]
pub struct Process<S, M> {
    store: S,
    manager: M,
    /// The last committed (checkpoint name, position, state as JSON), to spare a read per
    /// batch.
    cache: Mutex<Option<(String, Cursor, String)>>,
}

impl<S: EventStore, M: ProcessManager> Process<S, M> {
    /// `manager`, keeping its state and position in `store`.
    pub fn new(store: S, manager: M) -> Self {
        Process {
            store,
            manager,
            cache: Mutex::new(None),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.manager
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(String, Cursor, String)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The saved state and position of the whole manager (no partition).
    pub async fn state(&self) -> Result<(M::State, Option<Cursor>)> {
        let name = self.checkpoint(None);
        let at = self.position(&name).await?;
        Ok((self.state_at(&name, at).await?, at))
    }

    fn decode(&self, text: &str) -> Result<M::State> {
        serde_json::from_str(text).map_err(|e| Error::Corrupt {
            event_id: Uuid::nil(),
            stream: format!("process manager `{}`", self.manager.name()),
            event_type: "state".into(),
            reason: e.to_string(),
        })
    }

    /// The state saved with checkpoint `name` at `at`; a conflict when it is elsewhere.
    async fn state_at(&self, name: &str, at: Option<Cursor>) -> Result<M::State> {
        let cached = self.cache().clone();
        if let (Some((n, c, text)), Some(at)) = (&cached, at) {
            if n == name && *c == at {
                return self.decode(text);
            }
        }
        let stored = self.store.load_checkpoint_state(name).await?;
        let actual = stored.as_ref().map(|s| s.0);
        if actual != at {
            return Err(Error::CheckpointConflict {
                name: name.to_owned(),
                expected: at,
                actual,
            });
        }
        match stored.and_then(|s| s.1) {
            Some(text) => self.decode(&text),
            None => Ok(M::State::default()),
        }
    }

    /// Moves a state saved by an earlier version (a snapshot of `processmanager-<name>`)
    /// into the checkpoint, once.
    async fn adopt_legacy(&self, name: &str) -> Result<Option<Cursor>> {
        let legacy = StreamId::new("processmanager", self.manager.name())?;
        let Some(snapshot) = self.store.load_snapshot(&legacy).await? else {
            return Ok(None);
        };
        let saved: Saved<serde_json::Value> = serde_json::from_str(&snapshot.state)
            .map_err(|e| Error::invalid("process manager state", e.to_string()))?;
        let text = saved.state.to_string();
        match self
            .store
            .save_checkpoint_state(name, None, saved.cursor, Some(text))
            .await
        {
            Ok(()) | Err(Error::CheckpointConflict { .. }) => {}
            Err(e) => return Err(e),
        }
        self.store.load_checkpoint(name).await
    }
}

#[async_trait]
impl<S: EventStore, M: ProcessManager> Consumer for Process<S, M> {
    fn name(&self) -> &str {
        self.manager.name()
    }

    fn kind(&self) -> ConsumerKind {
        ConsumerKind::ProcessManager
    }

    fn filter(&self) -> LogFilter {
        self.manager.filter()
    }

    fn dead_letter_policy(&self) -> DeadLetterPolicy {
        self.manager.dead_letter_policy()
    }

    async fn position(&self, name: &str) -> Result<Option<Cursor>> {
        match self.store.load_checkpoint(name).await? {
            Some(at) => Ok(Some(at)),
            None if name == self.checkpoint(None) => self.adopt_legacy(name).await,
            None => Ok(None),
        }
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let mut state = self.state_at(&checkpoint.name, checkpoint.expected).await?;
        for event in &events {
            let mut steps = Steps::new(self.manager.name(), event)?;
            if let Err(source) = self.manager.handle(&mut state, event, &mut steps).await {
                *self.cache() = None;
                return Err(Error::handler(self.manager.name(), event.id, source));
            }
        }
        let text = serde_json::to_string(&state)
            .map_err(|e| Error::invalid("process manager state", e.to_string()))?;
        let saved = self
            .store
            .save_checkpoint_state(
                &checkpoint.name,
                checkpoint.expected,
                checkpoint.new,
                Some(text.clone()),
            )
            .await;
        *self.cache() = saved
            .is_ok()
            .then_some((checkpoint.name, checkpoint.new, text));
        saved
    }
}
