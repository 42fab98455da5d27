//! Writers racing for the same stream version (store contract, item 2).

mod common;

use recount::{Error, EventStore, ExpectedVersion, NewEvent, StreamId};
use recount_postgres::PgEventStore;
use sqlx::PgConnection;
use std::collections::HashSet;
use std::sync::Arc;

const TASKS: usize = 32;
const ATTEMPTS: usize = 12;

#[test]
fn concurrent_exact_appends_write_each_version_once_and_losers_conflict() {
    common::run(
        "concurrent_exact_appends_write_each_version_once_and_losers_conflict",
        |db| async move {
            let store = db.store.clone();
            let stream = StreamId::new("race", "one").unwrap();
            let start = Arc::new(tokio::sync::Barrier::new(TASKS));
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let (store, stream, start) = (store.clone(), stream.clone(), start.clone());
                    tokio::spawn(async move {
                        let mut won = Vec::new();
                        let mut conflicts = 0usize;
                        start.wait().await;
                        for a in 0..ATTEMPTS {
                            let seen = store.stream_version(&stream).await.expect("version");
                            let e = NewEvent::new(
                                "race.won",
                                &serde_json::json!({ "task": t, "attempt": a }),
                            )
                            .unwrap();
                            let id = e.id;
                            match store
                                .append(&stream, ExpectedVersion::Exact(seen), vec![e])
                                .await
                            {
                                Ok(r) => {
                                    assert_eq!(
                                        r.version,
                                        seen + 1,
                                        "a winner writes the next version"
                                    );
                                    won.push((r.version, id));
                                }
                                Err(Error::Conflict {
                                    expected, actual, ..
                                }) => {
                                    assert_eq!(expected, ExpectedVersion::Exact(seen));
                                    assert!(
                                        actual > seen,
                                        "a loser is told the newer version ({actual} > {seen})"
                                    );
                                    conflicts += 1;
                                }
                                Err(e) => panic!(
                                    "a racer failed with something other than a conflict: {e}"
                                ),
                            }
                        }
                        (won, conflicts)
                    })
                })
                .collect();
            let mut won = Vec::new();
            let mut conflicts = 0;
            for t in tasks {
                let (w, c) = t.await.expect("racer");
                won.extend(w);
                conflicts += c;
            }
            assert_eq!(
                won.len() + conflicts,
                TASKS * ATTEMPTS,
                "every attempt won or got a conflict"
            );
            assert!(
                conflicts > 0,
                "no append lost a race: the race this test guards against did not happen"
            );
            let n = won.len() as u64;
            let versions: HashSet<u64> = won.iter().map(|(v, _)| *v).collect();
            assert_eq!(versions.len(), won.len(), "no version was won twice");
            assert_eq!(
                versions,
                (1..=n).collect(),
                "the winners wrote versions 1..={n}"
            );
            let stored = store.read_stream(&stream, 1, usize::MAX).await.unwrap();
            assert_eq!(
                stored.iter().map(|e| e.version).collect::<Vec<_>>(),
                (1..=n).collect::<Vec<_>>()
            );
            let stored_ids: HashSet<_> = stored.iter().map(|e| e.id).collect();
            assert_eq!(
                stored_ids,
                won.iter().map(|(_, id)| *id).collect(),
                "exactly the winners' events are stored"
            );
            eprintln!("race test: {n} versions written, {conflicts} conflicts");
        },
    );
}

/// Within a stream, the global log's order is version order, also when writers race: some
/// append with `Any`, some with the version they read, and some guess the version after it
/// (an exact expectation that only passes if it waits for a writer still in flight). A
/// follower reading the whole log must see each stream's versions in increasing order.
#[test]
fn racing_writers_of_one_stream_reach_the_log_in_version_order() {
    common::run(
        "racing_writers_of_one_stream_reach_the_log_in_version_order",
        |db| async move {
            let store = db.store.clone();
            let stream = StreamId::new("order", "one").unwrap();
            let event = |t: usize| NewEvent::new("order.written", &serde_json::json!({ "t": t }));
            store
                .append(&stream, ExpectedVersion::NoStream, vec![event(0).unwrap()])
                .await
                .unwrap();
            let start = Arc::new(tokio::sync::Barrier::new(TASKS));
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let (store, stream, start) = (store.clone(), stream.clone(), start.clone());
                    tokio::spawn(async move {
                        let mut guesses_won = 0usize;
                        start.wait().await;
                        for _ in 0..ATTEMPTS {
                            let seen = store.stream_version(&stream).await.expect("version");
                            let (expected, guess) = match t % 3 {
                                0 => (ExpectedVersion::Any, false),
                                1 => (ExpectedVersion::Exact(seen), false),
                                _ => (ExpectedVersion::Exact(seen + 1), true),
                            };
                            match store
                                .append(&stream, expected, vec![event(t).unwrap()])
                                .await
                            {
                                Ok(_) => guesses_won += usize::from(guess),
                                Err(Error::Conflict { .. }) => {}
                                Err(e) => panic!("a racer failed: {e}"),
                            }
                        }
                        guesses_won
                    })
                })
                .collect();
            let mut guesses_won = 0;
            for t in tasks {
                guesses_won += t.await.expect("racer");
            }
            assert!(
                guesses_won > 0,
                "no guessed version was ever written: no append waited for a writer in flight"
            );
            let n = store.stream_version(&stream).await.unwrap();
            let in_log: Vec<u64> = recount::testing::conformance::whole_log(&store)
                .await
                .iter()
                .map(|e| e.version)
                .collect();
            assert_eq!(
                in_log,
                (1..=n).collect::<Vec<_>>(),
                "the log holds versions 1..={n} in version order"
            );
            eprintln!("order test: {n} versions, {guesses_won} guessed versions won");
        },
    );
}

/// Writes version 1 of `stream`, then starts an append of version 2 as the one-statement fast
/// path of a single exact append makes it: the stream row moved to version 2 and the event
/// inserted, in a transaction left open on the returned connection (`COMMIT` it).
async fn hold_an_append(db: &common::TestDb, stream: &StreamId) -> PgConnection {
    db.store
        .append(stream, ExpectedVersion::NoStream, vec![held_event()])
        .await
        .unwrap();
    let mut held = db.connection().await;
    sqlx::query("BEGIN").execute(&mut held).await.unwrap();
    sqlx::query("UPDATE recount.streams SET version = 2 WHERE stream_id = $1")
        .bind(stream.as_str())
        .execute(&mut held)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO recount.events (stream_id, stream_version, category, event_id, \
         event_type, schema_version, payload, metadata) \
         VALUES ($1, 2, $2, $3, 'held.written', 1, '{}', '{}')",
    )
    .bind(stream.as_str())
    .bind(stream.category())
    .bind(uuid::Uuid::new_v4())
    .execute(&mut held)
    .await
    .unwrap();
    held
}

/// Waits until `n` sessions of the test database wait for a lock; returns whether each of
/// them has a transaction id yet.
async fn lock_waiters(db: &common::TestDb, n: usize) -> Vec<bool> {
    let mut watcher = db.connection().await;
    let mut waiting = Vec::new();
    for _ in 0..3_000 {
        waiting = sqlx::query_scalar::<_, bool>(
            "SELECT backend_xid IS NOT NULL FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_all(&mut watcher)
        .await
        .unwrap();
        if waiting.len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(waiting.len(), n, "{n} writers wait for the held stream row");
    waiting
}

fn held_event() -> NewEvent {
    NewEvent::new("held.written", &serde_json::json!({})).unwrap()
}

/// Appends `n` events to `stream` with `expected` in a task of its own.
fn spawn_append(
    store: &PgEventStore,
    stream: &StreamId,
    expected: ExpectedVersion,
    n: usize,
) -> tokio::task::JoinHandle<recount::Result<recount::AppendResult>> {
    let (store, stream) = (store.clone(), stream.clone());
    tokio::spawn(async move {
        let events = (0..n).map(|_| held_event()).collect();
        store.append(&stream, expected, events).await
    })
}

/// A writer that holds a stream's row without its advisory lock, as the one-statement fast
/// path of a single exact append does, makes the other writers of the stream wait, and they
/// check the version it committed, not the one they saw before waiting: a delete expecting the
/// old version is a conflict (not a tombstone over an event it never saw), and so is an append.
#[test]
fn writers_waiting_for_an_append_in_flight_check_the_version_it_commits() {
    common::run(
        "writers_waiting_for_an_append_in_flight_check_the_version_it_commits",
        |db| async move {
            let store = db.store.clone();
            let stream = StreamId::new("held", "one").unwrap();
            let mut held = hold_an_append(&db, &stream).await;
            let delete = tokio::spawn({
                let (store, stream) = (store.clone(), stream.clone());
                async move {
                    store
                        .delete_stream(&stream, ExpectedVersion::Exact(1))
                        .await
                }
            });
            let append = spawn_append(&store, &stream, ExpectedVersion::Exact(1), 1);
            // Both must really wait for the held row (else this test proves nothing).
            lock_waiters(&db, 2).await;
            sqlx::query("COMMIT").execute(&mut held).await.unwrap();

            match delete.await.unwrap() {
                Err(Error::Conflict { actual: 2, .. }) => {}
                other => panic!("the delete must see version 2 and conflict, got {other:?}"),
            }
            match append.await.unwrap() {
                Err(Error::Conflict { actual: 2, .. }) => {}
                other => panic!("the append must see version 2 and conflict, got {other:?}"),
            }
            assert_eq!(store.stream_version(&stream).await.unwrap(), 2);
            let stored = store.read_stream(&stream, 1, usize::MAX).await.unwrap();
            assert_eq!(
                stored.len(),
                2,
                "the stream is not deleted and holds both events"
            );
        },
    );
}

/// The rule that keeps log order equal to version order when a function's append waits for a
/// fast-path writer: while it waits for the stream row it has no transaction id yet (so the id
/// it gets is newer than the writer's), and its event lands after the writer's in the log.
/// Fails if an append function touched a table before locking the stream row, or if
/// PostgreSQL started to give a row lock's transaction its id before the wait.
#[test]
fn an_append_waiting_for_the_stream_row_has_no_transaction_id_yet() {
    common::run(
        "an_append_waiting_for_the_stream_row_has_no_transaction_id_yet",
        |db| async move {
            let store = db.store.clone();
            let stream = StreamId::new("held", "two").unwrap();
            let mut held = hold_an_append(&db, &stream).await;
            let single = spawn_append(&store, &stream, ExpectedVersion::StreamExists, 1);
            assert_eq!(
                lock_waiters(&db, 1).await,
                [false],
                "append_event waits for the stream row without a transaction id"
            );
            let batch = spawn_append(&store, &stream, ExpectedVersion::Exact(3), 2);
            // The batch waits for the advisory lock the single append holds; neither has an id.
            assert_eq!(lock_waiters(&db, 2).await, [false, false]);
            sqlx::query("COMMIT").execute(&mut held).await.unwrap();
            let single = single.await.unwrap().unwrap();
            let batch = batch.await.unwrap().unwrap();
            assert_eq!((single.version, batch.version), (3, 5));
            let in_log: Vec<u64> = recount::testing::conformance::whole_log(&store)
                .await
                .iter()
                .filter(|e| e.stream == stream)
                .map(|e| e.version)
                .collect();
            assert_eq!(in_log, [1, 2, 3, 4, 5], "log order is version order");
        },
    );
}
