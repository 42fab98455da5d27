//! The in-memory store: the whole store contract, in one process, for tests and prototypes.

use crate::{
    AppendResult, Cursor, Error, EventStore, ExpectedVersion, Limits, LogBatch, LogFilter,
    NewEvent, RecordedEvent, Result, Snapshot, StreamId,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// An [`EventStore`] in memory. Cloning gives another handle to the same store.
///
/// One lock guards everything, so every append is atomic and the global log has no gaps: a
/// position is drawn and filled under the same lock (store contract, items 3 and 5).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use recount::{EventStore, ExpectedVersion, InMemoryStore, NewEvent, StreamId};
/// let store = InMemoryStore::new();
/// let s = StreamId::new("counter", "1").unwrap();
/// let e = NewEvent::new("counter.added", &serde_json::json!({"by": 1})).unwrap();
/// let r = store.append(&s, ExpectedVersion::NoStream, vec![e]).await.unwrap();
/// assert_eq!(r.version, 1);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    inner: Arc<Mutex<Inner>>,
    appended: Arc<tokio::sync::Notify>,
    limits: Limits,
}

#[derive(Debug, Default)]
struct Inner {
    log: Vec<RecordedEvent>,
    streams: HashMap<StreamId, StreamEntry>,
    ids: HashMap<Uuid, (StreamId, u64)>,
    snapshots: HashMap<StreamId, Snapshot>,
    /// Each checkpoint's cursor and the state saved beside it.
    checkpoints: HashMap<String, (Cursor, Option<String>)>,
}

#[derive(Debug, Default)]
struct StreamEntry {
    /// Log index of each event; `positions[v - 1]` holds version `v`.
    positions: Vec<usize>,
    deleted: bool,
}

impl InMemoryStore {
    /// An empty store with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with other input limits.
    pub fn with_limits(limits: Limits) -> Self {
        InMemoryStore {
            limits,
            ..Self::default()
        }
    }

    /// How many events the global log holds.
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// `true` when nothing was ever appended.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written append: every mutation
        // happens after all checks, in infallible steps. So a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Store contract, item 4: an exact retry returns the original result; a partial or
    /// misplaced one is a duplicate.
    fn retry_result(&self, stream: &StreamId, ids: &[Uuid]) -> Result<Option<AppendResult>> {
        let found: Vec<Option<&(StreamId, u64)>> = ids.iter().map(|id| self.ids.get(id)).collect();
        let Some(first) = found.iter().position(Option::is_some) else {
            return Ok(None);
        };
        let duplicate = || Error::DuplicateEvent {
            event_id: ids[first],
            stream: stream.clone(),
        };
        let Some(Some((s0, v0))) = found.first() else {
            return Err(duplicate());
        };
        for (i, f) in found.iter().enumerate() {
            match f {
                Some((s, v)) if s == stream && s0 == stream && *v == v0 + i as u64 => {}
                _ => return Err(duplicate()),
            }
        }
        // Versions are lengths of in-memory vectors here, but index with checks anyway: a
        // store never panics on what it holds.
        let last = v0
            .checked_sub(1)
            .and_then(|before| before.checked_add(ids.len() as u64))
            .and_then(|v| usize::try_from(v).ok().map(|i| (v, i)));
        let found = last.and_then(|(version, i)| {
            let position = *self.streams.get(stream)?.positions.get(i.checked_sub(1)?)?;
            Some((version, self.log.get(position)?.cursor))
        });
        let Some((version, cursor)) = found else {
            return Err(duplicate());
        };
        Ok(Some(AppendResult { version, cursor }))
    }
}

#[async_trait]
impl EventStore for InMemoryStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        let events = self.limits.validate(events)?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let now = chrono::Utc::now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        if inner.streams.get(stream).is_some_and(|s| s.deleted) {
            return Err(Error::StreamDeleted {
                stream: stream.clone(),
            });
        }
        if let Some(done) = inner.retry_result(stream, &ids)? {
            return Ok(done);
        }
        let entry = inner.streams.entry(stream.clone()).or_default();
        let actual = entry.positions.len() as u64;
        if !expected.matches(actual) {
            return Err(Error::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        let mut version = actual;
        for e in events {
            version += 1;
            let index = inner.log.len();
            entry.positions.push(index);
            inner.ids.insert(e.id, (stream.clone(), version));
            inner.log.push(RecordedEvent {
                id: e.id,
                stream: stream.clone(),
                version,
                cursor: Cursor::from_position(index as u64 + 1),
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload.get().to_owned(),
                metadata: e.metadata,
                recorded_at: now,
            });
        }
        let cursor = Cursor::from_position(inner.log.len() as u64);
        crate::telemetry::appended(stream, version - actual);
        self.appended.notify_waiters();
        Ok(AppendResult { version, cursor })
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let inner = self.lock();
        let Some(entry) = inner.streams.get(stream) else {
            return Ok(Vec::new());
        };
        if entry.deleted {
            return Err(Error::StreamDeleted {
                stream: stream.clone(),
            });
        }
        let start = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(entry
            .positions
            .iter()
            .skip(start)
            .take(limit)
            .map(|&i| inner.log[i].clone())
            .collect())
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64> {
        let inner = self.lock();
        match inner.streams.get(stream) {
            Some(e) if e.deleted => Err(Error::StreamDeleted {
                stream: stream.clone(),
            }),
            Some(e) => Ok(e.positions.len() as u64),
            None => Ok(0),
        }
    }

    async fn read_all(&self, after: Cursor, filter: &LogFilter, limit: usize) -> Result<LogBatch> {
        // Bound the work of one filtered read so a follower of a rare event type still gets
        // regular progress (store contract, item 6).
        const SCAN_BOUND: usize = 65_536;
        let inner = self.lock();
        let start = usize::try_from(after.position())
            .unwrap_or(usize::MAX)
            .min(inner.log.len());
        let mut events = Vec::with_capacity(limit.min(1024));
        let mut last_seen = after;
        for e in inner.log[start..].iter().take(SCAN_BOUND.max(limit)) {
            if events.len() >= limit {
                break;
            }
            last_seen = e.cursor;
            if filter.matches(e.stream.category(), &e.event_type) {
                events.push(e.clone());
            }
        }
        Ok(LogBatch { events, last_seen })
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let mut inner = self.lock();
        let entry = inner.streams.entry(stream.clone()).or_default();
        if entry.deleted {
            return Err(Error::StreamDeleted {
                stream: stream.clone(),
            });
        }
        let actual = entry.positions.len() as u64;
        if !expected.matches(actual) {
            return Err(Error::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        entry.deleted = true;
        inner.snapshots.remove(stream);
        Ok(())
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let mut inner = self.lock();
        let version = match inner.streams.get(&snapshot.stream) {
            Some(e) if e.deleted => {
                return Err(Error::StreamDeleted {
                    stream: snapshot.stream,
                })
            }
            Some(e) => e.positions.len() as u64,
            None => 0,
        };
        snapshot.check_fits(version)?;
        match inner.snapshots.get(&snapshot.stream) {
            Some(old) if old.version > snapshot.version => {}
            _ => {
                inner.snapshots.insert(snapshot.stream.clone(), snapshot);
            }
        }
        Ok(())
    }

    async fn load_snapshot(&self, stream: &StreamId) -> Result<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(stream).cloned())
    }

    async fn count_after(&self, after: Cursor, filter: &LogFilter) -> Result<u64> {
        let inner = self.lock();
        let start = usize::try_from(after.position())
            .unwrap_or(usize::MAX)
            .min(inner.log.len());
        Ok(inner.log[start..]
            .iter()
            .filter(|e| filter.matches(e.stream.category(), &e.event_type))
            .count() as u64)
    }

    async fn wait_for_append(&self, after: Cursor, timeout: Duration) {
        let notified = self.appended.notified();
        if self.lock().log.len() as u64 > after.position() {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }

    async fn load_checkpoint(&self, name: &str) -> Result<Option<Cursor>> {
        crate::check_checkpoint_name(name)?;
        Ok(self.lock().checkpoints.get(name).map(|c| c.0))
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
    ) -> Result<()> {
        self.set_checkpoint(name, expected, new, None)
    }

    async fn load_checkpoint_state(&self, name: &str) -> Result<Option<(Cursor, Option<String>)>> {
        crate::check_checkpoint_name(name)?;
        Ok(self.lock().checkpoints.get(name).cloned())
    }

    async fn save_checkpoint_state(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<String>,
    ) -> Result<()> {
        self.set_checkpoint(name, expected, new, Some(state))
    }
}

impl InMemoryStore {
    /// The checkpoint compare-and-set; `state: None` keeps the stored state.
    fn set_checkpoint(
        &self,
        name: &str,
        expected: Option<Cursor>,
        new: Cursor,
        state: Option<Option<String>>,
    ) -> Result<()> {
        crate::check_checkpoint_name(name)?;
        let mut inner = self.lock();
        let stored = inner.checkpoints.get(name);
        let actual = stored.map(|c| c.0);
        if actual != expected {
            return Err(Error::CheckpointConflict {
                name: name.to_owned(),
                expected,
                actual,
            });
        }
        let state = match state {
            Some(state) => state,
            None => stored.and_then(|c| c.1.clone()),
        };
        inner.checkpoints.insert(name.to_owned(), (new, state));
        Ok(())
    }
}
