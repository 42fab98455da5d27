//! The gap test (store contract, item 5): transactions commit out of the order in which they
//! drew global positions, and a follower of the global log still sees every committed event
//! exactly once, never going back; a naive follower by global position, run alongside,
//! misses events, which proves the race happened.

mod common;

use rand::Rng;
use recount::{Cursor, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use sqlx::{Connection, PgConnection, Row};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const WRITERS: usize = 8;
const APPENDS: usize = 40;
/// Followers read in batches this small, so they read often and pass positions quickly.
const BATCH: usize = 5;

fn event(n: usize) -> NewEvent {
    NewEvent::new("gap.happened", &serde_json::json!({ "n": n })).expect("object payload")
}

/// Appends like the store does (the same SQL function), but in a transaction held open for
/// `hold` after the positions were drawn, so later appends commit first.
async fn held_append(
    conn: &mut PgConnection,
    stream: &StreamId,
    events: &[NewEvent],
    hold: Duration,
) {
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let versions: Vec<i32> = events.iter().map(|_| 1).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.payload.get()).collect();
    let metadata: Vec<&str> = events.iter().map(|_| "{}").collect();
    let none: Vec<Option<Uuid>> = events.iter().map(|_| None).collect();
    let mut tx = conn.begin().await.expect("begin");
    let row = sqlx::query(
        "SELECT outcome FROM recount.append_events($1, $2, -1, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(stream.as_str())
    .bind(stream.category())
    .bind(&ids)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&none)
    .bind(&none)
    .fetch_one(&mut *tx)
    .await
    .expect("append in a held transaction");
    assert_eq!(row.get::<i32, _>(0), 0, "the held append wrote its events");
    tokio::time::sleep(hold).await;
    tx.commit().await.expect("commit the held append");
}

/// Follows the log through the store until it has seen `total` events (known once the
/// writers stop), checking the guarantees on every batch.
async fn follow(
    store: recount_postgres::PgEventStore,
    done: Arc<AtomicBool>,
    total: Arc<std::sync::Mutex<usize>>,
) -> Vec<Uuid> {
    let mut after = Cursor::START;
    let mut seen = Vec::new();
    let mut idle_reads_after_done = 0u32;
    loop {
        let batch = store
            .read_all(after, &LogFilter::all(), BATCH)
            .await
            .expect("read the log");
        assert!(
            batch.last_seen >= after,
            "last_seen moved back from {after} to {}",
            batch.last_seen
        );
        for e in &batch.events {
            assert!(
                e.cursor > after,
                "handed cursor {} at or before {after}, already passed",
                e.cursor
            );
            after = e.cursor;
            seen.push(e.id);
        }
        after = after.max(batch.last_seen);
        if done.load(Ordering::Acquire) {
            if seen.len() >= *total.lock().unwrap() {
                return seen;
            }
            if batch.events.is_empty() {
                // A hang guard, not a timing assertion: the follower must catch up.
                idle_reads_after_done += 1;
                assert!(
                    idle_reads_after_done < 600,
                    "the follower stopped short: {} events seen",
                    seen.len()
                );
                store
                    .wait_for_append(after, Duration::from_millis(100))
                    .await;
            }
        } else if batch.events.is_empty() {
            tokio::task::yield_now().await;
        }
    }
}

/// Follows the log the naive way: by global position alone, as if positions committed in
/// order. Stops once the writers are done and it has read to the end.
async fn follow_naively(mut conn: PgConnection, done: Arc<AtomicBool>) -> Vec<Uuid> {
    let mut after = 0i64;
    let mut seen = Vec::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let rows = sqlx::query(
            "SELECT global_position, event_id FROM recount.events \
             WHERE global_position > $1 ORDER BY global_position LIMIT $2",
        )
        .bind(after)
        .bind(BATCH as i64)
        .fetch_all(&mut conn)
        .await
        .expect("naive read");
        for row in &rows {
            after = row.get(0);
            seen.push(row.get(1));
        }
        if rows.is_empty() {
            if finished {
                return seen;
            }
            tokio::task::yield_now().await;
        }
    }
}

#[test]
fn follower_sees_every_event_once_while_transactions_commit_out_of_order() {
    common::run(
        "follower_sees_every_event_once_while_transactions_commit_out_of_order",
        |db| async move {
            let store = db.store.clone();
            let done = Arc::new(AtomicBool::new(false));
            let total = Arc::new(std::sync::Mutex::new(0usize));
            let follower = tokio::spawn(follow(store.clone(), done.clone(), total.clone()));
            let naive = tokio::spawn(follow_naively(db.connection().await, done.clone()));

            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let store = store.clone();
                    let options = db.options.clone();
                    tokio::spawn(async move {
                        let mut conn = PgConnection::connect_with(&options).await.expect("connect");
                        let streams: Vec<StreamId> = (0..2)
                            .map(|i| StreamId::new("gap", &format!("w{w}s{i}")).unwrap())
                            .collect();
                        let mut written = Vec::new();
                        for i in 0..APPENDS {
                            let s = &streams[i % streams.len()];
                            let batch: Vec<NewEvent> =
                                (0..1 + i % 3).map(|k| event(i * 10 + k)).collect();
                            let ids: Vec<Uuid> = batch.iter().map(|e| e.id).collect();
                            // Half of the writers hold some of their transactions open for a few
                            // milliseconds after drawing positions.
                            let hold =
                                (w % 2 == 0 && rand::thread_rng().gen_bool(0.5)).then(|| {
                                    Duration::from_millis(rand::thread_rng().gen_range(1..=8))
                                });
                            match hold {
                                Some(hold) => held_append(&mut conn, s, &batch, hold).await,
                                None => {
                                    store
                                        .append(s, ExpectedVersion::Any, batch)
                                        .await
                                        .expect("append");
                                }
                            }
                            written.extend(ids);
                        }
                        written
                    })
                })
                .collect();

            let mut written = HashSet::new();
            for w in writers {
                written.extend(w.await.expect("writer"));
            }
            *total.lock().unwrap() = written.len();
            done.store(true, Ordering::Release);

            let seen = follower.await.expect("follower");
            let unique: HashSet<Uuid> = seen.iter().copied().collect();
            assert_eq!(unique.len(), seen.len(), "the follower saw an event twice");
            assert_eq!(
                unique, written,
                "the follower saw exactly the committed events"
            );

            let naive_seen: HashSet<Uuid> =
                naive.await.expect("naive follower").into_iter().collect();
            let missed = written.difference(&naive_seen).count();
            assert!(
            missed >= 1,
            "the naive follower missed nothing: the out-of-order commits this test guards against did not happen"
        );
            eprintln!(
                "gap test: {} events; the naive follower missed {missed}",
                written.len()
            );
        },
    );
}
