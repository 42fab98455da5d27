//! Writers racing for the same stream version (store contract, item 2).

mod common;

use recount::{Error, EventStore, ExpectedVersion, NewEvent, StreamId};
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
