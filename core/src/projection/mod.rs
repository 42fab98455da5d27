//! Everything downstream of the global log: one consumer model and one runner.
//!
//! A [`Consumer`] takes a batch of logged events after its checkpoint and commits its effects
//! together with the checkpoint's move (a compare-and-set). Projections (read models),
//! process managers (sagas), side-effect handlers and broker relays are consumers; they differ
//! only in what "commit" means:
//!
//! | consumer | commit |
//! |---|---|
//! | [`InMemoryProjection`], `SqliteProjection`, `PgProjection` | the read model's writes and the checkpoint, in one transaction |
//! | [`Effects`] (a [`SideEffect`]) | the effects, then the checkpoint (at least once) |
//! | [`Process`] (a [`ProcessManager`]) | commands through repositories (idempotent by command id), then state and checkpoint in one compare-and-set |
//!
//! One [`Runner`] drives any consumer and alone owns what they share: filtered batch reads,
//! the checkpoint compare-and-set, the [`Lease`] (one active runner per consumer and
//! partition across processes), live follow with
//! [`EventStore::wait_for_append`](crate::EventStore::wait_for_append) wake-ups, partitions
//! by a stable hash of the stream id, read-your-writes ([`Runner::wait_for`]), retries of
//! retriable store errors with capped, jittered backoff, poison events and their
//! [`DeadLetterPolicy`], graceful shutdown, and a cheap [`ConsumerStatus`]. A [`Supervisor`]
//! runs a set of runners in a process and reports their statuses.
//!
//! ```
//! use recount::projection::{InMemoryProjection, ReadModel, Runner};
//! use recount::{EventStore, ExpectedVersion, InMemoryStore, NewEvent, RecordedEvent, StreamId};
//!
//! #[derive(Clone, Default)]
//! struct Count(u64);
//! impl ReadModel for Count {
//!     fn apply(&mut self, _: &RecordedEvent) -> recount::Result<()> {
//!         self.0 += 1;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = InMemoryStore::new();
//! let s = StreamId::new("note", "1").unwrap();
//! let e = NewEvent::new("note.written", &serde_json::json!({})).unwrap();
//! store.append(&s, ExpectedVersion::NoStream, vec![e]).await.unwrap();
//!
//! let count = InMemoryProjection::<Count>::new("count");
//! let runner = Runner::new(store.clone(), count.clone());
//! assert_eq!(runner.catch_up().await.unwrap(), 1);
//! assert_eq!(count.read(|c| c.0), 1);
//! assert_eq!(runner.status().checkpoint, count.checkpoint());
//! # });
//! ```

mod active;
mod consumer;
mod deadletter;
mod effects;
mod lease;
mod memory;
mod poison;
mod process;
mod rebuild;
mod runner;
mod status;
mod supervisor;

pub use active::{ActiveVersion, MakeRunner};
pub use consumer::{checkpoint_name, partition_of, CheckpointMove, Consumer, ConsumerKind};
pub use deadletter::{DeadLetter, DeadLetterPolicy};
pub use effects::{Effects, SideEffect};
pub use lease::Lease;
pub use memory::{InMemoryProjection, ReadModel};
pub use process::{Process, ProcessManager, Steps};
pub use rebuild::{active_version, rebuild, switch_active_version, Progress};
pub use runner::{Runner, RunnerOptions};
pub use status::{ConsumerStatus, RunState};
pub use supervisor::{Supervised, Supervisor};
