//! Property: under random interleavings of concurrent appends, on every store (memory,
//! SQLite, and PostgreSQL when a server is there), no version is written twice, no
//! acknowledged event is lost, nothing refused is written, and a follower of `read_all`
//! running alongside the writers sees each event exactly once, in cursor order (store
//! contract, items 1, 2, 3 and 5).

mod common;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use recount::{Cursor, Error, EventStore, ExpectedVersion, InMemoryStore, LogFilter, NewEvent};
use recount::{RecordedEvent, StreamId};
use recount_sqlite::SqliteEventStore;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// One append of a writer: which of the case's streams, how many events, how it states its
/// expectation, and how often it yields first (to vary the interleaving).
#[derive(Debug, Clone)]
struct Step {
    stream: usize,
    events: usize,
    exact: bool,
    yields: u8,
}

fn step() -> impl Strategy<Value = Step> {
    (0usize..3, 1usize..4, any::<bool>(), 0u8..4).prop_map(|(stream, events, exact, yields)| Step {
        stream,
        events,
        exact,
        yields,
    })
}

/// Writers, each a list of appends.
fn schedule() -> impl Strategy<Value = Vec<Vec<Step>>> {
    prop::collection::vec(prop::collection::vec(step(), 1..6), 2..6)
}

/// What the writers were told: the ids of each acknowledged append, with its result, and the
/// ids of every append that was refused.
#[derive(Debug, Default)]
struct Outcome {
    acknowledged: Vec<(StreamId, Vec<Uuid>, u64)>,
    refused: Vec<Uuid>,
}

async fn writer<S: EventStore>(store: S, streams: Arc<Vec<StreamId>>, steps: Vec<Step>) -> Outcome {
    let mut out = Outcome::default();
    for step in steps {
        for _ in 0..step.yields {
            tokio::task::yield_now().await;
        }
        let stream = &streams[step.stream];
        let expected = if step.exact {
            ExpectedVersion::Exact(store.stream_version(stream).await.expect("stream version"))
        } else {
            ExpectedVersion::Any
        };
        let events: Vec<NewEvent> = (0..step.events)
            .map(|n| NewEvent::new("il.e", &serde_json::json!({ "n": n })).expect("payload"))
            .collect();
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        match store.append(stream, expected, events).await {
            Ok(done) => out.acknowledged.push((stream.clone(), ids, done.version)),
            Err(Error::Conflict { .. }) => out.refused.extend(ids),
            Err(e) => panic!("an append failed with something other than a conflict: {e}"),
        }
    }
    out
}

/// Follows the log from `start` until `done` is set and the log is read to its end; also
/// says how many events it read while writers were still running.
async fn follower<S: EventStore>(
    store: S,
    start: Cursor,
    done: Arc<AtomicBool>,
) -> (Vec<RecordedEvent>, usize) {
    let mut seen = Vec::new();
    let mut live = 0;
    let mut after = start;
    loop {
        let finished = done.load(Ordering::Acquire);
        let batch = store
            .read_all(after, &LogFilter::all(), 7)
            .await
            .expect("read the log");
        assert!(batch.last_seen >= after, "a follower never moves back");
        let empty = batch.events.is_empty() && batch.last_seen == after;
        for e in &batch.events {
            assert!(e.cursor > after, "cursors only grow for a follower");
            after = e.cursor;
        }
        after = after.max(batch.last_seen);
        if !finished {
            live += batch.events.len();
        }
        seen.extend(batch.events);
        if empty && finished {
            return (seen, live);
        }
        if empty {
            tokio::task::yield_now().await;
        }
    }
}

/// The last cursor of the log as it is now.
async fn log_end<S: EventStore>(store: &S) -> Cursor {
    let mut after = Cursor::START;
    loop {
        let batch = store
            .read_all(after, &LogFilter::all(), 10_000)
            .await
            .expect("read the log");
        if batch.events.is_empty() && batch.last_seen == after {
            return after;
        }
        after = batch.last_seen;
    }
}

/// How often, over all cases, the race happened on one store: appends refused by a
/// conflict, and events the follower read while writers were still appending.
#[derive(Debug, Default, Clone, Copy)]
struct Raced {
    conflicts: usize,
    read_live: usize,
}

async fn check_store<S: EventStore + Clone>(
    store: S,
    name: &str,
    schedule: &[Vec<Step>],
) -> Result<Raced, TestCaseError> {
    let case = Uuid::now_v7().simple().to_string();
    let streams: Arc<Vec<StreamId>> = Arc::new(
        (0..3)
            .map(|i| StreamId::new("il", &format!("{case}-{i}")).expect("stream id"))
            .collect(),
    );
    let start = log_end(&store).await;
    let done = Arc::new(AtomicBool::new(false));
    let follow = tokio::spawn(follower(store.clone(), start, done.clone()));
    let writers: Vec<_> = schedule
        .iter()
        .map(|steps| tokio::spawn(writer(store.clone(), streams.clone(), steps.clone())))
        .collect();
    let mut outcomes = Vec::new();
    for w in writers {
        outcomes.push(w.await.expect("writer"));
    }
    done.store(true, Ordering::Release);
    let (followed, read_live) = follow.await.expect("follower");
    let acknowledged: HashSet<Uuid> = outcomes
        .iter()
        .flat_map(|o| {
            o.acknowledged
                .iter()
                .flat_map(|(_, ids, _)| ids.iter().copied())
        })
        .collect();
    let refused: HashSet<Uuid> = outcomes
        .iter()
        .flat_map(|o| o.refused.iter().copied())
        .collect();
    let mut per_stream: HashMap<&StreamId, Vec<RecordedEvent>> = HashMap::new();
    for s in streams.iter() {
        let read = store
            .read_stream(s, 1, usize::MAX)
            .await
            .expect("read stream");
        let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
        prop_assert_eq!(
            &versions,
            &(1..=read.len() as u64).collect::<Vec<_>>(),
            "{}: `{}` holds versions 1..=n, each once",
            name,
            s
        );
        per_stream.insert(s, read);
    }
    let stored: HashSet<Uuid> = per_stream.values().flatten().map(|e| e.id).collect();
    prop_assert_eq!(
        &stored,
        &acknowledged,
        "{}: exactly the acknowledged events are stored",
        name
    );
    prop_assert!(
        refused.is_disjoint(&stored),
        "{}: a refused append wrote nothing",
        name
    );
    for outcomes in &outcomes {
        for (s, ids, version) in &outcomes.acknowledged {
            let read = &per_stream[s];
            let first = *version as usize - ids.len();
            let at: Vec<Uuid> = read[first..*version as usize]
                .iter()
                .map(|e| e.id)
                .collect();
            prop_assert_eq!(
                &at,
                ids,
                "{}: an acknowledged batch sits at its versions, whole",
                name
            );
        }
    }
    let followed_ids: Vec<Uuid> = followed.iter().map(|e| e.id).collect();
    let unique: HashSet<Uuid> = followed_ids.iter().copied().collect();
    prop_assert_eq!(
        unique.len(),
        followed_ids.len(),
        "{}: the follower saw no event twice",
        name
    );
    prop_assert_eq!(&unique, &stored, "{}: the follower saw every event", name);
    let conflicts = outcomes.iter().filter(|o| !o.refused.is_empty()).count();
    Ok(Raced {
        conflicts,
        read_live,
    })
}

#[test]
fn random_interleavings_of_concurrent_appends_keep_versions_acknowledgements_and_the_log_exact() {
    let pg = common::PgDb::create_or_skip("concurrent append interleavings on PostgreSQL");
    let config = ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    };
    let raced = std::sync::Mutex::new(HashMap::<&str, Raced>::new());
    let count = |name, r: Raced| {
        let mut all = raced.lock().unwrap();
        let total = all.entry(name).or_default();
        total.conflicts += r.conflicts;
        total.read_live += r.read_live;
    };
    let result = TestRunner::new(config).run(&schedule(), |schedule| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            count(
                "memory",
                check_store(InMemoryStore::new(), "memory", &schedule).await?,
            );
            let dir = tempfile::tempdir().unwrap();
            let sqlite = SqliteEventStore::open(dir.path().join("il.db"))
                .await
                .unwrap();
            count("sqlite", check_store(sqlite, "sqlite", &schedule).await?);
            if let Some(db) = &pg {
                let store = db.store().await;
                let checked = check_store(store.clone(), "postgres", &schedule).await;
                store.pool().close().await;
                count("postgres", checked?);
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The property means something only if the races happened: writers lost version races,
    // and the follower read while appends were in flight.
    for (name, r) in raced.into_inner().unwrap() {
        assert!(r.conflicts > 0, "{name}: no append ever conflicted: {r:?}");
        assert!(
            r.read_live > 0,
            "{name}: the follower never read during the writes: {r:?}"
        );
    }
}
