//! Database errors, classified once, here; everything else matches on the classification.

use recount::Error;

/// What a database error means to the store. Everything else matches on this, never on an
/// error's text or on SQLSTATE strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbErrorKind {
    /// A unique constraint was violated: in an append, an event id already stored.
    UniqueViolation,
    /// Trying again may succeed: a lost connection, a busy or restarting server, a
    /// serialization failure or deadlock, an exhausted pool. The operation's outcome may be
    /// unknown.
    Transient,
    /// Retrying will not help.
    Permanent,
}

/// SQLSTATE classes after which trying again may succeed: 08 connection exception, 40
/// transaction rollback (serialization failure, deadlock), 53 insufficient resources.
const TRANSIENT_CLASSES: &[&str] = &["08", "40", "53"];

/// Single SQLSTATEs after which trying again may succeed: the server is shutting down,
/// restarting or not yet accepting connections.
const TRANSIENT_CODES: &[&str] = &[
    // object_not_in_prerequisite_state: among others "the database system is not accepting
    // connections" / "cannot connect now" while a server starts, stops or recovers.
    "55000",
    // admin_shutdown: the server (or an operator's pg_terminate_backend) ended the session.
    "57P01", // crash_shutdown: another backend crashed and the server is resetting.
    "57P02", // cannot_connect_now: the server is starting up or in recovery.
    "57P03",
    // database_dropped is 57P04: permanent, not listed.
    // idle_session_timeout: the session sat idle too long; a new one will do.
    "57P05",
];

/// Classifies `e` by its SQLSTATE (or, for driver errors, by their kind).
pub(crate) fn classify(e: &sqlx::Error) -> DbErrorKind {
    match e {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return DbErrorKind::UniqueViolation;
            }
            classify_sqlstate(db.code().as_deref().unwrap_or(""))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => DbErrorKind::Transient,
        _ => DbErrorKind::Permanent,
    }
}

/// Classifies a SQLSTATE other than a unique violation.
fn classify_sqlstate(code: &str) -> DbErrorKind {
    let class = code.get(..2).unwrap_or("");
    if TRANSIENT_CLASSES.contains(&class) || TRANSIENT_CODES.contains(&code) {
        DbErrorKind::Transient
    } else {
        DbErrorKind::Permanent
    }
}

/// Wraps a database error as [`Error::Store`], retriable when [`classify`] says so.
pub(crate) fn store_error(e: sqlx::Error) -> Error {
    match classify(&e) {
        DbErrorKind::Transient => Error::retriable(e),
        DbErrorKind::UniqueViolation | DbErrorKind::Permanent => Error::store(e),
    }
}

/// A version, position or count read from the database as the `u64` Recount uses; a negative
/// one (a row damaged outside Recount) is an error, never a wrapped huge number.
pub(crate) fn stored(what: &str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::store(format!("stored {what} {value} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// A server error with only a SQLSTATE, as the driver would hand it over.
    #[derive(Debug)]
    struct ServerError(&'static str);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "server error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            match self.0 {
                "23505" => sqlx::error::ErrorKind::UniqueViolation,
                _ => sqlx::error::ErrorKind::Other,
            }
        }
    }

    fn retriable(code: &'static str) -> bool {
        store_error(sqlx::Error::Database(Box::new(ServerError(code)))).is_retriable()
    }

    #[test]
    fn server_restarts_and_shutdowns_are_retriable_and_mistakes_are_not() {
        let transient = [
            "55000", "57P01", "57P02", "57P03", "57P05", "08006", "40001", "40P01", "53300",
        ];
        for code in transient {
            assert!(retriable(code), "{code} is retriable");
        }
        for code in [
            "57P04", "57014", "42601", "22P02", "23502", "23505", "55P03",
        ] {
            assert!(!retriable(code), "{code} is permanent");
        }
    }
}
