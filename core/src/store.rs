//! The store contract.

use crate::{
    AppendResult, Cursor, EventQuery, ExpectedVersion, LogBatch, LogFilter, NewEvent,
    RecordedEvent, Result, Snapshot, StreamId,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

#[doc = include_str!("docs/store_contract.md")]
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if it is at the `expected` version: all or nothing
    /// (items 1–4). An exact retry of a committed append returns the original result.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult>;

    /// Events of `stream` with version ≥ `from_version`, in version order, at most `limit`
    /// (item 7). A stream never written reads as empty; a deleted one is
    /// [`Error::StreamDeleted`](crate::Error::StreamDeleted).
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>>;

    /// The stream's current version (0 when it has no events).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64>;

    /// Up to `limit` committed events after `after` that pass `filter`, in log order, and the
    /// cursor up to which the store looked (items 5 and 6).
    async fn read_all(&self, after: Cursor, filter: &LogFilter, limit: usize) -> Result<LogBatch>;

    /// Tombstones `stream` if it is at the `expected` version (item 8).
    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()>;

    /// Saves a snapshot unless a newer one is stored (item 9).
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()>;

    /// The newest snapshot of `stream`.
    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>>;

    /// The named checkpoint.
    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>>;

    /// Sets the named checkpoint to `new` if it is at `expected` (`None`: not stored yet);
    /// otherwise [`Error::CheckpointConflict`](crate::Error::CheckpointConflict) (item 10).
    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> Result<()>;

    /// The named checkpoint with the state saved beside it by
    /// [`EventStore::save_checkpoint_state`] (`None` inside: a checkpoint saved without one).
    async fn load_checkpoint_state(&self, name: &str) -> Result<Option<(Cursor, Option<String>)>>;

    /// Like [`EventStore::save_checkpoint`], and in the same compare-and-set replaces the
    /// state kept beside the checkpoint with `state` (text, typically JSON, the store does not
    /// read it): both change, or neither (item 10). Consumers that keep a small state with
    /// their position (process managers, relays) commit through this, so a runner that lost
    /// its place can never save a state for a position it does not hold.
    ///
    /// [`EventStore::save_checkpoint`] leaves a stored state as it is.
    async fn save_checkpoint_state(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<String>,
    ) -> Result<()>;

    /// How many events after `after` pass `filter` (for progress reports and lag).
    ///
    /// The default pages through [`EventStore::read_all`]; SQL stores answer with one query.
    async fn count_after(&self, after: Cursor, filter: &LogFilter) -> Result<u64> {
        let mut n = 0;
        let mut at = after;
        loop {
            let batch = self.read_all(at, filter, 10_000).await?;
            if batch.events.is_empty() && batch.last_seen == at {
                return Ok(n);
            }
            n += batch.events.len() as u64;
            at = batch.last_seen;
        }
    }

    /// Up to `limit` committed events after `query.after` that pass every condition of
    /// `query`, in log order, and the cursor up to which the store looked, as
    /// [`EventStore::read_all`] (item 6): every matching event at or before `last_seen` is in
    /// this batch or an earlier one, so reading on from `last_seen` misses nothing.
    ///
    /// For people, not consumers (an events API, an operator's tool). The default pages
    /// through [`EventStore::read_all`] with the query's filter and checks the rest of the
    /// conditions on each event; SQL stores answer from their indexes.
    async fn query(&self, query: &EventQuery, limit: usize) -> Result<LogBatch> {
        let mut events = Vec::new();
        let mut at = query.after;
        while events.len() < limit {
            let batch = self.read_all(at, &query.filter, 1_000).await?;
            if batch.events.is_empty() && batch.last_seen == at {
                break;
            }
            for event in batch.events {
                if query.matches(&event) {
                    at = event.cursor;
                    events.push(event);
                    if events.len() == limit {
                        return Ok(LogBatch {
                            events,
                            last_seen: at,
                        });
                    }
                }
            }
            at = batch.last_seen;
        }
        Ok(LogBatch {
            events,
            last_seen: at,
        })
    }

    /// The committed event with id `id`, if any.
    ///
    /// The default pages through the whole log; SQL stores answer from their index.
    async fn read_event(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>> {
        let mut at = Cursor::START;
        loop {
            let batch = self.read_all(at, &LogFilter::all(), 1_000).await?;
            if let Some(e) = batch.events.into_iter().find(|e| e.id == id) {
                return Ok(Some(e));
            }
            if batch.last_seen == at {
                return Ok(None);
            }
            at = batch.last_seen;
        }
    }

    /// Waits until events may have been appended after `after`, or until `timeout` passes.
    ///
    /// A hint for followers of the global log, never a guarantee: callers read again either
    /// way. Stores that can be woken (in-process appends, PostgreSQL `LISTEN/NOTIFY`) return
    /// early; the default just sleeps for `timeout`.
    async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
        let _ = after;
        tokio::time::sleep(timeout).await;
    }
}

macro_rules! forward_store {
    ($ty:ty) => {
        #[async_trait]
        impl<S: EventStore + ?Sized> EventStore for $ty {
            async fn append(
                &self,
                stream: &StreamId,
                expected: ExpectedVersion,
                events: Vec<NewEvent>,
            ) -> Result<AppendResult> {
                (**self).append(stream, expected, events).await
            }
            async fn read_stream(
                &self,
                stream: &StreamId,
                from_version: u64,
                limit: usize,
            ) -> Result<Vec<RecordedEvent>> {
                (**self).read_stream(stream, from_version, limit).await
            }
            async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
                (**self).stream_version(stream).await
            }
            async fn read_all(
                &self,
                after: Cursor,
                filter: &LogFilter,
                limit: usize,
            ) -> Result<LogBatch> {
                (**self).read_all(after, filter, limit).await
            }
            async fn delete_stream(
                &self,
                stream: &StreamId,
                expected: ExpectedVersion,
            ) -> Result<()> {
                (**self).delete_stream(stream, expected).await
            }
            async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
                (**self).save_snapshot(snapshot).await
            }
            async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>> {
                (**self).load_snapshot(stream).await
            }
            async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>> {
                (**self).load_checkpoint(name).await
            }
            async fn save_checkpoint(
                &self,
                name: &str,
                expected: Option<Cursor>,
                new: Cursor,
            ) -> Result<()> {
                (**self).save_checkpoint(name, expected, new).await
            }
            async fn load_checkpoint_state(
                &self,
                name: &str,
            ) -> Result<Option<(Cursor, Option<String>)>> {
                (**self).load_checkpoint_state(name).await
            }
            async fn save_checkpoint_state(
                &self,
                name: &str,
                expected: Option<Cursor>,
                new: Cursor,
                state: Option<String>,
            ) -> Result<()> {
                (**self)
                    .save_checkpoint_state(name, expected, new, state)
                    .await
            }
            async fn count_after(&self, after: Cursor, filter: &LogFilter) -> Result<u64> {
                (**self).count_after(after, filter).await
            }
            async fn query(&self, query: &EventQuery, limit: usize) -> Result<LogBatch> {
                (**self).query(query, limit).await
            }
            async fn read_event(&self, id: uuid::Uuid) -> Result<Option<RecordedEvent>> {
                (**self).read_event(id).await
            }
            async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
                (**self).wait_for_append(after, timeout).await
            }
        }
    };
}

forward_store!(Arc<S>);
forward_store!(Box<S>);
