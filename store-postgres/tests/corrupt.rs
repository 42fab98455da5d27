//! A stored row that does not decode is `Error::Corrupt` naming the event, never a panic.

mod common;

use recount::{Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};

#[test]
fn undecodable_rows_are_corrupt_errors_naming_event_and_stream() {
    common::run(
        "undecodable_rows_are_corrupt_errors_naming_event_and_stream",
        |db| async move {
            let store = db.store.clone();
            let s = StreamId::new("broken", "1").unwrap();
            let e = NewEvent::new("broken.thing", &serde_json::json!({ "a": 1 })).unwrap();
            let id = e.id;
            store
                .append(&s, ExpectedVersion::NoStream, vec![e])
                .await
                .unwrap();
            let mut conn = db.connection().await;

            sqlx::query("UPDATE recount.events SET schema_version = -3 WHERE event_id = $1")
                .bind(id)
                .execute(&mut conn)
                .await
                .unwrap();
            let check = |r: recount::Result<Vec<recount::RecordedEvent>>, stream: &str| match r {
                Err(Error::Corrupt {
                    event_id,
                    stream: got,
                    event_type,
                    reason,
                }) => {
                    assert_eq!(
                        (event_id, got.as_str(), event_type.as_str()),
                        (id, stream, "broken.thing")
                    );
                    assert!(reason.contains("schema version"), "{reason}");
                }
                other => panic!("expected a corrupt-row error, got {other:?}"),
            };
            check(store.read_stream(&s, 1, 10).await, "broken-1");
            check(
                store
                    .read_all(Cursor::START, &LogFilter::all(), 10)
                    .await
                    .map(|b| b.events),
                "broken-1",
            );
            let filtered = store
                .read_all(Cursor::START, &LogFilter::all().category("broken"), 10)
                .await;
            check(filtered.map(|b| b.events), "broken-1");

            // A stream id that is no longer valid.
            sqlx::query("UPDATE recount.events SET schema_version = 1, stream_id = E'bad\\x01id' WHERE event_id = $1")
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
            match store.read_all(Cursor::START, &LogFilter::all(), 10).await {
                Err(Error::Corrupt {
                    event_id,
                    stream,
                    reason,
                    ..
                }) => {
                    assert_eq!((event_id, stream.as_str()), (id, "bad\u{1}id"));
                    assert!(reason.contains("stream id"), "{reason}");
                }
                other => panic!("expected a corrupt-row error, got {other:?}"),
            }
        },
    );
}
