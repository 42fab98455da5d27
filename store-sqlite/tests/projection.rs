//! `commit_with_checkpoint`: a projection's own writes and its checkpoint commit together or
//! not at all (store contract, item 10).

use recount::{Cursor, Error, EventStore, ExpectedVersion, NewEvent, StreamId};
use recount_sqlite::rusqlite::{self, Connection};
use recount_sqlite::SqliteEventStore;

const NAME: &str = "totals";

async fn setup() -> (tempfile::TempDir, SqliteEventStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    store
        .commit_with_checkpoint(NAME, None, Cursor::START, |tx| {
            tx.execute_batch("CREATE TABLE totals (stream TEXT PRIMARY KEY, n INTEGER NOT NULL)")
                .map_err(Error::store)
        })
        .await
        .unwrap();
    (dir, store)
}

/// The projection's rows, read with a plain connection (as another reader would).
fn rows(store: &SqliteEventStore) -> Vec<(String, i64)> {
    let conn = Connection::open(store.path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT stream, n FROM totals ORDER BY stream")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn upsert(tx: &rusqlite::Transaction<'_>, stream: &str, n: i64) -> recount::Result<usize> {
    tx.prepare_cached("INSERT INTO totals (stream, n) VALUES (?1, ?2) ON CONFLICT (stream) DO UPDATE SET n = n + excluded.n")
        .and_then(|mut s| s.execute(rusqlite::params![stream, n]))
        .map_err(Error::store)
}

#[tokio::test]
async fn projection_rows_and_checkpoint_commit_together() {
    let (_dir, store) = setup().await;
    let c1 = Cursor::from_position(10);
    let written = store
        .commit_with_checkpoint(NAME, Some(Cursor::START), c1, |tx| upsert(tx, "a", 3))
        .await
        .unwrap();
    assert_eq!(written, 1, "the closure's result comes back");
    assert_eq!(store.load_checkpoint(NAME).await.unwrap(), Some(c1));
    assert_eq!(rows(&store), vec![("a".to_owned(), 3)]);
}

#[tokio::test]
async fn a_failing_projection_changes_neither_its_rows_nor_the_checkpoint() {
    let (_dir, store) = setup().await;
    store
        .commit_with_checkpoint(NAME, Some(Cursor::START), Cursor::from_position(1), |tx| {
            upsert(tx, "a", 1)
        })
        .await
        .unwrap();
    let err = store
        .commit_with_checkpoint(
            NAME,
            Some(Cursor::from_position(1)),
            Cursor::from_position(2),
            |tx| {
                upsert(tx, "a", 100)?;
                upsert(tx, "b", 100)?;
                Err::<(), _>(Error::invalid("projection", "the handler failed"))
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "projection",
                ..
            }
        ),
        "the closure's own error: {err:?}"
    );
    assert_eq!(
        store.load_checkpoint(NAME).await.unwrap(),
        Some(Cursor::from_position(1)),
        "checkpoint unchanged"
    );
    assert_eq!(rows(&store), vec![("a".to_owned(), 1)], "rows unchanged");
}

#[tokio::test]
async fn a_panicking_projection_is_rolled_back_and_the_writer_survives() {
    let (_dir, store) = setup().await;
    let err = store
        .commit_with_checkpoint::<(), _>(
            NAME,
            Some(Cursor::START),
            Cursor::from_position(5),
            |tx| {
                upsert(tx, "a", 1)?;
                panic!("handler bug");
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("handler bug"), "{err}");
    assert_eq!(
        store.load_checkpoint(NAME).await.unwrap(),
        Some(Cursor::START)
    );
    assert!(rows(&store).is_empty());
    let s = StreamId::new("after", "1").unwrap();
    let e = NewEvent::new("after.e", &serde_json::json!({})).unwrap();
    store
        .append(&s, ExpectedVersion::NoStream, vec![e])
        .await
        .expect("the writer still works");
}

#[tokio::test]
async fn a_stale_checkpoint_is_a_conflict_and_the_closure_does_not_run() {
    let (_dir, store) = setup().await;
    let err = store
        .commit_with_checkpoint(
            NAME,
            Some(Cursor::from_position(99)),
            Cursor::from_position(100),
            |_| -> recount::Result<()> { panic!("must not run on a conflict") },
        )
        .await
        .unwrap_err();
    match err {
        Error::CheckpointConflict {
            name,
            expected,
            actual,
        } => {
            assert_eq!(
                (name.as_str(), expected, actual),
                (NAME, Some(Cursor::from_position(99)), Some(Cursor::START))
            );
        }
        other => panic!("expected a checkpoint conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_projection_commits_exactly_one_wins_each_step() {
    let (_dir, store) = setup().await;
    let mut at = Cursor::START;
    for step in 1..=10u64 {
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                let next = Cursor::from_position(step * 10 + t);
                tokio::spawn(async move {
                    store
                        .commit_with_checkpoint(NAME, Some(at), next, move |tx| upsert(tx, "n", 1))
                        .await
                        .map(|_| next)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(c) => winners.push(c),
                Err(Error::CheckpointConflict { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "one compare-and-set wins step {step}");
        at = winners[0];
    }
    assert_eq!(
        rows(&store),
        vec![("n".to_owned(), 10)],
        "only the winners' writes are stored"
    );
}
