//! Metrics Recount emits through the [`metrics`](https://docs.rs/metrics) facade, so every
//! application gets them: install any recorder (a Prometheus exporter, say) and they appear;
//! without one they cost an atomic load each.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `recount_appends_total` | counter | `category` | appends that wrote events (an exact retry of a stored append is not counted) |
//! | `recount_events_appended_total` | counter | `category` | events written |
//! | `recount_append_conflicts_total` | counter | `category` | appends a repository saw refused for a version conflict |
//! | `recount_command_retries_total` | counter | `category` | commands decided again after a conflict |
//! | `recount_consumer_events_total` | counter | `consumer` | events a consumer handled (committed) |
//! | `recount_consumer_batches_total` | counter | `consumer` | batches committed |
//! | `recount_consumer_failures_total` | counter | `consumer` | failed attempts at a batch or event |
//! | `recount_consumer_parked_total` | counter | `consumer` | events parked as dead letters |
//! | `recount_consumer_lag` | gauge | `consumer` | events still to handle, as last measured |
//! | `recount_consumer_batch_seconds` | histogram | `consumer` | time to handle and commit one batch |
//! | `recount_relay_published_total` | counter | `relay` | messages a relay handed to its broker |
//! | `recount_relay_acknowledged_total` | counter | `relay` | of those, acknowledged by the broker |
//!
//! `consumer` is the checkpoint name (consumer, version, partition); `category` the stream
//! category. The functions below are for store, consumer and relay implementations outside
//! this crate, so that theirs count alike.
//!
//! ```
//! // A store's append, once the events are durable:
//! let stream = recount::StreamId::new("order", "42").unwrap();
//! recount::telemetry::appended(&stream, 3);
//! ```

#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub mod otlp;

use crate::StreamId;
use std::time::Duration;

/// Counts an append of `events` new events to `stream` (call once they are durable; not for
/// an exact retry that wrote nothing).
pub fn appended(stream: &StreamId, events: u64) {
    if events == 0 {
        return;
    }
    let category = stream.category().to_owned();
    metrics::counter!("recount_appends_total", "category" => category.clone()).increment(1);
    metrics::counter!("recount_events_appended_total", "category" => category).increment(events);
}

/// Counts an append refused for a version conflict, seen by a repository.
pub(crate) fn conflict(category: &str) {
    metrics::counter!("recount_append_conflicts_total", "category" => category.to_owned())
        .increment(1);
}

/// Counts a command decided again after a conflict.
pub(crate) fn command_retry(category: &str) {
    metrics::counter!("recount_command_retries_total", "category" => category.to_owned())
        .increment(1);
}

/// Counts a committed batch of `events` and how long it took.
pub(crate) fn batch(consumer: &str, events: u64, took: Duration) {
    let c = consumer.to_owned();
    metrics::counter!("recount_consumer_events_total", "consumer" => c.clone()).increment(events);
    metrics::counter!("recount_consumer_batches_total", "consumer" => c.clone()).increment(1);
    metrics::histogram!("recount_consumer_batch_seconds", "consumer" => c)
        .record(took.as_secs_f64());
}

/// Counts a failed attempt.
pub(crate) fn failure(consumer: &str) {
    metrics::counter!("recount_consumer_failures_total", "consumer" => consumer.to_owned())
        .increment(1);
}

/// Counts a parked event.
pub(crate) fn parked(consumer: &str) {
    metrics::counter!("recount_consumer_parked_total", "consumer" => consumer.to_owned())
        .increment(1);
}

/// Records a consumer's lag.
pub(crate) fn lag(consumer: &str, lag: u64) {
    metrics::gauge!("recount_consumer_lag", "consumer" => consumer.to_owned()).set(lag as f64);
}

/// Counts messages a relay published and those its broker acknowledged.
pub fn relayed(relay: &str, published: u64, acknowledged: u64) {
    let r = relay.to_owned();
    metrics::counter!("recount_relay_published_total", "relay" => r.clone()).increment(published);
    metrics::counter!("recount_relay_acknowledged_total", "relay" => r).increment(acknowledged);
}
