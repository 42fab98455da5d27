//! SQLite errors: classified once, here, and turned into [`recount::Error`].

use rusqlite::ffi;
use std::path::PathBuf;

/// What went wrong inside the SQLite store, carried as the source of
/// [`recount::Error::Store`]. Downcast the source to this type to tell the cases apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The database file could not be created or opened.
    #[error("cannot open SQLite database `{}`: {source}", path.display())]
    Open {
        /// The path given to `open`.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database stayed locked (by another connection or process) past the busy timeout.
    #[error("the SQLite database stayed locked past the busy timeout: {source}")]
    Busy {
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The migrations could not be applied.
    #[error("cannot migrate the SQLite schema: {source}")]
    Migration {
        /// The migration crate's error.
        #[source]
        source: rusqlite_migration::Error,
    },
    /// Any other SQLite error.
    #[error("SQLite error: {source}")]
    Engine {
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The group commit failed, so nothing of this operation (nor of the rest of its group)
    /// was stored. Retrying is safe.
    #[error("the group commit failed, nothing was stored: {reason}")]
    GroupCommitFailed {
        /// The commit's error, as text (it is shared by every operation of the group).
        reason: String,
    },
    /// The writer thread is gone (it panicked, or the store is shutting down).
    #[error("the SQLite writer thread is gone")]
    WriterGone,
    /// A number read from the database (a version, a position) is outside the range Recount
    /// uses: the row was damaged outside Recount. Reported rather than wrapped around.
    #[error("stored {what} {value} is out of range")]
    OutOfRange {
        /// What the number is (`stream version`, `position`, …).
        what: &'static str,
        /// The stored value.
        value: i64,
    },
    /// A projection transaction's closure panicked; its writes were rolled back.
    #[error("a projection transaction panicked: {message}")]
    Panicked {
        /// The panic message, when it was text.
        message: String,
    },
}

/// The kinds of database error the store acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A unique index refused a row (for an event insert: the event id is already stored).
    UniqueViolation,
    /// The database is locked past the busy timeout; retrying may succeed.
    Busy,
    /// Anything else.
    Other,
}

/// The one place where SQLite errors are classified: by result code, never by message text.
pub(crate) fn classify(e: &rusqlite::Error) -> Kind {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => Kind::Busy,
            ffi::ErrorCode::ConstraintViolation
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                Kind::UniqueViolation
            }
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

/// A SQLite error as a [`recount::Error::Store`], retriable when the database was busy.
pub(crate) fn db(e: rusqlite::Error) -> recount::Error {
    match classify(&e) {
        Kind::Busy => recount::Error::retriable(SqliteError::Busy { source: e }),
        Kind::UniqueViolation | Kind::Other => {
            recount::Error::store(SqliteError::Engine { source: e })
        }
    }
}

/// An error opening `path`, naming it.
pub(crate) fn open(path: PathBuf, e: rusqlite::Error) -> recount::Error {
    let retriable = classify(&e) == Kind::Busy;
    recount::Error::Store {
        source: Box::new(SqliteError::Open { path, source: e }),
        retriable,
    }
}

/// An error applying the migrations; busy when another process holds the lock.
pub(crate) fn migration(e: rusqlite_migration::Error) -> recount::Error {
    let busy = match &e {
        rusqlite_migration::Error::RusqliteError { err, .. } => classify(err) == Kind::Busy,
        _ => false,
    };
    recount::Error::Store {
        source: Box::new(SqliteError::Migration { source: e }),
        retriable: busy,
    }
}

/// What every operation of a group gets when the group's commit failed.
pub(crate) fn group_commit_failed(e: &recount::Error) -> recount::Error {
    recount::Error::retriable(SqliteError::GroupCommitFailed {
        reason: e.to_string(),
    })
}

/// What callers get when the writer thread cannot answer.
pub(crate) fn writer_gone() -> recount::Error {
    // The operation may or may not have been committed before the writer died.
    recount::Error::retriable(SqliteError::WriterGone)
}

/// A version or position read from the database as the `u64` Recount uses; a negative one is
/// an error, never a wrapped huge number.
pub(crate) fn stored(what: &'static str, value: i64) -> recount::Result<u64> {
    u64::try_from(value).map_err(|_| recount::Error::store(SqliteError::OutOfRange { what, value }))
}

/// A `u64` as SQLite's `i64`; beyond `i64::MAX` is refused as invalid input.
pub(crate) fn to_sql(what: &'static str, value: u64) -> recount::Result<i64> {
    i64::try_from(value)
        .map_err(|_| recount::Error::invalid(what, format!("{value} is larger than {}", i64::MAX)))
}
