//! The one error type of Recount.

use crate::{Cursor, ExpectedVersion, StreamId};
use uuid::Uuid;

/// A boxed error from a storage engine or driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to an event store.
///
/// Command rejections are not here: they stay the aggregate's own error type, wrapped by
/// [`CommandError::Rejected`](crate::CommandError::Rejected).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream was not at the expected version; nothing was written.
    #[error("version conflict on `{stream}`: expected {expected}, actual version is {actual}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's true current version (0 for a stream with no events).
        actual: u64,
    },
    /// The stream was deleted (tombstoned); it can be neither read nor appended to.
    #[error("stream `{stream}` is deleted")]
    StreamDeleted {
        /// The deleted stream.
        stream: StreamId,
    },
    /// An event id of the append is already stored, but not as an exact retry of this append.
    #[error("event id {event_id} is already stored (appending to `{stream}`)")]
    DuplicateEvent {
        /// The first offending id.
        event_id: Uuid,
        /// The stream the append was for.
        stream: StreamId,
    },
    /// A checkpoint's compare-and-set failed: it was not at the expected cursor.
    #[error("checkpoint `{name}` conflict: expected {}, found {}", fmt_cursor(.expected), fmt_cursor(.actual))]
    CheckpointConflict {
        /// The checkpoint's name.
        name: String,
        /// What the caller expected (`None`: no checkpoint stored).
        expected: Option<Cursor>,
        /// What is stored.
        actual: Option<Cursor>,
    },
    /// The input was rejected before anything was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field (`stream id`, `payload`, `event type`, …).
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A stored event does not decode. The row is named so it can be found and repaired.
    #[error("stored event {event_id} (`{event_type}` in `{stream}`) is corrupt: {reason}")]
    Corrupt {
        /// The event's id (nil when the id itself is unreadable).
        event_id: Uuid,
        /// The stream the event belongs to.
        stream: String,
        /// The stored event type.
        event_type: String,
        /// What failed.
        reason: String,
    },
    /// An aggregate's stream holds an event type this build does not know.
    #[error("stream `{stream}` holds event type `{event_type}`, unknown to this build")]
    UnknownEventType {
        /// The stream read.
        stream: StreamId,
        /// The unknown type.
        event_type: String,
    },
    /// The database was migrated by a newer Recount than this one.
    #[error(
        "the database schema is version {found}, newer than this build supports ({supported})"
    )]
    SchemaTooNew {
        /// The schema version found in the database.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// A consumer's own code (a read model, a side effect, a process manager, a sink) failed
    /// on an event. The runner retries it, then applies the consumer's dead-letter policy.
    #[error("consumer `{consumer}` failed on event {event_id}: {source}")]
    Handler {
        /// The consumer's name.
        consumer: String,
        /// The event it failed on.
        event_id: Uuid,
        /// What the consumer's code returned.
        #[source]
        source: BoxError,
    },
    /// A consumer stopped on an error that retrying cannot fix: its dead-letter policy is
    /// [`DeadLetterPolicy::Stop`](crate::projection::DeadLetterPolicy::Stop) and an event kept
    /// failing, or the store refused something permanently. Nothing after the event was
    /// handled; fix the cause and start the runner again.
    #[error("consumer `{consumer}` stopped{}: {source}", .event_id.map(|id| format!(" at event {id}")).unwrap_or_default())]
    ConsumerStopped {
        /// The consumer's name.
        consumer: String,
        /// The event it stopped at, when one event is the cause.
        event_id: Option<Uuid>,
        /// The last error.
        #[source]
        source: Box<Error>,
    },
    /// The storage engine failed.
    #[error("store error: {source}")]
    Store {
        /// The engine's error.
        #[source]
        source: BoxError,
        /// Whether retrying may succeed (dropped connection, busy database, unknown outcome).
        retriable: bool,
    },
}

fn fmt_cursor(c: &Option<Cursor>) -> String {
    match c {
        Some(c) => format!("`{c}`"),
        None => "none".to_owned(),
    }
}

impl Error {
    /// `true` when the operation may succeed if tried again: a dropped connection, a busy
    /// database, or an append whose outcome is unknown. Conflicts are not retriable this way:
    /// they need a fresh decision.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                retriable: true,
                ..
            }
        )
    }

    /// Wraps an engine error that retrying will not fix.
    pub fn store(source: impl Into<BoxError>) -> Self {
        Error::Store {
            source: source.into(),
            retriable: false,
        }
    }

    /// Wraps an engine error after which retrying may succeed.
    pub fn retriable(source: impl Into<BoxError>) -> Self {
        Error::Store {
            source: source.into(),
            retriable: true,
        }
    }

    /// The error of a consumer's own code (`source`) on one event: [`Error::Handler`], or a
    /// retriable [`Error::Store`] when a retriable Recount error is among `source`'s causes
    /// (a handler whose command failed because the database was away), so the runner retries
    /// it without counting it against the event.
    pub fn handler(consumer: &str, event_id: Uuid, source: impl Into<BoxError>) -> Self {
        let source = source.into();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*source);
        while let Some(e) = cause {
            if e.downcast_ref::<Error>().is_some_and(Error::is_retriable) {
                return Error::retriable(source);
            }
            cause = e.source();
        }
        Error::Handler {
            consumer: consumer.to_owned(),
            event_id,
            source,
        }
    }

    /// An [`Error::InvalidInput`] for `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}

/// `Result` with Recount's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
