//! The in-memory store's raw baseline: a vector and an index under one lock.

use super::{RawEvent, RawRow, RawStore, StorePair};
use async_trait::async_trait;
use recount::{Error, InMemoryStore, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The in-memory baseline: the same bookkeeping (log, per-stream index, version check) with
/// none of Recount's types, validation or idempotency.
#[derive(Debug, Default)]
pub struct MemoryRaw {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    log: Vec<RawRow>,
    streams: HashMap<String, Vec<usize>>,
    snapshots: HashMap<String, (u64, String)>,
}

impl MemoryRaw {
    /// A fresh pair: an in-memory store and this baseline (they share nothing: memory has no
    /// common engine to share; both do the same work on their own data).
    pub fn pair() -> StorePair {
        StorePair {
            name: "memory",
            store: Arc::new(InMemoryStore::new()),
            raw: Arc::new(MemoryRaw::default()),
        }
    }
}

#[async_trait]
impl RawStore for MemoryRaw {
    async fn append_expecting(
        &self,
        stream: &str,
        version_before: u64,
        events: &[RawEvent],
    ) -> Result<bool> {
        let mut inner = self.inner.lock().map_err(|_| Error::store("poisoned"))?;
        let inner = &mut *inner;
        let index = inner.streams.entry(stream.to_owned()).or_default();
        if index.len() as u64 != version_before {
            return Ok(false);
        }
        for e in events {
            index.push(inner.log.len());
            let n = inner.log.len() as i64 + 1;
            inner.log.push(RawRow {
                id: e.id,
                stream: stream.to_owned(),
                version: index.len() as i64,
                position: (0, n),
                event_type: e.event_type.to_owned(),
                schema_version: 1,
                payload: e.payload.clone(),
                metadata: e.metadata.clone(),
            });
        }
        Ok(true)
    }

    async fn read_stream(&self, stream: &str, from: u64) -> Result<Vec<RawRow>> {
        let inner = self.inner.lock().map_err(|_| Error::store("poisoned"))?;
        let Some(index) = inner.streams.get(stream) else {
            return Ok(Vec::new());
        };
        Ok(index
            .iter()
            .skip(from.saturating_sub(1) as usize)
            .map(|&i| inner.log[i].clone())
            .collect())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<(u64, String)>> {
        let inner = self.inner.lock().map_err(|_| Error::store("poisoned"))?;
        Ok(inner.snapshots.get(stream).cloned())
    }

    async fn seed(&self, stream: &str, version_before: u64, events: &[RawEvent]) -> Result<()> {
        self.append(stream, version_before, events).await
    }

    async fn seed_snapshot(&self, stream: &str, version: u64, state: &str) -> Result<()> {
        let mut inner = self.inner.lock().map_err(|_| Error::store("poisoned"))?;
        inner
            .snapshots
            .insert(stream.to_owned(), (version, state.to_owned()));
        Ok(())
    }

    async fn read_log(&self, after: (i64, i64), limit: usize) -> Result<Vec<RawRow>> {
        let inner = self.inner.lock().map_err(|_| Error::store("poisoned"))?;
        let start = (after.1.max(0) as usize).min(inner.log.len());
        Ok(inner.log[start..].iter().take(limit).cloned().collect())
    }
}
