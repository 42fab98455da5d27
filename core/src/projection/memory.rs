//! In-memory read models.

use super::{CheckpointMove, Consumer};
use crate::{Cursor, Error, LogFilter, RecordedEvent, Result};
use async_trait::async_trait;
use std::sync::{Arc, RwLock};

/// The state of an in-memory read model: how one event changes it.
pub trait ReadModel: Clone + Default + Send + Sync + 'static {
    /// Applies one event. An error fails the whole batch: nothing of it is kept.
    fn apply(&mut self, event: &RecordedEvent) -> Result<()>;
}

/// A projection whose read model lives in memory, beside its checkpoint, so the two always
/// change together. Cloning gives another handle to the same model.
///
/// A batch is applied to a copy that replaces the model only when every event applied, so
/// a handler failing half-way leaves the model and its checkpoint where they were.
#[derive(Debug)]
pub struct InMemoryProjection<M> {
    name: String,
    version: u32,
    filter: LogFilter,
    state: Arc<RwLock<(M, Option<Cursor>)>>,
}

impl<M> Clone for InMemoryProjection<M> {
    fn clone(&self) -> Self {
        InMemoryProjection {
            name: self.name.clone(),
            version: self.version,
            filter: self.filter.clone(),
            state: self.state.clone(),
        }
    }
}

impl<M: ReadModel> InMemoryProjection<M> {
    /// An empty read model named `name`, version 1, fed every event.
    pub fn new(name: impl Into<String>) -> Self {
        InMemoryProjection {
            name: name.into(),
            version: 1,
            filter: LogFilter::all(),
            state: Arc::new(RwLock::new((M::default(), None))),
        }
    }

    /// Sets the version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Sets the filter.
    pub fn with_filter(mut self, filter: LogFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Reads the model.
    pub fn read<T>(&self, f: impl FnOnce(&M) -> T) -> T {
        let guard = self.state.read().unwrap_or_else(|p| p.into_inner());
        f(&guard.0)
    }

    /// The model's checkpoint.
    pub fn checkpoint(&self) -> Option<Cursor> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).1
    }
}

#[async_trait]
impl<M: ReadModel> Consumer for InMemoryProjection<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn filter(&self) -> LogFilter {
        self.filter.clone()
    }

    async fn position(&self, _name: &str) -> Result<Option<Cursor>> {
        Ok(self.checkpoint())
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let staged = {
            let guard = self.state.read().unwrap_or_else(|p| p.into_inner());
            if guard.1 != checkpoint.expected {
                return Err(Error::CheckpointConflict {
                    name: checkpoint.name,
                    expected: checkpoint.expected,
                    actual: guard.1,
                });
            }
            if events.is_empty() {
                None
            } else {
                let mut model = guard.0.clone();
                for e in &events {
                    model.apply(e)?;
                }
                Some(model)
            }
        };
        let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
        if guard.1 != checkpoint.expected {
            return Err(Error::CheckpointConflict {
                name: checkpoint.name,
                expected: checkpoint.expected,
                actual: guard.1,
            });
        }
        if let Some(model) = staged {
            guard.0 = model;
        }
        guard.1 = Some(checkpoint.new);
        Ok(())
    }

    async fn drop_storage(&self) -> Result<()> {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = (M::default(), None);
        Ok(())
    }
}
