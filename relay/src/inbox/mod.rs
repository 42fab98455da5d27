//! Inboxes: the receiving side handles each integration event once in effect.
//!
//! Brokers deliver at least once: after a crash, a lost acknowledgement or a timeout, a
//! message comes again. An inbox records the event's id in the handler's own transaction,
//! beside the handler's writes: a redelivered event finds its id recorded and is
//! acknowledged without being handled again, and a handler that fails leaves no id behind.

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::{PgHandler, PgInbox};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteHandler, SqliteInbox};

use async_trait::async_trait;
use recount::integration::IntegrationEvent;
use recount::BoxError;

/// What an inbox did with a delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Handled now, and its id recorded with the handler's writes.
    Done,
    /// Its id was already recorded: handled before, nothing done.
    Duplicate,
}

/// Where a broker consumer hands each delivered event. An error leaves nothing recorded: the
/// consumer asks the broker to deliver the event again, up to its attempts, then dead-letters
/// it.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Handles `event` unless its id is recorded, and records it, in one transaction.
    async fn receive(&self, event: &IntegrationEvent) -> Result<Handled, BoxError>;
}

#[async_trait]
impl<I: Inbox + ?Sized> Inbox for std::sync::Arc<I> {
    async fn receive(&self, event: &IntegrationEvent) -> Result<Handled, BoxError> {
        (**self).receive(event).await
    }
}

/// How many times a consumer tries a message before it dead-letters it, and how long it
/// waits before a retry.
#[derive(Debug, Clone)]
pub struct Retries {
    /// Deliveries of one message before it is dead-lettered (default 5, at least 1).
    pub max_deliveries: u32,
    /// The pause before a failed message is delivered again (default 1 s).
    pub delay: std::time::Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            max_deliveries: 5,
            delay: std::time::Duration::from_secs(1),
        }
    }
}

/// What a consumer does with one delivery.
#[cfg_attr(
    not(any(feature = "nats", feature = "redis", feature = "rabbitmq")),
    allow(dead_code)
)]
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Handled (or a duplicate): acknowledge.
    Ack,
    /// Failed; deliver again later.
    Retry,
    /// Failed on its last delivery, or undecodable: dead-letter it, then acknowledge.
    DeadLetter(String),
}

#[cfg_attr(
    not(any(feature = "nats", feature = "redis", feature = "rabbitmq")),
    allow(dead_code)
)]
/// Hands a decoded delivery (its `delivery`-th, from 1) to `inbox`.
pub(crate) async fn deliver<I: Inbox + ?Sized>(
    inbox: &I,
    event: recount::Result<IntegrationEvent>,
    delivery: u64,
    retries: &Retries,
) -> Verdict {
    let event = match event {
        Ok(e) => e,
        Err(e) => return Verdict::DeadLetter(format!("undecodable message: {e}")),
    };
    match inbox.receive(&event).await {
        Ok(_) => Verdict::Ack,
        Err(e) if delivery >= u64::from(retries.max_deliveries.max(1)) => {
            tracing::warn!(event = %event.id, name = %event.name, error = %e, "dead-lettered");
            Verdict::DeadLetter(e.to_string())
        }
        Err(e) => {
            tracing::debug!(event = %event.id, delivery, error = %e, "handler failed; retrying");
            Verdict::Retry
        }
    }
}
