//! Database errors, classified once (STYLE.md, item 10).

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

/// Classifies `e` by its SQLSTATE class (or, for driver errors, by their kind).
pub(crate) fn classify(e: &sqlx::Error) -> DbErrorKind {
    match e {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return DbErrorKind::UniqueViolation;
            }
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            // 08: connection exception; 40: transaction rollback (serialization failure,
            // deadlock); 53: insufficient resources; 57P: operator intervention (shutdown,
            // crash recovery, cannot connect now).
            let transient = code.starts_with("08")
                || code.starts_with("40")
                || code.starts_with("53")
                || code.starts_with("57P");
            if transient {
                DbErrorKind::Transient
            } else {
                DbErrorKind::Permanent
            }
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
