//! What each write does inside the writer's transaction: appends, deletes, snapshots and
//! checkpoints. These functions never commit; the writer does (see [`crate::writer`]).

use crate::error::{self, Kind};
use crate::queries;
use recount::{
    AppendResult, Cursor, Error, ExpectedVersion, Result, Snapshot, StreamId, ValidEvent,
};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

/// An append, checked against the input rules, waiting for the writer.
#[derive(Debug)]
pub(crate) struct Append {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<ValidEvent>,
}

/// `(version, deleted)` of a stream; `(0, false)` when it was never written.
pub(crate) fn stream_state(conn: &Connection, stream: &StreamId) -> Result<(u64, bool)> {
    let mut stmt = conn
        .prepare_cached(queries::STREAM_STATE)
        .map_err(error::db)?;
    let state = stmt
        .query_row([stream.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?))
        })
        .optional()
        .map_err(error::db)?;
    match state {
        Some((v, d)) => Ok((error::stored("stream version", v)?, d)),
        None => Ok((0, false)),
    }
}

/// Appends inside the writer's transaction (store contract, items 1–4).
///
/// The version is read inside the same `BEGIN IMMEDIATE` transaction that writes, so no other
/// connection or process can move it in between (item 5 of the issue: several processes on
/// one file stay correct).
/// Returns the result and how many events this call wrote (0 for an exact retry).
pub(crate) fn append(conn: &Connection, req: &Append) -> Result<(AppendResult, u64)> {
    let stream = &req.stream;
    let (actual, deleted) = stream_state(conn, stream)?;
    if deleted {
        return Err(Error::StreamDeleted {
            stream: stream.clone(),
        });
    }
    if !req.expected.matches(actual) {
        // An exact retry succeeds whatever its expected version (item 4).
        return match retry_result(conn, req, None)? {
            Some(done) => Ok((done, 0)),
            None => Err(Error::Conflict {
                stream: stream.clone(),
                expected: req.expected,
                actual,
            }),
        };
    }
    let recorded_at = chrono::Utc::now().timestamp_micros();
    let mut insert = conn
        .prepare_cached(queries::INSERT_EVENT)
        .map_err(error::db)?;
    let (mut version, mut first, mut last) = (actual, None, 0);
    for e in &req.events {
        version = version
            .checked_add(1)
            .ok_or_else(|| Error::invalid("events", "the stream is at the largest version"))?;
        let inserted = insert.insert(rusqlite::params![
            stream.as_str(),
            stream.category(),
            error::to_sql("stream version", version)?,
            e.id.as_bytes(),
            e.event_type,
            e.schema_version,
            e.payload.get(),
            e.metadata,
            recorded_at,
        ]);
        match inserted {
            Ok(position) => {
                first.get_or_insert(position);
                last = position;
            }
            // The happy path never looks ids up: the unique index tells us when one is
            // already stored, and only then do we find out whether this is a retry.
            Err(e) if error::classify(&e) == Kind::UniqueViolation => {
                return match retry_result(conn, req, first)? {
                    Some(done) => Ok((done, 0)),
                    None => Err(error::db(e)),
                };
            }
            Err(e) => return Err(error::db(e)),
        }
    }
    let stored_version = error::to_sql("stream version", version)?;
    conn.prepare_cached(queries::STREAM_SET_VERSION)
        .and_then(|mut s| s.execute(rusqlite::params![stream.as_str(), stored_version]))
        .map_err(error::db)?;
    let done = AppendResult {
        version,
        cursor: Cursor::from_position(error::stored("position", last)?),
    };
    Ok((done, req.events.len() as u64))
}

/// Store contract, item 4: when the append's ids are all stored, in this stream, in this
/// order and contiguous, the original result; when only some are, or elsewhere,
/// `DuplicateEvent`; when none are, `None`.
///
/// Rows at or after `ours_from` were written by this very append (before an insert failed)
/// and count as not stored.
fn retry_result(
    conn: &Connection,
    req: &Append,
    ours_from: Option<i64>,
) -> Result<Option<AppendResult>> {
    let mut lookup = conn
        .prepare_cached(queries::EVENT_BY_ID)
        .map_err(error::db)?;
    let mut found: Vec<Option<(String, u64, i64)>> = Vec::with_capacity(req.events.len());
    for e in &req.events {
        let row = lookup
            .query_row([e.id.as_bytes()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get(2)?))
            })
            .optional()
            .map_err(error::db)?;
        let row = match row {
            Some((s, v, p)) => Some((s, error::stored("stream version", v)?, p)),
            None => None,
        };
        found.push(row.filter(|(_, _, position)| ours_from.is_none_or(|ours| *position < ours)));
    }
    let Some(first) = found.iter().position(Option::is_some) else {
        return Ok(None);
    };
    let duplicate = |id: Uuid| Error::DuplicateEvent {
        event_id: id,
        stream: req.stream.clone(),
    };
    let Some((_, v0, _)) = &found[0] else {
        return Err(duplicate(req.events[first].id));
    };
    let mut last = None;
    for (i, f) in found.iter().enumerate() {
        match f {
            Some((s, v, position))
                if s == req.stream.as_str() && v0.checked_add(i as u64) == Some(*v) =>
            {
                last = Some((*v, *position))
            }
            _ => return Err(duplicate(req.events[first].id)),
        }
    }
    last.map(|(version, position)| {
        Ok(AppendResult {
            version,
            cursor: Cursor::from_position(error::stored("position", position)?),
        })
    })
    .transpose()
}

/// Tombstones a stream (item 8): later appends and reads fail, its events stay in the log.
pub(crate) fn delete(
    conn: &Connection,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> Result<()> {
    let (actual, deleted) = stream_state(conn, stream)?;
    if deleted {
        return Err(Error::StreamDeleted {
            stream: stream.clone(),
        });
    }
    if !expected.matches(actual) {
        return Err(Error::Conflict {
            stream: stream.clone(),
            expected,
            actual,
        });
    }
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map_err(error::db)
    };
    run(
        queries::STREAM_DELETE,
        &[&stream.as_str(), &error::to_sql("stream version", actual)?],
    )?;
    run(queries::DELETE_SNAPSHOT, &[&stream.as_str()])?;
    Ok(())
}

/// Keeps the newest snapshot: one of the same or a newer version replaces (item 9). One that
/// does not fit the stream (checked in this transaction, against the stream's version) is
/// refused.
pub(crate) fn save_snapshot(conn: &Connection, s: &Snapshot) -> Result<()> {
    let (actual, deleted) = stream_state(conn, &s.stream)?;
    if deleted {
        return Err(Error::StreamDeleted {
            stream: s.stream.clone(),
        });
    }
    s.check_fits(actual)?;
    let version = error::to_sql("snapshot version", s.version)?;
    conn.prepare_cached(queries::SAVE_SNAPSHOT)
        .and_then(|mut st| {
            st.execute(rusqlite::params![
                s.stream.as_str(),
                version,
                s.tag,
                s.state
            ])
        })
        .map_err(error::db)?;
    Ok(())
}

fn cursor_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Cursor> {
    Ok(Cursor::from_parts(
        r.get::<_, i64>(0)? as u64,
        r.get::<_, i64>(1)? as u64,
    ))
}

/// The named checkpoint. A cursor's parts are u64s kept bit for bit in SQLite's i64.
pub(crate) fn load_checkpoint(conn: &Connection, name: &str) -> Result<Option<Cursor>> {
    conn.prepare_cached(queries::LOAD_CHECKPOINT)
        .and_then(|mut s| s.query_row([name], cursor_at).optional())
        .map_err(error::db)
}

/// The named checkpoint and the state kept beside it.
pub(crate) fn load_checkpoint_state(
    conn: &Connection,
    name: &str,
) -> Result<Option<(Cursor, Option<String>)>> {
    conn.prepare_cached(queries::LOAD_CHECKPOINT_STATE)
        .and_then(|mut s| {
            s.query_row([name], |r| Ok((cursor_at(r)?, r.get(2)?)))
                .optional()
        })
        .map_err(error::db)
}

/// Compare-and-set of a checkpoint (item 10); `state: Some` replaces the state kept beside it,
/// `None` leaves it.
pub(crate) fn save_checkpoint(
    conn: &Connection,
    name: &str,
    expected: Option<Cursor>,
    new: Cursor,
    state: Option<Option<&str>>,
) -> Result<()> {
    let actual = load_checkpoint(conn, name)?;
    if actual != expected {
        return Err(Error::CheckpointConflict {
            name: name.to_owned(),
            expected,
            actual,
        });
    }
    let (major, minor) = (new.parts().0 as i64, new.parts().1 as i64);
    match state {
        None => conn
            .prepare_cached(queries::SET_CHECKPOINT)
            .and_then(|mut s| s.execute(rusqlite::params![name, major, minor])),
        Some(state) => conn
            .prepare_cached(queries::SET_CHECKPOINT_STATE)
            .and_then(|mut s| s.execute(rusqlite::params![name, major, minor, state])),
    }
    .map_err(error::db)?;
    Ok(())
}
