//! Explicit notifications sent by process managers (stream `inbox-<user id>`).
//!
//! Most notifications are derived by the inbox read model from domain events; this aggregate
//! carries the ones a process decides (a merged pull request), deduplicated by key.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A user's sent notifications, by key.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbox {
    /// Keys of notifications sent.
    pub sent: BTreeSet<String>,
}

/// Why a notification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The same key sent twice.
    #[error("notification `{0}` was already sent")]
    AlreadySent(String),
    /// An empty message.
    #[error("a notification needs a message")]
    Empty,
}

#[aggregate(category = "inbox", error = InboxError)]
impl Inbox {
    /// A notification was sent to the user.
    #[event(name = "notification.sent")]
    fn sent(
        &mut self,
        user_id: String,
        kind: String,
        message: String,
        key: String,
        at: DateTime<Utc>,
    ) {
        self.sent.insert(key);
    }

    /// Sends a notification, once per `key`.
    pub fn notify(
        &self,
        user_id: &str,
        kind: &str,
        message: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxEvent>, InboxError> {
        if message.trim().is_empty() {
            return Err(InboxError::Empty);
        }
        if self.sent.contains(key) {
            return Err(InboxError::AlreadySent(key.to_owned()));
        }
        Ok(vec![InboxEvent::Sent {
            user_id: user_id.to_owned(),
            kind: kind.to_owned(),
            message: message.to_owned(),
            key: key.to_owned(),
            at: now,
        }])
    }
}
