//! One active runner per projection across processes.

use crate::{Cursor, Error, EventStore, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A lease on a name, held by one holder until it expires, kept in the store's checkpoint
/// table (compare-and-set) so every store supports it with no table of its own.
///
/// The lease is a cursor `(holder, expires_at_ms)`. Taking an expired or free lease and
/// renewing one's own are compare-and-set operations, so two runners never both believe they
/// hold it. It is an optimisation, not the safety net: every batch is still fenced by the
/// projection checkpoint's compare-and-set, so a runner that lost its lease cannot commit over
/// the new holder's progress.
#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    holder: u64,
    ttl: Duration,
    held: Option<Cursor>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Lease {
    /// A lease on `name` for a holder with a random id, expiring `ttl` after each renewal.
    pub fn new(name: &str, ttl: Duration) -> Self {
        let holder = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .unwrap_or([1; 8]),
        ) | 1;
        Lease {
            name: format!("lease:{name}"),
            holder,
            ttl,
            held: None,
        }
    }

    /// This holder's id.
    pub fn holder(&self) -> u64 {
        self.holder
    }

    /// Takes the lease if it is free, expired or already ours; `Ok(false)` when another holder
    /// has it.
    pub async fn try_acquire<S: EventStore + ?Sized>(&mut self, store: &S) -> Result<bool> {
        let current = store.load_checkpoint(&self.name).await?;
        if let Some(c) = current {
            let (holder, expires) = c.parts();
            if holder != self.holder && expires > now_ms() {
                self.held = None;
                return Ok(false);
            }
        }
        let next = Cursor::from_parts(self.holder, now_ms() + self.ttl.as_millis() as u64);
        match store.save_checkpoint(&self.name, current, next).await {
            Ok(()) => {
                self.held = Some(next);
                Ok(true)
            }
            Err(Error::CheckpointConflict { .. }) => {
                self.held = None;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Extends a held lease; `Ok(false)` when it was lost (taken after expiring).
    pub async fn renew<S: EventStore + ?Sized>(&mut self, store: &S) -> Result<bool> {
        let Some(held) = self.held else {
            return Ok(false);
        };
        let next = Cursor::from_parts(self.holder, now_ms() + self.ttl.as_millis() as u64);
        match store.save_checkpoint(&self.name, Some(held), next).await {
            Ok(()) => {
                self.held = Some(next);
                Ok(true)
            }
            Err(Error::CheckpointConflict { .. }) => {
                self.held = None;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up so another runner can take it at once.
    pub async fn release<S: EventStore + ?Sized>(&mut self, store: &S) -> Result<()> {
        if let Some(held) = self.held.take() {
            let free = Cursor::from_parts(0, 0);
            match store.save_checkpoint(&self.name, Some(held), free).await {
                Ok(()) | Err(Error::CheckpointConflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether this holder believes it holds the lease (and it has not expired).
    pub fn is_held(&self) -> bool {
        self.held.is_some_and(|c| c.parts().1 > now_ms())
    }

    /// The lease's time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}
