//! `commit_with_checkpoint`: a projection's writes and its checkpoint commit together or not
//! at all (store contract, item 10).

mod common;

use futures::FutureExt;
use recount::{Cursor, Error, EventStore};
use recount_postgres::PgEventStore;
use sqlx::PgConnection;
use std::sync::Arc;

async fn rows(db: &common::TestDb) -> i64 {
    let mut conn = db.connection().await;
    sqlx::query_scalar("SELECT count(*) FROM read_model")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn create_read_model(db: &common::TestDb) {
    let mut conn = db.connection().await;
    sqlx::query("CREATE TABLE read_model (id serial PRIMARY KEY, note text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn insert_note(conn: &mut PgConnection, note: &str) -> recount::Result<()> {
    sqlx::query("INSERT INTO read_model (note) VALUES ($1)")
        .bind(note)
        .execute(conn)
        .await
        .map(drop)
        .map_err(Error::store)
}

async fn project(
    store: &PgEventStore,
    expected: Option<Cursor>,
    new: Cursor,
    note: &'static str,
    fail: bool,
) -> recount::Result<u32> {
    store
        .commit_with_checkpoint("notes", expected, new, move |conn| {
            async move {
                insert_note(conn, note).await?;
                if fail {
                    return Err(Error::invalid("projection", "the handler failed"));
                }
                Ok(7)
            }
            .boxed()
        })
        .await
}

#[test]
fn projection_writes_and_checkpoint_commit_together_or_not_at_all() {
    common::run(
        "projection_writes_and_checkpoint_commit_together_or_not_at_all",
        |db| async move {
            create_read_model(&db).await;
            let store = db.store.clone();
            let (c1, c2) = (Cursor::from_parts(10, 1), Cursor::from_parts(11, 4));

            // Both commit, and the closure's value comes back.
            assert_eq!(project(&store, None, c1, "first", false).await.unwrap(), 7);
            assert_eq!(
                (
                    rows(&db).await,
                    store.load_checkpoint("notes").await.unwrap()
                ),
                (1, Some(c1))
            );

            // The handler fails: neither its row nor the checkpoint move.
            let failed = project(&store, Some(c1), c2, "lost", true).await;
            assert!(
                matches!(failed, Err(Error::InvalidInput { .. })),
                "{failed:?}"
            );
            assert_eq!(
                (
                    rows(&db).await,
                    store.load_checkpoint("notes").await.unwrap()
                ),
                (1, Some(c1))
            );

            // A stale expectation: a checkpoint conflict naming what is stored, nothing written.
            match project(&store, None, c2, "stale", false).await {
                Err(Error::CheckpointConflict {
                    name,
                    expected: None,
                    actual,
                }) => {
                    assert_eq!((name.as_str(), actual), ("notes", Some(c1)));
                }
                other => panic!("expected a checkpoint conflict, got {other:?}"),
            }
            assert_eq!(
                (
                    rows(&db).await,
                    store.load_checkpoint("notes").await.unwrap()
                ),
                (1, Some(c1))
            );

            project(&store, Some(c1), c2, "second", false)
                .await
                .unwrap();
            assert_eq!(
                (
                    rows(&db).await,
                    store.load_checkpoint("notes").await.unwrap()
                ),
                (2, Some(c2))
            );
        },
    );
}

#[test]
fn concurrent_projection_runners_exactly_one_commits() {
    common::run(
        "concurrent_projection_runners_exactly_one_commits",
        |db| async move {
            const RUNNERS: usize = 8;
            create_read_model(&db).await;
            let store = db.store.clone();
            let start = Cursor::from_parts(3, 3);
            store.save_checkpoint("notes", None, start).await.unwrap();
            let barrier = Arc::new(tokio::sync::Barrier::new(RUNNERS));
            let runners: Vec<_> = (0..RUNNERS)
                .map(|i| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let new = Cursor::from_parts(4, i as u64);
                        store
                            .commit_with_checkpoint("notes", Some(start), new, move |conn| {
                                async move {
                                    insert_note(conn, "runner").await?;
                                    // Keep the transaction open a moment so the others queue up.
                                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                                    Ok(new)
                                }
                                .boxed()
                            })
                            .await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for r in runners {
                match r.await.unwrap() {
                    Ok(c) => winners.push(c),
                    Err(Error::CheckpointConflict { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            assert_eq!(winners.len(), 1, "exactly one runner commits");
            assert_eq!(rows(&db).await, 1, "only the winner's writes are stored");
            assert_eq!(
                store.load_checkpoint("notes").await.unwrap(),
                Some(winners[0])
            );
        },
    );
}
