//! The consumer abstraction: a batch of logged events and the checkpoint move, committed
//! together.

use super::DeadLetterPolicy;
use crate::{Cursor, LogFilter, RecordedEvent, Result};
use async_trait::async_trait;

/// A checkpoint move to commit with a batch: from `expected` (compare-and-set) to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointMove {
    /// The checkpoint's name.
    pub name: String,
    /// What the checkpoint must still be (`None`: not stored yet). Anything else means another
    /// runner moved it: the commit fails with `Error::CheckpointConflict` and writes nothing.
    pub expected: Option<Cursor>,
    /// Where it moves to. Equal to `expected` when a parked event is handled again
    /// ([`Runner::retry_parked`](super::Runner::retry_parked)): the effects happen, the
    /// checkpoint stays.
    pub new: Cursor,
}

/// What a consumer is, for its checkpoint's name, its default dead-letter policy and its
/// status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsumerKind {
    /// A read model.
    Projection,
    /// A process manager (saga).
    ProcessManager,
    /// A side-effect handler (email, webhook).
    SideEffect,
    /// A relay to a message broker.
    Relay,
}

impl ConsumerKind {
    /// The kind as a word (`projection`, `process`, `effect`, `relay`): the prefix of its
    /// checkpoint names.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerKind::Projection => "projection",
            ConsumerKind::ProcessManager => "process",
            ConsumerKind::SideEffect => "effect",
            ConsumerKind::Relay => "relay",
        }
    }

    /// What a consumer of this kind does with an event that keeps failing, unless it says
    /// otherwise: a projection stops (a read model that skipped an event is wrong, so someone
    /// must look); a process manager holds the event's stream (later steps of the same saga
    /// wait behind it, others go on); side effects and relays park the event and go on.
    pub fn default_policy(self) -> DeadLetterPolicy {
        match self {
            ConsumerKind::Projection => DeadLetterPolicy::Stop,
            ConsumerKind::ProcessManager => DeadLetterPolicy::Sequenced,
            ConsumerKind::SideEffect | ConsumerKind::Relay => DeadLetterPolicy::Skip,
        }
    }
}

impl std::fmt::Display for ConsumerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something downstream of the global log, driven by a [`Runner`](super::Runner).
///
/// [`Consumer::commit`] handles a batch **and** moves the checkpoint as one step: for a read
/// model both happen or neither; for effects that cannot be undone (an email, a broker
/// publish) the effects happen first and the checkpoint moves after, so an event is handled
/// at least once and never skipped. Everything else (reading, leases, retries, partitions,
/// dead letters, status) is the runner's.
///
/// ```
/// use async_trait::async_trait;
/// use recount::projection::{CheckpointMove, Consumer, Runner};
/// use recount::{Cursor, EventStore, InMemoryStore, RecordedEvent};
///
/// /// Prints events, keeping its checkpoint in the store.
/// struct Printer(InMemoryStore);
///
/// #[async_trait]
/// impl Consumer for Printer {
///     fn name(&self) -> &str { "printer" }
///     async fn position(&self, checkpoint: &str) -> recount::Result<Option<Cursor>> {
///         self.0.load_checkpoint(checkpoint).await
///     }
///     async fn commit(&self, events: Vec<RecordedEvent>, to: CheckpointMove) -> recount::Result<()> {
///         for e in &events { println!("{} {}", e.stream, e.event_type); }
///         self.0.save_checkpoint(&to.name, to.expected, to.new).await
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = InMemoryStore::new();
/// assert_eq!(Runner::new(store.clone(), Printer(store)).catch_up().await.unwrap(), 0);
/// # });
/// ```
#[async_trait]
pub trait Consumer: Send + Sync + 'static {
    /// Stable name, e.g. `story-catalogue`; unique among the consumers of one store.
    fn name(&self) -> &str;

    /// What it is (default: a projection).
    fn kind(&self) -> ConsumerKind {
        ConsumerKind::Projection
    }

    /// Version of its shape and code. A projection's new version is rebuilt beside the old.
    fn version(&self) -> u32 {
        1
    }

    /// Which events it wants.
    fn filter(&self) -> LogFilter {
        LogFilter::all()
    }

    /// The name of its checkpoint (for one partition `(index, count)`, or all streams).
    fn checkpoint(&self, partition: Option<(u32, u32)>) -> String {
        match self.kind() {
            ConsumerKind::Projection => checkpoint_name(self.name(), self.version(), partition),
            kind => match partition {
                Some((i, n)) => format!("{kind}:{}:p{i}of{n}", self.name()),
                None => format!("{kind}:{}", self.name()),
            },
        }
    }

    /// What to do with an event that keeps failing (default: the kind's
    /// [`ConsumerKind::default_policy`]).
    fn dead_letter_policy(&self) -> DeadLetterPolicy {
        self.kind().default_policy()
    }

    /// The committed position of checkpoint `name` (`None`: from the start).
    async fn position(&self, name: &str) -> Result<Option<Cursor>>;

    /// Handles `events` (log order; may be empty when only the checkpoint moves) and moves the
    /// checkpoint. On an error, a read model keeps nothing of the batch; effects already done
    /// may be done again.
    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()>;

    /// Called with the next batch while the runner still waits for the last
    /// [`commit`](Self::commit) (the runner reads ahead after a full batch, see
    /// [`RunnerOptions::read_ahead`](super::RunnerOptions::read_ahead)): work that needs
    /// neither storage nor order, such as decoding or mapping the events, can be done here
    /// so that it overlaps the last batch's I/O. The batch may never reach `commit` (the last
    /// commit failed, say), and `commit` is always handed its events in full: keep nothing
    /// here that `commit` would use without checking it is for the same events. Default:
    /// nothing.
    fn prepare(&self, events: &[RecordedEvent]) {
        let _ = events;
    }

    /// Drops this version's storage after a rebuild switched readers to a newer one.
    async fn drop_storage(&self) -> Result<()> {
        Ok(())
    }
}

/// The checkpoint name of a projection version, optionally one partition of it.
pub fn checkpoint_name(name: &str, version: u32, partition: Option<(u32, u32)>) -> String {
    match partition {
        Some((i, n)) => format!("projection:{name}:v{version}:p{i}of{n}"),
        None => format!("projection:{name}:v{version}"),
    }
}

/// The partition (of `count`) that a stream belongs to: a stable FNV-1a hash of its id, so
/// every process agrees and a stream's events always go to one worker, in order.
pub fn partition_of(stream: &str, count: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(count.max(1))) as u32
}

macro_rules! forward_consumer {
    ($ty:ty) => {
        #[async_trait]
        impl<C: Consumer + ?Sized> Consumer for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn kind(&self) -> ConsumerKind {
                (**self).kind()
            }
            fn version(&self) -> u32 {
                (**self).version()
            }
            fn filter(&self) -> LogFilter {
                (**self).filter()
            }
            fn checkpoint(&self, partition: Option<(u32, u32)>) -> String {
                (**self).checkpoint(partition)
            }
            fn dead_letter_policy(&self) -> DeadLetterPolicy {
                (**self).dead_letter_policy()
            }
            async fn position(&self, name: &str) -> Result<Option<Cursor>> {
                (**self).position(name).await
            }
            fn prepare(&self, events: &[RecordedEvent]) {
                (**self).prepare(events)
            }
            async fn commit(
                &self,
                events: Vec<RecordedEvent>,
                checkpoint: CheckpointMove,
            ) -> Result<()> {
                (**self).commit(events, checkpoint).await
            }
            async fn drop_storage(&self) -> Result<()> {
                (**self).drop_storage().await
            }
        }
    };
}

forward_consumer!(Box<C>);
forward_consumer!(std::sync::Arc<C>);
