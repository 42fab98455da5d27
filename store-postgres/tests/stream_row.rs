//! The stream row's updates stay on its page (issue 24, item 2): with the table's pages full,
//! every append to an existing stream moved its row to another page and added a primary-key
//! entry, and after each checkpoint that was a full-page image in the WAL per append.

mod common;

use recount::{EventStore, ExpectedVersion, NewEvent, StreamId};

fn event(n: u64) -> NewEvent {
    NewEvent::new("row.e", &serde_json::json!({ "n": n })).unwrap()
}

#[test]
fn appends_to_an_existing_stream_keep_its_row_on_its_page() {
    common::run(
        "appends_to_an_existing_stream_keep_its_row_on_its_page",
        |db| async move {
            // Enough streams to fill several pages at any fillfactor; the first sits on page 0.
            for i in 0..400u64 {
                let s = StreamId::new("row", &i.to_string()).unwrap();
                db.store
                    .append(&s, ExpectedVersion::NoStream, vec![event(i)])
                    .await
                    .unwrap();
            }
            let mut conn = db.connection().await;
            let block = "SELECT (ctid::text::point)[0]::int8 FROM recount.streams \
                 WHERE stream_id = 'row-0'";
            let before: i64 = sqlx::query_scalar(block)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let pages: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT (ctid::text::point)[0]) FROM recount.streams",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert!(pages > 1, "the streams span several pages");
            let s = StreamId::new("row", "0").unwrap();
            // Fewer updates than the free room holds, so no pruning is needed to stay.
            for v in 1..=30u64 {
                db.store
                    .append(&s, ExpectedVersion::Exact(v), vec![event(v)])
                    .await
                    .unwrap();
            }
            let after: i64 = sqlx::query_scalar(block)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(
                after, before,
                "every update of the row was HOT, on its own page"
            );
            let options: Vec<String> = sqlx::query_scalar(
                "SELECT unnest(reloptions) FROM pg_class WHERE oid = 'recount.streams'::regclass",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert_eq!(options, ["fillfactor=50"]);
        },
    );
}
