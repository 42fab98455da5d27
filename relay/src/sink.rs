//! The [`Sink`] trait and the [`Relay`] consumer that feeds it.

use async_trait::async_trait;
use recount::integration::{IntegrationEvent, Mapping};
use recount::projection::{CheckpointMove, Consumer, ConsumerKind};
use recount::{Cursor, Error, EventStore, LogFilter, RecordedEvent, Result};
use std::sync::Mutex;

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
    /// The next batch as mapped by [`Consumer::prepare`], in log order, while the last one
    /// was being published.
    prepared: Mutex<Vec<Prepared>>,
}

/// One event of a prepared batch and what it maps to (`None`: it stays private).
#[derive(Debug)]
struct Prepared {
    cursor: Cursor,
    id: uuid::Uuid,
    mapped: Option<IntegrationEvent>,
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
            prepared: Mutex::new(Vec::new()),
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

    /// Maps `events` after `after`, taking what [`Consumer::prepare`] mapped of the same
    /// events (same cursor and id) and mapping the rest here.
    fn map_all(
        &self,
        events: &[RecordedEvent],
        after: Option<Cursor>,
    ) -> Result<Vec<IntegrationEvent>> {
        let mut prepared = std::mem::take(&mut *lock(&self.prepared))
            .into_iter()
            .peekable();
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            if after.is_some_and(|at| event.cursor <= at) {
                continue;
            }
            // Both are in log order: skip what was prepared before this event.
            while prepared.next_if(|p| p.cursor < event.cursor).is_some() {}
            let mapped = match prepared.next_if(|p| p.cursor == event.cursor && p.id == event.id) {
                Some(p) => p.mapped,
                None => self
                    .mapping
                    .map(event)
                    .map_err(|e| Error::handler(&self.name, event.id, e))?,
            };
            out.extend(mapped);
        }
        // What is left is for later events (prepared before this batch was mapped): keep it
        // unless a newer preparation took its place.
        let rest: Vec<Prepared> = prepared.collect();
        let mut slot = lock(&self.prepared);
        if slot.is_empty() {
            *slot = rest;
        }
        Ok(out)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Maps the next batch while the last one is published; an event whose mapping fails
    /// is left for `commit` to map again and report.
    fn prepare(&self, events: &[RecordedEvent]) {
        let prepared = events
            .iter()
            .filter_map(|e| {
                let mapped = self.mapping.map(e).ok()?;
                Some(Prepared {
                    cursor: e.cursor,
                    id: e.id,
                    mapped,
                })
            })
            .collect();
        *lock(&self.prepared) = prepared;
    }

    async fn commit(&self, events: Vec<RecordedEvent>, checkpoint: CheckpointMove) -> Result<()> {
        let through = self.sink.published_through().await?;
        let mapped = self.map_all(&events, through)?;
        if !mapped.is_empty() {
            let n = mapped.len() as u64;
            // The domain events are no longer needed: they are freed while the broker works.
            let (published, ()) =
                tokio::join!(self.sink.publish(&mapped), async move { drop(events) });
            let acknowledged = if published.is_ok() { n } else { 0 };
            recount::telemetry::relayed(&self.name, n, acknowledged);
            published?;
        }
        self.store
            .save_checkpoint(&checkpoint.name, checkpoint.expected, checkpoint.new)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recount::integration::IntegrationMap;
    use recount::{InMemoryStore, StreamId};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A sink the mapping tests never publish to.
    struct Nowhere;

    #[async_trait]
    impl Sink for Nowhere {
        fn broker(&self) -> &'static str {
            "nowhere"
        }
        async fn published_through(&self) -> Result<Option<Cursor>> {
            Ok(None)
        }
        async fn publish(&self, _: &[IntegrationEvent]) -> Result<()> {
            unreachable!("the mapping tests publish nothing")
        }
    }

    fn event(n: u64, event_type: &str) -> RecordedEvent {
        RecordedEvent {
            id: uuid::Uuid::now_v7(),
            stream: StreamId::new("thing", "t1").unwrap(),
            version: n,
            cursor: Cursor::from_position(n),
            event_type: event_type.into(),
            schema_version: 1,
            payload: format!(r#"{{"n":{n}}}"#),
            metadata: "{}".into(),
            recorded_at: chrono::Utc::now(),
        }
    }

    /// A relay whose mapping counts its calls (public: `thing.happened`; `thing.private`
    /// stays private).
    fn relay(calls: Arc<AtomicUsize>) -> Relay<InMemoryStore, IntegrationMap, Nowhere> {
        let map = IntegrationMap::new()
            .on("thing.happened", "thing.happened", 1, move |e| {
                calls.fetch_add(1, Ordering::Relaxed);
                e.payload_as::<serde_json::Value>().map(Some)
            })
            .on("thing.private", "thing.private", 1, |_| {
                Ok(None::<serde_json::Value>)
            });
        Relay::new("t", InMemoryStore::new(), map, Nowhere)
    }

    #[test]
    fn a_prepared_batch_is_mapped_once_and_maps_as_commit_would() {
        let calls = Arc::new(AtomicUsize::new(0));
        let relay = relay(calls.clone());
        let batch: Vec<RecordedEvent> = (1..=6)
            .map(|n| {
                event(
                    n,
                    if n == 3 {
                        "thing.private"
                    } else {
                        "thing.happened"
                    },
                )
            })
            .collect();
        let fresh = relay.map_all(&batch, None).unwrap();
        assert_eq!(fresh.len(), 5, "the private event stays private");
        assert_eq!(calls.swap(0, Ordering::Relaxed), 5);

        // Prepared, then committed: nothing is mapped twice, and the result is the same.
        relay.prepare(&batch);
        assert_eq!(calls.swap(0, Ordering::Relaxed), 5);
        let prepared = relay.map_all(&batch, None).unwrap();
        assert_eq!(
            calls.load(Ordering::Relaxed),
            0,
            "commit used what prepare mapped"
        );
        let payloads = |v: &[IntegrationEvent]| -> Vec<(uuid::Uuid, String)> {
            v.iter().map(|e| (e.id, e.payload.clone())).collect()
        };
        assert_eq!(payloads(&prepared), payloads(&fresh));
    }

    #[test]
    fn commit_maps_itself_what_was_not_prepared_for_the_same_events() {
        let calls = Arc::new(AtomicUsize::new(0));
        let relay = relay(calls.clone());
        let batch: Vec<RecordedEvent> = (1..=6).map(|n| event(n, "thing.happened")).collect();
        relay.prepare(&batch[2..]);
        calls.store(0, Ordering::Relaxed);
        // The batch handed to commit starts earlier than the prepared one, and one event at
        // a prepared cursor is another event (a different id): both are mapped afresh.
        let mut handed = batch.clone();
        handed[4] = event(5, "thing.happened");
        let mapped = relay
            .map_all(&handed, Some(Cursor::from_position(1)))
            .unwrap();
        let ids: Vec<uuid::Uuid> = mapped.iter().map(|e| e.id).collect();
        let want: Vec<uuid::Uuid> = handed[1..].iter().map(|e| e.id).collect();
        assert_eq!(ids, want, "after the sink's position, in order, each once");
        assert_eq!(
            calls.load(Ordering::Relaxed),
            2,
            "event 2 and the replaced event 5"
        );
    }

    #[test]
    fn what_was_prepared_for_later_events_is_kept_for_the_next_commit() {
        let calls = Arc::new(AtomicUsize::new(0));
        let relay = relay(calls.clone());
        let batch: Vec<RecordedEvent> = (1..=6).map(|n| event(n, "thing.happened")).collect();
        relay.prepare(&batch[3..]);
        calls.store(0, Ordering::Relaxed);
        relay.map_all(&batch[..3], None).unwrap();
        relay.map_all(&batch[3..], None).unwrap();
        assert_eq!(
            calls.load(Ordering::Relaxed),
            3,
            "only the first three were mapped"
        );
    }
}
