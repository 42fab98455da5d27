//! The context a command runs in, copied into its events' metadata.

use crate::{Error, Metadata};
use uuid::Uuid;

/// Who sends a command and as part of what; copied into the metadata of every event it causes.
///
/// ```
/// use recount::CommandContext;
/// let ctx = CommandContext::new().with_user("ada").with_command_id(uuid::Uuid::now_v7());
/// assert_eq!(ctx.user_id.as_deref(), Some("ada"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandContext {
    /// Shared by everything that follows from one request; a fresh one is drawn when unset.
    pub correlation_id: Option<Uuid>,
    /// The event or command that caused this command.
    pub causation_id: Option<Uuid>,
    /// The user on whose behalf the command runs.
    pub user_id: Option<String>,
    /// The command's own id. When set, event ids are derived from it (UUID v5, see
    /// [`command_event_id`](crate::command_event_id)), so executing the same command twice writes
    /// its events once: a repeat finds them in the stream and returns without deciding again
    /// (or, when a snapshot already covers them, decides again and the store recognises the
    /// same ids).
    pub command_id: Option<Uuid>,
    /// Free key/values copied into every event's metadata.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl CommandContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the user id.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the correlation id.
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the command id, making the command idempotent.
    pub fn with_command_id(mut self, id: Uuid) -> Self {
        self.command_id = Some(id);
        self
    }

    /// A context for a command caused by a stored event: same correlation id (or the event's
    /// id when it had none), causation id set to the event's id.
    pub fn caused_by(event: &crate::RecordedEvent) -> Result<Self, Error> {
        let meta = event.metadata()?;
        Ok(CommandContext {
            correlation_id: Some(meta.correlation_id.unwrap_or(event.id)),
            causation_id: Some(event.id),
            user_id: meta.user_id,
            command_id: None,
            extra: serde_json::Map::new(),
        })
    }

    pub(crate) fn metadata(&self, correlation_id: Uuid) -> Metadata {
        Metadata {
            correlation_id: Some(correlation_id),
            causation_id: self.causation_id,
            user_id: self.user_id.clone(),
            extra: self.extra.clone(),
        }
    }
}
