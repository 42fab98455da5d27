//! Username reservations: one stream per username, so uniqueness is a stream-version check.

use chrono::{DateTime, Utc};
use recount::aggregate;
use serde::{Deserialize, Serialize};

/// A username's reservation (stream `username-<name>`). The first `reserve` appends at
/// version 0; a racing second one conflicts, is decided again, and is rejected.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Username {
    /// The user holding the name.
    pub owner: Option<String>,
}

/// Why a reservation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Someone holds the name already.
    #[error("username `{0}` is taken")]
    Taken(String),
    /// The name is empty, too long, or has characters outside `a-z`, `0-9`, `_`.
    #[error("username `{0}` is not valid: 3 to 30 characters of a-z, 0-9 and _")]
    Invalid(String),
}

/// Whether `name` is a valid username: 3–30 characters of `a-z`, `0-9`, `_`.
pub fn valid_username(name: &str) -> bool {
    (3..=30).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[aggregate(category = "username", error = UsernameError)]
impl Username {
    /// The name was reserved for a user.
    #[event(name = "username.reserved")]
    fn reserved(&mut self, username: String, user_id: String, at: DateTime<Utc>) {
        self.owner = Some(user_id);
    }

    /// Reserves `username` for `user_id`.
    pub fn reserve(
        &self,
        username: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<UsernameEvent>, UsernameError> {
        if !valid_username(username) {
            return Err(UsernameError::Invalid(username.to_owned()));
        }
        if self.owner.is_some() {
            return Err(UsernameError::Taken(username.to_owned()));
        }
        Ok(vec![UsernameEvent::Reserved {
            username: username.to_owned(),
            user_id: user_id.to_owned(),
            at: now,
        }])
    }
}
