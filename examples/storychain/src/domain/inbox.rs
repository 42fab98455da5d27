//! Explicit notifications sent by process managers, and how far the user has read (stream
//! `inbox-<user id>`).
//!
//! Most notifications are derived by the inbox read model from domain events; this aggregate
//! carries the ones a process decides (a merged pull request), deduplicated by key, and the
//! user's "read through" mark.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A user's sent notifications, by key.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbox {
    /// Keys of notifications sent.
    pub sent: BTreeSet<String>,
    /// Every notification up to this time is read.
    #[serde(default)]
    pub read_through: Option<DateTime<Utc>>,
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

    /// The user read every notification up to `through`.
    #[event(name = "inbox.read")]
    fn read(&mut self, user_id: String, through: DateTime<Utc>, at: DateTime<Utc>) {
        self.read_through = self.read_through.max(Some(through));
    }

    /// Marks every notification up to `through` read; nothing when they already are.
    pub fn mark_read(
        &self,
        user_id: &str,
        through: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxEvent>, InboxError> {
        if self.read_through.is_some_and(|t| t >= through) {
            return Ok(Vec::new());
        }
        Ok(vec![InboxEvent::Read {
            user_id: user_id.to_owned(),
            through,
            at: now,
        }])
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
