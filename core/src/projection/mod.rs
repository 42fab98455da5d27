//! Everything downstream of the global log: projections (read models), their runner, rebuild
//! by replay, side-effect handlers with dead letters, and process managers.
//!
//! One model feeds them all: read a batch after the checkpoint (filtered), handle it, commit
//! the handler's writes and the checkpoint (compare-and-set) together, repeat; when caught up,
//! wait for a wake-up ([`EventStore::wait_for_append`](crate::EventStore::wait_for_append)).

mod effects;
mod lease;
mod memory;
mod process;
mod rebuild;
mod runner;

pub use effects::{DeadLetter, DeadLetterPolicy, EffectRunner, SideEffect};
pub use lease::Lease;
pub use memory::{InMemoryProjection, ReadModel};
pub use process::{ProcessManager, ProcessRunner, Steps};
pub use rebuild::{active_version, rebuild, switch_active_version, Progress};
pub use runner::{ProjectionRunner, ProjectionStats, RunnerOptions};

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
    /// Where it moves to.
    pub new: Cursor,
}

/// A read model fed from the global log.
///
/// [`Projection::commit`] applies a batch **and** moves the checkpoint in one atomic step:
/// both happen or neither. [`InMemoryProjection`] does it in memory; the SQL stores provide
/// projections that write their tables and the checkpoint in one database transaction.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name, e.g. `story-catalogue`.
    fn name(&self) -> &str;

    /// Version of the read model's shape and code. A new version is rebuilt beside the old.
    fn version(&self) -> u32 {
        1
    }

    /// Which events it wants.
    fn filter(&self) -> LogFilter {
        LogFilter::all()
    }

    /// The committed position of checkpoint `name` (`None`: from the start).
    async fn position(&self, name: &str) -> Result<Option<Cursor>>;

    /// Applies `events` (log order; may be empty when only the checkpoint moves) and moves the
    /// checkpoint, atomically. On any error nothing of the batch may remain.
    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()>;

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

macro_rules! forward_projection {
    ($ty:ty) => {
        #[async_trait]
        impl<P: Projection + ?Sized> Projection for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn version(&self) -> u32 {
                (**self).version()
            }
            fn filter(&self) -> LogFilter {
                (**self).filter()
            }
            async fn position(&self, name: &str) -> Result<Option<Cursor>> {
                (**self).position(name).await
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

forward_projection!(Box<P>);
forward_projection!(std::sync::Arc<P>);
