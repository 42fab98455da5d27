//! # Recount: event sourcing for Rust
//!
//! An aggregate is a plain struct whose state changes only by applying its events. Commands
//! read the state and decide which events happen; a [`Repository`] loads the aggregate from an
//! [`EventStore`], runs the command, and appends its events with optimistic concurrency,
//! deciding again when another writer got there first.
//!
//! ```
//! use recount::{Aggregate, CommandContext, Event, InMemoryStore, Repository};
//! use recount::aggregate::DecodeError;
//! use serde_json::value::RawValue;
//!
//! #[derive(Debug, Default)]
//! struct Counter { value: u64 }
//!
//! #[derive(Debug, Clone, PartialEq)]
//! enum CounterEvent { Added { by: u64 } }
//!
//! impl Event for CounterEvent {
//!     const EVENT_TYPES: &'static [&'static str] = &["counter.added"];
//!     fn event_type(&self) -> &'static str { "counter.added" }
//!     fn schema_version(&self) -> u32 { 1 }
//!     fn encode(&self) -> Result<Box<RawValue>, serde_json::Error> {
//!         let CounterEvent::Added { by } = self;
//!         serde_json::value::to_raw_value(&serde_json::json!({ "by": by }))
//!     }
//!     fn decode(event_type: &str, _version: u32, payload: &str) -> Result<Self, DecodeError> {
//!         #[derive(serde::Deserialize)]
//!         struct Added { by: u64 }
//!         match event_type {
//!             "counter.added" => Ok(CounterEvent::Added { by: serde_json::from_str::<Added>(payload)?.by }),
//!             other => Err(DecodeError::UnknownType(other.to_owned())),
//!         }
//!     }
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("the counter would pass its limit")]
//! struct TooBig;
//!
//! impl Aggregate for Counter {
//!     const CATEGORY: &'static str = "counter";
//!     type Event = CounterEvent;
//!     type Error = TooBig;
//!     fn apply(&mut self, event: CounterEvent) {
//!         match event { CounterEvent::Added { by } => self.value += by }
//!     }
//! }
//!
//! impl Counter {
//!     fn add(&self, by: u64) -> Result<Vec<CounterEvent>, TooBig> {
//!         if self.value + by > 10 { return Err(TooBig); }
//!         Ok(vec![CounterEvent::Added { by }])
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let repo = Repository::<Counter, _>::new(InMemoryStore::new());
//! let ctx = CommandContext::new().with_user("ada");
//! repo.execute("c1", &ctx, |c| c.add(4)).await.unwrap();
//! let done = repo.execute("c1", &ctx, |c| c.add(5)).await.unwrap();
//! assert_eq!((done.state.value, done.version), (9, 2));
//! assert!(repo.execute("c1", &ctx, |c| c.add(5)).await.is_err());
//! assert_eq!(repo.load("c1").await.unwrap().state.value, 9);
//! # });
//! ```
//!
//! Stores: [`InMemoryStore`] here; SQLite in `recount-sqlite`, PostgreSQL in
//! `recount-postgres`. Every store passes the conformance suite in `recount::testing`.

pub mod aggregate;
mod cursor;
mod error;
mod event;
mod memory;
mod repository;
mod store;
mod stream;
#[cfg(feature = "testing")]
pub mod testing;

pub use aggregate::{Aggregate, Event};
pub use cursor::Cursor;
pub use error::{BoxError, Error, Result};
pub use event::{
    AppendResult, Limits, LogBatch, LogFilter, Metadata, NewEvent, RecordedEvent, Snapshot,
    ValidEvent, MAX_EVENT_TYPE_LEN,
};
pub use memory::InMemoryStore;
pub use repository::{
    CommandContext, CommandError, Executed, Loaded, Repository, RepositoryStats,
};
pub use store::EventStore;
pub use stream::{ExpectedVersion, StreamId, MAX_STREAM_ID_LEN};

#[cfg(feature = "derive")]
pub use recount_derive::aggregate;

#[doc(hidden)]
pub mod __private {
    pub use serde;
    pub use serde_json;
}
