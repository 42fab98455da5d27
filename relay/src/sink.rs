//! The [`Sink`] trait and the [`Relay`] consumer that feeds it.

use async_trait::async_trait;
use recount::integration::{IntegrationEvent, Mapping};
use recount::projection::{CheckpointMove, Consumer, ConsumerKind};
use recount::{Cursor, Error, EventStore, LogFilter, RecordedEvent, Result};

/// Where a [`Relay`] publishes integration events: a broker, through its client.
///
/// A sink publishes a batch **in order** and returns only once the broker acknowledged every
/// event of it (a JetStream ack, a Redis script's reply, a RabbitMQ publisher confirm). The
/// relay moves its checkpoint after that, so nothing is lost: an event is published at least
/// once. A sink that also knows, from the broker itself, how far it got
/// ([`Sink::published_through`]) lets the relay skip what the broker already holds after a
/// crash, so each event is published exactly once in effect, however long the relay was away.
///
/// Errors: a broker or connection failure is [`Error::retriable`] (the runner retries with
/// backoff and never dies of it); a broker refusing one event for good is
/// [`Error::handler`] naming the event, which the runner isolates and parks.
///
/// # A Kafka sink
///
/// Kafka is not built in; a sink for it (with `rdkafka`) would give the same guarantee this
/// way:
/// - **Producer**: `enable.idempotence = true`, `acks = all`,
///   `max.in.flight.requests.per.connection <= 5`, so retries inside the client neither
///   duplicate nor reorder; the key of each record is the source stream id (one partition
///   per stream keeps log order per stream); the record's headers carry the event id, name,
///   version, correlation and causation ids, and the cursor.
/// - **Transactions**: `transactional.id = "recount-relay-<name>"`. `publish` runs
///   `begin_transaction`, produces the batch's records, produces one record
///   `{relay: <name>, cursor: <last cursor>}` to a compacted `recount-relay-positions` topic,
///   and `commit_transaction`: the events and the position are visible together or not at
///   all (consumers read with `isolation.level = read_committed`). `init_transactions` at
///   start fences a zombie relay with the same transactional id (its epoch is bumped).
/// - **`published_through`** reads the newest committed position record for the relay (the
///   compacted topic, read committed, up to the high watermark).
///
/// A failed transaction is aborted and returned as [`Error::retriable`]; the relay then asks
/// `published_through` again before republishing.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// The broker, for logs and errors (`nats`, `redis`, `rabbitmq`).
    fn broker(&self) -> &'static str;

    /// The cursor of the last event this relay's sink has durably published, as the broker
    /// knows it; `None` when it published nothing, or when the broker cannot tell (then
    /// delivery is at least once). Called before each batch: cache it, and forget the cache
    /// when a publish fails.
    async fn published_through(&self) -> Result<Option<Cursor>>;

    /// Publishes `events` in order and returns once the broker acknowledged all of them.
    /// `events` is never empty.
    async fn publish(&self, events: &[IntegrationEvent]) -> Result<()>;
}

#[async_trait]
impl<K: Sink + ?Sized> Sink for std::sync::Arc<K> {
    fn broker(&self) -> &'static str {
        (**self).broker()
    }
    async fn published_through(&self) -> Result<Option<Cursor>> {
        (**self).published_through().await
    }
    async fn publish(&self, events: &[IntegrationEvent]) -> Result<()> {
        (**self).publish(events).await
    }
}

/// A relay: a [`Consumer`] (kind [`ConsumerKind::Relay`]) that maps each domain event with a
/// [`Mapping`] and publishes what it maps to a [`Sink`], in log order, moving its checkpoint
/// (kept in the store `S`) only after the sink acknowledged the batch.
///
/// Run it on a [`Runner`](recount::projection::Runner) like any consumer: the runner reads
/// only the events the mapping's filter names, retries broker failures with backoff, holds
/// the lease, and parks an event the mapping or the broker keeps refusing.
///
/// Before publishing, the relay drops the events the broker already holds
/// ([`Sink::published_through`]): after a crash between the broker's acknowledgement and the
/// checkpoint, nothing is published twice.
#[derive(Debug)]
pub struct Relay<S, M, K> {
    name: String,
    store: S,
    mapping: M,
    sink: K,
}

impl<S: EventStore, M: Mapping, K: Sink> Relay<S, M, K> {
    /// A relay named `name` (its checkpoint is `relay:<name>`) publishing `mapping`'s events
    /// from `store` to `sink`.
    pub fn new(name: impl Into<String>, store: S, mapping: M, sink: K) -> Self {
        Relay {
            name: name.into(),
            store,
            mapping,
            sink,
        }
    }

    /// The sink.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The mapping.
    pub fn mapping(&self) -> &M {
        &self.mapping
    }

    fn map_all(
        &self,
        events: &[RecordedEvent],
        after: Option<Cursor>,
    ) -> Result<Vec<IntegrationEvent>> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            if after.is_some_and(|at| event.cursor <= at) {
                continue;
            }
            match self.mapping.map(event) {
                Ok(Some(mapped)) => out.push(mapped),
                Ok(None) => {}
                Err(e) => return Err(Error::handler(&self.name, event.id, e)),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl<S: EventStore, M: Mapping, K: Sink> Consumer for Relay<S, M, K> {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ConsumerKind {
        ConsumerKind::Relay
    }

    fn filter(&self) -> LogFilter {
        self.mapping.filter()
    }

    async fn position(&self, name: &str) -> Result<Option<Cursor>> {
        self.store.load_checkpoint(name).await
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let through = self.sink.published_through().await?;
        let mapped = self.map_all(&events, through)?;
        if !mapped.is_empty() {
            let n = mapped.len() as u64;
            let published = self.sink.publish(&mapped).await;
            let acknowledged = if published.is_ok() { n } else { 0 };
            recount::telemetry::relayed(&self.name, n, acknowledged);
            published?;
        }
        self.store
            .save_checkpoint(&checkpoint.name, checkpoint.expected, checkpoint.new)
            .await
    }
}
