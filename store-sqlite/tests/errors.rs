//! Clear errors (issue item 6): a path that cannot be opened, a newer schema, a database
//! locked past the busy timeout, a stored row that does not decode.

use recount::{Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_sqlite::rusqlite::Connection;
use recount_sqlite::{SqliteError, SqliteEventStore, SqliteOptions};
use std::time::Duration;

fn event(n: u64) -> NewEvent {
    NewEvent::new("err.e", &serde_json::json!({ "n": n })).unwrap()
}

#[tokio::test]
async fn a_path_that_cannot_be_created_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("events.db");
    let err = SqliteEventStore::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the error names the path: {err}"
    );
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_recount_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    drop(SqliteEventStore::open(&path).await.unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match SqliteEventStore::open(&path).await {
        Err(Error::SchemaTooNew { found, supported }) => assert_eq!((found, supported), (99, 2)),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn reopening_keeps_the_data_and_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let s = StreamId::new("keep", "1").unwrap();
    let store = SqliteEventStore::open(&path).await.unwrap();
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1), event(2)])
        .await
        .unwrap();
    drop(store);
    let store = SqliteEventStore::open(&path).await.unwrap();
    assert_eq!(store.stream_version(&s).await.unwrap(), 2);
    let r = store
        .append(&s, ExpectedVersion::Exact(2), vec![event(3)])
        .await
        .unwrap();
    assert_eq!(
        r.cursor,
        Cursor::from_position(3),
        "positions continue after a reopen"
    );
}

#[tokio::test]
async fn a_database_locked_past_the_busy_timeout_is_a_retriable_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let opts = SqliteOptions {
        busy_timeout: Duration::from_millis(50),
        ..SqliteOptions::default()
    };
    let store = SqliteEventStore::open_with(&path, opts).await.unwrap();
    let s = StreamId::new("busy", "1").unwrap();
    // Another connection (as another process would) holds the write lock.
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap_err();
    assert!(
        err.is_retriable(),
        "a busy database is worth retrying: {err:?}"
    );
    let Error::Store { source, .. } = &err else {
        panic!("{err:?}")
    };
    let source = source
        .downcast_ref::<SqliteError>()
        .expect("a SqliteError source");
    assert!(
        matches!(source, SqliteError::GroupCommitFailed { .. }),
        "{source:?}"
    );
    assert!(err.to_string().contains("busy timeout"), "{err}");
    other.execute_batch("COMMIT").unwrap();
    let r = store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(r.version, 1, "the failed attempt wrote nothing");
}

#[tokio::test]
async fn a_row_that_does_not_decode_is_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let s = StreamId::new("rot", "1").unwrap();
    let (good, bad) = (event(1), event(2));
    let bad_id = bad.id;
    store
        .append(&s, ExpectedVersion::NoStream, vec![good, bad])
        .await
        .unwrap();
    // Invalid UTF-8 where the payload's text should be.
    let raw = Connection::open(&path).unwrap();
    let changed = raw
        .execute(
            "UPDATE events SET payload = x'7bff7d' WHERE event_id = ?1",
            [bad_id.as_bytes()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let check = |err: Error| match err {
        Error::Corrupt {
            event_id,
            stream,
            event_type,
            reason,
        } => {
            assert_eq!(
                (event_id, stream.as_str(), event_type.as_str()),
                (bad_id, "rot-1", "err.e")
            );
            assert!(reason.contains("payload"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    };
    check(store.read_stream(&s, 1, 10).await.unwrap_err());
    check(
        store
            .read_all(Cursor::START, &LogFilter::all(), 10)
            .await
            .unwrap_err(),
    );
    check(
        store
            .read_all(Cursor::START, &LogFilter::all().category("rot"), 10)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        store.read_stream(&s, 1, 1).await.unwrap().len(),
        1,
        "the rows before it still read"
    );

    // A metadata that is not JSON object text, and an event id that is not a UUID.
    raw.execute(
        "UPDATE events SET payload = '{}', metadata = 'oops' WHERE event_id = ?1",
        [bad_id.as_bytes()],
    )
    .unwrap();
    let err = store.read_stream(&s, 2, 10).await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { event_id, reason, .. } if *event_id == bad_id && reason.contains("metadata")),
        "{err:?}"
    );
    raw.execute(
        "UPDATE events SET metadata = '{}', event_id = x'01' WHERE event_id = ?1",
        [bad_id.as_bytes()],
    )
    .unwrap();
    let err = store.read_stream(&s, 2, 10).await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { stream, reason, .. } if stream == "rot-1" && reason.contains("event id")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_bounded_under_steady_appends_with_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let limit = 1u64 << 20;
    let opts = SqliteOptions {
        wal_limit_bytes: limit,
        ..SqliteOptions::default()
    };
    let store = SqliteEventStore::open_with(&path, opts).await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A reader that never pauses for long, as a live projection would.
    let reader = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store
                    .read_all(recount::Cursor::START, &recount::LogFilter::all(), 50)
                    .await
                    .unwrap();
                reads += 1;
            }
            reads
        }
    });
    let wal = path.with_extension("db-wal");
    let mut largest = 0;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let s = StreamId::new("wal", &w.to_string()).unwrap();
                for i in 0..600u64 {
                    let batch = (0..10).map(|k| event(i * 10 + k)).collect();
                    store.append(&s, ExpectedVersion::Any, batch).await.unwrap();
                }
            })
        })
        .collect();
    let mut written = 0;
    for w in writers {
        w.await.unwrap();
        written += 1;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    // Let the checkpoint thread take its next rounds, and look at the WAL meanwhile.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0 && written == 4);
    let total: u64 = std::fs::metadata(&path).unwrap().len();
    let now = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(
        total > 2 * limit,
        "the test wrote well past the limit: {total}"
    );
    assert!(
        now <= limit,
        "the WAL was brought back under the limit: {now} bytes (largest seen {largest})"
    );
}

/// Found by the `sqlite_row_decode` fuzz target: a stored schema version of 0 (or beyond
/// what PostgreSQL can hold) read back as if an append had accepted it.
#[tokio::test]
async fn a_schema_version_no_append_accepts_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let s = StreamId::new("rot", "2").unwrap();
    let e = event(1);
    let id = e.id;
    store
        .append(&s, ExpectedVersion::NoStream, vec![e])
        .await
        .unwrap();
    let raw = Connection::open(&path).unwrap();
    for bad in [0_i64, i64::from(recount::MAX_SCHEMA_VERSION) + 1, -1] {
        raw.execute(
            "UPDATE events SET schema_version = ?1 WHERE event_id = ?2",
            recount_sqlite::rusqlite::params![bad, id.as_bytes()],
        )
        .unwrap();
        let err = store.read_stream(&s, 1, 10).await.unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { event_id, reason, .. } if *event_id == id && reason.contains("schema version")),
            "schema version {bad}: {err:?}"
        );
    }
    raw.execute(
        "UPDATE events SET schema_version = 1 WHERE event_id = ?1",
        [id.as_bytes()],
    )
    .unwrap();
    assert_eq!(
        store.read_stream(&s, 1, 10).await.unwrap()[0].schema_version,
        1
    );
}

/// Positions and stream versions start at 1: a row at 0 was not written by an append; an
/// object that never closes is not object text.
#[tokio::test]
async fn a_position_or_stream_version_of_zero_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(&path).await.unwrap();
    let s = StreamId::new("rot", "3").unwrap();
    let e = event(1);
    let id = e.id;
    store
        .append(&s, ExpectedVersion::NoStream, vec![e])
        .await
        .unwrap();
    let raw = Connection::open(&path).unwrap();
    for (column, reason) in [
        ("stream_version", "bad stream version"),
        ("position", "bad position"),
    ] {
        raw.execute(
            &format!("UPDATE events SET {column} = 0 WHERE event_id = ?1"),
            [id.as_bytes()],
        )
        .unwrap();
        // From version 0: the range a read from the start covers.
        let err = store.read_stream(&s, 0, 10).await.unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { event_id, reason: r, .. } if *event_id == id && r == reason),
            "{column} 0: {err:?}"
        );
        raw.execute(
            &format!("UPDATE events SET {column} = 1 WHERE event_id = ?1"),
            [id.as_bytes()],
        )
        .unwrap();
    }
    // Text that opens an object and never closes it is not object text either.
    raw.execute(
        "UPDATE events SET payload = '{\"n\":1' WHERE event_id = ?1",
        [id.as_bytes()],
    )
    .unwrap();
    let err = store.read_stream(&s, 1, 10).await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { reason, .. } if reason.contains("payload")),
        "{err:?}"
    );
}
