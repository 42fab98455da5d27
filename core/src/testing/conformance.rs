//! The store contract of [`crate::EventStore`] as executable checks: one function per guarantee.
//!
//! Each function takes a fresh store, panics when the guarantee does not hold, and is stamped
//! out as a test by [`conformance_tests!`](crate::conformance_tests). Third-party stores run the
//! same suite.

use crate::{
    Cursor, Error, EventQuery, EventStore, ExpectedVersion, LogFilter, Metadata, NewEvent,
    RecordedEvent, Snapshot, StreamId,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// Tasks racing for one version in [`concurrent_exact_appends_write_each_version_once`].
pub const RACERS: usize = 32;

fn stream(category: &str, id: &str) -> StreamId {
    StreamId::new(category, id).expect("valid stream id")
}

/// A unique stream of `category` per call, so tests never share streams.
fn fresh(category: &str) -> StreamId {
    stream(category, &Uuid::now_v7().simple().to_string())
}

fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent::new(event_type, &serde_json::json!({ "n": n })).expect("object payload")
}

/// An event whose payload is any JSON, object or not, to test the store's own checks.
fn raw_event(event_type: &str, json: &str) -> NewEvent {
    let raw = serde_json::value::RawValue::from_string(json.to_owned()).expect("valid JSON");
    NewEvent::from_raw(event_type, 1, raw)
}

fn events(event_type: &str, count: u64) -> Vec<NewEvent> {
    (0..count).map(|n| event(event_type, n)).collect()
}

async fn all_of_stream<S: EventStore>(store: &S, s: &StreamId) -> Vec<RecordedEvent> {
    store
        .read_stream(s, 1, usize::MAX)
        .await
        .expect("read stream")
}

/// Every event of the global log, read from the start in pages until the store says nothing
/// more is there (`last_seen` stops moving). Panics on a read error, as a test helper.
pub async fn whole_log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut after = Cursor::START;
    loop {
        let batch = store
            .read_all(after, &LogFilter::all(), 500)
            .await
            .expect("read log");
        if batch.events.is_empty() && batch.last_seen == after {
            return out;
        }
        after = batch.last_seen;
        out.extend(batch.events);
    }
}

#[track_caller]
fn assert_conflict(result: crate::Result<impl std::fmt::Debug>, want_actual: u64) {
    match result {
        Err(Error::Conflict { actual, .. }) => {
            assert_eq!(
                actual, want_actual,
                "a conflict reports the true current version"
            )
        }
        other => panic!("expected a conflict at version {want_actual}, got {other:?}"),
    }
}

/// Item 1: versions are 1, 2, 3, … with no gap; k events at version v write v+1 ..= v+k.
pub async fn versions_are_contiguous_from_one<S: EventStore + Clone>(store: S) {
    let s = fresh("conf");
    let r1 = store
        .append(&s, ExpectedVersion::NoStream, events("conf.a", 1))
        .await
        .unwrap();
    let r2 = store
        .append(&s, ExpectedVersion::Exact(1), events("conf.a", 3))
        .await
        .unwrap();
    let r3 = store
        .append(&s, ExpectedVersion::Any, events("conf.a", 2))
        .await
        .unwrap();
    assert_eq!((r1.version, r2.version, r3.version), (1, 4, 6));
    assert!(
        r1.cursor < r2.cursor && r2.cursor < r3.cursor,
        "cursors grow with each append"
    );
    let read = all_of_stream(&store, &s).await;
    assert_eq!(
        read.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(
        read.last().unwrap().cursor,
        r3.cursor,
        "the result names the last event's cursor"
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 6);
}

/// Item 2: each expectation is checked; a violated one is a typed conflict with the true
/// version and writes nothing.
pub async fn expected_version_is_checked_and_conflicts_write_nothing<S: EventStore + Clone>(
    store: S,
) {
    let s = fresh("conf");
    assert_conflict(
        store
            .append(&s, ExpectedVersion::StreamExists, events("conf.a", 1))
            .await,
        0,
    );
    assert_conflict(
        store
            .append(&s, ExpectedVersion::Exact(3), events("conf.a", 1))
            .await,
        0,
    );
    store
        .append(&s, ExpectedVersion::Exact(0), events("conf.a", 1))
        .await
        .unwrap();
    assert_conflict(
        store
            .append(&s, ExpectedVersion::NoStream, events("conf.a", 1))
            .await,
        1,
    );
    assert_conflict(
        store
            .append(&s, ExpectedVersion::Exact(0), events("conf.a", 1))
            .await,
        1,
    );
    store
        .append(&s, ExpectedVersion::StreamExists, events("conf.a", 1))
        .await
        .unwrap();
    store
        .append(&s, ExpectedVersion::Exact(2), events("conf.a", 2))
        .await
        .unwrap();
    assert_conflict(
        store
            .append(&s, ExpectedVersion::Exact(2), events("conf.a", 5))
            .await,
        4,
    );
    assert_conflict(
        store
            .append(&s, ExpectedVersion::Exact(9), events("conf.a", 5))
            .await,
        4,
    );
    store
        .append(&s, ExpectedVersion::Any, events("conf.a", 1))
        .await
        .unwrap();
    match store
        .append(&s, ExpectedVersion::NoStream, events("conf.a", 1))
        .await
    {
        Err(Error::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(
                (stream, expected, actual),
                (s.clone(), ExpectedVersion::NoStream, 5)
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        all_of_stream(&store, &s).await.len(),
        5,
        "no conflicting append wrote anything"
    );
    let in_log = whole_log(&store)
        .await
        .iter()
        .filter(|e| e.stream == s)
        .count();
    assert_eq!(in_log, 5, "no conflicting append reached the global log");
}

/// Item 2 under concurrency: of [`RACERS`] tasks appending with the same `Exact` version,
/// exactly one wins and every other gets `Conflict`; over several rounds each version is
/// written once.
pub async fn concurrent_exact_appends_write_each_version_once<S: EventStore + Clone>(store: S) {
    const ROUNDS: u64 = 6;
    let s = fresh("race");
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|task| {
                let (store, s, barrier) = (store.clone(), s.clone(), barrier.clone());
                tokio::spawn(async move {
                    let e = event("race.won", task as u64);
                    barrier.wait().await;
                    store
                        .append(&s, ExpectedVersion::Exact(round), vec![e])
                        .await
                })
            })
            .collect();
        let mut winners = 0;
        let mut losers = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    winners += 1;
                    assert_eq!(r.version, round + 1);
                }
                Err(Error::Conflict { actual, .. }) => {
                    losers += 1;
                    assert_eq!(actual, round + 1, "a loser sees the winner's version");
                }
                Err(e) => panic!("a racer failed with something other than a conflict: {e}"),
            }
        }
        assert_eq!(winners, 1, "exactly one writer wins round {round}");
        assert_eq!(losers, RACERS - 1, "every other writer gets a conflict");
    }
    let read = all_of_stream(&store, &s).await;
    assert_eq!(
        read.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=ROUNDS).collect::<Vec<_>>()
    );
}

/// Item 3: an append writes all its events or none; an empty batch is invalid input.
pub async fn batches_are_all_or_nothing<S: EventStore + Clone>(store: S) {
    let s = fresh("conf");
    store
        .append(&s, ExpectedVersion::NoStream, events("conf.a", 2))
        .await
        .unwrap();
    let before = whole_log(&store).await.len();
    let bad = raw_event("conf.a", "[1, 2]");
    let batch = vec![event("conf.a", 1), bad, event("conf.a", 3)];
    let err = store
        .append(&s, ExpectedVersion::Exact(2), batch)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidInput {
                field: "payload",
                ..
            }
        ),
        "got {err:?}"
    );
    let empty = store
        .append(&s, ExpectedVersion::Any, Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(empty, Error::InvalidInput { .. }),
        "an empty batch is invalid: {empty:?}"
    );
    let twice = event("conf.a", 9);
    let dup = store
        .append(&s, ExpectedVersion::Any, vec![twice.clone(), twice])
        .await
        .unwrap_err();
    assert!(
        matches!(dup, Error::InvalidInput { .. }),
        "one id twice in a batch: {dup:?}"
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 2);
    assert_eq!(
        whole_log(&store).await.len(),
        before,
        "nothing of a rejected batch is stored"
    );
}

/// Item 3 under concurrency: readers of a stream and of the global log never see part of a
/// batch while batches of 10 commit around them.
pub async fn readers_never_observe_part_of_a_batch<S: EventStore + Clone>(store: S) {
    const BATCH: u64 = 10;
    const WRITERS: usize = 4;
    const BATCHES: u64 = 25;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let streams: Vec<StreamId> = (0..WRITERS).map(|_| fresh("batch")).collect();
    let writers: Vec<_> = streams
        .iter()
        .cloned()
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    store
                        .append(
                            &s,
                            ExpectedVersion::Exact(b * BATCH),
                            events("batch.x", BATCH),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let (store, done, streams) = (store.clone(), done.clone(), streams.clone());
        tokio::spawn(async move {
            let mut checks = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                for s in &streams {
                    let n = store.read_stream(s, 1, usize::MAX).await.unwrap().len() as u64;
                    assert_eq!(
                        n % BATCH,
                        0,
                        "a stream read saw {n} events: part of a batch"
                    );
                }
                // A log read that returned less than its limit has seen everything committed:
                // every stream's count must then be whole batches.
                let batch = store
                    .read_all(Cursor::START, &LogFilter::all().category("batch"), 100_000)
                    .await
                    .unwrap();
                let mut per_stream: HashMap<StreamId, u64> = HashMap::new();
                for e in &batch.events {
                    *per_stream.entry(e.stream.clone()).or_default() += 1;
                }
                for (s, n) in per_stream {
                    if streams.contains(&s) {
                        assert_eq!(n % BATCH, 0, "the global log showed part of a batch of {s}");
                    }
                }
                checks += 1;
                tokio::task::yield_now().await;
            }
            checks
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let checks = reader.await.unwrap();
    assert!(checks > 0, "the reader ran while the writers wrote");
    for s in &streams {
        assert_eq!(store.stream_version(s).await.unwrap(), BATCH * BATCHES);
    }
}

/// Item 4: an exact retry succeeds without writing and returns the original result; a partial,
/// reordered or misplaced retry is `DuplicateEvent` and writes nothing.
pub async fn exact_retry_is_idempotent_and_partial_retry_is_a_duplicate<S: EventStore + Clone>(
    store: S,
) {
    let s = fresh("idem");
    let (a, b) = (event("idem.a", 1), event("idem.a", 2));
    let first = store
        .append(&s, ExpectedVersion::NoStream, vec![a.clone(), b.clone()])
        .await
        .unwrap();
    store
        .append(&s, ExpectedVersion::Exact(2), events("idem.a", 1))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(0),
        ExpectedVersion::Any,
    ] {
        let again = store
            .append(&s, expected, vec![a.clone(), b.clone()])
            .await
            .unwrap();
        assert_eq!(again, first, "a retry returns the original result");
    }
    let fresh_event = event("idem.a", 3);
    let partial = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![a.clone(), fresh_event.clone()],
        )
        .await;
    assert!(
        matches!(partial, Err(Error::DuplicateEvent { event_id, .. }) if event_id == a.id),
        "{partial:?}"
    );
    let reordered = store
        .append(&s, ExpectedVersion::Any, vec![b.clone(), a.clone()])
        .await;
    assert!(
        matches!(reordered, Err(Error::DuplicateEvent { .. })),
        "{reordered:?}"
    );
    let elsewhere = fresh("idem");
    let moved = store
        .append(&elsewhere, ExpectedVersion::Any, vec![a.clone(), b.clone()])
        .await;
    assert!(
        matches!(moved, Err(Error::DuplicateEvent { .. })),
        "{moved:?}"
    );
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        3,
        "retries wrote nothing"
    );
    assert_eq!(store.stream_version(&elsewhere).await.unwrap(), 0);
    let log = whole_log(&store).await;
    assert!(
        !log.iter().any(|e| e.id == fresh_event.id),
        "nothing of a duplicate append is stored"
    );
    assert_eq!(
        log.iter().filter(|e| e.id == a.id).count(),
        1,
        "each id is stored once"
    );
}

/// Items 5 and 1: a follower of the global log, reading while many writers commit to many
/// streams, sees every committed event exactly once, with cursors that only grow, and each
/// stream's events in version order.
pub async fn global_log_follower_sees_every_event_once_under_concurrency<S: EventStore + Clone>(
    store: S,
) {
    const WRITERS: usize = 8;
    const APPENDS: u64 = 40;
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(WRITERS));
    let follower = {
        let (store, writing) = (store.clone(), writing.clone());
        tokio::spawn(async move {
            let filter = LogFilter::all().category("follow");
            let mut after = Cursor::START;
            let mut seen = Vec::new();
            let mut reads_during_writes = 0u64;
            loop {
                let still_writing = writing.load(std::sync::atomic::Ordering::Acquire) > 0;
                let batch = store.read_all(after, &filter, 17).await.unwrap();
                assert!(batch.last_seen >= after, "last_seen never moves back");
                for e in &batch.events {
                    assert!(
                        e.cursor > after,
                        "handed cursor {} at or before {after}",
                        e.cursor
                    );
                    after = e.cursor;
                }
                assert!(batch.last_seen >= after, "last_seen covers the batch");
                after = batch.last_seen;
                let empty = batch.events.is_empty();
                seen.extend(batch.events);
                if still_writing {
                    reads_during_writes += 1;
                } else if empty {
                    return (seen, reads_during_writes);
                }
                if empty {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, writing) = (store.clone(), writing.clone());
            tokio::spawn(async move {
                let streams: Vec<StreamId> = (0..4).map(|_| fresh("follow")).collect();
                let mut ids = Vec::new();
                for i in 0..APPENDS {
                    let s = &streams[(i as usize + w) % streams.len()];
                    let batch = events("follow.e", 1 + i % 3);
                    ids.extend(batch.iter().map(|e| e.id));
                    store.append(s, ExpectedVersion::Any, batch).await.unwrap();
                }
                writing.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                ids
            })
        })
        .collect();
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let (seen, reads_during_writes) = follower.await.unwrap();
    assert!(
        reads_during_writes > 0,
        "the follower read while writers were committing"
    );
    let seen_ids: Vec<Uuid> = seen.iter().map(|e| e.id).collect();
    let unique: HashSet<Uuid> = seen_ids.iter().copied().collect();
    assert_eq!(unique.len(), seen_ids.len(), "no event is seen twice");
    assert_eq!(unique, written, "every committed event is seen");
    let mut last_version: HashMap<&StreamId, u64> = HashMap::new();
    for e in &seen {
        let v = last_version.entry(&e.stream).or_default();
        assert_eq!(
            e.version,
            *v + 1,
            "within a stream, log order is version order"
        );
        *v = e.version;
    }
}

/// Item 6: filtered reads return only matching events, in log order, and report how far they
/// looked so a follower passes stretches with no match.
pub async fn filtered_reads_keep_matches_and_report_progress<S: EventStore + Clone>(store: S) {
    let tag = Uuid::now_v7().simple().to_string();
    let (cat_a, cat_b) = (format!("fa{}", &tag[..12]), format!("fb{}", &tag[..12]));
    let type_x = format!("{cat_b}.x");
    let a = fresh(&cat_a);
    let b = fresh(&cat_b);
    let start = whole_log(&store)
        .await
        .last()
        .map(|e| e.cursor)
        .unwrap_or(Cursor::START);
    for i in 0..30u64 {
        let (s, t) = if i % 3 == 0 {
            (&a, format!("{cat_a}.y"))
        } else {
            (
                &b,
                format!("{cat_b}.{}", if i % 2 == 0 { "x" } else { "z" }),
            )
        };
        store
            .append(s, ExpectedVersion::Any, vec![event(&t, i)])
            .await
            .unwrap();
    }
    let last = store
        .append(&b, ExpectedVersion::Any, events(&format!("{cat_b}.z"), 1))
        .await
        .unwrap()
        .cursor;

    let read_filtered = |filter: LogFilter, limit: usize| {
        let store = store.clone();
        async move {
            let mut after = start;
            let mut out = Vec::new();
            loop {
                let batch = store.read_all(after, &filter, limit).await.unwrap();
                if batch.events.is_empty() && batch.last_seen == after {
                    return (out, after);
                }
                after = batch.last_seen;
                out.extend(batch.events);
            }
        }
    };
    let (by_cat, end) = read_filtered(LogFilter::all().category(&cat_a), 4).await;
    assert_eq!(by_cat.len(), 10);
    assert!(by_cat.iter().all(|e| e.stream.category() == cat_a));
    assert!(
        by_cat.windows(2).all(|w| w[0].cursor < w[1].cursor),
        "log order"
    );
    assert!(
        end >= last,
        "the follower's position passed the non-matching tail"
    );
    let (by_type, _) = read_filtered(LogFilter::all().event_type(&type_x), 3).await;
    assert_eq!(by_type.len(), 10);
    assert!(by_type.iter().all(|e| e.event_type == type_x));
    let (either, _) =
        read_filtered(LogFilter::all().category(&cat_a).event_type(&type_x), 1000).await;
    assert_eq!(either.len(), 20, "categories and types are alternatives");
    let (none, end) = read_filtered(LogFilter::all().category("nosuchcategory"), 5).await;
    assert!(none.is_empty());
    assert!(
        end >= last,
        "a filter matching nothing still moves the follower to the end"
    );
}

/// Item 7: stream reads start at a version, keep version order, and respect the limit; a
/// stream never written reads as empty.
pub async fn stream_reads_start_at_a_version_and_respect_the_limit<S: EventStore + Clone>(
    store: S,
) {
    let s = fresh("reads");
    store
        .append(&s, ExpectedVersion::NoStream, events("reads.a", 10))
        .await
        .unwrap();
    let page = store.read_stream(&s, 4, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(store.read_stream(&s, 9, 100).await.unwrap().len(), 2);
    assert_eq!(
        store.read_stream(&s, 0, 100).await.unwrap().len(),
        10,
        "version 0 reads from the start"
    );
    assert!(store.read_stream(&s, 11, 100).await.unwrap().is_empty());
    assert!(store.read_stream(&s, 1, 0).await.unwrap().is_empty());
    let never = fresh("reads");
    assert!(store.read_stream(&never, 1, 100).await.unwrap().is_empty());
    assert_eq!(store.stream_version(&never).await.unwrap(), 0);
}

/// Item 8: a deleted stream refuses appends and reads, is never reused, and its events stay
/// in the global log.
pub async fn deleted_stream_rejects_appends_and_reads_but_stays_in_the_log<
    S: EventStore + Clone,
>(
    store: S,
) {
    let s = fresh("del");
    let written = store
        .append(&s, ExpectedVersion::NoStream, events("del.a", 3))
        .await
        .unwrap();
    assert_conflict(store.delete_stream(&s, ExpectedVersion::Exact(2)).await, 3);
    store
        .delete_stream(&s, ExpectedVersion::Exact(3))
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(3),
    ] {
        let r = store.append(&s, expected, events("del.a", 1)).await;
        assert!(
            matches!(r, Err(Error::StreamDeleted { .. })),
            "append after delete: {r:?}"
        );
    }
    let r = store.read_stream(&s, 1, 10).await;
    assert!(
        matches!(r, Err(Error::StreamDeleted { .. })),
        "read after delete: {r:?}"
    );
    let v = store.stream_version(&s).await;
    assert!(
        matches!(v, Err(Error::StreamDeleted { .. })),
        "version after delete: {v:?}"
    );
    let snap = store
        .save_snapshot(Snapshot {
            stream: s.clone(),
            version: 3,
            tag: "v1".to_owned(),
            state: "{}".to_owned(),
        })
        .await;
    assert!(
        matches!(snap, Err(Error::StreamDeleted { .. })),
        "snapshot after delete: {snap:?}"
    );
    assert_eq!(store.load_snapshot(&s).await.unwrap(), None);
    let again = store.delete_stream(&s, ExpectedVersion::Any).await;
    assert!(
        matches!(again, Err(Error::StreamDeleted { .. })),
        "{again:?}"
    );
    let in_log: Vec<_> = whole_log(&store)
        .await
        .into_iter()
        .filter(|e| e.stream == s)
        .collect();
    assert_eq!(
        in_log.len(),
        3,
        "a deleted stream's events stay in the global log"
    );
    assert_eq!(in_log.last().unwrap().cursor, written.cursor);
}

/// Item 9: the newest snapshot is kept; an older one changes nothing.
pub async fn snapshots_keep_the_newest<S: EventStore + Clone>(store: S) {
    let s = fresh("snap");
    assert_eq!(store.load_snapshot(&s).await.unwrap(), None);
    let snap = |version: u64, state: &str| Snapshot {
        stream: s.clone(),
        version,
        tag: "v1".to_owned(),
        state: state.to_owned(),
    };
    store.save_snapshot(snap(10, r#"{"n":10}"#)).await.unwrap();
    store.save_snapshot(snap(20, r#"{"n":20}"#)).await.unwrap();
    store.save_snapshot(snap(15, r#"{"n":15}"#)).await.unwrap();
    assert_eq!(
        store.load_snapshot(&s).await.unwrap(),
        Some(snap(20, r#"{"n":20}"#))
    );
    let retagged = Snapshot {
        tag: "v2".to_owned(),
        ..snap(20, r#"{"m":1}"#)
    };
    store.save_snapshot(retagged.clone()).await.unwrap();
    assert_eq!(
        store.load_snapshot(&s).await.unwrap(),
        Some(retagged),
        "same version replaces"
    );
}

/// Item 10: checkpoints are compare-and-set.
pub async fn checkpoints_compare_and_set<S: EventStore + Clone>(store: S) {
    let name = format!("proj-{}", Uuid::now_v7().simple());
    let (c1, c2, c3) = (
        Cursor::from_parts(1, 5),
        Cursor::from_parts(2, 9),
        Cursor::from_parts(3, 1),
    );
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), None);
    store.save_checkpoint(&name, None, c1).await.unwrap();
    match store.save_checkpoint(&name, None, c2).await {
        Err(Error::CheckpointConflict {
            expected: None,
            actual: Some(a),
            ..
        }) => assert_eq!(a, c1),
        other => panic!("expected a checkpoint conflict, got {other:?}"),
    }
    store.save_checkpoint(&name, Some(c1), c2).await.unwrap();
    let stale = store.save_checkpoint(&name, Some(c1), c3).await;
    assert!(
        matches!(stale, Err(Error::CheckpointConflict { .. })),
        "{stale:?}"
    );
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), Some(c2));
}

/// Item 10: a state saved beside a checkpoint changes with it in one compare-and-set, and
/// only with it; a plain checkpoint save leaves the state as it is.
pub async fn checkpoint_state_moves_with_its_checkpoint<S: EventStore + Clone>(store: S) {
    let name = format!("saga-{}", Uuid::now_v7().simple());
    let (c1, c2, c3) = (
        Cursor::from_parts(1, 5),
        Cursor::from_parts(2, 9),
        Cursor::from_parts(3, 1),
    );
    assert_eq!(store.load_checkpoint_state(&name).await.unwrap(), None);
    store
        .save_checkpoint_state(&name, None, c1, Some(r#"{"n":1}"#.into()))
        .await
        .unwrap();
    let refused = store
        .save_checkpoint_state(&name, None, c3, Some("stale".into()))
        .await;
    assert!(
        matches!(refused, Err(Error::CheckpointConflict { actual: Some(a), .. }) if a == c1),
        "{refused:?}"
    );
    assert_eq!(
        store.load_checkpoint_state(&name).await.unwrap(),
        Some((c1, Some(r#"{"n":1}"#.into()))),
        "a refused save changed neither the cursor nor the state"
    );
    store
        .save_checkpoint_state(&name, Some(c1), c2, Some(r#"{"n":2}"#.into()))
        .await
        .unwrap();
    assert_eq!(store.load_checkpoint(&name).await.unwrap(), Some(c2));
    store.save_checkpoint(&name, Some(c2), c3).await.unwrap();
    assert_eq!(
        store.load_checkpoint_state(&name).await.unwrap(),
        Some((c3, Some(r#"{"n":2}"#.into()))),
        "a plain checkpoint save keeps the state"
    );
    store
        .save_checkpoint_state(&name, Some(c3), c3, None)
        .await
        .unwrap();
    assert_eq!(
        store.load_checkpoint_state(&name).await.unwrap(),
        Some((c3, None)),
        "the state can be cleared"
    );
    let plain = format!("plain-{}", Uuid::now_v7().simple());
    store.save_checkpoint(&plain, None, c1).await.unwrap();
    assert_eq!(
        store.load_checkpoint_state(&plain).await.unwrap(),
        Some((c1, None))
    );
}

/// Item 10 under concurrency: of several writers expecting the same checkpoint, one wins.
pub async fn concurrent_checkpoint_writers_exactly_one_wins<S: EventStore + Clone>(store: S) {
    const WRITERS: usize = 16;
    let name = format!("race-{}", Uuid::now_v7().simple());
    store
        .save_checkpoint(&name, None, Cursor::from_position(1))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, name, barrier) = (store.clone(), name.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let new = Cursor::from_position(100 + i as u64);
                store
                    .save_checkpoint(&name, Some(Cursor::from_position(1)), new)
                    .await
                    .map(|()| new)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(c) => winners.push(c),
            Err(Error::CheckpointConflict { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one compare-and-set wins");
    assert_eq!(
        store.load_checkpoint(&name).await.unwrap(),
        Some(winners[0])
    );
}

/// Input rules: each is a typed `InvalidInput` naming the field, before anything is written.
pub async fn invalid_input_is_rejected_before_anything_is_written<S: EventStore + Clone>(store: S) {
    let s = fresh("input");
    let big = "x".repeat((1 << 20) + 1);
    let mut big_meta = Metadata::default();
    big_meta.extra.insert(
        "blob".into(),
        serde_json::Value::String("y".repeat(17 << 10)),
    );
    let cases: Vec<(&str, NewEvent)> = vec![
        ("payload", raw_event("input.a", "42")),
        ("payload", raw_event("input.a", r#""text""#)),
        (
            "payload",
            NewEvent::new("input.a", &serde_json::json!({ "big": big })).unwrap(),
        ),
        ("metadata", event("input.a", 1).with_metadata(big_meta)),
        ("event type", event("", 1)),
        ("event type", event(&"t".repeat(201), 1)),
    ];
    for (field, e) in cases {
        match store.append(&s, ExpectedVersion::Any, vec![e]).await {
            Err(Error::InvalidInput { field: got, .. }) => assert_eq!(got, field),
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }
    assert_eq!(
        store.stream_version(&s).await.unwrap(),
        0,
        "nothing was written"
    );
    assert!(NewEvent::from_json_text("input.a", "{not json").is_err());
    assert!(NewEvent::from_json_text("input.a", "[1]").is_err());
    assert!(StreamId::new("", "1").is_err() && StreamId::new("a-b", "1").is_err());
    assert!(StreamId::parse(&"s".repeat(201)).is_err() && StreamId::parse("a\u{7}b").is_err());
}

/// Every field appended comes back as it was written.
pub async fn recorded_events_keep_what_was_appended<S: EventStore + Clone>(store: S) {
    let s = fresh("fields");
    let meta = Metadata {
        correlation_id: Some(Uuid::now_v7()),
        causation_id: Some(Uuid::now_v7()),
        user_id: Some("ada".into()),
        extra: serde_json::json!({ "ip": "127.0.0.1", "n": 3 })
            .as_object()
            .unwrap()
            .clone(),
    };
    let payload =
        serde_json::json!({ "title": "Ünïcödé ✓", "n": 1.5, "list": [1, null, {"a": true}] });
    let e = NewEvent::new("fields.set", &payload)
        .unwrap()
        .with_schema_version(3)
        .with_metadata(meta.clone());
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    store
        .append(&s, ExpectedVersion::NoStream, vec![e.clone()])
        .await
        .unwrap();
    let got = all_of_stream(&store, &s).await.pop().unwrap();
    assert_eq!(got.id, e.id);
    assert_eq!(got.stream, s);
    assert_eq!(
        (got.version, got.event_type.as_str(), got.schema_version),
        (1, "fields.set", 3)
    );
    let back: serde_json::Value = serde_json::from_str(&got.payload).unwrap();
    assert_eq!(back, payload);
    assert_eq!(got.metadata().unwrap(), meta);
    assert!(
        got.recorded_at > before
            && got.recorded_at < chrono::Utc::now() + chrono::Duration::seconds(5)
    );
}

/// `count_after` counts exactly what `read_all` would return after a cursor, for any filter.
pub async fn count_after_counts_what_the_log_holds<S: EventStore + Clone>(store: S) {
    let tag = Uuid::now_v7().simple().to_string();
    let (cat_a, cat_b) = (format!("ca{}", &tag[..12]), format!("cb{}", &tag[..12]));
    let start = whole_log(&store)
        .await
        .last()
        .map(|e| e.cursor)
        .unwrap_or(Cursor::START);
    let (a, b) = (fresh(&cat_a), fresh(&cat_b));
    store
        .append(&a, ExpectedVersion::Any, events(&format!("{cat_a}.x"), 7))
        .await
        .unwrap();
    let middle = store
        .append(&b, ExpectedVersion::Any, events(&format!("{cat_b}.y"), 5))
        .await
        .unwrap()
        .cursor;
    store
        .append(&a, ExpectedVersion::Any, events(&format!("{cat_a}.z"), 3))
        .await
        .unwrap();
    let count = |after: Cursor, filter: LogFilter| {
        let store = store.clone();
        async move { store.count_after(after, &filter).await.unwrap() }
    };
    assert_eq!(
        count(start, LogFilter::all().category(&cat_a).category(&cat_b)).await,
        15
    );
    assert_eq!(count(start, LogFilter::all().category(&cat_a)).await, 10);
    assert_eq!(
        count(start, LogFilter::all().event_type(format!("{cat_b}.y"))).await,
        5
    );
    let both = LogFilter::all()
        .category(&cat_b)
        .event_type(format!("{cat_b}.y"));
    assert_eq!(
        count(start, both).await,
        5,
        "an event matching twice counts once"
    );
    assert_eq!(count(middle, LogFilter::all().category(&cat_a)).await, 3);
    assert_eq!(
        count(middle, LogFilter::all().category("nosuchcategory")).await,
        0
    );
    assert_eq!(
        count(start, LogFilter::all()).await,
        15,
        "nothing else was appended after start"
    );
}

/// Every event `query` returns, read in pages of `page` from `last_seen` to `last_seen`.
async fn query_in_pages<S: EventStore>(
    store: &S,
    query: &EventQuery,
    page: usize,
) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut q = query.clone();
    loop {
        let batch = store.query(&q, page).await.expect("query");
        assert!(batch.events.len() <= page, "a page holds at most its limit");
        assert!(batch.last_seen >= q.after, "last_seen never goes back");
        if batch.events.is_empty() && batch.last_seen == q.after {
            return out;
        }
        q.after = batch.last_seen;
        out.extend(batch.events);
    }
}

/// `query` keeps exactly the events that pass every condition (filter, stream, correlation id,
/// time range), in log order; paged from `last_seen` it returns the same events with none
/// missed or repeated.
pub async fn queries_match_every_condition_and_page_without_gaps<S: EventStore + Clone>(store: S) {
    let tag = Uuid::now_v7().simple().to_string();
    let cat = format!("q{}", &tag[..12]);
    let start = whole_log(&store)
        .await
        .last()
        .map(|e| e.cursor)
        .unwrap_or(Cursor::START);
    let (a, b) = (fresh(&cat), fresh(&cat));
    let (one, two) = (Uuid::now_v7(), Uuid::now_v7());
    let with = |id: Uuid, n: u64, t: &str| {
        event(&format!("{cat}.{t}"), n).with_metadata(Metadata {
            correlation_id: Some(id),
            ..Metadata::default()
        })
    };
    store
        .append(
            &a,
            ExpectedVersion::Any,
            vec![with(one, 0, "x"), with(two, 1, "y")],
        )
        .await
        .unwrap();
    store
        .append(
            &b,
            ExpectedVersion::Any,
            vec![with(one, 2, "y"), event(&format!("{cat}.x"), 3)],
        )
        .await
        .unwrap();
    // Later, on the store's clock: what a time range tells apart.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let mut late = None;
    while late.is_none() {
        let written = store
            .append(&a, ExpectedVersion::Any, vec![with(one, 4, "x")])
            .await
            .unwrap();
        let e = &store.read_stream(&a, written.version, 1).await.unwrap()[0];
        let earlier = &all_of_stream(&store, &b).await[1];
        if e.recorded_at > earlier.recorded_at {
            late = Some((e.recorded_at, e.cursor));
        }
    }
    let (late_at, late_cursor) = late.unwrap();
    let ours = LogFilter::all().category(&cat);
    let base = EventQuery::after(start).filter(ours.clone());
    let numbers = |events: &[RecordedEvent]| -> Vec<u64> {
        events
            .iter()
            .map(|e| {
                e.payload_as::<serde_json::Value>().unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    let everything = query_in_pages(&store, &base, 1000).await;
    let all_numbers = numbers(&everything);
    assert_eq!(&all_numbers[..4], [0, 1, 2, 3], "log order");
    assert!(all_numbers[4..].iter().all(|n| *n == 4));
    let cursors: Vec<Cursor> = everything.iter().map(|e| e.cursor).collect();
    let mut sorted = cursors.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(cursors, sorted, "in log order, each once");
    for page in [1, 2, 3] {
        assert_eq!(
            query_in_pages(&store, &base, page).await,
            everything,
            "pages of {page} give the same events"
        );
    }
    let by_one = query_in_pages(&store, &base.clone().correlation_id(one), 2).await;
    let n_late = all_numbers.len() - 4;
    let mut want = vec![0, 2];
    want.extend(std::iter::repeat_n(4, n_late));
    assert_eq!(numbers(&by_one), want, "correlation id");
    assert_eq!(
        numbers(&query_in_pages(&store, &base.clone().correlation_id(two), 2).await),
        [1]
    );
    assert!(
        query_in_pages(&store, &base.clone().correlation_id(Uuid::now_v7()), 2)
            .await
            .is_empty()
    );
    assert_eq!(
        numbers(&query_in_pages(&store, &base.clone().stream(b.clone()), 1).await),
        [2, 3],
        "stream"
    );
    let typed = EventQuery::after(start)
        .filter(LogFilter::all().event_type(format!("{cat}.y")))
        .correlation_id(one);
    assert_eq!(
        numbers(&query_in_pages(&store, &typed, 1).await),
        [2],
        "type and correlation"
    );
    let since = query_in_pages(&store, &base.clone().recorded(Some(late_at), None), 2).await;
    assert!(!since.is_empty() && since.iter().all(|e| e.recorded_at >= late_at));
    assert!(since.iter().any(|e| e.cursor == late_cursor));
    let before = query_in_pages(&store, &base.clone().recorded(None, Some(late_at)), 2).await;
    assert!(before.iter().all(|e| e.recorded_at < late_at));
    assert_eq!(
        since.len() + before.len(),
        everything.len(),
        "a time split loses and repeats nothing"
    );
    assert!(numbers(&before).starts_with(&[0, 1, 2, 3]));
    let empty = store.query(&base, 0).await.unwrap();
    assert!(empty.events.is_empty() && empty.last_seen <= everything[0].cursor);
}

/// `read_event` returns the committed event with that id, and `None` for an unknown id.
pub async fn read_event_finds_an_event_by_its_id<S: EventStore + Clone>(store: S) {
    let s = fresh("byid");
    store
        .append(&s, ExpectedVersion::NoStream, events("byid.made", 3))
        .await
        .unwrap();
    let written = all_of_stream(&store, &s).await;
    for e in &written {
        assert_eq!(store.read_event(e.id).await.unwrap().as_ref(), Some(e));
    }
    assert_eq!(store.read_event(Uuid::now_v7()).await.unwrap(), None);
}
