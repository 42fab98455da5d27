//! Opening connections: pragmas, migrations, the schema version check.

use crate::error;
use crate::queries;
use crate::{SqliteOptions, SqliteSynchronous};
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, SchemaVersion, M};
use std::path::Path;
use std::time::Duration;

/// Statements cached per connection; the store uses fewer than this.
const STATEMENT_CACHE: usize = 32;

/// How often a migration that found the database locked by another process is retried.
const MIGRATION_ATTEMPTS: u32 = 20;

/// Opens (creating it when missing) the write connection and brings the schema up to date.
pub(crate) fn open_writer(path: &Path, opts: &SqliteOptions) -> recount::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut conn =
        Connection::open_with_flags(path, flags).map_err(|e| error::open(path.into(), e))?;
    conn.busy_timeout(opts.busy_timeout)
        .map_err(|e| error::open(path.into(), e))?;
    // The journal mode is stored in the file: WAL from the first open on.
    conn.query_row(queries::PRAGMA_WAL, [], |_| Ok(()))
        .map_err(|e| error::open(path.into(), e))?;
    let sync = match opts.synchronous {
        SqliteSynchronous::Normal => queries::PRAGMA_SYNC_NORMAL,
        SqliteSynchronous::Full => queries::PRAGMA_SYNC_FULL,
    };
    conn.execute_batch(sync).map_err(error::db)?;
    conn.execute_batch(queries::PRAGMA_TEMP_MEMORY)
        .map_err(error::db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Checkpoints (and their fsyncs) run on their own thread, off the commit path.
    conn.execute_batch(queries::PRAGMA_NO_AUTOCHECKPOINT)
        .map_err(error::db)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens the connection of the checkpoint thread.
pub(crate) fn open_checkpointer(
    path: &Path,
    busy_timeout: Duration,
) -> recount::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| error::open(path.into(), e))?;
    conn.busy_timeout(busy_timeout).map_err(error::db)?;
    conn.execute_batch(queries::PRAGMA_NO_AUTOCHECKPOINT)
        .map_err(error::db)?;
    Ok(conn)
}

/// Opens a read-only connection to a database that [`open_writer`] has set up.
pub(crate) fn open_reader(path: &Path, busy_timeout: Duration) -> recount::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| error::open(path.into(), e))?;
    conn.busy_timeout(busy_timeout).map_err(error::db)?;
    conn.execute_batch(queries::PRAGMA_TEMP_MEMORY)
        .map_err(error::db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn migrations() -> Migrations<'static> {
    Migrations::new(queries::MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Applies the embedded migrations (their bookkeeping is SQLite's `user_version`), refusing a
/// database migrated by a newer Recount.
fn migrate(conn: &mut Connection) -> recount::Result<()> {
    let migrations = migrations();
    let supported = queries::MIGRATIONS.len() as i64;
    let mut attempt = 0;
    loop {
        match migrations.current_version(conn).map_err(error::migration)? {
            SchemaVersion::Outside(found) => {
                return Err(recount::Error::SchemaTooNew {
                    found: usize::from(found) as i64,
                    supported,
                });
            }
            SchemaVersion::Inside(v) if usize::from(v) as i64 == supported => return Ok(()),
            SchemaVersion::Inside(_) | SchemaVersion::NoneSet => {}
        }
        match migrations.to_latest(conn).map_err(error::migration) {
            Ok(()) => return Ok(()),
            // Another process is migrating the same file: wait for it, then look again.
            Err(e) if e.is_retriable() && attempt < MIGRATION_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
            }
            Err(e) => return Err(e),
        }
    }
}
