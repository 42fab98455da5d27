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
    /// The other holder found by the last refused [`Lease::try_acquire`].
    seen_holder: Option<u64>,
}

/// A random non-zero holder id.
pub(crate) fn random_holder() -> u64 {
    (uuid::Uuid::new_v4().as_u128() as u64) | 1
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
        Self::with_holder(name, ttl, random_holder())
    }

    /// A lease on `name` for the holder `holder` (non-zero: 0 marks a free lease). A runner
    /// keeps its holder id across restarts, so it takes back at once a lease it held.
    pub fn with_holder(name: &str, ttl: Duration, holder: u64) -> Self {
        Lease {
            name: format!("lease:{name}"),
            holder: holder.max(1),
            ttl,
            held: None,
            seen_holder: None,
        }
    }

    /// The holder of the lease on `name` as stored, while it has not expired.
    pub async fn holder_of<S: EventStore + ?Sized>(store: &S, name: &str) -> Result<Option<u64>> {
        Ok(store
            .load_checkpoint(&format!("lease:{name}"))
            .await?
            .map(Cursor::parts)
            .filter(|(holder, expires)| *holder != 0 && *expires > now_ms())
            .map(|(holder, _)| holder))
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
            if holder != self.holder && holder != 0 && expires > now_ms() {
                self.held = None;
                self.seen_holder = Some(holder);
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

    /// Who holds the lease as this holder last saw it: itself while it holds it, the other
    /// holder after a refused [`Lease::try_acquire`].
    pub fn last_seen_holder(&self) -> Option<u64> {
        if self.is_held() {
            Some(self.holder)
        } else {
            self.seen_holder
        }
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
