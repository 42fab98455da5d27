//! Group commit: concurrent appends share transactions, a rejected append inside a group
//! leaves nothing behind and does not disturb the others.

use recount::{Cursor, Error, EventStore, ExpectedVersion, LogFilter, NewEvent, StreamId};
use recount_sqlite::SqliteEventStore;
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

const TASKS: usize = 8;
const ROUNDS: u64 = 25;

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|k| NewEvent::new("group.e", &serde_json::json!({ "k": k })).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_commit_in_groups_and_losers_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("events.db"))
        .await
        .unwrap();
    let shared = StreamId::new("shared", "1").unwrap();
    let own: Vec<StreamId> = (0..TASKS)
        .map(|t| StreamId::new("own", &t.to_string()).unwrap())
        .collect();
    let mut rejected: HashSet<Uuid> = HashSet::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (store, shared, mine, barrier) = (
                    store.clone(),
                    shared.clone(),
                    own[t].clone(),
                    barrier.clone(),
                );
                tokio::spawn(async move {
                    let (to_shared, to_own) = (events(2), events(3));
                    let ids: Vec<Uuid> = to_shared.iter().map(|e| e.id).collect();
                    barrier.wait().await;
                    let (a, b) = tokio::join!(
                        store.append(&shared, ExpectedVersion::Exact(round * 2), to_shared),
                        store.append(&mine, ExpectedVersion::Exact(round * 3), to_own),
                    );
                    (a, b, ids)
                })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            let (to_shared, to_own, ids) = t.await.unwrap();
            assert_eq!(
                to_own.unwrap().version,
                round * 3 + 3,
                "an append to a task's own stream"
            );
            match to_shared {
                Ok(r) => {
                    winners += 1;
                    assert_eq!(r.version, round * 2 + 2);
                }
                Err(Error::Conflict { actual, .. }) => {
                    assert_eq!(actual, round * 2 + 2, "a loser sees the winner's version");
                    rejected.extend(ids);
                }
                Err(e) => panic!("a loser got something other than a conflict: {e}"),
            }
        }
        assert_eq!(
            winners, 1,
            "exactly one append to the shared stream wins round {round}"
        );
    }
    let versions: Vec<u64> = store
        .read_stream(&shared, 1, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=ROUNDS * 2).collect::<Vec<_>>());
    for s in &own {
        assert_eq!(store.stream_version(s).await.unwrap(), ROUNDS * 3);
    }
    let log = store
        .read_all(Cursor::START, &LogFilter::all(), usize::MAX)
        .await
        .unwrap()
        .events;
    assert_eq!(
        log.len() as u64,
        ROUNDS * 2 + ROUNDS * 3 * TASKS as u64,
        "only accepted appends are in the log"
    );
    assert!(
        log.iter().all(|e| !rejected.contains(&e.id)),
        "nothing of a rejected append is stored"
    );
    assert_eq!(rejected.len() as u64, ROUNDS * (TASKS as u64 - 1) * 2);

    let stats = store.stats();
    assert_eq!(
        stats.appends,
        ROUNDS * TASKS as u64 * 2,
        "every append ran on the writer"
    );
    assert!(
        stats.commits < stats.appends,
        "appends shared commits: {stats:?}"
    );
    assert!(stats.largest_group > 1, "{stats:?}");
}
