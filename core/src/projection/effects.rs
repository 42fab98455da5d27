//! Side-effect handlers: at least once, with the runner's retries and dead letters.

use super::{CheckpointMove, Consumer, ConsumerKind, DeadLetterPolicy};
use crate::{BoxError, Cursor, Error, EventStore, LogFilter, RecordedEvent, Result};
use async_trait::async_trait;

/// A handler with effects outside the store (email, webhook, notification).
///
/// It runs at least once per event: after a crash, events since the last checkpoint run
/// again, so it should be idempotent by event id (hand the event id to the receiver as an
/// idempotency key). Rebuilds never run it. Run it as [`Effects`] on a
/// [`Runner`](super::Runner).
#[async_trait]
pub trait SideEffect: Send + Sync + 'static {
    /// Stable name (checkpoint and dead-letter stream).
    fn name(&self) -> &str;
    /// Which events it wants.
    fn filter(&self) -> LogFilter;
    /// What to do with an event that keeps failing (default: park it and go on).
    fn dead_letter_policy(&self) -> DeadLetterPolicy {
        DeadLetterPolicy::Skip
    }
    /// Does the effect for one event. An error is retried by the runner with backoff, then
    /// the event is parked.
    async fn handle(&self, event: &RecordedEvent) -> std::result::Result<(), BoxError>;
}

/// A [`SideEffect`] as a [`Consumer`]: its commit does the effects in log order, then moves
/// the checkpoint (kept in the store).
///
/// When the effect of one event fails, the checkpoint first moves past the events before it
/// that succeeded, so a retry does not do them again.
///
/// ```
/// use async_trait::async_trait;
/// use recount::projection::{Effects, Runner, SideEffect};
/// use recount::{BoxError, InMemoryStore, LogFilter, RecordedEvent};
///
/// struct Mailer;
///
/// #[async_trait]
/// impl SideEffect for Mailer {
///     fn name(&self) -> &str { "mailer" }
///     fn filter(&self) -> LogFilter { LogFilter::all().event_type("user.registered") }
///     async fn handle(&self, event: &RecordedEvent) -> Result<(), BoxError> {
///         println!("welcome mail for {} (idempotency key {})", event.stream, event.id);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// let runner = Runner::new(store.clone(), Effects::new(store, Mailer));
/// assert_eq!(runner.catch_up().await.unwrap(), 0);
/// assert!(runner.parked().await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug)]
pub struct Effects<S, H> {
    store: S,
    handler: H,
}

impl<S: EventStore, H: SideEffect> Effects<S, H> {
    /// `handler`, keeping its checkpoint in `store`.
    pub fn new(store: S, handler: H) -> Self {
        Effects { store, handler }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}

#[async_trait]
impl<S: EventStore, H: SideEffect> Consumer for Effects<S, H> {
    fn name(&self) -> &str {
        self.handler.name()
    }

    fn kind(&self) -> ConsumerKind {
        ConsumerKind::SideEffect
    }

    fn filter(&self) -> LogFilter {
        self.handler.filter()
    }

    fn dead_letter_policy(&self) -> DeadLetterPolicy {
        self.handler.dead_letter_policy()
    }

    async fn position(&self, name: &str) -> Result<Option<Cursor>> {
        self.store.load_checkpoint(name).await
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let mut done: Option<Cursor> = None;
        for event in &events {
            if let Err(source) = self.handler.handle(event).await {
                let failed = Error::handler(self.handler.name(), event.id, source);
                let moves = checkpoint.new != checkpoint.expected.unwrap_or(Cursor::START);
                if let (Some(at), true) = (done, moves) {
                    // Keep the progress made: the events before this one are done.
                    if let Err(e) = self
                        .store
                        .save_checkpoint(&checkpoint.name, checkpoint.expected, at)
                        .await
                    {
                        tracing::debug!(error = %e, "progress before a failed effect not saved");
                    }
                }
                return Err(failed);
            }
            done = Some(event.cursor);
        }
        self.store
            .save_checkpoint(&checkpoint.name, checkpoint.expected, checkpoint.new)
            .await
    }
}
